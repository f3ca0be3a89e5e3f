"""params.yaml loading: the shipped file is valid and complete; bad keys, types and ranges name key and file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from memix.config import (
    MIXING_METHODS,
    Params,
    ParamsError,
    arch_run_inputs,
    arch_run_params,
    dump_params,
    load_params,
    parse_params,
)

REPO = Path(__file__).resolve().parents[1]


def test_shipped_params_are_valid_and_spell_out_every_default() -> None:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    params = load_params(REPO / "params.yaml")
    # Every key the schema knows is written in params.yaml, so DVC tracks each one the stages depend on.
    assert raw == dump_params(params)
    assert params.compare.methods == list(MIXING_METHODS)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("flow: {sizee: 32}\n", "flow.sizee: unknown key"),
        ("train: {epochs: many}\n", "train.epochs"),
        ("flow: {size: 2}\n", "flow.size"),
        ("mixing: {memix: {pool: median}}\n", "mixing.memix.pool"),
        ("flow: {tvl1: {lambda: -1}}\n", "flow.tvl1.lambda"),
        ("nonsense: 1\n", "nonsense: unknown key"),
        ("synth: {frames_min: 40, frames_max: 20}\n", "frames_min must be <= frames_max"),
        ("compare: {methods: [memix, memix]}\n", "must not repeat"),
        ("fit: {methods: [memix, memix]}\n", "without repeats"),
        ("fit: {methods: [mixpu]}\n", "fit.methods.0"),
    ],
)
def test_bad_values_name_the_key_and_the_file(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ParamsError) as info:
        load_params(path)
    message = str(info.value)
    assert str(path) in message
    assert expected in message


def test_missing_file_and_bad_yaml_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "absent.yaml")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(_write(tmp_path, "flow: [unclosed\n"))


def test_partial_file_fills_defaults_and_lambda_alias_round_trips(tmp_path: Path) -> None:
    params = load_params(_write(tmp_path, "flow: {method: dis, tvl1: {lambda: 0.3}}\n"))
    assert params.flow.method == "dis"
    assert params.flow.tvl1.lambda_ == 0.3
    assert dump_params(params)["flow"]["tvl1"]["lambda"] == 0.3
    assert params.train == Params().train


def test_paper_preset_is_valid_and_holds_the_published_settings() -> None:
    paper = load_params(REPO / "params.paper.yaml")
    assert paper.model.name == "vit_base_patch16_224" and paper.model.pretrained
    assert (paper.train.optimizer, paper.train.lr, paper.train.batch_size, paper.train.epochs) == ("adam", 3e-5, 34, 99)
    assert (paper.flow.method, paper.flow.size, paper.faces.size) == ("farneback", 224, 224)
    assert (paper.mixing.memix.alpha_k, paper.mixing.memix.k_offset) == (2.0, 14)
    assert paper.dataset.name == "casme2" and paper.dataset.classes == "5class"


def test_duplicate_keys_are_refused_as_dvc_refuses_them(tmp_path: Path) -> None:
    path = _write(tmp_path, "train:\n  epochs: 3\n  lr: 0.1\n  epochs: 30\n")
    with pytest.raises(ParamsError, match=r"line 4: duplicate key 'epochs' \(first on line 2\)"):
        load_params(path)
    path = _write(tmp_path, "flow: {size: 16}\ntrain: {epochs: 2}\nflow: {size: 32}\n")
    with pytest.raises(ParamsError, match=rf"{path}: line 3: duplicate key 'flow'"):
        load_params(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("trian: {epochs: 30}\n", "trian: unknown key (did you mean train? valid keys: dataset, synth"),
        ("train: {epoks: 30}\n", "train.epoks: unknown key (did you mean epochs?"),
        ("compare: {methods: [none, mixpu]}\n", "'cutmix', 'manifold_mixup', 'transmix', 'remix'"),
        ("compare: {methods: none}\n", "compare.methods: Value error, must be a list, e.g. [none]"),
    ],
)
def test_mistakes_name_the_key_and_the_valid_values(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ParamsError) as info:
        load_params(_write(tmp_path, text))
    assert expected in str(info.value)


def test_megc_preset_is_params_yaml_with_a_composite_of_synthetic_layouts() -> None:
    megc = load_params(REPO / "params.megc.yaml")
    raw = yaml.safe_load((REPO / "params.megc.yaml").read_text())
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    dumped = dump_params(megc)
    assert raw["dataset"] == dumped["dataset"] and raw["synth"] == dumped["synth"]  # every key spelled out
    others = set(base) - {"dataset", "synth", "transfer"}
    assert {k: raw[k] for k in others} == {k: base[k] for k in others} and set(raw) == set(base)
    assert {**raw["synth"], "layout": base["synth"]["layout"]} == base["synth"]
    assert (megc.dataset.name, megc.dataset.classes, megc.dataset.root) == ("composite", "megc3", "data/raw/synthetic")
    # each source reads the folder the synth stage writes for its layout
    assert [(s.name, s.root) for s in megc.dataset.sources] == [(n, n) for n in megc.synth.layout]
    assert megc.synth.layout == ["casme2", "samm", "smic"]
    assert megc.transfer.protocols == ["leave_one_dataset_out"]  # three sources: each one held out in turn


def test_megc2018_preset_is_params_yaml_with_hde_and_cde_on_objective_classes() -> None:
    """HDE (transfer) and CDE (the composite's LOSO) on CASME II and SAMM layouts with objective classes; the rest
    is params.yaml's but for the methods, so the preset measures what the default measures."""
    megc = load_params(REPO / "params.megc2018.yaml")
    raw = yaml.safe_load((REPO / "params.megc2018.yaml").read_text())
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    dumped = dump_params(megc)
    assert raw["dataset"] == dumped["dataset"] and raw["synth"] == dumped["synth"]
    others = set(base) - {"dataset", "synth", "transfer", "compare"}
    assert {k: raw[k] for k in others} == {k: base[k] for k in others} and set(raw) == set(base)
    assert {**raw["synth"], "layout": base["synth"]["layout"]} == base["synth"]
    assert {**raw["compare"], "methods": base["compare"]["methods"]} == base["compare"]
    assert (megc.dataset.name, megc.dataset.classes) == ("composite", "objective")
    assert [(s.name, s.root) for s in megc.dataset.sources] == [("casme2", "casme2"), ("samm", "samm")]
    assert megc.synth.layout == ["casme2", "samm"]
    assert megc.transfer.protocols == ["holdout_database"]
    assert set(megc.transfer.methods) <= set(megc.compare.methods)  # every HDE method has its CDE row


def test_a_cross_dataset_protocol_needs_a_composite_of_two_sources(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match=r"transfer.protocols \['holdout_database'\] .* at least two sources"):
        load_params(_write(tmp_path, "transfer: {protocols: [holdout_database]}\n"))
    with pytest.raises(ParamsError, match="must be a list, e.g. \\[leave_one_dataset_out\\]"):
        load_params(_write(tmp_path, "transfer: {protocols: leave_one_dataset_out}\n"))


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("train: {epochs: true}\n", "train.epochs"),
        ("train: {lr: true}\n", "train.lr"),
        ("flow: {size: false}\n", "flow.size"),
        ("train: {fold_batch: true}\n", "train.fold_batch"),
        ("compare: {seeds: [0, true]}\n", "compare.seeds"),
        ("fit: {seed: true}\n", "fit.seed"),
    ],
)
def test_a_bool_is_not_a_number(tmp_path: Path, text: str, key: str) -> None:
    """pydantic reads `true` as 1 where an int is expected; params must say it instead."""
    with pytest.raises(ParamsError, match=rf"{key}: .*is a bool"):
        load_params(_write(tmp_path, text))


