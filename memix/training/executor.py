"""Where fold groups train: CPU worker processes or every visible GPU (``local``), or Ray tasks (``ray``).

A group's result does not depend on where it ran: each process uses ``train.threads`` torch threads, every draw
comes from the units' own generators, and a unit does not depend on its group companions. Each finished group is
handed to ``on_done`` as soon as it finishes (the caller checkpoints it), so a failure loses only unfinished
groups; a worker that dies (killed, out of memory) fails the run at once with the units it was training named.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from memix.config import Params
from memix.io import flowset
from memix.models.registry import input_kind
from memix.training.inputs import read_data
from memix.training.loop import ProgressFn, Unit, UnitResult, train_group
from memix.workers import start_worker

DoneFn = Callable[[int, list[UnitResult]], None]
"""Called in the parent with a group's position in the list and its results, as each group finishes."""

GroupProgressFn = Callable[[int, int, list[dict[str, Any]]], None]
"""Called in the parent after each epoch of a group: (group position, epoch, per-unit stats; see ProgressFn)."""


@dataclass(frozen=True)
class GroupJob:
    """Everything a process needs to train one group, so it can be sent to a worker or a Ray task."""

    params: dict[str, Any]
    method: str
    flow_dir: str
    ckpt_dir: str
    fingerprint: str
    noise_dirs: tuple[tuple[int, str], ...] = ()  # (level, folder) of each key-frame noise set, scored at the end

    def ckpt_path(self, group: Sequence[Unit]) -> Path:
        first = group[0]
        return Path(self.ckpt_dir) / f"group-s{first.seed}-f{first.fold.index:02d}-n{len(group)}.pt"


def describe(group: Sequence[Unit]) -> str:
    seeds = sorted({u.seed for u in group})
    folds = [u.fold.index for u in group]
    return f"seed(s) {seeds} fold(s) {folds[0]}..{folds[-1]} ({len(group)} units)"


def cpu_workers(params: Params, n_groups: int) -> int:
    """CPU processes: ``train.workers`` (0 = one per core), never more than there are groups."""
    wanted = params.train.workers or (os.cpu_count() or 1)
    return max(1, min(wanted, n_groups))


def run_local(
    job: GroupJob, groups: Sequence[Sequence[Unit]], device: torch.device, on_done: DoneFn,
    progress: GroupProgressFn | None = None,
) -> None:
    """Train ``groups`` here: in this process, on CPU worker processes, or one process per visible GPU."""
    params = Params.model_validate(job.params)
    if device.type == "cuda" and torch.cuda.device_count() > 1 and len(groups) > 1:
        _run_pool(job, groups, [f"cuda:{i}" for i in range(torch.cuda.device_count())], "spawn", on_done, progress)
        return
    if device.type == "cpu" and cpu_workers(params, len(groups)) > 1:
        start = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        _run_pool(job, groups, ["cpu"] * cpu_workers(params, len(groups)), start, on_done, progress)
        return
    for i, group in enumerate(groups):
        report = None if progress is None else functools.partial(progress, i)
        on_done(i, _train(job, group, str(device), report))


