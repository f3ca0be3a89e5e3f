"""The stage scripts dvc.yaml runs: each is the stage itself, explains itself with --help and fails in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def _script(stage: dict) -> Path:
    return REPO / stage["cmd"].split()[1]


def test_every_dvc_stage_runs_its_own_script() -> None:
    for name, stage in STAGES.items():
        script = _script(stage)
        assert script == REPO / "stages" / f"{name}.py", (name, stage["cmd"])
        assert f"stages/{name}.py" in stage["deps"], name


@pytest.mark.parametrize("name", sorted(STAGES))
def test_each_stage_script_has_a_help(name: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(_script(STAGES[name])), "--help"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert f"usage: stages/{name}.py" in proc.stdout and "--params" in proc.stdout


def test_a_bad_params_file_is_one_line_naming_the_stage_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "params.yaml"
    bad.write_text("compare: {seeds: []}\n")
    proc = subprocess.run(
        [sys.executable, str(REPO / "stages" / "compare.py"), "--params", str(bad)],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("stage compare: error:") and str(bad) in proc.stderr
    assert "Traceback" not in proc.stderr
