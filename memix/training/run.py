"""Training one mixing method over its seeds under one protocol: every (seed, fold) unit, fold-batched.

The units (one per seed and fold of the protocol, :mod:`memix.training.folds`: LOSO's test subjects, or a
composite's cross-dataset splits) are split into groups of at most ``train.fold_batch``
(:mod:`memix.training.sizing`) that each train as one (:mod:`memix.training.loop`), units of similar training-set
size together so that few sit steps out (:mod:`memix.training.grouping`); groups run where ``train.executor`` says
(:mod:`memix.training.executor`).

Resume: a finished group's units are saved as ``checkpoints/unit-s<seed>-f<fold>.pt`` the moment it finishes, and
a group in progress as ``checkpoints/group-*.pt/`` (:mod:`.checkpoint`); a run started again skips finished units
and continues the rest to the same bytes. A fingerprint of the params, the inputs and the code
(:mod:`memix.codehash`: the files of the train stage's import closure, as ``dvc.yaml`` lists them) makes
checkpoints of another run be discarded, with a warning, rather than mixed in. The folder is deleted when the run
completes (it is not a DVC output). Ctrl-C stops the run with one line saying how many groups a rerun resumes from
(exit status 130).

Key-frame noise (the train stage: ``eval.keyframe_noise``): after its last epoch every LOSO unit also scores its test
clips in each level's noise set (the flow set with shifted onset and apex, :mod:`memix.preprocess.keyframe_noise`),
kept with the unit's result (so a resumed run writes the same ``keyframe_noise.parquet``; the sets' manifests are in
the fingerprint). The architecture runs and the cross-dataset protocols score none.

A unit whose loss turns NaN or infinite stops the run (``train.on_divergence: fail``, :mod:`.divergence`) or, with
``drop``, leaves its fold out of the outputs for every seed (so every seed still predicts the same clips), with a
warning naming method, seed, fold and epoch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from memix import codehash, models
from memix.config import MIXING_METHODS, Params, dump_params
from memix.io import atomic, flowset, shards
from memix.mixing import module_name
from memix.models import registry
from memix.training import checkpoint
from memix.training.divergence import diverged_epoch
from memix.training.executor import DoneFn, GroupJob, GroupProgressFn, run_local
from memix.training.folds import Fold, make_folds
from memix.training.grouping import make_groups
from memix.training.inputs import check_augment, read_data, read_noise_sets
from memix.training.loop import Unit, UnitResult
from memix.training.outputs import LiveLog, write_outputs
from memix.training.sizing import fold_batch

OUTPUTS = ("predictions.parquet", "history.parquet", "curves.csv", "live", "keyframe_noise.parquet")
"""What a run writes into its folder (the DVC outputs of the train stage; ``keyframe_noise.parquet`` only where the
run scores key-frame noise sets, the train stage's)."""

_TITLES = {"loso": "LOSO", "holdout_database": "HDE", "leave_one_dataset_out": "LODO"}

log = logging.getLogger(__name__)


def code_hash(method: str) -> str:
    """Hash of the code training ``method`` runs: the train stage's import closure plus the method's module."""
    return codehash.stage_code_hash("train", [module_name(method)], entry=__name__)


def fingerprint(
    params: Params, method: str, index: pd.DataFrame, device: torch.device, protocol: str = "loso",
    noise: Mapping[int, flowset.FlowSet] | None = None,
) -> str:
    """What a checkpoint must match to be resumed: the params this run uses, its inputs' index (and the key-frame
    noise sets it scores: a finished unit holds their predictions), the device and the code (a checkpoint of older
    code would put that code's predictions under the new code's name)."""
    payload = {
        "train": params.train.model_dump(mode="json"),
        "model": params.model.model_dump(mode="json"),
        "mixing": getattr(params.mixing, method).model_dump(mode="json"),
        "method": method,
        **({"protocol": protocol} if protocol != "loso" else {}),  # LOSO's checkpoints keep their fingerprints
        **({"keyframe_noise": {str(n): _set_digest(d) for n, d in sorted(noise.items())}} if noise else {}),
        "device": device.type,
        "code": code_hash(method),
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode())
    digest.update(pd.util.hash_pandas_object(_hashable(index), index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _set_digest(data: flowset.FlowSet) -> str:
    """sha256 of a flow set's manifest, which holds the sha256 of every file of the set."""
    return atomic.file_sha256(Path(data.path) / shards.MANIFEST)


def _hashable(index: pd.DataFrame) -> pd.DataFrame:
    """The index with each list-valued cell (the flow index's ``landmarks``) as the bytes of its float64 values."""
    out = index.copy()
    for col in out.columns:
        if out[col].dtype == object and len(out) and isinstance(out[col].iloc[0], (list, tuple, np.ndarray)):
            out[col] = [np.asarray(v, dtype=np.float64).tobytes() for v in out[col]]
    return out


def unit_path(ckpt_dir: Path, seed: int, fold: int) -> Path:
    return ckpt_dir / f"unit-s{seed}-f{fold:02d}.pt"


def run(
    params: Params, method: str, flow_dir: Path, out_dir: Path, seeds: list[int] | None = None, resume: bool = True,
    data: flowset.FlowSet | None = None, protocol: str = "loso", keyframe_noise: Mapping[int, Path] | None = None,
) -> Path:
    """Train ``method`` for every seed (default ``compare.seeds``) on every fold of ``protocol`` (LOSO, or a
    cross-dataset protocol of :mod:`memix.training.folds`) of the flow set in ``flow_dir`` (``data``: already read
    by :func:`memix.training.inputs.read_data`); write the outputs into ``out_dir`` and return predictions.parquet's
    path.

    ``keyframe_noise`` (level -> the folder of its key-frame noise set, e.g. ``{}``) makes every unit score its test
    clips in each set after its last epoch, into ``keyframe_noise.parquet`` (written even with no level, so the
    train stage's outputs keep their shape); ``None`` (the architecture runs) scores none and writes no such file.
    Only LOSO scores them: under a cross-dataset protocol it is skipped."""
    if method not in MIXING_METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(MIXING_METHODS)}")
    registry.check_trainable(params.model.name, method)
    seeds = list(params.compare.seeds if seeds is None else seeds)
    out_dir = Path(out_dir)
    if data is None:
        data = read_data(params, flow_dir)  # checks the augmentation first
    else:
        check_augment(params)  # the caller read the data
    if keyframe_noise is not None and protocol != "loso":
        log.info("train %s: key-frame noise is scored under LOSO only; skipped under %s", method, protocol)
        keyframe_noise = None
    noise = None if keyframe_noise is None else read_noise_sets(params, data, keyframe_noise)
    device = models.resolve_device(params.train.device)
    threads = torch.get_num_threads()
    if params.train.threads:
        torch.set_num_threads(params.train.threads)
    try:
        return _run(params, method, seeds, data, device, out_dir, resume, protocol, noise)
    finally:
        torch.set_num_threads(threads)


def _run(
    params: Params, method: str, seeds: list[int], data: flowset.FlowSet, device: torch.device, out_dir: Path,
    resume: bool, protocol: str = "loso", noise: dict[int, flowset.FlowSet] | None = None,
) -> Path:
    folds = make_folds(data.index, protocol)
    units = [Unit(seed, fold) for seed in seeds for fold in folds]
    groups = make_groups(units, fold_batch(params, device, len(units), data), params.train.batch_size)
    fp = fingerprint(params, method, data.index, device, protocol, noise)
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
    noise_dirs = tuple((level, str(d.path)) for level, d in sorted((noise or {}).items()))
    job = GroupJob(dump_params(params), method, str(data.path), str(ckpt_dir), fp, noise_dirs)

    epochs = params.train.epochs
    # the live view goes into live/ itself only when there is no earlier output set that it would mix with
    earlier = any((out_dir / name).exists() for name in OUTPUTS)
    live = LiveLog(ckpt_dir / "live" if earlier else out_dir / "live", seeds, len(folds), epochs)
    todo = sum(len(g) for g in pending)
    desc = f"{_TITLES[protocol]} {method} seeds {seeds}, {len(pending)} group(s) of <= {max(map(len, groups))}"
    with tqdm(total=len(units) * epochs, initial=(len(units) - todo) * epochs, unit="fold-epoch", desc=desc) as bar:
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
    results = _drop_diverged(method, [done[(u.seed, u.fold.index)] for u in units], {f.index: f for f in folds})
    write_outputs(out_dir, data, results, seeds, protocol, None if noise is None else sorted(noise))
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    return out_dir / "predictions.parquet"


def _drop_diverged(method: str, results: list[UnitResult], folds: dict[int, Fold]) -> list[UnitResult]:
    """Under ``on_divergence: drop`` (under ``fail`` training has stopped already): the results without every
    fold in which some seed diverged, each named in a warning."""
    diverged = {(r.seed, r.fold): epoch for r in results if (epoch := diverged_epoch(r.history))}
    if not diverged:
        return results
    for (seed, fold), epoch in sorted(diverged.items()):
        log.warning(
            "train %s: seed %d %s diverged at epoch %d: fold %d left out of the outputs for every seed "
            "(train.on_divergence: drop)", method, seed, folds[fold].describe(), epoch, fold,
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

