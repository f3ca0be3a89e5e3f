"""dataset.apex and on_bad_apex at ingest: which frame each clip's apex is and how the clip index says it was
chosen (apex_source), on the tiny synthetic set with one apex annotated at its onset, and on SMIC (no apex)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from memix.config import DatasetParams
from memix.datasets import ingest
from memix.datasets.schema import APEX_SOURCES, validate_clip_index
from memix.synth import quirks


@pytest.fixture()
def bad_root(tiny_synth_root: Path, tmp_path: Path) -> tuple[Path, str]:
    """The tiny synthetic set with its first row's apex annotated at the onset; that clip's id."""
    root = tmp_path / "synthetic"
    shutil.copytree(tiny_synth_root, root)
    changed = quirks.apex_at_onset(root, row=0)
    return root, f"sub{int(changed['subject']):02d}/{changed['filename']}"


def _run(root: Path, out: Path, **kw) -> tuple[pd.DataFrame, dict]:
    df = ingest.run(DatasetParams(root=str(root), **kw), out)
    return df.set_index("clip_id"), json.loads((out / "ingest_report.json").read_text())


def _middle(df: pd.DataFrame) -> pd.Series:
    """The middle frame of each clip (the synthetic clips have every frame onset..offset)."""
    return df["onset"] + (df["offset"] - df["onset"]) // 2


def test_each_setting_picks_its_frame_and_says_so(tiny_synth_root: Path, tmp_path: Path) -> None:
    annotated, rep = _run(tiny_synth_root, tmp_path / "a")
    assert set(annotated["apex_source"]) == {"annotated"}
    assert (annotated["apex"] == annotated["apex_annotated"]).all()
    assert rep["apex"] == {"setting": "annotated", "clips_by_source": {**dict.fromkeys(APEX_SOURCES, 0),
                                                                         "annotated": len(annotated)}}  # fmt: skip
    middle, rep = _run(tiny_synth_root, tmp_path / "m", apex="middle")
    spotted, _ = _run(tiny_synth_root, tmp_path / "s", apex="spotted")
    for df, source in ((middle, "middle"), (spotted, "spotted")):
        assert list(df.index) == list(annotated.index)  # the same clips, whatever the apex
        assert set(df["apex_source"]) == {source}
        assert (df["apex"] == _middle(df)).all()  # spotted: the middle frame stands in until the faces stage
        assert (df["apex_annotated"] == annotated["apex_annotated"]).all()  # the sheet's apex is kept
        assert all(p.endswith(f"img{a}.jpg") for p, a in zip(df["apex_path"], df["apex"], strict=True))
        other = [c for c in df.columns if c not in ("apex", "apex_path", "apex_source")]
        pd.testing.assert_frame_equal(df[other], annotated[other])  # nothing else differs
    assert (annotated["apex"] != _middle(annotated)).any()  # else the test above proves nothing
    assert rep["on_bad_apex"] == "patch"


@pytest.mark.parametrize(
    ("apex", "on_bad_apex", "bad_source", "others"),
    [
        ("annotated", "patch", "patched", "annotated"),
        ("annotated", "spot", "spotted", "annotated"),
        ("middle", "spot", "middle", "middle"),
        ("spotted", "patch", "spotted", "spotted"),
    ],
)
def test_an_impossible_apex_per_on_bad_apex(
    bad_root: tuple[Path, str], tmp_path: Path, apex: str, on_bad_apex: str, bad_source: str, others: str
) -> None:
    root, bad = bad_root
    df, rep = _run(root, tmp_path / "out", apex=apex, on_bad_apex=on_bad_apex)
    assert df.loc[bad, "apex_source"] == bad_source
    assert df.loc[bad, "apex_annotated"] == df.loc[bad, "onset"]  # recorded as the sheet has it
    assert df.loc[bad, "apex"] > df.loc[bad, "onset"]  # never the onset itself
    assert set(df.drop(index=bad)["apex_source"]) == {others}
    (patch,) = rep["patched"]
    assert patch["clip"] == bad and f"on_bad_apex: {on_bad_apex}" in patch["reason"]
    assert ("to be spotted by the faces stage" in patch["reason"]) == (bad_source == "spotted")
    (zero,) = rep["zero_motion"]
    assert zero["clip"] == bad and zero["action"] == on_bad_apex


@pytest.mark.parametrize("apex", ["annotated", "middle", "spotted"])
def test_drop_drops_the_clip_under_every_apex_setting(bad_root: tuple[Path, str], tmp_path: Path, apex: str) -> None:
    root, bad = bad_root
    df, rep = _run(root, tmp_path / "out", apex=apex, on_bad_apex="drop")
    assert bad not in df.index and [d["clip"] for d in rep["dropped"]] == [bad]


def _smic(tmp_path: Path) -> Path:
    root = tmp_path / "SMIC"
    for clip, numbers in (("s1_ne_01", [10, 11, 12, 13, 14]), ("s1_ne_02", [40, 41, 42])):
        folder = root / "HS" / "s1" / "micro" / "negative" / clip
        folder.mkdir(parents=True)
        for n in numbers:
            assert cv2.imwrite(str(folder / f"image{n:06d}.bmp"), np.full((8, 8), n, np.uint8))
    return root


def test_smic_has_no_apex_so_it_is_spotted_unless_middle_is_asked_for(tmp_path: Path) -> None:
    root = _smic(tmp_path)
    df, rep = _run(root, tmp_path / "d", name="smic", classes="3class")
    assert df["apex_source"].tolist() == ["spotted", "spotted"] and df["apex"].tolist() == [12, 41]
    assert df["apex_annotated"].isna().all() and rep["patched"] == []
    assert "spotted by the faces stage" in rep["sources"]["smic"]["apex"]
    df, rep = _run(root, tmp_path / "m", name="smic", classes="3class", apex="middle")
    assert df["apex_source"].tolist() == ["middle", "middle"] and df["apex"].tolist() == [12, 41]
    assert "spotted" not in rep["sources"]["smic"]["apex"] and "middle frame" in rep["sources"]["smic"]["apex"]


def test_an_index_without_apex_columns_reads_as_annotated_and_a_wrong_source_is_refused(
    tiny_synth_root: Path, tmp_path: Path
) -> None:
    df = ingest.run(DatasetParams(root=str(tiny_synth_root)), tmp_path / "out")
    old = validate_clip_index(df.drop(columns=["apex_annotated", "apex_source"]))
    assert (old["apex_source"] == "annotated").all() and (old["apex_annotated"] == old["apex"]).all()
    bad = df.assign(apex_source=["annotated"] * (len(df) - 1) + ["guessed"])
    with pytest.raises(ValueError, match=rf"here: apex_source of clip {df['clip_id'].iloc[-1]} is 'guessed'"):
        validate_clip_index(bad, source="here")


def test_the_middle_frame_of_a_two_frame_clip_is_its_second_not_its_onset(tiny_synth_root: Path,
                                                                            tmp_path: Path) -> None:
    """(len - 1) // 2 is the onset for two frames: a flow of nothing; the apex must come after the onset."""
    root = tmp_path / "synthetic"
    shutil.copytree(tiny_synth_root, root)
    first = _run(root, tmp_path / "before")[0].iloc[0]
    clip_dir = root / str(first["frame_dir"])
    onset = int(first["onset"])
    for frame in clip_dir.glob("img*.jpg"):
        if int(frame.stem[3:]) > onset + 1:
            frame.unlink()
    subject, filename = str(first.name).split("/")
    patch = {"subject": subject, "filename": filename, "field": "offset", "value": onset + 1}
    for apex in ("middle", "spotted"):
        df, _ = _run(root, tmp_path / apex, apex=apex, patches=[patch])
        assert df.loc[first.name, "apex"] == onset + 1, apex
