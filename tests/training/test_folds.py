"""LOSO folds and per-fold normalisation: nothing of the test subject leaks into a fold's training side."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from flowsets import make_flow_set

from memix.io import atomic, flowset, shards
from memix.training.folds import fold_stats, make_folds

CHANNELS = ["u", "v", "strain"]


def _index_and_flow(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Five subjects with 1-4 clips each (out of order), flow (N, 3, 8, 8) and its per-clip sums."""
    rng = np.random.default_rng(seed)
    subjects = ["s03", "s01", "s02", "s01", "s05", "s04", "s03", "s02", "s01", "s04", "s02", "s01"]
    n = len(subjects)
    flow = rng.normal(size=(n, 3, 8, 8)) * rng.uniform(0.5, 3, size=(n, 1, 1, 1)) + rng.normal(size=(n, 3, 1, 1))
    labels = rng.integers(0, 3, size=n)
    labels[0] = 4  # id 3 absent everywhere, id 4 only in subject s03
    index = pd.DataFrame({
        "clip_id": [f"{s}/c{i}" for i, s in enumerate(subjects)],
        "subject": subjects,
        "label": [f"name{k}" for k in labels],
        "label_id": labels,
        "n_pixels": 64,
    })
    for c, ch in enumerate(CHANNELS):
        index[f"sum_{ch}"] = flow[:, c].sum(axis=(1, 2))
        index[f"sumsq_{ch}"] = (flow[:, c] ** 2).sum(axis=(1, 2))
    return index, flow


def test_each_subject_is_the_test_fold_once_in_sorted_order():
    index, _ = _index_and_flow()
    folds = make_folds(index)
    assert [f.subject for f in folds] == ["s01", "s02", "s03", "s04", "s05"]
    assert [f.index for f in folds] == list(range(5))
    for f in folds:
        train_subjects = set(index["subject"].iloc[f.train_rows])
        assert f.subject not in train_subjects
        assert set(index["subject"].iloc[f.test_rows]) == {f.subject}
        assert sorted([*f.train_rows, *f.test_rows]) == list(range(len(index)))


def test_fold_stats_are_the_training_rows_pixel_statistics():
    index, flow = _index_and_flow()
    for f in make_folds(index):
        mean, std = fold_stats(index, f, CHANNELS)
        pixels = flow[f.train_rows].transpose(1, 0, 2, 3).reshape(3, -1)
        np.testing.assert_allclose(mean, pixels.mean(axis=1), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(std, pixels.std(axis=1), rtol=1e-9)


def test_fold_stats_ignore_the_test_subject():
    index, _ = _index_and_flow()
    folds = make_folds(index)
    fold = folds[1]  # s02
    before = fold_stats(index, fold, CHANNELS)

    changed = index.copy()
    rows = changed["subject"] == fold.subject
    for ch in CHANNELS:
        changed.loc[rows, f"sum_{ch}"] *= 100.0
        changed.loc[rows, f"sumsq_{ch}"] *= 1e4
    after = fold_stats(changed, make_folds(changed)[1], CHANNELS)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
    # ... while every other fold (which trains on s02) does see the change
    other = fold_stats(changed, make_folds(changed)[0], CHANNELS)
    assert not np.allclose(other[0], fold_stats(index, folds[0], CHANNELS)[0])


def test_classes_come_from_the_whole_index():
    index, _ = _index_and_flow()
    assert flowset.num_classes(index) == 5
    names = flowset.class_names(index)
    assert names[4] == "name4" and names[3] == "class_3"


def test_read_stats_checks_channels(tmp_path):
    flow = make_flow_set(tmp_path / "flow")
    assert flowset.read_stats(flow)["channels"] == json.loads((flow / "stats.json").read_text())["channels"]
    with pytest.raises(FileNotFoundError, match="stats.json"):
        flowset.read_stats(tmp_path / "nowhere")
    (flow / "stats.json").write_text(json.dumps({"mean": [0]}))
    manifest = json.loads((flow / shards.MANIFEST).read_text())  # as if written so: the content is checked too
    manifest["files"]["stats.json"] = atomic.file_sha256(flow / "stats.json")
    (flow / shards.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="stats.json.*channels"):
        flowset.read_stats(flow)


def test_loso_needs_two_subjects():
    index, _ = _index_and_flow()
    with pytest.raises(ValueError, match="at least 2 subjects"):
        make_folds(index.assign(subject="s01"))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d.drop(columns=["sumsq_v"]), "lacks column.*sumsq_v"),
        (lambda d: d.assign(clip_id="same"), "clip_id 'same' appears more than once"),
        (lambda d: d.assign(label_id=d["label_id"].where(d.index != 2, -1)), "clip 's02/c2'.*label_id"),
        (lambda d: d.assign(label=d["label"].where(d.index != 2, "other")), "maps to more than one label"),
    ],
)
def test_bad_index_names_the_source_and_field(damage, message):
    index, _ = _index_and_flow()
    with pytest.raises(ValueError, match=message) as err:
        flowset.validate_index(damage(index), CHANNELS, "flow/index.parquet")
    assert "flow/index.parquet" in str(err.value)


