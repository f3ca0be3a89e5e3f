"""The flow stage's pool workers die with the stage, even when it is killed outright (SIGKILL, the OOM killer)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from memix import workers

REPO = Path(__file__).resolve().parents[2]

# A flow run long enough to be killed in the middle: 600 clips of 96 px noise on two spawned workers.
FLOW_RUN = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import numpy as np
    import pandas as pd
    from memix.config import FlowParams
    from memix.io import shards
    from memix.preprocess import flow

    out = Path(sys.argv[1])
    rng = np.random.default_rng(0)
    n = 600
    index = pd.DataFrame({"clip_id": [f"s/{i}" for i in range(n)], "dataset": "casme2", "subject": "s",
                          "label": "x", "label_id": 0})
    faces = {"onset": rng.integers(0, 256, (n, 96, 96), dtype=np.uint8),
             "apex": rng.integers(0, 256, (n, 96, 96), dtype=np.uint8)}
    shards.write(out / "faces", index, faces, shard_mb=64)
    flow.run(FlowParams(size=16, workers=2), out / "faces", out / "flow", out / "montage.png")
    """
)


def _pool_workers(proc: psutil.Process) -> list[psutil.Process]:
    found = []
    for child in proc.children(recursive=True):
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_of_the_flow_stage_leaves_no_orphaned_workers(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1"}
    stage = subprocess.Popen([sys.executable, "-c", FLOW_RUN, str(tmp_path)], cwd=REPO, env=env)
    descendants: list[psutil.Process] = []
    try:
        parent = psutil.Process(stage.pid)
        deadline = time.monotonic() + 120
        while len(_pool_workers(parent)) < 2:  # both workers started
            assert stage.poll() is None, "the flow run ended before its workers could be seen"
            assert time.monotonic() < deadline, "no pool workers appeared"
            time.sleep(0.2)
        descendants = parent.children(recursive=True)
        time.sleep(1.0)  # let the workers reach their initializer and take clips
        stage.send_signal(signal.SIGKILL)
        stage.wait()
        _, alive = psutil.wait_procs(descendants, timeout=30)
        assert not alive, f"orphaned after SIGKILL of the flow stage: {[p.pid for p in alive]}"
        assert not (tmp_path / "flow").exists()
    finally:
        for proc in descendants:  # only what this test started
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        if stage.poll() is None:
            stage.kill()


def test_die_with_parent_checks_the_parent_it_was_given() -> None:
    code = "import os, sys; from memix import workers; print(workers.die_with_parent(os.getppid()))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ("prctl" if sys.platform.startswith("linux") else "poll")
    # a parent pid that is not ours: the process ends at once rather than wait for a signal that cannot come
    code = "from memix import workers; workers.die_with_parent(1); print('still here')"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    assert out.returncode == 1 and "still here" not in out.stdout
    assert workers.POLL_SECONDS > 0
