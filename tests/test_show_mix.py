"""``memix show mix``: a PNG from real shard folders, byte-identical for the same seed."""

from __future__ import annotations

from pathlib import Path

import pytest
from flowsets import make_flow_set

from memix.config import Params
from memix.show import show_mix


@pytest.fixture(scope="module")
def flow_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_flow_set(tmp_path_factory.mktemp("flow") / "flow")


PARAMS = Params.model_validate({"model": {"patch_size": 4}})


def test_show_mix_writes_a_deterministic_png(flow_dir: Path, tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    show_mix(PARAMS, "memix", flow_dir, a, seed=0)
    show_mix(PARAMS, "memix", flow_dir, b, seed=0)
    show_mix(PARAMS, "memix", flow_dir, c, seed=1)
    assert a.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp leftovers


@pytest.mark.parametrize("method", ["cutmix", "balanced_mixup", "manifold_mixup"])
def test_show_mix_handles_each_kind_of_plan(flow_dir: Path, tmp_path: Path, method: str) -> None:
    """Box, balanced partner (no permutation) and hidden-token plans each draw without error."""
    out = show_mix(PARAMS, method, flow_dir, tmp_path / f"{method}.png", seed=0)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_show_mix_names_a_missing_flow_dir(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nowhere: flow stage output not found"):
        show_mix(Params(), "memix", tmp_path / "nowhere", tmp_path / "x.png", seed=0)
    assert not (tmp_path / "x.png").exists()
