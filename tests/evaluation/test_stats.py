"""The paired bootstrap over test subjects: the same resample for both methods, deterministic, covering the true
difference on simulated data, and excluding 0 only when there is a difference."""

from __future__ import annotations

import numpy as np
import pytest

from memix.evaluation import metrics, stats

K = 5


def _simulate(rng: np.random.Generator, skill: float, shift: np.ndarray, seeds: int = 3, per_subject: int = 8):
    """(seed index, subject index, true, pred) of clips predicted right with probability skill + the subject's
    shift (shared by both methods: subjects differ in difficulty, which pairing must cancel)."""
    n_subjects = len(shift)
    s_idx, j_idx = np.meshgrid(np.arange(seeds), np.repeat(np.arange(n_subjects), per_subject), indexing="ij")
    s_idx, j_idx = s_idx.ravel(), j_idx.ravel()
    true = np.tile(np.arange(n_subjects * per_subject) % K, seeds)
    ok = rng.random(len(true)) < np.clip(skill + shift[j_idx], 0, 1)
    pred = np.where(ok, true, (true + rng.integers(1, K, len(true))) % K)
    return s_idx, j_idx, true, pred


def _cms(sim, n_subjects: int, seeds: int = 3) -> np.ndarray:
    return stats.subject_confusions(*sim, seeds, n_subjects, K)


def test_resample_counts_are_seeded_draws_of_every_subject_count():
    a = stats.resample_counts(12, 500, seed=3)
    assert a.shape == (500, 12) and (a.sum(axis=1) == 12).all() and a.min() >= 0
    np.testing.assert_array_equal(a, stats.resample_counts(12, 500, seed=3))
    assert not np.array_equal(a, stats.resample_counts(12, 500, seed=4))
    assert abs(a.mean() - 1.0) < 0.02 and (a == 0).mean() == pytest.approx((11 / 12) ** 12, abs=0.02)


def test_identical_methods_give_exactly_zero_so_the_resample_is_shared():
    rng = np.random.default_rng(0)
    sim = _simulate(rng, 0.6, rng.normal(0, 0.15, 20))
    cms = _cms(sim, 20)
    counts = stats.resample_counts(20, 1000, seed=0)
    out = stats.paired_bootstrap(cms, cms.copy(), counts)
    for name in metrics.METRICS:
        assert (out[name].delta, out[name].low, out[name].high) == (0.0, 0.0, 0.0)
        assert not out[name].significant
    # resampling the two methods independently would not cancel: the same data gives a wide interval
    other = stats.resample_counts(20, 1000, seed=1)
    diff = stats.seed_mean_scores(cms, counts)["accuracy"] - stats.seed_mean_scores(cms, other)["accuracy"]
    assert np.quantile(diff, 0.975) - np.quantile(diff, 0.025) > 0.05


def test_point_difference_is_the_difference_of_seed_mean_pooled_metrics():
    rng = np.random.default_rng(1)
    shift = rng.normal(0, 0.1, 10)
    a, b = _simulate(rng, 0.7, shift), _simulate(rng, 0.5, shift)
    out = stats.paired_bootstrap(_cms(a, 10), _cms(b, 10), stats.resample_counts(10, 200, seed=0))
    for name in metrics.METRICS:
        per_seed = []
        for s in range(3):
            ma = metrics.summary(a[2][a[0] == s], a[3][a[0] == s], K)[name]
            mb = metrics.summary(b[2][b[0] == s], b[3][b[0] == s], K)[name]
            per_seed.append(ma - mb)
        assert out[name].delta == pytest.approx(np.mean(per_seed))
        assert out[name].low <= out[name].delta <= out[name].high


def test_bootstrap_is_deterministic():
    rng = np.random.default_rng(2)
    shift = rng.normal(0, 0.1, 12)
    a, b = _cms(_simulate(rng, 0.65, shift), 12), _cms(_simulate(rng, 0.6, shift), 12)
    first = stats.paired_bootstrap(a, b, stats.resample_counts(12, 2000, seed=0))
    again = stats.paired_bootstrap(a, b, stats.resample_counts(12, 2000, seed=0))
    assert first == again


def test_intervals_cover_the_true_difference_and_exclude_zero_only_when_there_is_one():
    """100 simulated comparisons of 24 subjects: a true accuracy gain of 0.15 and no gain at all."""
    rng = np.random.default_rng(7)
    n_subjects, runs = 24, 100
    counts = stats.resample_counts(n_subjects, 400, seed=0)
    covered = significant_gain = significant_null = 0
    for _ in range(runs):
        shift = rng.normal(0, 0.1, n_subjects)
        base = _cms(_simulate(rng, 0.55, shift), n_subjects)
        better = _cms(_simulate(rng, 0.70, shift), n_subjects)
        same = _cms(_simulate(rng, 0.55, shift), n_subjects)
        gain = stats.paired_bootstrap(better, base, counts)["accuracy"]
        null = stats.paired_bootstrap(same, base, counts)["accuracy"]
        covered += gain.low <= 0.15 <= gain.high
        significant_gain += gain.significant and gain.low > 0
        significant_null += null.significant
    # nominal 95 %; percentile intervals over this few subjects run a little narrow (0.91 measured on 600 runs)
    assert covered / runs >= 0.85
    assert significant_gain == runs  # a 15-point gain on 576 clip predictions is always resolved
    assert significant_null / runs <= 0.10  # no difference: about 5 % false alarms, never most of the time


def test_mismatched_shapes_and_empty_inputs_are_refused():
    with pytest.raises(ValueError, match="matching shapes"):
        stats.paired_bootstrap(np.zeros((3, 4, K, K)), np.zeros((3, 5, K, K)), np.ones((10, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="needs subjects and resamples"):
        stats.resample_counts(0, 10, seed=0)


def test_spread_is_mean_and_sample_std():
    s = stats.Spread.of([0.60, 0.62, 0.64])
    assert s.mean == pytest.approx(0.62) and s.std == pytest.approx(0.02) and s.values == (0.60, 0.62, 0.64)
    assert stats.Spread.of([0.5]).std == 0.0
