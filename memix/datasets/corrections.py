"""Sheet corrections before any check: the built-in errata, then ``dataset.patches``, then ``dataset.exclude``.

Every correction names its row by subject and Filename as the sheet spells them (plus the sheet's onset where a
Filename repeats), never by row number, and is matched against the sheet as released. A built-in erratum also
names the value the sheet holds: it applies only where the row still holds it, so a later release that fixed
the row (or a subset of the data without it) is reported as "not applicable", not an error. A params entry
that matches no row, or several, is a problem of the run (listed with every other one).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from memix.config import ClipExclusion, ClipPatch, DatasetParams
from memix.datasets.problems import Notes
from memix.datasets.sheets import Sheet, SheetRecord
from memix.datasets.sources import Source
from memix.datasets.values import as_int, jsonable, same, text

EXCLUDE = "exclude"
ERRATA_COLUMNS = ("dataset", "subject", "filename", "onset", "field", "old", "new", "reason", "source")
FIELDS = ("onset", "apex", "offset", "emotion", "action_units", "filename", "objective")


@dataclass(frozen=True)
class Erratum:
    """One known fix of a released sheet (a row of ``memix/datasets/errata/<dataset>.csv``)."""

    dataset: str
    subject: str
    filename: str
    onset: int | None
    field: str
    old: str
    new: str  # the corrected value, or "exclude"
    reason: str
    source: str

    def key(self) -> str:
        at = f"#{self.onset}" if self.onset is not None else ""
        return f"{self.subject}/{self.filename}{at}"


@cache
def errata(dataset: str) -> tuple[Erratum, ...]:
    """The errata shipped for ``dataset`` (none if it has no file); a malformed file is a packaging bug."""
    path = resources.files("memix.datasets").joinpath("errata", f"{dataset}.csv")
    if not path.is_file():
        return ()
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    out = []
    for i, row in enumerate(rows, start=2):
        if tuple(row) != ERRATA_COLUMNS or any(row[c] is None for c in ERRATA_COLUMNS):
            raise ValueError(f"{path}, line {i}: expected the columns {', '.join(ERRATA_COLUMNS)}")
        if row["dataset"] != dataset or row["field"] not in FIELDS or not row["source"].strip():
            raise ValueError(f"{path}, line {i}: wrong dataset, unknown field or no source")
        onset = as_int(row["onset"]) if row["onset"].strip() else None
        out.append(Erratum(**{**row, "onset": onset}))  # type: ignore[arg-type]
    return tuple(out)


def _keys(sheet: Sheet, src: Source) -> dict[tuple[str, str], list[SheetRecord]]:
    """(canonical subject, Filename) -> the records with that key, read from the sheet as released."""
    keys: dict[tuple[str, str], list[SheetRecord]] = {}
    for rec in sheet.records:
        subject = src.canonical(rec.values["subject"])
        if subject is not None:
            keys.setdefault((subject, text(rec.values["filename"])), []).append(rec)
    return keys


def _candidates(
    keys: dict[tuple[str, str], list[SheetRecord]], src: Source, subject: Any, filename: str, onset: int | None
) -> list[SheetRecord]:
    canonical = src.canonical(subject)
    if canonical is None:
        raise ValueError(f"subject: not a {src.name} subject: {subject!r}")
    found = keys.get((canonical, text(filename)), [])
    if onset is not None:
        found = [rec for rec in found if as_int(rec.values.get("onset")) == onset]
    return found


def _entry(src: Source, sheet: Sheet, rec: SheetRecord) -> dict[str, Any]:
    subject = src.subject_id(src.canonical(rec.values["subject"]) or text(rec.values["subject"]))
    filename = text(rec.values["filename"])
    return {"dataset": src.name, "clip": f"{subject}/{filename}", "subject": subject, "filename": filename,
            "row": rec.row}  # fmt: skip


def apply(sheet: Sheet, src: Source, params: DatasetParams, notes: Notes) -> dict[int, dict[str, Any]]:
    """Row number -> field values after errata, patches and exclusions; each one reported in ``notes``."""
    values = {rec.row: dict(rec.values) for rec in sheet.records}
    keys = _keys(sheet, src)
    excluded: set[int] = set()
    if params.errata == "builtin":
        for erratum in errata(src.name):
            _apply_erratum(erratum, keys, src, sheet, values, excluded, notes)
    name = src.name
    for i, patch in enumerate(params.patches):
        if patch.source in (None, name):
            _apply_patch(i, patch, keys, src, sheet, values, notes)
    for i, entry in enumerate(params.exclude):
        if entry.source in (None, name):
            _apply_exclusion(i, entry, keys, src, sheet, excluded, notes)
    return {row: v for row, v in values.items() if row not in excluded}


def _apply_erratum(
    erratum: Erratum,
    keys: dict[tuple[str, str], list[SheetRecord]],
    src: Source,
    sheet: Sheet,
    values: dict[int, dict[str, Any]],
    excluded: set[int],
    notes: Notes,
) -> None:
    found = _candidates(keys, src, erratum.subject, erratum.filename, erratum.onset)
    holding = [rec for rec in found if same(rec.values.get(erratum.field), erratum.old)]
    listed = {"dataset": src.name, "erratum": erratum.key(), "field": erratum.field, "old": erratum.old,
              "new": erratum.new, "reason": erratum.reason, "source": erratum.source}  # fmt: skip
    if len(holding) != 1:
        why = (
            "no row with this subject and Filename"
            if not found
            else f"{len(found)} row(s) with this key, {len(holding)} holding {erratum.field} {erratum.old!r}"
        )
        notes.errata.append({**listed, "applied": False, "why": f"not applicable: {why}"})
        return
    rec = holding[0]
    entry = _entry(src, sheet, rec)
    notes.errata.append({**listed, "applied": True, "clip": entry["clip"], "row": rec.row})
    if erratum.new == EXCLUDE:
        excluded.add(rec.row)
        notes.dropped.append({**entry, "reason": f"erratum: {erratum.reason} (source: {erratum.source})"})
        return
    new: Any = as_int(erratum.new) if erratum.field in ("onset", "apex", "offset") else erratum.new
    values[rec.row][erratum.field] = new
    notes.patched.append({**entry, "field": erratum.field, "old": jsonable(rec.values.get(erratum.field)),
                          "new": jsonable(new), "reason": f"erratum: {erratum.reason}",
                          "source": erratum.source})  # fmt: skip


def _one(
    label: str,
    entry: ClipPatch | ClipExclusion,
    keys: dict[tuple[str, str], list[SheetRecord]],
    src: Source,
    sheet: Sheet,
    notes: Notes,
) -> SheetRecord | None:
    """The one record a params entry names; anything else is a problem of the run."""
    try:
        found = _candidates(keys, src, entry.subject, entry.filename, entry.onset)
    except ValueError as err:
        notes.problem(label, None, str(err), "spell the subject as the sheet or the folders do")
        return None
    if len(found) != 1:
        hint = "; add its onset to pick one" if len(found) > 1 and entry.onset is None else ""
        notes.problem(label, None, f"matches {len(found)} rows of {sheet.path}, expected exactly one{hint}",
                      "key the entry by the sheet's Subject and Filename as released (and onset)")  # fmt: skip
        return None
    return found[0]


def _apply_patch(
    i: int,
    patch: ClipPatch,
    keys: dict[tuple[str, str], list[SheetRecord]],
    src: Source,
    sheet: Sheet,
    values: dict[int, dict[str, Any]],
    notes: Notes,
) -> None:
    at = f", onset {patch.onset}" if patch.onset is not None else ""
    label = f"dataset.patches[{i}] ({patch.subject}, {patch.filename}{at}, {patch.field})"
    rec = _one(label, patch, keys, src, sheet, notes)
    if rec is None:
        return
    old = values[rec.row].get(patch.field)
    values[rec.row][patch.field] = patch.value
    notes.patched.append({**_entry(src, sheet, rec), "field": patch.field, "old": jsonable(old),
                          "new": jsonable(patch.value), "reason": label})  # fmt: skip


def _apply_exclusion(
    i: int,
    entry: ClipExclusion,
    keys: dict[tuple[str, str], list[SheetRecord]],
    src: Source,
    sheet: Sheet,
    excluded: set[int],
    notes: Notes,
) -> None:
    label = f"dataset.exclude[{i}] ({entry.subject}, {entry.filename})"
    rec = _one(label, entry, keys, src, sheet, notes)
    if rec is None:
        return
    excluded.add(rec.row)
    notes.dropped.append({**_entry(src, sheet, rec), "reason": f"dataset.exclude[{i}]: {entry.reason}"})
