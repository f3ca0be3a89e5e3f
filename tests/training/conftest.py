"""Fixtures the training tests share: one tiny flow set per test module (tests/flowsets.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from flowsets import make_flow_set

from memix.io import flowset


@pytest.fixture(scope="module")
def flow_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_flow_set(tmp_path_factory.mktemp("flow") / "flow")


@pytest.fixture(scope="module")
def data(flow_dir: Path) -> flowset.FlowSet:
    """The flow set read with its onset faces (for MixMeFormer)."""
    return flowset.read(flow_dir, need_onset=True)
