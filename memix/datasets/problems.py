"""What ingest decided (the report's lists) and what it could not accept (problems, raised together at the end).

A new release of a coding sheet usually has several bad rows. Stopping at the first would take one run per row
to find them all, so each row's problem is collected with where it is (sheet row or folder), the clip, the
field, what is wrong and what to write in params to fix it; ingest then stops once, listing them all (the first
:data:`SHOWN` and a count), before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SHOWN = 50


class IngestError(ValueError):
    """Bad dataset input; the message names the sheet (or file), the sheet row and the field."""


class RowProblem(ValueError):
    """One row that cannot be ingested: ``field`` is the sheet header to name, ``fix`` what to write in params."""

    def __init__(self, field: str | None, what: str, fix: str = "") -> None:
        super().__init__(what)
        self.field = field
        self.what = what
        self.fix = fix


@dataclass(frozen=True)
class Problem:
    where: str  # "<sheet>, row N (clip)" or the clip's folder
    field: str | None
    what: str
    fix: str

    def line(self) -> str:
        at = f", field {self.field}" if self.field else ""
        fix = f" -> fix: {self.fix}" if self.fix else ""
        return f"{self.where}{at}: {self.what}{fix}"


@dataclass
class Notes:
    """One source's decisions, each listed in ingest_report.json."""

    dropped: list[dict[str, Any]] = field(default_factory=list)
    patched: list[dict[str, Any]] = field(default_factory=list)
    incomplete: list[dict[str, Any]] = field(default_factory=list)  # kept, but frames missing in the range
    errata: list[dict[str, Any]] = field(default_factory=list)  # built-in errata applied (or not applicable)
    folders: list[dict[str, Any]] = field(default_factory=list)  # folders matched ignoring case
    zero_motion: list[dict[str, Any]] = field(default_factory=list)  # apex == onset as annotated
    long: list[dict[str, Any]] = field(default_factory=list)  # clips longer than the dataset's bound
    middle_apex: int = 0  # clips of a dataset without apex annotation (SMIC) given the middle frame
    objective: dict[str, Any] | None = None  # classes objective: where the classes came from (objective.attach)
    problems: list[Problem] = field(default_factory=list)

    def problem(self, where: str, field: str | None, what: str, fix: str = "") -> None:
        self.problems.append(Problem(where, field, what, fix))


def raise_problems(problems: list[Problem]) -> None:
    """Stop with every problem in one message (the first :data:`SHOWN`, then a count); nothing is written."""
    if not problems:
        return
    if len(problems) == 1:
        raise IngestError(problems[0].line())
    lines = [f"  {i + 1}. {p.line()}" for i, p in enumerate(problems[:SHOWN])]
    more = f"\n  ... and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
    raise IngestError(
        f"{len(problems)} problems in the dataset (nothing was written; fix them all, then rerun):\n"
        + "\n".join(lines)
        + more
    )


def patch_hint(source: str | None, subject: str, filename: str, onset: int | None, field: str, value: str) -> str:
    """The params entry that fixes one field of one row (or leaves the clip out)."""
    key = _key(source, subject, filename, onset)
    return (
        f"dataset.patches: - {{{key}, field: {field}, value: {value}}}, "
        f"or leave it out: dataset.exclude: - {{{key}, reason: ...}}"
    )


def exclude_hint(source: str | None, subject: str, filename: str, onset: int | None) -> str:
    return f"dataset.exclude: - {{{_key(source, subject, filename, onset)}, reason: ...}}"


def _key(source: str | None, subject: str, filename: str, onset: int | None) -> str:
    parts = [f"source: {source}"] if source else []
    parts += [f"subject: '{subject}'", f"filename: '{filename}'"]
    if onset is not None:
        parts.append(f"onset: {onset}")
    return ", ".join(parts)
