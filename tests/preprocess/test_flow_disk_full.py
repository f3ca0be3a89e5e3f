"""A full disk while the flow stage writes its shards: one line saying so, naming the flow set and the free space."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from diskfull import full, says_disk_full, short_write, stage_main, the_error_line
from flowsets import tree_bytes

from memix.io import shards

CLIPS = 4
CROP = 48


def _faces(out_dir: Path) -> Path:
    """A faces shard folder: noise faces, each apex the onset moved a pixel."""
    rng = np.random.default_rng(0)
    subjects = [f"sub{i % 2 + 1:02d}" for i in range(CLIPS)]
    index = pd.DataFrame({
        "clip_id": [f"{s}/EP{i:02d}" for i, s in enumerate(subjects)], "dataset": "casme2", "subject": subjects,
        "label": ["happiness", "disgust", "surprise", "happiness"], "label_id": [0, 1, 2, 0], "status": "ok",
    })
    onset = rng.integers(0, 256, size=(CLIPS, CROP, CROP), dtype=np.uint8)
    shards.write(out_dir, index, {"onset": onset, "apex": np.roll(onset, 1, axis=2)}, shard_mb=64)
    return out_dir


@pytest.fixture(scope="module")
def faces_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _faces(tmp_path_factory.mktemp("faces") / "faces")


@pytest.mark.parametrize("failure", ["short write", "quota"])
def test_a_full_disk_while_writing_shards_is_the_flow_stages_one_line(
    faces_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    failure: str,
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"flow": {"size": 16, "montage_per_class": 1, "workers": 1}}))
    out, montage = tmp_path / "data" / "processed" / "flow", tmp_path / "reports" / "flow_montage.png"
    flow = stage_main("flow")
    args = ["--params", str(params), "--faces", str(faces_dir), "--out", str(out), "--montage", str(montage)]
    assert flow(args) == 0
    before = tree_bytes(tmp_path / "data")

    def save_on_a_full_disk(file, arr, *args, **kwargs):  # what np.save does when the disk fills mid-shard
        file.write(b"\x93NUMPY")
        raise short_write(arr.nbytes, 6) if failure == "short write" else full(errno.EDQUOT)

    monkeypatch.setattr(np, "save", save_on_a_full_disk)
    monkeypatch.delenv("MEMIX_DEBUG", raising=False)
    capsys.readouterr()
    assert flow(args) == 1
    line = the_error_line(capsys.readouterr().err, "flow")
    said = says_disk_full(line, "flow", out)
    assert said, line
    assert said.group(2) == ("6144 requested and 6 written" if failure == "short write" else "Disk quota exceeded")
    assert tree_bytes(tmp_path / "data") == before  # the previous flow set is whole
    assert sorted(p.name for p in out.parent.iterdir()) == ["flow"]  # and no temp folder is left