def _run_pool(
    job: GroupJob, groups: Sequence[Sequence[Unit]], slots: list[str], start: str, on_done: DoneFn,
    progress: GroupProgressFn | None,
) -> None:
    """One single-process pool per slot (a CPU worker or a GPU); the next group goes to whichever slot frees up.

    Workers send their per-epoch progress through a queue that a thread of the parent hands to ``progress``.
    """
    ctx = multiprocessing.get_context(start)
    messages = ctx.Queue()
    pools = [
        ProcessPoolExecutor(
            1, mp_context=ctx, initializer=_worker_init, initargs=(job.params, messages, os.getpid())
        )
        for _ in slots
    ]
    running: dict[Future, tuple[int, int]] = {}
    queue = list(enumerate(groups))
    relay = _Relay(messages, progress)

    def submit(i: int, group: Sequence[Unit], slot: int) -> None:
        running[pools[slot].submit(_train_reporting, job, group, slots[slot], i)] = (i, slot)

    try:
        for slot in range(len(slots)):
            if queue:
                submit(*queue.pop(0), slot)
        while running:
            finished, _ = wait(running, timeout=_RELAY_POLL_S, return_when=FIRST_COMPLETED)
            relay.check()
            for fut in finished:
                i, slot = running.pop(fut)
                try:
                    results = fut.result()
                except BrokenProcessPool:
                    raise RuntimeError(
                        f"a training worker died (killed, or out of memory?) while training {describe(groups[i])}; "
                        "finished groups are checkpointed: run the stage again to resume"
                    ) from None
                on_done(i, results)
                if queue:
                    submit(*queue.pop(0), slot)
        relay.stop()  # the last epochs' progress may still be on its way
        relay.check()
    finally:
        relay.stop()
        workers = [proc for pool in pools for proc in list((getattr(pool, "_processes", None) or {}).values())]
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)
        if running:  # the parent gives up early: do not leave workers training for nobody
            for proc in workers:
                with contextlib.suppress(Exception):
                    proc.kill()


_FLOWS: dict[tuple[str, str], flowset.FlowSet] = {}
_MESSAGES: Any = None


_RELAY_POLL_S = 0.2
"""How often the parent looks whether the relay failed while it waits for a group."""


class _Relay:
    """A thread of the parent that hands the workers' per-epoch progress to ``progress`` (the live view).

    A failure there (DVCLive's disk is full) is kept for the parent's main thread, which raises it as the run's
    error (:meth:`check`) and stops the workers: an exception left in the thread would print a traceback of its own
    and let the run train on without its live view. The queue is still drained, so workers never block on it.
    """

    def __init__(self, messages: Any, progress: GroupProgressFn | None) -> None:
        self.messages, self.progress = messages, progress
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (item := self.messages.get()) is not None:
            if self.progress is None or self.error is not None:
                continue
            try:
                self.progress(*item)
            except BaseException as err:  # noqa: BLE001 - raised again in the main thread by check()
                self.error = err

    def check(self) -> None:
        """Raise, in the caller's thread, what failed in the relay."""
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        """Let the thread relay what is queued, then end it (once)."""
        if self.thread.is_alive():
            self.messages.put(None)
            self.thread.join(timeout=5)


def _train_reporting(job: GroupJob, group: Sequence[Unit], device: str, position: int) -> list[UnitResult]:
    """In a worker: train the group, sending each epoch's stats to the parent."""
    return _train(job, group, device, lambda epoch, stats: _MESSAGES.put((position, epoch, stats)))


def _train(job: GroupJob, group: Sequence[Unit], device: str, progress: ProgressFn | None = None) -> list[UnitResult]:
    params = Params.model_validate(job.params)
    noise = {level: _opened(params, folder) for level, folder in job.noise_dirs}
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    return train_group(params, job.method, group, _opened(params, job.flow_dir), dev, job.ckpt_path(group),
                       job.fingerprint, progress, noise)


def _opened(params: Params, folder: str) -> flowset.FlowSet:
    """A flow set as the model reads it; a worker process opens each once per input kind, whatever it trains."""
    key = (folder, input_kind(params.model.name))
    if key not in _FLOWS:
        _FLOWS[key] = read_data(params, folder)
    return _FLOWS[key]


def _worker_init(params: dict[str, Any], messages: Any, parent_pid: int) -> None:
    """Per worker: die with the parent, the progress queue, and the thread count every training process uses.
    Ctrl-C reaches every process of the terminal's group: the parent alone handles it (and stops the workers),
    so the user sees one line, not a traceback per worker."""
    global _MESSAGES
    _MESSAGES = messages
    start_worker(parent_pid)
    threads = Params.model_validate(params).train.threads
    if threads:
        torch.set_num_threads(threads)
