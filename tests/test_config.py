"""params.yaml loading: the shipped file is valid and complete; bad keys, types and ranges name key and file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from memix.config import MIXING_METHODS, Params, ParamsError, arch_run_params, dump_params, load_params, parse_params

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
    others = set(base) - {"dataset", "synth"}
    assert {k: raw[k] for k in others} == {k: base[k] for k in others} and set(raw) == set(base)
    assert {**raw["synth"], "layout": base["synth"]["layout"]} == base["synth"]
    assert (megc.dataset.name, megc.dataset.classes, megc.dataset.root) == ("composite", "megc3", "data/raw/synthetic")
    # each source reads the folder the synth stage writes for its layout
    assert [(s.name, s.root) for s in megc.dataset.sources] == [(n, n) for n in megc.synth.layout]
    assert megc.synth.layout == ["casme2", "samm", "smic"]


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
                          "runs": {"s": {"model": {"name": "ststnet"}, "train": {"epochs": 500, "lr": 5e-5}}}},
    })
    run = arch_run_params(p, "s")
    assert (run.train.epochs, run.train.lr, run.train.device, run.train.workers) == (500, 5e-5, "cpu", 3)
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
