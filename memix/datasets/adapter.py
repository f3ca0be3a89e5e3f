"""What differs between datasets at ingest; everything else is shared in :mod:`memix.datasets.ingest`.

An adapter says how a sheet's Subject reads, where a clip's frames are, which header spellings its coding sheet
uses, whether the sheet annotates an apex, and (for a dataset without a coding sheet, SMIC) how the clip list
is read from the folders instead. Sheet reading, patches, class maps, frame discovery, checks and the report
are the same code for every dataset.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memix.datasets.sheets import COLUMNS, REQUIRED, Sheet, find_sheet, read_sheet

_SUBJECT = re.compile(r"^(?:sub|s)?0*(\d+)$", re.IGNORECASE)


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
    clip_dir: Callable[[Path, str, str], Path]  # (source root, canonical subject, Filename) -> the frames' folder
    layout: str  # the folder pattern, for the report and README
    columns: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(COLUMNS))
    required: tuple[str, ...] = REQUIRED
    has_apex: bool = True  # False: the apex is the middle frame (SMIC), said once in the report
    read: Callable[[Adapter, Path, str | None], Sheet] = _read_coding_sheet  # (adapter, root, params sheet)
    skip_row: Callable[[Mapping[str, Any]], str | None] = _keep_row  # a reason to drop a row before anything else

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


def subject_folder(root: Path, names: list[str], subject: str) -> Path:
    """The subject's folder under one of its spellings; none, or two of them, is a :class:`LayoutError`."""
    found = [root / n for n in names if (root / n).is_dir()]
    if not found:
        raise LayoutError("subject", f"no folder {' or '.join(names)} for subject {subject} in {root}")
    if len(found) > 1:
        listed = " and ".join(p.name for p in found)
        raise LayoutError("subject", f"both {listed} exist in {root}; keep one")
    return found[0]


def existing_dir(path: Path, what: str = "clip folder") -> Path:
    if not path.is_dir():
        raise LayoutError("filename", f"{what} {path} not found")
    return path


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