def _composite(sources: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """The five-subject index spread over ``sources`` (subjects namespaced as a composite's are), sources
    interleaved in the rows so no split can come from row order."""
    index, flow = _index_and_flow()
    index["dataset"] = [sources[i % len(sources)] for i in range(len(index))]
    index["subject"] = index["dataset"] + "/" + index["subject"]
    return index, flow


@pytest.mark.parametrize("sources", [["casme2", "samm"], ["samm", "casme2", "smic"]])
def test_holdout_database_trains_on_one_source_and_tests_on_another_for_every_ordered_pair(sources):
    index, _ = _composite(sources)
    folds = make_folds(index, "holdout_database")
    pairs = [(a, b) for a in sources for b in sources if a != b]  # in the order the index first lists them
    assert [f.subject for f in folds] == [f"{a}->{b}" for a, b in pairs]
    assert [f.index for f in folds] == list(range(len(pairs)))
    for f, (a, b) in zip(folds, pairs, strict=True):
        assert set(index["dataset"].iloc[f.train_rows]) == {a} and set(index["dataset"].iloc[f.test_rows]) == {b}
        assert list(f.train_rows) == list(np.flatnonzero(index["dataset"] == a))  # ALL of the training source
        assert list(f.test_rows) == list(np.flatnonzero(index["dataset"] == b))  # ALL of the test source
        assert f.describe() == f"fold {f.index} (train {a}, test {b})"


def test_leave_one_dataset_out_tests_each_source_once_on_a_model_of_all_the_others():
    sources = ["casme2", "samm", "smic"]
    index, _ = _composite(sources)
    folds = make_folds(index, "leave_one_dataset_out")
    assert [f.subject for f in folds] == ["samm+smic->casme2", "casme2+smic->samm", "casme2+samm->smic"]
    assert folds[1].describe() == "fold 1 (train casme2 + smic, test samm)"
    tested = np.concatenate([f.test_rows for f in folds])
    assert sorted(tested) == list(range(len(index)))  # every clip tested exactly once
    for f, test in zip(folds, sources, strict=True):
        assert test not in set(index["dataset"].iloc[f.train_rows])
        assert set(index["dataset"].iloc[f.test_rows]) == {test}
        assert set(index["dataset"].iloc[f.train_rows]) == set(sources) - {test}
        assert not set(index["clip_id"].iloc[f.train_rows]) & set(index["clip_id"].iloc[f.test_rows])


@pytest.mark.parametrize("protocol", ["holdout_database", "leave_one_dataset_out"])
def test_cross_dataset_statistics_come_from_the_training_sources_only(protocol):
    index, flow = _composite(["casme2", "samm", "smic"])
    folds = make_folds(index, protocol)
    for f in folds:
        mean, std = fold_stats(index, f, CHANNELS)
        pixels = flow[f.train_rows].transpose(1, 0, 2, 3).reshape(3, -1)
        np.testing.assert_allclose(mean, pixels.mean(axis=1), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(std, pixels.std(axis=1), rtol=1e-9)
        changed = index.copy()  # the test source's flow scaled: the fold's statistics do not move
        rows = changed.index.isin(f.test_rows)
        for ch in CHANNELS:
            changed.loc[rows, f"sum_{ch}"] *= 100.0
            changed.loc[rows, f"sumsq_{ch}"] *= 1e4
        again = fold_stats(changed, make_folds(changed, protocol)[f.index], CHANNELS)
        np.testing.assert_array_equal(mean, again[0])
        np.testing.assert_array_equal(std, again[1])


@pytest.mark.parametrize("protocol", ["holdout_database", "leave_one_dataset_out"])
def test_a_cross_dataset_protocol_refuses_a_single_dataset(protocol):
    index, _ = _index_and_flow()
    with pytest.raises(ValueError, match=f"protocol {protocol} .* needs a composite of at least two sources"):
        make_folds(index, protocol)
    index["dataset"] = "casme2"
    with pytest.raises(ValueError, match=r"holds \['casme2'\]"):
        make_folds(index, protocol)
