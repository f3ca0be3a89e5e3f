"""Runs that talk: memix's log levels per verbosity, lines that do not break progress bars, native stderr captured."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from memix import log

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _restore_logging(monkeypatch: pytest.MonkeyPatch):
    """configure() changes process-wide state: put the root handlers and memix's levels back after each test."""
    monkeypatch.delenv("MEMIX_DEBUG", raising=False)
    root = logging.getLogger()
    handlers, levels = list(root.handlers), {n: logging.getLogger(n).level for n in (log.ROOT, log.NATIVE)}
    yield
    root.handlers[:] = handlers
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def _emit_all() -> None:
    logger = logging.getLogger("memix.some.module")
    logger.debug("a debug line")
    logger.info("an info line")
    logger.warning("a warning line")


def test_default_shows_info_bare_and_warnings_labelled(capsys: pytest.CaptureFixture[str]) -> None:
    log.configure(log.NORMAL)
    _emit_all()
    err = capsys.readouterr().err.splitlines()
    assert err == ["an info line", "warning: a warning line"]


def test_verbose_adds_debug_with_logger_names(capsys: pytest.CaptureFixture[str]) -> None:
    log.configure(log.VERBOSE)
    _emit_all()
    err = capsys.readouterr().err
    assert "DEBUG   memix.some.module: a debug line" in err
    assert "INFO    memix.some.module: an info line" in err


def test_memix_debug_in_the_environment_means_verbose(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMIX_DEBUG", "1")
    log.configure(log.NORMAL)
    _emit_all()
    assert "memix.some.module: a debug line" in capsys.readouterr().err
    assert logging.getLogger(log.NATIVE).isEnabledFor(logging.DEBUG)


def test_quiet_keeps_warnings_only(capsys: pytest.CaptureFixture[str]) -> None:
    log.configure(log.QUIET)
    _emit_all()
    assert capsys.readouterr().err.splitlines() == ["warning: a warning line"]


def test_configuring_twice_does_not_double_lines(capsys: pytest.CaptureFixture[str]) -> None:
    log.configure(log.NORMAL)
    log.configure(log.NORMAL)
    logging.getLogger("memix.x").info("once")
    assert capsys.readouterr().err.splitlines() == ["once"]


def test_a_line_logged_during_a_bar_is_not_glued_to_it(capsys: pytest.CaptureFixture[str]) -> None:
    from tqdm import tqdm

    log.configure(log.NORMAL)
    for i in tqdm(range(3), desc="bar", file=sys.stderr):
        if i == 1:
            logging.getLogger("memix.x").info("in the middle")
    err = capsys.readouterr().err
    assert "\nin the middle\n" in err.replace("\r", "\n")


def test_native_stderr_is_captured_unless_verbose(capfd: pytest.CaptureFixture[str]) -> None:
    with log.native_stderr("a native call"):
        os.write(2, b"W0000 native chatter\n")
    assert "native chatter" not in capfd.readouterr().err

    logging.getLogger(log.NATIVE).setLevel(logging.DEBUG)
    with log.native_stderr("a native call"):
        os.write(2, b"W0000 native chatter\n")
    assert "native chatter" in capfd.readouterr().err


def test_native_stderr_of_a_failed_call_is_logged(capfd: pytest.CaptureFixture[str]) -> None:
    log.configure(log.NORMAL)
    with pytest.raises(RuntimeError, match="boom"), log.native_stderr("loading the model"):
        os.write(2, b"E0000 why it failed\n")
        raise RuntimeError("boom")
    err = capfd.readouterr().err
    assert "warning: loading the model failed; MediaPipe's native log:\nE0000 why it failed" in err
    os.write(2, b"fd 2 is back\n")
    assert "fd 2 is back" in capfd.readouterr().err


def _stage(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MEMIX_DEBUG"}
    return subprocess.run(
        [sys.executable, str(REPO / "stages" / "face_model.py"), *args], cwd=cwd, env=env, capture_output=True,
        text=True, check=False,
    )


def test_stage_summary_shows_by_default_and_not_with_quiet(tmp_path: Path, face_model_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("{}\n")  # every default
    out = tmp_path / "face_landmarker.task"
    proc = _stage("--source", str(face_model_path), "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"face_model: {out} ready" in proc.stderr
    assert proc.stdout == ""

    proc = _stage("--source", str(face_model_path), "--out", str(out), "-q", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == ""

    proc = _stage("--source", str(face_model_path), "--out", str(out), "-v", cwd=tmp_path)
    assert "already holds the pinned file" in proc.stderr


def test_ctrl_c_is_one_line_and_exit_status_130(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any stage or command stopped with Ctrl-C: one line, no traceback; a message says what a rerun does."""
    monkeypatch.delenv("MEMIX_DEBUG", raising=False)

    def interrupted() -> None:
        raise KeyboardInterrupt

    def interrupted_saying() -> None:
        raise KeyboardInterrupt("rerun resumes from 3 finished groups")

    assert log.run_reporting("stage flow", interrupted) == 130
    assert capsys.readouterr().err == "stage flow: interrupted\n"
    assert log.run_reporting("stage train", interrupted_saying) == 130
    assert capsys.readouterr().err == "interrupted: rerun resumes from 3 finished groups\n"
