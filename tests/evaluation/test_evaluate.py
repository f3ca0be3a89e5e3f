"""Pooled LOSO metrics: equal to scikit-learn's and to the UF1/UAR definitions, both selection rules, stable bytes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score, recall_score

from memix.config import EvalParams
from memix.evaluation import evaluate, selection
from memix.io import atomic

NAMES = ["happiness", "repression", "disgust", "surprise"]
K = len(NAMES)


def _rows(fold: int, subject: str, epoch: int, true: list[int], pred: list[int]) -> list[dict]:
    rows = []
    for i, (t, p) in enumerate(zip(true, pred, strict=True)):
        probs = np.full(K, 0.1 / (K - 1))
        probs[p] = 0.9
        rows.append({
            "clip_id": f"{subject}/c{i}", "subject": subject, "fold": fold, "epoch": epoch,
            "true": t, "label": NAMES[t], "pred": p, **{f"prob_{k}": probs[k] for k in range(K)},
        })
    return rows


def _predictions() -> pd.DataFrame:
    """Two subjects, two evaluated epochs; class 3 (surprise) never in fold 1's truth, class 1 never predicted."""
    rows = []
    # fold 0: epoch 1 is its best (4/5), the last epoch is worse (2/5)
    rows += _rows(0, "s01", 1, [0, 0, 2, 3, 3], [0, 0, 2, 3, 0])
    rows += _rows(0, "s01", 2, [0, 0, 2, 3, 3], [0, 2, 2, 0, 0])
    # fold 1: the last epoch is its best
    rows += _rows(1, "s02", 1, [1, 2, 2, 0], [0, 0, 2, 0])
    rows += _rows(1, "s02", 2, [1, 2, 2, 0], [2, 2, 2, 0])
    return pd.DataFrame(rows)


def _write(tmp_path: Path, preds: pd.DataFrame) -> Path:
    train_dir = tmp_path / "train"
    atomic.write_parquet(train_dir / "predictions.parquet", preds)
    return train_dir


