"""Ops per training step and the grouped optimizer's memory traffic, counted on the CPU.

Usage:
  python benchmarks/bench_step.py                       # ViT-B's 12 blocks at width 64, batch 34, memix, G = 1, 26
  python benchmarks/bench_step.py --embed-dim 16 --depth 2 --groups 1 13 26 --method none

1. Ops per step: every aten op a step dispatches (forward, mixing, loss, backward, optimizer), counted with a
   TorchDispatchMode: one fold alone (FlowModel + torch.optim.AdamW(fused=True), the way the reference loop trains)
   against the fold-batched step (memix.training.loop.GroupTrainer) of G units. Both mix through the same batched
   code (the per-batch mixer API is a group of one), so what grows with G is only what each unit must do alone:
   its host draws.
2. Optimizer traffic: the bytes each op of an update reads and writes (tensor arguments in, tensor results and
   in-place arguments out), and its time, for GroupedAdam (fused kernel and the element-wise formulation) against
   torch.optim.AdamW(fused=True) over the same stacked tensors of a G-unit group.
Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_gpu import random_flow_set, settings_for  # noqa: E402

from memix import mixing, models  # noqa: E402
from memix.training import loop  # noqa: E402
from memix.training.augment import augment_batch  # noqa: E402
from memix.training.folds import make_folds  # noqa: E402
from memix.training.optim import GroupedAdam  # noqa: E402


class OpCounter(TorchDispatchMode):
    """Counts aten ops and the bytes of their tensor inputs (read) and outputs (written: results and arguments
    the schema marks as written; views move nothing). Fused Adam's schema marks its gradients written too, so both
    fused rows count 4 bytes per element more than the kernel moves (28: read weights, grads, 2 moments; write 3)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()
        self.read = self.written = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = str(func.overloadpacket)
        if name.startswith("profiler."):
            return out
        self.ops[name] += 1
        returns = func._schema.returns
        if returns and returns[0].alias_info is not None and not returns[0].alias_info.is_write:
            return out  # a view: no data moves
        ins = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        self.read += sum(t.numel() * t.element_size() for t in ins)
        mutated = [a for a, arg in zip(args, func._schema.arguments, strict=False)
                   if arg.alias_info is not None and arg.alias_info.is_write]
        outs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)] + tree_flatten(mutated)[0]
        self.written += sum(t.numel() * t.element_size() for t in outs if isinstance(t, torch.Tensor))
        return out

    @property
    def total(self) -> int:
        return sum(self.ops.values())


def values(args: argparse.Namespace) -> dict:
    return {
        "model": {"name": "vit_flow_tiny", "patch_size": args.patch, "embed_dim": args.embed_dim, "depth": args.depth,
                  "num_heads": 1, "drop_rate": 0.0, "pretrained": False, "weights_path": None, "face_stream": False},
        "train": {"epochs": 1, "batch_size": args.batch, "optimizer": "adamw", "lr": 3e-3, "weight_decay": 0.05,
                  "label_smoothing": 0.0, "eval_every": 1, "threads": 1, "compile": False,
                  "augment": {"flip": True, "rotate_deg": 3.0, "translate_frac": 0.03}},
        "flow": {"size": args.size},
        "mixing": {"none": {}, "mixup": {"alpha": 1.0}, "mixaugment": {"alpha": 1.0},
                   "memix": {"k_mode": "beta", "alpha_k": 2.0, "k_offset": 14, "k": 40, "mix_alpha": 1.0,
                             "pool": "avg"}},
    }


