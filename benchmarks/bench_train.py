"""Speed of one (method, seed) LOSO training run on a default-sized synthetic flow set.

Usage: python benchmarks/bench_train.py [--method none] [--epochs 30] [--threads 1] [--clips 144] [--subjects 12]
                                        [--size 32] [--skip-cli]

Builds a flow shard folder like the default pipeline's (144 clips, 12 subjects, 3 x 32 x 32) in a temp folder,
then prints:
- the end-to-end `memix train` command (a fresh Python process: imports + LOSO + outputs), as the DVC stage runs it;
- an in-process run split into model steps, test-fold prediction, DVCLive/parquet output and the rest,
  with training images per second;
- the import time of the modules a train stage loads.
Timings on a shared machine are noisy; compare runs made on the same quiet machine only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CHANNELS = ["u", "v", "strain"]


def make_flow_set(out_dir: Path, clips: int, subjects: int, size: int, classes: int = 5, seed: int = 0) -> Path:
    """Random flow with a class-dependent motion blob, written as the flow stage would (shards + stats.json)."""
    from memix.io import flowset

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    labels = rng.integers(0, classes, size=clips)
    flow = rng.normal(0, 0.3, size=(clips, 3, size, size))
    for i, k in enumerate(labels):
        angle = 2 * np.pi * k / classes
        blob = np.exp(-((yy - 0.5) ** 2 + (xx - 0.5) ** 2) / 0.05)
        flow[i, 0] += np.cos(angle) * blob
        flow[i, 1] += np.sin(angle) * blob
    flow[:, 2] = np.abs(flow[:, 2])
    flow = flow.astype(np.float16)
    subject = [f"sub{1 + i % subjects:02d}" for i in range(clips)]
    index = pd.DataFrame({
        "clip_id": [f"{s}/EP{i:03d}" for i, s in enumerate(subject)],
        "subject": subject,
        "label": [f"class{k}" for k in labels],
        "label_id": labels,
    })
    f64 = flow.astype(np.float64)
    for c, ch in enumerate(CHANNELS):
        index[f"sum_{ch}"] = f64[:, c].sum(axis=(1, 2))
        index[f"sumsq_{ch}"] = (f64[:, c] ** 2).sum(axis=(1, 2))
    index["n_pixels"] = size * size
    onset = rng.integers(0, 256, size=(clips, size, size), dtype=np.uint8)
    flowset.write(out_dir, index, {"flow": flow, "onset": onset}, {"channels": CHANNELS}, shard_mb=64)
    return out_dir


def timed(fn, totals: dict[str, float], key: str):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[key] = totals.get(key, 0.0) + time.perf_counter() - start

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="none")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="train.threads (0 = torch's default)")
    parser.add_argument("--clips", type=int, default=144)
    parser.add_argument("--subjects", type=int, default=12)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--skip-cli", action="store_true", help="skip the fresh-process `memix train` timing")
    args = parser.parse_args()

    from memix.config import dump_params, parse_params

    params = parse_params({"train": {"epochs": args.epochs, "threads": args.threads, "device": "cpu"}})
    work = Path(tempfile.mkdtemp(prefix="memix-bench-train-"))
    flow_dir = make_flow_set(work / "flow", args.clips, args.subjects, args.size)
    m = params.model
    print(f"flow set: {args.clips} clips, {args.subjects} subjects, 3x{args.size}x{args.size}; method {args.method}; "
          f"epochs {args.epochs}; batch {params.train.batch_size}; threads {args.threads}; model "
          f"{m.name} patch {m.patch_size} dim {m.embed_dim} depth {m.depth}")

    if not args.skip_cli:
        params_path = work / "params.yaml"
        params_path.write_text(yaml.safe_dump(dump_params(params), sort_keys=False))
        cmd = [sys.executable, str(REPO / "stages" / "train.py"), "--params", str(params_path), "--method", args.method,
               "--seed", "0", "--flow", str(flow_dir), "--out", str(work / "cli")]
        start = time.perf_counter()
        subprocess.run(cmd, cwd=REPO, check=True, stderr=subprocess.DEVNULL,
                       env=dict(os.environ, PYTHONPATH=str(REPO)))
        print(f"memix train (fresh process, end to end): {time.perf_counter() - start:.1f} s")

    start = time.perf_counter()
    from memix.training import checkpoint, executor, loop, run
    imports = time.perf_counter() - start

    totals: dict[str, float] = {}
    executor.train_fold = timed(loop.train_fold, totals, "fold")
    loop.predict = timed(loop.predict, totals, "predict")
    run.write_live = timed(run.write_live, totals, "live")
    checkpoint.save = timed(checkpoint.save, totals, "checkpoint")
    start = time.perf_counter()
    run.run(params, args.method, seed=0, flow_dir=flow_dir, out_dir=work / "run")
    total = time.perf_counter() - start

    n_train = args.clips - args.clips // args.subjects
    images = args.subjects * args.epochs * n_train
    steps = totals["fold"] - totals["predict"]
    print(f"imports (torch, timm, memix): {imports:.1f} s")
    ckpt = totals.get("checkpoint", 0.0)
    rest = total - totals["fold"] - totals["live"] - ckpt
    print(f"in-process LOSO run: {total:.1f} s = training steps {steps:.1f} s + test prediction "
          f"{totals['predict']:.1f} s + checkpoints {ckpt:.2f} s + DVCLive {totals['live']:.2f} s + rest {rest:.2f} s")
    print(f"training throughput: {images / steps:.0f} images/s ({images} images); "
          f"{total / args.subjects:.2f} s per fold")


if __name__ == "__main__":
    main()
