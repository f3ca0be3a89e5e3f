"""Which units train together: groups of similar steps per epoch, so few sit steps out.

A unit's result does not depend on its group (:mod:`memix.training.loop`), so this module changes speed only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from memix.training.units import Unit, batch_bounds

MAX_SAT_OUT = 0.03
"""Most of a grouping's compute that may go to units sitting steps out; more groups are formed to stay below it."""


def steps_per_epoch(unit: Unit, batch_size: int) -> int:
    """Training steps one epoch of ``unit`` takes (its group runs as many as its largest unit)."""
    return len(batch_bounds(len(unit.fold.train_rows), batch_size))


def sat_out_share(groups: Sequence[Sequence[int]]) -> float:
    """Share of a grouping's compute spent on units that sit a step out, from each group's units' steps per epoch:
    a group computes ``len(group) x max(steps)`` unit-steps of a full (G, B) batch, its units use ``sum(steps)``."""
    computed = sum(len(g) * max(g) for g in groups if g)
    return 1 - sum(sum(g) for g in groups) / computed if computed else 0.0


def padded_share(groups: Sequence[Sequence[int]], batch_size: int) -> float:
    """Share of a grouping's computed rows that hold no training clip, from each group's units' training-set
    sizes: sat-out steps plus each unit's last partial batch (every step computes ``batch_size`` rows per unit)."""
    steps = [[len(batch_bounds(n, batch_size)) for n in g] for g in groups]
    used = sum(hi - lo for g in groups for n in g for lo, hi in batch_bounds(n, batch_size))
    computed = batch_size * sum(len(s) * max(s) for s in steps if s)
    return 1 - used / computed if computed else 0.0


def make_groups(units: list[Unit], size: int, batch_size: int) -> list[list[Unit]]:
    """Groups of at most ``size`` units of similar steps per epoch, so few sit steps out (a group runs as many
    steps as its largest unit): the units sorted by steps, cut where the compute is least (units x their group's
    steps), into the fewest groups that keep the sat-out share under ``MAX_SAT_OUT``; the largest groups first (a
    worker pool then finishes together). A unit's result does not depend on its group, so this changes speed only;
    each group lists its units in the given order (seed, then fold)."""
    if not units:
        return []
    steps = [steps_per_epoch(u, batch_size) for u in units]
    order = sorted(range(len(units)), key=lambda i: (-steps[i], i))
    cuts = _cheapest_cuts([steps[i] for i in order], size, math.ceil(len(units) / size))
    groups = [sorted(order[a:b]) for a, b in cuts]
    groups.sort(key=lambda g: (-len(g) * max(steps[i] for i in g), g[0]))
    return [[units[i] for i in g] for g in groups]


def _cheapest_cuts(steps: list[int], size: int, fewest: int) -> list[tuple[int, int]]:
    """Split descending ``steps`` into runs of 1..``size`` with the least compute (sum of run length x its first,
    largest value), ties going to the more even split: the fewest runs (at least ``fewest``) whose sat-out share
    is under ``MAX_SAT_OUT`` (dynamic programming over the cut points, one more run at a time)."""
    n, inf = len(steps), (math.inf, math.inf)
    best = [[(0, 0)] + [inf] * n]  # best[k][end]: (compute, sum of squared run lengths) of steps[:end] in k runs
    back: list[list[int]] = [[0] * (n + 1)]
    while True:
        k = len(best)
        row, links = [inf] * (n + 1), [0] * (n + 1)
        for end in range(k, n + 1):
            for start in range(max(k - 1, end - size), end):
                if best[k - 1][start] == inf:
                    continue
                length = end - start
                cost = (best[k - 1][start][0] + length * steps[start], best[k - 1][start][1] + length * length)
                if cost < row[end]:
                    row[end], links[end] = cost, start
        best.append(row)
        back.append(links)
        if k < fewest or row[n] == inf:
            continue
        cuts, end = [], n
        for j in range(k, 0, -1):
            cuts.append((back[j][end], end))
            end = back[j][end]
        cuts.reverse()
        if k == n or sat_out_share([steps[a:b] for a, b in cuts]) < MAX_SAT_OUT:
            return cuts
