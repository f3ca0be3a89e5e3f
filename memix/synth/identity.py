"""Synthetic subjects: one real face photo, varied per subject by geometry and photometry.

The photo is scikit-image's ``astronaut`` (public domain, shipped with the package). Its landmarks are
detected once with MediaPipe; each subject's landmarks follow from the known transform, so motion can
be placed on the subject's own brows, eyes and mouth without detecting again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from memix.preprocess.landmarks import LandmarkDetector
from memix.synth.aus import face_scale

# face_size is the face box side (forehead to chin, as a detector's box); the landmarks span less of it.
LANDMARK_SPAN = 0.8


@dataclass(frozen=True)
class BaseFace:
    """The source photo (float32 RGB in [0, 1]) and its 478 landmarks in pixels."""

    image: np.ndarray
    landmarks: np.ndarray


@dataclass(frozen=True)
class Subject:
    """A subject's neutral face at frame size, its landmarks there, and the head mask motion acts on."""

    number: int
    image: np.ndarray  # (F, F, 3) float32 RGB in [0, 1]
    landmarks: np.ndarray  # (478, 2) float32 pixels in the frame
    head_mask: np.ndarray  # (F, F) float32 in [0, 1]: 1 on the head, 0 on the background


def load_base_face(model_path: Path) -> BaseFace:
    """Read the astronaut photo and detect its landmarks (rounded to 1/100 px for stable bytes)."""
    import skimage.data

    rgb = skimage.data.astronaut()
    with LandmarkDetector(model_path, max_faces=1) as detector:
        faces = detector.detect(rgb)
    if not faces:
        raise RuntimeError(f"no face found in skimage.data.astronaut() with the face model {model_path}")
    landmarks = np.round(faces[0][:, :2].astype(np.float64), 2).astype(np.float32)
    return BaseFace(image=rgb.astype(np.float32) / 255.0, landmarks=landmarks)


def _bilinear(field: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Sample an (H, W, C) field at float points (N, 2) with edge clamping."""
    h, w = field.shape[:2]
    x = np.clip(pts[:, 0], 0, w - 1.001)
    y = np.clip(pts[:, 1], 0, h - 1.001)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    return (
        field[y0, x0] * (1 - fx) * (1 - fy)
        + field[y0, x0 + 1] * fx * (1 - fy)
        + field[y0 + 1, x0] * (1 - fx) * fy
        + field[y0 + 1, x0 + 1] * fx * fy
    )


def make_subject(base: BaseFace, number: int, frame_size: int, face_size: int, rng: np.random.Generator) -> Subject:
    """Draw one subject: scale, rotation, offset, a smooth shape warp, gain, gamma, colour cast, background."""
    f = frame_size
    src_lm = base.landmarks.astype(np.float64)
    src_centre = (src_lm.min(axis=0) + src_lm.max(axis=0)) / 2
    span = face_size * LANDMARK_SPAN * rng.uniform(0.93, 1.07)
    scale = span / face_scale(src_lm)
    angle = np.deg2rad(rng.uniform(-5.0, 5.0))
    centre = np.array([f / 2, f / 2 + 0.06 * face_size]) + rng.uniform(-0.04, 0.04, 2) * f
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    fwd = scale * rot  # p = fwd @ (q - src_centre) + centre
    inv = np.linalg.inv(fwd)

    # Smooth random shape warp in frame pixels: identity by geometry beyond a similarity transform.
    coarse = rng.normal(0.0, 0.025 * face_size, (5, 5, 2)).astype(np.float32)
    warp = cv2.resize(coarse, (f, f), interpolation=cv2.INTER_CUBIC)
    ys, xs = np.mgrid[0:f, 0:f].astype(np.float64)
    px, py = xs + warp[..., 0], ys + warp[..., 1]
    qx = inv[0, 0] * (px - centre[0]) + inv[0, 1] * (py - centre[1]) + src_centre[0]
    qy = inv[1, 0] * (px - centre[0]) + inv[1, 1] * (py - centre[1]) + src_centre[1]
    image = cv2.remap(
        base.image, qx.astype(np.float32), qy.astype(np.float32), cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
    )

    # Landmarks: solve p + warp(p) = fwd(q) by fixed-point iteration (the warp is small and smooth).
    target = (src_lm - src_centre) @ fwd.T + centre
    lm = target.copy()
    for _ in range(8):
        lm = target - _bilinear(warp, lm)

    # Photometry: gamma, gain, colour cast.
    image = np.clip(image, 0.0, 1.0) ** np.float32(rng.uniform(0.8, 1.25))
    cast = rng.normal(1.0, 0.05, 3) * rng.uniform(0.85, 1.15)
    image = image * cast.astype(np.float32)

    # Head mask: an ellipse round the landmarks (hair included), feathered; plain graded background.
    lm_centre = (lm.min(axis=0) + lm.max(axis=0)) / 2
    mask = np.zeros((f, f), np.float32)
    axes = (int(round(0.72 * span)), int(round(0.98 * span)))
    head_centre = lm_centre - 0.16 * span * np.array([-np.sin(angle), np.cos(angle)])
    cv2.ellipse(
        mask, (int(round(head_centre[0])), int(round(head_centre[1]))), axes, float(np.rad2deg(angle)), 0, 360, 1.0, -1
    )
    mask = cv2.GaussianBlur(mask, (0, 0), 0.04 * span)
    tone = rng.uniform(0.35, 0.9)
    colour = np.clip(tone * rng.normal(1.0, 0.06, 3), 0, 1)
    gradient = rng.uniform(-0.12, 0.12, 2)
    shade = 1.0 + gradient[0] * (xs / f - 0.5) + gradient[1] * (ys / f - 0.5)
    background = (shade[..., None] * colour).astype(np.float32)
    image = mask[..., None] * image + (1 - mask[..., None]) * background
    return Subject(
        number=number,
        image=np.clip(image, 0.0, 1.0).astype(np.float32),
        landmarks=lm.astype(np.float32),
        head_mask=mask,
    )
