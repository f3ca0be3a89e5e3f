"""Train-step throughput of the flow models: forward + backward + AdamW step, images/s.

Each configuration runs with and without ``need_attention`` (the CLS-row hook TransMix and MEMix use), so
the hook's cost shows as the difference. Timings on a shared machine are noisy; compare rows of one run.

    python benchmarks/bench_models.py                       # CPU: tiny (batch 32, 3x32x32), ViT-B/16 (batch 8)
    python benchmarks/bench_models.py --device cuda --bf16  # GPU: batch 34 and a large batch, peak memory
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from memix.config import ModelParams
from memix.models import build


@dataclass(frozen=True)
class Config:
    label: str
    params: ModelParams
    img_size: int
    batch: int
    face_size: int = 0


def configs(device: str, large_batch: int) -> list[Config]:
    tiny = ModelParams()  # params.yaml's CPU default: patch 4, width 64, depth 3, 4 heads
    mmf = ModelParams(face_stream=True)
    base = ModelParams(name="vit_base_patch16_224")
    if device == "cpu":
        return [
            Config("vit_flow_tiny 32px", tiny, 32, 32),
            Config("mixmeformer tiny 32px + 128px face", mmf, 32, 32, face_size=128),
            Config("vit_base_patch16_224", base, 224, 8),
        ]
    return [
        Config("vit_flow_tiny 32px", tiny, 32, 34),
        Config("vit_flow_tiny 32px", tiny, 32, large_batch * 4),
        Config("vit_base_patch16_224", base, 224, 34),
        Config("vit_base_patch16_224", base, 224, large_batch),
        Config("mixmeformer ViT-B + 224px face", ModelParams(name="vit_base_patch16_224", face_stream=True), 224, 34,
               face_size=224),
    ]


def bench(cfg: Config, device: torch.device, bf16: bool, steps: int, warmup: int, need_attention: bool) -> dict:
    torch.manual_seed(0)
    model = build(cfg.params, in_chans=3, num_classes=5, img_size=cfg.img_size).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(cfg.batch, 3, cfg.img_size, cfg.img_size, device=device)
    face = torch.rand(cfg.batch, 1, cfg.face_size, cfg.face_size, device=device) if cfg.face_size else None
    y = torch.randint(0, 5, (cfg.batch,), device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x, face=face, need_attention=need_attention)
            loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")

    return {"img_s": cfg.batch * steps / seconds, "step_ms": 1000 * seconds / steps, "peak_gib": peak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast")
    ap.add_argument("--steps", type=int, default=0, help="timed steps (default: 10 on CPU for tiny, 3 for ViT-B)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--large-batch", type=int, default=256, help="the large ViT-B batch on GPU")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--only", default="", help="run only configurations whose label contains this text")
    args = ap.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, device {device}"
          + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else f", {torch.get_num_threads()} threads")
          + f", bf16 {args.bf16}")
    print(f"{'config':<38} {'batch':>6} {'attn':>5} {'img/s':>9} {'ms/step':>9} {'peak GiB':>9}")
    for cfg in configs(args.device, args.large_batch):
        if args.only and args.only not in cfg.label:
            continue
        steps = args.steps or (3 if "base" in cfg.label and device.type == "cpu" else 10)
        for need in (False, True):
            r = bench(cfg, device, args.bf16, steps, args.warmup, need)
            print(f"{cfg.label:<38} {cfg.batch:>6} {'yes' if need else 'no':>5} {r['img_s']:>9.1f} "
                  f"{r['step_ms']:>9.1f} {r['peak_gib']:>9.2f}", flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
