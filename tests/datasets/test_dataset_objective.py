"""classes: objective (MEGC 2018) on hand-made CASME II and SAMM releases in their real layouts (tiny 8x8 frames).

SAMM's coding sheet holds the class in its "Objective Classes" column; CASME II's classes come as a workbook of their
own (CASME2-ObjectiveClasses.xlsx) beside the coding sheet, merged by Subject + Filename. Headers are written out
here, not taken from memix.synth, so the generator and the reader cannot share a mistake.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import openpyxl
import pytest

from memix.config import DatasetParams
from memix.datasets import classmaps, ingest

CASME_HEADER = [
    "Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units", "Estimated Emotion",
]  # fmt: skip
CASME_OBJECTIVE_HEADER = [
    "Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Objective Class",
]  # fmt: skip
SAMM_HEADER = [
    "Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration", "Type",
    "Action Units", "Estimated Emotion", "Objective Classes", "Notes",
]  # fmt: skip
CASME_OBJECTIVE = "CASME2-ObjectiveClasses.xlsx"
CLASSES = ["I", "II", "III", "IV", "V"]

# SAMM: (Subject, Filename, onset, objective cell, emotion); the sheet's data rows start at Excel row 5
SAMM_ROWS: list[tuple[Any, ...]] = [
    (6, "006_1_1", 100, 1, "Happiness"),
    ("006", "006_1_2", 200, "II", "Surprise"),
    (6, "006_2_1", 300, " Class III ", "Anger"),
    (7, "007_1_1", 400, "4", "Disgust"),
    (7, "007_2_1", 500, 5.0, "Sadness"),
    (7, "007_3_1", 600, 6, "Fear"),
    (7, "007_4_1", 700, "vii", "Other"),
    (7, "007_5_1", 800, "Class 7", "Others"),
]
# CASME II: (Subject, Filename, onset, emotion) in the coding sheet, and the objective workbook's (Subject, Filename,
# cell): one clip it does not list (EP05_01), one row it has that the coding sheet does not (sub03/EP09_09)
CASME_ROWS: list[tuple[Any, ...]] = [
    (1, "EP01_01", 8, "happiness"),
    (1, "EP02_01f", 20, "surprise"),
    (2, "EP03_02", 5, "disgust"),
    (2, "EP04_01", 40, "others"),
    (2, "EP05_01", 60, "repression"),
]
CASME_CLASSES: list[tuple[Any, ...]] = [
    ("01", "EP01_01", 1),
    (1, "EP02_01f", "Class II"),
    (2, "EP03_02", " iv "),
    ("sub02", "EP04_01", "VI"),
    (3, "EP09_09", 3),
]


def _frames(clip_dir: Path, numbers: list[int], name: str) -> None:
    clip_dir.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        assert cv2.imwrite(str(clip_dir / name.format(n)), np.full((8, 8), (n * 37) % 256, np.uint8))


def _save(path: Path, rows: list[list[Any]]) -> Path:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    book.save(path)
    return path


def _samm(root: Path, rows: list[tuple[Any, ...]] = SAMM_ROWS) -> Path:
    body = []
    for subject, filename, onset, cell, emotion in rows:
        number = int(str(subject))
        _frames(root / f"{number:03d}" / filename, [onset, onset + 1, onset + 2], f"{number:03d}_{{:05d}}.jpg")
        body.append([subject, filename, 1, onset, onset + 1, onset + 2, 3, "Micro - 1/2", "12", emotion, cell, None])
    return _save(root / "SAMM_Micro_FACS_Codes_v2.xlsx", [["SAMM notes"], [None], [None], SAMM_HEADER, *body])


def _casme(root: Path, classes: list[tuple[Any, ...]] | None = CASME_CLASSES) -> Path:
    body = []
    for subject, filename, onset, emotion in CASME_ROWS:
        _frames(root / f"sub{subject:02d}" / filename, [onset, onset + 1, onset + 2], "img{}.jpg")
        body.append([subject, filename, None, onset, onset + 1, onset + 2, None, 12, emotion])
    _save(root / "CASME2-coding-20140508.xlsx", [CASME_HEADER, *body])
    if classes is not None:
        rows = [[s, f, 1, 2, 3, "12", c] for s, f, c in classes]
        _save(root / CASME_OBJECTIVE, [CASME_OBJECTIVE_HEADER, *rows])
    return root


def _report(out: Path) -> dict[str, Any]:
    return json.loads((out / "ingest_report.json").read_text())


def _fails(params: DatasetParams, out: Path, *needles: str) -> str:
    with pytest.raises(ValueError) as info:
        ingest.run(params, out)
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))
    assert not out.exists() or not any(out.iterdir())
    return str(info.value)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [(1, "I"), (2.0, "II"), ("3", "III"), (" 4 ", "IV"), ("V", "V"), ("vi", "VI"), ("Class VII", "VII"),
     ("class 2", "II"), ("CLASS  iv", "IV"), ("Class-1", "I"), ("\tII\n", "II")],
)  # fmt: skip
def test_cells_read_as_roman_or_arabic_numerals(cell: Any, expected: str) -> None:
    assert classmaps.normalise_objective(cell) == expected


@pytest.mark.parametrize("cell", [None, "", "  ", 0, 8, "VIII", "IIII", 1.5, "1.5", "I/II", "Class", "happiness", True])
def test_anything_else_is_not_a_class(cell: Any) -> None:
    with pytest.raises(ValueError, match="objective class"):
        classmaps.normalise_objective(cell)


def test_samm_reads_its_objective_classes_column_and_counts_vi_vii(tmp_path: Path) -> None:
    root = tmp_path / "SAMM"
    _samm(root)
    out = tmp_path / "out"
    df = ingest.run(DatasetParams(name="samm", root=str(root), classes="objective"), out)
    assert dict(zip(df["clip_id"], df["label"], strict=True)) == {
        "006/006_1_1": "I", "006/006_1_2": "II", "006/006_2_1": "III", "007/007_1_1": "IV", "007/007_2_1": "V",
    }  # fmt: skip
    assert list(df["label_id"]) == [0, 1, 2, 3, 4]
    assert list(df["emotion"]) == ["Happiness", "Surprise", "Anger", "Disgust", "Sadness"]  # the sheet's, kept
    rep = _report(out)
    assert rep["class_names"] == CLASSES and rep["counts_per_class"] == dict.fromkeys(CLASSES, 1)
    source = rep["sources"]["samm"]
    assert source["left_out_classes"] == {"VI": 1, "VII": 2}
    assert source["objective_classes"] == {"from": "column 'Objective Classes' of SAMM_Micro_FACS_Codes_v2.xlsx"}
    assert [(d["clip"], d["row"], d["reason"]) for d in rep["dropped"]] == [
        ("007/007_3_1", 10, "excluded from samm objective: 'VI'"),
        ("007/007_4_1", 11, "excluded from samm objective: 'VII'"),
        ("007/007_5_1", 12, "excluded from samm objective: 'VII'"),
    ]
    # the MEGC 2019 list is a megc3 matter and there are no published objective counts: neither trips
    assert rep["protocol"]["sources"]["samm"] == {"followed": False, "why": "classes is objective, not megc3"}
    assert rep["published"] == {
        "checks": [],
        "not_compared": [{"scope": "samm", "why": "no published counts for samm with classes objective"}],
    }
    assert rep["warnings"] == []


def test_an_unreadable_cell_names_sheet_row_clip_and_field(tmp_path: Path) -> None:
    root = tmp_path / "SAMM"
    rows = [*SAMM_ROWS[:2], (6, "006_2_1", 300, "VIII", "Anger"), (7, "007_1_1", 400, None, "Disgust")]
    sheet = _samm(root, rows)
    params = DatasetParams(name="samm", root=str(root), classes="objective")
    message = _fails(params, tmp_path / "out", "2 problems")
    field = "field Objective Classes"
    assert f"{sheet}, row 7 (006/006_2_1), {field}: not an objective class (I-VII, or 1-7): 'VIII'" in message
    assert f"{sheet}, row 8 (007/007_1_1), {field}: no objective class (empty cell)" in message
    assert "dataset.patches: - {subject: '006', filename: '006_2_1', onset: 300, field: objective" in message
    # the hint's patch works, and the emotion tasks never read the column
    patches = [{"subject": s, "filename": f, "field": "objective", "value": v} for s, f, v in
               (("006", "006_2_1", "Class III"), (7, "007_1_1", 4))]  # fmt: skip
    df = ingest.run(params.model_copy(update={"patches": DatasetParams(patches=patches).patches}), tmp_path / "ok")
    assert list(df["label"]) == ["I", "II", "III", "IV"]
    five = ingest.run(DatasetParams(name="samm", root=str(root), classes="5class"), tmp_path / "5")
    assert list(five["label"]) == ["happiness", "surprise", "anger"]  # Disgust is no SAMM 5-class class


def test_casme2_merges_the_released_objective_workbook_by_subject_and_filename(tmp_path: Path) -> None:
    root = _casme(tmp_path / "CASME2")
    out = tmp_path / "out"
    df = ingest.run(DatasetParams(name="casme2", root=str(root), classes="objective"), out)  # sheet: null
    assert dict(zip(df["clip_id"], df["label"], strict=True)) == {
        "sub01/EP01_01": "I", "sub01/EP02_01f": "II", "sub02/EP03_02": "IV",
    }  # fmt: skip
    rep = _report(out)
    source = rep["sources"]["casme2"]
    assert source["sheet"]["file"] == "CASME2-coding-20140508.xlsx"  # the class workbook is not a coding sheet
    merged = source["objective_classes"]
    assert (merged["from"], merged["merged_by"], merged["rows"]) == (CASME_OBJECTIVE, "Subject + Filename", 5)
    assert merged["not_in_coding_sheet"] == ["sub03/EP09_09"] and len(merged["sha256"]) == 64
    assert source["left_out_classes"] == {"VI": 1}
    assert [(d["clip"], d["reason"]) for d in rep["dropped"]] == [
        ("sub02/EP04_01", "excluded from casme2 objective: 'VI'"),
        ("sub02/EP05_01", f"no objective class: {CASME_OBJECTIVE} has no row for this Subject and Filename"),
    ]
    # a patch of the objective field gives the unlisted clip its class
    patch = DatasetParams(patches=[{"subject": 2, "filename": "EP05_01", "field": "objective", "value": "V"}])
    df = ingest.run(DatasetParams(name="casme2", root=str(root), classes="objective", patches=patch.patches),
                    tmp_path / "patched")  # fmt: skip
    assert df.set_index("clip_id").loc["sub02/EP05_01", "label"] == "V"
    # the emotion tasks read the coding sheet alone, the class workbook beside it notwithstanding
    assert len(ingest.run(DatasetParams(name="casme2", root=str(root)), tmp_path / "5")) == 5


def test_casme2_without_its_objective_workbook_or_with_a_bad_cell_says_which_file(tmp_path: Path) -> None:
    root = _casme(tmp_path / "bare", classes=None)
    params = DatasetParams(name="casme2", root=str(root), classes="objective")
    _fails(params, tmp_path / "o1", "no objective class column", "CASME2-ObjectiveClasses.xlsx", "found none")

    bad = [CASME_CLASSES[0], (1, "EP02_01f", "III or IV"), (2, "EP03_02", 4), (2, "EP03_02", 5)]
    root = _casme(tmp_path / "bad", classes=bad)
    message = _fails(params.model_copy(update={"root": str(root)}), tmp_path / "o2", "2 problems")
    workbook = root / CASME_OBJECTIVE
    assert f"{workbook}, row 3 (sub01/EP02_01f), field Objective Class: not an objective class" in message
    assert f"{workbook}, row 5 (sub02/EP03_02), field Filename: sub02/EP03_02 is listed on row 4 too" in message


def test_composite_casme2_and_samm_share_one_label_set(tmp_path: Path) -> None:
    _casme(tmp_path / "data" / "CASME2")
    _samm(tmp_path / "data" / "SAMM")
    sources = [{"name": "casme2", "root": "CASME2"}, {"name": "samm", "root": "SAMM"}]
    params = DatasetParams(name="composite", root=str(tmp_path / "data"), sources=sources, classes="objective")
    out = tmp_path / "out"
    df = ingest.run(params, out)
    rep = _report(out)
    assert rep["class_names"] == CLASSES
    assert rep["counts_per_dataset"] == {
        "casme2": {"I": 1, "II": 1, "III": 0, "IV": 1, "V": 0},
        "samm": dict.fromkeys(CLASSES, 1),
    }
    left_out = {k: s["left_out_classes"] for k, s in rep["sources"].items()}
    assert left_out == {"casme2": {"VI": 1}, "samm": {"VI": 1, "VII": 2}}
    assert all(df["label_id"] == [CLASSES.index(label) for label in df["label"]])
    assert {n["scope"] for n in rep["published"]["not_compared"]} == {"casme2", "samm", "composite"}


@pytest.mark.parametrize(("name", "layout"), [("smic", "SMIC"), ("mmew", "MMEW")])
def test_datasets_without_objective_classes_are_refused(name: str, layout: str, tmp_path: Path) -> None:
    _casme(tmp_path / "data" / "CASME2")
    (tmp_path / "data" / layout).mkdir()
    sources = [{"name": "casme2", "root": "CASME2"}, {"name": name, "root": layout}]
    params = DatasetParams(name="composite", root=str(tmp_path / "data"), sources=sources, classes="objective")
    _fails(params, tmp_path / "out", f"no objective classes in {name}'s sheets")