def one_fold_step_ops(settings, method: str, data) -> int:
    """Ops of one step of one fold trained alone (the reference loop's step, fused torch AdamW)."""
    tp = settings.train
    fold = make_folds(data.index)[0]
    model = models.build(settings.model, 3, data.num_classes, data.size).train()
    opt = torch.optim.AdamW(model.parameters(), lr=tp.lr, weight_decay=tp.weight_decay, fused=True)
    mixer = mixing.create(method, data.num_classes, model.patch_size, 0.0, getattr(settings.mixing, method))
    flow = torch.from_numpy(data.flow[fold.train_rows[: tp.batch_size]].astype("float32"))
    labels = torch.as_tensor(data.labels[fold.train_rows[: tp.batch_size]])
    mixer.bind(labels)
    mixer.trusted = True
    gens = [torch.Generator().manual_seed(i) for i in range(2)]

    def step() -> None:
        x, _ = augment_batch(flow, gens[0], tp.augment)
        plan = mixer.mix_inputs(x, labels, gens[1])
        logits = model(plan.x, need_attention=mixer.needs_attention)
        targets = mixer.mix_targets(plan, model.cls_attention if mixer.needs_attention else None)
        loss = loop.soft_cross_entropy(logits, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()  # warm-up: lazy state
    with OpCounter() as counter:
        step()
    return counter.total


def grouped_step_ops(settings, method: str, data, group: int) -> int:
    trainer = loop.GroupTrainer(settings, method, [loop.Unit(0, f) for f in make_folds(data.index)[:group]], data,
                                torch.device("cpu"))
    trainer.model.train()
    for s in trainer.states:  # the epoch prologue of _epoch, then steps
        s.epoch_rows = s.train_rows
    trainer._epoch_table()
    trainer._reset_sums()
    trainer._step(0)
    with OpCounter() as counter:
        trainer._step(1)
    return counter.total


def optimizer_traffic(group: int, settings, data, repeats: int) -> list[tuple[str, int, float, float]]:
    """(name, ops, bytes moved per weight element, seconds per update) of each optimizer on the same tensors."""
    built = []
    for g in range(group):
        torch.manual_seed(g)
        built.append(models.build(settings.model, 3, data.num_classes, data.size))
    from memix.models.grouped import GroupedFlowModel

    grouped = GroupedFlowModel(built)
    params = [p for p in grouped.parameters()]
    n = sum(p.numel() for p in params)
    gen = torch.Generator().manual_seed(0)
    grads = [torch.randn(p.shape, generator=gen) for p in params]
    rows = []
    active = [True] * group
    candidates = {
        "GroupedAdam, fused kernel": lambda: GroupedAdam(params, group, 3e-3, 0.05, True, fused=True),
        "GroupedAdam, element-wise": lambda: GroupedAdam(params, group, 3e-3, 0.05, True, fused=False),
        "torch AdamW(fused=True), stacked": lambda: torch.optim.AdamW(params, lr=3e-3, weight_decay=0.05, fused=True),
    }
    for name, make in candidates.items():
        opt = make()
        for p, gr in zip(params, grads, strict=True):
            p.grad = gr

        def update(opt=opt) -> None:
            if isinstance(opt, GroupedAdam):
                opt.step(active)
            else:
                opt.step()

        update()
        with OpCounter() as counter:
            update()
        start = time.perf_counter()
        for _ in range(repeats):
            update()
        seconds = (time.perf_counter() - start) / repeats
        rows.append((name, counter.total, (counter.read + counter.written) / n, seconds))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embed-dim", type=int, default=64)
    parser.add_argument("--depth", type=int, default=12)
    parser.add_argument("--patch", type=int, default=4)
    parser.add_argument("--size", type=int, default=56)
    parser.add_argument("--batch", type=int, default=34)
    parser.add_argument("--method", default="memix")
    parser.add_argument("--groups", nargs="+", type=int, default=[1, 26])
    parser.add_argument("--repeats", type=int, default=5, help="timed optimizer updates")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    v = values(args)
    settings = settings_for(v, "false", False, 1)
    subjects = max(args.groups)
    data = random_flow_set(subjects, subjects * (args.batch + 2), args.size)
    print(f"ViT: {args.depth} blocks, width {args.embed_dim}, {args.size}px / {args.patch}px patches, batch "
          f"{args.batch}, {args.method}; torch {torch.__version__}, 1 thread")
    alone = one_fold_step_ops(settings, args.method, data)
    print("| step | aten ops per step | per unit |\n|---|---|---|")
    print(f"| one fold alone (FlowModel + AdamW fused) | {alone:,} | {alone:,} |")
    for g in args.groups:
        ops = grouped_step_ops(settings, args.method, data, g)
        print(f"| fold-batched, G = {g} | {ops:,} | {ops / g:,.0f} | ({ops / alone:.2f}x one fold)")
    g = max(args.groups)
    print(f"\nOptimizer update over a G = {g} group's stacked weights:")
    print("| optimizer | aten ops | bytes read + written per weight element | ms per update |\n|---|---|---|---|")
    for name, ops, per_elem, seconds in optimizer_traffic(g, settings, data, args.repeats):
        print(f"| {name} | {ops:,} | {per_elem:.0f} | {seconds * 1e3:.1f} |")


if __name__ == "__main__":
    main()
