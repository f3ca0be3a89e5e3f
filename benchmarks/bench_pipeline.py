"""Wall time of the whole default `dvc repro` from a fresh copy (per stage), and of the no-op `dvc repro`.

Usage: python benchmarks/bench_pipeline.py [--keep DIR] [--noop-only DIR] [--noop-runs N] [-S key=value ...]
Copies the pipeline files into a new folder (a fresh git + DVC project, empty cache), runs `dvc repro`
(timing each stage from DVC's "Running stage" lines), then the no-op `dvc repro` N times (median and min).
`--noop-only DIR` times only the no-op runs in an existing, reproduced project (e.g. this checkout).
Targets: <= 15 min and <= 3 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
FILES = ["dvc.yaml", "params.yaml", "stages", "memix", ".dvcignore", ".gitignore"]
STAGE_LINE = re.compile(r"^Running stage '([^']+)'")


def _env() -> dict[str, str]:
    return dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))


def run(cwd: Path, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, env=_env(), check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def timed_repro(cwd: Path) -> tuple[float, dict[str, float]]:
    """Total wall time of `dvc repro` and each stage's share (from one "Running stage" line to the next)."""
    start = time.perf_counter()
    stages: dict[str, float] = {}
    current, since = None, start
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro"], cwd=cwd, env=_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        match = STAGE_LINE.match(line)
        if match:
            now = time.perf_counter()
            if current:
                stages[current] = now - since
            current, since = match.group(1), now
    if proc.wait() != 0:
        raise SystemExit(f"dvc repro failed in {cwd}")
    end = time.perf_counter()
    if current:
        stages[current] = end - since
    return end - start, stages


def noop_times(cwd: Path, runs: int) -> list[float]:
    return [run(cwd, sys.executable, "-m", "dvc", "repro") for _ in range(runs)]


def make_project(root: Path, overrides: list[str]) -> None:
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
    for item in overrides:
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


def print_noop(times: list[float]) -> None:
    shown = ", ".join(f"{t:.2f}" for t in times)
    print(f"no-op dvc repro: median {statistics.median(times):.2f} s, min {min(times):.2f} s  ({shown})"
          "   (target <= 3 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="build the project here and keep it (default: a temp dir)")
    parser.add_argument("--noop-only", type=Path, metavar="DIR", help="only time no-op runs in this project")
    parser.add_argument("--noop-runs", type=int, default=5, help="no-op repetitions (default 5)")
    parser.add_argument("-S", dest="overrides", action="append", default=[], help="params override key=value")
    args = parser.parse_args()
    if args.noop_only:
        print_noop(noop_times(args.noop_only, args.noop_runs))
        return
    root = args.keep or Path(tempfile.mkdtemp(prefix="memix-bench-"))
    make_project(root, args.overrides)
    full, stages = timed_repro(root)
    noop = noop_times(root, args.noop_runs)
    by_kind: dict[str, list[float]] = defaultdict(list)
    for name, seconds in stages.items():
        by_kind[name.split("@")[0]].append(seconds)
    print(f"\nproject: {root}")
    print(f"{'stage':12s} {'runs':>4s} {'total s':>8s} {'mean s':>7s}")
    for kind, values in by_kind.items():
        print(f"{kind:12s} {len(values):4d} {sum(values):8.1f} {statistics.mean(values):7.1f}")
    print(f"full dvc repro: {full:.1f} s = {full / 60:.1f} min   (target <= 900 s on 2 cores)")
    print_noop(noop)
    print((root / "reports" / "mixup_table.md").read_text())
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
