"""``train.executor: ray``: fold groups as Ray tasks, on a cluster (``RAY_ADDRESS``) or a local Ray.

The flow set's arrays go into Ray's object store once (``ray.put``) and every task reads them from there, so
workers need no shared file system; the project's ``memix`` package travels with the tasks (``py_modules``), so a
cluster runs the code of the checkout that started the run. Each task asks for ``train.ray_gpus`` GPUs (0: a CPU
task using ``train.threads`` threads) and trains one group with the same code as the local executor, so on a CPU
the predictions are byte-identical to ``executor: local``. Ray is an optional extra: ``pip install 'memix[ray]'``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from memix.config import Params
from memix.io.flowset import FlowSet, read
from memix.training.executor import DoneFn, GroupJob, describe
from memix.training.loop import Unit, UnitResult, train_group


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
            address=os.environ.get("RAY_ADDRESS") or None,
            runtime_env={"py_modules": [str(Path(memix.__file__).parent)]},
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    try:
        data = read(job.flow_dir, need_onset=params.model.face_stream)
        arrays = ray.put({
            "index": data.index, "flow": np.asarray(data.flow), "stats": data.stats,
            "onset": None if data.onset is None else np.asarray(data.onset),
        })
        gpus = params.train.ray_gpus
        task = ray.remote(num_gpus=gpus, num_cpus=max(1, params.train.threads))(_train_task)
        refs = {task.remote(job, list(group), arrays, gpus > 0): i for i, group in enumerate(groups)}
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            i = refs.pop(ready[0])
            try:
                states = ray.get(ready[0])
            except ray.exceptions.RayError as err:
                raise RuntimeError(f"Ray task training {describe(groups[i])} failed: {err}") from None
            on_done(i, [UnitResult.from_state(s) for s in states])
    finally:
        if started_here:
            ray.shutdown()


def _train_task(job: GroupJob, group: list[Unit], arrays: dict[str, Any], gpu: bool) -> list[dict[str, Any]]:
    """In a Ray worker: rebuild the flow set from the object store and train the group."""
    params = Params.model_validate(job.params)
    if params.train.threads:
        torch.set_num_threads(params.train.threads)
    data = FlowSet(path=Path(job.flow_dir), index=arrays["index"], flow=arrays["flow"], onset=arrays["onset"],
                   stats=arrays["stats"])
    device = torch.device("cuda" if gpu else "cpu")
    results = train_group(params, job.method, group, data, device)
    return [r.to_state() for r in results]
