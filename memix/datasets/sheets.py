"""Read a coding sheet (.xlsx) by header name, wherever the header row sits.

Old Excel files (``.xls``, e.g. ``CASME2_label_Ver_2.xls``) need a reader memix does not depend on, so they are
refused with a message saying how to save them as ``.xlsx``.

Released sheets differ in column order, spacing ("OnsetFrame" vs "Onset Frame"), blank unnamed columns and
notes rows above the header, so columns are found by their normalised names and the header row by its
content. Every record keeps its Excel row number so errors and reports can point the user at the sheet.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memix.io import atomic

# canonical field -> accepted header spellings, compared after normalise_header()
COLUMNS: dict[str, tuple[str, ...]] = {
    "subject": ("subject",),
    "filename": ("filename",),
    "onset": ("onsetframe", "onset"),
    "apex": ("apexframe", "apex"),
    "offset": ("offsetframe", "offset"),
    "action_units": ("actionunits", "aus", "au"),
    "emotion": ("estimatedemotion", "emotion"),
    "objective": ("objectiveclasses", "objectiveclass"),  # MEGC 2018's class: memix.datasets.objective
}
REQUIRED = ("subject", "filename", "onset", "apex", "offset", "emotion")
HEADER_SCAN_ROWS = 100
OBJECTIVE_FILE = "objectiveclass"  # in a workbook's normalised name: a list of objective classes, not a coding sheet


class SheetError(ValueError):
    """A coding sheet that cannot be read; the message names the file (and row/field where known)."""


@dataclass(frozen=True)
class SheetRecord:
    """One data row: canonical field -> raw cell value, plus the 1-based Excel row number."""

    row: int
    values: dict[str, Any]


@dataclass(frozen=True)
class Sheet:
    """A coding sheet's records; for a dataset listed by its folders (SMIC) ``origins`` maps each record to its
    folder, ``sha256``/``worksheet``/``header_row`` are None and the records' numbers are only their order."""

    path: Path
    sha256: str | None
    worksheet: str | None
    header_row: int | None
    columns: dict[str, str]  # canonical field -> header text as written in the sheet
    records: list[SheetRecord] = field(default_factory=list)
    creator: str | None = None  # the workbook's author property (memix.synth marks its synthetic sheets)
    origins: dict[int, str] | None = None

    def where(self, row: int) -> str:
        """How an error points at a record: ``<sheet>, row N`` or the clip's folder."""
        if self.origins is not None:
            return self.origins[row]
        return f"{self.path}, row {row}"

    def sheet_row(self, row: int) -> int | None:
        """The Excel row number to report (None for records read from folders)."""
        return None if self.origins is not None else row


def normalise_header(value: Any) -> str:
    """Lower-case letters and digits only, so "Onset Frame", "OnsetFrame" and "onset_frame" compare equal."""
    if value is None:
        return ""
    return re.sub(r"[^0-9a-z]", "", str(value).lower())


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _match_columns(cells: Sequence[Any], columns: Mapping[str, tuple[str, ...]]) -> dict[str, int]:
    """canonical field -> column index, first match wins; unnamed/blank header cells are ignored."""
    found: dict[str, int] = {}
    for idx, cell in enumerate(cells):
        name = normalise_header(cell)
        if not name:
            continue
        for canonical, spellings in columns.items():
            if canonical not in found and name in spellings:
                found[canonical] = idx
    return found


def read_sheet(
    path: str | Path,
    columns: Mapping[str, tuple[str, ...]] = COLUMNS,
    required: Sequence[str] = REQUIRED,
) -> Sheet:
    """Load the first worksheet that holds a header row (a row with Subject and Filename) and its records.

    Rows after the header that are entirely blank are skipped; everything else is returned as found, with
    raw cell values (ints, floats and strings mixed, as the released sheets have them).
    """
    import openpyxl

    path = Path(path)
    if not path.is_file():
        raise SheetError(f"{path}: coding sheet not found")
    if path.suffix.lower() == ".xls":
        raise SheetError(xls_message(path))
    try:
        book = openpyxl.load_workbook(path, read_only=False, data_only=True)
    except Exception as err:  # openpyxl raises many types for a corrupt or non-xlsx file
        raise SheetError(f"{path}: not a readable .xlsx workbook ({type(err).__name__}: {err})") from None
    try:
        for ws in book.worksheets:
            rows = list(ws.iter_rows(values_only=True))
            for i, cells in enumerate(rows[:HEADER_SCAN_ROWS]):
                found = _match_columns(cells, columns)
                if "subject" not in found or "filename" not in found:
                    continue
                header_row = i + 1
                missing = [c for c in required if c not in found]
                if missing:
                    wanted = ", ".join(f"'{columns[c][0]}' (field {c})" for c in missing)
                    raise SheetError(
                        f"{path}: worksheet '{ws.title}', header row {header_row} lacks required column(s) {wanted}"
                    )
                records = []
                for j, row_cells in enumerate(rows[i + 1 :], start=header_row + 1):
                    values = {c: (row_cells[k] if k < len(row_cells) else None) for c, k in found.items()}
                    if all(_is_blank(v) for v in values.values()):
                        continue
                    records.append(SheetRecord(row=j, values=values))
                return Sheet(
                    path=path,
                    sha256=atomic.file_sha256(path),
                    worksheet=ws.title,
                    header_row=header_row,
                    columns={c: str(cells[k]) for c, k in found.items()},
                    records=records,
                    creator=book.properties.creator,
                )
    finally:
        book.close()
    raise SheetError(
        f"{path}: no header row found (a row with 'Subject' and 'Filename' cells in the first "
        f"{HEADER_SCAN_ROWS} rows of any worksheet)"
    )


def is_objective_file(path: Path) -> bool:
    """Whether ``path`` is a separately released list of objective classes (CASME II's
    ``CASME2-ObjectiveClasses.xlsx``), which sits next to a coding sheet but is not one."""
    return OBJECTIVE_FILE in normalise_header(path.stem) and not path.name.startswith("~$")


def find_sheet(root: Path, sheet: str | None) -> Path:
    """The coding sheet: ``root/sheet`` if given, else the single .xlsx directly in ``root`` (an objective-class
    list beside it, :func:`is_objective_file`, does not count)."""
    if sheet is not None:
        path = root / sheet
        if not path.is_file():
            raise SheetError(f"{path}: coding sheet not found (dataset.sheet = {sheet!r}, dataset.root = {root})")
        return path
    if not root.is_dir():
        raise SheetError(f"{root}: dataset root not found (dataset.root)")
    candidates = sorted(
        p for p in root.glob("*.xlsx") if p.is_file() and not p.name.startswith("~$") and not is_objective_file(p)
    )
    old = sorted(p for p in root.iterdir() if p.suffix.lower() == ".xls" and p.is_file())
    if not candidates and len(old) == 1:
        raise SheetError(xls_message(old[0]))
    if len(candidates) != 1:
        listed = ", ".join(p.name for p in candidates) or "none"
        raise SheetError(
            f"{root}: dataset.sheet is null, so exactly one .xlsx is expected in the dataset root; "
            f"found {len(candidates)} ({listed}). Set dataset.sheet."
        )
    return candidates[0]


def xls_message(path: Path) -> str:
    return (
        f"{path}: an old Excel (.xls) workbook; memix reads .xlsx only. Save it as .xlsx (Excel or LibreOffice: "
        f"File > Save As; or `soffice --headless --convert-to xlsx {path.name}`) next to it, and point "
        "dataset.sheet at the .xlsx (or remove the .xls)"
    )
