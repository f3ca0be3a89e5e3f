"""Comparison architectures train through the same LOSO trainer: every mixing method defined for them, grouped
units (the one-call-per-unit fallback) giving each unit exactly its result alone, dropout and batch norm included."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from flowsets import make_region_flow_set

from memix.config import parse_params
from memix.io import views
from memix.models import registry
from memix.training import loop
from memix.training.folds import make_folds

CPU = torch.device("cpu")


CASES = [(name, m) for name in ("ststnet", "mmnet", "htnet", "causalnet") for m in registry.architecture(name).methods]
OPTIONS = {
    "ststnet": {},
    "mmnet": {"img_size": 16, "pos_depth": 1},  # the 16 px faces, a 1 x 1 grid
    "htnet": {"dim": 8, "heads": 1, "block_repeats": [1, 1, 1], "mlp_mult": 2},
    "causalnet": {"dim": 8, "heads": 1, "block_repeats": [1, 1, 1], "mlp_mult": 2, "cross_heads": 2,
                  "head_hidden": 16},
}
NO_AUGMENT = {"flip": False, "rotate_deg": 0.0, "translate_frac": 0.0}  # region images take none


@pytest.fixture(scope="module")
def faces(flow_dir):
    """The flow set's onset and apex faces, as MMNet reads them."""
    return views.read(flow_dir, inputs="faces")


@pytest.fixture(scope="module")
def region_dir(tmp_path_factory):
    return make_region_flow_set(tmp_path_factory.mktemp("regions") / "flow")


@pytest.fixture(scope="module")
def regions(region_dir):
    """HTNet's input: the flow's four blocks at 28 px."""
    return views.read(region_dir, inputs="regions")


@pytest.fixture(scope="module")
def sequence(region_dir):
    """CausalNet's input: four region images, stacked on channels."""
    return views.read(region_dir, inputs="sequence")


@pytest.mark.parametrize(("name", "method"), CASES)
def test_a_unit_trains_to_the_same_bytes_grouped_or_alone(request, name, method):
    kind = registry.input_kind(name)
    data = request.getfixturevalue("data" if kind == "flow" else kind)
    torch.set_num_threads(1)
    augment = NO_AUGMENT if kind in registry.REGION_INPUTS else {}
    params = parse_params({
        # ststnet: dropout 0.5 and batch norm in every stream; mmnet: batch norm, attention, two branches on faces;
        # htnet, causalnet: region transformers on the flow's region views
        "model": {"name": name, "options": OPTIONS[name]},
        "train": {"epochs": 2, "batch_size": 4, "device": "cpu", "threads": 1, "augment": augment},
        "compare": {"methods": ["none"], "baseline": "none"}, "fit": {"methods": ["none"]},
        "flow": {"pairs": ["onset_apex", "apex_offset"]},  # CausalNet's apex -> offset flow (the others ignore it)
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


def test_ststnet_trains_without_weight_decay_on_its_biases(data):
    """The trainer hands the optimizer STSTNet's exemptions: after a step with zero gradients only the decayed
    tensors move (coupled L2 makes their gradient weight_decay * w), the convolution and classifier biases do not."""
    params = parse_params({
        "model": {"name": "ststnet"}, "train": {"epochs": 1, "batch_size": 4, "device": "cpu", "threads": 1,
                                                "optimizer": "adam", "weight_decay": 0.5},
        "compare": {"methods": ["none"], "baseline": "none"}, "fit": {"methods": ["none"]},
    })
    trainer = loop.GroupTrainer(params, "none", [loop.Unit(0, make_folds(data.index)[0])], data, CPU)
    names = list(trainer.model._param_names)
    with torch.no_grad():
        for p in trainer.model.parameters():
            p.fill_(1.0)  # no zero weight (batch norm's offset starts at 0), so every decayed tensor moves
            p.grad = torch.zeros_like(p)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.opt.step([True])
    moved = {n for n, p, b in zip(names, trainer.model.parameters(), before, strict=True) if not torch.equal(p, b)}
    exempt = {f"net.{n}" for n in trainer.model._template[0].net.no_weight_decay()}
    assert moved == set(names) - exempt and exempt
