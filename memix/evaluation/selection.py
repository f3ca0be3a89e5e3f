"""The epoch-selection rules: ``last`` (honest) and ``oracle`` (test-set selection, as published numbers were).

Each takes the predictions of every seed, fold and evaluated epoch and returns the rows of the chosen epochs,
one epoch per (seed, fold).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from memix.evaluation import metrics

RUN = ["seed", "fold"]
"""One LOSO fold of one training run: the unit an epoch is chosen for."""

RULES = {
    "last": "honest: each fold's final epoch",
    "oracle": "TEST-SET SELECTION: per subject the epoch that scores best on that test subject itself "
    "(Acc from its best-accuracy epoch, UF1 and UAR from its best-F1 epoch)",
}
"""The two rules, as every table explains them."""

SELECTIONS = {"last": ("last",), "oracle": ("oracle_acc", "oracle_f1")}
"""The epoch selections each rule needs: the oracle rule chooses by accuracy and by F1 separately."""


def source(rule: str, metric: str) -> str:
    """The selection a rule's figure ``metric`` (accuracy, uf1, uar) is computed on."""
    if rule == "last":
        return "last"
    return "oracle_acc" if metric == "accuracy" else "oracle_f1"


def select(preds: pd.DataFrame, rules: list[str]) -> dict[str, pd.DataFrame]:
    """The rows of every selection the given rules need, each computed once."""
    chosen: dict[str, pd.DataFrame] = {}
    for rule in rules:
        for name in SELECTIONS[rule]:
            if name == "last":
                chosen[name] = select_last(preds)
            else:
                chosen[name] = select_oracle(preds, "accuracy" if name == "oracle_acc" else "f1")
    return chosen


def select_last(preds: pd.DataFrame) -> pd.DataFrame:
    """Each fold's final evaluated epoch: the honest rule (nothing is chosen by looking at the test subject)."""
    last = preds.groupby(RUN)["epoch"].transform("max")
    return preds[preds["epoch"] == last]


def select_oracle(preds: pd.DataFrame, by: str) -> pd.DataFrame:
    """TEST-SET SELECTION: per fold the epoch scoring best ON THE TEST SUBJECT (``by`` = accuracy or f1).

    Reproduces the released MEMix code's protocol (its per-subject F1 is scikit-learn's macro F1 over the
    classes present in that subject's truth or predictions); ties go to the earliest epoch. Inflated by
    construction. Scored for every (seed, fold, epoch) at once with counts, not one call per group.
    """
    if by not in ("accuracy", "f1"):
        raise ValueError(f"oracle selection by {by!r}; valid: accuracy, f1")
    keys = [*RUN, "epoch"]
    group = preds.groupby(keys, sort=True).ngroup().to_numpy()
    n_groups = int(group.max()) + 1 if len(group) else 0
    t, p = preds["true"].to_numpy(), preds["pred"].to_numpy()
    if by == "accuracy":
        score = np.bincount(group, weights=(t == p), minlength=n_groups) / np.bincount(group, minlength=n_groups)
    else:
        k = int(max(t.max(), p.max())) + 1
        score = metrics.part_from_confusion(metrics.confusions(group, t, p, n_groups, k))["uf1"]
    groups = preds[keys].drop_duplicates().sort_values(keys, kind="stable").reset_index(drop=True)
    groups["score"] = score
    # the earliest epoch among each fold's maxima: the first row of a (seed, fold) after sorting by -score, epoch
    best = groups.sort_values([*RUN, "score", "epoch"], ascending=[True, True, False, True], kind="stable")
    best = pd.MultiIndex.from_frame(best.drop_duplicates(RUN)[keys])
    return preds[pd.MultiIndex.from_frame(preds[keys]).isin(best)]
