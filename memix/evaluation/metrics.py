"""MER metrics on pooled LOSO predictions.

Everything goes through scikit-learn with ``labels`` = all class ids, so a class no clip of a pool carries
still counts (with F1 0) in the class mean, as UF1/UAR define it.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support, recall_score


def summary(true: np.ndarray, pred: np.ndarray, num_classes: int) -> dict[str, float]:
    """Accuracy, F1 (= UF1: mean over ALL classes of 2TP/(2TP+FP+FN)) and UAR (mean recall) of one pool."""
    labels = list(range(num_classes))
    f1 = float(f1_score(true, pred, labels=labels, average="macro", zero_division=0))
    return {
        "accuracy": float(accuracy_score(true, pred)),
        "f1": f1,
        "uar": float(recall_score(true, pred, labels=labels, average="macro", zero_division=0)),
    }


def per_class(true: np.ndarray, pred: np.ndarray, names: list[str]) -> dict[str, dict[str, float]]:
    """Precision, recall and F1 of every class (0 where undefined)."""
    p, r, f, _ = precision_recall_fscore_support(
        true, pred, labels=list(range(len(names))), average=None, zero_division=0
    )
    return {name: {"precision": float(p[k]), "recall": float(r[k]), "f1": float(f[k])} for k, name in enumerate(names)}


def confusion(true: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts (actual row, predicted column) over all class ids."""
    return confusion_matrix(true, pred, labels=list(range(num_classes)))
