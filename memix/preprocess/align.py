"""Similarity alignment of a face to a fixed square template from its two eye centres.

Why eyes only: a similarity (rotation, uniform scale, shift) has four degrees of freedom and two points
fix it exactly, so the template is reproducible and the eyes land on the same pixels in every clip.
The transform found on the onset frame is reused for every later frame of the clip: re-fitting per
frame adds landmark jitter that optical flow would read as motion.

Template, in units of the inter-ocular distance (IOD, between the eye centres): a tight face box is
``FACE_SIDE_IOD`` IOD square with the eye line ``EYES_ABOVE_CENTRE_IOD`` IOD above its centre; the crop
is that box enlarged by ``1 + margin`` (``margin`` 0.25 -> 25 % more context, split evenly on each side).
"""

from __future__ import annotations

import cv2
import numpy as np

FACE_SIDE_IOD = 3.0  # brow-to-chin height and cheek-to-cheek width are both about 2-3 IOD
EYES_ABOVE_CENTRE_IOD = 0.4  # the eye line sits above the face's centre


def template(size: int, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Where the eye in the image's left half and the one in its right half land in a ``size`` px crop."""
    iod = size / (FACE_SIDE_IOD * (1.0 + margin))
    eye_y = size / 2.0 - EYES_ABOVE_CENTRE_IOD * iod
    return np.array([size / 2.0 - iod / 2.0, eye_y]), np.array([size / 2.0 + iod / 2.0, eye_y])


def similarity_from_eyes(left: np.ndarray, right: np.ndarray, size: int, margin: float) -> np.ndarray:
    """The 2x3 affine (source px -> crop px) that puts the eye centres level on the template's eye points."""
    left = np.asarray(left, dtype=np.float64)
    right = np.asarray(right, dtype=np.float64)
    d = right - left
    iod = float(np.hypot(d[0], d[1]))
    if not np.isfinite(iod) or iod < 1e-6:
        raise ValueError(f"eye centres {left.tolist()} and {right.tolist()} coincide; cannot align")
    dst_left, dst_right = template(size, margin)
    scale = float(dst_right[0] - dst_left[0]) / iod
    cos, sin = scale * d[0] / iod, scale * d[1] / iod
    rot = np.array([[cos, sin], [-sin, cos]])  # rotates the eye vector onto +x and scales it
    shift = dst_left - rot @ left
    return np.hstack([rot, shift[:, None]])


def warp_to_crop(grey: np.ndarray, affine: np.ndarray, size: int) -> np.ndarray:
    """Apply ``affine`` to a greyscale uint8 frame; edge pixels are replicated (no black wedges for flow)."""
    if grey.ndim != 2:
        raise ValueError(f"expected a greyscale HxW frame, got shape {grey.shape}")
    return cv2.warpAffine(
        grey,
        np.asarray(affine, dtype=np.float64),
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def apply(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) source points through ``affine`` into crop coordinates."""
    pts = np.asarray(points, dtype=np.float64)[:, :2]
    return pts @ np.asarray(affine)[:, :2].T + np.asarray(affine)[:, 2]


def bgr_to_grey(frame: np.ndarray) -> np.ndarray:
    """HxW, HxWx1, BGR or BGRA uint8 (as cv2 reads it) -> HxW uint8."""
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 1:
        return frame[:, :, 0]
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"unsupported frame shape {frame.shape}")


def bgr_to_rgb(frame: np.ndarray) -> np.ndarray:
    """HxW, HxWx1, BGR or BGRA uint8 (as cv2 reads it) -> HxWx3 RGB for MediaPipe."""
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
        return cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2RGB)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
    raise ValueError(f"unsupported frame shape {frame.shape}")
