"""Key-frame noise in training: each LOSO unit's last-epoch model scores its test clips in every noise set, into
keyframe_noise.parquet, with the fold's normalisation and the same forward; a run without levels is unchanged."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from flowsets import CLIPS_PER_SUBJECT, SUBJECTS, make_flow_set, tree_bytes

from memix.config import parse_params
from memix.io import flowset
from memix.training import loop, run
from memix.training.folds import make_folds
from memix.training.units import UnitResult

PROBS = [f"prob_{k}" for k in range(3)]


def tiny_params(**train: object):
    return parse_params({
        "model": {"patch_size": 4, "embed_dim": 16, "depth": 2, "num_heads": 2},
        "train": {"epochs": 2, "batch_size": 8, "device": "cpu", "threads": 1, "lr": 3e-3, "workers": 1, **train},
        "compare": {"seeds": [0]},
    })


@pytest.fixture(scope="module")
def noise_dirs(flow_dir, tmp_path_factory: pytest.TempPathFactory) -> dict[int, object]:
    """Level 1: the flow set itself (as if every draw were 0 / 0); level 4: other flows of the same clips."""
    root = tmp_path_factory.mktemp("noise")
    shutil.copytree(flow_dir, root / "1")
    return {1: root / "1", 4: make_flow_set(root / "4", seed=11)}


@pytest.fixture(scope="module")
def trained(flow_dir, noise_dirs, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("trained")
    run.run(tiny_params(fold_batch=2), "memix", flow_dir=flow_dir, out_dir=out / "noise", seeds=[0, 3],
            keyframe_noise=noise_dirs)
    return out


def test_each_units_test_clips_at_each_level_once(trained, flow_dir):
    noise = pd.read_parquet(trained / "noise" / "keyframe_noise.parquet")
    assert list(noise.columns) == ["seed", "clip_id", "subject", "dataset", "fold", "level", "true", "pred", *PROBS]
    index = flowset.read(flow_dir).index
    folds = {f.index: set(index["clip_id"].iloc[f.test_rows]) for f in make_folds(index)}
    assert len(noise) == 2 * 2 * SUBJECTS * CLIPS_PER_SUBJECT  # seeds x levels x clips
    for (_, _, fold), rows in noise.groupby(["seed", "level", "fold"]):
        assert set(rows["clip_id"]) == folds[fold] and rows["clip_id"].is_unique
    assert sorted(noise["level"].unique()) == [1, 4] and sorted(noise["seed"].unique()) == [0, 3]
    order = list(noise[["seed", "fold", "level", "clip_id"]].itertuples(index=False))
    assert order == sorted(order)
    truth = dict(zip(index["clip_id"], index["label_id"], strict=True))
    assert (noise["true"] == noise["clip_id"].map(truth)).all()
    assert (noise["pred"] == noise[PROBS].to_numpy().argmax(axis=1)).all()


def test_a_noise_set_equal_to_the_flow_set_gives_the_last_epochs_probabilities_exactly(trained):
    preds = pd.read_parquet(trained / "noise" / "predictions.parquet")
    noise = pd.read_parquet(trained / "noise" / "keyframe_noise.parquet")
    last = preds[preds["epoch"] == preds["epoch"].max()].set_index(["seed", "clip_id"]).sort_index()
    same = noise[noise["level"] == 1].set_index(["seed", "clip_id"]).sort_index()
    other = noise[noise["level"] == 4].set_index(["seed", "clip_id"]).sort_index()
    assert np.array_equal(same[PROBS].to_numpy(), last[PROBS].to_numpy())  # same model, same forward, same inputs
    assert (same["fold"] == last["fold"]).all()
    assert not np.allclose(other[PROBS].to_numpy(), last[PROBS].to_numpy())  # other inputs: other predictions


def test_a_run_without_levels_is_unchanged(trained, flow_dir, tmp_path):
    run.run(tiny_params(fold_batch=2), "memix", flow_dir=flow_dir, out_dir=tmp_path / "none", seeds=[0, 3])
    run.run(tiny_params(fold_batch=2), "memix", flow_dir=flow_dir, out_dir=tmp_path / "empty", seeds=[0, 3],
            keyframe_noise={})
    plain, empty, noisy = (tree_bytes(p) for p in (tmp_path / "none", tmp_path / "empty", trained / "noise"))
    assert "keyframe_noise.parquet" not in plain  # the architecture runs: no such file
    assert {k: v for k, v in empty.items() if k != "keyframe_noise.parquet"} == plain
    assert {k: v for k, v in noisy.items() if k != "keyframe_noise.parquet"} == plain  # training itself unchanged
    table = pd.read_parquet(tmp_path / "empty" / "keyframe_noise.parquet")
    assert table.empty and list(table.columns) == ["seed", "clip_id", "subject", "dataset", "fold", "level", "true",
                                                   "pred", *PROBS]


def test_resume_gives_the_same_bytes_noise_included(trained, flow_dir, noise_dirs, tmp_path, monkeypatch):
    class Killed(Exception):
        pass

    def kill_second_group(units, epoch):
        if units[0].fold.index == 2:
            raise Killed

    monkeypatch.setattr(loop, "on_epoch_end", kill_second_group)
    out = tmp_path / "resumed"
    with pytest.raises(Killed):
        run.run(tiny_params(fold_batch=2), "memix", flow_dir=flow_dir, out_dir=out, seeds=[0, 3],
                keyframe_noise=noise_dirs)
    trained_now = []
    monkeypatch.setattr(loop, "on_epoch_end", lambda units, epoch: trained_now.append(units[0].fold.index))
    run.run(tiny_params(fold_batch=2), "memix", flow_dir=flow_dir, out_dir=out, seeds=[0, 3],
            keyframe_noise=noise_dirs)
    assert len(trained_now) == 3 * 2  # three groups of four trained (2 epochs each): the first came from its
    # checkpoints, its noise predictions with it
    assert tree_bytes(out) == tree_bytes(trained / "noise")


def test_checkpoints_made_with_other_noise_sets_are_not_resumed(flow_dir, noise_dirs, tmp_path, monkeypatch):
    class Killed(Exception):
        pass

    def kill_second_group(units, epoch):
        if units[0].fold.index == 2:
            raise Killed

    monkeypatch.setattr(loop, "on_epoch_end", kill_second_group)
    with pytest.raises(Killed):
        run.run(tiny_params(fold_batch=2), "none", flow_dir=flow_dir, out_dir=tmp_path / "t",
                keyframe_noise={1: noise_dirs[1]})
    trained_now = []
    monkeypatch.setattr(loop, "on_epoch_end", lambda units, epoch: trained_now.append(units[0].fold.index))
    run.run(tiny_params(fold_batch=2), "none", flow_dir=flow_dir, out_dir=tmp_path / "t", keyframe_noise=noise_dirs)
    assert trained_now[0] == 0  # level 4 was not scored by the finished units: they train again


def test_test_clips_in_a_noise_set_are_normalised_with_the_folds_statistics(flow_dir, noise_dirs, monkeypatch):
    data, noisy = flowset.read(flow_dir), flowset.read(noise_dirs[4])
    fold = make_folds(data.index)[1]
    trainer = loop.GroupTrainer(tiny_params(epochs=1), "none", [loop.Unit(0, fold)], data, torch.device("cpu"),
                                noise={4: noisy})
    seen = []

    def spy(x, **kwargs):
        seen.append(x.clone())
        return torch.zeros(*x.shape[:2], 3)

    monkeypatch.setattr(trainer, "forward", spy)
    trainer._test_noise()
    clean = np.asarray(data.flow, dtype=np.float64)
    pixels = clean[fold.train_rows].transpose(1, 0, 2, 3).reshape(3, -1)  # the TRAINING rows of the flow set
    mean, std = pixels.mean(axis=1), pixels.std(axis=1)
    expected = (np.asarray(noisy.flow, dtype=np.float64)[fold.test_rows] - mean[None, :, None, None]) \
        / std[None, :, None, None]
    np.testing.assert_allclose(seen[0][0].numpy(), expected, rtol=1e-4, atol=1e-5)
    assert set(trainer.noise_probs[0]) == {4} and trainer.noise_probs[0][4].shape == (len(fold.test_rows), 3)


def test_a_noise_set_of_other_clips_is_refused_by_name(flow_dir, tmp_path):
    data = flowset.read(flow_dir)
    index = data.index.drop(columns=["shard", "row"]).iloc[::-1].reset_index(drop=True)
    flowset.write(tmp_path / "2", index, {"flow": np.asarray(data.flow)[::-1].copy()}, data.stats, shard_mb=64)
    with pytest.raises(ValueError, match=r"2: 20 clips.*row 0 holds sub04/EP04 there and sub01/EP00 here"):
        run.run(tiny_params(), "none", flow_dir=flow_dir, out_dir=tmp_path / "t", keyframe_noise={2: tmp_path / "2"})
    with pytest.raises(FileNotFoundError, match=r"level 3 not found.*dvc repro keyframe_noise@3"):
        run.run(tiny_params(), "none", flow_dir=flow_dir, out_dir=tmp_path / "t", keyframe_noise={3: tmp_path / "3"})
    assert not (tmp_path / "t" / "predictions.parquet").exists()


def test_cross_dataset_protocols_skip_the_noise(tmp_path):
    composite = make_flow_set(tmp_path / "flow", sources=("casme2", "samm"))
    shutil.copytree(composite, tmp_path / "1")
    params = tiny_params(epochs=1)
    run.run(params, "none", flow_dir=composite, out_dir=tmp_path / "t", protocol="holdout_database",
            keyframe_noise={1: tmp_path / "1"})
    assert (tmp_path / "t" / "predictions.parquet").is_file()
    assert not (tmp_path / "t" / "keyframe_noise.parquet").exists()


def test_a_unit_result_keeps_its_noise_predictions_through_a_checkpoint():
    probs = torch.rand(3, 5, 4)
    result = UnitResult(2, 1, "sub02", {"loss": torch.zeros(3)}, torch.tensor([1, 2, 3]), probs,
                        {5: torch.rand(5, 4), 2: torch.rand(5, 4)})
    state = result.to_state()
    assert state["noise_levels"].tolist() == [2, 5]
    back = UnitResult.from_state(state)
    assert sorted(back.noise) == [2, 5] and all(torch.equal(back.noise[n], result.noise[n]) for n in (2, 5))
    plain = UnitResult(2, 1, "sub02", {"loss": torch.zeros(3)}, torch.tensor([1, 2, 3]), probs)
    assert "noise_levels" not in plain.to_state() and UnitResult.from_state(plain.to_state()).noise == {}
