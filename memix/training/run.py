"""Leave-one-subject-out training of one mixing method over its seeds: every (seed, fold) unit, fold-batched.

The units (one per seed and test subject) are split into groups of at most ``train.fold_batch`` that each train
as one (:mod:`memix.training.loop`), units of similar training-set size together so that few sit steps out
(:func:`make_groups`); groups run where ``train.executor`` says (:mod:`memix.training.executor`).

Resume: a finished group's units are saved as ``checkpoints/unit-s<seed>-f<fold>.pt`` the moment it finishes, and
a group in progress as ``checkpoints/group-*.pt/`` (:mod:`.checkpoint`); a run started again skips finished units
and continues the rest to the same bytes. A fingerprint of the params, the inputs and the code
(:mod:`memix.codehash`: the files of the train stage's import closure, as ``dvc.yaml`` lists them) makes
checkpoints of another run be discarded, with a warning, rather than mixed in. The folder is deleted when the run
completes (it is not a DVC output). Ctrl-C stops the run with one line saying how many groups a rerun resumes from
(exit status 130).

A unit whose loss turns NaN or infinite stops the run (``train.on_divergence: fail``, :mod:`.divergence`) or, with
``drop``, leaves its fold out of the outputs for every seed (so every seed still predicts the same clips), with a
warning naming method, seed, fold and epoch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from memix import codehash, models
from memix.config import MIXING_METHODS, ModelParams, Params, dump_params
from memix.io import flowset
from memix.mixing import module_name
from memix.models import registry
from memix.training import checkpoint
from memix.training.divergence import diverged_epoch
from memix.training.executor import DoneFn, GroupJob, GroupProgressFn, cpu_workers, run_local
from memix.training.folds import make_folds
from memix.training.inputs import check_augment, read_data
from memix.training.loop import Unit, UnitResult, batch_bounds
from memix.training.outputs import LiveLog, write_outputs

OUTPUTS = ("predictions.parquet", "history.parquet", "curves.csv", "live")
"""What a run writes into its folder (the DVC outputs of the train stage)."""

GPU_MEMORY_SHARE = 0.8
"""Share of a GPU's free memory that ``fold_batch: auto`` plans to fill."""

log = logging.getLogger(__name__)


def code_hash(method: str) -> str:
    """Hash of the code training ``method`` runs: the train stage's import closure plus the method's module."""
    return codehash.stage_code_hash("train", [module_name(method)], entry=__name__)


