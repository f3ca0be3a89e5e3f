"""PNG helpers: flow colour coding, a deterministic montage without version metadata, the confusion matrix."""

from __future__ import annotations

import numpy as np
import pytest

from memix import plots


def _const(u: float, v: float, n: int = 4) -> np.ndarray:
    field = np.zeros((n, n, 2), np.float32)
    field[..., 0], field[..., 1] = u, v
    return field


def test_flow_colour_encodes_direction_and_magnitude() -> None:
    right = plots.flow_to_rgb(_const(1, 0))[0, 0]
    left = plots.flow_to_rgb(_const(-1, 0))[0, 0]
    down = plots.flow_to_rgb(_const(0, 1))[0, 0]
    up = plots.flow_to_rgb(_const(0, -1))[0, 0]
    assert right.tolist() == [255, 0, 0]
    assert left.tolist() == [0, 255, 255]  # opposite hue
    assert len({tuple(c) for c in (right, left, down, up)}) == 4  # v's sign matters (v points down)
    assert down[1] == 255 and up[2] == 255  # down is yellow-green, up is blue-purple
    half = plots.flow_to_rgb(_const(1, 0), max_mag=2.0)[0, 0]
    assert half.tolist() == [128, 0, 0]  # brightness is magnitude / scale
    assert plots.flow_to_rgb(np.zeros((3, 3, 2), np.float32)).max() == 0  # no motion is black
    with pytest.raises(ValueError, match=r"\(H, W, 2\)"):
        plots.flow_to_rgb(np.zeros((3, 3)))


def test_montage_png_is_deterministic_and_carries_no_version(tmp_path) -> None:
    rng = np.random.default_rng(1)
    panel = plots.FlowPanel(
        "sub01/EP01 (happiness)",
        rng.integers(0, 255, (24, 24), dtype=np.uint8),
        rng.normal(size=(24, 24, 2)).astype(np.float32),
        rng.random((24, 24)),
    )
    plots.flow_montage([panel, panel], tmp_path / "a.png", "title")
    plots.flow_montage([panel, panel], tmp_path / "b.png", "title")
    blob = (tmp_path / "a.png").read_bytes()
    assert blob[:8] == b"\x89PNG\r\n\x1a\n" and blob == (tmp_path / "b.png").read_bytes()
    assert b"Matplotlib" not in blob and b"Software" not in blob
    with pytest.raises(ValueError, match="no clips"):
        plots.flow_montage([], tmp_path / "c.png", "title")