def test_keys_that_take_a_bool_still_do(tmp_path: Path) -> None:
    text = "train: {compile: false, augment: {flip: false}}\nmodel: {face_stream: true}\n"
    params = load_params(_write(tmp_path, text))
    assert params.train.compile is False and params.train.augment.flip is False and params.model.face_stream


def test_the_baseline_must_be_one_of_the_compared_methods(tmp_path: Path) -> None:
    """Otherwise the mistake shows only at `compare`, after every method has trained."""
    with pytest.raises(ParamsError, match=r"compare: .*baseline 'none' is not in compare.methods \['memix', 'mixup'\]"):
        load_params(_write(tmp_path, "compare: {methods: [memix, mixup], baseline: none}\n"))
    chosen = load_params(_write(tmp_path, "compare: {methods: [memix, mixup], baseline: mixup}\n"))
    assert chosen.compare.baseline == "mixup"


# ------------------------------------------------------------------------------- architectures
def test_an_architecture_run_trains_with_its_recipe_over_the_machines_train_settings():
    p = parse_params({
        "train": {"device": "cpu", "workers": 3, "epochs": 40},
        "architectures": {"reference": {"run": "s", "method": "none"},
                          "runs": {"s": {"model": {"name": "ststnet"}, "train": {
                              "epochs": 500, "lr": 5e-5, "schedule": "cosine", "warmup_epochs": 5}}}},
    })
    run = arch_run_params(p, "s")
    assert (run.train.epochs, run.train.lr, run.train.device, run.train.workers) == (500, 5e-5, "cpu", 3)
    assert (run.train.schedule, run.train.warmup_epochs, p.train.schedule) == ("cosine", 5, "constant")
    assert run.model.name == "ststnet" and p.model.name == "vit_flow_tiny"


