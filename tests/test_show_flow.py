"""`memix show flow`: one clip's flow recomputed with the flow stage's own settings beside the stored tensor."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from skimage import data

from memix import show
from memix.config import FlowParams
from memix.io import shards
from memix.preprocess import flow, optical_flow


@pytest.fixture(scope="module")
def stage(tmp_path_factory) -> tuple[Path, Path]:
    """A 3-clip faces folder (the face and a shifted copy) and its flow stage output (farneback, levels 2)."""
    root = tmp_path_factory.mktemp("stage")
    grey = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    onset = cv2.resize(grey[30:174, 150:294], (40, 40), interpolation=cv2.INTER_AREA)
    shift = np.float32([[1, 0, 1.0], [0, 1, 0.5]])
    apex = cv2.warpAffine(onset, shift, (40, 40), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    index = pd.DataFrame(
        {
            "clip_id": ["s1/a", "s1/b", "s2/c"],
            "subject": ["s1", "s1", "s2"],
            "label": ["happiness", "surprise", "happiness"],
            "label_id": [0, 1, 0],
            "dataset": ["casme2"] * 3,
        }
    )
    shards.write(root / "faces", index, {"onset": np.stack([onset] * 3), "apex": np.stack([apex] * 3)}, shard_mb=1)
    params = FlowParams(method="farneback", size=16, workers=1, channels=["u", "v"], farneback={"levels": 2})
    flow.run(params, root / "faces", root / "flow", root / "montage.png")
    return root / "flow", root / "faces"


def test_show_flow_recomputes_with_the_stage_params(stage, tmp_path, monkeypatch) -> None:
    flow_dir, faces_dir = stage
    calls = []
    real = optical_flow.compute_flow

    def spy(onset, apex, method="tvl1", **params):
        calls.append((onset.shape, method, params))
        return real(onset, apex, method, **params)

    monkeypatch.setattr(optical_flow, "compute_flow", spy)
    show.show_flow(flow_dir, faces_dir, "s1/b", tmp_path / "show.png")
    assert (tmp_path / "show.png").read_bytes()[:4] == b"\x89PNG"
    assert len(calls) == 1
    shape, method, params = calls[0]
    assert shape == (40, 40) and method == "farneback" and params["levels"] == 2  # full crop, stage settings
    show.show_flow(flow_dir, faces_dir, "s1/b", tmp_path / "again.png")
    assert (tmp_path / "show.png").read_bytes() == (tmp_path / "again.png").read_bytes()


def test_show_flow_unknown_clip_lists_valid_ids(stage, tmp_path) -> None:
    flow_dir, faces_dir = stage
    with pytest.raises(ValueError, match=r"'s9/zz' not in .*flow.*3 clips, e\.g\. s1/a, s1/b, s2/c"):
        show.show_flow(flow_dir, faces_dir, "s9/zz", tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
