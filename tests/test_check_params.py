"""The check_params stage: `dvc repro` refuses a params file memix would refuse, before any stage loses outputs."""

from __future__ import annotations

import json
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
ARCH_PARAMS = "data/arch_params"


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
    assert check["outs"] == [MARKER, ARCH_PARAMS]
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
        # a run's model was checked only when its arch@ stage built it, after every other stage
        ({"architectures": {"reference": {"run": "m", "method": "none"},
                            "runs": {"m": {"model": {"name": "mmnet", "options": {"img_size": 7}}}}}},
         "architectures.runs.m.model.options.img_size: Input should be a multiple of 16"),
    ],
    ids=["section typo", "method typo", "run option"],
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


def _file_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line.strip() for line in proc.stderr.splitlines()]


def test_every_models_name_and_options_are_refused_naming_file_and_full_key(tmp_path: Path) -> None:
    """Each mistake the params loader refuses (tests/test_config.py), through the stage: one run per mistake."""
    runs = {
        "vit": {"options": {"bogus": 1, "img_size": "abc"}},
        "st_unknown": {"name": "ststnet", "options": {"kernel": 5}},
        "mm_unknown": {"name": "mmnet", "options": {"imgsize": 32}},
        "aman_unknown": {"name": "aman", "options": {"levels": 3}},
        "st_zero": {"name": "ststnet", "options": {"img_size": 0}},
        "mm_seven": {"name": "mmnet", "options": {"img_size": 7}},
        "mm_abc": {"name": "mmnet", "options": {"img_size": "abc"}},
        "nope": {"name": "nope"},
        "face": {"name": "ststnet", "face_stream": True},
        "st_small": {"name": "ststnet", "options": {"img_size": 3}},
    }
    params = {"model": {"name": "mmnet", "options": {"img_size": 7}},
              "compare": {"methods": ["none"], "baseline": "none"}, "fit": {"methods": ["none"]},
              "architectures": {"reference": {"run": "vit", "method": "none"},
                                "runs": {run: {"model": model} for run, model in runs.items()}}}
    out = tmp_path / "checked.txt"
    proc = _check(tmp_path, yaml.safe_dump(params), out)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    path = tmp_path / "params.yaml"
    assert proc.stderr.startswith(f"stage check_params: error: {path}: invalid params")
    expected = {
        "model.options.img_size: Input should be a multiple of 16",
        "architectures.runs.vit.model.options.bogus: unknown option: model.name 'vit_flow_tiny' is a ViT",
        "architectures.runs.vit.model.options.img_size: unknown option: model.name 'vit_flow_tiny' is a ViT",
        "architectures.runs.st_unknown.model.options.kernel: unknown option of ststnet (valid options: conv_padding",
        "architectures.runs.mm_unknown.model.options.imgsize: unknown option of mmnet (did you mean img_size?",
        "architectures.runs.aman_unknown.model.options.levels: unknown option of aman (did you mean num_levels?",
        "architectures.runs.st_zero.model.options.img_size: Input should be greater than or equal to 1",
        "architectures.runs.mm_seven.model.options.img_size: Input should be a multiple of 16",
        "architectures.runs.mm_abc.model.options.img_size: Input should be a valid integer",
        "architectures.runs.nope.model.name: model.name 'nope' is not a model: valid names are vit_flow_tiny",
        "architectures.runs.face.model.face_stream: MixMeFormer's onset-face stream goes with a ViT",
        "architectures.runs.st_small.model.options.img_size: Value error, STSTNet needs img_size at least",
    }
    lines = _file_lines(proc)
    missing = [e for e in expected if not any(line.startswith(e) for line in lines)]
    assert not missing, proc.stderr
    assert len(lines) == 1 + len(expected), proc.stderr  # the file's line, then one line per mistake
    assert not out.exists() and not (tmp_path / "arch_params").exists()


def test_an_alias_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    out = tmp_path / "checked.txt"
    proc = _check(tmp_path, "train: {epochs: 3}\nl0: &l0 [x, x]\nl1: [*l0, *l0]\n", out)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{tmp_path / 'params.yaml'}: line 2: YAML anchor &l0: a params file takes no anchors" in proc.stderr
    assert not out.exists()


def test_each_architecture_run_gets_the_params_it_reads(tmp_path: Path) -> None:
    """data/arch_params/<run>.json (beside the marker): stage arch@<run>'s params dep, what ``arch_run_inputs``
    resolves; its bytes change with the values the run reads only."""
    from memix.config import arch_run_inputs, load_params
    from memix.io import paths

    assert Path(MARKER).with_name(paths.ARCH_PARAMS.name) == paths.ARCH_PARAMS == Path(ARCH_PARAMS)
    text = (REPO / "params.models.yaml").read_text()
    out = tmp_path / "data" / "params_checked.txt"
    assert _check(tmp_path, text, out).returncode == 0
    folder = tmp_path / "data" / "arch_params"
    params = load_params(tmp_path / "params.yaml")
    assert (folder / "index.txt").read_text().split() == [f"{run}.json" for run in params.architectures.runs]
    for run in params.architectures.runs:
        assert json.loads((folder / f"{run}.json").read_text()) == arch_run_inputs(params, run)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert _check(tmp_path, text.replace("  epochs: 40\n", "  epochs: 3\n", 1), out).returncode == 0
    after = {p.name: p.read_bytes() for p in folder.iterdir()}
    # STSTNet's and MMNet's recipes set their epochs: only the ViT runs train with the top-level ones
    assert sorted(n for n in before if before[n] != after[n]) == ["mixmeformer.json", "vit.json"]
    # nothing configured: the folder holds the empty index only
    assert _check(tmp_path, "train: {epochs: 3}\n", out).returncode == 0
    assert [p.name for p in folder.iterdir()] == ["index.txt"] and (folder / "index.txt").read_text() == ""