@pytest.mark.parametrize(("arch", "match"), [
    ({"runs": {"s": {"train": {"device": "cpu"}}}, "reference": {"run": "s", "method": "none"}}, "not recipe keys"),
    ({"runs": {"s": {"train": {"epochs": 0}}}, "reference": {"run": "s", "method": "none"}},
     r"architectures.runs.s.train: epochs"),
    ({"runs": {"s": {"model": {"name": "ststnet"}, "methods": ["memix"]}},
      "reference": {"run": "s", "method": "memix"}}, "CLS attention"),
    ({"runs": {"s": {}}}, "reference must name"),
    ({"runs": {"s": {}}, "reference": {"run": "t", "method": "none"}}, "not one of the runs"),
    ({"runs": {"a b": {}}, "reference": {"run": "a b", "method": "none"}}, "letters, digits"),
])
def test_bad_architecture_runs_are_refused_naming_the_problem(arch, match):
    with pytest.raises(ParamsError, match=match):
        parse_params({"architectures": arch})


# ----------------------------------------------------------------- model.name and model.options, at load
def _model_text(model: str, where: str) -> tuple[str, str]:
    """A params file with ``model`` (a YAML flow mapping) at the top or as run ``r``'s, and that model's key path."""
    if where == "top":
        return f"model: {model}\ncompare: {{methods: [none], baseline: none}}\nfit: {{methods: [none]}}\n", "model"
    text = f"architectures:\n  reference: {{run: r, method: none}}\n  runs:\n    r:\n      model: {model}\n"
    return text, "architectures.runs.r.model"


