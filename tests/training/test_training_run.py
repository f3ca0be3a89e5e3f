"""LOSO training of one method over its seeds, end to end on a tiny flow set: coverage, outputs, determinism,
no leakage, resume after a kill (in a group and of a worker process)."""

from __future__ import annotations

import json
import logging
import os
import signal

import numpy as np
import pandas as pd
import pytest
import torch
from flowsets import CHANNELS, CLIPS_PER_SUBJECT, SUBJECTS, make_flow_set, tree_bytes

from memix.config import parse_params
from memix.io import atomic, flowset, shards
from memix.training import loop, run
from memix.training.folds import make_folds


def tiny_params(**train: object):
    return parse_params({
        "model": {"patch_size": 4, "embed_dim": 16, "depth": 2, "num_heads": 2},
        "train": {"epochs": 2, "batch_size": 8, "device": "cpu", "threads": 1, "lr": 3e-3, **train},
        "mixing": {"manifold_mixup": {"blocks": [0, 1]}},
        "compare": {"seeds": [0]},
    })


@pytest.mark.parametrize("method", ["none", "memix", "manifold_mixup", "balanced_mixup", "transmix", "mixaugment"])
def test_end_to_end_writes_every_clip_once_per_seed_and_evaluated_epoch(flow_dir, tmp_path, method):
    out = tmp_path / "train"
    run.run(tiny_params(epochs=3, eval_every=2), method, flow_dir=flow_dir, out_dir=out, seeds=[0, 5])
    preds = pd.read_parquet(out / "predictions.parquet")
    index = shards.load_index(flow_dir)

    # epochs 2 (eval_every) and 3 (final) of every fold of both seeds, each test clip exactly once, in its own fold
    assert sorted(preds["seed"].unique()) == [0, 5]
    assert sorted(preds["epoch"].unique()) == [2, 3]
    for _, rows in preds.groupby(["seed", "epoch"]):
        assert sorted(rows["clip_id"]) == sorted(index["clip_id"])
    assert (preds.groupby(["clip_id"])["fold"].nunique() == 1).all()
    assert (preds["subject"] == preds["clip_id"].str.split("/").str[0]).all()
    order = list(preds[["seed", "fold"]].itertuples(index=False))
    assert order == sorted(order)
    truth = dict(zip(index["clip_id"], index["label_id"], strict=True))
    assert (preds["true"] == preds["clip_id"].map(truth)).all()
    probs = preds[[f"prob_{k}" for k in range(3)]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert (preds["pred"] == probs.argmax(axis=1)).all()

    assert not (out / "checkpoints").exists()
    history = pd.read_parquet(out / "history.parquet")
    assert len(history) == 2 * SUBJECTS * 3 and np.isfinite(history["train_loss"]).all()
    assert history["test_accuracy"].isna().sum() == 2 * SUBJECTS  # epoch 1 was not evaluated
    assert sorted(p.name for p in (out / "live").iterdir()) == ["seed0", "seed5"]
    curve = pd.read_csv(out / "live" / "seed5" / "plots" / "metrics" / "test_accuracy.tsv", sep="\t")
    assert curve["step"].tolist() == [2, 3]


def test_same_seed_same_bytes_other_seed_other_predictions(flow_dir, tmp_path):
    params = tiny_params()
    for name in ("a", "b"):
        run.run(params, "memix", flow_dir=flow_dir, out_dir=tmp_path / name, seeds=[3])
    a, b = tree_bytes(tmp_path / "a"), tree_bytes(tmp_path / "b")
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == b[key], key
    run.run(params, "memix", flow_dir=flow_dir, out_dir=tmp_path / "c", seeds=[4])
    other = pd.read_parquet(tmp_path / "c" / "predictions.parquet")
    mine = pd.read_parquet(tmp_path / "a" / "predictions.parquet")
    assert not np.allclose(other["prob_0"], mine["prob_0"])


def test_it_learns_the_class_signal(flow_dir, tmp_path):
    params = tiny_params(epochs=15, lr=1e-2, augment={"flip": False, "rotate_deg": 0.0, "translate_frac": 0.0})
    run.run(params, "none", flow_dir=flow_dir, out_dir=tmp_path / "t")
    preds = pd.read_parquet(tmp_path / "t" / "predictions.parquet")
    last = preds[preds["epoch"] == 15]
    assert (last["true"] == last["pred"]).mean() >= 0.8  # chance is 1/3


def test_test_subject_never_reaches_its_fold_training(flow_dir, tmp_path):
    """Changing only sub02's flow and labels leaves fold 1 (test sub02) training byte-identical."""
    changed = make_flow_set(tmp_path / "changed", changed_subject="sub02")
    params = tiny_params()
    run.run(params, "mixup", flow_dir=flow_dir, out_dir=tmp_path / "a")
    run.run(params, "mixup", flow_dir=changed, out_dir=tmp_path / "b")
    a, b = (pd.read_parquet(tmp_path / name / "history.parquet") for name in ("a", "b"))
    train_cols = ["train_loss", "train_accuracy"]
    assert a[a["fold"] == 1][train_cols].equals(b[b["fold"] == 1][train_cols])
    assert not a[a["fold"] == 0][train_cols].equals(b[b["fold"] == 0][train_cols])  # fold 0 trains on sub02


def test_relabelling_a_test_subject_changes_nothing_of_its_fold(flow_dir, tmp_path):
    """Labels of the test subject alone: its fold's probabilities (every epoch) and hence its `last` epoch stay."""
    relabelled = tmp_path / "relabelled"
    data = flowset.read(flow_dir)
    index = data.index.drop(columns=["shard", "row"]).copy()
    rows = index["subject"] == "sub03"
    index.loc[rows, "label_id"] = (index.loc[rows, "label_id"] + 1) % 3
    index.loc[rows, "label"] = index.loc[rows, "label_id"].map({0: "happiness", 1: "disgust", 2: "surprise"})
    arrays = {"flow": np.asarray(data.flow), "onset": np.asarray(data.onset)}
    flowset.write(relabelled, index, arrays, {"channels": CHANNELS}, shard_mb=64)
    params = tiny_params(epochs=3)
    a = pd.read_parquet(run.run(params, "memix", flow_dir=flow_dir, out_dir=tmp_path / "a"))
    b = pd.read_parquet(run.run(params, "memix", flow_dir=relabelled, out_dir=tmp_path / "b"))
    probs = [f"prob_{k}" for k in range(3)]
    fold = a["subject"] == "sub03"
    assert a[fold][["epoch", "clip_id", *probs]].equals(b[fold][["epoch", "clip_id", *probs]])
    assert a[fold]["epoch"].max() == b[fold]["epoch"].max()
    assert not a[fold]["true"].equals(b[fold]["true"])


def test_test_clips_are_normalised_with_the_training_folds_statistics(flow_dir, monkeypatch):
    """What the model sees of the test subject: (x - mean) / std with mean and std of the OTHER subjects' pixels."""
    data = flowset.read(flow_dir)
    params = tiny_params(epochs=1)
    fold = make_folds(data.index)[2]
    trainer = loop.GroupTrainer(params, "none", [loop.Unit(0, fold)], data, torch.device("cpu"))
    seen = []

    def spy(x, **kwargs):
        seen.append(x.clone())
        return torch.zeros(*x.shape[:2], 3)

    monkeypatch.setattr(trainer, "forward", spy)
    trainer._test(0)
    flow = np.asarray(data.flow, dtype=np.float64)
    pixels = flow[fold.train_rows].transpose(1, 0, 2, 3).reshape(len(CHANNELS), -1)
    mean, std = pixels.mean(axis=1), pixels.std(axis=1)
    expected = (flow[fold.test_rows] - mean[None, :, None, None]) / std[None, :, None, None]
    np.testing.assert_allclose(seen[0][0].numpy(), expected, rtol=1e-4, atol=1e-5)


class Killed(Exception):
    pass


def test_resume_after_a_finished_group_gives_the_same_bytes(flow_dir, tmp_path, monkeypatch):
    params = tiny_params(fold_batch=2, workers=1)
    run.run(params, "memix", flow_dir=flow_dir, out_dir=tmp_path / "full")

    def kill_second_group(units, epoch):
        if units[0].fold.index == 2:
            raise Killed

    monkeypatch.setattr(loop, "on_epoch_end", kill_second_group)
    out = tmp_path / "resumed"
    with pytest.raises(Killed):
        run.run(params, "memix", flow_dir=flow_dir, out_dir=out)
    assert not (out / "predictions.parquet").exists()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["unit-s0-f00.pt", "unit-s0-f01.pt"]

    trained = []
    monkeypatch.setattr(loop, "on_epoch_end", lambda units, epoch: trained.append([u.fold.index for u in units]))
    run.run(params, "memix", flow_dir=flow_dir, out_dir=out)
    assert trained == [[2, 3], [2, 3]]  # folds 0 and 1 came from their checkpoints
    assert tree_bytes(out) == tree_bytes(tmp_path / "full")


def test_resume_inside_a_group_gives_the_same_bytes(flow_dir, tmp_path, monkeypatch):
    params = tiny_params(epochs=3, workers=1)  # in-process, so the hooks below see every epoch
    run.run(params, "transmix", flow_dir=flow_dir, out_dir=tmp_path / "full")

    def kill(units, epoch):
        if epoch == 2:
            raise Killed

    monkeypatch.setattr(loop, "CHECKPOINT_SECONDS", 0.0)
    monkeypatch.setattr(loop, "CHECKPOINT_SHARE", float("inf"))  # save after every epoch, however long a save takes
    monkeypatch.setattr(loop, "on_epoch_end", kill)
    out = tmp_path / "resumed"
    with pytest.raises(Killed):
        run.run(params, "transmix", flow_dir=flow_dir, out_dir=out)
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["group-s0-f00-n4.pt"]

    epochs = []
    monkeypatch.setattr(loop, "on_epoch_end", lambda units, epoch: epochs.append(epoch))
    run.run(params, "transmix", flow_dir=flow_dir, out_dir=out)
    assert epochs == [3]  # the group went on from its third epoch
    assert tree_bytes(out) == tree_bytes(tmp_path / "full")


def test_a_kill_during_a_group_save_retrains_the_group_to_the_same_bytes(flow_dir, tmp_path, monkeypatch, caplog):
    """A save replaces the previous state in place: cut short, it leaves no state (not a torn one), and the
    rerun trains the group from its first epoch to the same bytes."""
    params = tiny_params(epochs=3, workers=1)
    run.run(params, "none", flow_dir=flow_dir, out_dir=tmp_path / "full")
    monkeypatch.setattr(loop, "CHECKPOINT_SECONDS", 0.0)
    monkeypatch.setattr(loop, "CHECKPOINT_SHARE", float("inf"))
    real_save, indexes = torch.save, []

    def dying(obj, f, *args, **kwargs):
        if str(f).endswith(".index.pt.tmp"):
            indexes.append(f)
            if len(indexes) == 2:  # the second save (after epoch 2) dies once its chunks are written
                raise Killed
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", dying)
    out = tmp_path / "resumed"
    with pytest.raises(Killed):
        run.run(params, "none", flow_dir=flow_dir, out_dir=out)
    monkeypatch.setattr(torch, "save", real_save)
    group = out / "checkpoints" / "group-s0-f00-n4.pt"
    assert any(group.glob("g2-*.pt")) and not (group / "index.pt").exists()

    epochs = []
    monkeypatch.setattr(loop, "on_epoch_end", lambda units, epoch: epochs.append(epoch))
    with caplog.at_level(logging.WARNING, logger="memix"):
        run.run(params, "none", flow_dir=flow_dir, out_dir=out)
    assert epochs == [1, 2, 3]
    assert "stopped while saving group-s0-f00-n4.pt" in caplog.text and "another run" not in caplog.text
    assert tree_bytes(out) == tree_bytes(tmp_path / "full")


def test_checkpoints_of_other_params_are_not_resumed(flow_dir, tmp_path, monkeypatch):
    out = tmp_path / "t"
    params = tiny_params(fold_batch=2, workers=1)

    def kill_second_group(units, epoch):
        if units[0].fold.index == 2:
            raise Killed

    monkeypatch.setattr(loop, "on_epoch_end", kill_second_group)
    with pytest.raises(Killed):
        run.run(tiny_params(fold_batch=2, workers=1, lr=1e-2), "none", flow_dir=flow_dir, out_dir=out)
    trained = []
    monkeypatch.setattr(loop, "on_epoch_end", lambda units, epoch: trained.append(units[0].fold.index))
    run.run(params, "none", flow_dir=flow_dir, out_dir=out)
    assert trained == [0, 0, 2, 2]  # the other lr's finished group was not taken
    monkeypatch.setattr(loop, "on_epoch_end", kill_second_group)
    with pytest.raises(Killed):
        run.run(params, "none", flow_dir=flow_dir, out_dir=out)
    trained.clear()
    monkeypatch.setattr(loop, "on_epoch_end", lambda units, epoch: trained.append(units[0].fold.index))
    run.run(params, "none", flow_dir=flow_dir, out_dir=out, resume=False)
    assert trained == [0, 0, 2, 2]  # resume=False (--restart) ignores the checkpoints


def test_a_killed_worker_fails_the_run_at_once_and_keeps_finished_groups(flow_dir, tmp_path, monkeypatch):
    """SIGKILL of one worker process (as the out-of-memory killer would): a prompt error naming its folds; the
    groups other workers finished are checkpointed, and the rerun resumes from them to the same bytes."""
    params = tiny_params(fold_batch=1, workers=2)
    run.run(params, "none", flow_dir=flow_dir, out_dir=tmp_path / "full")

    def die_on_fold_3(units, epoch):  # runs in the forked workers
        if units[0].fold.index == 3:
            os.kill(os.getpid(), signal.SIGKILL)

    monkeypatch.setattr(loop, "on_epoch_end", die_on_fold_3)
    out = tmp_path / "t"
    with pytest.raises(RuntimeError, match=r"worker died.*fold\(s\) 3\.\.3.*run the stage again to resume"):
        run.run(params, "none", flow_dir=flow_dir, out_dir=out)
    kept = sorted(p.name for p in (out / "checkpoints").glob("unit-*.pt"))
    assert "unit-s0-f03.pt" not in kept and len(kept) >= 2
    monkeypatch.setattr(loop, "on_epoch_end", lambda units, epoch: None)
    run.run(params, "none", flow_dir=flow_dir, out_dir=out)
    assert tree_bytes(out) == tree_bytes(tmp_path / "full")


def test_face_stream_model_trains(flow_dir, tmp_path):
    params = parse_params({**tiny_params(epochs=1).model_dump(by_alias=True, mode="json"),
                           "model": {"patch_size": 4, "embed_dim": 16, "depth": 1, "num_heads": 2,
                                     "face_stream": True}})
    run.run(params, "memix", flow_dir=flow_dir, out_dir=tmp_path / "t")
    assert len(pd.read_parquet(tmp_path / "t" / "predictions.parquet")) == SUBJECTS * CLIPS_PER_SUBJECT


def test_bad_inputs_name_the_file(flow_dir, tmp_path):
    with pytest.raises(ValueError, match="unknown method"):
        run.run(tiny_params(), "nope", flow_dir=flow_dir, out_dir=tmp_path / "t")
    broken = tmp_path / "flow"
    make_flow_set(broken)
    (broken / "stats.json").write_text(json.dumps({"channels": ["u", "v"]}))
    with pytest.raises(ValueError, match=r"stats.json: content differs from its sha256"):
        run.run(tiny_params(), "none", flow_dir=broken, out_dir=tmp_path / "t")
    manifest = json.loads((broken / shards.MANIFEST).read_text())  # as if written so: the contents are checked too
    manifest["files"]["stats.json"] = atomic.file_sha256(broken / "stats.json")
    (broken / shards.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"flow.*(sum|shape)"):
        run.run(tiny_params(), "none", flow_dir=broken, out_dir=tmp_path / "t")
    (broken / "stats.json").unlink()
    with pytest.raises(FileNotFoundError, match="stats.json"):
        run.run(tiny_params(), "none", flow_dir=broken, out_dir=tmp_path / "t")
    assert not (tmp_path / "t" / "predictions.parquet").exists()


def test_batches_drop_only_a_single_leftover_sample():
    assert loop.batch_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert loop.batch_bounds(9, 4) == [(0, 4), (4, 8)]
    assert loop.batch_bounds(3, 8) == [(0, 3)]
    assert loop.batch_bounds(1, 8) == []


def test_a_corrupt_checkpoint_is_named_and_restart_clears_it(flow_dir, tmp_path):
    out = tmp_path / "t"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "unit-s0-f00.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"unit-s0-f00\.pt: unreadable checkpoint.*--restart"):
        run.run(tiny_params(epochs=1), "none", flow_dir=flow_dir, out_dir=out)
    run.run(tiny_params(epochs=1), "none", flow_dir=flow_dir, out_dir=out, resume=False)
    assert (out / "predictions.parquet").is_file() and not (out / "checkpoints").exists()


def test_workers_and_groups_do_not_change_a_byte(flow_dir, tmp_path):
    """One group of every fold in this process, or one fold per group on two worker processes: same bytes."""
    one = run.run(tiny_params(workers=1), "memix", flow_dir=flow_dir, out_dir=tmp_path / "w1")
    two = run.run(tiny_params(workers=2, fold_batch=1), "memix", flow_dir=flow_dir, out_dir=tmp_path / "w2")
    assert one.read_bytes() == two.read_bytes()
    assert tree_bytes(tmp_path / "w1") == tree_bytes(tmp_path / "w2")


def test_curves_hold_the_pooled_accuracy_of_every_evaluated_epoch(flow_dir, tmp_path):
    preds_path = run.run(tiny_params(epochs=3, eval_every=2), "none", flow_dir=flow_dir, out_dir=tmp_path)
    preds = pd.read_parquet(preds_path)
    curves = pd.read_csv(tmp_path / "curves.csv")
    assert curves["epoch"].tolist() == [2, 3]
    for _, row in curves.iterrows():
        at = preds[preds["epoch"] == row["epoch"]]
        assert row["test_accuracy"] == pytest.approx((at["true"] == at["pred"]).mean(), abs=1e-6)


def test_dvclive_failures_name_the_folder(flow_dir, tmp_path, monkeypatch):
    """A full disk inside DVCLive surfaces as sqlite3.OperationalError from its state: an error naming the folder."""
    import sqlite3

    from memix.training import outputs

    def full_disk(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(outputs, "_live", full_disk)
    out = tmp_path / "t"
    with pytest.raises(OSError, match=r"t/live/seed0: DVCLive could not write its logs.*disk is full"):
        run.run(tiny_params(epochs=1, workers=1), "none", flow_dir=flow_dir, out_dir=out)
    assert not (out / "live").exists() and not (out / "predictions.parquet").is_file()
