"""SMIC, CAS(ME)^3 and MMEW ingest on hand-made datasets in their real layouts (tiny 8x8 frames), composites of
several datasets, and the published-count check.

Layouts and sheet headers are written out here, not taken from memix.synth, so a wrong layout in the generator
and the same mistake in an adapter cannot agree with each other.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import openpyxl
import pandas as pd
import pytest

from memix.config import DatasetParams
from memix.datasets import ingest
from memix.datasets.published import SYNTH_CREATOR

REPO = Path(__file__).resolve().parents[2]
CASME3_HEADER = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"]
MMEW_HEADER = [
    "Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion", "remarks",
]  # fmt: skip
CASME2_HEADER = [
    "Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units", "Estimated Emotion",
]  # fmt: skip


def _frames(clip_dir: Path, numbers: list[int], name: str) -> None:
    clip_dir.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        assert cv2.imwrite(str(clip_dir / name.format(n)), np.full((8, 8), (n * 37) % 256, np.uint8))


def _save(path: Path, rows: list[list[Any]], title: str = "Sheet1", creator: str | None = None) -> Path:
    book = openpyxl.Workbook()
    book.active.title = title
    for row in rows:
        book.active.append(row)
    if creator:
        book.properties.creator = creator
    book.save(path)
    return path


def _report(out: Path) -> dict[str, Any]:
    return json.loads((out / "ingest_report.json").read_text())


def _fails(params: DatasetParams, out: Path, *needles: str) -> None:
    with pytest.raises(ValueError) as info:
        ingest.run(params, out)
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))
    assert not out.exists() or not any(out.iterdir())


# ---------------------------------------------------------------------------------------------- SMIC
@pytest.fixture()
def smic_root(tmp_path: Path) -> Path:
    """SMIC's release: HS/ and VIS/ side by side, clips in micro/<emotion>/, 6-digit bmp frames, no sheet."""
    root = tmp_path / "SMIC"
    hs = root / "HS"
    _frames(hs / "s1" / "micro" / "negative" / "s1_ne_01", [86219, 86220, 86221, 86222, 86223], "image{:06d}.bmp")
    _frames(hs / "s1" / "micro" / "positive" / "s1_po_01", [1200, 1201, 1203, 1204], "image{:06d}.bmp")  # a gap
    _frames(hs / "s3" / "micro" / "surprise" / "s3_sur_02", [999998, 999999], "image{:06d}.bmp")
    _frames(hs / "s3" / "non_micro" / "s3_x_01", [5, 6], "image{:06d}.bmp")  # not a micro-expression: ignored
    _frames(hs / "s3" / "micro" / "happy" / "s3_ha_01", [1, 2, 3], "image{:06d}.bmp")  # not a SMIC emotion folder
    _frames(root / "VIS" / "s2" / "micro" / "negative" / "s2_ne_01", [10, 11, 12], "image{:06d}.bmp")
    return root


