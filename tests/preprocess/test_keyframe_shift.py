"""Key-frame noise shifts: draws in [-n, n], seeded per clip (not per position in a list), clamped to the frames on
disk with the apex after the onset."""

from __future__ import annotations

import numpy as np
import pytest

from memix.preprocess.keyframe_shift import Shift, clip_words, draw, shift_clip, shifted

IDS = [f"sub{s:02d}/EP{c:02d}_0{k}" for s in range(1, 6) for c in range(1, 9) for k in range(1, 3)]  # 80 clips


@pytest.mark.parametrize("level", [1, 2, 5])
def test_draws_stay_in_the_level_and_cover_it(level: int) -> None:
    draws = np.array([draw(0, level, cid) for cid in IDS] + [draw(s, level, IDS[0]) for s in range(200)])
    assert draws.min() >= -level and draws.max() <= level
    assert set(draws.ravel().tolist()) == set(range(-level, level + 1))  # every value occurs: uniform, not clipped
    assert (draws[:, 0] != draws[:, 1]).any()  # onset and apex drawn independently


def test_a_draw_depends_on_seed_level_and_clip_only() -> None:
    forward = {cid: draw(3, 4, cid) for cid in IDS}
    backward = {cid: draw(3, 4, cid) for cid in reversed(IDS)}
    assert forward == backward  # no state carried from one clip to the next: the order of clips does not matter
    assert forward == {cid: draw(3, 4, cid) for cid in IDS[::7]} | forward  # nor which other clips there are
    assert [draw(3, 4, cid) for cid in IDS] != [draw(4, 4, cid) for cid in IDS]  # the seed matters
    assert [draw(3, 4, cid) for cid in IDS] != [draw(3, 5, cid) for cid in IDS]  # so does the level
    assert draw(0, 0, IDS[0]) == (0, 0)
    # a stable hash: the same words in every process (Python's hash() of a str is salted per process)
    assert clip_words("sub01/EP02_01") == [0x1EDE6478, 0xC392FE02, 0xA802D7CB, 0x5CE8C929]
    assert clip_words("sub01/EP02_01") != clip_words("sub01/EP02_02")


def test_pinned_draws_do_not_change_between_versions() -> None:
    """The noise sets' bytes depend on these draws: a change to the rule or the generator must show up here."""
    assert [draw(0, 2, cid) for cid in ("sub01/EP02_01", "sub01/EP03_01", "sub02/EP01_01")] == PINNED


PINNED = [(-2, -1), (0, 2), (2, -1)]


def test_shifts_move_along_the_frames_on_disk() -> None:
    frames = [10, 11, 12, 14, 15, 16, 17, 18]  # frame 13 missing: a shift skips it
    assert shifted(frames, 11, 15, 0, 0) == Shift(0, 0, 11, 15)
    assert shifted(frames, 11, 15, 2, -1) == Shift(2, -1, 14, 14 + 1)  # onset 11 -> 14 (13 is not there)
    assert shifted(frames, 11, 15, 1, 2) == Shift(1, 2, 12, 17)


def test_clamped_to_the_clip_and_the_apex_after_the_onset() -> None:
    frames = list(range(100, 110))
    assert shifted(frames, 100, 105, -3, 0).onset == 100  # nothing before the first frame
    assert shifted(frames, 100, 109, 0, 4).apex == 109  # nor after the last
    assert shifted(frames, 100, 101, 3, -1) == Shift(3, -1, 103, 104)  # an apex before the new onset: the next frame
    assert shifted(frames, 107, 109, 5, 0) == Shift(5, 0, 108, 109)  # the onset leaves room for an apex
    two = shifted([1, 2], 1, 2, 5, -5)
    assert (two.onset, two.apex) == (1, 2)


@pytest.mark.parametrize("level", [1, 3, 8])
def test_every_shift_keeps_apex_after_onset_on_disk_within_the_level(level: int) -> None:
    rng = np.random.default_rng(level)
    for cid in IDS:
        n = int(rng.integers(2, 14))
        frames = sorted(rng.choice(np.arange(1, 40), size=n, replace=False).tolist())
        i = int(rng.integers(0, n - 1))
        onset, apex = frames[i], frames[int(rng.integers(i + 1, n))]
        s = shift_clip(0, level, cid, frames, onset, apex)
        assert s.onset in frames and s.apex in frames and s.onset < s.apex
        moved_onset = frames.index(s.onset) - frames.index(onset)
        moved_apex = frames.index(s.apex) - frames.index(apex)
        assert -level <= moved_onset <= level and -level <= moved_apex <= level
        assert (s.d_onset, s.d_apex) == draw(0, level, cid)
        if 0 <= frames.index(onset) + s.d_onset <= n - 2:
            assert moved_onset == s.d_onset  # unclamped, the onset moves by the draw exactly


def test_clips_that_cannot_be_shifted_are_named() -> None:
    with pytest.raises(ValueError, match="clip sub01/EP01: 1 frame"):
        shifted([5], 5, 5, 0, 0, "sub01/EP01")
    with pytest.raises(ValueError, match="clip sub01/EP01: apex frame 9 is not among its frames on disk"):
        shifted([5, 6, 7], 5, 9, 0, 0, "sub01/EP01")
