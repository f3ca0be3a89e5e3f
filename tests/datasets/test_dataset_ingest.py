"""Ingest end to end on hand-made datasets in the real CASME II and SAMM layouts (tiny 8x8 frames).

Each test builds the coding sheet with openpyxl the way the released sheets look (CASME II's blank columns
and "/" apex; SAMM's notes rows above the header, 5-digit frame numbers, "Other"/"Others") and checks the
clip index row by row, the report, and that bad input stops with an error naming sheet, row and field.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import openpyxl
import pandas as pd
import pytest
from test_frames_strict import JPEG_DAMAGE  # this folder's: one damaged JPEG per kind libjpeg reports

from memix.config import DatasetParams
from memix.datasets import ingest
from memix.datasets.schema import APEX_COLUMNS, CLIP_COLUMNS

# Written out here, not imported from memix.synth.sheet: the adapter must read CASME II's real header, and a
# shared constant would let a wrong header in the generator and in the reader agree with each other.
CASME_HEADER = [
    "Subject",
    "Filename",
    None,
    "OnsetFrame",
    "ApexFrame",
    "OffsetFrame",
    None,
    "Action Units",
    "Estimated Emotion",
]
SAMM_HEADER = [
    "Subject",
    "Filename",
    "Inducement Code",
    "Onset Frame",
    "Apex Frame",
    "Offset Frame",
    "Duration",
    "Type",
    "Action Units",
    "Estimated Emotion",
    "Objective Classes",
    "Notes",
]

REPO = Path(__file__).resolve().parents[2]


def _frames(clip_dir: Path, numbers: list[int], name: str = "img{}.jpg") -> None:
    clip_dir.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        image = np.full((8, 8), (n * 37) % 256, np.uint8)
        assert cv2.imwrite(str(clip_dir / name.format(n)), image)


def _save(path: Path, rows: list[list[Any]]) -> Path:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    book.save(path)
    return path


# (Subject, Filename, Onset, Apex, Offset, AUs, Emotion) in sheet order; Excel rows 2.. under the header
CASME_ROWS: list[tuple[Any, ...]] = [
    (1, "EP01_01", 8, 10, 12, 12, "happiness"),
    (1, "EP02_01f", 98, "/", 101, "4+L10", "repression"),
    (2, "EP03_02", 5, 6, 7, "R12", "disgust"),
    (2, "EP04_01", 1, 2, 3, 1, "fear"),
    (2, "EP05_01", 1, 2, 3, 1, "angry"),
    (1, "EP06_01", 9, 10, 100, "L1+L2", "Others"),
    (1, "EP07_03", 9, 50, 12, 14, "surprise"),
]


def _casme_sheet(
    root: Path, rows: list[tuple[Any, ...]], name: str = "CASME2-coding-test.xlsx", header: list[Any] | None = None
) -> Path:
    body = [[s, f, None, on, ap, off, None, au, emo] for s, f, on, ap, off, au, emo in rows]
    return _save(root / name, [header or CASME_HEADER, *body])


@pytest.fixture()
def casme_root(tmp_path: Path) -> Path:
    """CASME II layout: sub01 as ``sub01``, sub02 as a bare ``02`` folder holding ``reg_img`` crops."""
    root = tmp_path / "CASME2"
    _frames(root / "sub01" / "EP01_01", [8, 9, 10, 11, 12])
    _frames(root / "sub01" / "EP02_01f", [98, 99, 100, 101])
    _frames(root / "02" / "EP03_02", [5, 6, 7], name="reg_img{}.jpg")
    _frames(root / "02" / "EP04_01", [1, 2, 3])
    _frames(root / "02" / "EP05_01", [1, 2, 3])
    _frames(root / "sub01" / "EP06_01", [7, 9, 10, 100, 101])  # frames outside [onset, offset] too
    _frames(root / "sub01" / "EP07_03", [9, 10, 11, 12])
    _casme_sheet(root, CASME_ROWS)
    return root


def _params(root: Path, **kw: Any) -> DatasetParams:
    return DatasetParams.model_validate({"name": "casme2", "root": str(root), **kw})


def _report(out: Path) -> dict[str, Any]:
    return json.loads((out / "ingest_report.json").read_text())


def _row(
    subject: str,
    clip: str,
    onset: int,
    apex: int,
    offset: int,
    n: int,
    emotion: str,
    label: str,
    label_id: int,
    aus: str,
    frame_dir: str,
    onset_file: str,
    apex_file: str,
    dataset: str = "casme2",
) -> dict:
    return {
        "dataset": dataset,
        "subject": subject,
        "clip": clip,
        "clip_id": f"{subject}/{clip}",
        "onset": onset,
        "apex": apex,
        "offset": offset,
        "n_frames": n,
        "emotion": emotion,
        "label": label,
        "label_id": label_id,
        "action_units": aus,
        "frame_dir": frame_dir,
        "onset_path": f"{frame_dir}/{onset_file}",
        "apex_path": f"{frame_dir}/{apex_file}",
    }


def test_casme2_index_row_by_row(casme_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "interim"
    df = ingest.run(_params(casme_root), out)
    written = pd.read_parquet(out / "clips.parquet")
    pd.testing.assert_frame_equal(written, df, check_dtype=False)
    assert list(written.columns) == list(CLIP_COLUMNS) + list(APEX_COLUMNS)
    expected = [
        _row(
            "sub01",
            "EP01_01",
            8,
            10,
            12,
            5,
            "happiness",
            "happiness",
            0,
            "12",
            "sub01/EP01_01",
            "img8.jpg",
            "img10.jpg",
        ),
        # apex "/" -> the middle of frames 98..101
        _row(
            "sub01",
            "EP02_01f",
            98,
            99,
            101,
            4,
            "repression",
            "repression",
            1,
            "4+L10",
            "sub01/EP02_01f",
            "img98.jpg",
            "img99.jpg",
        ),
        # frames 7 and 101 lie outside [9, 100]: not counted
        _row(
            "sub01", "EP06_01", 9, 10, 100, 3, "Others", "others", 4, "L1+L2", "sub01/EP06_01", "img9.jpg", "img10.jpg"
        ),
        # apex 50 outside [9, 12] -> middle frame in natural order (9, 10, 11, 12) is 10, not 11
        _row(
            "sub01", "EP07_03", 9, 10, 12, 4, "surprise", "surprise", 3, "14", "sub01/EP07_03", "img9.jpg", "img10.jpg"
        ),
        _row(
            "sub02", "EP03_02", 5, 6, 7, 3, "disgust", "disgust", 2, "R12", "02/EP03_02", "reg_img5.jpg", "reg_img6.jpg"
        ),
    ]
    assert written[list(CLIP_COLUMNS)].to_dict("records") == expected
    # the sheet's apex as written ("/" is none) and how each apex was chosen: the two impossible ones patched
    assert [None if pd.isna(v) else v for v in written["apex_annotated"]] == [10, None, 10, 50, 6]
    assert written["apex_source"].tolist() == ["annotated", "patched", "annotated", "patched", "annotated"]
    for rec in expected:  # every path in the index points at a real frame under the root
        assert (casme_root / rec["onset_path"]).is_file() and (casme_root / rec["apex_path"]).is_file()

    rep = _report(out)
    sheet = casme_root / "CASME2-coding-test.xlsx"
    assert rep["sources"]["casme2"]["sheet"]["file"] == sheet.name
    assert rep["sources"]["casme2"]["sheet"]["sha256"] == hashlib.sha256(sheet.read_bytes()).hexdigest()
    assert rep["class_names"] == ["happiness", "repression", "disgust", "surprise", "others"]
    assert rep["counts_per_class"] == {"happiness": 1, "repression": 1, "disgust": 1, "surprise": 1, "others": 1}
    assert rep["counts_per_subject"] == {"sub01": 4, "sub02": 1}
    dropped = {(d["clip"], d["row"]): d["reason"] for d in rep["dropped"]}
    assert set(dropped) == {("sub02/EP04_01", 5), ("sub02/EP05_01", 6)}
    assert "excluded" in dropped[("sub02/EP04_01", 5)] and "'fear'" in dropped[("sub02/EP04_01", 5)]
    assert "unknown emotion" in dropped[("sub02/EP05_01", 6)] and "'angry'" in dropped[("sub02/EP05_01", 6)]
    patched = {(p["clip"], p["row"], p["field"]): (p["old"], p["new"]) for p in rep["patched"]}
    assert patched == {("sub01/EP02_01f", 3, "apex"): ("/", 99), ("sub01/EP07_03", 8, "apex"): (50, 10)}
    # kept, but the user is told the range has holes
    assert [(d["clip"], d["expected"], d["found"]) for d in rep["incomplete"]] == [("sub01/EP06_01", 92, 3)]


def test_casme2_three_class_map(casme_root: Path, tmp_path: Path) -> None:
    df = ingest.run(_params(casme_root, classes="3class"), tmp_path / "out")
    got = dict(zip(df["clip_id"], zip(df["label"], df["label_id"], strict=True), strict=True))
    assert got == {
        "sub01/EP01_01": ("positive", 1),
        "sub01/EP02_01f": ("negative", 0),
        "sub01/EP07_03": ("surprise", 2),
        "sub02/EP03_02": ("negative", 0),
    }
    rep = _report(tmp_path / "out")
    assert rep["counts_per_class"] == {"negative": 2, "positive": 1, "surprise": 1}
    assert {d["clip"] for d in rep["dropped"]} == {"sub01/EP06_01", "sub02/EP04_01", "sub02/EP05_01"}


def test_bad_apex_dropped_when_asked(casme_root: Path, tmp_path: Path) -> None:
    df = ingest.run(_params(casme_root, on_bad_apex="drop"), tmp_path / "out")
    assert "sub01/EP02_01f" not in set(df["clip_id"]) and "sub01/EP07_03" not in set(df["clip_id"])
    rep = _report(tmp_path / "out")
    reasons = {d["clip"]: d["reason"] for d in rep["dropped"]}
    assert "'/' is not a frame number" in reasons["sub01/EP02_01f"]
    assert "apex 50 outside [onset 9, offset 12]" in reasons["sub01/EP07_03"]
    assert rep["patched"] == []


def test_patches_from_params_are_keyed_by_subject_and_filename(casme_root: Path, tmp_path: Path) -> None:
    patches = [
        {"subject": 1, "filename": "EP02_01f", "field": "apex", "value": 100},
        {"subject": "sub02", "filename": "EP04_01", "field": "emotion", "value": "surprise"},
    ]
    df = ingest.run(_params(casme_root, patches=patches), tmp_path / "out").set_index("clip_id")
    assert df.loc["sub01/EP02_01f", "apex"] == 100
    assert df.loc["sub02/EP04_01", "label"] == "surprise"
    rep = _report(tmp_path / "out")
    patched = {(p["clip"], p["field"]): (p["row"], p["old"], p["new"]) for p in rep["patched"]}
    assert patched[("sub01/EP02_01f", "apex")] == (3, "/", 100)
    assert patched[("sub02/EP04_01", "emotion")] == (5, "fear", "surprise")
    assert all("dataset.patches" in p["reason"] for p in rep["patched"] if p["clip"] != "sub01/EP07_03")

    bad = [{"subject": 3, "filename": "EP02_01f", "field": "apex", "value": 100}]
    with pytest.raises(ingest.IngestError, match=r"dataset.patches\[0\].*matches 0 rows"):
        ingest.run(_params(casme_root, patches=bad), tmp_path / "out2")


def test_same_inputs_give_identical_bytes(casme_root: Path, tmp_path: Path) -> None:
    ingest.run(_params(casme_root), tmp_path / "a")
    ingest.run(_params(casme_root), tmp_path / "b")
    for name in ("clips.parquet", "ingest_report.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_sheet_null_picks_the_single_xlsx_and_lists_candidates_otherwise(casme_root: Path, tmp_path: Path) -> None:
    assert len(ingest.run(_params(casme_root, sheet=None), tmp_path / "a")) == 5
    _casme_sheet(casme_root, CASME_ROWS, name="CASME2-coding-other.xlsx")
    with pytest.raises(ValueError, match="CASME2-coding-other.xlsx, CASME2-coding-test.xlsx"):
        ingest.run(_params(casme_root, sheet=None), tmp_path / "b")
    assert len(ingest.run(_params(casme_root, sheet="CASME2-coding-test.xlsx"), tmp_path / "c")) == 5


def test_repeated_filename_gets_onset_suffix_and_notes_rows_are_reported(casme_root: Path, tmp_path: Path) -> None:
    rows = [
        (1, "EP01_01", 8, 9, 10, 12, "happiness"),
        (1, "EP01_01", 11, 11, 12, 12, "surprise"),  # a second ME in the same take
        ("Total: 2 clips", None, None, None, None, None, None),
    ]
    _casme_sheet(casme_root, rows)
    df = ingest.run(_params(casme_root), tmp_path / "out")
    assert list(df["clip_id"]) == ["sub01/EP01_01#8", "sub01/EP01_01#11"]
    assert list(df["clip"]) == ["EP01_01", "EP01_01"]
    dropped = _report(tmp_path / "out")["dropped"]
    assert [(d["row"], d["subject"]) for d in dropped] == [(4, "Total: 2 clips")]
    assert "no Filename" in dropped[0]["reason"]

    _casme_sheet(casme_root, [rows[0], rows[0]])
    _assert_fails(_params(casme_root), tmp_path / "dup", "more than one row", "sub01/EP01_01#8")


def test_unreadable_subject_names_row_and_field(casme_root: Path, tmp_path: Path) -> None:
    _casme_sheet(casme_root, [CASME_ROWS[0], ("first", "EP01_01", 8, 10, 12, 12, "happiness")])
    _assert_fails(_params(casme_root), tmp_path / "out", "row 3", "field Subject", "'first'")


# ----------------------------------------------------------------------------------------- bad input
def _assert_fails(params: DatasetParams, out: Path, *needles: str) -> None:
    """The run raises with every needle in the message and leaves neither output behind."""
    with pytest.raises(ValueError) as info:
        ingest.run(params, out)
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))
    assert not (out / "clips.parquet").exists() and not (out / "ingest_report.json").exists()
    assert not out.exists() or not any(out.iterdir())  # no temp leftovers either


def test_missing_sheet(casme_root: Path, tmp_path: Path) -> None:
    _assert_fails(
        _params(casme_root, sheet="CASME2-coding-20140508.xlsx"),
        tmp_path / "out",
        str(casme_root / "CASME2-coding-20140508.xlsx"),
        "not found",
    )


def test_sheet_without_a_required_column(casme_root: Path, tmp_path: Path) -> None:
    header = [h if h != "ApexFrame" else None for h in CASME_HEADER]
    sheet = _casme_sheet(casme_root, CASME_ROWS, header=header)
    _assert_fails(_params(casme_root), tmp_path / "out", str(sheet), "header row 1", "apex")


@pytest.mark.parametrize(("frame", "field"), [("img8.jpg", "OnsetFrame"), ("img10.jpg", "ApexFrame")])
@pytest.mark.parametrize(
    ("damage", "needles"),
    [
        (Path.unlink, ("CASME2-coding-test.xlsx, row 2", "sub01/EP01_01", "no image for frame")),
        (lambda path: path.write_bytes(b"this is not a jpeg"), ("row 2", "cannot decode", "{path}")),
    ],
    ids=["missing", "unreadable"],
)
def test_missing_or_unreadable_onset_or_apex_frame(
    casme_root: Path, tmp_path: Path, damage, needles: tuple[str, ...], frame: str, field: str
) -> None:
    """A deleted or undecodable onset/apex frame is an error naming the row, the field (and the file)."""
    path = casme_root / "sub01" / "EP01_01" / frame
    damage(path)
    expected = [needle.replace("{path}", str(path)) for needle in needles]
    _assert_fails(_params(casme_root), tmp_path / "out", *expected, f"field {field}")


def test_missing_clip_folder(casme_root: Path, tmp_path: Path) -> None:
    rows = [*CASME_ROWS, (2, "EP09_09", 1, 2, 3, 1, "disgust")]
    _casme_sheet(casme_root, rows)
    _assert_fails(_params(casme_root), tmp_path / "out", "row 9", "field Filename", "EP09_09", "not found")


@pytest.mark.parametrize("filename", ["..", "../../etc", "/etc/passwd", "..\\..\\x", "C:\\data"])
def test_filename_that_leaves_the_root_is_rejected(casme_root: Path, tmp_path: Path, filename: str) -> None:
    _casme_sheet(casme_root, [CASME_ROWS[0], (1, filename, 8, 10, 12, 12, "happiness")])
    _assert_fails(_params(casme_root), tmp_path / "out", "row 3", "field Filename", "dataset root")


def test_nothing_left_is_an_error(casme_root: Path, tmp_path: Path) -> None:
    _casme_sheet(casme_root, [(2, "EP04_01", 1, 2, 3, 1, "fear"), (2, "EP05_01", 1, 2, 3, 1, "angry")])
    _assert_fails(_params(casme_root), tmp_path / "out", "no clips left", "2 rows")


def test_offset_before_onset_names_row_and_field(casme_root: Path, tmp_path: Path) -> None:
    _casme_sheet(casme_root, [(1, "EP01_01", 12, 10, 8, 12, "happiness")])
    _assert_fails(_params(casme_root), tmp_path / "out", "row 2", "field OffsetFrame", "before onset")


def test_ingest_stage_writes_outputs_and_reports_errors(casme_root: Path, tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(f"dataset:\n  name: casme2\n  root: {casme_root}\n")
    stage = [sys.executable, str(REPO / "stages" / "ingest.py"), "--params", str(params), "--out"]
    ok = subprocess.run([*stage, str(tmp_path / "ok")], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    assert len(pd.read_parquet(tmp_path / "ok" / "clips.parquet")) == 5
    (casme_root / "sub01" / "EP01_01" / "img8.jpg").unlink()
    bad = subprocess.run([*stage, str(tmp_path / "bad")], capture_output=True, text=True, check=False)
    assert bad.returncode == 1
    assert "stage ingest: error:" in bad.stderr and "row 2" in bad.stderr
    assert not (tmp_path / "bad").exists()


# ---------------------------------------------------------------------------------------------- SAMM
SAMM_NOTES = [
    ["SAMM Micro-Movement Dataset FACS codes"],
    ["Version 2"],
    [None],
    ["Notes:"],
    ["Onset, Apex and Offset are frame numbers"],
    ["-1 means no apex was coded"],
    [None],
    [None],
    ["Inducement codes refer to the stimuli"],
    [None],
    ["Type: Micro - 1/2"],
    [None],
    [None],
]
# (Subject, Filename, Onset, Apex, Offset, Emotion) -> Excel rows 15..
SAMM_ROWS: list[tuple[Any, ...]] = [
    (6, "006_1_2", 9998, 10000, 10001, "Anger"),
    (6, "006_1_3", 1230, 1232, 1234, "Others"),
    ("007", "007_3_1", 200, 201, 202, "Contempt"),
    (7, "007_5_2", 50, -1, 52, "Happiness"),
    (6, "006_2_1", 300, 301, 302, "Disgust"),
    (7, "007_6_1", 400, 401, 402, "Other"),
    (7, "007_7_1", 500, 501, 502, "Surprise"),
]


@pytest.fixture()
def samm_root(tmp_path: Path) -> Path:
    root = tmp_path / "SAMM"
    # 4- and 5-digit numbers in one clip, and zero-padded 5-digit names in another
    _frames(root / "006" / "006_1_2", [9998, 9999, 10000, 10001], name="006_{:04d}.jpg")
    _frames(root / "006" / "006_1_3", [1230, 1231, 1232, 1233, 1234], name="006_{:05d}.jpg")
    _frames(root / "007" / "007_3_1", [200, 201, 202], name="007_{:05d}.jpg")
    _frames(root / "007" / "007_5_2", [50, 51, 52], name="007_{:05d}.jpg")
    _frames(root / "006" / "006_2_1", [300, 301, 302], name="006_{:05d}.jpg")
    _frames(root / "007" / "007_6_1", [400, 401, 402], name="007_{:05d}.jpg")
    _frames(root / "007" / "007_7_1", [500, 501, 502], name="007_{:05d}.jpg")
    body = [
        [s, f, f.split("_")[1], on, ap, off, off - on + 1, "Micro - 1/2", "4+7", emo, "IV", None]
        for s, f, on, ap, off, emo in SAMM_ROWS
    ]
    _save(root / "SAMM_Micro_FACS_Codes_v2.xlsx", [*SAMM_NOTES, SAMM_HEADER, *body])
    return root


def test_samm_five_class_row_by_row(samm_root: Path, tmp_path: Path) -> None:
    df = ingest.run(DatasetParams(name="samm", root=str(samm_root)), tmp_path / "out")
    rows = pd.read_parquet(tmp_path / "out" / "clips.parquet")[list(CLIP_COLUMNS)].to_dict("records")

    def samm(
        subject: str,
        clip: str,
        on: int,
        ap: int,
        off: int,
        n: int,
        emo: str,
        label: str,
        lid: int,
        on_file: str,
        ap_file: str,
    ) -> dict:
        return _row(
            subject, clip, on, ap, off, n, emo, label, lid, "4+7", f"{subject}/{clip}", on_file, ap_file, dataset="samm"
        )

    assert rows == [
        samm("006", "006_1_2", 9998, 10000, 10001, 4, "Anger", "anger", 0, "006_9998.jpg", "006_10000.jpg"),
        samm("006", "006_1_3", 1230, 1232, 1234, 5, "Others", "other", 4, "006_01230.jpg", "006_01232.jpg"),
        samm("007", "007_3_1", 200, 201, 202, 3, "Contempt", "contempt", 1, "007_00200.jpg", "007_00201.jpg"),
        samm("007", "007_5_2", 50, 51, 52, 3, "Happiness", "happiness", 2, "007_00050.jpg", "007_00051.jpg"),
        samm("007", "007_6_1", 400, 401, 402, 3, "Other", "other", 4, "007_00400.jpg", "007_00401.jpg"),
        samm("007", "007_7_1", 500, 501, 502, 3, "Surprise", "surprise", 3, "007_00500.jpg", "007_00501.jpg"),
    ]
    assert len(df) == 6
    rep = _report(tmp_path / "out")
    sheet = rep["sources"]["samm"]["sheet"]
    assert sheet["header_row"] == 14 and sheet["file"] == "SAMM_Micro_FACS_Codes_v2.xlsx"
    assert rep["counts_per_class"] == {"anger": 1, "contempt": 1, "happiness": 1, "surprise": 1, "other": 2}
    assert [(d["clip"], d["row"]) for d in rep["dropped"]] == [("006/006_2_1", 19)]
    assert [(p["clip"], p["row"], p["old"], p["new"]) for p in rep["patched"]] == [("007/007_5_2", 18, -1, 51)]


def test_samm_three_class(samm_root: Path, tmp_path: Path) -> None:
    df = ingest.run(DatasetParams(name="samm", root=str(samm_root), classes="3class"), tmp_path / "out")
    assert dict(zip(df["clip_id"], df["label"], strict=True)) == {
        "006/006_1_2": "negative",
        "006/006_2_1": "negative",
        "007/007_3_1": "negative",
        "007/007_5_2": "positive",
        "007/007_7_1": "surprise",
    }
    assert df.set_index("clip_id")["label_id"].to_dict()["007/007_7_1"] == 2
    dropped = {d["clip"] for d in _report(tmp_path / "out")["dropped"]}
    assert dropped == {"006/006_1_3", "007/007_6_1"}  # Other and Others alike


def test_samm_errors_use_the_sheets_own_column_names(samm_root: Path, tmp_path: Path) -> None:
    (samm_root / "006" / "006_1_2" / "006_9998.jpg").unlink()
    _assert_fails(
        DatasetParams(name="samm", root=str(samm_root)),
        tmp_path / "out",
        "SAMM_Micro_FACS_Codes_v2.xlsx, row 15",
        "006/006_1_2",
        "field Onset Frame",
        "frame 9998",
    )


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


def test_truncated_apex_jpeg_stops_ingest_naming_the_file(casme_root: Path, tmp_path: Path) -> None:
    apex = casme_root / "sub01" / "EP01_01" / "img10.jpg"
    _truncate(apex)
    _assert_fails(_params(casme_root), tmp_path / "out", "row 2", "field ApexFrame", str(apex), "on_bad_frame")


def test_truncated_frame_is_dropped_and_reported_under_on_bad_frame_skip(casme_root: Path, tmp_path: Path) -> None:
    apex = casme_root / "sub01" / "EP01_01" / "img10.jpg"
    _truncate(apex)
    df = ingest.run(_params(casme_root, on_bad_frame="skip"), tmp_path / "out")
    assert "sub01/EP01_01" not in set(df["clip_id"]) and len(df) == 4
    report = _report(tmp_path / "out")
    (drop,) = [d for d in report["dropped"] if d["clip"] == "sub01/EP01_01"]
    assert drop["row"] == 2 and drop["file"] == apex.as_posix() and "on_bad_frame: skip" in drop["reason"]
    assert report["on_bad_frame"] == "skip"


@pytest.mark.parametrize("kind", list(JPEG_DAMAGE))
def test_each_kind_of_damaged_apex_jpeg_stops_ingest_or_is_listed_under_on_bad_frame_skip(
    casme_root: Path, tmp_path: Path, kind: str
) -> None:
    """Damage OpenCV decodes with only libjpeg's warning (the issue's 64 inverted bytes among them) never reaches the
    clip index: the error names row, field, file and libjpeg's message; ``skip`` lists the clip with them."""
    make, said, _ = JPEG_DAMAGE[kind]
    apex = casme_root / "sub01" / "EP01_01" / "img10.jpg"
    apex.write_bytes(make())
    with pytest.raises(ValueError) as info:
        ingest.run(_params(casme_root), tmp_path / "out")
    for needle in ("row 2", "field ApexFrame", f"damaged JPEG {apex}", "on_bad_frame"):
        assert needle in str(info.value), (needle, str(info.value))
    assert re.search(said, str(info.value))
    df = ingest.run(_params(casme_root, on_bad_frame="skip"), tmp_path / "skip")
    assert "sub01/EP01_01" not in set(df["clip_id"]) and len(df) == 4
    (drop,) = [d for d in _report(tmp_path / "skip")["dropped"] if d["clip"] == "sub01/EP01_01"]
    assert drop["file"] == apex.as_posix() and re.search(said, drop["reason"])
    assert "on_bad_frame: skip" in drop["reason"]


