"""The comparison: means and spread over seeds, paired bootstrap intervals against the baseline named by
compare.baseline, provenance, the flat DVC summary, the overlaid curves, and the same bytes on every run."""

from __future__ import annotations

import json
from pathlib import Path

import fake_train
import pandas as pd
import pytest
import yaml

from memix import plots
from memix.config import EvalParams, parse_params
from memix.evaluation import evaluate, provenance, report

REPO = Path(__file__).resolve().parents[2]
SEEDS = [0, 1, 2]
SKILL = {"none": 0.5, "mixup": 0.5, "memix": 0.8}  # mixup: no real gain; memix: a large one
SHA = "ab" * 32


def _params(**compare) -> object:
    return parse_params({
        "train": {"epochs": 3},
        "mixing": {"memix": {"alpha_k": 1.5}, "cutmix": {"alpha": 0.5}},  # cutmix is not compared: not listed
        "compare": {"methods": list(SKILL), "seeds": SEEDS, "bootstrap_resamples": 500, **compare},
    })


def _evaluate(root: Path, datasets: tuple[str, ...] = ("casme2",)) -> Path:
    table = fake_train.clips(n_subjects=8, per_subject=6, datasets=datasets)
    with pytest.MonkeyPatch.context() as mp:  # compare never reads the confusion PNG: skip drawing it
        mp.setattr(plots, "confusion_grid_png", lambda *args: b"png")
        for i, (method, skill) in enumerate(SKILL.items()):
            train = fake_train.write_method(root / "train", method, table, SEEDS, skill, seed=10 + i, subject_sd=0.1)
            evaluate.run(EvalParams(), method, train, root / "eval" / method)
    return root / "eval"


@pytest.fixture(scope="module")
def eval_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _evaluate(tmp_path_factory.mktemp("compare"))


@pytest.fixture(scope="module")
def ingest_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("interim") / "ingest_report.json"
    path.write_text(json.dumps({"dataset": "casme2", "sheet": {"file": "CASME2-coding.xlsx", "sha256": SHA}}))
    return path


