"""The comparison table: means, sample std, deltas in the published format, spread marks, both rules apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memix.config import CompareParams
from memix.evaluation import report
from memix.io import atomic


def _metrics(acc: float, f1: float, oracle_acc: float, oracle_f1: float) -> dict:
    return {
        "last": {"accuracy": acc, "f1": f1, "uf1": f1, "uar": acc},
        "oracle_test_selection": {
            "best_acc_epoch": {"accuracy": oracle_acc, "f1": 0.0, "uar": 0.0},
            "best_f1_epoch": {"accuracy": 0.0, "f1": oracle_f1, "uar": 0.0},
        },
    }


@pytest.fixture
def eval_root(tmp_path: Path) -> Path:
    values = {
        "none": [(0.60, 0.50), (0.62, 0.52), (0.64, 0.54)],
        "mixup": [(0.70, 0.60), (0.72, 0.62), (0.74, 0.64)],  # clearly above: +10 points, std 2
        "memix": [(0.60, 0.50), (0.66, 0.56), (0.63, 0.53)],  # +1 point, within the spread
    }
    for method, seeds in values.items():
        for seed, (acc, f1) in enumerate(seeds):
            metrics = _metrics(acc, f1, acc + 0.1, f1 + 0.1)
            atomic.write_json(tmp_path / method / f"seed{seed}" / "metrics.json", metrics)
    return tmp_path


def test_table_numbers_deltas_and_spread_marks(eval_root: Path, tmp_path: Path) -> None:
    params = CompareParams(methods=["none", "mixup", "memix"], seeds=[0, 1, 2])
    out = tmp_path / "out"
    content = report.run(params, eval_root, out)

    last = content["last"]
    assert last["none"]["accuracy"]["mean"] == pytest.approx(0.62)
    assert last["none"]["accuracy"]["std"] == pytest.approx(0.02)  # sample std (ddof=1)
    assert last["mixup"]["accuracy"]["delta"] == pytest.approx(0.10)
    assert last["mixup"]["accuracy"]["within_spread"] is False
    assert last["memix"]["accuracy"]["within_spread"] is True
    assert "delta" not in last["none"]["accuracy"]
    # Oracle figures come from the best-accuracy epoch for Acc and the best-F1 epoch for F1.
    assert content["oracle"]["mixup"]["accuracy"]["mean"] == pytest.approx(0.82)
    assert content["oracle"]["mixup"]["f1"]["mean"] == pytest.approx(0.72)

    md = (out / "mixup_table.md").read_text()
    assert "| Mixup | 72.00(+10.00) | ±2.00 | 0.6200(+0.1000) | ±0.0200 |" in md
    assert "| MEMix | 63.00(+1.00) ~ |" in md
    honest, oracle = md.index("Honest rule"), md.index("Oracle rule (test-set selection)")
    assert honest < md.index("| Mixup | 72.00") < oracle < md.index("| Mixup | 82.00")
    assert (out / "mixup_table.png").stat().st_size > 0


def test_outputs_are_byte_identical_across_runs(eval_root: Path, tmp_path: Path) -> None:
    params = CompareParams(methods=["none", "mixup"], seeds=[0, 1])
    report.run(params, eval_root, tmp_path / "a")
    report.run(params, eval_root, tmp_path / "b")
    for name in ("mixup_table.md", "mixup_table.json", "mixup_table.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_missing_evaluation_names_method_seed_and_file(eval_root: Path, tmp_path: Path) -> None:
    params = CompareParams(methods=["none", "cutmix"], seeds=[0])
    with pytest.raises(FileNotFoundError, match=r"cutmix.*seed 0"):
        report.run(params, eval_root, tmp_path / "out")
    assert not (tmp_path / "out" / "mixup_table.md").exists()


def test_baseline_must_be_compared(eval_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="compare.baseline"):
        report.run(CompareParams(methods=["mixup"], seeds=[0], baseline="none"), eval_root, tmp_path)


def test_metrics_file_without_a_rule_is_named(eval_root: Path, tmp_path: Path) -> None:
    bad = eval_root / "none" / "seed0" / "metrics.json"
    bad.write_text(json.dumps({"last": {"accuracy": 0.5}}))
    with pytest.raises(ValueError, match=str(bad)):
        report.run(CompareParams(methods=["none"], seeds=[0]), eval_root, tmp_path / "o")
