"""Coding sheets (CASME II's by default), written so equal rows give byte-identical .xlsx files.

openpyxl stamps the current time into ``docProps/core.xml`` and into every zip member's header; both are
pinned here (fixed workbook properties, zip rewritten with a fixed ``date_time``) so DVC caches hit.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

# CASME II's header, blank columns included (None = an empty header cell).
HEADER: tuple[str | None, ...] = (
    "Subject",
    "Filename",
    None,
    "OnsetFrame",
    "ApexFrame",
    "OffsetFrame",
    None,
    "Action Units",
    "Estimated Emotion",
)
SHEET_NAME = "Sheet1"
FIXED_TIME = dt.datetime(2014, 5, 8)  # the date of CASME II's best-known sheet release
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def sheet_row(subject: int, filename: str, onset: int, apex: int, offset: int, aus: str, emotion: str) -> list[Any]:
    """One row in HEADER's order; a single bilateral AU is stored as an int, as in CASME II's sheet."""
    au_cell: Any = int(aus) if aus.isdigit() else aus
    return [subject, filename, None, onset, apex, offset, None, au_cell, emotion]


def sheet_bytes(
    rows: Iterable[Sequence[Any]],
    header: Sequence[str | None] = HEADER,
    title: str = SHEET_NAME,
    notes: Iterable[Sequence[Any]] = (),
) -> bytes:
    """The .xlsx file content for ``rows`` (each in ``header``'s order, below any ``notes`` rows above the
    header, as SAMM's sheet has them), identical bytes for identical input."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = title
    for note in notes:
        ws.append(list(note))
    ws.append(list(header))
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"sheet row has {len(row)} cells, expected {len(header)}: {row!r}")
        ws.append(list(row))
    props = wb.properties
    props.creator = "memix.synth"
    props.lastModifiedBy = "memix.synth"
    props.created = FIXED_TIME
    buf = io.BytesIO()
    wb.save(buf)  # sets properties.modified to now; core.xml is pinned below
    return _pin_zip(buf.getvalue())


def _pin_zip(data: bytes) -> bytes:
    """Rewrite the zip with fixed member timestamps and a fixed docProps/core.xml modification time."""
    stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ")
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            content = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = _pin_core(content.decode("utf-8"), stamp).encode("utf-8")
            member = zipfile.ZipInfo(info.filename, date_time=ZIP_TIME)
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o644 << 16
            dst.writestr(member, content)
    return out.getvalue()


def _pin_core(xml: str, stamp: str) -> str:
    import re

    for tag in ("dcterms:created", "dcterms:modified"):
        xml, n = re.subn(rf"(<{tag}[^>]*>)[^<]*(</{tag}>)", rf"\g<1>{stamp}\g<2>", xml)
        if n != 1:
            raise RuntimeError(f"openpyxl wrote an unexpected docProps/core.xml: {tag} found {n} times")
    return xml


def write_sheet(path: Path, rows: Iterable[Sequence[Any]], **layout: Any) -> None:
    """Write the sheet to ``path`` (the caller's folder is already a temp folder, or use memix.io.atomic);
    ``layout`` is passed to :func:`sheet_bytes` (header, title, notes)."""
    Path(path).write_bytes(sheet_bytes(rows, **layout))
