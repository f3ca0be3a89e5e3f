"""One method's evaluation over its seeds: both selection rules per seed, the seed mean, per subject and per
source dataset, the five files and their stable bytes, errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path

import fake_train
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, recall_score

from memix.config import EvalParams
from memix.evaluation import evaluate, selection
from memix.io import atomic

NAMES = ["happiness", "repression", "disgust", "surprise"]
K = len(NAMES)


def _rows(seed: int, fold: int, subject: str, epoch: int, true: list[int], pred: list[int],
          dataset: str = "casme2") -> list[dict]:
    rows = []
    for i, (t, p) in enumerate(zip(true, pred, strict=True)):
        probs = np.full(K, 0.1 / (K - 1), dtype=np.float32)
        probs[p] = 0.9
        rows.append({
            "seed": seed, "clip_id": f"{subject}/c{i}", "subject": subject, "dataset": dataset, "fold": fold,
            "epoch": epoch, "true": t, "label": NAMES[t], "pred": p, **{f"prob_{k}": probs[k] for k in range(K)},
        })
    return rows


def _predictions() -> pd.DataFrame:
    """Two seeds, two subjects, two evaluated epochs; class 3 never in fold 1's truth, class 1 never predicted
    in seed 0. Seed 0: fold 0 is best at epoch 1 (4/5) and ends worse (2/5); fold 1 is best at its last epoch.
    Seed 1: both folds are best at their last epoch."""
    rows = []
    rows += _rows(0, 0, "s01", 1, [0, 0, 2, 3, 3], [0, 0, 2, 3, 0])
    rows += _rows(0, 0, "s01", 2, [0, 0, 2, 3, 3], [0, 2, 2, 0, 0])
    rows += _rows(0, 1, "s02", 1, [1, 2, 2, 0], [0, 0, 2, 0])
    rows += _rows(0, 1, "s02", 2, [1, 2, 2, 0], [2, 2, 2, 0])
    rows += _rows(1, 0, "s01", 1, [0, 0, 2, 3, 3], [2, 2, 2, 3, 0])
    rows += _rows(1, 0, "s01", 2, [0, 0, 2, 3, 3], [0, 0, 2, 3, 3])
    rows += _rows(1, 1, "s02", 1, [1, 2, 2, 0], [1, 0, 0, 0])
    rows += _rows(1, 1, "s02", 2, [1, 2, 2, 0], [1, 2, 0, 0])
    return pd.DataFrame(rows)


def _write(tmp_path: Path, preds: pd.DataFrame) -> Path:
    return fake_train.write(tmp_path / "train", preds)


def _run(tmp_path: Path, preds: pd.DataFrame, rules: list[str] | None = None) -> tuple[dict, Path]:
    out = tmp_path / "eval"
    params = EvalParams() if rules is None else EvalParams(rules=rules)
    evaluate.run(params, "memix", _write(tmp_path, preds), out)
    return json.loads((out / "metrics.json").read_text()), out


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    return _run(tmp_path_factory.mktemp("eval"), _predictions())


def test_last_rule_per_seed_matches_sklearn_and_the_seed_mean(evaluated):
    m, _ = evaluated
    preds = _predictions()
    labels = list(range(K))
    assert m["seeds"] == [0, 1] and m["n_clips"] == 9 and m["n_subjects"] == 2 and m["classes"] == NAMES
    per_seed = {s["seed"]: s for s in m["per_seed"]}
    accs = []
    for seed in (0, 1):
        last = preds[(preds.seed == seed) & (preds.epoch == 2)]
        t, p = last["true"].to_numpy(), last["pred"].to_numpy()
        got = per_seed[seed]["last"]
        assert got["accuracy"] == pytest.approx(accuracy_score(t, p))
        assert got["uf1"] == pytest.approx(f1_score(t, p, labels=labels, average="macro", zero_division=0))
        assert got["uar"] == pytest.approx(recall_score(t, p, labels=labels, average="macro", zero_division=0))
        assert set(got["per_class"]) == set(NAMES)
        accs.append(accuracy_score(t, p))
    assert per_seed[0]["last"]["per_class"]["repression"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "n": 1}
    assert m["mean"]["last"]["accuracy"]["mean"] == pytest.approx(np.mean(accs))
    assert m["mean"]["last"]["accuracy"]["std"] == pytest.approx(np.std(accs, ddof=1))
    assert "f1" not in per_seed[0]["last"]  # UF1 is reported once, as uf1


def test_oracle_rule_selects_per_seed_and_subject_on_the_test_set(evaluated):
    m, out = evaluated
    per_seed = {s["seed"]: s for s in m["per_seed"]}
    assert per_seed[0]["oracle_acc"]["accuracy"] == pytest.approx(7 / 9)  # seed 0: fold 0 epoch 1, fold 1 epoch 2
    assert per_seed[1]["oracle_acc"]["accuracy"] == pytest.approx(per_seed[1]["last"]["accuracy"])
    assert m["mean"]["oracle"]["accuracy"]["mean"] == pytest.approx(
        np.mean([per_seed[0]["oracle_acc"]["accuracy"], per_seed[1]["oracle_acc"]["accuracy"]]))
    assert m["mean"]["oracle"]["uf1"]["mean"] == pytest.approx(
        np.mean([per_seed[0]["oracle_f1"]["uf1"], per_seed[1]["oracle_f1"]["uf1"]]))

    table = pd.read_csv(out / "per_subject.csv")
    assert list(table.columns) == ["seed", "selection", "dataset", "subject", "n", "accuracy", "uf1", "uar"]
    seed0 = table[table.seed == 0].set_index(["selection", "subject"])
    assert seed0.loc[("last", "s01"), "accuracy"] == pytest.approx(2 / 5)
    assert seed0.loc[("oracle_acc", "s01"), "accuracy"] == pytest.approx(4 / 5)
    assert seed0.loc[("last", "s02"), "n"] == 4
    assert table["selection"].drop_duplicates().tolist() == ["last", "oracle_acc", "oracle_f1"]
    assert len(table) == 2 * 3 * 2


def test_per_subject_uf1_and_uar_use_the_classes_the_subject_has(evaluated):
    _, out = evaluated
    preds = _predictions()
    table = pd.read_csv(out / "per_subject.csv").set_index(["seed", "selection", "subject"])
    rows = preds[(preds.seed == 1) & (preds.epoch == 2) & (preds.subject == "s02")]
    t, p = rows["true"].to_numpy(), rows["pred"].to_numpy()
    got = table.loc[(1, "last", "s02")]
    assert got["uf1"] == pytest.approx(f1_score(t, p, average="macro", zero_division=0))
    assert got["uar"] == pytest.approx(recall_score(t, p, labels=np.unique(t), average="macro", zero_division=0))


def test_oracle_f1_selection_is_its_own_when_it_differs_from_accuracy():
    """Seed 0, fold 0: epoch 1 has the best accuracy (3/4, F1 3/7), epoch 2 the best F1 (2/4, F1 1/2)."""
    rows = []
    rows += _rows(0, 0, "s01", 1, [0, 0, 0, 1], [0, 0, 0, 0])
    rows += _rows(0, 0, "s01", 2, [0, 0, 0, 1], [0, 1, 1, 1])
    rows += _rows(0, 1, "s02", 1, [2, 3], [2, 2])
    rows += _rows(0, 1, "s02", 2, [2, 3], [2, 3])
    preds = pd.DataFrame(rows)

    def epochs(chosen: pd.DataFrame) -> dict:
        return chosen.groupby("fold")["epoch"].unique().map(list).to_dict()

    assert epochs(selection.select_oracle(preds, "accuracy")) == {0: [1], 1: [2]}
    assert epochs(selection.select_oracle(preds, "f1")) == {0: [2], 1: [2]}


def test_oracle_ties_as_the_release_accuracy_earliest_f1_latest_and_bad_criteria_are_refused():
    """Both epochs score Acc 1/2 and F1 1/3: the release's ``>`` keeps epoch 1 for accuracy, its ``>=`` epoch 2
    for F1; a subject whose F1 is 0 in every epoch keeps its last epoch."""
    rows = _rows(0, 0, "s01", 1, [0, 1], [0, 0]) + _rows(0, 0, "s01", 2, [0, 1], [1, 1])
    rows += [r for e in (1, 2, 3) for r in _rows(0, 1, "s02", e, [0, 0], [1, 1])]
    chosen = {by: selection.select_oracle(pd.DataFrame(rows), by).groupby("fold")["epoch"].unique().map(list)
              for by in ("accuracy", "f1")}
    assert chosen["accuracy"].to_dict() == {0: [1], 1: [1]}
    assert chosen["f1"].to_dict() == {0: [2], 1: [3]}
    with pytest.raises(ValueError, match="valid: accuracy, f1"):
        selection.select_oracle(pd.DataFrame(rows), "uar")


def test_five_files_with_stable_bytes_and_the_selected_rows(tmp_path):
    preds = _predictions()
    train_dir = _write(tmp_path, preds)
    a, b = tmp_path / "a", tmp_path / "b"
    evaluate.run(EvalParams(), "memix", train_dir, a)
    evaluate.run(EvalParams(), "memix", train_dir, b)
    files = sorted(p.name for p in a.iterdir())
    assert files == sorted(evaluate.FILES)
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name

    selected = pd.read_parquet(a / "selected.parquet")
    assert list(selected.columns) == evaluate.SELECTED_COLUMNS
    last = selected[selected.selection == "last"]
    assert len(last) == 2 * 9 and set(last["seed"]) == {0, 1}
    expected = preds[preds.epoch == 2].sort_values(["seed", "fold", "clip_id"])
    assert last["pred"].tolist() == expected["pred"].tolist()

    conf = pd.read_csv(a / "confusion.csv")
    assert list(conf.columns) == ["seed", "rule", "actual", "predicted"]
    assert conf.groupby(["seed", "rule"], sort=False).size().to_dict() == {
        (0, "last epoch"): 9, (0, evaluate.RULE_LABELS["oracle"]): 9,
        (1, "last epoch"): 9, (1, evaluate.RULE_LABELS["oracle"]): 9,
    }
    seed0 = conf[(conf.seed == 0) & (conf.rule == "last epoch")]
    assert seed0["predicted"].tolist() == [NAMES[p] for p in expected[expected.seed == 0]["pred"]]
    assert (a / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_curves_are_the_seed_mean(evaluated):
    m, _ = evaluated
    curves = fake_train.curves(_predictions())
    assert m["curves"]["epoch"] == [1, 2]
    expected = curves.groupby("epoch")["train_loss"].mean().tolist()
    assert m["curves"]["train_loss"] == pytest.approx(expected)
    assert m["curves"]["test_accuracy"][1] == pytest.approx(np.mean([5 / 9, 8 / 9]))


def test_only_the_requested_rules_are_reported(tmp_path):
    m, out = _run(tmp_path, _predictions(), rules=["last"])
    assert set(m["mean"]) == {"last"} and set(m["per_seed"][0]) == {"seed", "last"}
    assert set(pd.read_csv(out / "per_subject.csv")["selection"]) == {"last"}
    assert set(pd.read_csv(out / "confusion.csv")["rule"]) == {"last epoch"}


def test_several_source_datasets_get_their_own_figures(tmp_path):
    table = fake_train.clips(n_subjects=6, per_subject=5, datasets=("casme2", "samm"))
    preds = fake_train.predictions(table, [0, 1], epochs=2, skill=0.6, rng=np.random.default_rng(1))
    m, _ = _run(tmp_path, preds)
    assert m["datasets"] == ["casme2", "samm"]
    assert m["per_dataset"] == {"casme2": {"n_clips": 15, "n_subjects": 3}, "samm": {"n_clips": 15, "n_subjects": 3}}
    seed1 = m["per_seed"][1]["last"]["per_dataset"]["samm"]
    rows = preds[(preds.seed == 1) & (preds.epoch == 2) & (preds.dataset == "samm")]
    assert seed1["n"] == 15
    assert seed1["accuracy"] == pytest.approx(accuracy_score(rows["true"], rows["pred"]))
    assert seed1["uf1"] == pytest.approx(f1_score(rows["true"], rows["pred"], average="macro", zero_division=0))


def test_one_source_has_no_per_dataset_figures(evaluated):
    m, _ = evaluated
    assert "per_dataset" not in m and "per_dataset" not in m["per_seed"][0]["last"]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d.drop(columns=["seed"]), "missing column"),
        (lambda d: d.drop(columns=["dataset"]), "missing column"),
        (lambda d: d.drop(columns=["prob_1"]), "prob_0..prob_"),
        (lambda d: d.assign(pred=d["pred"].where(d.index != 3, 7)), "field pred=7"),
        (lambda d: d.assign(epoch=d["epoch"].astype(float)), "field epoch must hold integers"),
        (lambda d: pd.concat([d, d.iloc[[0]]]), "predicted twice in seed 0"),
        (lambda d: d[~((d.seed == 1) & (d.clip_id == "s02/c3"))], "do not predict the same clips"),
    ],
)
def test_bad_predictions_name_the_file_and_field(tmp_path, damage, message):
    train_dir = _write(tmp_path, _predictions())
    atomic.write_parquet(train_dir / "predictions.parquet", damage(_predictions()))
    out = tmp_path / "eval"
    with pytest.raises(ValueError, match=message) as err:
        evaluate.run(EvalParams(), "memix", train_dir, out)
    assert "predictions.parquet" in str(err.value)
    assert not out.exists()


def test_curves_of_other_seeds_are_refused(tmp_path):
    train_dir = _write(tmp_path, _predictions())
    curves = pd.read_csv(train_dir / "curves.csv")
    atomic.write_text(train_dir / "curves.csv", curves[curves.seed == 0].to_csv(index=False))
    with pytest.raises(ValueError, match=r"curves.csv: curves of seeds \[0\], predictions of seeds \[0, 1\]"):
        evaluate.run(EvalParams(), "memix", train_dir, tmp_path / "eval")
