"""MER metrics on pooled LOSO predictions, and the two epoch-selection rules.

Everything goes through scikit-learn with ``labels`` = all class ids, so a class no clip of a pool carries
still counts (with F1 0) in the class mean, as UF1/UAR define it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
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


def select_last(preds: pd.DataFrame) -> pd.DataFrame:
    """Each fold's final evaluated epoch: the honest rule (nothing is chosen by looking at the test subject)."""
    last = preds.groupby("fold")["epoch"].transform("max")
    return preds[preds["epoch"] == last]


def select_oracle(preds: pd.DataFrame, by: str) -> pd.DataFrame:
    """TEST-SET SELECTION: per fold the epoch scoring best ON THE TEST SUBJECT (``by`` = accuracy or f1).

    Reproduces the released MEMix code's protocol (its per-subject F1 is sklearn's macro F1 over the classes
    present in that subject's truth or predictions); ties go to the earliest epoch. Inflated by construction.
    """
    if by not in ("accuracy", "f1"):
        raise ValueError(f"oracle selection by {by!r}; valid: accuracy, f1")
    keep = []
    for _, fold in preds.groupby("fold", sort=True):
        best_epoch, best = None, -1.0
        for epoch, rows in fold.groupby("epoch", sort=True):
            t, p = rows["true"].to_numpy(), rows["pred"].to_numpy()
            score = accuracy_score(t, p) if by == "accuracy" else f1_score(t, p, average="macro", zero_division=0)
            if score > best:
                best_epoch, best = epoch, score
        keep.append(fold[fold["epoch"] == best_epoch])
    return pd.concat(keep)
