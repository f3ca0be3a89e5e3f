"""Every stage ends with its one-line summary (README: "Each stage ends with a one-line summary"), read from the
tiny project's first ``dvc repro`` output, where each stage's lines follow DVC's ``Running stage '<name>'``."""

from __future__ import annotations

import re
from pathlib import Path

from dvcproject import REPRO_LOG


def _sections(log: str) -> dict[str, list[str]]:
    """Stage name -> the lines it printed (up to the next stage, or DVC's lock-file line)."""
    out: dict[str, list[str]] = {}
    current = None
    for line in log.splitlines():
        started = re.match(r"Running stage '([^']+)'", line)
        if started:
            current = started.group(1)
            out[current] = []
        elif current is not None:
            if line.startswith(("Updating lock file", "Use `dvc push`", "To track the changes")):
                current = None
            else:
                out[current].append(line)
    return out


def test_every_stage_that_ran_printed_its_one_line_summary(tiny_project: Path) -> None:
    sections = _sections((tiny_project / ".git" / REPRO_LOG).read_text())
    assert {"code", "check_params", "synth", "ingest", "faces", "flow", "compare", "models_table"} <= set(sections)
    missing = {}
    for stage, lines in sections.items():
        said = [x for x in lines if x.strip() and "%|" not in x  # progress bars (tqdm) are not what a stage says
                and not x.startswith(("> python", "warning:", "Generating lock file"))]
        # the last thing it says is its summary (a warning about what it found may follow), starting with its name
        if not said or not re.match(rf"{stage.split('@')[0]}[ :(]", said[-1]):
            missing[stage] = said[-3:]
    assert not missing, missing
