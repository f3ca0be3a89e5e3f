"""Fold-batched training equals one fold at a time: for every mixing method and MixMeFormer, in fp32 on the CPU,
a unit's test probabilities match the plain per-fold reference (tests/training/reference_loop.py) within 1e-5,
whatever the group's size and whichever units share the group."""

from __future__ import annotations

import pytest
import torch
from flowsets import make_flow_set
from reference_loop import train_one_fold

from memix.config import MIXING_METHODS, parse_params
from memix.io import flowset
from memix.training.folds import make_folds
from memix.training.loop import Unit, train_group

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> flowset.FlowSet:
    return flowset.read(make_flow_set(tmp_path_factory.mktemp("flow") / "flow"), need_onset=True)


def _params(face_stream: bool = False, lr: float = 3e-3):
    return parse_params({
        "model": {"patch_size": 4, "embed_dim": 16, "depth": 2, "num_heads": 2, "face_stream": face_stream},
        "train": {"epochs": 2, "batch_size": 8, "device": "cpu", "threads": 1, "lr": lr},
        "mixing": {"manifold_mixup": {"blocks": [0, 1]}},
    })


@pytest.mark.parametrize("method", MIXING_METHODS)
def test_a_group_of_every_fold_matches_each_fold_trained_alone(data, method):
    torch.set_num_threads(1)
    params = _params()
    folds = make_folds(data.index)
    results = train_group(params, method, [Unit(7, f) for f in folds], data, CPU)
    for fold, result in zip(folds, results, strict=True):
        reference = train_one_fold(params, method, 7, fold, data)
        assert result.probs.shape == reference.shape
        torch.testing.assert_close(result.probs, reference, atol=1e-5, rtol=0)


def test_mixmeformer_matches_its_fold_trained_alone(data):
    """The face stream (a ResNet with batch norm) runs per unit. Compared at a smaller learning rate: batch norm
    leaves some weight directions with gradients that are zero up to rounding, and Adam's first steps turn any
    such rounding difference into a full step of size lr, at lr 3e-3 enough to move probabilities by ~1e-5."""
    params = _params(face_stream=True, lr=3e-4)
    fold = make_folds(data.index)[1]
    result, = train_group(params, "memix", [Unit(0, fold)], data, CPU)
    torch.testing.assert_close(result.probs, train_one_fold(params, "memix", 0, fold, data), atol=1e-5, rtol=0)


@pytest.mark.parametrize("method", ["memix", "manifold_mixup", "balanced_mixup"])
def test_a_units_result_does_not_depend_on_its_group(data, method):
    params = _params()
    folds = make_folds(data.index)
    target = Unit(1, folds[2])
    alone, = train_group(params, method, [target], data, CPU)
    with_all = train_group(params, method, [Unit(1, f) for f in folds], data, CPU)[2]
    with_others = train_group(params, method, [Unit(0, folds[0]), target, Unit(2, folds[3])], data, CPU)[1]
    for other in (with_all, with_others):
        torch.testing.assert_close(other.probs, alone.probs, atol=1e-5, rtol=0)
        torch.testing.assert_close(other.history["loss"], alone.history["loss"], atol=1e-5, rtol=0)
