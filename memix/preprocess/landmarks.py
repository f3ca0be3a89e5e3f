"""MediaPipe Tasks FaceLandmarker behind one small context manager.

Shared by the synthetic generator (to place AU motion on a real face) and the faces stage (to align).
Returns landmarks in pixel coordinates, largest face first, for greyscale or colour uint8 frames. MediaPipe's
native log is captured around each call into it (:func:`memix.log.native_stderr`; shown with ``--verbose``).
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import numpy as np

from memix.log import native_stderr
from memix.preprocess.facemodel import FaceModelError, check_bundle

# Landmark indices of the 478-point MediaPipe face mesh that the project uses by name.
LEFT_EYE = (33, 133, 159, 145)  # subject's right eye in the image's left half: outer, inner, top, bottom
RIGHT_EYE = (362, 263, 386, 374)


class LandmarkDetector:
    """``with LandmarkDetector(model) as det: faces = det.detect(frame)``."""

    def __init__(self, model_path: str | Path, max_faces: int = 4, min_confidence: float = 0.3) -> None:
        self.model_path = check_bundle(model_path)
        self.max_faces = max_faces
        self.min_confidence = min_confidence
        self._landmarker = None

    def __enter__(self) -> LandmarkDetector:
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.model_path)),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=self.max_faces,
            min_face_detection_confidence=self.min_confidence,
            min_face_presence_confidence=self.min_confidence,
            min_tracking_confidence=self.min_confidence,
        )
        with native_stderr(f"loading the face landmarker {self.model_path}"):
            try:
                self._landmarker = vision.FaceLandmarker.create_from_options(options)
            except (RuntimeError, ValueError) as err:
                raise FaceModelError(
                    f"{self.model_path}: MediaPipe cannot load this face model ({err}); delete it and run "
                    "`dvc repro face_model` to fetch the pinned file again"
                ) from err
            self._landmarker.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._landmarker is not None:
            with native_stderr("closing the face landmarker"):
                self._landmarker.__exit__(exc_type, exc, tb)
            self._landmarker = None

    def detect(self, frame: np.ndarray) -> list[np.ndarray]:
        """All faces in an RGB or greyscale ``frame`` as (478, 3) float32 arrays (x, y in pixels; z relative),
        largest first."""
        import mediapipe as mp

        if self._landmarker is None:
            raise RuntimeError("use LandmarkDetector as a context manager")
        rgb = rgb_channels(frame)
        h, w = rgb.shape[:2]
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        with native_stderr("face landmark detection"):
            result = self._landmarker.detect(image)
        faces = []
        for lms in result.face_landmarks:
            pts = np.array([[p.x * w, p.y * h, p.z * w] for p in lms], dtype=np.float32)
            faces.append(pts)
        faces.sort(key=lambda p: -float(np.ptp(p[:, 0]) * np.ptp(p[:, 1])))
        return faces


def rgb_channels(frame: np.ndarray) -> np.ndarray:
    """An RGB(A) or greyscale uint8 frame as the HxWx3 array MediaPipe takes; colour order is kept, not converted
    (frames read with OpenCV are BGR: convert them first with ``memix.preprocess.align.bgr_to_rgb``)."""
    if frame.dtype != np.uint8:
        raise TypeError(f"expected a uint8 frame, got {frame.dtype}")
    if frame.ndim == 2:
        return np.repeat(frame[:, :, None], 3, axis=2)
    if frame.ndim == 3 and frame.shape[2] == 1:
        return np.repeat(frame, 3, axis=2)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return frame[:, :, :3]
    if frame.ndim == 3 and frame.shape[2] == 3:
        return frame
    raise ValueError(f"unsupported frame shape {frame.shape}")


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the eye in the image's left half and in its right half (mean of the eye's contour points)."""
    left = landmarks[list(LEFT_EYE), :2].mean(axis=0)
    right = landmarks[list(RIGHT_EYE), :2].mean(axis=0)
    return left, right
