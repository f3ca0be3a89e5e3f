"""The device part of a fold-batched step (forward, mixing targets, loss, backward, every unit's optimizer update)
is one graph: dynamo captures it with ``fullgraph=True`` (a graph break fails) for every method and MixMeFormer,
with unequal units (one sits the last step out) and dropout on, and the captured step trains to the same bytes."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

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


@pytest.mark.parametrize("method", [*MIXING_METHODS, "mixmeformer"])
def test_the_device_step_is_one_graph(data, method):
    def capture(trainer: loop.GroupTrainer) -> None:
        trainer._core = torch.compile(trainer._core, fullgraph=True, backend="eager")

    _captured_equals_eager(data, method, capture, torch._dynamo.config.patch(trace_autograd_ops=True))
