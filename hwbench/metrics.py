"""Classification metrics, tensors or arrays in: scikit-learn's definitions computed
with NumPy (tests/test_metrics.py checks them against scikit-learn), so that a training
job does not import scikit-learn."""

from __future__ import annotations

import numpy as np
import torch


def _np(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def predictions(logits) -> np.ndarray:
    """Arg-max class of each row of ``logits``."""
    if isinstance(logits, torch.Tensor):
        return logits.argmax(dim=1).cpu().numpy()
    return np.asarray(logits).argmax(axis=1)


def _labels(y_true, y_pred, num_classes: int | None) -> np.ndarray:
    if num_classes is not None:
        return np.arange(num_classes)
    return np.union1d(y_true, y_pred)


def accuracy(y_true, y_pred) -> float:
    """Share of correct predictions."""
    y_true, y_pred = _np(y_true).reshape(-1), _np(y_pred).reshape(-1)
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} labels but {len(y_pred)} predictions")
    return float(np.mean(y_true == y_pred))


def macro_f1(y_true, y_pred, num_classes: int | None = None) -> float:
    """Unweighted mean of the per-class F1 scores.

    Classes are those present in either ``y_true`` or ``y_pred`` (scikit-learn's
    default), or ``range(num_classes)`` when given; a class that never occurs
    and is never predicted scores 0.
    """
    y_true, y_pred = _np(y_true).reshape(-1), _np(y_pred).reshape(-1)
    labels = _labels(y_true, y_pred, num_classes)
    # Per label, over every sample (a sample of another class counts against it):
    # scikit-learn's F1 = 2 tp / (2 tp + fp + fn), 0 where that has no sample.
    true_sum, pred_sum = _counts(y_true, labels), _counts(y_pred, labels)
    tp = _counts(y_true[y_true == y_pred], labels)
    denominator = true_sum + pred_sum  # = 2 tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denominator > 0, 2 * tp / denominator, 0.0)
    return float(f1.mean())


def per_class_accuracy(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """Recall of each class (NaN for a class absent from ``y_true``)."""
    y_true, y_pred = _np(y_true).reshape(-1), _np(y_pred).reshape(-1)
    labels = _labels(y_true, y_pred, num_classes)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / support, np.nan)


def _positions(values: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each value's position in the sorted ``labels``, and whether it is one of them."""
    at = np.searchsorted(labels, values)
    inside = at < len(labels)
    inside[inside] = labels[at[inside]] == values[inside]
    return at, inside


def _counts(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """How often each of the sorted ``labels`` occurs in ``values``."""
    at, inside = _positions(values, labels)
    return np.bincount(at[inside], minlength=len(labels))


def confusion_matrix(
    y_true, y_pred, num_classes: int | None = None, labels: np.ndarray | None = None
) -> np.ndarray:
    """Counts: rows true class, columns predicted class (int64). Classes are
    ``labels`` (sorted) or as :func:`macro_f1` chooses them; a sample whose true or
    predicted class is not among them is left out, as scikit-learn does."""
    y_true, y_pred = _np(y_true).reshape(-1), _np(y_pred).reshape(-1)
    if labels is None:
        labels = _labels(y_true, y_pred, num_classes)
    n = len(labels)
    rows, true_in = _positions(y_true, labels)
    cols, pred_in = _positions(y_pred, labels)
    keep = true_in & pred_in
    flat = np.bincount(rows[keep] * n + cols[keep], minlength=n * n)
    return flat.reshape(n, n).astype(np.int64)


def classification_metrics(logits, y_true, num_classes: int | None = None) -> dict[str, float]:
    """``{"acc", "f1"}`` of arg-max predictions: what the engine logs per epoch.

    Macro-F1 averages over the classes present in labels or predictions unless
    ``num_classes`` is given.
    """
    y_pred = predictions(logits)
    return {"acc": accuracy(y_true, y_pred), "f1": macro_f1(y_true, y_pred, num_classes)}
