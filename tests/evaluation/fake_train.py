"""Train outputs in the contract format (predictions.parquet, curves.csv), made up without training.

``write_method`` simulates a method: each clip is predicted correctly with probability ``skill`` (plus a
per-subject shift), independently per seed and epoch, from a seeded generator, so tests can state what the
true difference between two methods is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from memix.io import atomic

NAMES = ["happiness", "repression", "disgust", "surprise", "others"]


def clips(n_subjects: int, per_subject: int, datasets: tuple[str, ...] = ("casme2",)) -> pd.DataFrame:
    """The test clips: subjects split over ``datasets`` in turn, classes cycling so every class occurs."""
    rows = []
    for j in range(n_subjects):
        ds = datasets[j % len(datasets)]
        for i in range(per_subject):
            rows.append({"clip_id": f"{ds}/s{j:02d}/c{i:02d}", "subject": f"s{j:02d}", "dataset": ds,
                         "fold": j, "true": (i + j) % len(NAMES)})
    return pd.DataFrame(rows)


def predictions(
    table: pd.DataFrame, seeds: list[int], epochs: int, skill: float, rng: np.random.Generator,
    subject_sd: float = 0.0,
) -> pd.DataFrame:
    """Every (seed, fold, epoch, clip) prediction; a miss picks one of the other classes at random."""
    k = len(NAMES)
    shift = {s: rng.normal(0.0, subject_sd) for s in table["subject"].unique()}
    frames = []
    for seed in seeds:
        for epoch in range(1, epochs + 1):
            p_ok = np.clip(skill + table["subject"].map(shift).to_numpy(), 0.0, 1.0)
            ok = rng.random(len(table)) < p_ok
            wrong = (table["true"].to_numpy() + rng.integers(1, k, len(table))) % k
            pred = np.where(ok, table["true"].to_numpy(), wrong)
            frames.append(table.assign(seed=seed, epoch=epoch, pred=pred))
    df = pd.concat(frames, ignore_index=True)
    probs = np.full((len(df), k), 0.1 / (k - 1), dtype=np.float32)
    probs[np.arange(len(df)), df["pred"].to_numpy()] = 0.9
    df = df.assign(label=[NAMES[t] for t in df["true"]])
    for j in range(k):
        df[f"prob_{j}"] = probs[:, j]
    df = df.astype({"seed": "int64", "fold": "int64", "epoch": "int64", "true": "int64", "pred": "int64"})
    columns = ["seed", "clip_id", "subject", "dataset", "fold", "epoch", "true", "label", "pred"]
    return df[columns + [f"prob_{j}" for j in range(k)]].sort_values(
        ["seed", "fold", "epoch", "clip_id"], kind="stable"
    ).reset_index(drop=True)


def curves(preds: pd.DataFrame) -> pd.DataFrame:
    """curves.csv: a falling made-up loss and the pooled test accuracy per (seed, epoch)."""
    acc = (preds["true"] == preds["pred"]).groupby([preds["seed"], preds["epoch"]]).mean().rename("test_accuracy")
    out = acc.reset_index()
    out["train_loss"] = 1.5 / out["epoch"] + 0.01 * out["seed"]
    out["train_accuracy"] = 1 - 0.5 / out["epoch"]
    return out[["seed", "epoch", "train_loss", "train_accuracy", "test_accuracy"]]


def write(train_dir: Path, preds: pd.DataFrame) -> Path:
    """Write predictions.parquet and curves.csv into ``train_dir``; returns it."""
    train_dir = Path(train_dir)
    atomic.write_parquet(train_dir / "predictions.parquet", preds)
    atomic.write_text(train_dir / "curves.csv", curves(preds).to_csv(index=False, lineterminator="\n"))
    return train_dir


def write_method(
    train_root: Path, method: str, table: pd.DataFrame, seeds: list[int], skill: float, seed: int,
    epochs: int = 3, subject_sd: float = 0.0,
) -> Path:
    """``train_root/<method>/`` for a simulated method of the given ``skill``."""
    rng = np.random.default_rng(seed)
    return write(Path(train_root) / method, predictions(table, seeds, epochs, skill, rng, subject_sd))
