"""A full disk for the stage tests: the errors writers raise when it fills, a stage script run in process, and what
its one line must say (tests/training, tests/preprocess and tests/evaluation share it)."""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def full(code: int) -> OSError:
    """What a write to a full disk (or over quota) raises: the errno and its text, no file name."""
    return OSError(code, os.strerror(code))


def raising(err: BaseException) -> Callable[..., None]:
    """A stand-in for a writer that fails with ``err`` whatever it is given."""

    def write(*args: object, **kwargs: object) -> None:
        raise err

    return write


def short_write(requested: int, written: int) -> OSError:
    """numpy's write to a full disk: ``OSError: N requested and M written`` (no errno, no file name)."""
    return OSError(f"{requested} requested and {written} written")


def stage_main(name: str) -> Callable[[list[str]], int]:
    """``main`` of ``stages/<name>.py``, loaded in this process (so monkeypatched writers apply to it)."""
    spec = importlib.util.spec_from_file_location(f"stage_{name}", REPO / "stages" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def the_error_line(stderr: str, stage: str) -> str:
    """The stage's one error line, after checking it is said once, with no traceback (a thread's included)."""
    assert "Traceback" not in stderr and "Exception in thread" not in stderr, stderr
    lines = [line for line in re.split(r"[\r\n]", stderr) if line.startswith(f"stage {stage}: error: ")]
    assert len(lines) == 1, stderr
    assert stderr.count("disk is full") == 1 and stderr.count("MiB free on") == 1, stderr
    return lines[0]


def says_disk_full(line: str, stage: str, output: Path) -> re.Match[str] | None:
    """``stage <stage>: error: <output>: ...the disk is full (...); <N> MiB free on <folder>``, no temp path."""
    if ".tmp" in line:
        return None
    return re.fullmatch(
        rf"stage {stage}: error: {re.escape(str(output))}: (.*: )?the disk is full \((.+)\); "
        r"\d+\.\d MiB free on (\S+)",
        line,
    )
