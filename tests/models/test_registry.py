"""The comparison architectures by model.name: built from params with the dataset's class count, options checked,
each module's published-table facts present, attention mixing and untrainable inputs refused with the reason."""

from __future__ import annotations

import pytest
import torch

from memix import models
from memix.config import ParamsError, parse_params
from memix.names import ARCHITECTURES, ATTENTION_METHODS
from memix.models import registry

INPUT_ONLY = {"compare": {"methods": ["none", "mixup"], "baseline": "none"}, "fit": {"methods": ["mixup"]}}


def arch_params(name: str, **model):
    return parse_params({"model": {"name": name, **model}, **INPUT_ONLY})


def test_the_names_the_config_checks_are_the_registrys_architectures():
    assert set(ARCHITECTURES) == set(registry.ARCHITECTURES)  # the config checks params without importing torch


@pytest.mark.parametrize("name", sorted(registry.ARCHITECTURES))
def test_every_module_states_what_the_comparison_table_needs(name):
    module = registry.architecture(name).module
    assert isinstance(module.YEAR, int) and module.TYPE and module.PAPER and module.INPUTS
    assert module.RELEASED["trainable_params"] > 0 and module.RELEASED["repo"]
    assert module.RECIPE["optimizer"] and module.RECIPE["epochs"]
    assert {"acc", "f1", "metric", "selection", "classes"} <= set(module.PUBLISHED)
    assert module.PUBLISHED["dataset"] == "SAMM"


@pytest.mark.parametrize("classes", [3, 5])
def test_ststnet_is_built_from_params_for_the_datasets_classes(classes):
    model = models.build(arch_params("ststnet").model, in_chans=3, num_classes=classes, img_size=56)
    assert isinstance(model, models.NetModel) and model.num_classes == classes
    assert model(torch.randn(2, 3, 56, 56)).shape == (2, classes)
    assert model.net.img_size == 28  # the flow is resized to what the network wants


def test_model_options_reach_the_constructor_and_unknown_ones_are_named():
    padded = models.build(arch_params("ststnet", options={"conv_padding": 2}).model, 3, 3, 56)
    assert padded.net.stages[0].streams[0].conv.padding == (2, 2)
    with pytest.raises(ValueError, match=r"\['kernel'\] are not options of STSTNet"):
        models.build(arch_params("ststnet", options={"kernel": 5}).model, 3, 3, 56)


@pytest.mark.parametrize("method", ATTENTION_METHODS)
def test_attention_mixing_is_refused_for_an_architecture_with_the_reason(method):
    with pytest.raises(ParamsError, match=f"compare.methods has \\['{method}'\\].*CLS attention"):
        parse_params({"model": {"name": "ststnet"}, "compare": {"methods": ["none", method], "baseline": "none"},
                      "fit": {"methods": ["none"]}})
    assert "CLS attention" in registry.mixing_problem("ststnet", method)
    assert registry.mixing_problem("vit_flow_tiny", method) is None


def test_the_face_stream_is_refused_for_an_architecture():
    with pytest.raises(ParamsError, match="face_stream"):
        arch_params("ststnet", face_stream=True)


def test_an_architecture_the_pipeline_cannot_feed_is_refused_naming_the_input():
    with pytest.raises(ValueError, match="magnified frames"):
        registry.check_trainable("aman", "none")
    registry.check_trainable("ststnet", "manifold_mixup")  # trainable: no error
    registry.check_trainable("mmnet", "mixup")  # on the flow set's onset and apex faces


def test_each_network_reads_what_its_module_says_it_takes():
    assert registry.input_kind("ststnet") == "flow" and registry.input_kind("vit_flow_tiny") == "flow"
    assert registry.input_kind("mmnet") == "faces"  # onset and apex faces, not the flow
