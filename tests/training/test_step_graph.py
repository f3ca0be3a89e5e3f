"""The device part of a fold-batched step (forward, mixing targets, loss, backward, every unit's optimizer update)
is one graph: dynamo captures it with ``fullgraph=True`` (a graph break fails) for every method and MixMeFormer,
with unequal units (one sits the last step out) and dropout on, and the captured step trains to the same bytes."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from flowsets import make_flow_set

from memix.config import MIXING_METHODS, parse_params
from memix.io import flowset
from memix.training import loop
from memix.training.folds import make_folds

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> flowset.FlowSet:
    return flowset.read(make_flow_set(tmp_path_factory.mktemp("flow") / "flow"), need_onset=True)


def _params(face_stream: bool):
    return parse_params({
        "model": {"patch_size": 4, "embed_dim": 16, "depth": 2, "num_heads": 2, "drop_rate": 0.2,
                  "face_stream": face_stream},
        "train": {"epochs": 1, "batch_size": 8, "device": "cpu", "threads": 1},
        "mixing": {"manifold_mixup": {"blocks": [0, 1]}},
    })


def _units(data):
    folds = make_folds(data.index)[:2]
    folds[1] = dataclasses.replace(folds[1], train_rows=folds[1].train_rows[:9])
    return [loop.Unit(0, f) for f in folds]


@pytest.mark.parametrize("method", [*MIXING_METHODS, "mixmeformer"])
def test_the_device_step_is_one_graph(data, method):
    torch.set_num_threads(1)
    params = _params(face_stream=method == "mixmeformer")
    name = "memix" if method == "mixmeformer" else method
    eager = loop.GroupTrainer(params, name, _units(data), data, CPU).run()
    torch._dynamo.reset()
    trainer = loop.GroupTrainer(params, name, _units(data), data, CPU)
    trainer._core = torch.compile(trainer._core, fullgraph=True, backend="eager")
    with torch._dynamo.config.patch(trace_autograd_ops=True):
        captured = trainer.run()
    for a, b in zip(eager, captured, strict=True):
        torch.testing.assert_close(b.probs, a.probs, atol=1e-6, rtol=0)
