"""The fitted models the tests here share (made once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fitted_model import Fitted, fit_region_models, fit_tiny_model

from memix.io import flowset


@pytest.fixture(scope="session")
def fitted(tmp_path_factory: pytest.TempPathFactory, tiny_synth_root: Path, face_model_path: Path) -> Fitted:
    return fit_tiny_model(tmp_path_factory.mktemp("fitted"), tiny_synth_root, face_model_path)


@pytest.fixture(scope="session")
def region_files(fitted: Fitted, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, flowset.FlowSet]]:
    """HTNet (regions view) and CausalNet (sequence view) model files, with the views they were fitted on."""
    return fit_region_models(tmp_path_factory.mktemp("regions"), fitted)
