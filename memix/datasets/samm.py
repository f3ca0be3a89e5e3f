"""SAMM: ``<root>/<subj>/<subj>_<inducement>_<n>/<subj>_<frame>.jpg`` with 4- or 5-digit frame numbers.

Subjects are canonical three-digit strings (``006``), as SAMM names its folders; a sheet may hold 6 or "006".
The coding sheet has notes rows above its header: the header is found by content (see sheets.read_sheet). Its
``Objective Classes`` column (MEGC 2018's AU-based classes, numbers 1-7) is what ``classes: objective`` reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memix.datasets.adapter import Adapter, existing_dir, subject_folder, subject_number


def canonical_subject(value: Any) -> str:
    return f"{subject_number(value):03d}"


def subject_dirs(subject: str) -> list[str]:
    number = subject_number(subject)
    return list(dict.fromkeys([f"{number:03d}", str(number)]))


def clip_dir(root: Path, subject: str, filename: str, onset: int | None = None) -> Path:
    return existing_dir(subject_folder(root, subject_dirs(subject), subject) / filename)


ADAPTER = Adapter(
    name="samm",
    canonical_subject=canonical_subject,
    clip_dir=clip_dir,
    layout="<subj>/<subj>_<inducement>_<n>/<subj>_<frame>.jpg",
)