def _uf1_by_definition(true: np.ndarray, pred: np.ndarray) -> float:
    scores = []
    for c in range(K):
        tp = np.sum((true == c) & (pred == c))
        fp = np.sum((true != c) & (pred == c))
        fn = np.sum((true == c) & (pred != c))
        scores.append(0.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def test_last_rule_matches_sklearn_and_definitions(tmp_path):
    preds = _predictions()
    out = tmp_path / "eval"
    evaluate.run(EvalParams(), _write(tmp_path, preds), out)
    m = json.loads((out / "metrics.json").read_text())

    last = preds[preds["epoch"] == 2]
    t, p = last["true"].to_numpy(), last["pred"].to_numpy()
    labels = list(range(K))
    assert m["last"]["n_clips"] == 9
    assert m["last"]["accuracy"] == pytest.approx(accuracy_score(t, p))
    assert m["last"]["f1"] == pytest.approx(f1_score(t, p, labels=labels, average="macro", zero_division=0))
    assert m["last"]["f1"] == pytest.approx(_uf1_by_definition(t, p))
    assert m["last"]["uf1"] == m["last"]["f1"]
    assert m["last"]["uar"] == pytest.approx(recall_score(t, p, labels=labels, average="macro", zero_division=0))
    # class 1 (repression) is never predicted and class 3 (surprise) is never predicted correctly: both count as 0
    assert m["last"]["per_class"]["repression"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert m["last"]["per_class"]["surprise"]["recall"] == 0.0
    assert set(m["last"]["per_class"]) == set(NAMES)

    # pooling is not the mean of per-fold scores
    fold_f1 = [f1_score(f["true"], f["pred"], labels=labels, average="macro", zero_division=0)
               for _, f in last.groupby("fold")]
    assert m["last"]["f1"] != pytest.approx(np.mean(fold_f1))
    assert m["last"]["fold_mean_f1"] == pytest.approx(np.mean(fold_f1))


def test_oracle_rule_selects_per_subject_on_the_test_set(tmp_path):
    preds = _predictions()
    out = tmp_path / "eval"
    evaluate.run(EvalParams(), _write(tmp_path, preds), out)
    m = json.loads((out / "metrics.json").read_text())

    chosen = pd.concat([preds[(preds.fold == 0) & (preds.epoch == 1)], preds[(preds.fold == 1) & (preds.epoch == 2)]])
    t, p = chosen["true"].to_numpy(), chosen["pred"].to_numpy()
    best_acc = m["oracle_test_selection"]["best_acc_epoch"]
    assert best_acc["accuracy"] == pytest.approx(7 / 9)
    assert best_acc["f1"] == pytest.approx(_uf1_by_definition(t, p))
    assert best_acc["accuracy"] >= m["last"]["accuracy"]
    assert set(m["oracle_test_selection"]["best_f1_epoch"]) == {"accuracy", "f1", "uar"}

    table = pd.read_csv(out / "per_subject.csv")
    assert table["subject"].tolist() == ["s01", "s02"]
    assert table["n"].tolist() == [5, 4]
    assert table["accuracy_last"].tolist() == pytest.approx([2 / 5, 3 / 4])
    assert table["accuracy_oracle_test_selection"].tolist() == pytest.approx([4 / 5, 3 / 4])


def test_oracle_f1_rule_selects_its_own_epoch_when_it_differs_from_accuracy(tmp_path):
    """Fold 0's best-accuracy epoch (1) is not its best-F1 epoch (2); fold 1's best epoch is 2 under both rules.

    Per-subject (oracle) scores, macro F1 over the classes present, per class 2TP / (n_true + n_pred):
      fold 0 epoch 1: true 0001, pred 0000: acc 3/4; F1 = mean(6/7, 0)     = 3/7 (0.43)
      fold 0 epoch 2: true 0001, pred 0111: acc 2/4; F1 = mean(2/4, 2/4)   = 1/2  -> best F1, not best accuracy
      fold 1 epoch 1: true 23, pred 22:     acc 1/2; F1 = mean(2/3, 0)     = 1/3
      fold 1 epoch 2: true 23, pred 23:     acc 1;   F1 = 1                      -> best under both rules
    Pooled over all 4 classes (UF1 / UAR as in metrics.summary), true 000123:
      best_f1_epoch  (f0 e2 + f1 e2), pred 011123: acc 4/6; F1 = mean(2/4, 2/4, 1, 1) = 3/4;
                                                   UAR = mean(1/3, 1, 1, 1) = 5/6
      best_acc_epoch (f0 e1 + f1 e2), pred 000023: acc 5/6; F1 = mean(6/7, 0, 1, 1) = 5/7;
                                                   UAR = mean(1, 0, 1, 1) = 3/4
    """
    rows = []
    rows += _rows(0, "s01", 1, [0, 0, 0, 1], [0, 0, 0, 0])
    rows += _rows(0, "s01", 2, [0, 0, 0, 1], [0, 1, 1, 1])
    rows += _rows(1, "s02", 1, [2, 3], [2, 2])
    rows += _rows(1, "s02", 2, [2, 3], [2, 3])
    preds = pd.DataFrame(rows)
    assert selection.select_oracle(preds, "accuracy").groupby("fold")["epoch"].unique().map(list).to_dict() == {
        0: [1], 1: [2]}
    assert selection.select_oracle(preds, "f1").groupby("fold")["epoch"].unique().map(list).to_dict() == {
        0: [2], 1: [2]}

    out = tmp_path / "eval"
    evaluate.run(EvalParams(), _write(tmp_path, preds), out)
    oracle = json.loads((out / "metrics.json").read_text())["oracle_test_selection"]
    assert oracle["best_f1_epoch"] == pytest.approx({"accuracy": 4 / 6, "f1": 3 / 4, "uar": 5 / 6})
    assert oracle["best_acc_epoch"] == pytest.approx({"accuracy": 5 / 6, "f1": 5 / 7, "uar": 3 / 4})


def test_oracle_ties_go_to_the_earliest_epoch():
    rows = _rows(0, "s01", 1, [0, 1], [0, 0]) + _rows(0, "s01", 2, [0, 1], [1, 1])
    chosen = selection.select_oracle(pd.DataFrame(rows), "accuracy")
    assert chosen["epoch"].unique().tolist() == [1]


def test_confusion_outputs_and_deterministic_bytes(tmp_path):
    preds = _predictions()
    train_dir = _write(tmp_path, preds)
    a, b = tmp_path / "a", tmp_path / "b"
    evaluate.run(EvalParams(), train_dir, a)
    evaluate.run(EvalParams(), train_dir, b)
    files = sorted(p.name for p in a.iterdir())
    assert files == ["confusion.csv", "confusion.png", "metrics.json", "per_subject.csv"]
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name

    conf = pd.read_csv(a / "confusion.csv")
    assert list(conf.columns) == ["actual", "predicted"]
    last = preds[preds.epoch == 2].sort_values(["fold", "clip_id"])
    assert conf["actual"].tolist() == [NAMES[t] for t in last["true"]]
    assert conf["predicted"].tolist() == [NAMES[p] for p in last["pred"]]
    assert (a / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_only_the_requested_rules_are_reported(tmp_path):
    out = tmp_path / "eval"
    evaluate.run(EvalParams(rules=["last"]), _write(tmp_path, _predictions()), out)
    assert set(json.loads((out / "metrics.json").read_text())) == {"last"}
    assert "accuracy_oracle_test_selection" not in pd.read_csv(out / "per_subject.csv").columns


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d.drop(columns=["epoch"]), "missing column"),
        (lambda d: d.drop(columns=["prob_1"]), "prob_0..prob_"),
        (lambda d: d.assign(pred=d["pred"].where(d.index != 3, 7)), "field pred=7"),
        (lambda d: pd.concat([d, d.iloc[[0]]]), "predicted twice"),
    ],
)
def test_bad_predictions_name_the_file_and_field(tmp_path, damage, message):
    train_dir = _write(tmp_path, damage(_predictions()))
    out = tmp_path / "eval"
    with pytest.raises(ValueError, match=message) as err:
        evaluate.run(EvalParams(), train_dir, out)
    assert "predictions.parquet" in str(err.value)
    assert not out.exists()


def test_oracle_f1_per_subject_equals_sklearn_macro_f1_over_present_classes():
    from sklearn.metrics import f1_score

    from memix.evaluation.selection import _present_macro_f1

    rng = np.random.default_rng(3)
    for _ in range(50):
        t, p = rng.integers(0, 5, 12), rng.integers(0, 5, 12)
        rows = pd.DataFrame({"true": t, "pred": p})
        assert _present_macro_f1(rows) == pytest.approx(f1_score(t, p, average="macro", zero_division=0))
