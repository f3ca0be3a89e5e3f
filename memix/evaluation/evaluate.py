"""Pooled LOSO evaluation of one (method, seed): metrics.json, confusion.csv/.png and per_subject.csv.

All folds' predictions are pooled first and the metrics computed once on the pool (per-fold averages
differ, since test folds are small and miss classes; they appear only as ``fold_mean_*`` extras). Two epoch
selection rules are reported side by side: ``last`` (each fold's final epoch, the honest default) and
``oracle_test_selection`` (per subject the epoch that scores best on that subject itself, as the released
MEMix code does, chosen separately for accuracy and for F1), which selects on the test set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memix import plots
from memix.config import EvalParams
from memix.evaluation import metrics, selection
from memix.io import atomic

BASE_COLUMNS = ("clip_id", "subject", "fold", "epoch", "true", "pred")


def read_predictions(path: Path) -> tuple[pd.DataFrame, int, list[str]]:
    """Predictions, the class count (from ``prob_<k>`` columns) and class names; errors name file and field."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: predictions not found (run `dvc repro train` first)")
    try:
        preds = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for damaged files
        raise ValueError(f"{path}: unreadable parquet ({err})") from None
    missing = [c for c in BASE_COLUMNS if c not in preds.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    k = sum(1 for c in preds.columns if c.startswith("prob_"))
    if k == 0 or any(f"prob_{j}" not in preds.columns for j in range(k)):
        raise ValueError(f"{path}: columns prob_0..prob_<K-1> missing or not contiguous")
    if preds.empty:
        raise ValueError(f"{path}: no predictions")
    for col in ("true", "pred"):
        bad = preds[(preds[col] < 0) | (preds[col] >= k)]
        if len(bad):
            raise ValueError(f"{path}: clip {bad['clip_id'].iloc[0]!r}: field {col}={bad[col].iloc[0]} not in [0, {k})")
    dup = preds[preds.duplicated(["fold", "epoch", "clip_id"])]
    if len(dup):
        row = dup.iloc[0]
        raise ValueError(f"{path}: clip {row['clip_id']!r} predicted twice in fold {row['fold']} epoch {row['epoch']}")
    folds_per_clip = preds.groupby("clip_id")["fold"].nunique()
    if (folds_per_clip > 1).any():
        raise ValueError(f"{path}: clip {folds_per_clip[folds_per_clip > 1].index[0]!r} is in more than one fold")
    names = [f"class_{j}" for j in range(k)]
    if "label" in preds.columns:
        for t, name in preds[["true", "label"]].drop_duplicates().itertuples(index=False):
            names[int(t)] = str(name)
    preds = preds.sort_values(["fold", "epoch", "clip_id"], kind="stable").reset_index(drop=True)
    return preds, k, names


def select(preds: pd.DataFrame, rules: list[str]) -> dict[str, pd.DataFrame]:
    """The rows each epoch-selection rule keeps, computed once: ``last`` always (the confusion matrix and
    per-subject table use it), ``oracle_acc`` and ``oracle_f1`` when the oracle rule is asked for."""
    chosen = {"last": selection.select_last(preds)}
    if "oracle" in rules:
        chosen["oracle_acc"] = selection.select_oracle(preds, "accuracy")
        chosen["oracle_f1"] = selection.select_oracle(preds, "f1")
    return chosen


def compute(chosen: dict[str, pd.DataFrame], k: int, names: list[str], rules: list[str]) -> dict[str, Any]:
    """metrics.json's content for the given rules (numbers only), from :func:`select`'s rows."""
    out: dict[str, Any] = {}
    if "last" in rules:
        last = chosen["last"]
        t, p = last["true"].to_numpy(), last["pred"].to_numpy()
        s = metrics.summary(t, p, k)
        per_fold = [metrics.summary(f["true"].to_numpy(), f["pred"].to_numpy(), k) for _, f in last.groupby("fold")]
        out["last"] = {
            **s,
            "uf1": s["f1"],
            "n_clips": int(len(last)),
            "per_class": metrics.per_class(t, p, names),
            "fold_mean_accuracy": float(np.mean([f["accuracy"] for f in per_fold])),
            "fold_mean_f1": float(np.mean([f["f1"] for f in per_fold])),
        }
    if "oracle" in rules:
        out["oracle_test_selection"] = {
            f"best_{by}_epoch": metrics.summary(sel["true"].to_numpy(), sel["pred"].to_numpy(), k)
            for by, sel in (("acc", chosen["oracle_acc"]), ("f1", chosen["oracle_f1"]))
        }
    return out


def per_subject(chosen: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per test subject: clip count, last-epoch accuracy and (if selected) its test-selected best."""
    last = chosen["last"]
    table = (
        last.assign(correct=last["true"] == last["pred"])
        .groupby(["fold", "subject"], sort=True)
        .agg(n=("clip_id", "size"), accuracy_last=("correct", "mean"))
        .reset_index()
    )
    if "oracle_acc" in chosen:
        best = chosen["oracle_acc"]
        acc = (best["true"] == best["pred"]).groupby(best["fold"]).mean()
        table["accuracy_oracle_test_selection"] = table["fold"].map(acc).to_numpy()
    return table[["subject", "fold", "n", *[c for c in table.columns if c.startswith("accuracy")]]]


def run(params: EvalParams, train_dir: Path, out_dir: Path) -> Path:
    """Evaluate ``train_dir/predictions.parquet`` into ``out_dir`` (built in a temp folder, renamed whole)."""
    preds, k, names = read_predictions(Path(train_dir) / "predictions.parquet")
    rules = list(params.rules)
    chosen = select(preds, rules)
    result = compute(chosen, k, names, rules)
    last = chosen["last"]  # in (fold, clip_id) order: read_predictions sorts by fold, epoch, clip_id
    conf = pd.DataFrame({
        "actual": [names[t] for t in last["true"]],
        "predicted": [names[p] for p in last["pred"]],
    })
    cm = metrics.confusion(last["true"].to_numpy(), last["pred"].to_numpy(), k)
    title = f"pooled LOSO, each fold's last epoch (n={len(last)})"

    out_dir = Path(out_dir)
    with atomic.atomic_path(out_dir) as tmp:
        tmp.mkdir()
        atomic.write_json(tmp / "metrics.json", result)
        (tmp / "confusion.csv").write_text(conf.to_csv(index=False, lineterminator="\n"))
        (tmp / "confusion.png").write_bytes(plots.confusion_png(cm, names, title))
        (tmp / "per_subject.csv").write_text(
            per_subject(chosen).to_csv(index=False, lineterminator="\n", float_format="%.6g")
        )
    return out_dir / "metrics.json"