MODEL_MISTAKES = [
    # a ViT ignored any option (`{bogus: 1, img_size: abc}` trained the default ViT and exited 0)
    ("{options: {bogus: 1, img_size: abc}}", "options.bogus: unknown option: model.name 'vit_flow_tiny' is a ViT, "
     "which takes no options (its settings are model.patch_size"),
    ("{name: ststnet, options: {kernel: 5}}", "options.kernel: unknown option of ststnet (valid options: conv_padding, "
     "filters, drop_rate, img_size)"),
    ("{name: mmnet, options: {imgsize: 32}}", "options.imgsize: unknown option of mmnet (did you mean img_size? "),
    ("{name: aman, options: {levels: 3}}", "options.levels: unknown option of aman (did you mean num_levels? "),
    ("{name: ststnet, options: {img_size: 0}}", "options.img_size: Input should be greater than or equal to 1 (got 0)"),
    ("{name: mmnet, options: {img_size: 0}}", "options.img_size: Input should be greater than or equal to 16 (got 0)"),
    ("{name: aman, options: {img_size: 0}}", "options.img_size: Input should be greater than or equal to 32 (got 0)"),
    ("{name: mmnet, options: {img_size: 7}}", "options.img_size: Input should be a multiple of 16 (got 7)"),
    ("{name: mmnet, options: {img_size: abc}}", "options.img_size: Input should be a valid integer"),
    ("{name: ststnet, options: {img_size: abc}}", "options.img_size: Input should be a valid integer"),
    ("{name: mmnet, options: {img_size: true}}", "options.img_size: Value error, true is a bool"),
    ("{name: mmnet, options: {pos_heads: 3}}", "options.pos_heads: Value error, MMNet's pos_heads must divide the "
     "branch's width 512 (got 3)"),
    ("{name: nope}", "name: model.name 'nope' is not a model: valid names are vit_flow_tiny (the CPU flow ViT), "
     "ststnet, mmnet, aman, htnet, causalnet (the comparison architectures) or a timm ViT such as "
     "vit_base_patch16_224"),
    ("{name: ststnet, face_stream: true}", "face_stream: MixMeFormer's onset-face stream goes with a ViT; "
     "model.name 'ststnet' has none"),
    # STSTNet trained at any size its formula allowed; below 4 px (conv_padding 1) its pools have nothing left
    ("{name: ststnet, options: {img_size: 3}}", "options.img_size: Value error, STSTNet needs img_size at least "
     "6 - 2 x conv_padding = 4 px (conv_padding 1)"),
    ("{name: ststnet, options: {img_size: 5, conv_padding: 0}}", "options.img_size: Value error, STSTNet needs "
     "img_size at least 6 - 2 x conv_padding = 6 px (conv_padding 0)"),
]


