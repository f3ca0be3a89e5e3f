"""The fitted model the tests here share (made once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fitted_model import Fitted, fit_tiny_model


@pytest.fixture(scope="session")
def fitted(tmp_path_factory: pytest.TempPathFactory, tiny_synth_root: Path, face_model_path: Path) -> Fitted:
    return fit_tiny_model(tmp_path_factory.mktemp("fitted"), tiny_synth_root, face_model_path)
