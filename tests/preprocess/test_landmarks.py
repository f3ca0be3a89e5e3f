"""MediaPipe's native log (absl ``W0000 ...`` lines, TFLite/LiteRT ``INFO:`` lines) stays out of stderr unless
``memix.native`` is at DEBUG (``--verbose``)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from memix import log
from memix.preprocess.landmarks import LandmarkDetector

# A line MediaPipe's C++ graph writes on every FaceLandmarker it builds (mediapipe 1.2).
NATIVE_MARK = "face_landmarker_graph.cc"


def _detect_once(model: Path) -> None:
    with LandmarkDetector(model, max_faces=1) as det:
        assert det.detect(np.zeros((64, 64, 3), dtype=np.uint8)) == []


@pytest.fixture
def native_level():
    logger = logging.getLogger(log.NATIVE)
    before = logger.level
    yield logger
    logger.setLevel(before)


def test_native_log_is_silent_by_default(face_model_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    _detect_once(face_model_path)
    err = capfd.readouterr().err
    assert NATIVE_MARK not in err and "W0000" not in err and "InitGoogle" not in err, err


def test_native_log_shows_when_verbose(
    face_model_path: Path, capfd: pytest.CaptureFixture[str], native_level: logging.Logger
) -> None:
    native_level.setLevel(logging.DEBUG)
    _detect_once(face_model_path)
    assert NATIVE_MARK in capfd.readouterr().err
