"""Training throughput: one fold at a time vs fold-batched, eager vs compiled; the paper protocol extrapolated.

Usage:
  python benchmarks/bench_gpu.py                                  # CPU default: params.yaml's tiny model
  python benchmarks/bench_gpu.py --params params.paper.yaml       # on a GPU: ViT-B/16 at 224 px, batch 34
  python benchmarks/bench_gpu.py --fold-batch 1 13 26 --compile false reduce-overhead --method memix none

A random flow set of the configured size (CASME II-shaped by default: 26 subjects, 255 clips) is trained with the
project's own trainer (memix.training.loop.GroupTrainer: mixing, augmentation and per-epoch test prediction
included) for ``--epochs`` epochs after one warm-up epoch; it prints training images per second and what that
means for the paper protocol: one (method, seed) = 26 folds x 99 epochs x ~246 clips, the table = 9 methods x 3
seeds. Not a test: nothing is asserted. Prints the device it ran on.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from memix.config import dump_params, load_params, parse_params  # noqa: E402
from memix.io import flowset  # noqa: E402
from memix.models import resolve_device  # noqa: E402
from memix.training import loop  # noqa: E402
from memix.training.folds import make_folds  # noqa: E402

PAPER_FOLDS, PAPER_EPOCHS, PAPER_CLIPS, TABLE_RUNS = 26, 99, 255, 27


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        model = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
        return f"CPU {model.split(':', 1)[1].strip()} ({torch.get_num_threads()} torch thread(s))"
    except (OSError, StopIteration):
        return f"CPU {platform.processor()}"


def random_flow_set(path: Path, subjects: int, clips: int, size: int, classes: int = 5) -> flowset.FlowSet:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, classes, clips)
    flow = rng.normal(0, 1, size=(clips, 3, size, size)).astype(np.float16)
    subject = [f"sub{1 + i % subjects:02d}" for i in range(clips)]
    index = pd.DataFrame({"clip_id": [f"{s}/EP{i:03d}" for i, s in enumerate(subject)], "subject": subject,
                          "label": [f"class{k}" for k in labels], "label_id": labels, "dataset": "bench"})
    f64 = flow.astype(np.float64)
    for c, ch in enumerate(("u", "v", "strain")):
        index[f"sum_{ch}"] = f64[:, c].sum(axis=(1, 2))
        index[f"sumsq_{ch}"] = (f64[:, c] ** 2).sum(axis=(1, 2))
    index["n_pixels"] = size * size
    onset = rng.integers(0, 256, size=(clips, size, size), dtype=np.uint8)
    flowset.write(path, index, {"flow": flow, "onset": onset}, {"channels": ["u", "v", "strain"]}, shard_mb=256)
    return flowset.read(path)


def measure(params, method: str, data: flowset.FlowSet, group: int, device: torch.device, epochs: int) -> float:
    """Training images per second of ``group`` folds trained together (steady state, after a warm-up epoch)."""
    folds = make_folds(data.index)[:group]
    times: list[float] = []
    last = [time.perf_counter()]

    def tick(epoch: int, stats: list[dict]) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now

    p = parse_params({**dump_params(params), "train": {**dump_params(params)["train"], "epochs": 1 + epochs}})
    trainer = loop.GroupTrainer(p, method, [loop.Unit(0, f) for f in folds], data, device, progress=tick)
    last[0] = time.perf_counter()
    trainer.run()
    images = sum(len(f.train_rows) for f in folds)
    return images * epochs / sum(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml", help="params file (model, train, mixing settings)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--method", nargs="+", default=["memix"], help="mixing methods to time")
    parser.add_argument("--fold-batch", nargs="+", type=int, default=None, help="group sizes (default: 1 and all)")
    parser.add_argument("--compile", nargs="+", default=["false"], help="false | default | reduce-overhead")
    parser.add_argument("--subjects", type=int, default=PAPER_FOLDS)
    parser.add_argument("--clips", type=int, default=PAPER_CLIPS)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after one warm-up epoch")
    args = parser.parse_args()

    params = load_params(REPO / args.params if not Path(args.params).is_absolute() else args.params)
    device = resolve_device(args.device, "--device")
    if device.type == "cpu" and params.train.threads:
        torch.set_num_threads(params.train.threads)
    size = params.flow.size
    print(f"device: {device_name(device)}; torch {torch.__version__}")
    print(f"model {params.model.name} on 3x{size}x{size} flow, batch {params.train.batch_size}; "
          f"{args.subjects} subjects, {args.clips} clips (random flow)")
    groups = args.fold_batch or [1, args.subjects]
    with tempfile.TemporaryDirectory(prefix="memix-bench-") as tmp:
        data = random_flow_set(Path(tmp) / "flow", args.subjects, args.clips, size)
        print("| method | folds per step | compile | train img/s | one (method, seed), paper protocol | table |")
        print("|---|---|---|---|---|---|")
        for method in args.method:
            for compile_mode in args.compile:
                mode = False if compile_mode == "false" else compile_mode
                p = parse_params({**dump_params(params), "train": {**dump_params(params)["train"], "compile": mode}})
                for group in groups:
                    rate = measure(p, method, data, min(group, args.subjects), device, args.epochs)
                    run_s = PAPER_FOLDS * PAPER_EPOCHS * PAPER_CLIPS * (1 - 1 / PAPER_FOLDS) / rate
                    print(f"| {method} | {group} | {compile_mode} | {rate:,.0f} | {run_s / 60:.1f} min | "
                          f"{run_s * TABLE_RUNS / 3600:.2f} h |", flush=True)
    print(f"(paper protocol: {PAPER_FOLDS} folds x {PAPER_EPOCHS} epochs x ~{math.floor(PAPER_CLIPS * 25 / 26)} "
          f"training clips per (method, seed); table = {TABLE_RUNS} runs on one device)")


if __name__ == "__main__":
    main()
