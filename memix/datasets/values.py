"""Sheet cells as ingest reads them: frame numbers, text, folder names, and values as the report writes them."""

from __future__ import annotations

from pathlib import PurePosixPath, PureWindowsPath
from typing import Any


def jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    return str(value)


def as_int(value: Any) -> int | None:
    """An integer frame number from 46, 46.0 or "46"; None for "/", blanks and anything else."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = str(value).strip()
    return int(text) if text.isdigit() else None


def text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split())


def same(cell: Any, value: Any) -> bool:
    """Whether a sheet cell holds ``value`` (numbers compared as numbers, anything else as trimmed text)."""
    a, b = as_int(cell), as_int(value)
    if a is not None or b is not None:
        return a == b
    return text(cell) == text(value)


def folder_name_problem(name: str) -> str | None:
    """Why a sheet's Filename cannot be a single folder name (anything that could leave the dataset root)."""
    if not name:
        return "empty"
    bad = (
        name in {".", ".."}
        or "/" in name
        or "\\" in name
        or PurePosixPath(name).is_absolute()
        or PureWindowsPath(name).is_absolute()
        or PureWindowsPath(name).drive
        or "\x00" in name
    )
    if bad:
        return (
            f"{name!r} is not a plain folder name (no '..', separators or absolute paths: no path may leave the "
            "dataset root)"
        )
    return None
