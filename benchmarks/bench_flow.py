"""Flow stage throughput: onset->apex pairs per second through `memix.preprocess.flow.run`, per method, crop size
and workers.

Usage: python benchmarks/bench_flow.py [--clips N] [--methods tvl1 farneback dis] [--sizes 128 224] [--workers 1 2]
Builds a faces shard folder of N real-texture pairs (the scikit-image astronaut face warped by a smooth
field of 0.3-2 px) per crop size, runs the whole stage (pool start, flow, strain, resize, shards, montage)
and prints pairs/s and the projected time for 255 CASME II-sized clips. Crop 128 stores 32 px tensors
(the default config), crop 224 stores 224 px (the paper config). Target: 255 clips at 224 px through
faces + TV-L1 in <= 3 min on 2 cores.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from skimage import data

from memix.config import FlowParams
from memix.io import shards
from memix.preprocess import flow

CASME2_CLIPS = 255
OUT_SIZE = {128: 32, 224: 224}


def make_faces(out_dir: Path, n: int, size: int, seed: int = 0) -> None:
    grey = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    onset = cv2.resize(grey[30:190, 140:300], (size, size), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    rng = np.random.default_rng(seed)
    apexes = []
    for _ in range(n):
        amp, phase = rng.uniform(0.3, 2.0, 2), rng.uniform(0, 2 * np.pi, 2)
        u = amp[0] * np.sin(2 * np.pi * yy / size + phase[0])
        v = amp[1] * np.cos(2 * np.pi * xx / size + phase[1])
        u, v = u.astype(np.float32), v.astype(np.float32)
        apexes.append(cv2.remap(onset, xx - u, yy - v, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT))
    index = pd.DataFrame(
        {
            "clip_id": [f"sub{i % 5:02d}/EP{i:03d}" for i in range(n)],
            "dataset": "casme2",
            "subject": [f"sub{i % 5:02d}" for i in range(n)],
            "label": [f"class{i % 5}" for i in range(n)],
            "label_id": [i % 5 for i in range(n)],
        }
    )
    shards.write(out_dir, index, {"onset": np.stack([onset] * n), "apex": np.stack(apexes)}, shard_mb=64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=16, help="pairs per run (default: %(default)s)")
    parser.add_argument("--methods", nargs="+", default=["tvl1", "farneback", "dis"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[128, 224])
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    args = parser.parse_args()
    print("flow only = memix.preprocess.flow.clip_tensor in one process with one OpenCV thread (no pool, no I/O);")
    print("stage = memix.preprocess.flow.run end to end (pool start, shards, stats, montage of 5 clips)")
    print(f"{'method':<10} {'crop':>5} {'out':>4} {'what':>12} {'s':>7} {'pairs/s':>8} {'255 clips':>10}")
    with tempfile.TemporaryDirectory(prefix="memix-bench-flow-") as tmp:
        root = Path(tmp)
        for size in args.sizes:
            faces = root / f"faces{size}"
            make_faces(faces, args.clips, size)
            _, arrays = shards.load(faces)
            onsets, apexes = np.array(arrays["onset"]), np.array(arrays["apex"])
            for method in args.methods:
                params = FlowParams(method=method, size=OUT_SIZE.get(size, size))
                cv2.setNumThreads(1)
                start = time.perf_counter()
                for onset, apex in zip(onsets, apexes, strict=True):
                    flow.clip_tensor(params, onset, apex)
                secs = time.perf_counter() - start
                cv2.setNumThreads(-1)
                _report(method, size, params.size, "flow only", secs, args.clips)
                for workers in args.workers:
                    params = FlowParams(
                        method=method, size=OUT_SIZE.get(size, size), workers=workers, montage_per_class=1
                    )
                    start = time.perf_counter()
                    flow.run(params, faces, root / "flow", root / "montage.png")
                    secs = time.perf_counter() - start
                    _report(method, size, params.size, f"stage w={workers}", secs, args.clips)


def _report(method: str, crop: int, out: int, what: str, secs: float, clips: int) -> None:
    rate = clips / secs
    line = f"{method:<10} {crop:>5} {out:>4} {what:>12} {secs:>7.2f} {rate:>8.2f} {CASME2_CLIPS / rate:>9.0f}s"
    print(line, flush=True)


if __name__ == "__main__":
    main()
