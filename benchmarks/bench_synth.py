"""Wall time of generating the default synthetic dataset (params.yaml's synth section) into a temp folder.

Usage: python benchmarks/bench_synth.py [--params params.yaml] [--keep DIR]
Prints wall and CPU seconds, clips, frames and size on disk. Target: <= 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from memix.config import load_params

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    parser.add_argument("--keep", type=Path, help="generate here and keep it (default: a temp dir, removed)")
    args = parser.parse_args()
    params = load_params(args.params)

    from memix.synth.build import generate

    work = Path(tempfile.mkdtemp(prefix="memix-bench-synth-"))
    out = args.keep or work / "synthetic"
    try:
        start, cpu_start = time.perf_counter(), time.process_time()
        generate(params.synth, out, model_path=REPO / params.faces.model)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        frames = list(out.rglob("*.jpg"))
        size_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
        clips = len({p.parent for p in frames})
        print(
            f"synth: {seconds:.1f} s wall ({cpu:.1f} s CPU, all threads) for {clips} clips, {len(frames)} frames, "
            f"{size_mb:.1f} MiB (target <= 60 s wall on 2 cores)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
