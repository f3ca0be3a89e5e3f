"""``train.executor: ray``: fold groups as Ray tasks, on a cluster (``RAY_ADDRESS``) or a local Ray.

The flow set's arrays (and the key-frame noise sets') go into Ray's object store once (``ray.put``) and every task
reads them from there, so workers need no shared file system; the project's ``memix`` package travels with the
tasks (``py_modules``), so a cluster runs the code of the checkout that started the run. Each task asks for
``train.ray_gpus`` GPUs (0: a CPU task using ``train.threads`` threads) and trains one group with the same code as
the local executor, so on a CPU the predictions are byte-identical to ``executor: local``. Ray is an optional
extra: ``pip install 'memix[ray]'``.

Without ``RAY_ADDRESS`` a fresh local Ray starts (``address="local"``): Ray's own default would join whatever
cluster ``ray start`` last started on this machine. A task is never retried by Ray (``max_retries=0``): Ray would
rerun a lost node's task elsewhere without a word, so a failing node would only show as a slower run. Instead the
first failed task (its node died, its worker was killed) fails the run at once, naming every group that did not
finish; the other tasks are cancelled, and the finished groups are checkpointed, so running the stage again
trains only those groups.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from memix.config import Params
from memix.io.flowset import FlowSet
from memix.training.executor import DoneFn, GroupJob, describe
from memix.training.inputs import read_data
from memix.training.loop import Unit, UnitResult, train_group

log = logging.getLogger(__name__)


def run_ray(job: GroupJob, groups: Sequence[Sequence[Unit]], on_done: DoneFn) -> None:
    """Submit every group as a Ray task and hand results to ``on_done`` as tasks finish."""
    try:
        import ray
    except ImportError:
        raise RuntimeError("train.executor is 'ray' but Ray is not installed: pip install 'memix[ray]'") from None
    import memix

    params = Params.model_validate(job.params)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(
            address=os.environ.get("RAY_ADDRESS") or "local",
            runtime_env={"py_modules": [str(Path(memix.__file__).parent)]},
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    refs: dict[Any, int] = {}
    try:
        arrays = ray.put({
            **_portable(read_data(params, job.flow_dir)),
            "noise": {level: _portable(read_data(params, folder)) for level, folder in job.noise_dirs},
        })
        gpus = params.train.ray_gpus
        task = ray.remote(num_gpus=gpus, num_cpus=max(1, params.train.threads), max_retries=0)(_train_task)
        refs = {task.remote(job, list(group), arrays, gpus > 0): i for i, group in enumerate(groups)}
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            try:
                _hand_on(ray, ready[0], refs, groups, on_done)
            except ray.exceptions.RayError as err:
                failed = refs.pop(ready[0])
                _collect_finished(ray, refs, groups, on_done)
                unfinished = sorted([failed, *refs.values()])
                first = str(err).strip().splitlines()[0] if str(err).strip() else ""
                raise RuntimeError(
                    f"Ray task training {describe(groups[failed])} failed ({type(err).__name__}: {first}); "
                    f"{len(unfinished)} group(s) did not finish: "
                    f"{'; '.join(describe(groups[i]) for i in unfinished)}. "
                    "Finished groups are checkpointed: run the stage again to train only these"
                ) from None
    finally:
        for ref in refs:  # the run gives up early: leave no task training for nobody on the cluster
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()


def _collect_finished(ray: Any, refs: dict[Any, int], groups: Sequence[Sequence[Unit]], on_done: DoneFn) -> None:
    """Hand ``on_done`` every group that has already finished (so it is checkpointed); failed ones stay in ``refs``."""
    ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0) if refs else ([], [])
    for ref in ready:
        with contextlib.suppress(ray.exceptions.RayError):
            _hand_on(ray, ref, refs, groups, on_done)


def _hand_on(ray: Any, ref: Any, refs: dict[Any, int], groups: Sequence[Sequence[Unit]], on_done: DoneFn) -> None:
    """Fetch a finished task's states (raises its ``RayError``, leaving it in ``refs``), then hand its group on."""
    node, states = ray.get(ref)
    i = refs.pop(ref)
    log.debug("Ray node %s trained %s", node, describe(groups[i]))
    on_done(i, [UnitResult.from_state(s) for s in states])


def _train_task(
    job: GroupJob, group: list[Unit], arrays: dict[str, Any], gpu: bool
) -> tuple[str, list[dict[str, Any]]]:
    """In a Ray worker: rebuild the flow set from the object store and train the group; returns the id of the
    node it ran on (logged by the driver) with the units' states."""
    import ray

    params = Params.model_validate(job.params)
    if params.train.threads:
        torch.set_num_threads(params.train.threads)
    data = _rebuilt(job.flow_dir, arrays)
    noise = {level: _rebuilt(folder, arrays["noise"][level]) for level, folder in job.noise_dirs}
    device = torch.device("cuda" if gpu else "cpu")
    results = train_group(params, job.method, group, data, device, noise=noise)
    return ray.get_runtime_context().get_node_id(), [r.to_state() for r in results]


def _portable(data: FlowSet) -> dict[str, Any]:
    """What a task rebuilds a flow set from (the object store holds arrays, not memory maps)."""
    return {"index": data.index, "flow": np.asarray(data.flow), "stats": data.stats,
            "onset": None if data.onset is None else np.asarray(data.onset)}


def _rebuilt(folder: str, arrays: dict[str, Any]) -> FlowSet:
    return FlowSet(path=Path(folder), index=arrays["index"], flow=arrays["flow"], onset=arrays["onset"],
                   stats=arrays["stats"])
