"""The ``release`` rule through the evaluation, the comparison and the architecture table: its figures in
metrics.json, per_subject.csv and the confusion files; paired intervals when a release drops a subject from its
pool; the table's release section with the inflation column, per-source figures and each row's rule."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import fake_train
import numpy as np
import pandas as pd
import pytest

from memix import plots
from memix.config import EvalParams, arch_run_params, parse_params
from memix.evaluation import arch_runs, comparison, evaluate, metrics, models_table, release_rules, selection

SEEDS = [0, 1]
RULES = ["last", "oracle", "release"]
NEVER_RIGHT = "s01"


def _preds(skill: float, seed: int, datasets: tuple[str, ...] = ("casme2",), never_right: bool = False,
           epochs: int = 4) -> pd.DataFrame:
    """fake_train's predictions, with subject s01 wrong in every epoch when ``never_right``."""
    table = fake_train.clips(n_subjects=6, per_subject=4, datasets=datasets)
    preds = fake_train.predictions(table, SEEDS, epochs=epochs, skill=skill, rng=np.random.default_rng(seed))
    if never_right:
        rows = preds["subject"] == NEVER_RIGHT
        preds.loc[rows, "pred"] = (preds.loc[rows, "true"] + 1) % len(fake_train.NAMES)
        k = len(fake_train.NAMES)
        probs = np.full((len(preds), k), 0.1 / (k - 1), dtype=np.float32)
        probs[np.arange(len(preds)), preds["pred"].to_numpy()] = 0.9
        for j in range(k):
            preds[f"prob_{j}"] = probs[:, j]
    return preds


def _evaluate(root: Path, method: str, preds: pd.DataFrame, network: str | None,
              rules: list[str] = RULES) -> tuple[dict, Path]:
    train = fake_train.write(root / "train" / method, preds)
    out = root / "eval" / method
    with pytest.MonkeyPatch.context() as mp:  # the PNG is not what these tests read
        mp.setattr(plots, "confusion_grid_png", lambda *args: b"png")
        evaluate.run(EvalParams(rules=rules), method, train, out, network=network)
    return json.loads((out / "metrics.json").read_text()), out


def test_evaluate_writes_the_release_figures_of_the_networks_rule(tmp_path: Path) -> None:
    preds = _preds(0.5, 3, never_right=True)
    m, out = _evaluate(tmp_path, "none", preds, "causalnet")
    rule = release_rules.release_rule("causalnet")
    assert list(m["rules"]) == RULES and "tony19980810/CausalNet" in m["rules"]["release"]
    assert rule.description in m["rules"]["release"] and m["rules"]["oracle"] == selection.RULES["oracle"]
    assert m["network"] == "causalnet" and m["release_rule"]["drops_never_right"] is True
    assert set(m["mean"]) == set(RULES)
    kept = release_rules.select_best_accuracy(preds, rule)
    for entry in m["per_seed"]:
        rows = kept[kept["seed"] == entry["seed"]]
        assert NEVER_RIGHT not in set(rows["subject"])  # dropped from the pool
        want = metrics.summary(rows["true"].to_numpy(), rows["pred"].to_numpy(), len(fake_train.NAMES))
        assert entry["release_acc"] == entry["release_f1"]  # one epoch for every metric
        assert {k: entry["release_acc"][k] for k in metrics.METRICS} == pytest.approx(want)
    assert m["mean"]["release"]["uf1"]["mean"] == pytest.approx(np.mean([s["release_f1"]["uf1"]
                                                                         for s in m["per_seed"]]))
    table = pd.read_csv(out / "per_subject.csv")
    assert table["selection"].drop_duplicates().tolist() == ["last", "oracle_acc", "oracle_f1", "release_acc",
                                                            "release_f1"]
    assert NEVER_RIGHT not in set(table.loc[table.selection == "release_acc", "subject"])
    conf = pd.read_csv(out / "confusion.csv")
    label = evaluate.rule_label("release", "causalnet")
    assert conf["rule"].drop_duplicates().tolist() == ["last epoch", evaluate.RULE_LABELS["oracle"], label]
    assert (conf["rule"] == label).sum() == len(kept)


