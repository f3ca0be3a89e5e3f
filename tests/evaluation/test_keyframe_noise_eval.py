"""Key-frame noise in evaluation and the table: per level Acc, UF1, UAR of the last-epoch models (level 0 = the
``last`` rule), a "UF1 at ±n frames" column per level in the honest table, and nothing of it without levels."""

from __future__ import annotations

import json
from pathlib import Path

import fake_train
import numpy as np
import pandas as pd
import pytest

from memix import plots
from memix.config import EvalParams, parse_params
from memix.evaluation import evaluate, metrics, report
from memix.io import atomic

SEEDS = [0, 1]
LEVELS = [2, 5]
SKILL = {"none": 0.5, "memix": 0.8}
NOISE_SKILL = {2: 0.4, 5: 0.2}  # the farther the key frames move, the worse


def write_noise(train_dir: Path, levels: list[int], seed: int) -> pd.DataFrame:
    """keyframe_noise.parquet beside the fake predictions: the last epoch's clips, predicted with less skill."""
    preds = pd.read_parquet(train_dir / "predictions.parquet")
    last = preds[preds["epoch"] == preds["epoch"].max()]
    rng = np.random.default_rng(seed)
    k = len(fake_train.NAMES)
    frames = []
    for level in levels:
        ok = rng.random(len(last)) < NOISE_SKILL[level]
        wrong = (last["true"].to_numpy() + rng.integers(1, k, len(last))) % k
        frame = last[["seed", "clip_id", "subject", "dataset", "fold", "true"]].assign(
            level=np.int64(level), pred=np.where(ok, last["true"].to_numpy(), wrong).astype(np.int64))
        probs = np.full((len(frame), k), 0.1 / (k - 1), dtype=np.float32)
        probs[np.arange(len(frame)), frame["pred"].to_numpy()] = 0.9
        for j in range(k):
            frame[f"prob_{j}"] = probs[:, j]
        frames.append(frame)
    columns = ["seed", "clip_id", "subject", "dataset", "fold", "level", "true", "pred"]
    out = pd.concat(frames, ignore_index=True)[columns + [f"prob_{j}" for j in range(k)]]
    atomic.write_parquet(train_dir / "keyframe_noise.parquet", out)
    return out


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("noise-eval")
    table = fake_train.clips(n_subjects=6, per_subject=5)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plots, "confusion_grid_png", lambda *args: b"png")
        for i, (method, skill) in enumerate(SKILL.items()):
            train = fake_train.write_method(root / "train", method, table, SEEDS, skill, seed=20 + i)
            evaluate.run(EvalParams(), method, train, root / "plain" / method)  # before the noise file exists
            write_noise(train, LEVELS, seed=30 + i)
            evaluate.run(EvalParams(keyframe_noise=LEVELS), method, train, root / "noise" / method)
            evaluate.run(EvalParams(), method, train, root / "ignored" / method)
    return {"train": root / "train", "plain": root / "plain", "noise": root / "noise", "ignored": root / "ignored"}


def test_metrics_hold_each_level_with_level_0_the_last_rule(roots):
    content = json.loads((roots["noise"] / "memix" / "metrics.json").read_text())
    section = content["keyframe_noise"]
    assert [entry["level"] for entry in section["levels"]] == [0, 2, 5]
    assert section["seed"] == 0 and "[-n, n]" in section["rule"]
    level0 = section["levels"][0]
    for entry, seed_figures in zip(level0["per_seed"], content["per_seed"], strict=True):
        assert {m: entry[m] for m in metrics.METRICS} == {m: seed_figures["last"][m] for m in metrics.METRICS}
    assert level0["mean"] == content["mean"]["last"]
    noise = pd.read_parquet(roots["train"] / "memix" / "keyframe_noise.parquet")
    for entry in section["levels"][1:]:
        rows = noise[noise["level"] == entry["level"]]
        for figures in entry["per_seed"]:
            part = rows[rows["seed"] == figures["seed"]]
            expected = metrics.summary(part["true"].to_numpy(), part["pred"].to_numpy(), len(fake_train.NAMES))
            assert {m: figures[m] for m in metrics.METRICS} == pytest.approx(expected)
        values = [s["uf1"] for s in entry["per_seed"]]
        assert entry["mean"]["uf1"] == pytest.approx({"mean": np.mean(values), "std": np.std(values, ddof=1)})
    assert section["levels"][2]["mean"]["accuracy"]["mean"] < level0["mean"]["accuracy"]["mean"]


def test_without_levels_the_evaluation_is_unchanged(roots):
    for method in SKILL:
        for name in evaluate.FILES:
            plain = (roots["plain"] / method / name).read_bytes()
            assert (roots["ignored"] / method / name).read_bytes() == plain  # the noise file is not read
        assert "keyframe_noise" not in json.loads((roots["plain"] / method / "metrics.json").read_text())


def test_a_missing_or_mismatched_noise_file_is_named(roots, tmp_path):
    train = roots["train"] / "none"
    with pytest.raises(ValueError, match=r"keyframe_noise.parquet: holds levels \[2, 5\], eval.keyframe_noise is "
                                         r"\[2, 3\]"):
        evaluate.run(EvalParams(keyframe_noise=[2, 3]), "none", train, tmp_path / "a")
    other = tmp_path / "train"
    other.mkdir()
    for name in ("predictions.parquet", "curves.csv"):
        (other / name).write_bytes((train / name).read_bytes())
    with pytest.raises(FileNotFoundError, match=r"keyframe_noise.parquet: key-frame noise predictions not found"):
        evaluate.run(EvalParams(keyframe_noise=[2]), "none", other, tmp_path / "b")
    noise = pd.read_parquet(train / "keyframe_noise.parquet")
    atomic.write_parquet(other / "keyframe_noise.parquet", noise[noise["clip_id"] != noise["clip_id"].iloc[0]])
    with pytest.raises(ValueError, match=r"level 2 does not score the clips .* of the last epoch's predictions"):
        evaluate.run(EvalParams(keyframe_noise=LEVELS), "none", other, tmp_path / "c")
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


