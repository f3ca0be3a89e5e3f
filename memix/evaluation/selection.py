"""The two epoch-selection rules: ``last`` (honest) and ``oracle`` (test-set selection, as published numbers were).

Each takes the predictions of every fold and evaluated epoch and returns the rows of the chosen epochs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


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
    scores = preds.groupby(["fold", "epoch"], sort=True)[["true", "pred"]].apply(
        _accuracy if by == "accuracy" else _present_macro_f1
    )
    best = scores.groupby(level="fold").idxmax()  # first maximum = earliest epoch on ties
    chosen = pd.MultiIndex.from_tuples(best.tolist(), names=["fold", "epoch"])
    return preds[pd.MultiIndex.from_frame(preds[["fold", "epoch"]]).isin(chosen)]


def _accuracy(rows: pd.DataFrame) -> float:
    return float((rows["true"].to_numpy() == rows["pred"].to_numpy()).mean())


def _present_macro_f1(rows: pd.DataFrame) -> float:
    """sklearn's ``f1_score(average="macro")`` over the classes present in truth or predictions, in numpy.

    Per class 2TP / (2TP + FP + FN) = 2TP / (n_true + n_pred); called once per (fold, epoch), so it avoids
    sklearn's per-call validation, which dominated the evaluate stage.
    """
    t, p = rows["true"].to_numpy(), rows["pred"].to_numpy()
    k = int(max(t.max(), p.max())) + 1
    tp = np.bincount(t[t == p], minlength=k)
    support = np.bincount(t, minlength=k) + np.bincount(p, minlength=k)
    present = support > 0
    return float((2 * tp[present] / support[present]).mean())
