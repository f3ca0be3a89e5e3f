"""``train.executor: ray`` on a real two-node Ray cluster (``ray.cluster_utils.Cluster`` on loopback).

The head offers one CPU and the second node two, so the groups (one unit each) cannot all run on the head: the run
must spread, and its predictions must still be byte-identical to ``executor: local``. Then the second node is
removed while it trains a group: the run must fail at once naming every group that did not finish (Ray must not
quietly rerun the lost task elsewhere), and a rerun, on the head alone, resumes from the checkpointed groups to the
local bytes. memix is pointed at the cluster the documented way, ``RAY_ADDRESS``.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flowsets import make_flow_set

from memix.config import Params, parse_params
from memix.training import run

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'memix[ray]'")
psutil = pytest.importorskip("psutil")  # Ray's own dependency: finds the task running on the second node
from ray.cluster_utils import Cluster  # noqa: E402

SEEDS = [0, 1]
"""Two seeds x the flow set's 4 folds, one unit per group: 8 groups, more than the cluster's 3 CPUs run at once."""


def _params(executor: str) -> Params:
    return parse_params({
        "model": {"patch_size": 4, "embed_dim": 16, "depth": 1, "num_heads": 2},
        "train": {"epochs": 2, "batch_size": 8, "device": "cpu", "threads": 1, "fold_batch": 1, "executor": executor},
        "compare": {"seeds": SEEDS},
    })


@pytest.fixture(scope="module")
def flow_and_local(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """The tiny flow set and the local executor's predictions on it (what every Ray run must reproduce)."""
    root = tmp_path_factory.mktemp("ray-cluster")
    flow_dir = make_flow_set(root / "flow")
    return flow_dir, run.run(_params("local"), "memix", flow_dir, root / "local").read_bytes()


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[Cluster, Any]]:
    """A head with one CPU and a second node with two (two groups go there at once, so losing it loses two);
    every process is stopped afterwards, whatever happened."""
    from ray._common.utils import reset_ray_address

    cl = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        reset_ray_address()  # no other process's address-less ray.init() joins this test cluster
        second = cl.add_node(num_cpus=2)
        cl.wait_for_nodes()
        yield cl, second
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cl.shutdown()


def _nodes_used(caplog: pytest.LogCaptureFixture) -> set[str]:
    """Ids of the nodes the run's groups trained on, from the executor's debug lines."""
    return {str(r.args[0]) for r in caplog.records if r.getMessage().startswith("Ray node ")}


def test_groups_spread_over_two_nodes_give_the_local_bytes(
    cluster: tuple[Cluster, Any], flow_and_local: tuple[Path, bytes], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    cl, second = cluster
    flow_dir, local = flow_and_local
    monkeypatch.setenv("RAY_ADDRESS", cl.address)
    with caplog.at_level(logging.DEBUG, logger="memix.training.ray_executor"):
        preds = run.run(_params("ray"), "memix", flow_dir, tmp_path / "ray")
    assert _nodes_used(caplog) == {cl.head_node.node_id, second.node_id}
    assert preds.read_bytes() == local
    assert not ray.is_initialized()  # memix disconnected from the cluster it joined


def _remove_when_training(
    cl: Cluster, node: Any, ckpt_dir: Path, stop: threading.Event, removed: threading.Event
) -> None:
    """Remove ``node`` (its raylet and object store: the machine is gone) once one of its workers runs a group and
    some group has finished (been checkpointed): the run then has groups of all three kinds, done, lost, pending."""
    raylet = psutil.Process(node.all_processes["raylet"][0].process.pid)
    while not stop.is_set():
        for proc in raylet.children(recursive=True) if any(ckpt_dir.glob("unit-*.pt")) else []:
            with contextlib.suppress(psutil.Error):
                if "_train_task" in " ".join(proc.cmdline()):  # Ray titles a worker by the task it runs
                    cl.remove_node(node)
                    removed.set()
                    return
        stop.wait(0.02)


def test_a_lost_node_fails_the_run_naming_every_unfinished_group_and_a_rerun_resumes(
    cluster: tuple[Cluster, Any], flow_and_local: tuple[Path, bytes], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cl, second = cluster
    flow_dir, local = flow_and_local
    monkeypatch.setenv("RAY_ADDRESS", cl.address)
    out = tmp_path / "ray"
    stop, removed = threading.Event(), threading.Event()
    killer = threading.Thread(target=_remove_when_training, args=(cl, second, out / "checkpoints", stop, removed),
                              daemon=True)
    killer.start()
    try:
        with pytest.raises(RuntimeError, match=r"failed \((NodeDiedError|WorkerCrashedError)") as err:
            run.run(_params("ray"), "memix", flow_dir, out)
    finally:
        stop.set()
        killer.join(timeout=30)
    assert removed.is_set()
    message = str(err.value)
    named = {(int(s), int(a)) for s, a, b in re.findall(r"seed\(s\) \[(\d+)\] fold\(s\) (\d+)\.\.(\d+)",
                                                        message.split("did not finish:")[1]) if a == b}
    finished = {(int(m[1]), int(m[2])) for p in (out / "checkpoints").glob("unit-*.pt")
                if (m := re.fullmatch(r"unit-s(\d+)-f(\d+)\.pt", p.name))}
    every = {(seed, fold) for seed in SEEDS for fold in range(4)}
    assert finished and len(named) >= 2, message  # more unfinished than the one task that failed
    assert named == every - finished, message  # exactly the groups the rerun still has to train
    assert not (out / "predictions.parquet").exists()

    assert run.run(_params("ray"), "memix", flow_dir, out).read_bytes() == local  # the head alone finishes it
