"""Shared fixtures: the verified face model (fetched once per machine) and small synthetic data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from memix.preprocess import facemodel

CACHE = Path(os.environ.get("MEMIX_TEST_CACHE", Path.home() / ".cache" / "memix-tests"))


@pytest.fixture(scope="session")
def face_model_path() -> Path:
    """models/face_landmarker.task if the pipeline already fetched it, else a per-machine cached copy."""
    repo_model = Path(__file__).resolve().parents[1] / "models" / "face_landmarker.task"
    if repo_model.is_file():
        return facemodel.ensure(repo_model)
    return facemodel.ensure(CACHE / "face_landmarker.task")


# A small synthetic CASME II-shaped set for pipeline tests: 3 subjects, 12 clips (every class), 160 px frames.
TINY_SYNTH = {"subjects": 3, "clips": 12, "frame_size": 160, "face_size": 100, "frames_min": 8, "frames_max": 14}


@pytest.fixture(scope="session")
def tiny_synth_params():
    from memix.config import SynthParams

    return SynthParams(**TINY_SYNTH)


@pytest.fixture(scope="session")
def tiny_synth_root(tmp_path_factory: pytest.TempPathFactory, tiny_synth_params, face_model_path: Path) -> Path:
    """The tiny synthetic dataset's root (subNN/EPxx_yy/img{N}.jpg + CASME2-coding-synthetic.xlsx); read-only."""
    from memix.synth.build import generate

    root = tmp_path_factory.mktemp("synth") / "synthetic"
    generate(tiny_synth_params, root, face_model_path)
    return root
