"""The generated folder: CASME II layout, sheet agrees with the frames, byte-identical per seed, atomic."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import cv2
import pandas as pd
import pytest

from memix.config import SynthParams
from memix.synth import render
from memix.synth.build import SHEET_FILE, generate
from memix.synth.classes import EMOTIONS, class_counts
from memix.synth.plan import plan_dataset


def _digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*.jpg")} | {
        SHEET_FILE: hashlib.sha256((root / SHEET_FILE).read_bytes()).hexdigest()
    }


def test_layout_and_sheet_agree(tiny_synth_root: Path, tiny_synth_params: SynthParams) -> None:
    df = pd.read_excel(tiny_synth_root / SHEET_FILE)
    assert list(df.columns)[:3] == ["Subject", "Filename", "Unnamed: 2"]
    assert len(df) == tiny_synth_params.clips
    assert set(df["Estimated Emotion"]) == set(EMOTIONS)
    assert df["Estimated Emotion"].value_counts().to_dict() == class_counts(tiny_synth_params.clips)
    clip_dirs = sorted(p.relative_to(tiny_synth_root).as_posix() for p in tiny_synth_root.glob("sub*/*"))
    assert clip_dirs == sorted(f"sub{s:02d}/{f}" for s, f in zip(df["Subject"], df["Filename"], strict=True))
    for row in df.itertuples():
        folder = tiny_synth_root / f"sub{row.Subject:02d}" / row.Filename
        names = sorted(p.name for p in folder.iterdir())
        assert all(re.fullmatch(r"img[1-9]\d*\.jpg", n) for n in names), names  # absolute, never zero-padded
        numbers = sorted(int(n[3:-4]) for n in names)
        assert numbers == list(range(row.OnsetFrame, row.OffsetFrame + 1))
        assert row.OnsetFrame < row.ApexFrame < row.OffsetFrame
    frame = cv2.imread(str(next(tiny_synth_root.glob("sub01/*/img*.jpg"))))
    assert frame.shape == (tiny_synth_params.frame_size, tiny_synth_params.frame_size, 3)


def test_sheet_aus_are_the_applied_ones(tiny_synth_root: Path, tiny_synth_params: SynthParams) -> None:
    df = pd.read_excel(tiny_synth_root / SHEET_FILE)
    planned = {(c.subject, c.filename): (c.action_units, c.emotion) for c in plan_dataset(tiny_synth_params)}
    read = {
        (int(s), f): (str(a), e)
        for s, f, a, e in zip(df["Subject"], df["Filename"], df["Action Units"], df["Estimated Emotion"], strict=True)
    }
    assert read == planned


def test_same_seed_same_bytes_other_seed_other_bytes(
    tiny_synth_root: Path, tiny_synth_params: SynthParams, face_model_path: Path, tmp_path: Path
) -> None:
    again = tmp_path / "again"
    generate(tiny_synth_params, again, face_model_path)
    assert _digests(again) == _digests(tiny_synth_root)
    small = tiny_synth_params.model_copy(update={"clips": 5, "subjects": 2})
    a, b = tmp_path / "a", tmp_path / "b"
    generate(small, a, face_model_path)
    generate(small.model_copy(update={"seed": 1}), b, face_model_path)
    da, db = _digests(a), _digests(b)
    assert da[SHEET_FILE] != db[SHEET_FILE]
    assert not set(da.items()) & set(db.items())


def test_failure_leaves_no_partial_dataset(
    tiny_synth_params: SynthParams, face_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    real = render.render_clip

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr("memix.synth.build.render_clip", failing)
    out = tmp_path / "synthetic"
    with pytest.raises(RuntimeError, match="disk full"):
        generate(tiny_synth_params.model_copy(update={"clips": 5, "subjects": 2}), out, face_model_path)
    assert list(tmp_path.iterdir()) == []


def test_missing_face_model_is_named(tiny_synth_params: SynthParams, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere.task"):
        generate(tiny_synth_params, tmp_path / "out", tmp_path / "nowhere.task")
    assert not (tmp_path / "out").exists()
