"""Wall time of the whole default `dvc repro` from a fresh copy, and of the no-op `dvc repro` after it.

Usage: python benchmarks/bench_pipeline.py [--keep DIR] [-S key=value ...]
Copies the pipeline files into a new folder (a fresh git + DVC project, empty cache), runs `dvc repro`,
then `dvc repro` again (nothing to do) and prints both times. Targets: <= 15 min and <= 3 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
FILES = ["dvc.yaml", "params.yaml", "stages", "memix", ".dvcignore", ".gitignore"]


def run(cwd: Path, *args: str) -> float:
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=env, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="build the project here and keep it (default: a temp dir)")
    parser.add_argument("-S", dest="overrides", action="append", default=[], help="params override key=value")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="memix-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
        else:
            shutil.copy2(src, root / name)
    params = yaml.safe_load((root / "params.yaml").read_text())
    model = REPO / "models" / "face_landmarker.task"
    if model.is_file():  # skip the network/wheel fetch: it is not what this benchmark measures
        params["faces"]["model_source"] = str(model)
    for item in args.overrides:
        key, value = item.split("=", 1)
        node = params
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = yaml.safe_load(value)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(root, "git", "init", "-q")
    run(root, sys.executable, "-m", "dvc", "init", "-q")
    run(root, "git", "add", "-A")
    run(root, "git", "-c", "user.name=bench", "-c", "user.email=bench@memix.invalid", "commit", "-qm", "bench")
    full = run(root, sys.executable, "-m", "dvc", "repro")
    noop = run(root, sys.executable, "-m", "dvc", "repro")
    print(f"project: {root}")
    print(f"full dvc repro: {full:.1f} s   (target <= 900 s on 2 cores)")
    print(f"no-op dvc repro: {noop:.2f} s   (target <= 3 s)")
    print((root / "reports" / "mixup_table.md").read_text())
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
