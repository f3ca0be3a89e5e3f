"""Where and how much the synthetic faces move: AU fields, apex magnitude, rendered motion, landmarks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from memix.config import SynthParams
from memix.preprocess.landmarks import LandmarkDetector
from memix.synth.aus import AUS, BOTH, au_field, au_landmarks, face_scale
from memix.synth.identity import BaseFace, Subject, load_base_face, make_subject
from memix.synth.plan import ClipPlan, plan_dataset
from memix.synth.render import expression_field, render_clip, time_course

PARAMS = SynthParams(subjects=3, clips=15, frame_size=160, face_size=100, frames_min=6, frames_max=10)
QUIET = PARAMS.model_copy(update={"noise_sd": 0.0, "flicker": 0.0, "head_drift_px": 0.0, "head_rotation_deg": 0.0})
QUIET = QUIET.model_copy(update={"blink_rate": 0.0})


@pytest.fixture(scope="module")
def base(face_model_path: Path) -> BaseFace:
    return load_base_face(face_model_path)


@pytest.fixture(scope="module")
def subject(base: BaseFace) -> Subject:
    return make_subject(base, 1, PARAMS.frame_size, PARAMS.face_size, np.random.default_rng(7))


def _norm(field: np.ndarray) -> np.ndarray:
    return np.sqrt((field**2).sum(axis=2))


def _near(subject: Subject, idx: list[int], radius: float) -> np.ndarray:
    """Mask of pixels within ``radius`` px of any of the landmarks ``idx``."""
    ys, xs = np.mgrid[0 : PARAMS.frame_size, 0 : PARAMS.frame_size]
    pts = subject.landmarks[idx]
    d2 = (xs[..., None] - pts[:, 0]) ** 2 + (ys[..., None] - pts[:, 1]) ** 2
    return d2.min(axis=2) <= radius**2


def test_apex_field_magnitude_is_the_planned_one(subject: Subject) -> None:
    for clip in plan_dataset(PARAMS):
        peak = _norm(expression_field(subject, clip)).max()
        assert peak == pytest.approx(clip.magnitude, rel=1e-4)
        assert PARAMS.apex_px_min * (1 - 1e-6) <= peak <= PARAMS.apex_px_max * (1 + 1e-6)  # float32 rounding


@pytest.mark.parametrize("number", sorted(AUS))
def test_each_au_peaks_at_its_own_landmarks(subject: Subject, number: int) -> None:
    field = _norm(au_field(AUS[number], BOTH, subject.landmarks, subject.image.shape[:2]))
    y, x = np.unravel_index(np.argmax(field), field.shape)
    near = _near(subject, au_landmarks(number), 0.1 * face_scale(subject.landmarks))
    assert near[y, x], f"AU{number} peaks at ({x}, {y}), away from its landmarks"
    assert field[~_near(subject, au_landmarks(number), 0.3 * face_scale(subject.landmarks))].max() < 0.05


def test_lip_corner_moves_up_and_out_for_au12_down_for_au15(subject: Subject) -> None:
    shape = subject.image.shape[:2]
    lm = subject.landmarks
    for corner, outward in ((61, -1), (291, 1)):  # 61 is in the image's left half
        x, y = np.round(lm[corner]).astype(int)
        u12, v12 = au_field(AUS[12], BOTH, lm, shape)[y, x]
        u15, v15 = au_field(AUS[15], BOTH, lm, shape)[y, x]
        assert u12 * outward > 0.3 and v12 < -0.3  # out and up
        assert v15 > 0.5
    x, y = np.round(lm[[55, 285]].mean(axis=0)).astype(int)
    assert au_field(AUS[1], BOTH, lm, shape)[y - 2 : y + 3, x - 15 : x + 15, 1].mean() < 0  # brows up
    assert au_field(AUS[4], BOTH, lm, shape)[y - 2 : y + 3, x - 15 : x + 15, 1].mean() > 0  # brows down


def test_one_sided_au_moves_one_side_only(subject: Subject) -> None:
    shape = subject.image.shape[:2]
    left_au = _norm(au_field(AUS[12], "L", subject.landmarks, shape))  # subject's left = image right
    right_corner = np.round(subject.landmarks[291]).astype(int)
    left_corner = np.round(subject.landmarks[61]).astype(int)
    assert left_au[right_corner[1], right_corner[0]] > 0.5
    assert left_au[left_corner[1], left_corner[0]] < 0.05


def test_time_course_is_smooth_onset_apex_offset() -> None:
    c = time_course(12, 4)
    assert c[0] == 0 and c[4] == 1 and c[-1] == pytest.approx(0, abs=1e-12)
    assert np.all(np.diff(c[:5]) > 0) and np.all(np.diff(c[4:]) < 0)


def _clip(aus: tuple[tuple[int, str], ...], magnitude: float) -> ClipPlan:
    return ClipPlan(1, 0, "EP01_01", "happiness", aus, (1.0,) * len(aus), magnitude, 100, 4, 10)


def test_rendered_motion_sits_on_the_mouth_for_au12(subject: Subject) -> None:
    frames = list(render_clip(subject, _clip(((12, BOTH),), 1.5), QUIET))
    assert np.array_equal(frames[0], frames[-1])  # nothing but the AU moves, and it returns at offset
    diff = np.abs(frames[4].astype(float) - frames[0].astype(float)).mean(axis=2)
    radius = 0.12 * face_scale(subject.landmarks)
    mouth = diff[_near(subject, [61, 291], radius)].mean()
    brows = diff[_near(subject, [55, 285, 46, 276], radius)].mean()
    assert mouth > 1.0 and mouth > 10 * brows
    assert diff[~_near(subject, au_landmarks(12), 0.35 * face_scale(subject.landmarks))].max() < 1.0


def test_nuisance_knobs_add_change_outside_the_au(subject: Subject) -> None:
    noisy = QUIET.model_copy(update={"head_drift_px": 0.5, "flicker": 0.05, "noise_sd": 2.0, "blink_rate": 1.0})
    frames = list(render_clip(subject, _clip(((12, BOTH),), 1.0), noisy))
    away = ~_near(subject, au_landmarks(12), 0.35 * face_scale(subject.landmarks))
    assert np.abs(frames[-1].astype(float) - frames[0].astype(float))[away].mean() > 1.0


def test_subject_landmarks_match_mediapipe_on_the_rendered_face(subject: Subject, face_model_path: Path) -> None:
    frame = np.clip(np.rint(subject.image * 255), 0, 255).astype(np.uint8)
    with LandmarkDetector(face_model_path, max_faces=1) as det:
        faces = det.detect(frame)
    assert faces, "MediaPipe finds no face in a synthetic subject"
    err = np.linalg.norm(faces[0][:, :2] - subject.landmarks, axis=1)
    assert np.median(err) < 0.04 * face_scale(subject.landmarks)
