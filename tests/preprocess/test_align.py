"""Similarity alignment: geometry of the template, and a rotated/scaled face aligning to the same crop."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from memix.preprocess import align
from memix.preprocess.landmarks import LandmarkDetector, eye_centres


@pytest.mark.parametrize("angle_deg, scale", [(0.0, 1.0), (10.0, 0.8), (-25.0, 2.5)])
def test_eyes_land_level_on_the_template(angle_deg: float, scale: float) -> None:
    left = np.array([120.0, 200.0])
    t = np.deg2rad(angle_deg)
    right = left + 60.0 * scale * np.array([np.cos(t), np.sin(t)])
    affine = align.similarity_from_eyes(left, right, size=128, margin=0.25)
    got = align.apply(affine, np.stack([left, right]))
    want = np.stack(align.template(128, 0.25))
    np.testing.assert_allclose(got, want, atol=1e-9)
    assert got[0, 1] == pytest.approx(got[1, 1])  # level
    # a similarity: orthogonal rows of equal norm, no reflection
    a = affine[:, :2]
    np.testing.assert_allclose(a @ a.T, np.eye(2) * np.linalg.det(a), atol=1e-12)
    assert np.linalg.det(a) > 0


def test_margin_adds_context_and_size_scales_the_template() -> None:
    (l0, r0), (l1, r1) = align.template(128, 0.0), align.template(128, 0.5)
    assert (r1[0] - l1[0]) < (r0[0] - l0[0])  # more margin, smaller face
    (l2, r2) = align.template(256, 0.25)
    (l3, r3) = align.template(128, 0.25)
    np.testing.assert_allclose(np.stack([l2, r2]), 2 * np.stack([l3, r3]))
    for size, (left, right) in ((128, (l0, r0)), (128, (l1, r1)), (256, (l2, r2))):
        assert left[0] + right[0] == pytest.approx(size)  # centred horizontally
        assert left[1] == right[1] < size / 2  # level, in the upper half


def test_coincident_eyes_are_an_error() -> None:
    with pytest.raises(ValueError, match="coincide"):
        align.similarity_from_eyes(np.array([5.0, 5.0]), np.array([5.0, 5.0]), 64, 0.25)


def test_warp_of_greyscale_and_colour_agree() -> None:
    bgr = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    affine = align.similarity_from_eyes(np.array([200.0, 100.0]), np.array([250.0, 105.0]), 96, 0.25)
    crop = align.warp_to_crop(align.bgr_to_grey(bgr), affine, 96)
    assert crop.shape == (96, 96) and crop.dtype == np.uint8
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    np.testing.assert_array_equal(align.warp_to_crop(align.bgr_to_grey(grey[:, :, None]), affine, 96), crop)
    assert align.bgr_to_rgb(grey).shape == (512, 512, 3)


def _face_canvas() -> np.ndarray:
    """The astronaut's face in the middle of a 400x400 BGR frame."""
    bgr = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    return np.ascontiguousarray(bgr[0:400, 25:425])


def _align_face(det: LandmarkDetector, frame: np.ndarray, size: int) -> np.ndarray:
    faces = det.detect(align.bgr_to_rgb(frame))
    assert faces, "no face detected"
    affine = align.similarity_from_eyes(*eye_centres(faces[0]), size=size, margin=0.25)
    return align.warp_to_crop(align.bgr_to_grey(frame), affine, size)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(np.float64), b.ravel().astype(np.float64))[0, 1])


def test_rotated_and_scaled_face_aligns_to_the_same_crop(face_model_path: Path) -> None:
    size = 128
    frame = _face_canvas()
    centre = (frame.shape[1] / 2, frame.shape[0] / 2)
    moved = cv2.warpAffine(
        frame, cv2.getRotationMatrix2D(centre, 10.0, 0.8), frame.shape[1::-1], borderMode=cv2.BORDER_REPLICATE
    )
    with LandmarkDetector(face_model_path) as det:
        a = _align_face(det, frame, size)
        b = _align_face(det, moved, size)
        # landmarks re-detected in the two aligned crops agree
        eyes_a = np.stack(eye_centres(det.detect(align.bgr_to_rgb(cv2.resize(a, (256, 256))))[0])) / 2
        eyes_b = np.stack(eye_centres(det.detect(align.bgr_to_rgb(cv2.resize(b, (256, 256))))[0])) / 2
    assert np.abs(eyes_a - eyes_b).max() < 1.0  # ignoring the 10 deg rotation gives ~2 px
    np.testing.assert_allclose(eyes_a, np.stack(align.template(size, 0.25)), atol=3.0)
    # pixels agree too, far better than the unaligned frames do
    grey_frame, grey_moved = align.bgr_to_grey(frame), align.bgr_to_grey(moved)
    unaligned = _corr(cv2.resize(grey_frame, (size, size)), cv2.resize(grey_moved, (size, size)))
    assert _corr(a, b) > 0.95  # ~0.998 here; ignoring the rotation gives ~0.73
    assert _corr(a, b) > unaligned + 0.2
