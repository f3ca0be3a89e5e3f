"""The folds of each evaluation protocol, and per-fold normalisation.

``loso``: one fold per subject (the test subject's clips against every other subject's). The cross-dataset
protocols of a composite (``transfer.protocols``), with the sources in the order the flow index first lists them
(:func:`sources_in`):
``holdout_database`` (MEGC 2018 HDE), one fold per ordered pair of sources, training on every clip of the first and
testing on every clip of the second (a third source sits out); ``leave_one_dataset_out``, one fold per source,
testing on it and training on all the others.

Kept apart from the training loop so the no-leakage rules can be tested on their own: a fold's training rows
never hold a test clip (nor, under LOSO, its test subject; nor, across datasets, its test source), and its
normalisation statistics come from those rows only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from memix.io.flowset import channel_stats
from memix.io.views import CONSTANT_CHANNELS

PROTOCOLS = ("loso", "holdout_database", "leave_one_dataset_out")
ARROW = "->"
PLUS = "+"  # between the training sources of a leave-one-dataset-out fold's name


@dataclass(frozen=True)
class Fold:
    """One fold: ``index`` is its position in the protocol's order, rows are positions in the flow index.

    ``subject`` names what the fold tests: the test subject (``loso``), or ``<train>-><test>`` across datasets
    (``casme2->samm``; ``leave_one_dataset_out``: ``casme2+smic->samm``, every training source named, so the name
    reads alone even when a diverged fold is left out of the outputs); outputs and messages name the fold by it.
    """

    index: int
    subject: str
    train_rows: np.ndarray
    test_rows: np.ndarray
    protocol: str = "loso"

    def describe(self) -> str:
        """How a message names the fold: ``fold 3 (test subject sub04)``, ``fold 0 (train casme2, test samm)``."""
        if self.protocol in ("holdout_database", "leave_one_dataset_out"):
            train, test = self.subject.split(ARROW)
            return f"fold {self.index} (train {train.replace(PLUS, ' + ')}, test {test})"
        return f"fold {self.index} (test subject {self.subject})"


def make_folds(index: pd.DataFrame, protocol: str = "loso") -> list[Fold]:
    """The protocol's folds (module docstring); rows keep the index's order within a fold."""
    if protocol != "loso":
        return _dataset_folds(index, protocol)
    subjects = index["subject"].astype(str).to_numpy()
    if len(set(subjects)) < 2:
        raise ValueError(f"LOSO needs at least 2 subjects, found {len(set(subjects))}")
    folds = []
    for i, subject in enumerate(sorted(set(subjects))):
        is_test = subjects == subject
        folds.append(Fold(i, subject, np.flatnonzero(~is_test), np.flatnonzero(is_test)))
    return folds


def sources_in(index: pd.DataFrame) -> list[str]:
    """The datasets of a flow index in the order it first lists them (ingest sorts clips by subject id, which a
    composite prefixes with the source's name: alphabetical by source)."""
    if "dataset" not in index.columns:
        return []
    return list(dict.fromkeys(index["dataset"].astype(str)))


def _dataset_folds(index: pd.DataFrame, protocol: str) -> list[Fold]:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    sources = sources_in(index)
    if len(sources) < 2:
        raise ValueError(
            f"protocol {protocol} trains on some datasets and tests on another: the flow index holds "
            f"{sources or 'no dataset column'}; it needs a composite of at least two sources (dataset.sources)"
        )
    dataset = index["dataset"].astype(str).to_numpy()
    folds: list[Fold] = []
    if protocol == "holdout_database":
        for train in sources:
            for test in sources:
                if train != test:
                    folds.append(Fold(len(folds), f"{train}{ARROW}{test}", np.flatnonzero(dataset == train),
                                      np.flatnonzero(dataset == test), protocol))
    else:
        for test in sources:
            is_test = dataset == test
            name = PLUS.join(s for s in sources if s != test) + ARROW + test
            folds.append(Fold(len(folds), name, np.flatnonzero(~is_test), np.flatnonzero(is_test), protocol))
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
            f"{fold.describe()}: degenerate channel statistics mean={mean} std={std}"
        )
    return mean, std