@pytest.mark.parametrize("where", ["top", "run"])
@pytest.mark.parametrize(("model", "expected"), MODEL_MISTAKES, ids=[m for m, _ in MODEL_MISTAKES])
def test_model_name_and_options_are_checked_when_params_load(tmp_path: Path, model: str, expected: str,
                                                            where: str) -> None:
    """Each error names the file and the full key, for the top-level model and for a run's."""
    text, prefix = _model_text(model, where)
    path = _write(tmp_path, text)
    with pytest.raises(ParamsError) as info:
        load_params(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid params\n")
    assert f"\n  {prefix}.{expected}" in message, message


def test_every_problem_of_a_models_options_is_named_at_once(tmp_path: Path) -> None:
    text, _ = _model_text("{name: mmnet, options: {img_size: 7, pos_depth: -1, kernel: 3, pos_antialias: 1}}", "run")
    lines = str(pytest.raises(ParamsError, load_params, _write(tmp_path, text)).value).splitlines()[1:]
    assert [line.split(":")[0].strip() for line in lines] == [
        f"architectures.runs.r.model.options.{k}" for k in ("img_size", "pos_depth", "kernel", "pos_antialias")
    ]


@pytest.mark.parametrize("model", [
    {"name": "ststnet", "options": {"img_size": 4}},
    {"name": "ststnet", "options": {"img_size": 2, "conv_padding": 2, "filters": [4], "drop_rate": 0}},
    {"name": "mmnet", "options": {"img_size": 16, "pos_heads": 8, "pos_depth": 0, "pos_antialias": True}},
    {"name": "aman", "options": {"img_size": 32, "num_levels": 1, "train_trunk": True}},
    {"name": "vit_flow_tiny", "face_stream": True},
])
def test_valid_models_and_options_still_load(model: dict) -> None:
    params = parse_params({"model": model, "compare": {"methods": ["none"], "baseline": "none"},
                           "fit": {"methods": ["none"]}})
    assert params.model.options == model.get("options", {})


def test_a_timm_name_is_checked_against_timms_list() -> None:
    assert parse_params({"model": {"name": "vit_tiny_patch16_224"}}).model.name == "vit_tiny_patch16_224"
    with pytest.raises(ParamsError, match=r"model.name: model.name 'vit_tiny_patch16_22' is not a model: did you "
                                          r"mean vit_tiny_patch16_224\?"):
        parse_params({"model": {"name": "vit_tiny_patch16_22"}})


def test_the_shipped_comparison_loads() -> None:
    models = load_params(REPO / "params.models.yaml")
    assert models.architectures.runs["mmnet"].model.options == {"img_size": 32}


def test_the_shipped_leaderboard_trains_every_public_network_on_the_megc_composite() -> None:
    """params.leaderboard.yaml: the MEGC 2019 composite, the flow pair CausalNet reads, and each network's run
    without the augmentation its region images cannot take."""
    from memix.config import arch_run_params
    from memix.models import registry

    board = load_params(REPO / "params.leaderboard.yaml")
    assert board.dataset.name == "composite" and board.dataset.classes == "megc3"
    assert [s.name for s in board.dataset.sources] == ["casme2", "samm", "smic"]
    assert "apex_offset" in board.flow.pairs
    names = {arch_run_params(board, run).model.name for run in board.architectures.runs}
    assert {"ststnet", "mmnet", "htnet", "causalnet"} <= names
    for run in board.architectures.runs:
        p = arch_run_params(board, run)
        aug = p.train.augment
        assert registry.augment_problem(p.model.name, aug.flip, aug.rotate_deg, aug.translate_frac) is None, run


# ------------------------------------------------------------------------------ YAML anchors and aliases
def test_anchors_and_aliases_are_refused_naming_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "train: &t {epochs: 3}\nmixing: {}\nfit: {methods: [none]}\n")
    with pytest.raises(ParamsError, match=rf"^{path}: line 1: YAML anchor &t: a params file takes no anchors"):
        load_params(path)
    path = _write(tmp_path, "train:\n  epochs: 3\n  <<: *nowhere\n")
    with pytest.raises(ParamsError, match=rf"^{path}: line 3: YAML alias \*nowhere"):
        load_params(path)


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    """Nine copies per level, eight levels: 43 million leaves (1.6 GB when pydantic read it). Loaded in a child
    capped at 512 MiB of address space, so the test fails rather than the machine if anything expands it."""
    lines = ["train: {epochs: 3}", "l0: &l0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    path = _write(tmp_path, "\n".join(lines) + "\n")
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (512 << 20, 512 << 20))\n"
        "from memix.config import ParamsError, load_params\n"
        f"try:\n    load_params({str(path)!r})\nexcept ParamsError as err:\n    print(err)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"{path}: line 2: YAML anchor &l0: a params file takes no anchors"), proc.stdout


