"""Shard folders: round trip, deterministic bytes, clear errors on damaged shards, nothing left by a failed write."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from memix.io import shards


def _data(n: int = 11) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    index = pd.DataFrame({"clip_id": [f"sub{i % 3:02d}/EP{i:02d}" for i in range(n)], "label_id": np.arange(n) % 5})
    arrays = {
        "onset": rng.integers(0, 256, size=(n, 8, 8), dtype=np.uint8),
        "flow": rng.standard_normal((n, 3, 4, 4)).astype(np.float16),
    }
    return index, arrays


TINY_MB = 200 / (1 << 20)  # 200 bytes: two 96-byte flow rows (the largest array) per shard


def _shard_files(folder: Path, name: str) -> list[Path]:
    return sorted(folder.glob(f"{name}-*.npy"))


def test_round_trip_over_several_shards(tmp_path: Path) -> None:
    index, arrays = _data()
    shards.write(tmp_path / "s", index, arrays, shard_mb=TINY_MB)
    assert len(_shard_files(tmp_path / "s", "onset")) == 6  # ceil(11 / 2), the same split for every array
    assert len(_shard_files(tmp_path / "s", "flow")) == 6
    got_index, got = shards.load(tmp_path / "s")
    pd.testing.assert_frame_equal(got_index.drop(columns=["shard", "row"]), index)
    for name, arr in arrays.items():
        assert got[name].dtype == arr.dtype
        np.testing.assert_array_equal(got[name], arr)
    # shard/row locate each item inside its shard file
    for i, r in got_index.iterrows():
        part = np.load(tmp_path / "s" / shards.shard_file("onset", int(r["shard"])))
        np.testing.assert_array_equal(part[int(r["row"])], arrays["onset"][i])


def test_single_shard_is_a_read_only_memory_map(tmp_path: Path) -> None:
    index, arrays = _data()
    shards.write(tmp_path / "s", index, arrays, shard_mb=64)
    _, got = shards.load(tmp_path / "s")
    assert isinstance(got["onset"], np.memmap) and not got["onset"].flags.writeable
    _, copied = shards.load(tmp_path / "s", mmap=False)
    assert not isinstance(copied["onset"], np.memmap)
    np.testing.assert_array_equal(copied["flow"], arrays["flow"])


def test_empty_set_round_trips(tmp_path: Path) -> None:
    index, arrays = _data(0)
    shards.write(tmp_path / "s", index, arrays, shard_mb=1)
    got_index, got = shards.load(tmp_path / "s")
    assert len(got_index) == 0 and got["onset"].shape == (0, 8, 8) and got["flow"].dtype == np.float16


def test_two_writes_give_identical_bytes(tmp_path: Path) -> None:
    index, arrays = _data()
    shards.write(tmp_path / "a", index, arrays, shard_mb=TINY_MB)
    shards.write(tmp_path / "b", index.copy(), {k: v.copy() for k, v in arrays.items()}, shard_mb=TINY_MB)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_rewrite_replaces_the_folder_whole(tmp_path: Path) -> None:
    index, arrays = _data()
    shards.write(tmp_path / "s", index, arrays, shard_mb=TINY_MB)
    shards.write(tmp_path / "s", index.iloc[:2], {k: v[:2] for k, v in arrays.items()}, shard_mb=64)
    assert len(_shard_files(tmp_path / "s", "onset")) == 1
    assert len(shards.load(tmp_path / "s")[0]) == 2


@pytest.mark.parametrize(
    ("array", "position", "damage"),
    [
        ("flow", 2, lambda f: f.write_bytes(f.read_bytes()[:-5])),
        ("onset", 1, lambda f: f.unlink()),
    ],
    ids=["truncated", "missing"],
)
def test_damaged_shard_is_an_error_naming_the_file(tmp_path: Path, array, position, damage) -> None:
    index, arrays = _data()
    shards.write(tmp_path / "s", index, arrays, shard_mb=TINY_MB)
    victim = _shard_files(tmp_path / "s", array)[position]
    damage(victim)
    with pytest.raises(shards.ShardError, match=victim.name):
        shards.load(tmp_path / "s")


@pytest.mark.parametrize(
    "replacement",
    [
        lambda a: a.astype(np.float32),  # wrong dtype
        lambda a: a[:, :, :2],  # wrong trailing shape
        lambda a: a[:-1],  # wrong row count
    ],
    ids=["dtype", "shape", "rows"],
)
def test_shard_not_matching_the_manifest_is_an_error(tmp_path: Path, replacement) -> None:
    index, arrays = _data()
    shards.write(tmp_path / "s", index, arrays, shard_mb=TINY_MB)
    victim = _shard_files(tmp_path / "s", "flow")[0]
    np.save(victim, replacement(np.load(victim)))
    with pytest.raises(shards.ShardError, match=victim.name):
        shards.load(tmp_path / "s")


def test_corrupted_bytes_are_caught_when_read(tmp_path: Path) -> None:
    """A flipped byte keeps length and header: only the manifest's sha256 can tell, and reading checks it."""
    index, arrays = _data()
    shards.write(tmp_path / "s", index, arrays, shard_mb=TINY_MB)
    victim = _shard_files(tmp_path / "s", "onset")[1]  # rows 2 and 3
    raw = bytearray(victim.read_bytes())
    raw[-1] ^= 0xFF
    victim.write_bytes(bytes(raw))
    with pytest.raises(shards.ShardError) as info:
        shards.load(tmp_path / "s")
    message = str(info.value)
    assert str(victim) in message and "sha256" in message
    assert "rows 2, 3 (clips sub02/EP02, sub00/EP03)" in message
    with pytest.raises(shards.ShardError, match=victim.name):
        shards.load(tmp_path / "s", mmap=False)
    _, unchecked = shards.load(tmp_path / "s", verify=False)  # the explicit opt-out still reads it
    assert unchecked["onset"][3].ravel()[-1] != arrays["onset"][3].ravel()[-1]


