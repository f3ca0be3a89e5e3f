"""Key-frame noise: where a clip's onset and apex land when each is moved by a seeded draw in [-n, n] frames (no I/O).

CausalNet (ICCV 2025) asks how a recogniser copes with errors in the annotated onset and apex; level ``n`` of
``eval.keyframe_noise`` answers it with this rule:

* **the draw**: per clip two integers, ``d_onset`` and ``d_apex``, each uniform in [-n, n], from numpy's PCG64
  seeded with ``SeedSequence([eval.keyframe_noise_seed, n, *sha256(clip_id) as 4 words])``: a clip's draw depends on
  the seed, the level and its own id only, never on which other clips there are or in what order;
* **frames are the clip's frames on disk**, in frame-number order: a shift of d moves d frames along that list (with
  contiguous numbering, d frame numbers; a missing file is skipped, not counted);
* **onset'** = the onset moved ``d_onset`` frames, clamped to [the first frame, the second-to-last frame] (an apex
  must fit after it);
* **apex'** = the apex moved ``d_apex`` frames, clamped to [the frame after onset', the last frame]: the apex stays
  strictly after the onset, so the flow still runs forward in time and never between a frame and itself.

A draw of 0 / 0 leaves the clip as annotated (its flow is the flow stage's, byte for byte). Clamping makes the
applied shift smaller than the draw near the clip's ends: both are recorded (:class:`Shift`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

RULE = (
    "onset and apex each moved by a draw in [-n, n] frames (uniform integers; PCG64 seeded with "
    "SeedSequence([keyframe_noise_seed, n, sha256(clip_id)])), counted over the clip's frames on disk; the onset "
    "clamped to [first, second-to-last frame], the apex to [the frame after the new onset, last frame]"
)
"""The rule in one sentence, for the files that record a noise set."""


@dataclass(frozen=True)
class Shift:
    """One clip's key frames at one noise level: as drawn, and the frame numbers used after clamping."""

    d_onset: int  # the draws, in frames along the clip's frames on disk
    d_apex: int
    onset: int  # the frame numbers used
    apex: int


def clip_words(clip_id: str) -> list[int]:
    """Four 32-bit words of the sha256 of ``clip_id``: a stable hash (Python's ``hash`` changes per process)."""
    digest = hashlib.sha256(str(clip_id).encode("utf-8")).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]


def draw(seed: int, level: int, clip_id: str) -> tuple[int, int]:
    """``(d_onset, d_apex)``, each uniform in [-level, level], for this clip alone (see the module docstring)."""
    if level < 0 or seed < 0:
        raise ValueError(f"key-frame noise: level {level} and seed {seed} must be >= 0")
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(level), *clip_words(clip_id)])))
    d_onset, d_apex = rng.integers(-level, level, size=2, endpoint=True)
    return int(d_onset), int(d_apex)


def shifted(frames: Sequence[int], onset: int, apex: int, d_onset: int, d_apex: int, clip_id: str = "") -> Shift:
    """Onset and apex moved along ``frames`` (the clip's frame numbers on disk) by the draws, clamped by the rule."""
    numbers = sorted(int(f) for f in frames)
    where = {n: i for i, n in enumerate(numbers)}
    name = f"clip {clip_id}: " if clip_id else ""
    if len(numbers) < 2:
        raise ValueError(f"{name}{len(numbers)} frame(s) on disk; key-frame noise needs an apex after the onset")
    for field, number in (("onset", onset), ("apex", apex)):
        if number not in where:
            raise ValueError(f"{name}{field} frame {number} is not among its frames on disk ({numbers[0]}.."
                             f"{numbers[-1]})")
    first_onset = min(max(where[onset] + d_onset, 0), len(numbers) - 2)
    new_apex = min(max(where[apex] + d_apex, first_onset + 1), len(numbers) - 1)
    return Shift(d_onset=d_onset, d_apex=d_apex, onset=numbers[first_onset], apex=numbers[new_apex])


def shift_clip(
    seed: int, level: int, clip_id: str, frames: Sequence[int], onset: int, apex: int
) -> Shift:
    """:func:`draw` then :func:`shifted`: the key frames of one clip at noise level ``level``."""
    d_onset, d_apex = draw(seed, level, clip_id)
    return shifted(frames, onset, apex, d_onset, d_apex, clip_id)


__all__ = ["RULE", "Shift", "clip_words", "draw", "shift_clip", "shifted"]
