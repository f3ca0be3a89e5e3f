"""The device part of a fold-batched step (forward, mixing targets, loss, backward, every unit's optimizer update)
is one graph: dynamo captures it with ``fullgraph=True`` (a graph break fails) for every method and MixMeFormer,
with unequal units (one sits the last step out) and dropout on, and the captured step trains to the same bytes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from step_cases import step_params, unequal_units

from memix.config import MIXING_METHODS
from memix.training import loop

CPU = torch.device("cpu")


def _captured_equals_eager(data, method: str, capture: Callable[[loop.GroupTrainer], None], context=None) -> None:
    """Train the same two units eagerly and with ``capture`` applied to the trainer: the same predictions."""
    torch.set_num_threads(1)
    params = step_params(batch_size=8, face_stream=method == "mixmeformer")
    name = "memix" if method == "mixmeformer" else method
    eager = loop.GroupTrainer(params, name, unequal_units(data), data, CPU).run()
    torch._dynamo.reset()
    trainer = loop.GroupTrainer(params, name, unequal_units(data), data, CPU)
    capture(trainer)
    with context or contextlib.nullcontext():
        captured = trainer.run()
    for a, b in zip(eager, captured, strict=True):
        torch.testing.assert_close(b.probs, a.probs, atol=1e-6, rtol=0)


@pytest.mark.parametrize("method", ["none", "memix", "mixaugment", "mixmeformer"])
def test_train_compile_captures_forward_and_backward_as_one_joint_graph(data, method):
    """What ``train.compile`` compiles (the step's loss: forward, mixing targets, loss) goes through AOTAutograd as
    one graph (``fullgraph=True``; forward and backward traced jointly, as inductor and CUDA graphs get them) and
    trains to the eager step's predictions."""

    def capture(trainer: loop.GroupTrainer) -> None:
        trainer.loss_graph = torch.compile(trainer._loss, fullgraph=True, backend="aot_eager")

    _captured_equals_eager(data, method, capture)


def _device_step_captured(data, method: str) -> None:
    def capture(trainer: loop.GroupTrainer) -> None:
        trainer._core = torch.compile(trainer._core, fullgraph=True, backend="eager")

    _captured_equals_eager(data, method, capture, torch._dynamo.config.patch(trace_autograd_ops=True))


FRESH_INTERPRETER = {"mixmeformer"}
"""Cases whose capture leaves dynamo state that ``torch._dynamo.reset()`` does not clear (any later AOTAutograd trace
in the process then fails inside dynamo with an IndexError): they run in an interpreter of their own."""

CHILD = """
import pathlib, sys, tempfile
from flowsets import make_flow_set
from memix.io import flowset
import test_step_graph
data = flowset.read(make_flow_set(pathlib.Path(tempfile.mkdtemp()) / "flow"), need_onset=True)
test_step_graph._device_step_captured(data, sys.argv[1])
"""


@pytest.mark.parametrize("method", [*MIXING_METHODS, "mixmeformer"])
def test_the_device_step_is_one_graph(data, method):
    if method not in FRESH_INTERPRETER:
        _device_step_captured(data, method)
        return
    here = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here), str(here.parent), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", CHILD, method], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
