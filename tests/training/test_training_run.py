"""LOSO training end to end on a tiny flow set: coverage, determinism, no leakage and resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from flowsets import CLIPS_PER_SUBJECT, SUBJECTS, make_flow_set

from memix.config import EvalParams, parse_params
from memix.evaluation import evaluate
from memix.io import shards
from memix.training import loop, run


def tiny_params(**train: object):
    return parse_params({
        "model": {"patch_size": 4, "embed_dim": 16, "depth": 2, "num_heads": 2},
        "train": {"epochs": 2, "batch_size": 8, "device": "cpu", "threads": 1, "lr": 3e-3, **train},
        "mixing": {"manifold_mixup": {"blocks": [0, 1]}},
    })


@pytest.fixture(scope="module")
def flow_dir(tmp_path_factory) -> Path:
    return make_flow_set(tmp_path_factory.mktemp("flow") / "flow")


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("method", ["none", "memix", "manifold_mixup", "balanced_mixup", "transmix", "mixaugment"])
def test_end_to_end_writes_every_clip_once_per_evaluated_epoch(flow_dir, tmp_path, method):
    out = tmp_path / "train"
    run.run(tiny_params(epochs=3, eval_every=2), method, seed=0, flow_dir=flow_dir, out_dir=out)
    preds = pd.read_parquet(out / "predictions.parquet")
    index = shards.load_index(flow_dir)

    # epochs 2 (eval_every) and 3 (final) of every fold, each test clip exactly once, in its own subject's fold
    assert sorted(preds["epoch"].unique()) == [2, 3]
    for _, rows in preds.groupby("epoch"):
        assert sorted(rows["clip_id"]) == sorted(index["clip_id"])
    assert (preds.groupby(["clip_id"])["fold"].nunique() == 1).all()
    assert (preds["subject"] == preds["clip_id"].str.split("/").str[0]).all()
    assert preds["fold"].tolist() == sorted(preds["fold"])
    truth = dict(zip(index["clip_id"], index["label_id"], strict=True))
    assert (preds["true"] == preds["clip_id"].map(truth)).all()
    probs = preds[[f"prob_{k}" for k in range(3)]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert (preds["pred"] == probs.argmax(axis=1)).all()

    assert not (out / "checkpoints").exists()
    assert sorted(p.name for p in (out / "live").iterdir()) == [f"fold{i:02d}" for i in range(SUBJECTS)]
    loss = pd.read_csv(out / "live" / "fold00" / "plots" / "metrics" / "train_loss.tsv", sep="\t")
    assert loss["step"].tolist() == [1, 2, 3] and np.isfinite(loss["train_loss"]).all()

    evaluate.run(EvalParams(), out, tmp_path / "eval")
    m = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert m["last"]["n_clips"] == SUBJECTS * CLIPS_PER_SUBJECT
    assert m["oracle_test_selection"]["best_acc_epoch"]["accuracy"] >= m["last"]["accuracy"]


def test_same_seed_same_bytes_other_seed_other_predictions(flow_dir, tmp_path):
    params = tiny_params()
    for name in ("a", "b"):
        run.run(params, "memix", seed=3, flow_dir=flow_dir, out_dir=tmp_path / name)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == b[key], key
    run.run(params, "memix", seed=4, flow_dir=flow_dir, out_dir=tmp_path / "c")
    other = pd.read_parquet(tmp_path / "c" / "predictions.parquet")
    assert not other.equals(pd.read_parquet(tmp_path / "a" / "predictions.parquet"))


def test_it_learns_the_class_signal(flow_dir, tmp_path):
    params = tiny_params(epochs=15, lr=1e-2, augment={"flip": False, "rotate_deg": 0.0, "translate_frac": 0.0})
    run.run(params, "none", seed=0, flow_dir=flow_dir, out_dir=tmp_path / "t")
    preds = pd.read_parquet(tmp_path / "t" / "predictions.parquet")
    last = preds[preds["epoch"] == 15]
    assert (last["true"] == last["pred"]).mean() >= 0.8  # chance is 1/3


def test_test_subject_never_reaches_its_fold_training(flow_dir, tmp_path):
    """Changing only sub02's flow and labels leaves fold 1 (test sub02) training byte-identical."""
    changed = make_flow_set(tmp_path / "changed", changed_subject="sub02")
    params = tiny_params()
    run.run(params, "mixup", seed=0, flow_dir=flow_dir, out_dir=tmp_path / "a")
    run.run(params, "mixup", seed=0, flow_dir=changed, out_dir=tmp_path / "b")
    for metric in ("train_loss", "train_accuracy"):
        rel = Path("live") / "fold01" / "plots" / "metrics" / f"{metric}.tsv"
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
        rel0 = Path("live") / "fold00" / "plots" / "metrics" / f"{metric}.tsv"
        assert (tmp_path / "a" / rel0).read_bytes() != (tmp_path / "b" / rel0).read_bytes()  # fold 0 trains on sub02


