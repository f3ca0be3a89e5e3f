"""Emotion classes as overlapping AU recipes, and CASME II's class proportions.

The recipes follow what CASME II's coders wrote: happiness is mostly AU6+12, surprise AU1+2 (+25/26),
disgust AU4 with AU9/10, repression AU14/15/17, and "others" a mix that shares AU4 with disgust and
one-sided brow or lip movements with the rest. So classes are learnable from where the motion is, but
no single AU separates them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memix.synth.aus import AUS, BOTH, LATERAL_AUS, SIDES

# Emotion -> clip count in CASME II's 5-class task (246-247 clips depending on the sheet release).
CASME2_COUNTS: dict[str, int] = {"others": 99, "disgust": 63, "happiness": 32, "repression": 27, "surprise": 25}
EMOTIONS: tuple[str, ...] = ("happiness", "repression", "disgust", "surprise", "others")


@dataclass(frozen=True)
class Variant:
    """One way a class shows: AUs always present, AUs added unless dropped, and the variant's weight."""

    weight: float
    core: tuple[int, ...]
    optional: tuple[int, ...] = ()


RECIPES: dict[str, tuple[Variant, ...]] = {
    "happiness": (Variant(0.55, (12,), (6,)), Variant(0.3, (6, 12)), Variant(0.15, (12,), (25,))),
    "repression": (
        Variant(0.3, (14,)),
        Variant(0.25, (15,), (17,)),
        Variant(0.25, (17,)),
        Variant(0.2, (14, 17)),
    ),
    "disgust": (
        Variant(0.3, (4, 9)),
        Variant(0.25, (4, 10)),
        Variant(0.15, (9,), (10,)),
        Variant(0.1, (10,)),
        Variant(0.2, (4,), (9,)),
    ),
    "surprise": (Variant(0.6, (1, 2), (25,)), Variant(0.15, (1, 2, 26)), Variant(0.25, (1,), (2,))),
    "others": (
        Variant(0.35, (4,)),
        Variant(0.15, (1, 4)),
        Variant(0.15, (2,)),
        Variant(0.1, (14,)),
        Variant(0.1, (17,)),
        Variant(0.15, (6,)),
    ),
}

# AUs a distractor is drawn from: the pools of the other classes.
_POOLS = {e: sorted({a for v in RECIPES[e] for a in (*v.core, *v.optional)}) for e in EMOTIONS}


def class_counts(total: int, proportions: dict[str, int] | None = None) -> dict[str, int]:
    """``proportions`` (emotion -> weight; CASME II's by default) scaled to ``total`` clips (largest remainder),
    at least one clip per emotion."""
    proportions = CASME2_COUNTS if proportions is None else proportions
    unknown = sorted(set(proportions) - set(EMOTIONS))
    if unknown:
        raise ValueError(f"no recipe for emotion(s) {unknown} (have {list(EMOTIONS)})")
    if total < len(proportions):
        raise ValueError(f"synth.clips must be at least {len(proportions)} (one per class), got {total}")
    whole = sum(proportions.values())
    exact = {e: total * n / whole for e, n in proportions.items()}
    counts = {e: int(np.floor(x)) for e, x in exact.items()}
    for e in sorted(exact, key=lambda e: (counts[e] - exact[e], e))[: total - sum(counts.values())]:
        counts[e] += 1
    for e in (e for e in EMOTIONS if e in proportions):
        if counts[e] == 0:
            counts[max(counts, key=lambda k: (counts[k], k))] -= 1
            counts[e] = 1
    return counts


def sample_aus(
    emotion: str, rng: np.random.Generator, au_dropout: float, distractor_rate: float, unilateral_rate: float
) -> list[tuple[int, str]]:
    """Draw the (AU, side) list of one clip of ``emotion``; ``side`` is ``B``, ``R`` or ``L``."""
    variants = RECIPES[emotion]
    weights = np.array([v.weight for v in variants])
    variant = variants[int(rng.choice(len(variants), p=weights / weights.sum()))]
    numbers = list(variant.core) + [a for a in variant.optional if rng.random() >= au_dropout]
    if rng.random() < distractor_rate:
        foreign = sorted({a for e in EMOTIONS if e != emotion for a in _POOLS[e]} - set(numbers))
        numbers.append(int(rng.choice(foreign)))
    aus = []
    one_sided = rng.random() < unilateral_rate
    side = SIDES[int(rng.integers(2))]
    for number in sorted(set(numbers)):
        if number not in AUS:
            raise KeyError(f"AU{number} has no displacement model")
        aus.append((number, side if one_sided and number in LATERAL_AUS else BOTH))
    return aus
