"""The shipped errata's rule (memix.datasets.corrections): an erratum applies only to the one row its key names
that still holds the erratum's old value; a fixed release, or a key that several rows hold, leaves the sheet as is
and reports the erratum "not applicable". Sheets are built in memory; the errata are the ones shipped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memix.config import DatasetParams
from memix.datasets import corrections, ingest
from memix.datasets.problems import Notes
from memix.datasets.sheets import Sheet, SheetRecord

FIELDS = ("subject", "filename", "onset", "apex", "offset", "emotion")


def _apply(name: str, rows: list[tuple[Any, ...]]) -> tuple[dict[int, dict[str, Any]], Notes]:
    """corrections.apply on a sheet of ``rows`` (Excel rows 2, 3, ...) with the built-in errata."""
    params = DatasetParams(name=name, root="unused", classes="7class" if name == "casme3" else "5class")
    (src,) = ingest._sources(params)
    records = [SheetRecord(i + 2, dict(zip(FIELDS, row, strict=True))) for i, row in enumerate(rows)]
    sheet = Sheet(Path("sheet.xlsx"), None, "label", 1, {f: f for f in FIELDS}, records)
    notes = Notes()
    return corrections.apply(sheet, src, params, notes), notes


def _erratum_notes(notes: Notes, key: str, field: str) -> list[dict[str, Any]]:
    return [e for e in notes.errata if e["erratum"] == key and e["field"] == field]


def test_the_shipped_errata_name_the_rows_these_tests_use() -> None:
    shipped = {(e.key(), e.field, e.old, e.new) for e in corrections.errata("casme3")}
    assert ("spNO.214/c", "offset", "3460", "34") in shipped
    assert ("sub04/EP12_01f", "apex", "/", "exclude") in {(e.key(), e.field, e.old, e.new) for e in
                                                          corrections.errata("casme2")}  # fmt: skip


def test_an_erratum_applies_only_where_the_sheet_still_holds_its_old_value() -> None:
    # as released: offset 3460 -> 34
    values, notes = _apply("casme3", [("spNo.214", "c", 5, 20, 3460, "sad")])
    assert values[2]["offset"] == 34
    (note,) = _erratum_notes(notes, "spNO.214/c", "offset")
    assert note["applied"] and note["row"] == 2
    # a release that already fixed the row (offset 39): the erratum must not overwrite it
    values, notes = _apply("casme3", [("spNo.214", "c", 5, 20, 39, "sad")])
    assert values[2]["offset"] == 39
    (note,) = _erratum_notes(notes, "spNO.214/c", "offset")
    assert not note["applied"] and note["why"].startswith("not applicable")
    assert "0 holding offset '3460'" in note["why"]
    assert not [p for p in notes.patched if p["clip"] == "spNO.214/c"]


def test_an_exclude_erratum_leaves_a_fixed_row_in() -> None:
    # CASME II's sub04/EP12_01f apex '/' is excluded; a sheet whose apex is annotated keeps the clip
    rows = [(4, "EP12_01f", 10, "/", 14, "disgust"), (4, "EP12_01f", 10, 12, 14, "disgust")]
    values, notes = _apply("casme2", rows[:1])
    assert values == {} and [d["row"] for d in notes.dropped] == [2]
    values, notes = _apply("casme2", rows[1:])
    assert set(values) == {2} and values[2]["apex"] == 12 and notes.dropped == []
    (note,) = _erratum_notes(notes, "sub04/EP12_01f", "apex")
    assert not note["applied"]


def test_an_erratum_whose_key_several_rows_hold_is_applied_to_none_of_them() -> None:
    # two rows with the erratum's subject and Filename (it names no onset), both holding its old value: ambiguous
    rows = [("spNo.214", "c", 5, 20, 3460, "sad"), ("spNo.214", "c", 50, 60, 3460, "sad")]
    values, notes = _apply("casme3", rows)
    assert [values[2]["offset"], values[3]["offset"]] == [3460, 3460]
    (note,) = _erratum_notes(notes, "spNO.214/c", "offset")
    assert not note["applied"] and "2 row(s) with this key, 2 holding" in note["why"]
    assert not [p for p in notes.patched if p["clip"] == "spNO.214/c"]
    # the same for an exclude erratum: neither row is dropped
    values, notes = _apply("casme2", [(4, "EP12_01f", 10, "/", 14, "disgust"), (4, "EP12_01f", 20, "/", 24, "fear")])
    assert set(values) == {2, 3} and notes.dropped == []


def test_an_erratum_keyed_by_onset_picks_its_row_among_rows_of_one_filename() -> None:
    # spNO.40/e appears twice; each erratum names its onset, so each applies to its own row only
    rows = [("spNO.40", "e", 1812, 1820, 0, "fear"), ("spNO.40", "e", 2327, 2340, 0, "fear")]
    values, notes = _apply("casme3", rows)
    assert [values[2]["offset"], values[3]["offset"]] == [1845, 2403]
    assert all(e["applied"] for e in notes.errata if e["erratum"].startswith("spNO.40/e"))