def test_rows_are_named_compactly() -> None:
    index = pd.DataFrame({"clip_id": [f"c{i}" for i in range(10)]})
    assert shards.items_text(index, np.array([4])) == "row 4 (clip c4)"
    assert shards.items_text(index, np.arange(2, 9)) == "rows 2..8 (clips c2, c3, c4, ... 7 in all)"
    assert shards.items_text(index.drop(columns="clip_id"), np.array([1, 5])) == "rows 1, 5"


def test_index_not_matching_the_manifest_is_an_error(tmp_path: Path) -> None:
    index, arrays = _data()
    shards.write(tmp_path / "s", index, arrays, shard_mb=TINY_MB)
    manifest = json.loads((tmp_path / "s" / shards.MANIFEST).read_text())
    manifest["n_rows"] = 12
    (tmp_path / "s" / shards.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(shards.ShardError, match=shards.INDEX):
        shards.load(tmp_path / "s")


def test_failure_mid_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index, arrays = _data()
    real_save = np.save
    calls = {"n": 0}

    def failing_save(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(np, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        shards.write(tmp_path / "s", index, arrays, shard_mb=TINY_MB)
    assert list(tmp_path.iterdir()) == []


def test_failed_rewrite_keeps_the_previous_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index, arrays = _data()
    shards.write(tmp_path / "s", index, arrays, shard_mb=TINY_MB)
    before = {p.name: p.read_bytes() for p in (tmp_path / "s").iterdir()}
    monkeypatch.setattr(np, "save", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        shards.write(tmp_path / "s", index.iloc[:3], {k: v[:3] for k, v in arrays.items()}, shard_mb=64)
    assert {p.name: p.read_bytes() for p in (tmp_path / "s").iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["s"]


def test_bad_input_is_rejected_before_writing(tmp_path: Path) -> None:
    index, arrays = _data()
    with pytest.raises(ValueError, match="'flow' has 10 rows"):
        shards.write(tmp_path / "s", index, {**arrays, "flow": arrays["flow"][:10]}, shard_mb=1)
    with pytest.raises(ValueError, match="'shard'"):
        shards.write(tmp_path / "s", index.assign(shard=0), arrays, shard_mb=1)
    with pytest.raises(ValueError, match="array name"):
        shards.write(tmp_path / "s", index, {"../x": arrays["onset"]}, shard_mb=1)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------- every file of the folder is listed
def test_index_and_extra_files_are_in_the_manifest_and_checked(tmp_path: Path) -> None:
    """index.parquet steers training (labels, normalisation sums): a changed byte in it must stop the reader, as
    must one in any other file the writer put in the folder."""
    from memix.io import atomic

    index, arrays = _data()
    shards.write(tmp_path / "s", index, arrays, shard_mb=64, files={"stats.json": b'{"a": 1}\n'})
    manifest = json.loads((tmp_path / "s" / shards.MANIFEST).read_text())
    on_disk = {p.name for p in (tmp_path / "s").iterdir()} - {shards.MANIFEST}
    listed = set(manifest["files"]) | {s["file"] for a in manifest["arrays"].values() for s in a["shards"]}
    assert listed == on_disk
    assert manifest["files"][shards.INDEX] == atomic.file_sha256(tmp_path / "s" / shards.INDEX)
    assert shards.read_file(tmp_path / "s", "stats.json") == b'{"a": 1}\n'

    (tmp_path / "s" / "stats.json").write_bytes(b'{"a": 2}\n')
    with pytest.raises(shards.ShardError, match="stats.json: content differs from its sha256"):
        shards.read_file(tmp_path / "s", "stats.json")
    with pytest.raises(shards.ShardError, match="stats.json"):
        shards.load(tmp_path / "s")


def test_a_changed_index_is_caught_when_read(tmp_path: Path) -> None:
    index, arrays = _data()
    shards.write(tmp_path / "s", index, arrays, shard_mb=64)
    changed = pd.read_parquet(tmp_path / "s" / shards.INDEX)
    changed.loc[3, "label_id"] = 4  # still a valid index, only the checksum can tell
    changed.to_parquet(tmp_path / "s" / shards.INDEX, index=False)
    for read in (shards.load, shards.load_index):
        with pytest.raises(shards.ShardError, match="index.parquet: content differs from its sha256"):
            read(tmp_path / "s")


def test_a_folder_of_the_old_format_is_refused_with_the_fix(tmp_path: Path) -> None:
    index, arrays = _data()
    shards.write(tmp_path / "s", index, arrays, shard_mb=64)
    manifest = json.loads((tmp_path / "s" / shards.MANIFEST).read_text())
    manifest["version"] = 1
    del manifest["files"]
    (tmp_path / "s" / shards.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(shards.ShardError, match="format version 1, expected 2; rebuild"):
        shards.load(tmp_path / "s")
