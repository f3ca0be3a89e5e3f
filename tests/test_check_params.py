"""The check_params stage: `dvc repro` refuses a params file memix would refuse, before any stage loses outputs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
MARKER = "data/params_checked.txt"


def _check(tmp_path: Path, params_text: str, out: Path) -> subprocess.CompletedProcess:
    params = tmp_path / "params.yaml"
    params.write_text(params_text)
    return subprocess.run(
        [sys.executable, str(REPO / "stages" / "check_params.py"), "--params", str(params), "--out", str(out)],
        capture_output=True, text=True, check=False,
    )


def test_the_stage_depends_on_all_of_params_yaml_and_every_stage_on_it() -> None:
    check = STAGES["check_params"]
    # a file dep on params.yaml: any byte of it (a value, a new key, a duplicate key) reruns the check
    assert "params.yaml" in check["deps"]
    assert "params" not in check
    assert check["outs"] == [MARKER]
    for name, stage in STAGES.items():
        if name not in ("check_params", "code"):  # `code` lists the code files and reads no params
            stage = stage.get("do", stage)  # a foreach stage's definition is under do:
            assert MARKER in stage["deps"], f"stage {name} does not wait for check_params"


def test_marker_bytes_do_not_depend_on_the_values(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    assert _check(tmp_path, "train: {epochs: 3}\n", a).returncode == 0
    assert _check(tmp_path, "train: {epochs: 30}\nmixing: {memix: {alpha_k: 3.0}}\n", b).returncode == 0
    assert a.read_bytes() == b.read_bytes()


def test_a_bad_params_file_fails_in_one_line_naming_key_and_valid_values(tmp_path: Path) -> None:
    out = tmp_path / "checked.txt"
    proc = _check(tmp_path, "trian: {epochs: 30}\n", out)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("stage check_params: error:")
    assert "trian: unknown key (did you mean train?" in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("mistake", "expected"),
    [
        ({"trian": {"epochs": 30}}, "trian: unknown key (did you mean train?"),
        ({"compare": {"methods": ["none", "mixpu"]}}, "compare.methods.1: Input should be 'none', 'mixup'"),
    ],
    ids=["section typo", "method typo"],
)
def test_dvc_repro_stops_at_a_params_mistake_before_any_other_stage(
    tmp_path: Path, face_model_path: Path, mistake: dict, expected: str
) -> None:
    """Real DVC on the real dvc.yaml: only check_params (after ``code``) runs, and the output of the stage DVC would
    run next (and delete before running it) survives.

    Without it a misspelled section reran nothing ("up to date"), and a misspelled method failed on the missing
    ``memix/mixing/mixpu_mixer.py`` instead of naming compare.methods and the valid names."""
    for name in ("dvc.yaml", "stages", "memix", ".dvcignore"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, tmp_path / name)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in mistake.items():
        params.setdefault(section, {}).update(values)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    kept = tmp_path / params["faces"]["model"]  # face_model's output: DVC deletes it before running face_model
    kept.parent.mkdir(parents=True)
    shutil.copy2(face_model_path, kept)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "DVC_NO_ANALYTICS": "1"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)

    assert run("git", "init", "-q").returncode == 0
    assert run(sys.executable, "-m", "dvc", "init", "-q").returncode == 0
    proc = run(sys.executable, "-m", "dvc", "repro")
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Running stage 'check_params'" in output
    # the `code` stage (it reads no params) runs before it, no other
    assert set(re.findall(r"Running stage '([^']+)'", output)) == {"code", "check_params"}, output
    assert expected in output
    assert kept.read_bytes() == face_model_path.read_bytes()
