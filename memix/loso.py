"""Leave-one-subject-out folds and per-fold normalisation.

Kept apart from the training loop so the no-leakage rules can be tested on their own: a fold's
training rows never hold its test subject, and its normalisation statistics come from those rows only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

REQUIRED_COLUMNS = ("clip_id", "subject", "label", "label_id", "n_pixels")


@dataclass(frozen=True)
class Fold:
    """One LOSO fold: ``index`` is its position in sorted-subject order, rows are positions in the flow index."""

    index: int
    subject: str
    train_rows: np.ndarray
    test_rows: np.ndarray


def validate_index(index: pd.DataFrame, channels: list[str], source: str | Path) -> None:
    """Fail early, naming ``source`` and the column or clip, if the flow index cannot drive LOSO."""
    needed = [*REQUIRED_COLUMNS, *(f"sum_{c}" for c in channels), *(f"sumsq_{c}" for c in channels)]
    missing = [c for c in needed if c not in index.columns]
    if missing:
        raise ValueError(f"{source}: flow index lacks column(s) {', '.join(missing)}")
    if len(index) == 0:
        raise ValueError(f"{source}: flow index has no clips")
    dup = index["clip_id"][index["clip_id"].duplicated()]
    if len(dup):
        raise ValueError(f"{source}: clip_id {dup.iloc[0]!r} appears more than once")
    ids = pd.to_numeric(index["label_id"], errors="coerce")
    bad = index["clip_id"][ids.isna() | (ids < 0) | (ids != ids.round())]
    if len(bad):
        raise ValueError(f"{source}: clip {bad.iloc[0]!r}: field label_id must be a non-negative integer")
    pairs = index[["label_id", "label"]].drop_duplicates()
    clash = pairs["label_id"][pairs["label_id"].duplicated()]
    if len(clash):
        raise ValueError(f"{source}: field label: label_id {int(clash.iloc[0])} maps to more than one label")
    if index["subject"].nunique() < 2:
        raise ValueError(f"{source}: LOSO needs at least 2 subjects, found {index['subject'].nunique()}")


def read_channels(flow_dir: Path) -> list[str]:
    """Channel names of a flow shard folder, from its ``stats.json``."""
    path = Path(flow_dir) / "stats.json"
    try:
        channels = json.loads(path.read_text())["channels"]
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing (is {flow_dir} a flow stage output?)") from None
    except (KeyError, TypeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: field channels unreadable ({err})") from None
    if not isinstance(channels, list) or not channels or not all(isinstance(c, str) for c in channels):
        raise ValueError(f"{path}: field channels must be a non-empty list of names, got {channels!r}")
    return channels


def num_classes(index: pd.DataFrame) -> int:
    """Classes over the WHOLE index (max label_id + 1), so every fold scores the same K classes."""
    return int(index["label_id"].max()) + 1


def class_names(index: pd.DataFrame) -> list[str]:
    """Name per label_id; ids no clip carries get ``class_<k>``."""
    names = dict(zip(index["label_id"].astype(int), index["label"].astype(str), strict=True))
    return [names.get(k, f"class_{k}") for k in range(num_classes(index))]


def make_folds(index: pd.DataFrame) -> list[Fold]:
    """One fold per subject in sorted order; rows keep the index's order within a fold."""
    subjects = index["subject"].astype(str).to_numpy()
    folds = []
    for i, subject in enumerate(sorted(set(subjects))):
        is_test = subjects == subject
        folds.append(Fold(i, subject, np.flatnonzero(~is_test), np.flatnonzero(is_test)))
    return folds


def fold_stats(index: pd.DataFrame, fold: Fold, channels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std from the fold's TRAINING rows only (flow.channel_stats on their sums)."""
    from memix.flow import channel_stats

    mean, std = channel_stats(index.iloc[fold.train_rows], channels)
    mean = np.asarray(mean, dtype=np.float64).reshape(len(channels))
    std = np.asarray(std, dtype=np.float64).reshape(len(channels))
    if not np.all(np.isfinite(mean)) or not np.all(np.isfinite(std)) or np.any(std <= 0):
        raise ValueError(
            f"fold {fold.index} (test subject {fold.subject}): degenerate channel statistics mean={mean} std={std}"
        )
    return mean, std