class Killed(Exception):
    pass


def test_resume_after_a_finished_fold_gives_the_same_bytes(flow_dir, tmp_path, monkeypatch):
    params = tiny_params()
    run.run(params, "memix", seed=1, flow_dir=flow_dir, out_dir=tmp_path / "full")

    def kill_after_fold_1(fold: int) -> None:
        if fold == 1:
            raise Killed

    monkeypatch.setattr(loop, "on_fold_end", kill_after_fold_1)
    out = tmp_path / "resumed"
    with pytest.raises(Killed):
        run.run(params, "memix", seed=1, flow_dir=flow_dir, out_dir=out)
    assert not (out / "predictions.parquet").exists()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["fold00.pt", "fold01.pt"]

    trained = []
    monkeypatch.setattr(loop, "on_fold_end", lambda fold: trained.append(fold))
    run.run(params, "memix", seed=1, flow_dir=flow_dir, out_dir=out)
    assert trained == [2, 3]  # folds 0 and 1 came from their checkpoints
    assert _files(out) == _files(tmp_path / "full")


def test_resume_inside_a_fold_gives_the_same_bytes(flow_dir, tmp_path, monkeypatch):
    params = tiny_params(epochs=3, workers=1)  # in-process, so the hooks below see every epoch
    run.run(params, "transmix", seed=2, flow_dir=flow_dir, out_dir=tmp_path / "full")

    def kill(fold: int, epoch: int) -> None:
        if (fold, epoch) == (2, 2):
            raise Killed

    monkeypatch.setattr(loop, "CHECKPOINT_SECONDS", 0.0)
    monkeypatch.setattr(loop, "on_epoch_end", kill)
    out = tmp_path / "resumed"
    with pytest.raises(Killed):
        run.run(params, "transmix", seed=2, flow_dir=flow_dir, out_dir=out)
    assert (out / "checkpoints" / "current02.pt").is_file()

    epochs = []
    monkeypatch.setattr(loop, "on_epoch_end", lambda fold, epoch: epochs.append((fold, epoch)))
    run.run(params, "transmix", seed=2, flow_dir=flow_dir, out_dir=out)
    assert epochs[0] == (2, 3)  # fold 2 went on from its third epoch
    assert _files(out) == _files(tmp_path / "full")


def test_checkpoints_of_other_params_are_not_resumed(flow_dir, tmp_path, monkeypatch):
    out = tmp_path / "t"
    monkeypatch.setattr(loop, "on_fold_end", lambda fold: (_ for _ in ()).throw(Killed))
    with pytest.raises(Killed):
        run.run(tiny_params(lr=1e-2), "none", seed=0, flow_dir=flow_dir, out_dir=out)
    trained = []
    monkeypatch.setattr(loop, "on_fold_end", lambda fold: trained.append(fold))
    run.run(tiny_params(), "none", seed=0, flow_dir=flow_dir, out_dir=out)
    assert trained == [0, 1, 2, 3]
    trained.clear()
    monkeypatch.setattr(loop, "on_fold_end", lambda fold: (_ for _ in ()).throw(Killed))
    with pytest.raises(Killed):
        run.run(tiny_params(), "none", seed=0, flow_dir=flow_dir, out_dir=out)
    monkeypatch.setattr(loop, "on_fold_end", lambda fold: trained.append(fold))
    run.run(tiny_params(), "none", seed=0, flow_dir=flow_dir, out_dir=out, resume=False)
    assert trained == [0, 1, 2, 3]  # resume=False (--restart) ignores the checkpoint


