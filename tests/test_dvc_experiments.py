"""Queued DVC experiments side by side (`dvc queue start -j 2`), each in its own workspace, both kept.

On a copy of the tiny project (reproduced once, ``tiny_project``), two experiments that change only a MEMix
training param are queued and run by two queue workers at once; the data stages are not rerun (their outputs are
checked out from the cache). They reproduce up to ``compare`` (the figures ``dvc exp show`` reports): MEMix's
training, evaluation and the table, not its fit, which would only add time. Each experiment must succeed with its
own params, outputs and metrics, and train in its own temporary workspace (``.dvc/tmp/exps/tmp*``): memix's
checkpoint folder (which holds the live view while earlier outputs exist) must appear there, never in the project's
own workspace.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dvcproject import dvc, sh

PARAM = "mixing.memix.mix_alpha"
VALUES = {"alpha-lo": 0.2, "alpha-hi": 5.0}
"""Two values whose MEMix figures differ on the tiny project (its bytes are the same on every machine), and that no
other test runs on it (the run cache would then restore train@memix instead of training it)."""
CKPT = Path("data/train/memix/checkpoints")
"""The train stage's checkpoint folder (its live view inside while earlier outputs exist), relative to a workspace."""
WAIT_S = 900


@pytest.fixture
def project(tiny_project: Path, tmp_path: Path) -> Iterator[Path]:
    """A copy of the tiny project (other tests keep theirs unchanged); its queue workers are stopped afterwards."""
    copy = tmp_path / "project"
    shutil.copytree(tiny_project, copy, symlinks=True)
    yield copy
    with contextlib.suppress(AssertionError):
        dvc(copy, "queue", "stop", "--kill")


class _Watch:
    """Looks every 50 ms at where memix's checkpoint folder exists: which experiment workspaces, and the project's."""

    def __init__(self, root: Path) -> None:
        self.root, self.exps = root, root / ".dvc" / "tmp" / "exps"
        self.in_workspaces: set[str] = set()
        self.in_project = False
        self.most_at_once = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.05):
            with contextlib.suppress(OSError):
                spaces = [p for p in self.exps.glob("tmp*") if p.is_dir()] if self.exps.is_dir() else []
                self.most_at_once = max(self.most_at_once, len(spaces))
                self.in_workspaces |= {p.name for p in spaces if (p / CKPT).is_dir()}
                self.in_project |= (self.root / CKPT).exists()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


def _wait_for_queue(root: Path) -> str:
    """`dvc queue status` once no task is queued or running (fails after WAIT_S with the status and the logs)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        status = dvc(root, "queue", "status")
        if not any(word in status for word in ("Queued", "Running")):
            return status
        if time.monotonic() > deadline:
            logs = "\n".join(dvc(root, "queue", "logs", name)[-2000:] for name in VALUES)
            raise AssertionError(f"the queue did not finish in {WAIT_S} s:\n{status}\n{logs}")
        time.sleep(4)


def _experiments(root: Path) -> dict[str, dict[str, Any]]:
    """Each experiment's data (params, metrics, outs) from `dvc exp show --json`, by name."""
    out: dict[str, dict[str, Any]] = {}
    for baseline in json.loads(dvc(root, "exp", "show", "--json")):
        for exp in baseline.get("experiments") or []:
            for rev in exp["revs"]:
                out[rev["name"]] = rev["data"]
    return out


def test_two_queued_experiments_run_side_by_side_each_in_its_own_workspace(project: Path) -> None:
    for name, value in VALUES.items():
        dvc(project, "exp", "run", "--queue", "compare", "-n", name, "-S", f"{PARAM}={value}")
    watch = _Watch(project)
    try:
        dvc(project, "queue", "start", "-j", "2")
        status = _wait_for_queue(project)
    finally:
        watch.close()
    for name in VALUES:
        assert any(line.split()[1:2] == [name] and "Success" in line for line in status.splitlines()), status

    assert watch.most_at_once >= 2  # two experiment workspaces existed at once: they ran side by side
    assert len(watch.in_workspaces) == 2  # each experiment trained (checkpoints, live view) in its own copy
    assert not watch.in_project  # never in the project's workspace

    exps = _experiments(project)
    lo, hi = (exps[name] for name in VALUES)
    for name, data in zip(VALUES, (lo, hi), strict=True):
        assert data["params"]["params.yaml"]["data"]["mixing"]["memix"]["mix_alpha"] == VALUES[name]
    figures = [data["metrics"]["reports/summary.json"]["data"] for data in (lo, hi)]
    assert all("memix.acc" in f for f in figures)  # each experiment has its own MEMix figures (a 1-epoch model
    assert figures[0]["none.acc"] == figures[1]["none.acc"]  # may score alike); the untouched baseline's the same
    outs = [{path: out["hash"] for path, out in data["outs"].items()} for data in (lo, hi)]
    for path in ("data/train/memix/predictions.parquet", "data/train/memix/live"):
        assert outs[0][path] != outs[1][path], path
    for path in ("data/processed/flow", "data/train/none/predictions.parquet"):
        assert outs[0][path] == outs[1][path], path

    table = list(csv.DictReader(io.StringIO(dvc(project, "exp", "show", "--csv"))))
    shown = {row["Experiment"]: row for row in table if row["Experiment"]}
    assert set(VALUES) <= set(shown), list(shown)
    for name, figs in zip(VALUES, figures, strict=True):
        assert shown[name]["State"] == "Success" and float(shown[name]["memix.acc"]) == figs["memix.acc"]
    assert sh(project, "git", "status", "--porcelain") == ""  # the project's own workspace is untouched
