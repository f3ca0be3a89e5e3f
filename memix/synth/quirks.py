"""The quirks of the real releases, written into a generated layout so each fix can be tested end to end.

:func:`memix.synth.build.generate` writes clean data (the default pipeline's bytes never change); these calls
then turn a layout it wrote into what a release really ships: CAS(ME)^3's upper-case Filename, an apex equal
to its onset, SMIC's cropped release (``reg_image{N}.bmp``, an empty clip folder), CAS(ME)^3's ME-clip package.
Each edits the folder in place and returns what it changed, for the test to check the report against.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memix.datasets.frames import list_frames
from memix.datasets.sheets import is_objective_file
from memix.synth.sheet import sheet_bytes

CLIP_PACKAGE = "Part_A_ME_clip/frame"


def edit_sheet(path: Path, edit: Callable[[list[str], list[list[Any]]], None]) -> None:
    """Rewrite a synthetic coding sheet after ``edit(header, rows)`` changed its rows in place (notes rows above
    the header and the worksheet's title are kept; the file stays byte-deterministic)."""
    import openpyxl

    book = openpyxl.load_workbook(path)
    ws = book.worksheets[0]
    cells = [list(r) for r in ws.iter_rows(values_only=True)]
    at = next(i for i, r in enumerate(cells) if r and r[0] == "Subject")
    header, rows = cells[at], cells[at + 1 :]
    edit(header, rows)
    path.write_bytes(sheet_bytes(rows, header=header, title=ws.title, notes=cells[:at]))


def _sheet(root: Path) -> Path:
    found = sorted(p for p in root.glob("*.xlsx") if not is_objective_file(p))  # CASME II's class list is beside it
    if len(found) != 1:
        raise ValueError(f"{root}: expected one coding sheet, found {len(found)}")
    return found[0]


def _column(header: list[str], *names: str) -> int:
    for name in names:
        if name in header:
            return header.index(name)
    raise ValueError(f"none of the columns {names} in {header}")


def uppercase_filename(root: Path, row: int = 0) -> dict[str, Any]:
    """Upper-case the Filename of the sheet's ``row``-th clip, leaving its folder lower-case (CAS(ME)^3's ``J``)."""
    changed: dict[str, Any] = {}

    def edit(header: list[str], rows: list[list[Any]]) -> None:
        col = _column(header, "Filename")
        changed.update(subject=rows[row][0], old=rows[row][col], new=str(rows[row][col]).upper())
        rows[row][col] = changed["new"]

    edit_sheet(_sheet(root), edit)
    return changed


def apex_at_onset(root: Path, row: int = 0) -> dict[str, Any]:
    """Annotate the ``row``-th clip's apex as its onset frame (no onset->apex motion)."""
    changed: dict[str, Any] = {}

    def edit(header: list[str], rows: list[list[Any]]) -> None:
        onset = _column(header, "OnsetFrame", "Onset Frame", "Onset")
        apex = _column(header, "ApexFrame", "Apex Frame", "Apex")
        changed.update(subject=rows[row][0], filename=rows[row][1], onset=rows[row][onset], old=rows[row][apex])
        rows[row][apex] = rows[row][onset]

    edit_sheet(_sheet(root), edit)
    return changed


def _smic_clips(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("HS/*/micro/*/*") if p.is_dir())


def smic_cropped(root: Path) -> int:
    """Name every SMIC frame ``reg_image{N}.bmp``, as the cropped release does; returns the number renamed."""
    renamed = 0
    for clip in _smic_clips(root):
        for name in list_frames(clip).values():
            (clip / name).rename(clip / f"reg_{name}")
            renamed += 1
    return renamed


def empty_smic_folder(root: Path, index: int = 0) -> Path:
    """Remove every frame of one SMIC clip folder, keeping the folder (the cropped release's ``s18_sur_03``)."""
    clip = _smic_clips(root)[index]
    for name in list_frames(clip).values():
        (clip / name).unlink()
    return clip


def casme3_clip_package(root: Path) -> list[Path]:
    """Turn a CAS(ME)^3 layout into the ME-clip package: one ``Part_A_ME_clip/frame/<Subject>_<Filename>_<Onset>``
    folder per sheet row holding that micro-expression's frames (numbered as in the recording); the recording
    folders are removed. Returns the clip folders written."""
    import openpyxl

    ws = openpyxl.load_workbook(_sheet(root), read_only=True).worksheets[0]
    cells = [list(r) for r in ws.iter_rows(values_only=True)]
    header, rows = cells[0], cells[1:]
    s, f, on, off = (_column(header, c) for c in ("Subject", "Filename", "Onset", "Offset"))
    written = []
    for r in rows:
        subject = f"spNO.{str(r[s]).split('.')[-1]}"
        takes = [d for d in (root / subject).iterdir() if d.name.casefold() == str(r[f]).casefold()]
        take = takes[0] / "color"  # the folder of a Filename upper-cased by uppercase_filename too
        target = root / CLIP_PACKAGE / f"{subject}_{r[f]}_{r[on]}"
        target.mkdir(parents=True)
        for number, name in list_frames(take).items():
            if r[on] <= number <= r[off]:
                shutil.copy2(take / name, target / name)
        written.append(target)
    for folder in sorted(root.glob("spNO.*")):
        shutil.rmtree(folder)
    return written
