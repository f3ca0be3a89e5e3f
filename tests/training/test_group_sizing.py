"""Sizing fold-batched groups and their overheads: ``fold_batch: auto`` counts parameters without real weights (no
download), a group that runs out of device memory is halved and retried with the same results, and mid-group
checkpoints take a bounded share of the time."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from flowsets import make_flow_set

from memix import models
from memix.config import parse_params
from memix.io import flowset
from memix.models import vit as vit_module
from memix.training import loop, sizing
from memix.training.folds import make_folds

CPU = torch.device("cpu")


def test_unit_bytes_of_a_pretrained_model_downloads_nothing(monkeypatch):
    create = vit_module.timm.create_model

    def no_weights(name, pretrained=False, **kwargs):
        assert not pretrained, "sizing a group must not load pretrained weights"
        return create(name, pretrained=False, **kwargs)

    monkeypatch.setattr(vit_module.timm, "create_model", no_weights)
    params = parse_params({"model": {"name": "vit_base_patch16_224", "patch_size": 16, "pretrained": True},
                           "train": {"batch_size": 34}})
    data = SimpleNamespace(flow=np.zeros((1, 3, 224, 224), np.float16), num_classes=5, size=224)
    per_unit = sizing.unit_bytes(params, data, CPU)
    n_params = 85_802_501  # ViT-B/16 with a 5-class head
    activations = 34 * (14 * 14 + 1) * 768 * 12 * sizing.ACTIVATION_BYTES
    assert per_unit == 16 * n_params + activations


def test_a_comparison_networks_activations_are_what_its_autograd_graph_keeps():
    """Counted on the meta device from the tensors saved for the backward (activations grow with the batch; a few
    weights saved by their ops do not), nothing computed."""
    params = parse_params({"model": {"name": "ststnet"}, "train": {"batch_size": 8}, "fit": {"methods": ["none"]},
                           "compare": {"methods": ["none"], "baseline": "none"}})
    data = SimpleNamespace(flow=np.zeros((1, 3, 56, 56), np.float16), num_classes=5, size=56)
    per_8 = sizing.saved_activation_bytes(params.model, data, 8)
    per_16, per_24 = (sizing.saved_activation_bytes(params.model, data, b) for b in (16, 24))
    assert per_24 - per_16 == per_16 - per_8 > 0
    # at least the resized 28 px input and each stream's conv output (3 streams x 3/5/8 channels) are kept
    assert per_8 >= 8 * 4 * (3 * 28 * 28 + (3 + 5 + 8) * 28 * 28)
    n_params = 2_485  # STSTNet with a 5-class head
    assert sizing.unit_bytes(params, data, CPU) == 16 * n_params + per_8


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> flowset.FlowSet:
    return flowset.read(make_flow_set(tmp_path_factory.mktemp("flow") / "flow"))


def _params():
    return parse_params({
        "model": {"patch_size": 4, "embed_dim": 16, "depth": 1, "num_heads": 1},
        "train": {"epochs": 2, "batch_size": 8, "device": "cpu", "threads": 1},
    })


def test_a_group_out_of_memory_is_halved_with_the_same_results(data, monkeypatch, caplog):
    torch.set_num_threads(1)
    units = [loop.Unit(0, f) for f in make_folds(data.index)]
    whole = loop.train_group(_params(), "memix", units, data, CPU)
    sizes: list[int] = []
    real_run = loop.GroupTrainer.run

    def run_within_two(self):  # a device that holds two units at most
        sizes.append(len(self.units))
        if len(self.units) > 2:
            raise torch.OutOfMemoryError("fake: out of memory")
        return real_run(self)

    monkeypatch.setattr(loop.GroupTrainer, "run", run_within_two)
    reported: list[tuple[int, int]] = []
    with caplog.at_level(logging.WARNING, logger="memix.training.loop"):
        halved = loop.train_group(_params(), "memix", units, data, CPU,
                                  progress=lambda epoch, stats: reported.append((epoch, len(stats))))
    assert sizes == [4, 2, 2]
    assert "out of memory" in caplog.text and "groups of 2 and 2" in caplog.text
    assert reported == [(1, 4), (2, 4)]  # the caller still sees every unit of every epoch
    for a, b in zip(whole, halved, strict=True):
        assert (a.seed, a.fold) == (b.seed, b.fold)
        assert torch.equal(a.probs, b.probs)


def test_a_single_unit_out_of_memory_fails(data, monkeypatch):
    def oom(self):
        raise torch.OutOfMemoryError("fake: out of memory")

    monkeypatch.setattr(loop.GroupTrainer, "run", oom)
    with pytest.raises(torch.OutOfMemoryError):
        loop.train_group(_params(), "none", [loop.Unit(0, make_folds(data.index)[0])], data, CPU)


def test_models_build_on_the_meta_device():
    """unit_bytes counts parameters on the meta device: the build must not touch real memory there."""
    params = parse_params({"model": {"patch_size": 4, "embed_dim": 16, "depth": 1, "num_heads": 1,
                                     "face_stream": True}})
    with torch.device("meta"):
        model = models.build(params.model, 3, 3, 16)
    assert all(p.is_meta for p in model.parameters())


def test_checkpoints_take_a_bounded_share_of_the_time():
    assert loop.checkpoint_interval(0.01) == loop.CHECKPOINT_SECONDS  # a cheap save: every 30 s as before
    assert loop.checkpoint_interval(20.0) == pytest.approx(20.0 / loop.CHECKPOINT_SHARE)  # a 20 s save: ~7 min
    assert 20.0 / (loop.checkpoint_interval(20.0) + 20.0) <= loop.CHECKPOINT_SHARE
