"""Key-frame noise in the evaluation and the table: how each method's figures fall as the onset and apex move.

Training scores each LOSO unit's last-epoch model on its test clips in every key-frame noise set
(``keyframe_noise.parquet``, :mod:`memix.training.outputs`); level 0 is the unshifted test set, i.e. the ``last``
rule's rows of ``predictions.parquet``. Per seed the folds are pooled and Acc, UF1, UAR computed over every class, as
for the other figures (:mod:`memix.evaluation.metrics`); the table shows their seed mean ± sd. No epoch is chosen
here: every level is the same model, the last epoch's, so the levels differ in their inputs alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from memix.evaluation import metrics, stats
from memix.io.checks import check_rows
from memix.preprocess.keyframe_shift import RULE

FILE = "keyframe_noise.parquet"
COLUMNS = ("seed", "clip_id", "subject", "dataset", "fold", "level", "true", "pred")
MODEL = "each fold's last-epoch model (the rows of the last rule); level 0: the unshifted test clips"


def read(path: Path, levels: list[int], k: int) -> pd.DataFrame:
    """The rows of ``levels`` in ``path`` (train's keyframe_noise.parquet); errors name the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: key-frame noise predictions not found (eval.keyframe_noise is {levels}: "
                                "rerun the method's train stage)")
    try:
        noise = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for damaged files
        raise ValueError(f"{path}: unreadable parquet ({err})") from None
    missing = [c for c in (*COLUMNS, *(f"prob_{j}" for j in range(k))) if c not in noise.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    noise = check_rows(noise, path, k, ("seed", "fold", "level", "true", "pred"), ("seed", "level", "clip_id"))
    found = sorted(int(n) for n in noise["level"].unique())
    if found != sorted(levels):
        raise ValueError(f"{path}: holds levels {found}, eval.keyframe_noise is {sorted(levels)} (rerun the "
                         "method's train stage)")
    return noise


def section(last: pd.DataFrame, noise: pd.DataFrame, k: int, levels: list[int], seed: int, path: Path
            ) -> dict[str, Any]:
    """metrics.json's ``keyframe_noise``: per level (0 first) each seed's pooled figures and their mean ± sd.

    ``last``: the ``last`` rule's rows of predictions.parquet; each level must score exactly those clips, each in
    its fold, with the same truth (else an error naming ``path``)."""
    key = ["seed", "fold", "clip_id", "true"]
    want = last[key].sort_values(key).reset_index(drop=True)
    out_levels = [_level(0, last, k)]
    for level in sorted(levels):
        rows = noise[noise["level"] == level]
        got = rows[key].sort_values(key).reset_index(drop=True)
        if not got.equals(want):
            raise ValueError(f"{path}: level {level} does not score the clips (seed, fold, truth) of the last "
                             "epoch's predictions in predictions.parquet: rerun the method's train stage")
        out_levels.append(_level(level, rows, k))
    return {"seed": int(seed), "rule": RULE, "model": MODEL, "levels": out_levels}


def _level(level: int, rows: pd.DataFrame, k: int) -> dict[str, Any]:
    per_seed = [
        {"seed": int(s), **metrics.summary(part["true"].to_numpy(), part["pred"].to_numpy(), k)}
        for s, part in rows.groupby("seed", sort=True)
    ]
    mean = {}
    for m in metrics.METRICS:
        spread = stats.Spread.of([entry[m] for entry in per_seed])
        mean[m] = {"mean": spread.mean, "std": spread.std}
    return {"level": int(level), "per_seed": per_seed, "mean": mean}


def spreads(content: dict[str, Any], levels: list[int], path: Path) -> dict[int, dict[str, stats.Spread]]:
    """Level -> metric -> spread over seeds, from a method's metrics.json ``content`` (level 0 included); an
    evaluation without exactly ``levels`` is refused, naming ``path``."""
    section_ = content.get("keyframe_noise")
    if not isinstance(section_, dict) or not isinstance(section_.get("levels"), list):
        raise ValueError(f"{path}: no key-frame noise figures, eval.keyframe_noise is {levels} (rerun its train and "
                         "evaluate stages)")
    found = {int(entry["level"]): entry for entry in section_["levels"]}
    if sorted(found) != [0, *sorted(levels)]:
        raise ValueError(f"{path}: key-frame noise levels {sorted(found)}, eval.keyframe_noise is {sorted(levels)} "
                         "(rerun its train and evaluate stages)")
    return {
        level: {m: stats.Spread.of([float(s[m]) for s in entry["per_seed"]]) for m in metrics.METRICS}
        for level, entry in sorted(found.items())
    }


__all__ = ["COLUMNS", "FILE", "MODEL", "read", "section", "spreads"]
