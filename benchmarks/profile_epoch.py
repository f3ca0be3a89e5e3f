"""Where a training epoch's CPU time goes: one fold-batched epoch of the params file's model and recipe on a random
flow set of the synthetic default's size, timed and profiled (torch.profiler, ops by self CPU time).

    python benchmarks/profile_epoch.py --method none      # one thread, one seed's 8 folds in one group
    python benchmarks/profile_epoch.py --attention        # the attention kernels alone, forward + backward

Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_gpu import random_flow_set  # noqa: E402

from memix.config import load_params  # noqa: E402
from memix.training import loop  # noqa: E402
from memix.training.folds import make_folds  # noqa: E402


def attention_kernels(batch: int, tokens: int, width: int, repeats: int = 12) -> None:
    """Forward + backward of one attention call (one head) through torch's fused CPU flash kernel, its unfused math
    path, and the products and softmax written out; median milliseconds."""
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v = (torch.randn(batch, 1, tokens, width, requires_grad=True) for _ in range(3))

    def written_out() -> torch.Tensor:
        return (q @ k.transpose(-1, -2) * width**-0.5).softmax(-1) @ v

    def through(backend: SDPBackend):
        def call() -> torch.Tensor:
            with sdpa_kernel(backend):
                return F.scaled_dot_product_attention(q, k, v)
        return call

    for name, fn in (("flash (fused)", through(SDPBackend.FLASH_ATTENTION)), ("math (unfused)",
                     through(SDPBackend.MATH)), ("written out", written_out)):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn().sum().backward()
            times.append(time.perf_counter() - start)
        print(f"{name:15s} {sorted(times)[repeats // 2] * 1e3:7.1f} ms  ({batch} x {tokens} tokens x {width})")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--params", default=str(REPO / "params.yaml"))
    p.add_argument("--method", default="none")
    p.add_argument("--subjects", type=int, default=8)
    p.add_argument("--clips", type=int, default=80)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rows", type=int, default=15, help="ops listed (default: %(default)s)")
    p.add_argument("--attention", action="store_true", help="time the attention kernels alone (64 sequences)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.attention:
        attention_kernels(64, 197, 16)
        return
    params = load_params(args.params)
    train = params.train.model_copy(update={"epochs": 3, "warmup_epochs": 0, "device": "cpu"})
    params = params.model_copy(update={"train": train})
    data = random_flow_set(args.subjects, args.clips, params.flow.size)
    units = [loop.Unit(0, f) for f in make_folds(data.index)]
    trainer = loop.GroupTrainer(params, args.method, units, data, torch.device("cpu"))
    trainer.model.train()
    trainer._epoch(0)  # warm-up: lazy state, allocator
    start = time.perf_counter()
    trainer._epoch(1)
    seconds = time.perf_counter() - start
    images = sum(len(u.fold.train_rows) for u in units)
    print(f"{args.method}: {images / seconds:,.0f} training images/s on {args.threads} thread(s), "
          f"{len(units)} folds in one group, epoch {seconds:.2f} s")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        trainer._epoch(2)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
