"""The stage scripts dvc.yaml runs: each is the stage itself, explains itself with --help and fails in one line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
STAGES = {name: stage.get("do", stage)  # a foreach stage's definition is under do:
          for name, stage in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].items()}


def _script(stage: dict) -> Path:
    return REPO / stage["cmd"].split()[1]


def test_every_dvc_stage_runs_its_own_script() -> None:
    for name, stage in STAGES.items():
        script = _script(stage)
        assert script == REPO / "stages" / f"{name}.py", (name, stage["cmd"])
        # the script is a dep through the stage's code listing (tests/test_stage_deps.py), or the code stage's folder
        assert any(d == "stages" or d.startswith(f"data/code/{name}") for d in stage["deps"]), name


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


def test_a_stage_runs_the_memix_of_its_own_checkout(tmp_path: Path) -> None:
    """DVC hashes the checkout's memix as the stage's deps, and `dvc exp run --temp` runs stages in a copy: the copy's
    code must be what runs, not the package the environment's (editable) install points at."""
    copy = tmp_path / "copy"
    for name in ("stages", "memix"):
        shutil.copytree(REPO / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    config = copy / "memix" / "config" / "loading.py"
    config.write_text(config.read_text().replace(
        "def load_params(", "def load_params(*_a, **_k):\n    raise ValueError('copy of memix ran')\n\n\ndef _old(", 1
    ))
    proc = subprocess.run(
        [sys.executable, "stages/compare.py"], cwd=copy, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1 and "copy of memix ran" in proc.stderr, proc.stderr


def test_stages_pin_the_cpu_code_paths_on_x86() -> None:
    saved = dict(os.environ)
    sys.path.insert(0, str(REPO / "stages"))
    try:
        import _common
    finally:
        sys.path.remove(str(REPO / "stages"))
    try:
        for key in (*_common.AVX2_CAPS, *_common.AVX512_OFF, "OPENCV_CPU_DISABLE", "MEMIX_NATIVE_CPU"):
            os.environ.pop(key, None)
        assert _common.pin_cpu_code_paths("flags\t: fpu sse2 avx avx2 fma\n") == _common.AVX2_CAPS
        for key in _common.AVX2_CAPS:
            os.environ.pop(key)
        chosen = _common.pin_cpu_code_paths("flags\t: sse2 avx2 avx512f avx512bw\n")  # no SKX: OpenCV untouched
        assert chosen == {**_common.AVX2_CAPS, **_common.AVX512_OFF}
        for key in chosen:
            os.environ.pop(key)
        skx = "avx512f avx512cd avx512bw avx512dq avx512vl"
        chosen = _common.pin_cpu_code_paths(f"flags\t: sse2 avx2 {skx} avx512_vnni\n")
        assert chosen["OPENCV_CPU_DISABLE"] == "AVX512-SKX,AVX512-CLX"
        for key in chosen:
            os.environ.pop(key)
        assert _common.pin_cpu_code_paths("flags\t: sse2 sse4_2\n") == {}  # nothing to cap without AVX2
        os.environ["MKL_CBWR"] = "COMPATIBLE"  # a user's own choice wins
        assert "MKL_CBWR" not in _common.pin_cpu_code_paths("flags\t: avx2\n")
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_the_cpu_switches_name_only_what_the_libraries_know_here() -> None:
    """With the switches this machine's CPU gets, importing OpenCV and numpy prints nothing: no 'unknown CPU
    feature' (a misspelt name, which also leaves the kernel on) and no 'unavailable' feature."""
    env = {k: v for k, v in os.environ.items()
           if k not in (*_common_keys(), "OPENCV_CPU_DISABLE", "MEMIX_NATIVE_CPU")}
    code = "import sys; sys.path.insert(0, 'stages'); import _common, cv2, numpy"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert proc.stderr == "" and proc.stdout == ""


def _common_keys() -> tuple[str, ...]:
    sys.path.insert(0, str(REPO / "stages"))
    try:
        import _common
    finally:
        sys.path.remove(str(REPO / "stages"))
    return (*_common.AVX2_CAPS, *_common.AVX512_OFF)
