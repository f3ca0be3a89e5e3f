"""Shared fixtures: the verified face model (fetched once per machine), small synthetic data and a tiny DVC project."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

# The stages' numeric code paths for the whole session (stages/_common.py caps numpy, OpenCV, PyTorch, MKL and oneDNN
# at AVX2 when imported): set before any of them loads, so that what a test computes in process and what a stage,
# worker pool or Ray worker computes in a subprocess (which inherits this environment) agree on an AVX-512 CPU too.
_STAGES = str(Path(__file__).resolve().parents[1] / "stages")
sys.path.insert(0, _STAGES)
import _common  # noqa: E402,F401

sys.path.remove(_STAGES)

import pytest  # noqa: E402

from memix.preprocess import facemodel  # noqa: E402

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


# Every adapter's layout at once (memix.synth.layouts), one folder each, for the datasets' end-to-end tests.
TINY_LAYOUTS = {**TINY_SYNTH, "frames_min": 6, "frames_max": 8, "layout": ["casme2", "samm", "smic", "casme3", "mmew"]}


@pytest.fixture(scope="session")
def tiny_layouts_params():
    from memix.config import SynthParams

    return SynthParams(**TINY_LAYOUTS)


@pytest.fixture(scope="session")
def tiny_layouts_root(tmp_path_factory: pytest.TempPathFactory, tiny_layouts_params, face_model_path: Path) -> Path:
    """``<root>/<layout>/`` for each layout of TINY_LAYOUTS; read-only."""
    from memix.synth.build import generate

    root = tmp_path_factory.mktemp("layouts") / "synthetic"
    generate(tiny_layouts_params, root, face_model_path)
    return root


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory: pytest.TempPathFactory, face_model_path: Path) -> Path:
    """The repository's pipeline reproduced once on tiny params, committed (``tests/dvcproject.py``).

    Shared by the tests that run DVC for real; a test that changes it puts it back, or works on a copy. Under
    pytest-xdist the first worker that needs it builds it once in the workers' common temp folder and every worker
    takes its own copy (tests change it in place), so the 2-core box does not build it twice at once.
    """
    import dvcproject

    mine = tmp_path_factory.mktemp("tiny-project")
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return dvcproject.build(mine, face_model_path)
    from filelock import FileLock

    common = tmp_path_factory.getbasetemp().parent
    built = common / "tiny-project-built"
    with FileLock(str(common / "tiny-project.lock")):
        if not built.exists():
            staging = common / "tiny-project-staging"
            shutil.rmtree(staging, ignore_errors=True)
            dvcproject.build(staging, face_model_path)
            staging.rename(built)  # whole, or not there
    shutil.copytree(built, mine, symlinks=True, dirs_exist_ok=True)
    return mine
