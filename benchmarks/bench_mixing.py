"""Time every mixing method (mix_inputs + mix_targets) on one batch, plus flow augmentation, and compare the
batched MEMix patch selection with a per-sample Python loop doing the same work.

    .venv/bin/python benchmarks/bench_mixing.py                  # CPU, 64 x 2 x 224 x 224, patch 16
    .venv/bin/python benchmarks/bench_mixing.py --device cuda

Prints median milliseconds per batch. Attention-needing methods get a random (B, P*P) attention map.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from memix import mixing
from memix.config import AugmentParams
from memix.mixing.memix_mixer import MEMixMixer, motion_grid, tokens_to_pixels, top_k_mask
from memix.training.augment import augment_batch

NUM_CLASSES = 5


def timed(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int) -> float:
    """Median wall milliseconds of ``fn`` (synchronising CUDA around each call)."""
    times = []
    for i in range(warmup + repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def memix_loop(x: torch.Tensor, k: torch.Tensor, perm: torch.Tensor, lam: float, patch: int) -> torch.Tensor:
    """The naive MEMix: score, top-k, mask and blend one sample at a time."""
    out = torch.empty_like(x)
    grid = x.shape[-1] // patch
    for b in range(x.shape[0]):
        score = F.avg_pool2d((x[b, 0].abs() + x[b, 1].abs())[None, None], patch).flatten()
        chosen = torch.topk(score, int(k[b])).indices
        tokens = torch.zeros(grid * grid, dtype=torch.bool, device=x.device)
        tokens[chosen] = True
        mask = tokens.reshape(grid, grid).repeat_interleave(patch, 0).repeat_interleave(patch, 1)
        out[b] = torch.where(mask, lam * x[b] + (1 - lam) * x[perm[b]], x[b])
    return out


def memix_batched(x: torch.Tensor, k: torch.Tensor, perm: torch.Tensor, lam: float, patch: int) -> torch.Tensor:
    """The same work as ``memix_loop`` with the library's batched pieces."""
    grid = (x.shape[-2] // patch, x.shape[-1] // patch)
    mask = tokens_to_pixels(top_k_mask(motion_grid(x, patch, "avg"), k), grid, patch)
    return torch.where(mask, lam * x + (1 - lam) * x[perm], x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--patch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    g = torch.Generator(device=device).manual_seed(0)
    b, n_tokens = args.batch, (args.size // args.patch) ** 2
    x = torch.randn(b, args.channels, args.size, args.size, generator=g, device=device)
    y = torch.randint(0, NUM_CLASSES, (b,), generator=g, device=device)
    train_x = torch.randn(4 * b, args.channels, args.size, args.size, generator=g, device=device)
    train_y = torch.randint(0, NUM_CLASSES, (4 * b,), generator=g, device=device)
    attention = torch.rand(b, n_tokens, generator=g, device=device)

    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
          f"threads {torch.get_num_threads()}, batch {tuple(x.shape)}, patch {args.patch}, "
          f"median of {args.repeats}")
    print(f"{'what':<34}{'ms/batch':>10}")
    for name in mixing.MIXING_METHODS:
        mixer = mixing.get(name, NUM_CLASSES, patch_size=args.patch)
        mixer.bind(train_y, train_x)
        attn = attention if mixer.needs_attention else None

        def step(mixer=mixer, attn=attn) -> None:
            mixer.mix_targets(mixer.mix_inputs(x, y, g), attn)

        print(f"{name:<34}{timed(step, device, args.repeats, args.warmup):>10.2f}")

    params = AugmentParams()
    print(f"{'augment_batch (flip+rot+shift)':<34}"
          f"{timed(lambda: augment_batch(x, g, params), device, args.repeats, args.warmup):>10.2f}")

    memix = mixing.get("memix", NUM_CLASSES, patch_size=args.patch)
    assert isinstance(memix, MEMixMixer)
    k = torch.as_tensor(memix.draw_k(np.random.default_rng(0), b, n_tokens), device=device)
    perm = torch.randperm(b, generator=g, device=device)
    a = memix_batched(x, k, perm, 0.4, args.patch)
    ref = memix_loop(x, k, perm, 0.4, args.patch)
    assert torch.equal(a, ref), "batched and per-sample MEMix disagree"
    t_batched = timed(lambda: memix_batched(x, k, perm, 0.4, args.patch), device, args.repeats, args.warmup)
    t_loop = timed(lambda: memix_loop(x, k, perm, 0.4, args.patch), device, args.repeats, args.warmup)
    print(f"{'memix mask+blend, batched':<34}{t_batched:>10.2f}")
    print(f"{'memix mask+blend, per-sample loop':<34}{t_loop:>10.2f}   ({t_loop / t_batched:.1f}x slower)")


if __name__ == "__main__":
    main()
