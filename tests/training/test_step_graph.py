"""The device part of a fold-batched step (forward, mixing targets, loss, backward, every unit's optimizer update)
is one graph: dynamo captures it with ``fullgraph=True`` (a graph break fails) for every method and MixMeFormer,
with unequal units (one sits the last step out) and dropout on, and the captured step trains to the same bytes."""

from __future__ import annotations

import pytest
import torch
from step_cases import step_params, unequal_units

from memix.config import MIXING_METHODS
from memix.training import loop

CPU = torch.device("cpu")


@pytest.mark.parametrize("method", [*MIXING_METHODS, "mixmeformer"])
def test_the_device_step_is_one_graph(data, method):
    torch.set_num_threads(1)
    params = step_params(batch_size=8, face_stream=method == "mixmeformer")
    name = "memix" if method == "mixmeformer" else method
    eager = loop.GroupTrainer(params, name, unequal_units(data), data, CPU).run()
    torch._dynamo.reset()
    trainer = loop.GroupTrainer(params, name, unequal_units(data), data, CPU)
    trainer._core = torch.compile(trainer._core, fullgraph=True, backend="eager")
    with torch._dynamo.config.patch(trace_autograd_ops=True):
        captured = trainer.run()
    for a, b in zip(eager, captured, strict=True):
        torch.testing.assert_close(b.probs, a.probs, atol=1e-6, rtol=0)