def fingerprint(params: Params, method: str, index: pd.DataFrame, device: torch.device) -> str:
    """What a checkpoint must match to be resumed: the params this run uses, its inputs' index, the device and
    the code (a checkpoint of older code would put that code's predictions under the new code's name)."""
    payload = {
        "train": params.train.model_dump(mode="json"),
        "model": params.model.model_dump(mode="json"),
        "mixing": getattr(params.mixing, method).model_dump(mode="json"),
        "method": method,
        "device": device.type,
        "code": code_hash(method),
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode())
    digest.update(pd.util.hash_pandas_object(_hashable(index), index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _hashable(index: pd.DataFrame) -> pd.DataFrame:
    """The index with each list-valued cell (the flow index's ``landmarks``) as the bytes of its float64 values."""
    out = index.copy()
    for col in out.columns:
        if out[col].dtype == object and len(out) and isinstance(out[col].iloc[0], (list, tuple, np.ndarray)):
            out[col] = [np.asarray(v, dtype=np.float64).tobytes() for v in out[col]]
    return out


def fold_batch(params: Params, device: torch.device, n_units: int, data: flowset.FlowSet) -> int:
    """Units per group. An integer is taken as given; ``auto`` splits the units evenly over the CPU worker
    processes (every core busy to the end), and on a GPU takes what fits in ``GPU_MEMORY_SHARE`` of free memory.
    A unit's result does not depend on its group, so this choice changes speed, not bytes."""
    wanted = params.train.fold_batch
    if wanted != "auto":
        return min(int(wanted), n_units)
    if device.type != "cuda":
        return math.ceil(n_units / cpu_workers(params, n_units))
    per_unit = unit_bytes(params, data, device)
    free, _ = torch.cuda.mem_get_info(device)
    return max(1, min(n_units, int(GPU_MEMORY_SHARE * free // per_unit)))


ACTIVATION_BYTES = 49
"""Bytes of activations a training step keeps per token, embedding channel and block (measured: ViT-B/16, bf16,
batch 34); used where the activations cannot be measured (no GPU)."""


def unit_bytes(params: Params, data: flowset.FlowSet, device: torch.device | None = None) -> int:
    """Device memory of one unit in training: fp32 weights, gradients and two Adam moments (counted on a model
    built on the meta device: nothing allocated, nothing downloaded), plus the activations of one measured
    forward/backward pass of a one-unit group on ``device`` when it is a GPU, else ``ACTIVATION_BYTES`` per token x
    channel x block for a ViT and :func:`saved_activation_bytes` for a comparison network. An estimate that turns
    out short is caught: a group out of memory is halved."""
    spec = params.model.model_copy(update={"pretrained": False, "weights_path": None})
    with torch.device("meta"):
        model = models.build(spec, data.flow.shape[1], data.num_classes, data.size)
    n_params = sum(p.numel() for p in model.parameters())
    if device is not None and device.type == "cuda":
        return 16 * n_params + _measured_activations(spec, data, device, params.train.batch_size)
    if not isinstance(model, models.FlowModel):  # a comparison architecture: what its autograd graph keeps
        return 16 * n_params + saved_activation_bytes(spec, data, params.train.batch_size)
    tokens = model.grid * model.grid + 1
    return 16 * n_params + params.train.batch_size * tokens * model.vit.embed_dim * model.depth * ACTIVATION_BYTES


def saved_activation_bytes(spec: ModelParams, data: flowset.FlowSet, batch: int) -> int:
    """Bytes autograd keeps for the backward of one training forward of ``batch`` samples, counted from the saved
    tensors' shapes on the meta device (nothing is computed or allocated; a tensor saved by two ops counts twice)."""
    saved: list[int] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t.numel() * t.element_size())
        return t

    with torch.device("meta"):
        model = models.build(spec, data.flow.shape[1], data.num_classes, data.size).train()
        x = torch.zeros((batch, data.flow.shape[1], data.size, data.size))
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(x)
    return int(sum(saved))


def _measured_activations(spec: ModelParams, data: flowset.FlowSet, device: torch.device, batch: int) -> int:
    """Peak memory of one bf16 forward/backward of a one-unit group (attention row on), past weights and grads."""
    model = models.group([models.build(spec, data.flow.shape[1], data.num_classes, data.size)]).to(device)
    model.train()
    model.dropout_generators = [torch.Generator()]
    x = torch.zeros((1, batch, data.flow.shape[1], data.size, data.size), device=device)
    face = None
    if spec.face_stream:
        face = torch.zeros((1, batch, 1, *data.onset.shape[1:]), device=device)
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        model(x, face=face, need_attention=True).float().sum().backward()
    torch.cuda.synchronize(device)
    grads = sum(p.numel() * p.element_size() for p in model.parameters())
    peak = torch.cuda.max_memory_allocated(device) - base - grads
    del model, x, face
    torch.cuda.empty_cache()
    return max(int(peak), 0)


MAX_SAT_OUT = 0.03
"""Most of a grouping's compute that may go to units sitting steps out; more groups are formed to stay below it."""


def steps_per_epoch(unit: Unit, batch_size: int) -> int:
    """Training steps one epoch of ``unit`` takes (its group runs as many as its largest unit)."""
    return len(batch_bounds(len(unit.fold.train_rows), batch_size))


def sat_out_share(groups: Sequence[Sequence[int]]) -> float:
    """Share of a grouping's compute spent on units that sit a step out, from each group's units' steps per epoch:
    a group computes ``len(group) x max(steps)`` unit-steps of a full (G, B) batch, its units use ``sum(steps)``."""
    computed = sum(len(g) * max(g) for g in groups if g)
    return 1 - sum(sum(g) for g in groups) / computed if computed else 0.0


def padded_share(groups: Sequence[Sequence[int]], batch_size: int) -> float:
    """Share of a grouping's computed rows that hold no training clip, from each group's units' training-set
    sizes: sat-out steps plus each unit's last partial batch (every step computes ``batch_size`` rows per unit)."""
    steps = [[len(batch_bounds(n, batch_size)) for n in g] for g in groups]
    used = sum(hi - lo for g in groups for n in g for lo, hi in batch_bounds(n, batch_size))
    computed = batch_size * sum(len(s) * max(s) for s in steps if s)
    return 1 - used / computed if computed else 0.0


def make_groups(units: list[Unit], size: int, batch_size: int) -> list[list[Unit]]:
    """Groups of at most ``size`` units of similar steps per epoch, so few sit steps out (a group runs as many
    steps as its largest unit): the units sorted by steps, cut where the compute is least (units x their group's
    steps), into the fewest groups that keep the sat-out share under ``MAX_SAT_OUT``; the largest groups first (a
    worker pool then finishes together). A unit's result does not depend on its group, so this changes speed only;
    each group lists its units in the given order (seed, then fold)."""
    if not units:
        return []
    steps = [steps_per_epoch(u, batch_size) for u in units]
    order = sorted(range(len(units)), key=lambda i: (-steps[i], i))
    cuts = _cheapest_cuts([steps[i] for i in order], size, math.ceil(len(units) / size))
    groups = [sorted(order[a:b]) for a, b in cuts]
    groups.sort(key=lambda g: (-len(g) * max(steps[i] for i in g), g[0]))
    return [[units[i] for i in g] for g in groups]


def _cheapest_cuts(steps: list[int], size: int, fewest: int) -> list[tuple[int, int]]:
    """Split descending ``steps`` into runs of 1..``size`` with the least compute (sum of run length x its first,
    largest value), ties going to the more even split: the fewest runs (at least ``fewest``) whose sat-out share
    is under ``MAX_SAT_OUT`` (dynamic programming over the cut points, one more run at a time)."""
    n, inf = len(steps), (math.inf, math.inf)
    best = [[(0, 0)] + [inf] * n]  # best[k][end]: (compute, sum of squared run lengths) of steps[:end] in k runs
    back: list[list[int]] = [[0] * (n + 1)]
    while True:
        k = len(best)
        row, links = [inf] * (n + 1), [0] * (n + 1)
        for end in range(k, n + 1):
            for start in range(max(k - 1, end - size), end):
                if best[k - 1][start] == inf:
                    continue
                length = end - start
                cost = (best[k - 1][start][0] + length * steps[start], best[k - 1][start][1] + length * length)
                if cost < row[end]:
                    row[end], links[end] = cost, start
        best.append(row)
        back.append(links)
        if k < fewest or row[n] == inf:
            continue
        cuts, end = [], n
        for j in range(k, 0, -1):
            cuts.append((back[j][end], end))
            end = back[j][end]
        cuts.reverse()
        if k == n or sat_out_share([steps[a:b] for a, b in cuts]) < MAX_SAT_OUT:
            return cuts


def unit_path(ckpt_dir: Path, seed: int, fold: int) -> Path:
    return ckpt_dir / f"unit-s{seed}-f{fold:02d}.pt"


def run(
    params: Params, method: str, flow_dir: Path, out_dir: Path, seeds: list[int] | None = None, resume: bool = True,
    data: flowset.FlowSet | None = None,
) -> Path:
    """LOSO-train ``method`` for every seed (default ``compare.seeds``) on the flow set in ``flow_dir`` (``data``:
    already read by :func:`memix.training.inputs.read_data`); write the outputs into ``out_dir`` and return
    predictions.parquet's path."""
    if method not in MIXING_METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(MIXING_METHODS)}")
    registry.check_trainable(params.model.name, method)
    seeds = list(params.compare.seeds if seeds is None else seeds)
    out_dir = Path(out_dir)
    if data is None:
        data = read_data(params, flow_dir)  # checks the augmentation first
    else:
        check_augment(params)  # the caller read the data
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
    groups = make_groups(units, fold_batch(params, device, len(units), data), params.train.batch_size)
    fp = fingerprint(params, method, data.index, device)
    ckpt_dir = out_dir / "checkpoints"
    if not resume:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    done = _finished_units(ckpt_dir, units, fp)
    for path in sorted(ckpt_dir.glob("group-*.pt")) if ckpt_dir.is_dir() else []:
        if checkpoint.cut_short(path):  # its state is gone: the save that replaces it in place did not finish
            log.warning("train %s: the run stopped while saving %s: that group trains again from its first epoch",
                        method, path.name)
    if not done and not _group_in_progress(ckpt_dir, fp):  # nothing of THIS run to resume: start clean
        stale = [p for p in sorted(ckpt_dir.glob("*.pt")) if not checkpoint.cut_short(p)] if ckpt_dir.is_dir() else []
        if stale:
            log.warning(
                "train %s: discarding %d checkpoint(s) in %s: written by another run (other code, params or inputs); "
                "training starts from the first epoch", method, len(stale), ckpt_dir,
            )
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    pending = [g for g in groups if not all((u.seed, u.fold.index) in done for u in g)]
    job = GroupJob(dump_params(params), method, str(data.path), str(ckpt_dir), fp)

    epochs = params.train.epochs
    # the live view goes into live/ itself only when there is no earlier output set that it would mix with
    earlier = any((out_dir / name).exists() for name in OUTPUTS)
    live = LiveLog(ckpt_dir / "live" if earlier else out_dir / "live", seeds, len(folds), epochs)
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
                state = result.to_state() | {"fingerprint": fp}
                checkpoint.save_file(unit_path(ckpt_dir, result.seed, result.fold), state)
                done[(result.seed, result.fold)] = result
            checkpoint.remove(job.ckpt_path(pending[i]))

        try:
            run_with_executor(params, job, pending, device, finished, progress)
        except KeyboardInterrupt:
            n_done = sum(all((u.seed, u.fold.index) in done for u in g) for g in groups)
            raise KeyboardInterrupt(f"rerun resumes from {n_done} finished groups") from None
        finally:
            live.close()
    results = _drop_diverged(method, [done[(u.seed, u.fold.index)] for u in units])
    write_outputs(out_dir, data, results, seeds)
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    return out_dir / "predictions.parquet"


def _drop_diverged(method: str, results: list[UnitResult]) -> list[UnitResult]:
    """Under ``on_divergence: drop`` (under ``fail`` training has stopped already): the results without every
    fold in which some seed diverged, each named in a warning."""
    diverged = {(r.seed, r.fold): (r.subject, epoch) for r in results if (epoch := diverged_epoch(r.history))}
    if not diverged:
        return results
    for (seed, fold), (subject, epoch) in sorted(diverged.items()):
        log.warning(
            "train %s: seed %d fold %d (test subject %s) diverged at epoch %d: fold %d left out of the outputs "
            "for every seed (train.on_divergence: drop)", method, seed, fold, subject, epoch, fold,
        )
    folds = {fold for _, fold in diverged}
    kept = [r for r in results if r.fold not in folds]
    if not kept:
        raise ValueError(f"train {method}: every fold diverged; nothing to write (lower train.lr)")
    return kept


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
        state = checkpoint.header(path)  # the index alone: a group's tensors may take gigabytes
        if state is not None and state.get("fingerprint") == fp:
            return True
    return False

