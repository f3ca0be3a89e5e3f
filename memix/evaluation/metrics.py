"""MER metrics: on a whole pool of predictions, on a part of it (one subject, one source dataset), and from
confusion matrices (the bootstrap's vectorised form).

A pool's metrics count every class of the dataset: a class no clip of the pool carries still counts (F1 0,
recall 0) in the class mean, as UF1/UAR define it for a LOSO pool. A part of the pool (one subject, one source
of a composite dataset) holds only some classes, so its scores average over the classes it has: UF1 over the
classes in its truth or predictions (scikit-learn's default, and the per-subject F1 of the oracle rule), UAR
over the classes in its truth (recall is undefined for the others).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support, recall_score

METRICS = ("accuracy", "uf1", "uar")
"""The figures every table reports: accuracy, UF1 (unweighted F1: mean over classes of 2TP/(2TP+FP+FN)),
UAR (unweighted average recall)."""


def summary(true: np.ndarray, pred: np.ndarray, num_classes: int) -> dict[str, float]:
    """Accuracy, UF1 and UAR of one pool over ALL ``num_classes`` classes."""
    labels = list(range(num_classes))
    return {
        "accuracy": float(accuracy_score(true, pred)),
        "uf1": float(f1_score(true, pred, labels=labels, average="macro", zero_division=0)),
        "uar": float(recall_score(true, pred, labels=labels, average="macro", zero_division=0)),
    }


def per_class(true: np.ndarray, pred: np.ndarray, names: list[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of every class (0 where undefined)."""
    p, r, f, n = precision_recall_fscore_support(
        true, pred, labels=list(range(len(names))), average=None, zero_division=0
    )
    return {
        name: {"precision": float(p[k]), "recall": float(r[k]), "f1": float(f[k]), "n": int(n[k])}
        for k, name in enumerate(names)
    }


def confusion(true: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts (actual row, predicted column) over all class ids."""
    return confusion_matrix(true, pred, labels=list(range(num_classes)))


def confusions(group: np.ndarray, true: np.ndarray, pred: np.ndarray, n_groups: int, num_classes: int) -> np.ndarray:
    """One count matrix per group id in ``[0, n_groups)``: shape (n_groups, K, K), in one ``bincount``."""
    k = num_classes
    flat = (np.asarray(group, dtype=np.int64) * k + true) * k + pred
    return np.bincount(flat, minlength=n_groups * k * k).reshape(n_groups, k, k)


def from_confusion(cm: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`summary`'s figures from count matrices of shape (..., K, K), all at once (no Python loop).

    Equal to :func:`summary` on the clips the matrix counts; the bootstrap scores thousands of resampled
    matrices with it.
    """
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    n_true = cm.sum(axis=-1)
    n_pred = cm.sum(axis=-2)
    total = n_true.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        accuracy = np.where(total > 0, tp.sum(axis=-1) / total, 0.0)
        f1 = np.where(n_true + n_pred > 0, 2 * tp / (n_true + n_pred), 0.0)
        recall = np.where(n_true > 0, tp / n_true, 0.0)
    return {"accuracy": accuracy, "uf1": f1.mean(axis=-1), "uar": recall.mean(axis=-1)}


def part_from_confusion(cm: np.ndarray) -> dict[str, np.ndarray]:
    """A part of a pool's figures from count matrices (..., K, K): UF1 over the classes in its truth or
    predictions (scikit-learn's default ``f1_score(average="macro")``), UAR over the classes in its truth."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    n_true = cm.sum(axis=-1)
    support = n_true + cm.sum(axis=-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        accuracy = tp.sum(axis=-1) / n_true.sum(axis=-1)
        uf1 = np.where(support > 0, 2 * tp / support, 0.0).sum(axis=-1) / (support > 0).sum(axis=-1)
        uar = np.where(n_true > 0, tp / n_true, 0.0).sum(axis=-1) / (n_true > 0).sum(axis=-1)
    return {"accuracy": accuracy, "uf1": uf1, "uar": uar}
