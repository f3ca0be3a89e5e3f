"""The real dvc.yaml on a tiny configuration: rerun scope of param changes and a DVC-remote round trip.

One tiny project is reproduced once per module (a copy of the repo's pipeline files with small params);
each test then changes one thing, runs ``dvc repro`` for real and checks which stages ran.
"""

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
COPIED = ["dvc.yaml", "params.yaml", "stages", "memix", ".dvcignore", ".gitignore"]

TINY = {
    "synth": {"subjects": 3, "clips": 9, "frame_size": 160, "face_size": 100, "frames_min": 6, "frames_max": 8},
    "faces": {"size": 48},
    "flow": {"size": 16, "workers": 1, "montage_per_class": 1},
    "model": {"patch_size": 4, "embed_dim": 16, "depth": 1, "num_heads": 2},
    "train": {"epochs": 1, "batch_size": 8},
    "compare": {"methods": ["none", "memix"], "seeds": [0]},
}


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return out


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["DVC_NO_ANALYTICS"] = "1"
    env.setdefault("GIT_AUTHOR_NAME", "memix-tests")
    env.setdefault("GIT_AUTHOR_EMAIL", "tests@memix.invalid")
    env.setdefault("GIT_COMMITTER_NAME", "memix-tests")
    env.setdefault("GIT_COMMITTER_EMAIL", "tests@memix.invalid")
    return env


def sh(cwd: Path, *args: str) -> str:
    proc = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed in {cwd}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout + proc.stderr


def dvc(cwd: Path, *args: str) -> str:
    return sh(cwd, sys.executable, "-m", "dvc", *args)


def ran(output: str) -> set[str]:
    """Stages that executed (or were restored from the run cache) in a `dvc repro` output."""
    names = re.findall(r"Running stage '([^']+)'", output)
    names += re.findall(r"Stage '([^']+)' is cached - skipping run", output)
    return set(names)


def assert_reran(output: str, expected: set[str]) -> None:
    """Exactly ``expected`` ran, except that `compare` may be skipped: DVC rightly skips it when the rerun
    evaluations came out byte-identical (likely on the tiny set), since then its inputs did not change."""
    stages = ran(output)
    assert stages - {"compare"} == expected - {"compare"}, stages
    assert stages <= expected, stages


def set_param(project: Path, dotted: str, value: object) -> None:
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    node = params
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node[key]
    node[leaf] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, face_model_path: Path) -> Path:
    root = tmp_path_factory.mktemp("tiny-project")
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, root / name)
    params = _merge(yaml.safe_load((REPO / "params.yaml").read_text()), TINY)
    params["faces"]["model_source"] = str(face_model_path)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(root, "git", "init", "-q")
    dvc(root, "init", "-q")
    dvc(root, "config", "core.analytics", "false")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "pipeline")  # as in a clone: DVCLive needs a commit to compare with
    out = dvc(root, "repro")
    assert "compare" in ran(out)
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "tiny pipeline")
    return root


@pytest.fixture
def restore(project: Path):
    """Put params.yaml back (and the outputs with it) after a test that changed it."""
    yield project
    sh(project, "git", "checkout", "--", "params.yaml")
    dvc(project, "repro")
    assert dvc(project, "status").strip().endswith("Data and pipelines are up to date.")


def test_tiny_pipeline_wrote_the_table(project: Path) -> None:
    table = (project / "reports" / "mixup_table.md").read_text()
    assert "| baseline |" in table and "| MEMix |" in table


def test_no_change_reruns_nothing(project: Path) -> None:
    assert ran(dvc(project, "repro")) == set()
    assert "Data and pipelines are up to date." in dvc(project, "status")


def test_train_epochs_reruns_training_evaluation_and_table_only(restore: Path) -> None:
    set_param(restore, "train.epochs", 2)
    assert_reran(dvc(restore, "repro"), {
        "train@none-0", "train@memix-0", "evaluate@none-0", "evaluate@memix-0", "compare"
    })


def test_one_methods_param_reruns_only_that_method_and_compare(restore: Path) -> None:
    set_param(restore, "mixing.memix.k_offset", 3)
    assert_reran(dvc(restore, "repro"), {"train@memix-0", "evaluate@memix-0", "compare"})


def test_flow_param_reruns_flow_and_everything_after(restore: Path) -> None:
    set_param(restore, "flow.method", "farneback")
    assert_reran(dvc(restore, "repro"), {
        "flow", "train@none-0", "train@memix-0", "evaluate@none-0", "evaluate@memix-0", "compare"
    })


def test_remote_round_trip_leaves_nothing_to_rerun(project: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    dvc(project, "remote", "add", "-d", "shared", str(remote))
    dvc(project, "push", "--run-cache")
    sh(project, "git", "add", "-A")
    sh(project, "git", "commit", "-qm", "remote")

    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(project), str(clone))
    dvc(clone, "pull")
    assert "Data and pipelines are up to date." in dvc(clone, "status")
    assert ran(dvc(clone, "repro", "--dry")) == set()
    assert (clone / "reports" / "mixup_table.md").read_bytes() == (project / "reports" / "mixup_table.md").read_bytes()

    set_param(clone, "mixing.memix.mix_alpha", 0.5)
    assert_reran(dvc(clone, "repro"), {"train@memix-0", "evaluate@memix-0", "compare"})