def test_smic_reads_its_folders_and_takes_the_middle_frame_as_apex(smic_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    df = ingest.run(DatasetParams(name="smic", root=str(smic_root), classes="megc3"), out)
    rows = df.set_index("clip_id")[["subject", "label", "label_id", "onset", "apex", "offset", "n_frames"]]
    assert rows.to_dict("index") == {
        "s1/s1_ne_01": {"subject": "s1", "label": "negative", "label_id": 0, "onset": 86219, "apex": 86221,
                        "offset": 86223, "n_frames": 5},
        # frames 1200, 1201, 1203, 1204: the middle of the frames found (natural order), not 1202 (missing)
        "s1/s1_po_01": {"subject": "s1", "label": "positive", "label_id": 1, "onset": 1200, "apex": 1201,
                        "offset": 1204, "n_frames": 4},
        # two frames: the middle frame is the second, never the onset (no onset -> apex motion)
        "s3/s3_sur_02": {"subject": "s3", "label": "surprise", "label_id": 2, "onset": 999998, "apex": 999999,
                         "offset": 999999, "n_frames": 2},
    }  # fmt: skip
    assert df.set_index("clip_id").loc["s1/s1_ne_01", "apex_path"] == "HS/s1/micro/negative/s1_ne_01/image086221.bmp"
    rep = _report(out)
    source = rep["sources"]["smic"]
    assert "no apex annotation" in source["apex"] and "middle frame" in source["apex"] and "(3 clips)" in source["apex"]
    assert source["camera"] == "hs" and source["sheet"]["file"] is None
    assert rep["patched"] == []  # the middle apex is said once, not as a patch per clip
    (dropped,) = rep["dropped"]
    assert dropped["clip"] == "s3/s3_ha_01" and "unknown emotion" in dropped["reason"] and dropped["row"] is None
    assert dropped["folder"].endswith("HS/s3/micro/happy/s3_ha_01")
    assert [(d["clip"], d["expected"], d["found"]) for d in rep["incomplete"]] == [("s1/s1_po_01", 5, 4)]


def test_smic_middle_apex_is_not_a_bad_apex(smic_root: Path, tmp_path: Path) -> None:
    params = DatasetParams(name="smic", root=str(smic_root), classes="3class", on_bad_apex="drop")
    assert len(ingest.run(params, tmp_path / "out")) == 3


def test_smic_camera_and_patches_by_key(smic_root: Path, tmp_path: Path) -> None:
    vis = ingest.run(DatasetParams(name="smic", root=str(smic_root), camera="vis", classes="3class"), tmp_path / "v")
    assert list(vis["clip_id"]) == ["s2/s2_ne_01"] and vis["frame_dir"].iloc[0] == "VIS/s2/micro/negative/s2_ne_01"
    patches = [{"subject": "s1", "filename": "s1_ne_01", "field": "apex", "value": 86222}]
    df = ingest.run(DatasetParams(name="smic", root=str(smic_root), classes="3class", patches=patches), tmp_path / "p")
    assert df.set_index("clip_id").loc["s1/s1_ne_01", "apex"] == 86222
    (patch,) = _report(tmp_path / "p")["patched"]
    assert (patch["clip"], patch["old"], patch["new"], patch["row"]) == ("s1/s1_ne_01", None, 86222, None)


def test_smic_bad_input(smic_root: Path, tmp_path: Path) -> None:
    params = DatasetParams(name="smic", root=str(smic_root), classes="3class")
    _fails(params.model_copy(update={"sheet": "labels.xlsx"}), tmp_path / "a", "SMIC has no coding sheet")
    _fails(params.model_copy(update={"camera": "nir"}), tmp_path / "b", "no folder NIR", str(smic_root))
    empty = smic_root / "HS" / "s1" / "micro" / "negative" / "s1_ne_02"
    empty.mkdir()
    _fails(params, tmp_path / "c", str(empty), "holds no frame images", "on_bad_frame: skip")


# ----------------------------------------------------------------------------------------- CAS(ME)^3
@pytest.fixture()
def casme3_root(tmp_path: Path) -> Path:
    """Part A: spNO.<n>/<letter>/color/{N}.jpg (and depth/), two MEs in recording a, spNo spelling in the sheet."""
    root = tmp_path / "CASME3"
    _frames(root / "spNO.1" / "a" / "color", [*range(10, 16), *range(40, 46)], "{}.jpg")
    _frames(root / "spNO.1" / "a" / "depth", [10, 11], "{}.png")
    _frames(root / "spNO.2" / "b" / "color", [7, 8, 9, 10], "{}.jpg")
    _frames(root / "spNO.2" / "c" / "color", [100, 101, 102], "{}.jpg")
    rows = [
        ["spNO.1", "a", 10, 12, 15, "4+7", "I", "disgust", "Micro-expression"],
        ["spNO.1", "a", 40, 42, 45, 12, "II", "happy", "Micro-expression"],
        ["spNo.2", "b", 7, 8, 10, "1+2", "V", "surprise", "Micro-expression"],
        ["spNo.2", "b", 7, 9, 10, "1+2", "V", "others", "Macro-expression"],
        ["spNO.2", "c", 100, 101, 102, 15, "III", "sad", "Micro-expression"],
    ]
    _save(root / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", [[*CASME3_HEADER, "Expression type"], *rows], "label")
    return root


def test_casme3_several_mes_per_recording_spellings_and_color_folders(casme3_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    df = ingest.run(DatasetParams(name="casme3", root=str(casme3_root), classes="7class"), out)
    got = df.set_index("clip_id")[["subject", "clip", "label", "onset", "apex", "frame_dir"]].to_dict("index")
    assert got == {
        "spNO.1/a#10": {"subject": "spNO.1", "clip": "a", "label": "disgust", "onset": 10, "apex": 12,
                        "frame_dir": "spNO.1/a/color"},
        "spNO.1/a#40": {"subject": "spNO.1", "clip": "a", "label": "happiness", "onset": 40, "apex": 42,
                        "frame_dir": "spNO.1/a/color"},
        "spNO.2/b": {"subject": "spNO.2", "clip": "b", "label": "surprise", "onset": 7, "apex": 8,
                     "frame_dir": "spNO.2/b/color"},
        "spNO.2/c": {"subject": "spNO.2", "clip": "c", "label": "sadness", "onset": 100, "apex": 101,
                     "frame_dir": "spNO.2/c/color"},
    }  # fmt: skip
    (dropped,) = _report(out)["dropped"]
    assert dropped["row"] == 5 and "'Macro-expression' is not a micro-expression" in dropped["reason"]
    three = ingest.run(DatasetParams(name="casme3", root=str(casme3_root), classes="megc3"), tmp_path / "3")
    assert dict(zip(three["clip_id"], three["label"], strict=True)) == {
        "spNO.1/a#10": "negative", "spNO.1/a#40": "positive", "spNO.2/b": "surprise", "spNO.2/c": "negative",
    }  # fmt: skip


def test_casme3_patches_pick_one_me_by_onset(casme3_root: Path, tmp_path: Path) -> None:
    base = {"name": "casme3", "root": str(casme3_root), "classes": "7class"}
    ambiguous = [{"subject": "spNO.1", "filename": "a", "field": "apex", "value": 11}]
    _fails(DatasetParams(**base, patches=ambiguous), tmp_path / "a", "dataset.patches[0]", "matches 2 rows", "onset")
    picked = [{"subject": "spNo.1", "filename": "a", "onset": 40, "field": "apex", "value": 44}]
    df = ingest.run(DatasetParams(**base, patches=picked), tmp_path / "b").set_index("clip_id")
    assert (df.loc["spNO.1/a#10", "apex"], df.loc["spNO.1/a#40", "apex"]) == (12, 44)


def test_casme3_missing_color_folder_names_row_and_field(casme3_root: Path, tmp_path: Path) -> None:
    for frame in (casme3_root / "spNO.2" / "c" / "color").iterdir():
        frame.rename(casme3_root / "spNO.2" / "c" / frame.name)
    (casme3_root / "spNO.2" / "c" / "color").rmdir()
    _fails(
        DatasetParams(name="casme3", root=str(casme3_root), classes="7class"),
        tmp_path / "out",
        "row 6",
        "field Filename",
        "color",
    )


# ---------------------------------------------------------------------------------------------- MMEW
@pytest.fixture()
def mmew_root(tmp_path: Path) -> Path:
    """Micro_Expression/<emotion>/<Filename>/{N}.jpg; the sheet's others live in repression/."""
    root = tmp_path / "MMEW"
    micro = root / "Micro_Expression"
    _frames(micro / "happiness" / "S01-01-001", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], "{}.jpg")
    _frames(micro / "repression" / "S01-07-001", [3, 4, 5], "{}.jpg")
    _frames(micro / "anger" / "S02-03-001", [1, 2, 3], "{}.jpg")
    rows = [
        [1, "S01-01-001", 2, 9, 11, "6+12", "happiness", None],
        [1, "S01-07-001", 3, 4, 5, "14", "others", "stored as repression"],
        [2, "S02-03-001", 1, 2, 3, "4", "anger", None],
    ]
    _save(root / "MMEW_Micro_Exp.xlsx", [MMEW_HEADER, *rows])
    return root


def test_mmew_finds_others_in_the_repression_folder(mmew_root: Path, tmp_path: Path) -> None:
    df = ingest.run(DatasetParams(name="mmew", root=str(mmew_root), classes="7class"), tmp_path / "out")
    got = df.set_index("clip_id")[["subject", "label", "apex", "onset_path"]].to_dict("index")
    assert got == {
        "S01/S01-01-001": {"subject": "S01", "label": "happiness", "apex": 9,
                           "onset_path": "Micro_Expression/happiness/S01-01-001/2.jpg"},
        "S01/S01-07-001": {"subject": "S01", "label": "others", "apex": 4,
                           "onset_path": "Micro_Expression/repression/S01-07-001/3.jpg"},
        "S02/S02-03-001": {"subject": "S02", "label": "anger", "apex": 2,
                           "onset_path": "Micro_Expression/anger/S02-03-001/1.jpg"},
    }  # fmt: skip
    three = ingest.run(DatasetParams(name="mmew", root=str(mmew_root), classes="megc3"), tmp_path / "three")
    assert list(three["label"]) == ["positive", "negative"]
    assert [d["clip"] for d in _report(tmp_path / "three")["dropped"]] == ["S01/S01-07-001"]


def test_mmew_clip_in_two_emotion_folders_is_an_error(mmew_root: Path, tmp_path: Path) -> None:
    _frames(mmew_root / "Micro_Expression" / "fear" / "S02-03-001", [1, 2, 3], "{}.jpg")
    _fails(
        DatasetParams(name="mmew", root=str(mmew_root), classes="7class"),
        tmp_path / "out",
        "MMEW_Micro_Exp.xlsx, row 4",
        "field Filename",
        "anger/S02-03-001, fear/S02-03-001",
    )


# ----------------------------------------------------------------------------------------- composite
@pytest.fixture()
def megc_root(tmp_path: Path, smic_root: Path) -> Path:
    """CASME II, SAMM and SMIC side by side in one folder, as a composite reads them."""
    root = tmp_path / "megc"
    root.mkdir()
    smic_root.rename(root / "SMIC")
    casme = root / "CASME2"
    _frames(casme / "sub01" / "EP01_01", [8, 9, 10], "img{}.jpg")
    _frames(casme / "sub01" / "EP02_01", [5, 6, 7], "img{}.jpg")
    _frames(casme / "sub02" / "EP03_02", [1, 2, 3], "img{}.jpg")
    rows = [
        [1, "EP01_01", None, 8, 9, 10, None, 12, "happiness"],
        [1, "EP02_01", None, 5, 6, 7, None, 4, "disgust"],
        [2, "EP03_02", None, 1, 2, 3, None, "R12", "others"],
    ]
    _save(casme / "CASME2-coding-20140508.xlsx", [CASME2_HEADER, *rows])
    samm = root / "SAMM"
    _frames(samm / "006" / "006_1_2", [100, 101, 102], "006_{:05d}.jpg")
    samm_header = ["Subject", "Filename", "Onset Frame", "Apex Frame", "Offset Frame", "Estimated Emotion"]
    _save(
        samm / "SAMM_Micro_FACS_Codes_v2.xlsx", [["notes"], [None], samm_header, [6, "006_1_2", 100, 101, 102, "Anger"]]
    )
    return root


def _megc(root: Path, **kw: Any) -> DatasetParams:
    sources = [{"name": "casme2", "root": "CASME2"}, {"name": "samm", "root": "SAMM"}, {"name": "smic", "root": "SMIC"}]
    # made-up clip names, not the MEGC 2019 list's: the class rule alone (the list: test_dataset_releases.py)
    base = {"name": "composite", "root": str(root), "sources": sources, "protocol": "classes"}
    return DatasetParams.model_validate({**base, **kw})


def test_composite_namespaces_subjects_and_paths(megc_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    df = ingest.run(_megc(megc_root, classes="megc3"), out)
    assert list(df["clip_id"]) == [
        "casme2/sub01/EP01_01", "casme2/sub01/EP02_01", "samm/006/006_1_2", "smic/s1/s1_ne_01", "smic/s1/s1_po_01",
        "smic/s3/s3_sur_02",
    ]  # fmt: skip
    assert list(df["subject"].unique()) == ["casme2/sub01", "samm/006", "smic/s1", "smic/s3"]
    assert list(df["dataset"]) == ["casme2", "casme2", "samm", "smic", "smic", "smic"]
    for path in df["onset_path"]:  # relative to dataset.root, whatever the source
        assert (megc_root / path).is_file()
    assert list(df["label"]) == ["positive", "negative", "negative", "negative", "positive", "surprise"]
    rep = _report(out)
    assert rep["counts_per_dataset"] == {
        "casme2": {"negative": 1, "positive": 1, "surprise": 0},
        "samm": {"negative": 1, "positive": 0, "surprise": 0},
        "smic": {"negative": 1, "positive": 1, "surprise": 1},
    }
    assert rep["sources"]["samm"]["sheet"]["header_row"] == 3 and rep["subjects"] == 4
    assert {d["dataset"] for d in rep["dropped"]} == {"casme2", "smic"}  # CASME II others, SMIC's "happy" folder


def test_composite_keys_entries_by_source(megc_root: Path, tmp_path: Path) -> None:
    patch = {"subject": 1, "filename": "EP01_01", "field": "apex", "value": 10}
    with pytest.raises(ValueError, match=r"patches\[0\]: a composite needs the entry's source"):
        _megc(megc_root, classes="megc3", patches=[patch])
    exclude = [{"source": "casme2", "subject": 1, "filename": "EP02_01", "reason": "not in the published list"}]
    out = tmp_path / "out"
    df = ingest.run(_megc(megc_root, classes="megc3", patches=[{**patch, "source": "casme2"}], exclude=exclude), out)
    assert df.set_index("clip_id").loc["casme2/sub01/EP01_01", "apex"] == 10
    assert "casme2/sub01/EP02_01" not in set(df["clip_id"])
    rep = _report(out)
    assert [(p["dataset"], p["clip"]) for p in rep["patched"]] == [("casme2", "casme2/sub01/EP01_01")]
    excluded = [d for d in rep["dropped"] if d["reason"].startswith("dataset.exclude")]
    assert [(d["clip"], d["row"], d["reason"]) for d in excluded] == [
        ("casme2/sub01/EP02_01", 3, "dataset.exclude[0]: not in the published list")
    ]


def test_composite_needs_one_class_list(megc_root: Path, tmp_path: Path) -> None:
    _fails(_megc(megc_root, classes="5class"), tmp_path / "a", "no class map", "smic")
    sources = [{"name": "casme2", "root": "CASME2"}, {"name": "samm", "root": "SAMM"}]
    params = DatasetParams(name="composite", root=str(megc_root), sources=sources, classes="5class")
    _fails(params, tmp_path / "b", "different classes", "casme2: happiness", "samm: anger", "megc3")


def test_published_counts_warn_naming_source_and_class(
    megc_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="memix.datasets.ingest"):
        ingest.run(_megc(megc_root, classes="megc3"), out)
    rep = _report(out)
    checks = {(c["scope"], c["item"]): (c["found"], c["published"], c["ok"]) for c in rep["published"]["checks"]}
    assert checks[("casme2", "class negative")] == (1, [88], False)
    assert checks[("smic", "clips")] == (3, [164], False)
    assert checks[("composite", "class surprise")] == (1, [83], False)
    assert checks[("composite", "subjects")] == (4, [68], False)
    assert "samm: class positive has 0, published 26 (SAMM in MEGC 2019)" in rep["warnings"]
    assert "composite: class negative has 3, published 250" in " | ".join(rep["warnings"])
    assert len(rep["warnings"]) == sum(not ok for _, _, ok in checks.values())
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("smic: class surprise has 1, published 43" in m for m in logged)  # on stderr through logging


def test_ingest_stage_prints_the_warnings_on_stderr(megc_root: Path, tmp_path: Path) -> None:
    sources = [{"name": n, "root": r} for n, r in (("casme2", "CASME2"), ("samm", "SAMM"), ("smic", "SMIC"))]
    params = {"dataset": {"name": "composite", "root": str(megc_root), "sources": sources, "classes": "megc3",
                          "protocol": "classes"}}  # fmt: skip
    (tmp_path / "params.yaml").write_text(json.dumps(params))  # JSON is YAML
    stage = [sys.executable, str(REPO / "stages" / "ingest.py"), "--params", str(tmp_path / "params.yaml")]
    done = subprocess.run([*stage, "--out", str(tmp_path / "out")], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "composite: class negative has 3, published 250" in done.stderr
    assert "smic: clips has 3, published 164 (SMIC-HS)" in done.stderr


def test_synthetic_sources_are_not_compared(megc_root: Path, tmp_path: Path) -> None:
    sheet = megc_root / "CASME2" / "CASME2-coding-20140508.xlsx"
    rows = [list(r) for r in openpyxl.load_workbook(sheet).active.iter_rows(values_only=True)]
    _save(sheet, rows, creator=SYNTH_CREATOR)
    (megc_root / "SMIC" / "memix-synth.json").write_text("{}\n")
    rep_dir = tmp_path / "out"
    ingest.run(_megc(megc_root, classes="megc3"), rep_dir)
    rep = _report(rep_dir)
    assert {c["scope"] for c in rep["published"]["checks"]} == {"samm"}  # the one real source
    why = {n["scope"]: n["why"] for n in rep["published"]["not_compared"]}
    assert "written by memix.synth" in why["casme2"] and "memix-synth.json" in why["smic"]
    assert why["composite"] == "not every source is real data"
    assert all(w.startswith("samm:") for w in rep["warnings"])


def test_params_that_cannot_work_are_refused_before_reading(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must be a folder inside dataset.root"):
        DatasetParams(name="composite", root="data/raw", sources=[{"name": "samm", "root": "../SAMM"}])
    with pytest.raises(ValueError, match="camera is a smic setting"):
        DatasetParams(name="samm", camera="vis")
    with pytest.raises(ValueError, match="sources are for name: composite"):
        DatasetParams(name="casme2", sources=[{"name": "samm", "root": "SAMM"}])
    with pytest.raises(ValueError, match="each dataset once"):
        DatasetParams(name="composite", sources=[{"name": "samm", "root": "a"}, {"name": "samm", "root": "b"}])


def test_same_inputs_give_identical_bytes(megc_root: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        ingest.run(_megc(megc_root, classes="megc3"), tmp_path / name)
    for file in ("clips.parquet", "ingest_report.json"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()
    assert len(pd.read_parquet(tmp_path / "a" / "clips.parquet")) == 6