# ------------------------------------------------------------------------------ what arch@<run> reads
def test_a_run_reads_only_its_own_recipe_methods_and_the_train_keys_it_leaves(tmp_path: Path) -> None:
    """``arch_run_inputs`` is what stage arch@<run> depends on (data/arch_params/<run>.json)."""
    base = {
        "architectures": {"reference": {"run": "s", "method": "none"}, "runs": {
            "s": {"model": {"name": "ststnet"}, "train": {"epochs": 500, "lr": 5e-5}, "methods": ["none", "mixup"]},
            "v": {"methods": ["none", "memix"]},
        }},
    }

    def inputs(**sections: dict) -> dict[str, dict]:
        params = parse_params({**base, **sections})
        return {run: arch_run_inputs(params, run) for run in ("s", "v")}

    before = inputs()
    assert before["s"]["train"]["epochs"] == 500 and before["v"]["train"]["epochs"] == Params().train.epochs
    assert set(before["s"]["mixing"]) == {"none", "mixup"} and set(before["v"]["mixing"]) == {"none", "memix"}
    changed = {
        "train.epochs": inputs(train={"epochs": 3}),        # s sets its own epochs
        "train.lr": inputs(train={"lr": 0.1}),              # s sets its own lr
        "train.batch_size": inputs(train={"batch_size": 4}),  # neither sets it
        "mixing.memix": inputs(mixing={"memix": {"k_offset": 3}}),
        "mixing.mixup": inputs(mixing={"mixup": {"alpha": 0.5}}),
        "mixing.cutmix": inputs(mixing={"cutmix": {"alpha": 0.5}}),  # no run's method
        "model": inputs(model={"depth": 3}),                 # the top-level model: no run's
        "compare.seeds": inputs(compare={"seeds": [0]}),
        "eval.rules": inputs(eval={"rules": ["last"]}),
        "eval.keyframe_noise": inputs(eval={"keyframe_noise": [2], "keyframe_noise_seed": 4}),  # train stage's only
    }
    moved = {key: sorted(r for r in ("s", "v") if after[r] != before[r]) for key, after in changed.items()}
    assert moved == {
        "train.epochs": ["v"], "train.lr": ["v"], "train.batch_size": ["s", "v"], "mixing.memix": ["v"],
        "mixing.mixup": ["s"], "mixing.cutmix": [], "model": [], "compare.seeds": ["s", "v"],
        "eval.rules": ["s", "v"], "eval.keyframe_noise": [],
    }


def test_region_networks_are_refused_augmentation_and_causalnet_a_flow_without_its_offset_pair() -> None:
    base = {"compare": {"methods": ["none"], "baseline": "none"}, "fit": {"methods": ["none"]}}
    off = {"flip": False, "rotate_deg": 0.0, "translate_frac": 0.0}
    with pytest.raises(ParamsError, match=r"train.augment: htnet reads regions images"):
        parse_params({**base, "model": {"name": "htnet"}})
    assert parse_params({**base, "model": {"name": "htnet"}, "train": {"augment": off}}).model.name == "htnet"
    with pytest.raises(ParamsError, match=r"set flow.pairs: \[onset_apex, apex_offset\]"):
        parse_params({**base, "model": {"name": "causalnet"}, "train": {"augment": off}})
    ok = parse_params({**base, "model": {"name": "causalnet"}, "train": {"augment": off},
                       "flow": {"pairs": ["onset_apex", "apex_offset"]}})
    assert ok.flow.pairs == ["onset_apex", "apex_offset"]
    run = {"model": {"name": "htnet"}, "train": {"augment": {"flip": True}}, "methods": ["none"]}
    with pytest.raises(ParamsError, match=r"architectures.runs.h.train.augment"):
        parse_params({**base, "architectures": {"reference": {"run": "h", "method": "none"}, "runs": {"h": run}}})
    with pytest.raises(ParamsError, match="cross_heads 8"):
        parse_params({**base, "model": {"name": "causalnet", "options": {"dim": 12}}, "train": {"augment": off},
                      "flow": {"pairs": ["onset_apex", "apex_offset"]}})


@pytest.mark.parametrize(("value", "expected"), [
    ("[0]", "eval.keyframe_noise: Value error, levels are shifts of at least one frame (> 0), got [0]"),
    ("[2, -1]", "got [-1]"),
    ("[2, 2]", "levels must not repeat"),
    ("3", "must be a list, e.g. [3]"),
    ("[true]", "an item is a bool"),
])
def test_keyframe_noise_levels_are_positive_unique_frame_counts(tmp_path: Path, value: str, expected: str) -> None:
    with pytest.raises(ParamsError, match=re.escape(expected)):
        load_params(_write(tmp_path, f"eval: {{keyframe_noise: {value}}}\n"))
    assert load_params(_write(tmp_path, "eval: {keyframe_noise: [5, 2]}\n")).eval.keyframe_noise == [5, 2]
