"""Statistics of the comparison: mean and spread over seeds, and a paired bootstrap over test subjects.

Seeds alone are a weak test (three runs give a noisy std, and overlapping mean ± std intervals say little).
The bootstrap asks how much a method's advantage over the baseline depends on which subjects happened to be in
the test pool: it resamples the test subjects with replacement, applies THE SAME resample to both methods
(paired: both are scored on the same clips), keeps every seed in each resample, and recomputes the table's own
figure, the seed mean of the pooled metric, for both; the 2.5th and 97.5th percentiles of the difference are
the 95 % interval. A difference is called significant only when that interval excludes 0. With few subjects
percentile intervals run a little narrow: simulated comparisons with 12 and 24 subjects covered the true
difference 92 % and 91 % of the time (tests/evaluation/test_stats.py simulates the same setting).

Vectorised: each (seed, subject) gets its confusion matrix once; a resample is a vector of subject counts, so
its pooled matrices are one ``einsum`` of counts with those matrices, and every resample is scored at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from memix.evaluation import metrics

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Spread:
    """Mean and sample standard deviation over seeds (std 0 with one seed)."""

    mean: float
    std: float
    values: tuple[float, ...]

    @classmethod
    def of(cls, values: list[float] | tuple[float, ...]) -> Spread:
        n = len(values)
        if n == 0:
            raise ValueError("no values to summarise")
        mean = math.fsum(values) / n
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
        return cls(mean, std, tuple(values))


@dataclass(frozen=True)
class Interval:
    """The bootstrap interval of a difference (method minus baseline) and the point difference it is about."""

    delta: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        """True when the interval excludes 0."""
        return self.low > 0 or self.high < 0


def resample_counts(n_subjects: int, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, n_subjects) counts: how often each subject is drawn when ``n_subjects`` are drawn with
    replacement; seeded, so every run (and every method) gets the same resamples."""
    if n_subjects < 1 or n_resamples < 1:
        raise ValueError(f"bootstrap needs subjects and resamples (got {n_subjects} and {n_resamples})")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_subjects, size=(n_resamples, n_subjects))
    counts = np.zeros((n_resamples, n_subjects), dtype=np.int64)
    np.add.at(counts, (np.arange(n_resamples)[:, None], draws), 1)
    return counts


def subject_confusions(
    seed_idx: np.ndarray, subject_idx: np.ndarray, true: np.ndarray, pred: np.ndarray,
    n_seeds: int, n_subjects: int, num_classes: int,
) -> np.ndarray:
    """(n_seeds, n_subjects, K, K) count matrices from one row per selected clip prediction."""
    group = np.asarray(seed_idx, dtype=np.int64) * n_subjects + subject_idx
    cms = metrics.confusions(group, np.asarray(true), np.asarray(pred), n_seeds * n_subjects, num_classes)
    return cms.reshape(n_seeds, n_subjects, num_classes, num_classes)


def seed_mean_scores(cms: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Per resample (rows of ``counts``), the seed mean of each pooled metric: shape (n_resamples,) each."""
    pooled = np.einsum("bj,sjkl->bskl", counts, cms)  # integer sums: exact, the same on every machine
    return {name: value.mean(axis=1) for name, value in metrics.from_confusion(pooled).items()}


def paired_bootstrap(cms_method: np.ndarray, cms_base: np.ndarray, counts: np.ndarray) -> dict[str, Interval]:
    """Per metric (accuracy, uf1, uar), the percentile interval of (method - baseline) over the resamples.

    Both arrays are (seeds, subjects, K, K) over the same seeds and subjects in the same order, and both
    are scored on the same resamples ``counts``; ``delta`` is the difference on the original sample.
    """
    if cms_method.shape != cms_base.shape:
        raise ValueError(f"paired bootstrap needs matching shapes, got {cms_method.shape} and {cms_base.shape}")
    once = np.ones((1, cms_method.shape[1]), dtype=np.int64)
    point_m, point_b = seed_mean_scores(cms_method, once), seed_mean_scores(cms_base, once)
    boot_m, boot_b = seed_mean_scores(cms_method, counts), seed_mean_scores(cms_base, counts)
    tail = (1 - CONFIDENCE) / 2
    out = {}
    for name in metrics.METRICS:
        diff = boot_m[name] - boot_b[name]
        low, high = np.quantile(diff, [tail, 1 - tail])
        out[name] = Interval(float(point_m[name][0] - point_b[name][0]), float(low), float(high))
    return out
