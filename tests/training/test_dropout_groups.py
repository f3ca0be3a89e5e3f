"""Dropout in fold-batched training: with subjects of unequal size, units sit steps out near an epoch's end; a unit
that sits a step out must draw no dropout mask, so its result is the same whether it trains alone or in any group."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from memix.config import parse_params
from memix.io import flowset
from memix.training.folds import make_folds
from memix.training.loop import Unit, train_group

CPU = torch.device("cpu")


def _unequal_folds(data: flowset.FlowSet):
    """Folds with 15, 10 and 6 training clips: at batch 4 they take 4, 3 and 2 steps per epoch."""
    folds = make_folds(data.index)[:3]
    return [dataclasses.replace(f, train_rows=f.train_rows[:n]) for f, n in zip(folds, (15, 10, 6), strict=True)]


def _params(drop_rate: float):
    return parse_params({
        "model": {"patch_size": 4, "embed_dim": 16, "depth": 2, "num_heads": 2, "drop_rate": drop_rate},
        "train": {"epochs": 2, "batch_size": 4, "device": "cpu", "threads": 1},
        "mixing": {"manifold_mixup": {"blocks": [0, 1]}},
    })


@pytest.mark.parametrize("method", ["none", "memix", "mixaugment", "manifold_mixup"])
def test_dropout_result_of_a_unit_does_not_depend_on_its_group(data, method):
    torch.set_num_threads(1)
    params = _params(drop_rate=0.3)
    units = [Unit(3, f) for f in _unequal_folds(data)]
    together = train_group(params, method, units, data, CPU)
    for g in (1, 2):  # the units that sit steps out while unit 0 still trains
        alone, = train_group(params, method, [units[g]], data, CPU)
        torch.testing.assert_close(together[g].probs, alone.probs, atol=1e-6, rtol=0)  # bit-identical here
        torch.testing.assert_close(together[g].history["loss"], alone.history["loss"], atol=1e-6, rtol=0)
        # padding rows (the steps it sits out, its partial batches) count in neither its loss nor its accuracy
        torch.testing.assert_close(together[g].history["train_acc"], alone.history["train_acc"], atol=0, rtol=0)


def test_dropout_is_on_in_training(data):
    """The test above would pass vacuously if the rate never reached the model: it changes the result."""
    units = [Unit(3, _unequal_folds(data)[1])]
    with_drop, = train_group(_params(drop_rate=0.3), "none", units, data, CPU)
    without, = train_group(_params(drop_rate=0.0), "none", units, data, CPU)
    assert not torch.allclose(with_drop.probs, without.probs, atol=1e-4)
