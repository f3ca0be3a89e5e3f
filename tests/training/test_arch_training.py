"""Comparison architectures train through the same LOSO trainer: every mixing method defined for them, grouped
units (the one-call-per-unit fallback) giving each unit exactly its result alone, dropout and batch norm included."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from memix.config import parse_params
from memix.models import registry
from memix.training import loop
from memix.training.folds import make_folds

CPU = torch.device("cpu")


@pytest.mark.parametrize("method", registry.architecture("ststnet").methods)
def test_a_unit_trains_to_the_same_bytes_grouped_or_alone(data, method):
    torch.set_num_threads(1)
    params = parse_params({
        "model": {"name": "ststnet"},  # dropout 0.5 and batch norm in every stream
        "train": {"epochs": 2, "batch_size": 4, "device": "cpu", "threads": 1},
        "compare": {"methods": ["none"], "baseline": "none"}, "fit": {"methods": ["none"]},
    })
    folds = make_folds(data.index)[:3]
    folds[1] = dataclasses.replace(folds[1], train_rows=folds[1].train_rows[:9])  # sits the last steps out
    units = [loop.Unit(0, f) for f in folds]
    grouped = loop.GroupTrainer(params, method, units, data, CPU).run()
    for unit, together in zip(units, grouped, strict=True):
        (alone,) = loop.GroupTrainer(params, method, [unit], data, CPU).run()
        assert torch.equal(together.probs, alone.probs)
        assert torch.isfinite(alone.probs).all()
    assert not torch.equal(grouped[0].probs, grouped[2].probs)  # different folds, different models
