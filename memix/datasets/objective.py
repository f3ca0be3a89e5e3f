"""MEGC 2018's objective classes (Davison et al. 2018, arXiv 1708.07549): the class cells and where they are.

The classes group clips by their action units rather than by an estimated emotion. ``classes: objective`` keeps
I-V; VI and VII (VII: AU combinations the paper's table gives no class) are left out, and the report counts them
per class. Releases store the class as a number 1-7; a cell may also read "III", "Class III" or " 3 ", so cells are
read as roman or arabic numerals, with or without "Class", ignoring case and spaces.

Where the class is: SAMM's coding sheet has an ``Objective Classes`` column and CAS(ME)^3's label sheet an
``Objective class`` column. CASME II's coding sheet has none: its classes were released as a separate workbook,
``CASME2-ObjectiveClasses.xlsx`` (Subject, Filename, ..., Objective Class), found next to the coding sheet and
merged by Subject + Filename (:func:`attach`). A coding-sheet row that workbook does not list is dropped and
reported; a row of it that matches no clip is listed in the report.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memix.datasets.classmaps import OBJECTIVE_FIELD, normalise_objective
from memix.datasets.problems import IngestError, Notes
from memix.datasets.sheets import COLUMNS, Sheet, SheetRecord, is_objective_file, read_sheet
from memix.datasets.values import text

if TYPE_CHECKING:
    from memix.datasets.sources import Source

_FILE_FIELDS = ("subject", "filename", OBJECTIVE_FIELD)


def attach(sheet: Sheet, src: Source, notes: Notes) -> tuple[Sheet, dict[str, Any]]:
    """``sheet`` with every record's objective class, and the report's account of where the classes come from.

    The sheet's own column if it has one; else, for a dataset whose classes were released apart (CASME II), the
    one objective-class workbook next to the coding sheet, merged by Subject + Filename. Unreadable cells of that
    workbook are problems naming it, its row and column (collected in ``notes``).
    """
    name, released = src.name, src.adapter.objective_file
    beside = _files_beside(sheet)
    if OBJECTIVE_FIELD in sheet.columns:
        if beside and released:
            listed = " and ".join(p.name for p in beside)
            column = sheet.columns[OBJECTIVE_FIELD]
            raise IngestError(f"{sheet.path}: objective classes both in its column {column!r} and in "
                              f"{listed}; keep one")  # fmt: skip
        return sheet, {"from": f"column {sheet.columns[OBJECTIVE_FIELD]!r} of {sheet.path.name}"}
    if released is None:
        raise IngestError(f"{sheet.path}: no objective class column ({_spellings()}), so no objective classes in "
                          f"{name}'s sheet (classes: objective)")  # fmt: skip
    if len(beside) != 1:
        found = ", ".join(p.name for p in beside) or "none"
        raise IngestError(f"{sheet.path}: {name}'s coding sheet has no objective class column; classes: objective "
                          f"reads the released {released} from the same folder (exactly one .xlsx named like "
                          f"*ObjectiveClasses*; found {found})")  # fmt: skip
    table, classes = _read(beside[0], src, notes)
    records, used = [], set()
    for rec in sheet.records:
        key = (src.canonical(rec.values.get("subject")), text(rec.values.get("filename")))
        if key in classes:
            used.add(key)
            rec = SheetRecord(rec.row, {**rec.values, OBJECTIVE_FIELD: classes[key][1]})
        records.append(rec)  # a record without the field is not listed: unlisted() drops it
    column = f"{table.columns[OBJECTIVE_FIELD]} ({table.path.name})"
    merged = replace(sheet, records=records, columns={**sheet.columns, OBJECTIVE_FIELD: column})
    return merged, {
        "from": table.path.name,
        "sha256": table.sha256,
        "worksheet": table.worksheet,
        "header_row": table.header_row,
        "merged_by": "Subject + Filename",
        "rows": len(table.records),
        "not_in_coding_sheet": sorted(f"{src.subject_id(s)}/{f}" for s, f in set(classes) - used),
    }


def unlisted(values: dict[int, dict[str, Any]], src: Source, notes: Notes, origin: str) -> dict[int, dict[str, Any]]:
    """The rows (after patches) that have an objective class; a clip row the class workbook ``origin`` does not
    list is dropped and reported (a patch of its ``objective`` field keeps it)."""
    out = {}
    for row, vals in values.items():
        filename = text(vals.get("filename"))
        if OBJECTIVE_FIELD in vals or not filename:
            out[row] = vals  # a row without a Filename is reported as not a clip row, later
            continue
        canonical = src.canonical(vals.get("subject"))
        subject = src.subject_id(canonical) if canonical else text(vals.get("subject"))
        why = f"no objective class: {origin} has no row for this Subject and Filename"
        notes.dropped.append(
            {"dataset": src.name, "clip": f"{subject}/{filename}", "subject": subject, "filename": filename,
             "row": row, "reason": why}
        )  # fmt: skip
    return out


def _read(path: Path, src: Source, notes: Notes) -> tuple[Sheet, dict[tuple[str, str], tuple[int, str]]]:
    """A class workbook and its (canonical subject, Filename) -> (row, class); bad rows are problems in ``notes``."""
    try:
        table = read_sheet(path, {k: COLUMNS[k] for k in _FILE_FIELDS}, _FILE_FIELDS)
    except ValueError as err:
        raise IngestError(str(err)) from None
    out: dict[tuple[str, str], tuple[int, str]] = {}
    for rec in table.records:
        subject, filename = src.canonical(rec.values["subject"]), text(rec.values["filename"])
        where = f"{path}, row {rec.row}" + (f" ({src.subject_id(subject)}/{filename})" if subject else "")
        if subject is None:
            notes.problem(where, table.columns["subject"], f"not a {src.name} subject: {rec.values['subject']!r}",
                          "correct the workbook's Subject cell")  # fmt: skip
            continue
        try:
            value = normalise_objective(rec.values[OBJECTIVE_FIELD])
        except ValueError as err:
            notes.problem(where, table.columns[OBJECTIVE_FIELD], str(err),
                          "write the class as I-VII (or 1-7) in the workbook")
            continue
        if (subject, filename) in out:
            notes.problem(where, table.columns["filename"], f"{subject}/{filename} is listed on row "
                          f"{out[(subject, filename)][0]} too", "keep one row per clip")  # fmt: skip
            continue
        out[(subject, filename)] = (rec.row, value)
    return table, out


def _files_beside(sheet: Sheet) -> list[Path]:
    folder = sheet.path.parent
    return sorted(p for p in folder.glob("*.xlsx") if p.is_file() and is_objective_file(p) and p != sheet.path)


def _spellings() -> str:
    return " or ".join(f"'{s}'" for s in ("Objective Classes", "Objective Class"))