def test_max_frame_side_bounds_the_longer_side_of_every_onset_and_apex_frame(casme_root: Path, tmp_path: Path) -> None:
    """A 40 x 20 px apex under ``max_frame_side: 32``: refused undecoded (its longer side is over the bound, its
    shorter side is not), naming the file; ``skip`` lists the clip."""
    apex = casme_root / "sub01" / "EP01_01" / "img10.jpg"
    assert cv2.imwrite(str(apex), np.full((20, 40), 128, np.uint8))
    _assert_fails(_params(casme_root, max_frame_side=32), tmp_path / "out", "row 2", "field ApexFrame", str(apex),
                  "40 x 20 px, larger than 32 px a side (dataset.max_frame_side)")  # fmt: skip
    df = ingest.run(_params(casme_root, max_frame_side=32, on_bad_frame="skip"), tmp_path / "skip")
    assert "sub01/EP01_01" not in set(df["clip_id"]) and len(df) == 4
    (drop,) = [d for d in _report(tmp_path / "skip")["dropped"] if d["clip"] == "sub01/EP01_01"]
    assert drop["file"] == apex.as_posix() and "dataset.max_frame_side" in drop["reason"]
    assert len(ingest.run(_params(casme_root, max_frame_side=40), tmp_path / "fits")) == 5  # 40 px a side is allowed
