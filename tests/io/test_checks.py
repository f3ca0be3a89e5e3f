"""Damaged or non-finite data never reaches training or evaluation: flipped shard bytes, NaN flow, NaN probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from flowsets import make_flow_set

from memix.io import checks, flowset, shards, views


def test_flipped_bytes_in_a_flow_shard_stop_the_reader(tmp_path: Path) -> None:
    """888 flipped bytes in the data of flow-00000.npy: same size and header, values up to 4.5e4 before."""
    path = make_flow_set(tmp_path / "flow")
    shard = path / shards.shard_file("flow", 0)
    raw = bytearray(shard.read_bytes())
    for i in range(len(raw) - 888, len(raw)):
        raw[i] ^= 0x5A
    shard.write_bytes(bytes(raw))
    with pytest.raises(shards.ShardError) as info:
        flowset.read(path)
    message = str(info.value)
    assert str(shard) in message and "sha256" in message and "sub01/EP00" in message


def _nan_flow_set(out: Path) -> Path:
    """A flow set written WITH NaN/inf in two clips, so its checksums are valid: only the values can tell."""
    src = make_flow_set(out.parent / "src")
    data = flowset.read(src)
    flow = np.array(data.flow)
    flow[6, 1, 3, 3] = np.nan  # sub02/EP01
    flow[13, 0, 0, 0] = np.inf  # sub03/EP03
    index = data.index.drop(columns=["shard", "row"])
    four_clips_mb = 4 * flow[0].nbytes / 2**20  # 4 clips per shard file: the two clips land in different shards
    flowset.write(out, index, {"flow": flow, "onset": np.array(data.onset)}, data.stats, shard_mb=four_clips_mb)
    return out


def test_nan_in_flow_names_the_shard_file_and_the_clip(tmp_path: Path) -> None:
    path = _nan_flow_set(tmp_path / "flow")
    with pytest.raises(ValueError) as info:
        flowset.read(path)
    message = str(info.value)
    assert str(path / shards.shard_file("flow", 1)) in message  # rows 4..7: sub02/EP01 is row 6
    assert "row 6 (clip sub02/EP01)" in message and "2 clips in all" in message


def test_nonfinite_rows_on_float16_and_float32() -> None:
    values = np.zeros((5, 2, 3), np.float16)
    values[1, 0, 2] = np.inf
    values[3, 1, 1] = -np.inf
    values[4, 0, 0] = np.nan
    values[2, 0, 0] = 65504  # the largest finite float16
    assert checks.nonfinite_rows(values).tolist() == [1, 3, 4]
    assert checks.nonfinite_rows(values.astype(np.float32), chunk_bytes=8).tolist() == [1, 3, 4]
    assert checks.nonfinite_rows(np.arange(4)).tolist() == []


def test_nan_probability_names_the_file_and_the_clip(tmp_path: Path) -> None:
    preds = pd.DataFrame({
        "seed": [0, 0, 0], "clip_id": ["s1/a", "s1/b", "s2/c"], "fold": [0, 0, 1], "epoch": [3, 3, 3],
        "prob_0": [0.2, np.nan, 0.5], "prob_1": [0.8, np.nan, 0.5],
    })
    checks.check_probabilities(preds.drop(1), 2, tmp_path / "predictions.parquet")
    with pytest.raises(ValueError, match=r"predictions\.parquet: clip 's1/b' \(seed 0, fold 0, epoch 3\): NaN"):
        checks.check_probabilities(preds, 2, tmp_path / "predictions.parquet")


def test_flow_set_index_and_stats_are_checked_when_read(tmp_path: Path) -> None:
    """A flipped bit in the flow index's normalisation sums or in stats.json must not change training silently."""
    out = make_flow_set(tmp_path / "flow")
    flowset.read(out)
    index = pd.read_parquet(out / shards.INDEX)
    index.loc[0, "sum_u"] += 1.0
    index.to_parquet(out / shards.INDEX, index=False)
    with pytest.raises(ValueError, match="index.parquet: content differs from its sha256"):
        flowset.read(out)
    make_flow_set(out)  # rewritten over its own earlier output
    stats = out / flowset.STATS_FILE
    stats.write_text(stats.read_text().replace('"u"', '"x"'))
    with pytest.raises(ValueError, match="stats.json: content differs from its sha256"):
        flowset.read(out)


def test_the_faces_view_is_the_onset_and_apex_with_their_own_sums(tmp_path):
    """A network on faces (MMNet) trains on the flow set's onset and apex crops, normalised per fold like flow."""
    src = make_flow_set(tmp_path / "flow")
    raw = flowset.read(src)
    view = views.read(src, inputs="faces")
    _, arrays = shards.load(src)
    assert view.channels == ["onset", "apex"] and not view.vectors and raw.vectors
    assert np.array_equal(view.flow[:, 0], raw.onset) and np.array_equal(view.flow[:, 1], arrays["apex"])
    assert view.flow.dtype == np.float16 and view.flow.shape[1:] == (2, raw.size, raw.size)
    mean, std = flowset.channel_stats(view.index, view.channels)
    pixels = view.flow.astype(np.float64)
    np.testing.assert_allclose(mean, pixels.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(std, pixels.std(axis=(0, 2, 3)), rtol=1e-9)
    assert view.stats["flow_channels"] == raw.channels


def test_a_flow_set_without_apex_faces_is_refused_for_the_faces_input(tmp_path):
    index, arrays = shards.load(make_flow_set(tmp_path / "flow"))
    old = tmp_path / "old"
    flowset.write(old, index.drop(columns=["shard", "row"]), {"flow": np.array(arrays["flow"]),
                                                               "onset": np.array(arrays["onset"])},
                  {"channels": ["u", "v", "strain"]}, shard_mb=64)
    flowset.read(old)  # the flow alone is fine
    with pytest.raises(ValueError, match=r"old: .*lacks array apex.*dvc repro flow"):
        views.read(old, inputs="faces")
    with pytest.raises(ValueError, match="inputs 'frames'"):
        views.read(old, inputs="frames")
