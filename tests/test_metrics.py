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
