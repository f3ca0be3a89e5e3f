"""Where folds train: in this process, or in a pool of worker processes on a CPU (one fold each)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from memix import mixing
from memix.config import Params
from memix.io.flowset import FlowSet
from memix.training.folds import Fold, fold_stats
from memix.training.loop import fold_tensors, train_fold


def fold_workers(tp: Any, device: torch.device, n_pending: int) -> int:
    """Processes training folds at once: ``train.workers`` (0 = one per CPU core), 1 on a GPU or for one fold."""
    if device.type != "cpu" or n_pending <= 1:
        return 1
    wanted = tp.workers or (os.cpu_count() or 1)
    return max(1, min(wanted, n_pending))


@dataclass
class FoldJob:
    """Everything one fold's training needs, so a worker process can run it from the fold alone."""

    params: Params
    method: str
    seed: int
    data: FlowSet
    device: torch.device
    ckpt_dir: Path
    fp: str

    def __call__(self, fold: Fold, progress: bool = True) -> tuple[Fold, dict[str, Any]]:
        mean, std = fold_stats(self.data.index, fold, self.data.channels)
        tensors = fold_tensors(self.data, fold, mean, std, self.params.model.face_stream, self.device)
        state = train_fold(self.params, self.method, self.seed, fold, tensors, self.data.num_classes, self.device,
                           self.ckpt_dir, self.fp, progress=progress)
        return fold, state


_WORKER_JOB: FoldJob | None = None


def _worker_init(job: FoldJob) -> None:
    """Per worker: the same thread count a fold gets in-process (``run`` sets it there)."""
    global _WORKER_JOB
    _WORKER_JOB = job
    if job.params.train.threads:
        torch.set_num_threads(job.params.train.threads)


def _worker_run(fold: Fold) -> tuple[Fold, dict[str, Any]]:
    assert _WORKER_JOB is not None
    return _WORKER_JOB(fold, progress=False)


def map_folds(job: FoldJob, folds: list[Fold], workers: int) -> Iterator[tuple[Fold, dict[str, Any]]]:
    """Train ``folds`` on ``workers`` processes and yield (fold, state) in fold order.

    Each fold is seeded from (seed, fold) and runs with ``train.threads`` torch threads wherever it runs, so the
    results do not depend on the worker count. Workers are forked where the platform allows (no re-import of
    torch and timm per worker) and spawned elsewhere.
    """
    if workers <= 1:
        for fold in folds:
            yield job(fold)
        return
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    if ctx.get_start_method() == "fork":  # import the method's module once here, not once per worker
        mixing.mixer_class(job.method)
    with ctx.Pool(workers, initializer=_worker_init, initargs=(job,)) as pool:
        yield from pool.imap(_worker_run, folds)


