"""A full disk while the train stage runs: one line naming the output and the free space, no thread traceback."""

from __future__ import annotations

import builtins
import errno
import threading
from pathlib import Path

import dvclive.plots.metric
import dvclive.serialize
import pytest
import yaml
from diskfull import full, says_disk_full, stage_main, the_error_line


def test_a_full_disk_under_dvclive_is_the_train_stages_one_line(
    flow_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two worker processes, so the live view is written by the relay thread of the parent: its failure must stop
    the run as the stage's error (once: ending the DVCLive runs after it must not fail again over it)."""
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({
        "model": {"patch_size": 4, "embed_dim": 16, "depth": 1, "num_heads": 2},
        "train": {"epochs": 2, "batch_size": 8, "device": "cpu", "threads": 1, "fold_batch": 1, "workers": 2},
        "compare": {"seeds": [0]},
    }))

    def open_on_a_full_disk(file, mode="r", *args, **kwargs):  # DVCLive's writes (metrics .tsv, summary .json)
        if any(c in mode for c in "wax+"):
            raise full(errno.ENOSPC)
        return builtins.open(file, mode, *args, **kwargs)

    for module in (dvclive.plots.metric, dvclive.serialize):
        monkeypatch.setattr(module, "open", open_on_a_full_disk, raising=False)
    monkeypatch.delenv("MEMIX_DEBUG", raising=False)
    out = tmp_path / "train" / "none"
    hook = threading.excepthook  # pytest's, which would keep a thread's traceback off stderr: Python's own here
    threading.excepthook = threading.__excepthook__
    try:
        code = stage_main("train")(["--params", str(params), "--flow", str(flow_dir), "--out", str(out)])
    finally:
        threading.excepthook = hook
    assert code == 1
    line = the_error_line(capsys.readouterr().err, "train")
    said = says_disk_full(line, "train", out / "live" / "seed0")
    assert said and said.group(2) == "No space left on device", line
    assert not (out / "predictions.parquet").exists()
