"""Shared fixtures: the verified face model (fetched once per machine) and small synthetic data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from memix import facemodel

CACHE = Path(os.environ.get("MEMIX_TEST_CACHE", Path.home() / ".cache" / "memix-tests"))


@pytest.fixture(scope="session")
def face_model_path() -> Path:
    """models/face_landmarker.task if the pipeline already fetched it, else a per-machine cached copy."""
    repo_model = Path(__file__).resolve().parents[1] / "models" / "face_landmarker.task"
    if repo_model.is_file():
        return facemodel.ensure(repo_model)
    return facemodel.ensure(CACHE / "face_landmarker.task")