def _params(levels: list[int]):
    return parse_params({
        "train": {"epochs": 3},
        "eval": {"keyframe_noise": levels},
        "compare": {"methods": list(SKILL), "seeds": SEEDS, "bootstrap_resamples": 200},
    })


@pytest.fixture(scope="module")
def tables(roots, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("tables")
    report.run(_params(LEVELS), roots["noise"], out / "noise")
    report.run(_params([]), roots["noise"], out / "levels_off")
    report.run(_params([]), roots["plain"], out / "plain")
    return {name: out / name for name in ("noise", "levels_off", "plain")}


def test_the_honest_table_gets_a_column_per_level(tables, roots):
    md = (tables["noise"] / "mixup_table.md").read_text()
    sections = md.split("\n## ")
    honest = next(s for s in sections if s.startswith("Honest rule"))
    header = next(line for line in honest.splitlines() if line.startswith("| method |"))
    assert header.endswith("| UF1 at ±2 frames | UF1 at ±5 frames |")
    memix = json.loads((roots["noise"] / "memix" / "metrics.json").read_text())["keyframe_noise"]["levels"]
    row = next(line for line in honest.splitlines() if line.startswith("| MEMix |")).strip("|").split("|")
    for cell, entry in zip(row[-2:], memix[1:], strict=True):
        mean, std = entry["mean"]["uf1"]["mean"], entry["mean"]["uf1"]["std"]
        assert cell.strip() == f"{mean:.4f} ± {std:.4f}"
    oracle = next(s for s in sections if s.startswith("Oracle rule"))
    assert "UF1 at ±" not in oracle  # the noise sets are scored by the last epoch's models only
    content = json.loads((tables["noise"] / "mixup_table.json").read_text())
    assert content["keyframe_noise"]["levels"] == [0, 2, 5]
    assert [e["level"] for e in content["keyframe_noise"]["methods"]["none"]] == [0, 2, 5]
    summary = json.loads((tables["noise"] / "summary.json").read_text())
    assert summary["memix.uf1_kf5"] == round(memix[2]["mean"]["uf1"]["mean"], 4)


def test_without_levels_the_table_has_no_noise_and_the_same_bytes(tables):
    for name in report.OUTPUT_FILES:  # metrics.json with a noise section changes nothing when no level is asked
        assert (tables["levels_off"] / name).read_bytes() == (tables["plain"] / name).read_bytes(), name
    plain = (tables["plain"] / "mixup_table.md").read_text()
    assert "UF1 at ±" not in plain and "keyframe_noise" not in json.loads(
        (tables["plain"] / "mixup_table.json").read_text())
    # with levels, the table is the same but for the note, the level columns and the params line that names them
    assert _without_noise((tables["noise"] / "mixup_table.md").read_text(), len(LEVELS)) == _without_params(plain)


def _without_params(md: str) -> list[str]:
    return [line for line in md.splitlines() if not line.startswith("- **Params that differ")]


def _without_noise(md: str, n_levels: int) -> list[str]:
    """The table less its key-frame noise note and the last ``n_levels`` cells of the honest table's rows."""
    out, in_honest, in_table = [], False, False
    for line in _without_params(md):
        if line.startswith("## "):
            in_honest, in_table = line.startswith("## Honest rule"), False
        if line.startswith("UF1 at ±n frames"):
            out.pop()  # and the blank line before it
            continue
        if in_honest and line.startswith("|") and (in_table or line.startswith("| method")):
            in_table = True
            cells = line.split("|")[1:-1]
            line = "|" + "|".join(cells[:-n_levels]) + "|"
        elif in_table:
            in_honest = in_table = False  # the first table only (the per-seed Δ table follows)
        out.append(line)
    return out


def test_a_method_without_noise_figures_is_refused_when_levels_are_asked(roots, tmp_path):
    with pytest.raises(ValueError, match=r"none/metrics.json: no key-frame noise figures, eval.keyframe_noise is"):
        report.run(_params(LEVELS), roots["plain"], tmp_path / "o")


def test_without_the_last_rule_the_levels_get_a_table_of_their_own(roots, tmp_path):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plots, "confusion_grid_png", lambda *args: b"png")
        for method in SKILL:
            evaluate.run(EvalParams(rules=["oracle"], keyframe_noise=LEVELS), method, roots["train"] / method,
                         tmp_path / "eval" / method)
    params = parse_params({**_params(LEVELS).model_dump(by_alias=True, mode="json"),
                           "eval": {"rules": ["oracle"], "keyframe_noise": LEVELS}})
    report.run(params, tmp_path / "eval", tmp_path / "out")
    md = (tmp_path / "out" / "mixup_table.md").read_text()
    section = md.split("## Key-frame noise (each fold's last epoch)")[1].split("\n## ")[0]
    assert "| method | UF1 | UF1 at ±2 frames | UF1 at ±5 frames |" in section
    level0 = json.loads((tmp_path / "eval" / "none" / "metrics.json").read_text())["keyframe_noise"]["levels"][0]
    row = next(line for line in section.splitlines() if line.startswith("| No mixing (baseline) |"))
    assert row.split("|")[2].strip() == f"{level0['mean']['uf1']['mean']:.4f} ± {level0['mean']['uf1']['std']:.4f}"
