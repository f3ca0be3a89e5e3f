"""What differs between datasets at ingest: how a sheet's Subject reads and where its folders are.

Everything else (sheet reading, frame discovery, checks, report) is shared in :mod:`memix.datasets.ingest`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_SUBJECT = re.compile(r"^(?:sub|s)?0*(\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Adapter:
    name: str
    canonical_subject: Callable[[Any], str]  # sheet cell -> canonical id; ValueError if unreadable
    subject_dirs: Callable[[str], list[str]]  # canonical id -> folder names to look for, in order


def subject_number(value: Any) -> int:
    """The subject's number from a cell holding 1, 1.0, "01", "sub01" or "006"; ValueError otherwise."""
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
