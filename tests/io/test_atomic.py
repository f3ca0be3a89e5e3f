"""Atomic writes: a failure leaves neither the target nor temp leftovers; success replaces whole folders."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from memix.io import atomic


def test_failure_inside_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic.atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "half.bin").write_bytes(b"x")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_folder_is_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "stale.txt").write_text("old")
    with atomic.atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_writing_nothing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="nothing was written"):
        with atomic.atomic_path(tmp_path / "f.txt"):
            pass


def test_json_and_parquet_bytes_are_deterministic(tmp_path: Path) -> None:
    df = pd.DataFrame({"clip_id": ["a", "b"], "x": [1.5, 2.5]})
    for name in ("a", "b"):
        atomic.write_parquet(tmp_path / name / "t.parquet", df)
        atomic.write_json(tmp_path / name / "t.json", {"z": 1, "a": [1, 2]})
    for f in ("t.parquet", "t.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "a" / "t.parquet"), df)
