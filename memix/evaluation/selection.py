"""The epoch-selection rules: ``last`` (honest), ``oracle`` (test-set selection, as published numbers were) and
``release`` (each network under its own release's selection: :mod:`memix.evaluation.release_rules`).

Each takes the predictions of every seed, fold and evaluated epoch and returns the rows of the chosen epochs,
one epoch per (seed, fold) (none for a fold a release drops).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from memix.evaluation import metrics, release_rules

RUN = ["seed", "fold"]
"""One LOSO fold of one training run: the unit an epoch is chosen for."""

RULES = {
    "last": "honest: each fold's final epoch",
    "oracle": "TEST-SET SELECTION: per subject the epoch that scores best on that test subject itself "
    "(Acc from its best-accuracy epoch, the earliest of ties; UF1 and UAR from its best-F1 epoch, the latest of "
    "ties; the released MEMix code's rule)",
    "release": "the model's own release's epoch selection (memix.evaluation.release_rules; most are test-set "
    "selection)",
}
"""The rules, as every table explains them."""

SELECTIONS = {"last": ("last",), "oracle": ("oracle_acc", "oracle_f1"), "release": ("release_acc", "release_f1")}
"""The epoch selections each rule needs: the oracle rule chooses by accuracy and by F1 separately; so may a
release (one that chooses one epoch for every metric gives both names the same rows)."""


def source(rule: str, metric: str) -> str:
    """The selection a rule's figure ``metric`` (accuracy, uf1, uar) is computed on."""
    if rule == "last":
        return "last"
    if rule not in SELECTIONS:
        raise ValueError(f"unknown selection rule {rule!r}; valid: {', '.join(RULES)}")
    acc, f1 = SELECTIONS[rule]
    return acc if metric == "accuracy" else f1


def select(preds: pd.DataFrame, rules: list[str], network: str | None = None) -> dict[str, pd.DataFrame]:
    """The rows of every selection the given rules need, each computed once; ``release`` needs the ``network``
    whose release's rule it applies (:func:`memix.evaluation.release_rules.release_rule`)."""
    chosen: dict[str, pd.DataFrame] = {}
    for rule in rules:
        if rule not in SELECTIONS:
            raise ValueError(f"unknown selection rule {rule!r}; valid: {', '.join(RULES)}")
        if rule == "release":
            if network is None:
                raise ValueError("the release rule needs the network whose release's selection it applies")
            chosen.update(select_release(preds, release_rules.release_rule(network)))
            continue
        for name in SELECTIONS[rule]:
            if name == "last":
                chosen[name] = select_last(preds)
            else:
                chosen[name] = select_oracle(preds, "accuracy" if name == "oracle_acc" else "f1")
    return chosen


def select_release(preds: pd.DataFrame, rule: release_rules.ReleaseRule) -> dict[str, pd.DataFrame]:
    """``release_acc`` and ``release_f1``: the rows a release keeps for its accuracy and for its F1 (the same rows
    for a release that keeps one epoch for every metric)."""
    if rule.selects == "last":
        acc = f1 = select_last(preds)
    elif rule.selects == "oracle":
        acc, f1 = select_oracle(preds, "accuracy"), select_oracle(preds, "f1")
    else:
        acc = f1 = release_rules.select_best_accuracy(preds, rule)
    return {"release_acc": acc, "release_f1": f1}


def select_last(preds: pd.DataFrame) -> pd.DataFrame:
    """Each fold's final evaluated epoch: the honest rule (nothing is chosen by looking at the test subject)."""
    last = preds.groupby(RUN)["epoch"].transform("max")
    return preds[preds["epoch"] == last]


def select_oracle(preds: pd.DataFrame, by: str) -> pd.DataFrame:
    """TEST-SET SELECTION: per fold the epoch scoring best ON THE TEST SUBJECT (``by`` = accuracy or f1).

    The released MEMix code's loop (``main.py``: ``bingo_cnt > max_corr`` and ``AVG_F1 >= max_f1``, both starting
    at 0), tie rule included:

    * accuracy: the EARLIEST of the epochs with the most correct clips (a strict ``>``);
    * F1: the LATEST of the epochs with the best F1 (``>=``), so a subject whose F1 is 0 in every epoch keeps its
      last epoch. The F1 is the release's: float32 ``2 TP / (n_true + n_pred)`` summed in class order over the
      classes in the subject's truth or predictions, divided by their count (scikit-learn's macro F1, rounded as
      the release rounds it, so that equal scores tie exactly as they tie there).

    The chosen epochs' rows are then pooled, as the release pools their counts. The release also stops a fold
    once its test subject is 100 % correct; a later epoch can only tie that one, with the same (perfect) counts,
    so the pooled figures are the same. Inflated by construction. Scored for every (seed, fold, epoch) at once
    with counts, not one call per group.
    """
    if by not in ("accuracy", "f1"):
        raise ValueError(f"oracle selection by {by!r}; valid: accuracy, f1")
    keys = [*RUN, "epoch"]
    group = preds.groupby(keys, sort=True).ngroup().to_numpy()
    n_groups = int(group.max()) + 1 if len(group) else 0
    t, p = preds["true"].to_numpy(), preds["pred"].to_numpy()
    if by == "accuracy":
        score = np.bincount(group, weights=(t == p), minlength=n_groups)  # correct clips: exact integers
    else:
        k = int(max(t.max(), p.max())) + 1 if len(t) else 1
        score = release_f1(metrics.confusions(group, t, p, n_groups, k))
    groups = preds[keys].drop_duplicates().sort_values(keys, kind="stable").reset_index(drop=True)
    groups["score"] = score
    # accuracy: the earliest epoch among each fold's maxima; F1: the latest
    earliest = by == "accuracy"
    best = groups.sort_values([*RUN, "score", "epoch"], ascending=[True, True, False, earliest], kind="stable")
    best = pd.MultiIndex.from_frame(best.drop_duplicates(RUN)[keys])
    return preds[pd.MultiIndex.from_frame(preds[keys]).isin(best)]


def release_f1(cm: np.ndarray) -> np.ndarray:
    """Per count matrix (..., K, K) the released code's per-subject F1, in its float32 arithmetic and order.

    Mathematically scikit-learn's macro F1 over the classes in the truth or predictions; computed as the release
    computes it (each class's ``2 TP / (n_true + n_pred)`` rounded to float32, added in class order, divided by the
    number of classes present), so that two epochs tie here exactly when they tie in the release.
    """
    cm = np.asarray(cm)
    tp = np.diagonal(cm, axis1=-2, axis2=-1).astype(np.float32)
    support = (cm.sum(axis=-1) + cm.sum(axis=-2)).astype(np.float32)
    present = support > 0
    total = np.zeros(cm.shape[:-2], dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        for k in range(cm.shape[-1]):
            total = np.where(present[..., k], total + (np.float32(2) * tp[..., k]) / support[..., k], total)
    count = present.sum(axis=-1).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, total / count, np.float32(0)).astype(np.float32)
