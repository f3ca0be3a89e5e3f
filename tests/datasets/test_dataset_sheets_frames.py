"""Sheet reading by header name and frame discovery by parsed number (the pieces ingest is built on)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import openpyxl
import pytest

from memix.datasets import classmaps
from memix.datasets.frames import frame_number, list_frames
from memix.datasets.sheets import SheetError, find_sheet, normalise_header, read_sheet


def _xlsx(path: Path, rows: list[list[object]], title: str = "Sheet1") -> Path:
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = title
    for row in rows:
        ws.append(row)
    book.save(path)
    return path


def test_frame_number_parses_the_trailing_number_of_image_names() -> None:
    assert frame_number("img9.jpg") == 9
    assert frame_number("reg_img120.jpg") == 120
    assert frame_number("006_05562.jpg") == 5562
    assert frame_number("006_1234.JPG") == 1234
    assert frame_number("Thumbs.db") is None
    assert frame_number("notes.txt") is None
    assert frame_number("cover.jpg") is None


def test_list_frames_sorts_naturally_not_as_strings(tmp_path: Path) -> None:
    for n in (100, 9, 10, 11, 1000):
        (tmp_path / f"img{n}.jpg").write_bytes(b"x")
    (tmp_path / "desktop.ini").write_bytes(b"x")
    frames = list_frames(tmp_path)
    assert list(frames) == [9, 10, 11, 100, 1000]
    assert frames[9] == "img9.jpg" and frames[100] == "img100.jpg"


def test_list_frames_refuses_two_files_for_one_frame(tmp_path: Path) -> None:
    (tmp_path / "img7.jpg").write_bytes(b"x")
    (tmp_path / "img07.jpg").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"two files for frame 7: img07.jpg and img7.jpg"):
        list_frames(tmp_path)


def test_read_sheet_finds_header_below_notes_and_tolerates_blank_columns(tmp_path: Path) -> None:
    rows: list[list[object]] = [["Notes about the coding"], [None], ["Frames are 200 fps", None, "x"]]
    rows += [["Subject", "Filename", None, "Onset Frame", "Apex Frame", "Offset Frame", None, "Estimated Emotion"]]
    rows += [[6, "006_1_2", None, 5562, 5600, 5650, None, "Other"], [None] * 8]
    rows += [[7, "007_3_1", None, 1, 2, 3, None, "x"]]
    path = _xlsx(tmp_path / "s.xlsx", rows, title="FACS")
    sheet = read_sheet(path)
    assert sheet.header_row == 4
    assert sheet.worksheet == "FACS"
    assert sheet.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert sheet.columns["onset"] == "Onset Frame"
    assert "action_units" not in sheet.columns  # optional column absent: no error
    assert [r.row for r in sheet.records] == [5, 7]  # the blank row 6 is skipped, row numbers are Excel's
    assert sheet.records[0].values == {
        "subject": 6,
        "filename": "006_1_2",
        "onset": 5562,
        "apex": 5600,
        "offset": 5650,
        "emotion": "Other",
    }


def test_read_sheet_names_file_header_row_and_missing_column(tmp_path: Path) -> None:
    rows = [["Subject", "Filename", None, "OnsetFrame", "OffsetFrame", None, "Action Units", "Estimated Emotion"]]
    path = _xlsx(tmp_path / "coding.xlsx", rows)
    with pytest.raises(SheetError) as info:
        read_sheet(path)
    msg = str(info.value)
    assert str(path) in msg and "header row 1" in msg and "apexframe" in msg and "field apex" in msg


def test_read_sheet_without_any_header(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "coding.xlsx", [["a", "b"], [1, 2]])
    with pytest.raises(SheetError, match="no header row"):
        read_sheet(path)


def test_find_sheet_wants_exactly_one_xlsx_when_none_is_named(tmp_path: Path) -> None:
    with pytest.raises(SheetError, match=r"found 0 \(none\)"):
        find_sheet(tmp_path, None)
    _xlsx(tmp_path / "a.xlsx", [["x"]])
    assert find_sheet(tmp_path, None) == tmp_path / "a.xlsx"
    _xlsx(tmp_path / "b.xlsx", [["x"]])
    with pytest.raises(SheetError, match=r"found 2 \(a.xlsx, b.xlsx\)"):
        find_sheet(tmp_path, None)
    assert find_sheet(tmp_path, "b.xlsx") == tmp_path / "b.xlsx"
    with pytest.raises(SheetError, match="missing.xlsx: coding sheet not found"):
        find_sheet(tmp_path, "missing.xlsx")


def test_header_normalisation_and_emotion_spellings() -> None:
    assert normalise_header(" Onset Frame ") == normalise_header("OnsetFrame") == "onsetframe"
    assert classmaps.normalise_emotion("samm", " Others ") == "other"
    assert classmaps.normalise_emotion("samm", "Other") == "other"
    assert classmaps.normalise_emotion("casme2", "Other") == "others"
    # every class of every map is reachable from the dataset's emotions, in label_id order
    for (_, _), cmap in classmaps.CLASS_MAPS.items():
        assert set(cmap.emotions.values()) == set(cmap.names)
        assert set(cmap.emotions) <= cmap.known
