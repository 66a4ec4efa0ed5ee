"""Classification metrics (scikit-learn underneath, tensors or arrays in)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn import metrics as skm


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
    return float(skm.accuracy_score(_np(y_true), _np(y_pred)))


def macro_f1(y_true, y_pred, num_classes: int | None = None) -> float:
    """Unweighted mean of the per-class F1 scores.

    Classes are those present in either ``y_true`` or ``y_pred`` (scikit-learn's
    default), or ``range(num_classes)`` when given; a class that never occurs
    and is never predicted scores 0.
    """
    y_true, y_pred = _np(y_true), _np(y_pred)
    labels = _labels(y_true, y_pred, num_classes)
    return float(skm.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))


def per_class_accuracy(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """Recall of each class (NaN for a class absent from ``y_true``)."""
    y_true, y_pred = _np(y_true), _np(y_pred)
    labels = _labels(y_true, y_pred, num_classes)
    cm = skm.confusion_matrix(y_true, y_pred, labels=labels)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / support, np.nan)


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """Counts: rows true class, columns predicted class."""
    y_true, y_pred = _np(y_true), _np(y_pred)
    return skm.confusion_matrix(y_true, y_pred, labels=_labels(y_true, y_pred, num_classes))


def classification_metrics(logits, y_true, num_classes: int | None = None) -> dict[str, float]:
    """``{"acc", "f1"}`` of arg-max predictions: what the engine logs per epoch.

    Macro-F1 averages over the classes present in labels or predictions unless
    ``num_classes`` is given.
    """
    y_pred = predictions(logits)
    return {"acc": accuracy(y_true, y_pred), "f1": macro_f1(y_true, y_pred, num_classes)}