def test_face_stream_model_trains(flow_dir, tmp_path):
    params = parse_params({**tiny_params(epochs=1).model_dump(by_alias=True, mode="json"),
                           "model": {"patch_size": 4, "embed_dim": 16, "depth": 1, "num_heads": 2,
                                     "face_stream": True}})
    run.run(params, "memix", seed=0, flow_dir=flow_dir, out_dir=tmp_path / "t")
    assert len(pd.read_parquet(tmp_path / "t" / "predictions.parquet")) == SUBJECTS * CLIPS_PER_SUBJECT


def test_bad_inputs_name_the_file(flow_dir, tmp_path):
    with pytest.raises(ValueError, match="unknown method"):
        run.run(tiny_params(), "nope", seed=0, flow_dir=flow_dir, out_dir=tmp_path / "t")
    broken = tmp_path / "flow"
    make_flow_set(broken)
    (broken / "stats.json").write_text(json.dumps({"channels": ["u", "v"]}))
    with pytest.raises(ValueError, match=r"flow.*(sum|shape)"):
        run.run(tiny_params(), "none", seed=0, flow_dir=broken, out_dir=tmp_path / "t")
    (broken / "stats.json").unlink()
    with pytest.raises(FileNotFoundError, match="stats.json"):
        run.run(tiny_params(), "none", seed=0, flow_dir=broken, out_dir=tmp_path / "t")
    assert not (tmp_path / "t" / "predictions.parquet").exists()


def test_batches_drop_only_a_single_leftover_sample():
    assert loop.batch_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert loop.batch_bounds(9, 4) == [(0, 4), (4, 8)]
    assert loop.batch_bounds(3, 8) == [(0, 3)]
    assert loop.batch_bounds(1, 8) == []


def test_a_corrupt_checkpoint_is_named_and_restart_clears_it(flow_dir, tmp_path):
    out = tmp_path / "t"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "fold00.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"fold00\.pt: unreadable checkpoint.*--restart"):
        run.run(tiny_params(epochs=1), "none", seed=0, flow_dir=flow_dir, out_dir=out)
    run.run(tiny_params(epochs=1), "none", seed=0, flow_dir=flow_dir, out_dir=out, resume=False)
    assert (out / "predictions.parquet").is_file() and not (out / "checkpoints").exists()


def test_fold_workers_do_not_change_a_byte(flow_dir, tmp_path):
    one = run.run(tiny_params(workers=1), "memix", seed=1, flow_dir=flow_dir, out_dir=tmp_path / "w1")
    two = run.run(tiny_params(workers=2), "memix", seed=1, flow_dir=flow_dir, out_dir=tmp_path / "w2")
    assert one.read_bytes() == two.read_bytes()
    assert _files(tmp_path / "w1") == _files(tmp_path / "w2")


def test_curves_hold_the_pooled_accuracy_of_every_evaluated_epoch(flow_dir, tmp_path):
    preds_path = run.run(tiny_params(epochs=3, eval_every=2), "none", seed=0, flow_dir=flow_dir, out_dir=tmp_path)
    preds = pd.read_parquet(preds_path)
    curves = pd.read_csv(tmp_path / "curves.csv")
    assert curves["epoch"].tolist() == [2, 3]
    for _, row in curves.iterrows():
        at = preds[preds["epoch"] == row["epoch"]]
        assert row["test_accuracy"] == pytest.approx((at["true"] == at["pred"]).mean(), abs=1e-6)
