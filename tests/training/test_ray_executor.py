"""``train.executor: ray`` through a local Ray on the CPU: the same bytes as the local executor."""

from __future__ import annotations

from pathlib import Path

import pytest
from flowsets import make_flow_set

from memix.config import parse_params
from memix.training import run

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'memix[ray]'")


def _params(executor: str):
    return parse_params({
        "model": {"patch_size": 4, "embed_dim": 16, "depth": 2, "num_heads": 2},
        "train": {"epochs": 2, "batch_size": 8, "device": "cpu", "threads": 1, "fold_batch": 2, "executor": executor},
        "compare": {"seeds": [0]},
    })


def test_a_loso_run_through_ray_gives_the_local_bytes(tmp_path: Path) -> None:
    flow_dir = make_flow_set(tmp_path / "flow")
    noise = {2: make_flow_set(tmp_path / "2", seed=5)}  # a key-frame noise set travels through the object store too
    local = run.run(_params("local"), "memix", flow_dir, tmp_path / "local", keyframe_noise=noise)
    through_ray = run.run(_params("ray"), "memix", flow_dir, tmp_path / "ray", keyframe_noise=noise)
    assert through_ray.read_bytes() == local.read_bytes()
    for name in ("history.parquet", "curves.csv", "keyframe_noise.parquet"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    assert not ray.is_initialized()  # the run shut down the Ray it started


class _Stop(Exception):
    pass


@pytest.mark.parametrize(("env", "address"), [(None, "local"), ("ray://head:10001", "ray://head:10001")])
def test_without_ray_address_a_fresh_local_ray_starts_never_a_cluster_left_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str | None, address: str
) -> None:
    """Ray's own default (address None) joins whatever cluster ``ray start`` last left on the machine."""
    asked: list[object] = []

    def init(**kwargs: object) -> None:
        asked.append(kwargs.get("address"))
        raise _Stop

    if env is None:
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
    else:
        monkeypatch.setenv("RAY_ADDRESS", env)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    with pytest.raises(_Stop):
        run.run(_params("ray"), "memix", make_flow_set(tmp_path / "flow"), tmp_path / "ray")
    assert asked == [address]
