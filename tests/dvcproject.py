"""A tiny real DVC project for tests: the repository's pipeline files with small params, git + dvc initialised.

``build(root, face_model_path)`` copies the pipeline, reproduces it once and commits the result, as a user's
clone would look after ``dvc repro``; ``tests/conftest.py`` builds it once per session (``tiny_project``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
COPIED = ["dvc.yaml", "params.yaml", "stages", "memix", ".dvcignore", ".gitignore"]
REPRO_LOG = "memix-first-repro.log"
"""The first ``dvc repro``'s output (stdout and stderr as one stream), kept in the project's .git folder."""
TEMPLATES = Path(".dvc/plots")  # the custom `dvc plots` templates dvc.yaml names, copied after `dvc init`

TINY = {
    "synth": {"subjects": 3, "clips": 9, "frame_size": 160, "face_size": 100, "frames_min": 6, "frames_max": 8},
    "faces": {"size": 48},
    "flow": {"size": 16, "workers": 1, "montage_per_class": 1},
    "model": {"patch_size": 4, "embed_dim": 16, "depth": 1, "num_heads": 2},
    "train": {"epochs": 1, "batch_size": 8, "warmup_epochs": 0},
    "compare": {"methods": ["none", "memix"], "seeds": [0]},
}


def merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return out


def env() -> dict[str, str]:
    """This interpreter's scripts (dvc, memix, python) first on PATH, no analytics, a git identity."""
    out = dict(os.environ)
    out["PATH"] = str(Path(sys.executable).parent) + os.pathsep + out.get("PATH", "")
    out["DVC_NO_ANALYTICS"] = "1"
    out.setdefault("GIT_AUTHOR_NAME", "memix-tests")
    out.setdefault("GIT_AUTHOR_EMAIL", "tests@memix.invalid")
    out.setdefault("GIT_COMMITTER_NAME", "memix-tests")
    out.setdefault("GIT_COMMITTER_EMAIL", "tests@memix.invalid")
    return out


def sh(cwd: Path, *args: str) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env(), capture_output=True, text=True, check=False)
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


def build(root: Path, face_model_path: Path) -> Path:
    """Copy the pipeline into ``root`` with tiny params, ``dvc repro`` it and commit everything."""
    root.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, root / name)
    params = merge(yaml.safe_load((REPO / "params.yaml").read_text()), TINY)
    params["faces"]["model_source"] = str(face_model_path)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(root, "git", "init", "-q")
    dvc(root, "init", "-q")
    dvc(root, "config", "core.analytics", "false")
    if (REPO / TEMPLATES).is_dir():
        shutil.copytree(REPO / TEMPLATES, root / TEMPLATES, dirs_exist_ok=True)
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "pipeline")  # as in a clone: DVCLive needs a commit to compare with
    proc = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=root, env=env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False)  # one stream: stage output in order
    out = proc.stdout
    assert proc.returncode == 0 and "compare" in ran(out), out[-4000:]
    (root / ".git" / REPRO_LOG).write_text(out)  # for the tests that read what each stage printed
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "tiny pipeline")
    return root
