"""memix.synth writes each quirk of the real releases into a generated layout, and ingest handles each one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from memix.config import DatasetParams
from memix.datasets import ingest
from memix.synth import quirks


def _copy(tiny_layouts_root: Path, layout: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_layouts_root / layout, tmp_path / layout))


def _report(out: Path) -> dict:
    return json.loads((out / "ingest_report.json").read_text())


def test_apex_at_onset_is_reported_and_patched(tiny_layouts_root: Path, tmp_path: Path) -> None:
    root = _copy(tiny_layouts_root, "casme2", tmp_path)
    changed = quirks.apex_at_onset(root, row=0)
    df = ingest.run(DatasetParams(name="casme2", root=str(root)), tmp_path / "out").set_index("clip_id")
    clip = f"sub{changed['subject']:02d}/{changed['filename']}"
    assert [z["clip"] for z in _report(tmp_path / "out")["zero_motion"]] == [clip]
    assert df.loc[clip, "onset"] == changed["onset"] < df.loc[clip, "apex"] <= df.loc[clip, "offset"]
    dropped = ingest.run(DatasetParams(name="casme2", root=str(root), on_bad_apex="drop"), tmp_path / "drop")
    assert clip not in set(dropped["clip_id"]) and len(dropped) == len(df) - 1


def test_upper_case_filename_and_the_me_clip_package(tiny_layouts_root: Path, tmp_path: Path) -> None:
    root = _copy(tiny_layouts_root, "casme3", tmp_path)
    params = DatasetParams(name="casme3", root=str(root), classes="7class")
    clean = ingest.run(params, tmp_path / "clean")
    changed = quirks.uppercase_filename(root, row=0)
    upper = ingest.run(params, tmp_path / "upper")
    loose = _report(tmp_path / "upper")["folders_matched_ignoring_case"]
    assert changed["new"] != changed["old"] and {f["filename"] for f in loose} == {changed["new"]}
    assert list(upper["frame_dir"]) == list(clean["frame_dir"])

    written = quirks.casme3_clip_package(root)
    assert not list(root.glob("spNO.*")) and len(written) == len(clean)
    package = ingest.run(params, tmp_path / "package")
    same = ["onset", "apex", "offset", "n_frames", "label"]
    assert package[same].equals(upper[same])
    assert package["frame_dir"].str.startswith(quirks.CLIP_PACKAGE + "/").all()


def test_smic_cropped_release_with_an_empty_folder(tiny_layouts_root: Path, tmp_path: Path) -> None:
    root = _copy(tiny_layouts_root, "smic", tmp_path)
    params = {"name": "smic", "root": str(root), "classes": "megc3"}
    clean = ingest.run(DatasetParams(**params), tmp_path / "clean")
    assert quirks.smic_cropped(root) > 0 and not list(root.glob("HS/*/micro/*/*/image*.bmp"))
    empty = quirks.empty_smic_folder(root, index=0)
    with pytest.raises(ingest.IngestError, match=f"{empty}.*holds no frame images"):
        ingest.run(DatasetParams(**params), tmp_path / "out")
    skipped = ingest.run(DatasetParams(**params, on_bad_frame="skip"), tmp_path / "skip")
    assert len(skipped) == len(clean) - 1 and empty.name not in set(skipped["clip"])
    assert skipped["apex_path"].str.contains("/reg_image").all()