def test_the_release_rule_needs_the_network_and_the_default_rules_are_unchanged(tmp_path: Path) -> None:
    preds = _preds(0.5, 4)
    with pytest.raises(ValueError, match="needs the network"):
        _evaluate(tmp_path, "none", preds, None)
    assert EvalParams().rules == ["last", "oracle"]
    m, _ = _evaluate(tmp_path, "mixup", preds, None, rules=["last", "oracle"])
    assert "network" not in m and set(m["per_seed"][0]) == {"seed", "last", "oracle_acc", "oracle_f1"}


def test_the_vit_release_rule_is_the_oracle_and_ststnets_the_last_epoch(tmp_path: Path) -> None:
    preds = _preds(0.5, 5)
    vit, _ = _evaluate(tmp_path / "vit", "none", preds, "vit")
    ststnet, _ = _evaluate(tmp_path / "ststnet", "none", preds, "ststnet")
    for m in ("accuracy", "uf1", "uar"):
        assert vit["mean"]["release"][m] == vit["mean"]["oracle"][m]
        assert ststnet["mean"]["release"][m] == ststnet["mean"]["last"][m]


def test_paired_intervals_hold_when_a_release_drops_a_subject(tmp_path: Path) -> None:
    """The baseline keeps every subject, the other method's release drops one: it counts nothing for that one
    in every resample, as in its release's figure; the point difference is the tables' difference."""
    _evaluate(tmp_path, "none", _preds(0.5, 6), "vit")
    _evaluate(tmp_path, "mixup", _preds(0.6, 7, never_right=True), "causalnet")
    evals = {m: comparison.load(m, tmp_path / "eval", SEEDS) for m in ("none", "mixup")}
    shim = SimpleNamespace(compare=SimpleNamespace(baseline="none", seeds=SEEDS, bootstrap_resamples=300,
                                                   bootstrap_seed=0))
    table = comparison.compare(shim, evals)  # type: ignore[arg-type]
    assert list(table) == RULES
    row = table["release"]["mixup"]
    for m in metrics.METRICS:
        iv = row.interval[m]
        assert iv.delta == pytest.approx(row.delta[m]) and iv.low <= iv.delta <= iv.high
    # any other difference in the clips is still refused
    evals["mixup"].selected = evals["mixup"].selected[evals["mixup"].selected["clip_id"] != "casme2/s02/c00"]
    with pytest.raises(ValueError, match="methods are compared on the same clips only"):
        comparison.compare(shim, evals)  # type: ignore[arg-type]


# ------------------------------------------------------------------ the architecture table
RUNS = {
    "ststnet": {"model": {"name": "ststnet"}, "train": {"epochs": 4}, "methods": ["none", "mixup"]},
    "vit": {"model": {"patch_size": 4, "embed_dim": 16, "depth": 1, "num_heads": 1}, "train": {"epochs": 4},
            "methods": ["none"]},
}


