"""Metrics agree with scikit-learn and with hand-computed values."""

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from hwbench import metrics


def test_macro_f1_equals_sklearn():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 7, 500)
    y_pred = np.where(rng.random(500) < 0.6, y_true, rng.integers(0, 9, 500))
    assert metrics.macro_f1(y_true, y_pred) == pytest.approx(
        f1_score(y_true, y_pred, average="macro")
    )
    # Tensors in, same answer.
    assert metrics.macro_f1(torch.from_numpy(y_true), torch.from_numpy(y_pred)) == pytest.approx(
        f1_score(y_true, y_pred, average="macro")
    )


def test_hand_computed_values():
    y_true = [0, 0, 1, 1, 2]
    y_pred = [0, 1, 1, 1, 0]
    assert metrics.accuracy(y_true, y_pred) == pytest.approx(3 / 5)
    # F1: class 0 p=1/2 r=1/2 -> 1/2; class 1 p=2/3 r=1 -> 4/5; class 2 -> 0.
    assert metrics.macro_f1(y_true, y_pred) == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    # With a declared 4th class never seen nor predicted, it counts as 0.
    assert metrics.macro_f1(y_true, y_pred, num_classes=4) == pytest.approx(1.3 / 4)
    np.testing.assert_allclose(
        metrics.per_class_accuracy(y_true, y_pred, 4), [0.5, 1.0, 0.0, np.nan]
    )
    np.testing.assert_array_equal(
        metrics.confusion_matrix(y_true, y_pred), [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    )


def test_classification_metrics_from_logits():
    logits = torch.tensor([[2.0, 0.1], [0.3, 0.9], [1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1, 1, 1])
    out = metrics.classification_metrics(logits, y)
    assert out["acc"] == pytest.approx(0.75)
    assert out["f1"] == pytest.approx(f1_score(y.numpy(), [0, 1, 0, 1], average="macro"))


def _cases():
    """Label/prediction pairs covering what the studies pass: classes missing from
    either side, predictions outside ``num_classes``, tensors, a single class."""
    for seed in range(6):
        rng = np.random.default_rng(seed)
        n, k = int(rng.integers(1, 400)), int(rng.integers(1, 12))
        y_true = rng.integers(0, k, n)
        y_pred = np.where(rng.random(n) < 0.5, y_true, rng.integers(0, k + 2, n))
        yield y_true, y_pred, None
        yield y_true, y_pred, k + 3  # declared classes never seen nor predicted
        yield y_true, y_pred, max(1, k - 1)  # samples outside range(num_classes)
    yield np.array([3, 3, 3]), np.array([3, 3, 3]), None


@pytest.mark.parametrize("case", list(_cases()), ids=lambda c: f"n{len(c[0])}-k{c[2]}")
def test_numpy_metrics_equal_scikit_learn(case):
    """hwbench.metrics computes with NumPy what it computed with scikit-learn before."""
    from sklearn import metrics as skm

    y_true, y_pred, num_classes = case
    labels = np.arange(num_classes) if num_classes else np.union1d(y_true, y_pred)
    assert metrics.accuracy(y_true, y_pred) == skm.accuracy_score(y_true, y_pred)
    assert metrics.accuracy(torch.from_numpy(y_true), torch.from_numpy(y_pred)) == (
        skm.accuracy_score(y_true, y_pred)
    )
    expected_f1 = skm.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    assert metrics.macro_f1(y_true, y_pred, num_classes) == expected_f1
    expected_cm = skm.confusion_matrix(y_true, y_pred, labels=labels)
    cm = metrics.confusion_matrix(y_true, y_pred, num_classes)
    assert cm.dtype == expected_cm.dtype
    np.testing.assert_array_equal(cm, expected_cm)
    support = expected_cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, np.diag(expected_cm) / support, np.nan)
    np.testing.assert_array_equal(metrics.per_class_accuracy(y_true, y_pred, num_classes), recall)
