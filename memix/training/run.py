"""Leave-one-subject-out training of one (method, seed): predictions for every fold and evaluated epoch.

Resume: ``out_dir/checkpoints/fold<NN>.pt`` when a fold ends (predictions + history) and ``currentNN.pt``
inside a fold (see :mod:`memix.training.loop`). A resumed run replays to the same bytes as an uninterrupted
one. The folder is deleted when the run completes (it is not a DVC output); a fingerprint of params and inputs
makes a stale folder be ignored rather than mixed in.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from memix.config import MIXING_METHODS, Params
from memix.io import atomic, flowset
from memix.training import checkpoint, loop
from memix.training.executor import FoldJob, fold_workers, map_folds
from memix.training.folds import make_folds
from memix.training.outputs import fold_predictions, write_curves, write_live


def fingerprint(params: Params, method: str, seed: int, index: pd.DataFrame, device: torch.device) -> str:
    """What a checkpoint must match to be resumed: the params this run uses, its inputs' index and device."""
    payload = {
        "train": params.train.model_dump(mode="json"),
        "model": params.model.model_dump(mode="json"),
        "mixing": getattr(params.mixing, method).model_dump(mode="json"),
        "method": method,
        "seed": seed,
        "device": device.type,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode())
    digest.update(pd.util.hash_pandas_object(index, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def run(params: Params, method: str, seed: int, flow_dir: Path, out_dir: Path, resume: bool = True) -> Path:
    """LOSO-train ``method`` with ``seed`` on the flow set in ``flow_dir``; returns predictions.parquet's path."""
    if method not in MIXING_METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(MIXING_METHODS)}")
    out_dir = Path(out_dir)
    data = flowset.read(flow_dir, need_onset=params.model.face_stream)

    device = loop.resolve_device(params.train.device)
    threads = torch.get_num_threads()
    if params.train.threads:
        torch.set_num_threads(params.train.threads)
    try:
        return _run(params, method, seed, data, device, out_dir, resume)
    finally:
        torch.set_num_threads(threads)


def _run(
    params: Params, method: str, seed: int, data: flowset.FlowSet, device: torch.device, out_dir: Path, resume: bool
) -> Path:
    index = data.index
    names = data.class_names
    folds = make_folds(index)
    fp = fingerprint(params, method, seed, index, device)

    ckpt_dir = out_dir / "checkpoints"
    if not resume:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    done: dict[int, dict[str, Any]] = {}
    for fold in folds:
        state = checkpoint.load(checkpoint.fold_path(ckpt_dir, fold.index))
        if state is not None and state.get("fingerprint") == fp:
            done[fold.index] = state
    if not done and not _in_progress(ckpt_dir, fp):  # nothing of THIS run to resume: start clean
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        shutil.rmtree(out_dir / "live", ignore_errors=True)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    pending = [fold for fold in folds if fold.index not in done]
    job = FoldJob(params, method, seed, data, device, ckpt_dir, fp)
    workers = fold_workers(params.train, device, len(pending))
    with tqdm(total=len(folds), initial=len(done), desc=f"LOSO {method} seed{seed}", unit="fold") as bar:
        for fold, state in map_folds(job, pending, workers):
            checkpoint.save(checkpoint.fold_path(ckpt_dir, fold.index), state)
            checkpoint.current_path(ckpt_dir, fold.index).unlink(missing_ok=True)
            done[fold.index] = state
            bar.update()
            loop.on_fold_end(fold.index)

    frames = []
    for fold in folds:
        state = done[fold.index]
        write_live(out_dir / "live" / f"fold{fold.index:02d}", fold, state["history"], len(fold.train_rows))
        frames.append(fold_predictions(index, fold, state, names))

    preds = pd.concat(frames, ignore_index=True).sort_values(["fold", "epoch", "clip_id"], kind="stable")
    out = out_dir / "predictions.parquet"
    atomic.write_parquet(out, preds.reset_index(drop=True))
    write_curves(out_dir / "curves.csv", preds, [done[f.index]["history"] for f in folds])
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    return out


def _in_progress(ckpt_dir: Path, fp: str) -> bool:
    """True when the folder holds an in-progress fold (``currentNN.pt``) of THIS run (same fingerprint)."""
    for path in sorted(ckpt_dir.glob("current*.pt")) if ckpt_dir.is_dir() else []:
        state = checkpoint.load(path)
        if state is not None and state.get("fingerprint") == fp:
            return True
    return False