@pytest.fixture(scope="module")
def compared(eval_root: Path, ingest_report: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("reports")
    return report.run(_params(), eval_root, out, ingest_report), out


def _metrics(eval_root: Path, method: str) -> dict:
    return json.loads((eval_root / method / "metrics.json").read_text())


def test_means_spread_and_per_seed_differences_come_from_the_evaluations(compared, eval_root):
    content, _ = compared
    none, memix = _metrics(eval_root, "none"), _metrics(eval_root, "memix")
    row, base = content["last"]["memix"], content["last"]["none"]
    assert row["accuracy"]["mean"] == pytest.approx(memix["mean"]["last"]["accuracy"]["mean"])
    assert row["uar"]["std"] == pytest.approx(memix["mean"]["last"]["uar"]["std"])
    assert row["uf1"]["delta"] == pytest.approx(row["uf1"]["mean"] - base["uf1"]["mean"])
    per_seed = [a["last"]["accuracy"] - b["last"]["accuracy"] for a, b in zip(memix["per_seed"], none["per_seed"],
                                                                                strict=True)]
    assert row["accuracy"]["delta_per_seed"] == pytest.approx(per_seed)
    assert "delta" not in base["accuracy"] and "ci95" not in base["accuracy"]
    oracle = content["oracle"]["memix"]
    assert oracle["accuracy"]["mean"] == pytest.approx(memix["mean"]["oracle"]["accuracy"]["mean"])


def test_significance_follows_the_bootstrap_interval(compared):
    content, out = compared
    gain, same = content["last"]["memix"]["accuracy"], content["last"]["mixup"]["accuracy"]
    assert gain["ci95"][0] <= gain["delta"] <= gain["ci95"][1]
    assert gain["ci95"][0] > 0 and gain["significant"] is True
    assert same["ci95"][0] < 0 < same["ci95"][1] and same["significant"] is False
    assert content["statistics"]["resamples"] == 500 and content["statistics"]["test"].startswith("paired bootstrap")
    md = (out / "mixup_table.md").read_text()
    memix_row = next(line for line in md.splitlines() if line.startswith("| MEMix |"))
    mixup_row = next(line for line in md.splitlines() if line.startswith("| Mixup |"))
    assert memix_row.count("**") == 6 and "**" not in mixup_row  # Acc, UF1 and UAR differences in bold
    assert "~" not in md


def test_table_shows_uar_n_provenance_and_the_baseline_by_name(compared):
    content, out = compared
    md = (out / "mixup_table.md").read_text()
    assert "| method | Acc (%) | ΔAcc [95 % CI] | UF1 | ΔUF1 [95 % CI] | UAR | ΔUAR [95 % CI] |" in md
    assert "48 test clips, 8 subjects, 5 classes" in md
    assert f"`CASME2-coding.xlsx` sha256 `{SHA}`" in md and "**Data**: casme2" in md
    assert "**Model**: vit_flow_tiny; epochs per fold: 3" in md
    assert "`train.epochs: 3`" in md and "`mixing.memix.alpha_k: 1.5`" in md and "cutmix" not in md.split("##")[0]
    assert "| No mixing (baseline) | " in md and "**No mixing** (`compare.baseline: none`)" in md
    assert "paired bootstrap over test subjects: 500 resamples (seed 0)" in md
    assert "ORACLE selection only" in md and "| MEMix | 85.37(+11.39) |" in md
    honest, oracle = md.index("## Honest rule"), md.index("## Oracle rule (TEST-SET SELECTION)")
    assert honest < oracle < md.index("## Published reference")
    prov = content["provenance"]
    assert prov["sheets"] == [{"file": "CASME2-coding.xlsx", "sha256": SHA}]
    assert prov["params_changed"]["train.epochs"] == 3 and "mixing.cutmix.alpha" not in prov["params_changed"]
    assert content["n_clips"] == 48 and content["n_subjects"] == 8
    assert (out / "mixup_table.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_honest_table_shows_each_methods_last_epoch_training_accuracy(compared, eval_root):
    content, out = compared
    md = (out / "mixup_table.md").read_text()
    honest, oracle = md.split("## Oracle rule")[0].split("## Honest rule")[1], md.split("## Oracle rule")[1]
    assert "| method | Train acc (%) | Acc (%) | ΔAcc [95 % CI] |" in honest and "Train acc" not in oracle
    assert "memorises its training folds" in honest
    for method, title in (("none", "No mixing (baseline)"), ("memix", "MEMix")):
        last = _metrics(eval_root, method)["curves"]["train_accuracy"][-1]  # the seed mean of the last epoch
        assert content["train_accuracy_last_epoch"][method] == pytest.approx(last)
        row = next(line for line in honest.splitlines() if line.startswith(f"| {title} |"))
        assert row.split(" | ")[1] == f"{last * 100:.2f}"


def test_params_that_only_choose_where_a_stage_runs_are_not_differences():
    params = parse_params({"faces": {"model_source": "/somewhere/face_landmarker.task"}, "flow": {"workers": 2},
                           "train": {"workers": 3, "lr": 0.001}})
    assert provenance.changed_params(params) == {"train.lr": 0.001}


def test_another_baseline_is_named_and_every_delta_is_against_it(eval_root, tmp_path):
    content = report.run(_params(baseline="mixup"), eval_root, tmp_path)
    md = (tmp_path / "mixup_table.md").read_text()
    assert "| Mixup (baseline) | " in md and "| No mixing | " in md and "No mixing (baseline)" not in md
    rows = content["last"]
    assert "delta" not in rows["mixup"]["accuracy"]
    assert rows["none"]["accuracy"]["delta"] == pytest.approx(
        rows["none"]["accuracy"]["mean"] - rows["mixup"]["accuracy"]["mean"])
    assert "coding sheet no ingest report" not in md and "no ingest report" in md


def test_summary_is_flat_short_and_rounded(compared):
    content, out = compared
    summary = json.loads((out / "summary.json").read_text())
    expected = [f"{m}.{k}{r}" for m in SKILL for r in ("", "_oracle") for k in ("acc", "uf1", "uar")]
    assert list(summary) == expected  # method by method, honest figures first
    assert all(isinstance(v, float) for v in summary.values())
    assert summary["memix.acc"] == round(content["last"]["memix"]["accuracy"]["mean"], 4)
    assert summary["none.uf1_oracle"] == round(content["oracle"]["none"]["uf1"]["mean"], 4)


def test_curves_overlay_every_method_by_name(compared, eval_root):
    _, out = compared
    curves = pd.read_csv(out / "curves.csv")
    assert list(curves.columns) == ["method", "epoch", "test_accuracy", "train_loss", "train_accuracy"]
    assert curves["method"].drop_duplicates().tolist() == ["No mixing", "Mixup", "MEMix"]
    memix = curves[curves.method == "MEMix"]
    assert memix["epoch"].tolist() == [1, 2, 3]
    assert memix["test_accuracy"].tolist() == pytest.approx(_metrics(eval_root, "memix")["curves"]["test_accuracy"],
                                                            abs=1e-6)


def test_outputs_are_byte_identical_across_runs(eval_root, ingest_report, tmp_path):
    report.run(_params(), eval_root, tmp_path / "a", ingest_report)
    report.run(_params(), eval_root, tmp_path / "b", ingest_report)
    for name in report.OUTPUT_FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_several_source_datasets_get_per_source_columns(tmp_path):
    eval_root = _evaluate(tmp_path, datasets=("casme2", "samm"))
    content = report.run(_params(), eval_root, tmp_path / "out")
    md = (tmp_path / "out" / "mixup_table.md").read_text()
    assert "**Data**: casme2, samm" in md
    assert "| method | casme2 Acc (%) | casme2 UF1 | casme2 UAR | samm Acc (%) | samm UF1 | samm UAR |" in md
    assert "n: casme2 24 clips, 4 subjects; samm 24 clips, 4 subjects." in md
    per = content["last"]["memix"]["per_dataset"]
    assert set(per) == {"casme2", "samm"} and 0 < per["samm"]["accuracy"]["mean"] <= 1


def test_missing_or_mismatched_evaluations_are_named(eval_root, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cutmix.*metrics.json: no evaluation of method 'cutmix'"):
        report.run(_params(methods=["none", "cutmix"]), eval_root, tmp_path / "o")
    with pytest.raises(ValueError, match=r"evaluates seeds \[0, 1, 2\], compare.seeds is \[0, 1\]"):
        report.run(_params(methods=["none", "memix"], seeds=[0, 1]), eval_root, tmp_path / "o")
    with pytest.raises(ValueError, match="compare.baseline"):
        report.run(_params(methods=["mixup"], baseline="none"), eval_root, tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_methods_scored_on_other_clips_cannot_be_paired(eval_root, tmp_path):
    other = tmp_path / "eval"
    for method in ("none", "memix"):
        (other / method).mkdir(parents=True)
        for name in ("metrics.json", "selected.parquet"):
            (other / method / name).write_bytes((eval_root / method / name).read_bytes())
    sel = pd.read_parquet(other / "memix" / "selected.parquet")
    sel.loc[sel.index[0], "true"] = (sel.loc[sel.index[0], "true"] + 1) % 5
    sel.to_parquet(other / "memix" / "selected.parquet")
    with pytest.raises(ValueError, match=r"memix/selected.parquet: its last clips differ from the baseline's"):
        report.run(_params(methods=["none", "memix"]), other, tmp_path / "o")


def test_sheets_are_found_in_a_composite_ingest_report(tmp_path):
    path = tmp_path / "ingest_report.json"
    path.write_text(json.dumps({"sources": [
        {"dataset": "casme2", "sheet": {"file": "a.xlsx", "sha256": "1" * 64}},
        {"dataset": "samm", "sheet": {"file": "b.xlsx", "sha256": "2" * 64, "columns": {"Subject": "A"}}},
    ]}))
    assert provenance.sheets(path) == [{"file": "a.xlsx", "sha256": "1" * 64}, {"file": "b.xlsx", "sha256": "2" * 64}]
    assert provenance.sheets(None) == [] and provenance.sheets(tmp_path / "missing.json") == []


def test_compare_depends_on_every_params_section_the_table_lists():
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["compare"]
    assert stage["params"] == list(provenance.RESULT_SECTIONS)


def test_headline_names_the_best_method_and_the_baseline(compared):
    content, _ = compared
    line = report.headline(content)
    assert line.startswith("compare (last epoch, 3 seeds): best MEMix Acc ")
    assert "significant" in line and "; baseline No mixing Acc " in line and "\n" not in line


def test_headline_when_the_baseline_is_best():
    row = {"accuracy": {"mean": 0.5}, "uf1": {"mean": 0.4}, "uar": {"mean": 0.45}}
    content = {"last": {"none": row}, "baseline": "none", "titles": {"none": "No mixing"}, "seeds": [0],
               "rules": {"last": ""}}
    assert report.headline(content) == (
        "compare (last epoch, 1 seed): best No mixing Acc 50.00 % UF1 0.4000 UAR 0.4500 (the baseline)")
