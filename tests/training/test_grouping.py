"""Fold groups of similar size: few units sit steps out, every unit trains exactly once, outputs keep their order."""

from __future__ import annotations

import numpy as np
import pytest

from memix.training.folds import Fold
from memix.training.grouping import make_groups, padded_share, sat_out_share, steps_per_epoch
from memix.training.loop import Unit

CASME2_LIKE = [9, 13, 7, 5, 19, 5, 9, 3, 15, 13, 10, 12, 8, 5, 3, 4, 39, 3, 16, 14, 2, 2, 12, 12, 7, 4]
"""Clips per subject shaped like CASME II: 26 subjects, 2 to 39 clips each, 251 in all."""


def units_for(clips: list[int], seeds: int) -> list[Unit]:
    """One unit per (seed, subject), each training on every other subject's clips (row positions only)."""
    total = sum(clips)
    folds = [Fold(i, f"s{i:02d}", np.arange(total - n), np.arange(n)) for i, n in enumerate(clips)]
    return [Unit(seed, fold) for seed in range(seeds) for fold in folds]


def consecutive(units: list[Unit], size: int) -> list[list[Unit]]:
    """Runs of ``size`` units in (seed, fold) order: the grouping that ignores sizes."""
    return [units[i : i + size] for i in range(0, len(units), size)]


def steps_of(groups: list[list[Unit]], batch: int) -> list[list[int]]:
    return [[steps_per_epoch(u, batch) for u in g] for g in groups]


@pytest.mark.parametrize(("size", "batch"), [(26, 34), (13, 34), (15, 8), (39, 8)])
def test_casme2_like_sizes_lose_under_3_percent_to_sitting_out(size, batch):
    units = units_for(CASME2_LIKE, seeds=3)
    groups = make_groups(units, size, batch)
    assert sat_out_share(steps_of(groups, batch)) < 0.03
    assert all(1 <= len(g) <= size for g in groups)
    # each unit exactly once; each group in (seed, fold) order
    flat = [(u.seed, u.fold.index) for g in groups for u in g]
    assert sorted(flat) == [(u.seed, u.fold.index) for u in units]
    assert all([(u.seed, u.fold.index) for u in g] == sorted((u.seed, u.fold.index) for u in g) for g in groups)


def test_size_blind_groups_would_waste_more():
    """The measure can fail: consecutive groups of these sizes lose more than 3 % (so the sorting matters)."""
    units = units_for(CASME2_LIKE, seeds=3)
    assert sat_out_share(steps_of(consecutive(units, 26), 34)) > 0.03
    assert sat_out_share(steps_of(make_groups(units, 26, 34), 34)) < sat_out_share(
        steps_of(consecutive(units, 26), 34))


def test_equal_units_keep_even_consecutive_groups():
    units = units_for([5] * 10, seeds=3)
    groups = make_groups(units, 15, 8)
    assert [[(u.seed, u.fold.index) for u in g] for g in groups] == [
        [(u.seed, u.fold.index) for u in g] for g in consecutive(units, 15)
    ]


def test_shares_count_sat_out_steps_and_partial_batches():
    assert sat_out_share([[4, 2], [3]]) == pytest.approx(2 / 11)  # (4+4+3) unit-steps computed, 9 used
    # units of 16 and 12 clips at batch 8: 2 + 2 steps of 8 rows computed, 16 + 12 rows used
    assert padded_share([[16, 12]], 8) == pytest.approx(1 - 28 / 32)
    assert padded_share([[17]], 8) == 0.0  # a single leftover clip is dropped, not padded
    assert sat_out_share([]) == 0.0 and make_groups([], 4, 8) == []