@pytest.fixture(scope="module")
def arch_table(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    """Two runs on a composite of two sources, evaluated as arch_runs evaluates them, without training."""
    root = tmp_path_factory.mktemp("arch")
    params = parse_params({
        "compare": {"methods": ["none"], "seeds": SEEDS, "baseline": "none", "bootstrap_resamples": 200},
        "fit": {"methods": ["none"]},
        "architectures": {"reference": {"run": "vit", "method": "none"}, "runs": RUNS},
    })
    for i, (name, spec) in enumerate(RUNS.items()):
        model = arch_run_params(params, name).model.model_dump(mode="json")
        for j, method in enumerate(spec["methods"]):
            preds = _preds(0.5 + 0.1 * j, 10 * i + j, datasets=("casme2", "samm"))
            _evaluate(root / name, method, preds, release_rules.network(model))
        info = {"run": name, "model": model, "methods": spec["methods"], "trainable_params": 1000 + i,
                "released": arch_runs.released(model["name"])}
        (root / name / arch_runs.RUN_FILE).write_text(json.dumps(info))
    content = models_table.build(params, root)
    return content, models_table.render_markdown(content)


def test_the_table_has_the_release_section_with_its_inflation_column(arch_table) -> None:
    content, text = arch_table
    assert content["rules"] == ["last", "release", "oracle"]
    sections = text.split("## Selection: ")[1:]
    assert [s.splitlines()[0] for s in sections] == [models_table.RULE_TITLES[r] for r in content["rules"]]
    release = sections[1]
    assert "Inflation: release − last, Acc (pts) / UF1" in release
    assert all("Inflation" not in s for s in (sections[0], sections[2]))
    by_name = {r["network"]: r for r in content["rows"]}
    for t in by_name["STSTNet"]["trained"]:  # its release tests after the last epoch: nothing added
        assert t["inflation"] == {"accuracy": 0.0, "uf1": 0.0}
        assert f"| STSTNet | 2019 | CNN | ststnet ({'No mixing' if t['method'] == 'none' else 'Mixup'}) |" in release
    assert "| +0.00 / +0.0000 |" in release
    (vit,) = by_name["vit"]["trained"]  # the ViT's release is the MEMix loop: the oracle's figures
    gain = vit["rules"]["oracle"]["accuracy"]["mean"] - vit["rules"]["last"]["accuracy"]["mean"]
    assert vit["inflation"]["accuracy"] == pytest.approx(gain) and gain > 0
    uf1 = vit["rules"]["oracle"]["uf1"]["mean"] - vit["rules"]["last"]["uf1"]["mean"]
    assert f"| {gain * 100:+.2f} / {uf1:+.4f} |" in release
    # every line of a section's table has as many cells as its header
    for section in sections:
        lines = section.splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("|"))
        table = lines[start:lines.index("", start)]
        assert len({line.count(" | ") for line in table[:1] + table[2:]}) == 1
        assert table[1].count("---|") == table[0].count(" | ") + 1


def test_the_table_lists_per_source_figures_under_every_rule(arch_table) -> None:
    content, text = arch_table
    part = text.split("## Per source dataset")[1].split("\n## ")[0]
    assert "| last: UF1 / UAR / Acc | release: UF1 / UAR / Acc | oracle: UF1 / UAR / Acc |" in part
    (vit,) = next(r for r in content["rows"] if r["network"] == "vit")["trained"]
    f = {r: vit["rules"][r]["per_dataset"]["samm"] for r in content["rules"]}
    cells = " | ".join(f"{f[r]['uf1']['mean']:.4f} / {f[r]['uar']['mean']:.4f} / {f[r]['accuracy']['mean'] * 100:.2f}"
                       for r in content["rules"])
    assert f"| vit | vit (No mixing) | samm | {cells} |" in part
    assert sum(line.startswith("| STSTNet | ststnet") for line in part.splitlines()) == 4  # 2 methods x 2 sources


def test_each_rows_release_rule_is_described_under_the_table(arch_table) -> None:
    content, text = arch_table
    part = text.split("## Each network's release rule")[1].split("\n## ")[0]
    for network, key in (("STSTNet", "ststnet"), ("MMNet", "mmnet"), ("AMAN", "aman"), ("MixMeFormer", "mixmeformer"),
                         ("vit", "vit")):
        rule = release_rules.release_rule(key)
        assert f"- **{network}** (`{key}`; {rule.release}, {rule.where}): {rule.description}." in part
    assert next(r for r in content["rows"] if r["network"] == "AU-GACN")["release_rule"] is None
    assert "## What each published figure was measured on" in text  # the published labels stay


def test_a_source_whose_clips_a_rule_dropped_has_no_figure_rather_than_nan():
    chosen = pd.DataFrame({"true": [0, 1, 2], "pred": [0, 1, 1], "dataset": ["casme2"] * 3})
    out = evaluate._scores(chosen, 3, ["a", "b", "c"], ["casme2", "samm"])
    assert out["per_dataset"]["samm"] == {"accuracy": None, "uf1": None, "uar": None, "n": 0}
    assert out["per_dataset"]["casme2"]["n"] == 3 and out["per_dataset"]["casme2"]["accuracy"] == 2 / 3
