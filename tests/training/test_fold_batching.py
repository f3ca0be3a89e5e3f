"""Fold-batched training equals one fold at a time: for every mixing method and MixMeFormer, in fp32 on the CPU,
a unit's test probabilities match the plain per-fold reference (tests/training/reference_loop.py) within 1e-5,
whatever the group's size and whichever units share the group."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from reference_loop import train_one_fold

from memix import models
from memix.config import MIXING_METHODS, parse_params
from memix.models.grouped import GroupedFlowModel
from memix.training.folds import make_folds
from memix.training.loop import Unit, train_group

CPU = torch.device("cpu")


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
    """The face stream (a ResNet with batch norm) runs per unit. Compared at a smaller learning rate: timm's ResNet
    starts with the last batch norm of every residual block at zero, so the branch weights' first gradients are
    exactly zero and then tiny; Adam turns rounding-sized gradients into full steps of size lr, at lr 3e-3 enough
    to move probabilities by ~1e-4 (the default-lr tests below check gradients and group independence instead)."""
    params = _params(face_stream=True, lr=3e-4)
    fold = make_folds(data.index)[1]
    result, = train_group(params, "memix", [Unit(0, fold)], data, CPU)
    torch.testing.assert_close(result.probs, train_one_fold(params, "memix", 0, fold, data), atol=1e-5, rtol=0)


def test_mixmeformer_face_stream_gradients_match_the_plain_model():
    """One backward pass of a group of two MixMeFormer models: every face-stream (and flow) gradient of each unit
    equals that of its FlowModel trained alone, to float rounding, real rows of unequal counts included."""
    torch.set_num_threads(1)
    params = _params(face_stream=True)
    plain = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        plain.append(models.build(params.model, 3, 3, 16).train())
    grouped = GroupedFlowModel(plain).train()
    gen = torch.Generator().manual_seed(5)
    x, face = torch.randn(2, 6, 3, 16, 16, generator=gen), torch.rand(2, 6, 1, 16, 16, generator=gen)
    y = torch.randint(0, 3, (2, 6), generator=gen)
    rows = [6, 4]  # unit 1 has 4 real rows and 2 padding rows
    logits = grouped(x, face=face, rows=rows)
    sum(F.cross_entropy(logits[g, :n], y[g, :n]) for g, n in enumerate(rows)).backward()
    for g, (model, n) in enumerate(zip(plain, rows, strict=True)):
        F.cross_entropy(model(x[g, :n], face=face[g, :n]), y[g, :n]).backward()
        face_grads = dict(model.face.named_parameters())
        assert any(p.grad.abs().max() > 0 for p in face_grads.values())
        for key, p in grouped.face_weights.items():
            want = face_grads[key.replace("__", ".")].grad
            scale = float(want.abs().max()) or 1.0
            torch.testing.assert_close(p.grad[g], want, atol=1e-5 * scale, rtol=0, msg=f"unit {g} face {key}")
        for name, p in model.vit.named_parameters():
            scale = float(p.grad.abs().max()) or 1.0
            torch.testing.assert_close(grouped.w(name).grad[g], p.grad, atol=1e-5 * scale, rtol=0, msg=name)


def test_mixmeformer_at_the_default_lr_does_not_depend_on_its_group(data):
    params = _params(face_stream=True)
    folds = make_folds(data.index)
    alone, = train_group(params, "memix", [Unit(0, folds[1])], data, CPU)
    grouped = train_group(params, "memix", [Unit(1, folds[0]), Unit(0, folds[1])], data, CPU)[1]
    torch.testing.assert_close(grouped.probs, alone.probs, atol=1e-6, rtol=0)


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
