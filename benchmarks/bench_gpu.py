"""Training throughput: one fold alone vs fold-batched groups, eager vs compiled; MFU, peak memory, the paper
protocol extrapolated.

Usage:
  python benchmarks/bench_gpu.py                                  # CPU default: params.yaml's tiny model
  python benchmarks/bench_gpu.py --params params.paper.yaml --pretrained false   # GPU: ViT-B/16, 224 px, batch 34
  python benchmarks/bench_gpu.py --fold-batch 1 13 26 --compile false reduce-overhead --method memix mixmeformer
  benchmarks/gpu_check.sh                                         # the one-shot GPU check (<= 8 min on one H100)

A random flow set of the configured size (CASME II-shaped by default: 26 subjects, 255 clips) is trained with the
project's own trainer (memix.training.loop.GroupTrainer: mixing, augmentation and per-epoch test prediction
included) for ``--epochs`` epochs after one warm-up epoch (compilation happens there); it prints training images
per second, the model FLOP utilisation (training FLOPs counted once per image with torch's FlopCounterMode, over
the device's dense bf16 peak), the peak device memory, and what the rate means for the paper protocol: one
(method, seed) = 26 folds x 99 epochs x ~246 clips, the table = 9 methods x 3 seeds. ``mixmeformer`` is MEMix
with the onset-face stream (``model.face_stream``). Not a test: nothing is asserted. Prints the device.

Needs only torch, timm (and its pyyaml), numpy and pandas: params are read from the YAML file without pydantic
(the file must list every field of model, train, flow.size and mixing, as params*.yaml do), so the check runs on a
bare GPU machine. ``--set section.key=value`` overrides any of them (tests use it for a tiny model).
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from memix.io import flowset  # noqa: E402
from memix.training import loop  # noqa: E402
from memix.training.folds import make_folds  # noqa: E402

PAPER_FOLDS, PAPER_EPOCHS, PAPER_CLIPS, TABLE_RUNS = 26, 99, 255, 27
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0}
"""Dense bf16 tensor-core peaks (vendor figures, no sparsity) by a name fragment of the device."""


class Section:
    """Attribute access over a params mapping (what the trainer reads of pydantic's models), no pydantic."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values
        for key, value in values.items():
            setattr(self, key, Section(value) if isinstance(value, dict) else value)

    def model_dump(self) -> dict[str, Any]:
        return dict(self._values)


def load_settings(path: Path, overrides: list[str]) -> dict[str, Any]:
    """The params file as nested dicts, with ``section.key=value`` overrides (values parsed as YAML)."""
    values = yaml.safe_load(path.read_text())
    for item in overrides:
        key, _, raw = item.partition("=")
        *parents, leaf = key.split(".")
        node = values
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(raw)
    return values


def settings_for(values: dict[str, Any], compile_mode: str, face_stream: bool, epochs: int) -> Section:
    train = {"schedule": "constant", "warmup_epochs": 0,  # a params file from before train.schedule
             **values["train"], "compile": False if compile_mode == "false" else compile_mode, "epochs": epochs}
    model = {**values["model"], "face_stream": face_stream}
    return Section({**values, "train": train, "model": model})


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        model = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
        return f"CPU {model.split(':', 1)[1].strip()} ({torch.get_num_threads()} torch thread(s))"
    except (OSError, StopIteration):
        return f"CPU {platform.processor()}"


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    if given:
        return given
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def random_flow_set(subjects: int, clips: int, size: int, classes: int = 5) -> flowset.FlowSet:
    """A flow set in memory (random flow, CASME II-shaped subjects): nothing written, no parquet needed."""
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
    return flowset.FlowSet(Path("<memory>"), index, flow, onset, {"channels": ["u", "v", "strain"]})


def train_flops_per_image(trainer: loop.GroupTrainer, method: str) -> float:
    """FLOPs of one training image of one unit: a forward and backward pass (two for mixaugment's clean term)."""
    from torch.utils.flop_counter import FlopCounterMode

    model, batch = trainer.model, trainer.params.train.batch_size
    g = model.size
    x = torch.zeros((g, batch, model.in_chans, model.img_size, model.img_size), device=trainer.device)
    face = None if trainer.faces is None else torch.zeros((g, batch, *trainer.faces.shape[1:]), device=trainer.device)
    counter = FlopCounterMode(display=False)
    with counter, trainer.autocast():
        model(x, face=face, need_attention=method in ("memix", "mixmeformer")).float().sum().backward()
    model.zero_grad(set_to_none=True)
    passes = 2 if method == "mixaugment" else 1
    return counter.get_total_flops() * passes / (g * batch)


def measure(settings: Section, method: str, data: flowset.FlowSet, group: int, device: torch.device,
            timed_epochs: int) -> dict[str, float]:
    """Training images per second of ``group`` folds trained together (after a warm-up epoch), FLOPs per image
    and the peak device memory."""
    folds = make_folds(data.index)[:group]
    torch._dynamo.reset()  # each row compiles afresh (and none inherits another's recompile count)
    times: list[float] = []
    last = [0.0]

    def tick(epoch: int, stats: list[dict]) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now

    trainer = loop.GroupTrainer(settings, "memix" if method == "mixmeformer" else method,
                                [loop.Unit(0, f) for f in folds], data, device, progress=tick)
    flops = train_flops_per_image(trainer, method)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    last[0] = time.perf_counter()
    trainer.run()
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    images = sum(len(f.train_rows) for f in folds)
    del trainer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"rate": images * timed_epochs / sum(times[1:]), "flops": flops, "peak_gib": peak,
            "first_epoch_s": times[0]}


