"""Leave-one-subject-out training of one mixing method over its seeds: every (seed, fold) unit, fold-batched.

The units (one per seed and test subject) are split into groups of ``train.fold_batch`` that each train as one
(:mod:`memix.training.loop`); groups run where ``train.executor`` says (:mod:`memix.training.executor`).

Resume: a finished group's units are saved as ``checkpoints/unit-s<seed>-f<fold>.pt`` the moment it finishes, and
a group in progress as ``checkpoints/group-*.pt``; a run started again skips finished units and continues the
rest to the same bytes. A fingerprint of the params and inputs makes a stale folder be ignored rather than mixed
in. The folder is deleted when the run completes (it is not a DVC output).
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from memix import models
from memix.config import MIXING_METHODS, Params, dump_params
from memix.io import flowset
from memix.training import checkpoint
from memix.training.executor import DoneFn, GroupJob, GroupProgressFn, cpu_workers, run_local
from memix.training.folds import make_folds
from memix.training.loop import Unit, UnitResult
from memix.training.outputs import LiveLog, write_outputs

OUTPUTS = ("predictions.parquet", "history.parquet", "curves.csv", "live")
"""What a run writes into its folder (the DVC outputs of the train stage)."""

GPU_MEMORY_SHARE = 0.8
"""Share of a GPU's free memory that ``fold_batch: auto`` plans to fill."""


