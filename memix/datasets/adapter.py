"""What differs between datasets at ingest; everything else is shared in :mod:`memix.datasets.ingest`.

An adapter says how a sheet's Subject reads, where a clip's frames are, which header spellings its coding sheet
uses, whether the sheet annotates an apex, and (for a dataset without a coding sheet, SMIC) how the clip list
is read from the folders instead. Sheet reading, patches, class maps, frame discovery, checks and the report
are the same code for every dataset.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memix.datasets.sheets import COLUMNS, REQUIRED, Sheet, find_sheet, read_sheet

_SUBJECT = re.compile(r"^(?:sub|s)?0*(\d+)$", re.IGNORECASE)
# folders found under another letter case while one clip's folder is looked up (see casefold_matches)
_CASE_MATCHES: ContextVar[list[dict[str, str]] | None] = ContextVar("case_matches", default=None)


class LayoutError(ValueError):
    """A clip's folder is not where the layout puts it; ``field`` is the sheet field the message should name."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _read_coding_sheet(adapter: Adapter, root: Path, sheet: str | None) -> Sheet:
    return read_sheet(find_sheet(root, sheet), adapter.columns, adapter.required)


def _keep_row(values: Mapping[str, Any]) -> str | None:
    return None


@dataclass(frozen=True)
class Adapter:
    """One dataset's reading rules; ``clip_dir(root, subject, filename)`` raises :class:`LayoutError`."""

    name: str
    canonical_subject: Callable[[Any], str]  # sheet cell -> canonical id; ValueError if unreadable
    # (source root, canonical subject, Filename, the sheet's onset) -> the frames' folder
    clip_dir: Callable[[Path, str, str, int | None], Path]
    layout: str  # the folder pattern, for the report and README
    columns: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(COLUMNS))
    required: tuple[str, ...] = REQUIRED
    has_apex: bool = True  # False: the apex is the middle frame (SMIC), said once in the report
    read: Callable[[Adapter, Path, str | None], Sheet] = _read_coding_sheet  # (adapter, root, params sheet)
    skip_row: Callable[[Mapping[str, Any]], str | None] = _keep_row  # a reason to drop a row before anything else
    fps: float = 200.0  # frame rate: a clip longer than LONG_CLIP_S at it is reported
    # classes objective: the workbook the release ships the classes in when its coding sheet has no such column
    # (CASME II's CASME2-ObjectiveClasses.xlsx), found next to the coding sheet; None: the sheet's column or nothing
    objective_file: str | None = None

    def table(self, root: Path, sheet: str | None) -> Sheet:
        """The clip list: the coding sheet read by header name (or, for SMIC, the folders)."""
        return self.read(self, root, sheet)


def subject_number(value: Any) -> int:
    """The subject's number from a cell holding 1, 1.0, "01", "sub01", "s3" or "006"; ValueError otherwise."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not a subject number: {value!r}")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"not a subject number: {value!r}")
        value = int(value)
    if isinstance(value, int):
        number = value
    else:
        match = _SUBJECT.match(str(value).strip())
        if not match:
            raise ValueError(f"not a subject number: {value!r}")
        number = int(match.group(1))
    if number < 0:
        raise ValueError(f"not a subject number: {value!r}")
    return number


@contextmanager
def casefold_matches() -> Iterator[list[dict[str, str]]]:
    """Collect the folders the lookups inside the block matched only when ignoring letter case."""
    found: list[dict[str, str]] = []
    token = _CASE_MATCHES.set(found)
    try:
        yield found
    finally:
        _CASE_MATCHES.reset(token)


def child_dir(parent: Path, names: list[str]) -> list[Path]:
    """The folders ``parent/<name>`` for ``names``; where none exists as spelled, the one folder whose name
    equals one of them ignoring case (noted for the report), and none if several do."""
    found = [parent / n for n in dict.fromkeys(names) if (parent / n).is_dir()]
    if found or not parent.is_dir():
        return found
    wanted = {n.casefold() for n in names}
    loose = sorted(p for p in parent.iterdir() if p.name.casefold() in wanted and p.is_dir())
    if len(loose) == 1:
        notes = _CASE_MATCHES.get()
        if notes is not None:
            notes.append({"wanted": " or ".join(dict.fromkeys(names)), "found": loose[0].as_posix()})
        return loose
    return []


def subject_folder(root: Path, names: list[str], subject: str) -> Path:
    """The subject's folder under one of its spellings; none, or two of them, is a :class:`LayoutError`."""
    found = child_dir(root, names)
    if not found:
        raise LayoutError("subject", f"no folder {' or '.join(names)} for subject {subject} in {root}")
    if len(found) > 1:
        listed = " and ".join(p.name for p in found)
        raise LayoutError("subject", f"both {listed} exist in {root}; keep one")
    return found[0]


def existing_dir(path: Path, what: str = "clip folder") -> Path:
    found = child_dir(path.parent, [path.name])
    if not found:
        raise LayoutError("filename", f"{what} {path} not found")
    return found[0]


def one_match(parent: Path, filename: str, where: str) -> Path:
    """The single ``parent/<group>/<filename>`` folder (SMIC and MMEW group clips by emotion folders)."""
    if not parent.is_dir():
        raise LayoutError("filename", f"folder {parent} not found ({where})")
    found = sorted(g / filename for g in parent.iterdir() if g.is_dir() and (g / filename).is_dir())
    if not found:
        raise LayoutError("filename", f"no folder {parent}/<{where}>/{filename} found")
    if len(found) > 1:
        listed = ", ".join(str(p.relative_to(parent)) for p in found)
        raise LayoutError("filename", f"clip {filename} is in several folders of {parent}: {listed}; keep one")
    return found[0]