def resolve(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device")
    return torch.device(name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml", help="params file (model, train, flow, mixing settings)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override, e.g. model.depth=2")
    parser.add_argument("--pretrained", choices=["true", "false", "file"], default="file",
                        help="false: random weights (same compute, works offline); file: as the params say")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--method", nargs="+", default=["memix"],
                        help="mixing methods to time; mixmeformer = memix with the onset-face stream")
    parser.add_argument("--fold-batch", nargs="+", type=int, default=None, help="group sizes (default: 1 and all)")
    parser.add_argument("--compile", nargs="+", default=["false"], help="false | default | reduce-overhead")
    parser.add_argument("--subjects", type=int, default=PAPER_FOLDS)
    parser.add_argument("--clips", type=int, default=PAPER_CLIPS)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs after one warm-up epoch")
    parser.add_argument("--peak-tflops", type=float, default=None, help="device peak for MFU (default: known GPUs)")
    parser.add_argument("--budget-s", type=float, default=0.0, help="skip the remaining rows past this wall time")
    parser.add_argument("--group-major", action="store_true",
                        help="order rows by group size first (under a budget, every method gets the first size)")
    parser.add_argument("--compile-backend", default="inductor",
                        help="torch.compile backend; eager = dynamo capture only (the CPU smoke test uses it)")
    args = parser.parse_args(argv)
    if args.compile_backend != "inductor":
        compile_fn = torch.compile

        def with_backend(model: Any, mode: str | None = None, **kwargs: Any) -> Any:  # a backend takes no mode
            return compile_fn(model, backend=args.compile_backend, **kwargs)

        torch.compile = with_backend

    start = time.monotonic()
    path = Path(args.params) if Path(args.params).is_absolute() else REPO / args.params
    values = load_settings(path, args.set)
    if args.pretrained != "file":
        values["model"]["pretrained"] = args.pretrained == "true"
    device = resolve(args.device)
    torch.set_num_threads(values["train"].get("threads") or torch.get_num_threads())
    size = int(values["flow"]["size"])
    peak = peak_tflops(device, args.peak_tflops)
    m, t = values["model"], values["train"]
    print(f"device: {device_name(device)}; torch {torch.__version__}; peak {peak or '?'} TFLOP/s for MFU")
    print(f"model {m['name']} (pretrained {m['pretrained']}) on 3x{size}x{size} flow, batch {t['batch_size']}; "
          f"{args.subjects} subjects, {args.clips} clips (random flow); {args.epochs} timed epoch(s) after one warm-up")
    groups = [min(g, args.subjects) for g in (args.fold_batch or [1, args.subjects])]
    data = random_flow_set(args.subjects, args.clips, size)
    print("| method | folds per step | compile | train img/s | MFU | peak memory | warm-up epoch "
          "| one (method, seed), paper protocol | table |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = [(m, c, g) for m in args.method for c in args.compile for g in groups]
    if args.group_major:  # every method at the first group size before any at the next
        rows.sort(key=lambda r: (groups.index(r[2]), args.compile.index(r[1])))
    for method, compile_mode, group in rows:
        row = f"| {method} | {group} | {compile_mode} |"
        if args.budget_s and time.monotonic() - start > args.budget_s:
            print(f"{row} skipped (past --budget-s {args.budget_s:.0f} s) |||||", flush=True)
            continue
        settings = settings_for(values, compile_mode, method == "mixmeformer", 1 + args.epochs)
        try:
            r = measure(settings, method, data, group, device, args.epochs)
        except torch.OutOfMemoryError:
            r = None
        if r is None:  # outside the except block: the failed trainer is freed before the cache is
            torch.cuda.empty_cache()
            print(f"{row} out of memory |||||", flush=True)
            continue
        run_s = PAPER_FOLDS * PAPER_EPOCHS * PAPER_CLIPS * (1 - 1 / PAPER_FOLDS) / r["rate"]
        mfu = f"{100 * r['rate'] * r['flops'] / (peak * 1e12):.1f} %" if peak else "-"
        mem = "-" if math.isnan(r["peak_gib"]) else f"{r['peak_gib']:.1f} GiB"
        print(f"{row} {r['rate']:,.0f} | {mfu} | {mem} | {r['first_epoch_s']:.1f} s | {run_s / 60:.1f} min | "
              f"{run_s * TABLE_RUNS / 3600:.2f} h |", flush=True)
    print(f"(paper protocol: {PAPER_FOLDS} folds x {PAPER_EPOCHS} epochs x ~{math.floor(PAPER_CLIPS * 25 / 26)} "
          f"training clips per (method, seed); table = {TABLE_RUNS} runs on one device; "
          f"total {time.monotonic() - start:.0f} s)")


if __name__ == "__main__":
    main()
