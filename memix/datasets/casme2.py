"""CASME II (and the synthetic set, which copies its layout): ``<root>/subNN/<Filename>/img{N}.jpg``.

Subjects are canonical ``sub01``; on disk either ``sub01`` or a bare ``01``/``1`` folder. Frames may be
``img{N}.jpg`` (raw) or ``reg_img{N}.jpg`` (the authors' crops): frame discovery parses N either way.

Objective classes (``classes: objective``, MEGC 2018): CASME II's coding sheet has no such column. Davison et al.
released them as a workbook of their own, ``CASME2-ObjectiveClasses.xlsx`` (Subject, Filename, ..., Objective
Class, the class as a number 1-7), which MER code reads beside the coding sheet. So ingest looks for exactly one
.xlsx named like ``*ObjectiveClasses*`` in the coding sheet's folder (it never counts as the coding sheet) and
merges its class into each row by Subject + Filename, the key patches use too: the coding sheet stays the one
source of onset, apex and offset. A clip the workbook does not list is dropped and reported; a coding sheet with
its own objective column is read as it is (one of the two, never both).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memix.datasets.adapter import Adapter, existing_dir, subject_folder, subject_number


def canonical_subject(value: Any) -> str:
    return f"sub{subject_number(value):02d}"


def subject_dirs(subject: str) -> list[str]:
    number = subject_number(subject)
    return list(dict.fromkeys([f"sub{number:02d}", f"{number:02d}", str(number)]))


def clip_dir(root: Path, subject: str, filename: str, onset: int | None = None) -> Path:
    return existing_dir(subject_folder(root, subject_dirs(subject), subject) / filename)


ADAPTER = Adapter(
    name="casme2",
    canonical_subject=canonical_subject,
    clip_dir=clip_dir,
    layout="subNN/<Filename>/img{N}.jpg",
    objective_file="CASME2-ObjectiveClasses.xlsx",
)