def fingerprint(params: Params, method: str, index: pd.DataFrame, device: torch.device) -> str:
    """What a checkpoint must match to be resumed: the params this run uses, its inputs' index and device."""
    payload = {
        "train": params.train.model_dump(mode="json"),
        "model": params.model.model_dump(mode="json"),
        "mixing": getattr(params.mixing, method).model_dump(mode="json"),
        "method": method,
        "device": device.type,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode())
    digest.update(pd.util.hash_pandas_object(index, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def fold_batch(params: Params, device: torch.device, n_units: int, data: flowset.FlowSet) -> int:
    """Units per group. An integer is taken as given; ``auto`` splits the units evenly over the CPU worker
    processes (every core busy to the end), and on a GPU takes what fits in ``GPU_MEMORY_SHARE`` of free memory.
    A unit's result does not depend on its group, so this choice changes speed, not bytes."""
    wanted = params.train.fold_batch
    if wanted != "auto":
        return min(int(wanted), n_units)
    if device.type != "cuda":
        return math.ceil(n_units / cpu_workers(params, n_units))
    free, _ = torch.cuda.mem_get_info(device)
    per_unit = unit_bytes(params, data)
    return max(1, min(n_units, int(GPU_MEMORY_SHARE * free // per_unit)))


def unit_bytes(params: Params, data: flowset.FlowSet) -> int:
    """Rough device memory of one unit in training: fp32 weights, gradients and two Adam moments, plus bf16
    activations kept for the backward pass (about 19 values per token, embedding channel and block)."""
    model = models.build(params.model, data.flow.shape[1], data.num_classes, data.size)
    n_params = sum(p.numel() for p in model.parameters())
    tokens = model.grid * model.grid + 1
    dim = model.vit.embed_dim
    activations = params.train.batch_size * tokens * dim * model.depth * 19 * 2
    return 16 * n_params + activations


def make_groups(units: list[Unit], size: int) -> list[list[Unit]]:
    """Consecutive runs of ``size`` units (units are ordered by seed, then fold), spread as evenly as possible."""
    n_groups = math.ceil(len(units) / size)
    base, extra = divmod(len(units), n_groups)
    groups, start = [], 0
    for g in range(n_groups):
        end = start + base + (1 if g < extra else 0)
        groups.append(units[start:end])
        start = end
    return groups


def unit_path(ckpt_dir: Path, seed: int, fold: int) -> Path:
    return ckpt_dir / f"unit-s{seed}-f{fold:02d}.pt"


def run(
    params: Params, method: str, flow_dir: Path, out_dir: Path, seeds: list[int] | None = None, resume: bool = True
) -> Path:
    """LOSO-train ``method`` for every seed (default ``compare.seeds``) on the flow set in ``flow_dir``; write the
    outputs into ``out_dir`` and return predictions.parquet's path."""
    if method not in MIXING_METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(MIXING_METHODS)}")
    seeds = list(params.compare.seeds if seeds is None else seeds)
    out_dir = Path(out_dir)
    data = flowset.read(flow_dir, need_onset=params.model.face_stream)
    device = models.resolve_device(params.train.device)
    threads = torch.get_num_threads()
    if params.train.threads:
        torch.set_num_threads(params.train.threads)
    try:
        return _run(params, method, seeds, data, device, out_dir, resume)
    finally:
        torch.set_num_threads(threads)


def _run(
    params: Params, method: str, seeds: list[int], data: flowset.FlowSet, device: torch.device, out_dir: Path,
    resume: bool,
) -> Path:
    folds = make_folds(data.index)
    units = [Unit(seed, fold) for seed in seeds for fold in folds]
    groups = make_groups(units, fold_batch(params, device, len(units), data))
    fp = fingerprint(params, method, data.index, device)
    ckpt_dir = out_dir / "checkpoints"
    if not resume:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    done = _finished_units(ckpt_dir, units, fp)
    if not done and not _group_in_progress(ckpt_dir, fp):  # nothing of THIS run to resume: start clean
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    pending = [g for g in groups if not all((u.seed, u.fold.index) in done for u in g)]
    job = GroupJob(dump_params(params), method, str(data.path), str(ckpt_dir), fp)

    epochs = params.train.epochs
    live = LiveLog(out_dir / "live", seeds, len(folds), epochs)
    todo = sum(len(g) for g in pending)
    with tqdm(total=len(units) * epochs, initial=(len(units) - todo) * epochs, unit="fold-epoch",
              desc=f"LOSO {method} seeds {seeds}, {len(pending)} group(s) of <= {max(map(len, groups))}") as bar:
        live.on_update = bar.set_postfix_str
        report = live.progress(pending)

        def progress(i: int, epoch: int, stats: list[dict[str, float]]) -> None:
            bar.update(len(stats))
            report(i, epoch, stats)

        def finished(i: int, results: list[UnitResult]) -> None:
            for result in results:
                checkpoint.save(unit_path(ckpt_dir, result.seed, result.fold), result.to_state() | {"fingerprint": fp})
                done[(result.seed, result.fold)] = result
            job.ckpt_path(pending[i]).unlink(missing_ok=True)

        try:
            run_with_executor(params, job, pending, device, finished, progress)
        finally:
            live.close()
    write_outputs(out_dir, data, [done[(u.seed, u.fold.index)] for u in units], seeds)
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    return out_dir / "predictions.parquet"


def run_with_executor(
    params: Params, job: GroupJob, groups: list[list[Unit]], device: torch.device, on_done: DoneFn,
    progress: GroupProgressFn,
) -> None:
    """Train ``groups`` with ``train.executor``; ``on_done`` gets each group's results as it finishes."""
    if params.train.executor == "ray":
        from memix.training.ray_executor import run_ray

        run_ray(job, groups, on_done)
    else:
        run_local(job, groups, device, on_done, progress)


def _finished_units(ckpt_dir: Path, units: list[Unit], fp: str) -> dict[tuple[int, int], UnitResult]:
    done = {}
    for u in units:
        state = checkpoint.load(unit_path(ckpt_dir, u.seed, u.fold.index))
        if state is not None and state.get("fingerprint") == fp:
            done[(u.seed, u.fold.index)] = UnitResult.from_state(state)
    return done


def _group_in_progress(ckpt_dir: Path, fp: str) -> bool:
    """True when the folder holds an in-progress group of THIS run (same fingerprint)."""
    for path in sorted(ckpt_dir.glob("group-*.pt")) if ckpt_dir.is_dir() else []:
        state = checkpoint.load(path)
        if state is not None and state.get("fingerprint") == fp:
            return True
    return False

