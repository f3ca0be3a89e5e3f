"""The dataset plan: CASME II's class proportions, names, frame ranges, AU strings, seeding."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from memix.config import SynthParams
from memix.synth.aus import AUS, BOTH, LATERAL_AUS, format_aus, parse_aus
from memix.synth.classes import CASME2_COUNTS, EMOTIONS, RECIPES, class_counts, sample_aus
from memix.synth.plan import plan_clip, plan_dataset


def test_default_class_counts_follow_casme2() -> None:
    counts = class_counts(144)
    assert sum(counts.values()) == 144
    # others > disgust > happiness ~ repression ~ surprise, each within one clip of the exact share.
    for emotion, n in CASME2_COUNTS.items():
        assert abs(counts[emotion] - 144 * n / sum(CASME2_COUNTS.values())) < 1
    assert counts["others"] > counts["disgust"] > counts["happiness"] >= counts["repression"] >= counts["surprise"]


@pytest.mark.parametrize("total", [5, 6, 12, 31])
def test_small_sets_have_every_class(total: int) -> None:
    counts = class_counts(total)
    assert sum(counts.values()) == total and min(counts.values()) >= 1


def test_plan_matches_counts_and_every_subject_has_several_clips() -> None:
    params = SynthParams()
    clips = plan_dataset(params)
    assert Counter(c.emotion for c in clips) == Counter(class_counts(params.clips))
    per_subject = Counter(c.subject for c in clips)
    assert sorted(per_subject) == list(range(1, params.subjects + 1))
    assert min(per_subject.values()) >= 3


def test_names_frames_and_apex() -> None:
    params = SynthParams(subjects=4, clips=40, first_frame_min=5, first_frame_max=900, frames_min=6, frames_max=9)
    clips = plan_dataset(params)
    names = [(c.subject, c.filename) for c in clips]
    assert len(set(names)) == len(names), "Filename must be unique per subject"
    for c in clips:
        assert re.fullmatch(r"EP\d{2}_\d{2}f?", c.filename)
        assert 5 <= c.onset <= 900 and 6 <= c.n_frames <= 9
        assert c.onset < c.apex < c.offset == c.onset + c.n_frames - 1
        assert params.apex_px_min <= c.magnitude <= params.apex_px_max


def test_seeded_per_clip_and_by_seed() -> None:
    params = SynthParams(subjects=3, clips=12)
    clips = plan_dataset(params)
    assert clips == plan_dataset(params)
    # A clip's draws depend on (seed, subject, index) only, not on the clips generated before it.
    c = clips[5]
    assert plan_clip(params, c.subject, c.index, c.filename, c.emotion) == c
    other = plan_dataset(params.model_copy(update={"seed": 1}))
    assert [(c.filename, c.aus, c.onset) for c in other] != [(c.filename, c.aus, c.onset) for c in clips]


def test_aus_follow_the_recipes_and_the_knobs() -> None:
    rng = np.random.default_rng(0)
    for emotion in EMOTIONS:
        allowed = {a for v in RECIPES[emotion] for a in (*v.core, *v.optional)}
        for _ in range(50):
            aus = sample_aus(emotion, rng, au_dropout=0.0, distractor_rate=0.0, unilateral_rate=0.0)
            numbers = {a for a, _ in aus}
            assert numbers <= allowed and numbers and all(side == BOTH for _, side in aus)
            assert any(set(v.core) | set(v.optional) == numbers for v in RECIPES[emotion])
    # With distractors always on, every clip is a recipe variant plus exactly one AU outside it.
    variants = [set(v.core) | set(v.optional) for v in RECIPES["happiness"]]
    for _ in range(30):
        numbers = {a for a, _ in sample_aus("happiness", rng, 0.0, 1.0, 0.0)}
        assert any(v < numbers and len(numbers - v) == 1 for v in variants), numbers
    sided = [sample_aus("happiness", rng, 0.0, 0.0, 1.0) for _ in range(30)]
    for aus in sided:  # one side per clip, and only for AUs coders mark as one-sided
        assert len({side for a, side in aus if a in LATERAL_AUS}) == 1
        assert all((side in "LR") == (a in LATERAL_AUS) for a, side in aus)


def test_au_strings_round_trip_casme2_style() -> None:
    assert format_aus([(10, "L"), (4, BOTH)]) == "4+L10"
    assert format_aus([(2, BOTH), (1, BOTH)]) == "1+2"
    assert parse_aus("4+L10") == [(4, BOTH), (10, "L")]
    assert parse_aus(12) == [(12, BOTH)]
    with pytest.raises(ValueError, match="AU"):
        parse_aus("4+X")
    assert set(AUS) == {1, 2, 4, 6, 9, 10, 12, 14, 15, 17, 25, 26}


def test_too_few_clips_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="synth.clips"):
        plan_dataset(SynthParams(subjects=8, clips=6))
