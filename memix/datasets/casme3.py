"""CAS(ME)^3 Part A micro-expressions: ``<root>/spNO.<n>/<Filename>/color/{N}.jpg``.

The ME label sheet (``cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx``, worksheet ``label``) has Subject, Filename,
Onset, Apex, Offset, AU, Objective class and emotion columns. A Filename is one recording (a letter), and
several micro-expressions of one recording share it, so each becomes its own clip with ``#<onset>`` on its id.
Subjects are spelled ``spNO.1`` or ``spNo.1`` (both in sheets and on disk): the canonical id is ``spNO.1``.
Frames are numbered without padding. A sheet that also lists macro-expressions (an ``Expression type``
column) has those rows dropped and reported.

The ME-clip package (``Part_A_ME_clip/frame/<Subject>_<Filename>_<Onset>/{N}.jpg``, one folder per
micro-expression, frames numbered as in the full recording) is read too: where the recording's folder is not
there, the clip's folder is looked up by subject, Filename and the sheet's onset, under the root or under
``Part_A_ME_clip/frame`` or ``frame`` inside it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from memix.datasets.adapter import Adapter, LayoutError, child_dir, existing_dir, subject_folder
from memix.datasets.sheets import COLUMNS

_SUBJECT = re.compile(r"^(?:sp\s*no\.?\s*)?0*(\d+)$", re.IGNORECASE)
COLOR = "color"
CLIP_PACKAGE = ("Part_A_ME_clip/frame", "frame", ".")  # where the ME-clip package's folders may sit


def canonical_subject(value: Any) -> str:
    """``spNO.<n>`` from "spNO.1", "spNo.1", "spno1" or 1; ValueError otherwise."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not a CAS(ME)^3 subject: {value!r}")
    match = _SUBJECT.match(str(value).strip())
    if not match:
        raise ValueError(f"not a CAS(ME)^3 subject (spNO.<n>): {value!r}")
    return f"spNO.{int(match.group(1))}"


def subject_dirs(subject: str) -> list[str]:
    number = canonical_subject(subject).split(".")[1]
    return [f"spNO.{number}", f"spNo.{number}", f"spno.{number}"]


def clip_dir(root: Path, subject: str, filename: str, onset: int | None = None) -> Path:
    try:
        take = existing_dir(subject_folder(root, subject_dirs(subject), subject) / filename)
    except LayoutError as err:
        package = _clip_package_dir(root, subject, filename, onset)
        if package is None:
            where = f"{root / CLIP_PACKAGE[0]}/{subject}_{filename}_{onset}"
            raise LayoutError(err.field, f"{err}; nor is there an ME-clip package folder {where}") from None
        return package
    return existing_dir(take / COLOR, what=f"colour frames folder ({COLOR}/) of recording")


def _clip_package_dir(root: Path, subject: str, filename: str, onset: int | None) -> Path | None:
    """``<Subject>_<Filename>_<Onset>`` in the ME-clip package, under any subject spelling; None if absent."""
    if onset is None:
        return None
    names = [f"{s}_{filename}_{onset}" for s in subject_dirs(subject)]
    for base in CLIP_PACKAGE:
        found = child_dir(root / base, names)
        if len(found) == 1:
            return found[0]
    return None


def skip_row(values: Mapping[str, Any]) -> str | None:
    """Rows of other expression types (a full Part A sheet lists macro-expressions too) are not clips here."""
    kind = values.get("expression_type")
    if kind is None or str(kind).strip() == "":
        return None
    text = " ".join(str(kind).split()).lower()
    if text.startswith("micro"):
        return None
    return f"expression type {kind!r} is not a micro-expression"


ADAPTER = Adapter(
    name="casme3",
    canonical_subject=canonical_subject,
    clip_dir=clip_dir,
    layout="spNO.<n>/<Filename>/color/{N}.jpg",
    columns={**COLUMNS, "expression_type": ("expressiontype",)},
    skip_row=skip_row,
    fps=30.0,
)
