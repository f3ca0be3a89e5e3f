"""The architecture table: every published network listed in the published order, trained runs with both selection
rules, intervals against the reference, parameter counts beside the release, and the reason for every other row."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from flowsets import make_flow_set

from memix.config import parse_params
from memix.evaluation import arch_runs, models_table
from memix.models import registry
from memix.models.published import NOT_FOUND, PUBLISHED_TABLE, Label

RUNS = {
    "ststnet": {"model": {"name": "ststnet"}, "train": {"epochs": 2, "batch_size": 4}, "methods": ["none", "mixup"]},
    # on the flow set's onset and apex faces (16 px here: the network's 1 x 1 grid), one small transformer block
    "mmnet": {"model": {"name": "mmnet", "options": {"img_size": 16, "pos_depth": 1}}, "train": {"epochs": 1},
              "methods": ["none"]},
    "vit": {"model": {"patch_size": 4, "embed_dim": 16, "depth": 1, "num_heads": 1}, "train": {"epochs": 2},
            "methods": ["none"]},
}


def _params(runs: dict, reference: dict | None):
    return parse_params({
        "train": {"device": "cpu", "threads": 1, "workers": 1, "batch_size": 4},
        "compare": {"methods": ["none"], "seeds": [0], "baseline": "none", "bootstrap_resamples": 200},
        "fit": {"methods": ["none"]},
        "architectures": {"reference": reference, "runs": runs},
    })


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path]:
    work = tmp_path_factory.mktemp("arch")
    flow = make_flow_set(work / "flow")
    params = _params(RUNS, {"run": "vit", "method": "none"})
    for name in RUNS:
        arch_runs.run(params, name, flow_dir=flow, out_dir=work / "arch" / name)
    return params, work / "arch"


def test_every_published_network_is_a_row_in_order_and_the_untrained_say_why(trained) -> None:
    params, root = trained
    content = models_table.build(params, root)
    rows = content["rows"]
    assert [r["network"] for r in rows[: len(PUBLISHED_TABLE)]] == [p.network for p in PUBLISHED_TABLE]
    by_name = {r["network"]: r for r in rows}
    assert by_name["AU-GACN"]["status"].startswith("not built:") and not by_name["AU-GACN"]["trained"]
    assert "magnified" in by_name["AMAN"]["status"] and not by_name["AMAN"]["trained"]
    (mmnet,) = by_name["MMNet"]["trained"]  # trained on the onset and apex faces
    assert mmnet["key"] == "mmnet/none" and mmnet["released_params"] == 9_438_841
    assert by_name["MixMeFormer"]["status"] and not by_name["MixMeFormer"]["trained"]  # no face-stream run here
    # the tiny ViT run is not a published network: it follows the published rows under its run name
    assert rows[-1]["network"] == "vit" and rows[-1]["trained"][0]["key"] == content["reference"] == "vit/none"


def test_a_trained_row_has_both_rules_an_interval_and_its_parameter_counts(trained) -> None:
    params, root = trained
    content = models_table.build(params, root)
    ststnet = next(r for r in content["rows"] if r["network"] == "STSTNet")
    assert [t["method"] for t in ststnet["trained"]] == ["none", "mixup"]
    assert content["rules"] == ["last", "release", "oracle"]  # every architecture run adds its release's rule
    for t in ststnet["trained"]:
        assert t["released_params"] == 1683 and t["released_classes"] == 3
        assert t["trainable_params"] == 1683  # the flow set has 3 classes too: the same network
        for rule in content["rules"]:
            acc = t["rules"][rule]["accuracy"]
            assert 0.0 <= acc["mean"] <= 1.0
            assert acc["low"] <= acc["delta"] <= acc["high"]
    oracle, last = (ststnet["trained"][0]["rules"][r]["accuracy"]["mean"] for r in ("oracle", "last"))
    assert oracle >= last  # test-set selection can only look better


def test_the_markdown_names_every_network_and_the_reference(trained, tmp_path: Path) -> None:
    params, root = trained
    out = tmp_path / "models_table.md"
    models_table.run(params, root, out)
    text = out.read_text()
    for row in PUBLISHED_TABLE:
        assert f"| {row.network} |" in text
    assert "| vit | " in text and "reference" in text and "1,683 / 1,683 (3 classes)" in text
    assert out.with_suffix(".json").is_file()


def test_every_published_row_carries_its_label_from_its_source_in_json_and_markdown(trained) -> None:
    params, root = trained
    content = models_table.build(params, root)
    text = models_table.render_markdown(content)
    fields = [f.name for f in dataclasses.fields(Label)]
    for pub, row in zip(PUBLISHED_TABLE, content["rows"], strict=False):
        label = {f: row["published"][f] for f in fields}
        assert all(label.values()), f"{pub.network}: {label}"
        if pub.built is not None and registry.is_architecture(pub.built):  # the module's own PUBLISHED, not a copy
            module = registry.architecture(pub.built).module.PUBLISHED
            assert label == {f: str(module[f]) for f in fields}
        else:
            assert label == dataclasses.asdict(pub.label)
        assert Label(**label).text() in text  # in the Markdown too, trained or not
    by_name = {r["network"]: r["published"] for r in content["rows"]}
    assert "SAMM (3-class)" in by_name["MixMeFormer"]["dataset"] and "line 21" in by_name["MixMeFormer"]["source"]
    assert by_name["STSTNet"]["metric"].startswith("UAR / UF1") and "Table III" in by_name["STSTNet"]["source"]
    for unread in ("AU-GACN", "MiMANet", "MERSiamC3D", "MAPNet", "FRL-DGT", "MMNet", "AMAN"):
        assert by_name[unread]["source"].startswith(NOT_FOUND), unread


def test_with_no_runs_the_table_lists_the_published_figures(tmp_path: Path) -> None:
    (tmp_path / "arch").mkdir()
    content = models_table.build(_params({}, None), tmp_path / "arch")
    assert content["reference"] is None and not any(r["trained"] for r in content["rows"])
    text = models_table.render_markdown(content)
    assert "No architecture was trained" in text and "90.22 / 0.8391" in text


def test_the_arch_stage_ends_with_its_one_line_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml
    from diskfull import stage_main

    from memix.config import dump_params

    flow = make_flow_set(tmp_path / "flow")
    params = _params({"ststnet": RUNS["ststnet"]}, {"run": "ststnet", "method": "none"})
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(dump_params(params), sort_keys=False))
    out = tmp_path / "arch" / "ststnet"
    assert stage_main("arch")(["--params", str(path), "--run", "ststnet", "--flow", str(flow), "--out", str(out),
                               "--arch-params", str(tmp_path / "none")]) == 0
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("arch ststnet: ")]
    assert len(lines) == 1 and "No mixing: seeds 0 x 4 folds, 20 clips, 2 epochs" in lines[0] and "Mixup: " in lines[0]


def test_the_arch_stage_refuses_params_that_changed_after_check_params(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``dvc repro -s -f arch@<run>`` after an edit would train with values DVC did not record: refused."""
    import yaml
    from diskfull import stage_main

    from memix.config import arch_run_inputs, dump_params
    from memix.io import atomic

    params = _params({"ststnet": RUNS["ststnet"]}, {"run": "ststnet", "method": "none"})
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(dump_params(params), sort_keys=False))
    recorded = tmp_path / "arch_params" / "ststnet.json"
    recorded.parent.mkdir()
    stale = arch_run_inputs(params, "ststnet") | {"seeds": [0, 1]}
    recorded.write_bytes(atomic.json_bytes(stale))
    out = tmp_path / "arch" / "ststnet"
    assert stage_main("arch")(["--params", str(path), "--run", "ststnet", "--flow", str(tmp_path / "none"),
                               "--out", str(out), "--arch-params", str(recorded.parent)]) == 1
    assert f"{recorded} does not hold the params" in capsys.readouterr().err and not out.exists()
