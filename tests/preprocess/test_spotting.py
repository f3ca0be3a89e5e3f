"""Apex spotting on aligned faces: error against the synthetic generator's known apex, still clips, blinks,
determinism and input checks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from memix.config import SynthParams
from memix.preprocess import align, spotting
from memix.preprocess.landmarks import eye_centres
from memix.synth.aus import AUS, BLINK, BOTH, au_field
from memix.synth.identity import load_base_face, make_subject
from memix.synth.plan import STREAM_IDENTITY, plan_dataset, rng_for
from memix.synth.render import render_clip, time_course

SIZE, MARGIN = 128, 0.25
PARAMS = SynthParams(subjects=3, clips=12, frame_size=160, face_size=100, frames_min=8, frames_max=20)


@pytest.fixture(scope="module")
def base(face_model_path: Path):
    return load_base_face(face_model_path)


def _subject(base, params: SynthParams, number: int):
    rng = rng_for(params.seed, STREAM_IDENTITY, number)
    return make_subject(base, number, params.frame_size, params.face_size, rng)


def _aligned(subject, frames: list[np.ndarray]) -> np.ndarray:
    """Frames (RGB uint8) -> (T, SIZE, SIZE) grey crops with the neutral face's eye transform, as the faces stage
    crops with the onset's (the synthetic landmarks stand in for the detector's)."""
    left, right = eye_centres(subject.landmarks)
    affine = align.similarity_from_eyes(left, right, SIZE, MARGIN)
    return np.stack([align.warp_to_crop(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), affine, SIZE) for f in frames])


def _rendered(base, params: SynthParams) -> list[tuple[np.ndarray, int]]:
    """Each planned clip's aligned faces and the frame (from the onset) its expression peaks on."""
    out, subjects = [], {}
    for plan in plan_dataset(params):
        subject = subjects.setdefault(plan.subject, _subject(base, params, plan.subject))
        out.append((_aligned(subject, list(render_clip(subject, plan, params))), plan.apex_offset))
    return out


def test_spotted_apex_is_the_rendered_one(base) -> None:
    clips = _rendered(base, PARAMS)
    errors = np.array([abs(spotting.spot_apex(faces).apex - apex) for faces, apex in clips])
    middle = np.array([abs((len(faces) - 1) // 2 - apex) for faces, apex in clips])
    assert np.median(errors) == 0 and np.mean(errors <= 1) >= 0.9, errors
    assert errors.sum() < middle.sum()  # the middle frame is the fallback spotting has to beat
    spot = spotting.spot_apex(clips[0][0])
    assert spot.motion.shape == (len(clips[0][0]),) and spot.motion.dtype == np.float64 and spot.motion[0] == 0
    assert spot.peak == spot.motion[spot.apex] == spot.motion.max() and spot.detectable and spot.peak > spot.floor


def test_a_still_clip_is_not_detectable(base) -> None:
    still = PARAMS.model_copy(update={"apex_px_min": 0.0, "apex_px_max": 0.0, "clips": 6})
    for faces, _ in _rendered(base, still):  # noise, flicker, head drift and (sometimes) a blink, no expression
        spot = spotting.spot_apex(faces)
        assert not spot.detectable, (spot.peak, spot.floor)
        assert 1 <= spot.apex < len(faces)  # an apex is still given (never the onset itself)
    frozen = np.repeat(_rendered(base, still)[0][0][:1], 5, axis=0)
    spot = spotting.spot_apex(frozen)
    assert spot.peak < spotting.MIN_PEAK and not spot.detectable  # identical frames: round-off only


def test_a_blink_larger_than_the_expression_does_not_take_the_apex(base) -> None:
    """Lids closing 4 px at frame 3 against a 2 px smile peaking at frame 8: the smile is the apex."""
    subject = _subject(base, PARAMS, 1)
    size = subject.image.shape[0]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    smile = au_field(AUS[12], BOTH, subject.landmarks, (size, size)) * np.float32(2.0)
    blink = au_field(BLINK, BOTH, subject.landmarks, (size, size)) * np.float32(4.0)
    smile_course, blink_course = time_course(12, 8), time_course(12, 3)
    blink_course[7:] = 0.0  # the lids are open again before the smile peaks
    frames = []
    for c, b in zip(smile_course, blink_course, strict=True):
        field = np.float32(c) * smile + np.float32(b) * blink
        warped = cv2.remap(subject.image, xs - field[..., 0], ys - field[..., 1], cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_REFLECT)  # fmt: skip
        frames.append(np.clip(np.rint(warped * 255), 0, 255).astype(np.uint8))
    faces = _aligned(subject, frames)
    assert spotting.spot_apex(faces).apex == 8
    assert spotting.region_mask(SIZE).mean() < 0.9  # the eye boxes (and border) are left out
    eyes_kept = spotting.motion_curve(faces, margin=MARGIN)
    assert eyes_kept[8] > eyes_kept[3]


def test_byte_reproducible_and_opencv_threads_restored(base) -> None:
    faces, _ = _rendered(base, PARAMS.model_copy(update={"clips": 5}))[0]
    cv2.setNumThreads(3)
    try:
        first, second = spotting.spot_apex(faces), spotting.spot_apex(faces.copy())
        assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(-1)
    assert first.motion.tobytes() == second.motion.tobytes() and first.floor == second.floor
    assert spotting.motion_curve(faces).tobytes() == first.motion.tobytes()


def test_bad_input_is_refused_naming_what_was_given() -> None:
    with pytest.raises(ValueError, match=r"uint8 .*float32 \(3, 8, 8\)"):
        spotting.spot_apex(np.zeros((3, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"uint8 .*uint8 \(8, 8\)"):
        spotting.spot_apex(np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match=r"at least one square crop.*\(0, 8, 8\)"):
        spotting.motion_curve(np.zeros((0, 8, 8), np.uint8))
    one = spotting.spot_apex(np.full((1, 16, 16), 9, np.uint8))
    assert (one.apex, one.motion.tolist(), one.detectable) == (0, [0.0], False)
