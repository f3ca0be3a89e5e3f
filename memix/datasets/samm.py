"""SAMM: ``<root>/<subj>/<subj>_<inducement>_<n>/<subj>_<frame>.jpg`` with 4- or 5-digit frame numbers.

Subjects are canonical three-digit strings (``006``), as SAMM names its folders; a sheet may hold 6 or "006".
"""

from __future__ import annotations

from typing import Any

from memix.datasets.adapter import Adapter, subject_number


def canonical_subject(value: Any) -> str:
    return f"{subject_number(value):03d}"


def subject_dirs(subject: str) -> list[str]:
    number = subject_number(subject)
    return list(dict.fromkeys([f"{number:03d}", str(number)]))


ADAPTER = Adapter(name="samm", canonical_subject=canonical_subject, subject_dirs=subject_dirs)
