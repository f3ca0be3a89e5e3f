"""The comparison architectures by model.name: built from params with the dataset's class count, options checked,
each module's published-table facts present, attention mixing and untrainable inputs refused with the reason."""

from __future__ import annotations

import inspect
import subprocess
import sys
import warnings

import pytest
import torch
from pydantic import ValidationError

from memix import models
from memix.config import ParamsError, model_options, parse_params
from memix.models import registry
from memix.names import ARCHITECTURES, ATTENTION_METHODS

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
    assert "epoch" in module.RECIPE["selection"]  # the release's own epoch-selection (and F1) rule
    label = {"dataset", "classes", "metric", "selection", "source"}
    assert {"acc", "f1"} | label <= set(module.PUBLISHED)
    assert all(str(module.PUBLISHED[k]).strip() for k in label) and "SAMM" in module.PUBLISHED["dataset"]


@pytest.mark.parametrize("classes", [3, 5])
def test_ststnet_is_built_from_params_for_the_datasets_classes(classes):
    model = models.build(arch_params("ststnet").model, in_chans=3, num_classes=classes, img_size=56)
    assert isinstance(model, models.NetModel) and model.num_classes == classes
    assert model(torch.randn(2, 3, 56, 56)).shape == (2, classes)
    assert model.net.img_size == 28  # the flow is resized to what the network wants


def test_model_options_reach_the_constructor_and_unknown_ones_are_named():
    padded = models.build(arch_params("ststnet", options={"conv_padding": 2}).model, 3, 3, 56)
    assert padded.net.stages[0].streams[0].conv.padding == (2, 2)
    with pytest.raises(ParamsError, match=r"model.options.kernel: unknown option of ststnet"):
        arch_params("ststnet", options={"kernel": 5})  # when params load
    made_in_code = arch_params("ststnet").model.model_copy(update={"options": {"kernel": 5}})  # not validated
    with pytest.raises(ValueError, match=r"\['kernel'\] are not options of STSTNet"):
        models.build(made_in_code, 3, 3, 56)


@pytest.mark.parametrize("name", sorted(registry.ARCHITECTURES))
def test_each_module_declares_exactly_its_constructors_options(name):
    """The options section the params schema checks (without torch) is the constructor's options, with its
    defaults, and every option says what it is for."""
    arch = registry.architecture(name)
    parameters = inspect.signature(getattr(arch.module, arch.cls)).parameters
    constructor = {k: p.default for k, p in parameters.items() if k not in ("num_classes", "in_chans")}
    fields = model_options.OPTIONS[name].model_fields
    assert set(fields) == set(constructor)
    for option, field in fields.items():
        default = constructor[option]
        assert field.default == (list(default) if isinstance(default, tuple) else default), option
        assert field.description, option
    assert _accepted(name)  # the defaults are valid


def _trains(name: str, in_chans: int, **options) -> bool:
    """Whether the network builds with ``options`` and takes one finite training step on a batch of 2."""
    arch = registry.architecture(name)
    try:
        with warnings.catch_warnings():  # a zero-width layer: "Initializing zero-element tensors is a no-op"
            warnings.simplefilter("ignore", UserWarning)
            net = getattr(arch.module, arch.cls)(num_classes=3, in_chans=in_chans, **options).train()
        side = net.img_size
        loss = net(torch.randn(2, in_chans, side, side)).logsumexp(1).mean()
        loss.backward()
    except (ValueError, RuntimeError):
        return False
    return bool(torch.isfinite(loss))


def _accepted(name: str, **options) -> bool:
    try:
        model_options.validate(name, options)
    except ValidationError:
        return False
    return True


def test_ststnets_smallest_size_is_measured_for_each_padding():
    """STSTNet at img_size 7 trains (a 1 x 1 map into the classifier); below 6 - 2 * conv_padding the average pool
    has nothing left, which the declaration now says when params load rather than the stage when it trains."""
    torch.manual_seed(0)
    for padding in range(4):
        for side in range(1, 9):
            want = _trains("ststnet", 3, img_size=side, conv_padding=padding)
            assert _accepted("ststnet", img_size=side, conv_padding=padding) == want, (padding, side)
    assert _trains("ststnet", 3, img_size=7) and not _trains("ststnet", 3, img_size=3)
    for options in ({"filters": []}, {"filters": [0, 2]}, {"drop_rate": 1.5}, {"conv_padding": -1}):
        assert not _trains("ststnet", 3, **options) and not _accepted("ststnet", **options), options


@pytest.mark.parametrize("options", [
    {"img_size": 0}, {"img_size": 7}, {"img_size": 24}, {"img_size": 16}, {"img_size": 32},
    {"img_size": 16, "pos_heads": 3}, {"img_size": 16, "pos_heads": 8}, {"img_size": 16, "pos_heads": 1024},
    {"img_size": 16, "pos_depth": 0}, {"img_size": 16, "pos_mlp_ratio": 0.0},
    {"img_size": 16, "drop_path_rate": 0.5}, {"img_size": 16, "drop_path_rate": 1.0},
])
def test_mmnets_declared_ranges_are_what_it_trains_at(options):
    torch.manual_seed(0)
    assert _accepted("mmnet", **options) == _trains("mmnet", 2, **options)


@pytest.mark.parametrize(("options", "valid"), [
    ({"img_size": 31}, False), ({"img_size": 32}, True), ({"num_levels": 0}, False), ({"num_levels": 1}, True),
])
def test_amans_declared_ranges_are_what_its_constructor_takes(options, valid):
    levels = options.get("num_levels", 9)
    try:
        with torch.device("meta"):
            registry.architecture("aman").module.AMAN(num_classes=3, in_chans=3 * 2 * max(levels, 1), **options)
        built = True
    except ValueError:
        built = False
    assert built == valid == _accepted("aman", **options)


def test_params_are_checked_without_importing_torch():
    code = (
        "import sys\n"
        "from memix.config import parse_params\n"
        "parse_params({'model': {'name': 'mmnet', 'options': {'img_size': 32}},\n"
        "              'compare': {'methods': ['none'], 'baseline': 'none'}, 'fit': {'methods': ['none']}})\n"
        "assert 'torch' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


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


def test_each_built_rows_published_figures_are_its_modules():
    """The published table's figures for a built network are the ones its module labels (one source, one number)."""
    from memix.models.published import PUBLISHED_TABLE

    built = [p for p in PUBLISHED_TABLE if p.built in registry.ARCHITECTURES]
    assert {p.built for p in built} == set(registry.ARCHITECTURES)
    for pub in built:
        module = registry.architecture(pub.built).module.PUBLISHED
        assert (pub.acc, pub.f1, pub.uar) == (module["acc"], module["f1"], module.get("uar")), pub.network


def test_region_networks_refuse_augmentation_naming_it():
    assert registry.input_kind("htnet") == "regions" and registry.input_kind("causalnet") == "sequence"
    assert registry.augment_problem("htnet", False, 0.0, 0.0) is None
    assert registry.augment_problem("ststnet", True, 3.0, 0.1) is None  # flow: flips turn its vectors
    problem = registry.augment_problem("causalnet", True, 0.0, 0.0)
    assert problem and "train.augment" in problem and "blocks" in problem


def test_the_configs_region_list_is_the_registrys():
    """params are checked without torch (memix.names); the registry's modules say what each network reads."""
    from memix.names import REGION_INPUTS

    kinds = {name: registry.input_kind(name) for name in registry.ARCHITECTURES}
    assert REGION_INPUTS == {n: k for n, k in kinds.items() if k in registry.REGION_INPUTS}
