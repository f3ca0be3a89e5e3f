"""Leave-one-subject-out folds and per-fold normalisation.

Kept apart from the training loop so the no-leakage rules can be tested on their own: a fold's
training rows never hold its test subject, and its normalisation statistics come from those rows only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from memix.io.flowset import channel_stats
from memix.io.views import CONSTANT_CHANNELS


@dataclass(frozen=True)
class Fold:
    """One LOSO fold: ``index`` is its position in sorted-subject order, rows are positions in the flow index."""

    index: int
    subject: str
    train_rows: np.ndarray
    test_rows: np.ndarray


def make_folds(index: pd.DataFrame) -> list[Fold]:
    """One fold per subject in sorted order; rows keep the index's order within a fold."""
    subjects = index["subject"].astype(str).to_numpy()
    if len(set(subjects)) < 2:
        raise ValueError(f"LOSO needs at least 2 subjects, found {len(set(subjects))}")
    folds = []
    for i, subject in enumerate(sorted(set(subjects))):
        is_test = subjects == subject
        folds.append(Fold(i, subject, np.flatnonzero(~is_test), np.flatnonzero(is_test)))
    return folds


def fold_stats(index: pd.DataFrame, fold: Fold, channels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std from the fold's TRAINING rows only (flowset.channel_stats on their sums).

    A channel constant by construction (:data:`memix.io.views.CONSTANT_CHANNELS`: the direction map's B channel)
    gets std 1 when its std is 0, so it normalises to 0; any other channel with std 0 is degenerate data: an error.
    """
    mean, std = channel_stats(index.iloc[fold.train_rows], channels)
    mean = np.asarray(mean, dtype=np.float64).reshape(len(channels))
    std = np.asarray(std, dtype=np.float64).reshape(len(channels))
    constant = np.array([c in CONSTANT_CHANNELS for c in channels], dtype=bool)
    std = np.where(constant & (std == 0), 1.0, std)
    if not np.all(np.isfinite(mean)) or not np.all(np.isfinite(std)) or np.any(std <= 0):
        raise ValueError(
            f"fold {fold.index} (test subject {fold.subject}): degenerate channel statistics mean={mean} std={std}"
        )
    return mean, std
