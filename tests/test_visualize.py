"""Flow pictures: colour coding, deterministic PNGs, and `show_flow` for one clip."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from skimage import data

from memix import flow, shards, visualize
from memix.config import FlowParams


def _const(u: float, v: float, n: int = 4) -> np.ndarray:
    field = np.zeros((n, n, 2), np.float32)
    field[..., 0], field[..., 1] = u, v
    return field


def test_flow_colour_encodes_direction_and_magnitude() -> None:
    right = visualize.flow_to_rgb(_const(1, 0))[0, 0]
    left = visualize.flow_to_rgb(_const(-1, 0))[0, 0]
    down = visualize.flow_to_rgb(_const(0, 1))[0, 0]
    up = visualize.flow_to_rgb(_const(0, -1))[0, 0]
    assert right.tolist() == [255, 0, 0]
    assert left.tolist() == [0, 255, 255]  # opposite hue
    assert len({tuple(c) for c in (right, left, down, up)}) == 4  # v's sign matters (v points down)
    assert down[1] == 255 and up[2] == 255  # down is yellow-green, up is blue-purple
    half = visualize.flow_to_rgb(_const(1, 0), max_mag=2.0)[0, 0]
    assert half.tolist() == [128, 0, 0]  # brightness is magnitude / scale
    assert visualize.flow_to_rgb(np.zeros((3, 3, 2), np.float32)).max() == 0  # no motion is black
    with pytest.raises(ValueError, match=r"\(H, W, 2\)"):
        visualize.flow_to_rgb(np.zeros((3, 3)))


def test_montage_png_is_deterministic_and_carries_no_version(tmp_path) -> None:
    rng = np.random.default_rng(1)
    panel = visualize.FlowPanel(
        "sub01/EP01 (happiness)",
        rng.integers(0, 255, (24, 24), dtype=np.uint8),
        rng.normal(size=(24, 24, 2)).astype(np.float32),
        rng.random((24, 24)),
    )
    visualize.flow_montage([panel, panel], tmp_path / "a.png", "title")
    visualize.flow_montage([panel, panel], tmp_path / "b.png", "title")
    blob = (tmp_path / "a.png").read_bytes()
    assert blob[:8] == b"\x89PNG\r\n\x1a\n" and blob == (tmp_path / "b.png").read_bytes()
    assert b"Matplotlib" not in blob and b"Software" not in blob
    with pytest.raises(ValueError, match="no clips"):
        visualize.flow_montage([], tmp_path / "c.png", "title")


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
        }
    )
    shards.write(root / "faces", index, {"onset": np.stack([onset] * 3), "apex": np.stack([apex] * 3)}, shard_mb=1)
    params = FlowParams(method="farneback", size=16, workers=1, channels=["u", "v"], farneback={"levels": 2})
    flow.run(params, root / "faces", root / "flow", root / "montage.png")
    return root / "flow", root / "faces"


def test_show_flow_recomputes_with_the_stage_params(stage, tmp_path, monkeypatch) -> None:
    flow_dir, faces_dir = stage
    calls = []
    real = flow.compute_flow

    def spy(onset, apex, method="tvl1", **params):
        calls.append((onset.shape, method, params))
        return real(onset, apex, method, **params)

    monkeypatch.setattr(flow, "compute_flow", spy)
    visualize.show_flow(flow_dir, faces_dir, "s1/b", tmp_path / "show.png")
    assert (tmp_path / "show.png").read_bytes()[:4] == b"\x89PNG"
    assert len(calls) == 1
    shape, method, params = calls[0]
    assert shape == (40, 40) and method == "farneback" and params["levels"] == 2  # full crop, stage settings
    visualize.show_flow(flow_dir, faces_dir, "s1/b", tmp_path / "again.png")
    assert (tmp_path / "show.png").read_bytes() == (tmp_path / "again.png").read_bytes()


def test_show_flow_unknown_clip_lists_valid_ids(stage, tmp_path) -> None:
    flow_dir, faces_dir = stage
    with pytest.raises(ValueError, match=r"'s9/zz' not in .*flow.*3 clips, e\.g\. s1/a, s1/b, s2/c"):
        visualize.show_flow(flow_dir, faces_dir, "s9/zz", tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
