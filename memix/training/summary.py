"""The one line a training stage ends with: what it trained and how it ended, read back from what it wrote."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def run_summary(name: str, out_dir: Path) -> str:
    """``<name>: seeds 0,1,2 x 10 folds, 120 clips, 24 epochs -> <out_dir>; last epoch: train acc 61.2 %, test acc
    58.3 % (seed mean; test pooled over folds)`` from ``curves.csv`` and ``predictions.parquet`` in ``out_dir``."""
    out_dir = Path(out_dir)
    curves = pd.read_csv(out_dir / "curves.csv")
    preds = pd.read_parquet(out_dir / "predictions.parquet", columns=["seed", "fold", "clip_id"])
    seeds = sorted(int(s) for s in curves["seed"].unique())
    last = curves[curves["epoch"] == curves["epoch"].max()]
    return (
        f"{name}: seeds {','.join(map(str, seeds))} x {preds['fold'].nunique()} folds, {preds['clip_id'].nunique()} "
        f"clips, {int(curves['epoch'].max())} epochs -> {out_dir}; last epoch: train acc "
        f"{last['train_accuracy'].mean() * 100:.1f} %, test acc {last['test_accuracy'].mean() * 100:.1f} % "
        f"(seed mean; test pooled over folds){_noise(out_dir / 'keyframe_noise.parquet')}"
    )


def _noise(path: Path) -> str:
    """``; test acc at key-frame noise ±2: 51.3 %, ±5: 40.0 %`` (seed mean, folds pooled) where the run scored
    key-frame noise sets."""
    if not path.is_file():
        return ""
    noise = pd.read_parquet(path, columns=["seed", "level", "true", "pred"])
    if noise.empty:
        return ""
    acc = (noise["true"] == noise["pred"]).groupby([noise["level"], noise["seed"]]).mean().groupby(level=0).mean()
    return "; test acc at key-frame noise " + ", ".join(f"±{int(n)}: {a * 100:.1f} %" for n, a in acc.items())
