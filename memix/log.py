"""Logging for memix: status messages go through ``logging`` under the ``memix`` logger, never ``print``.

Library modules that report take ``logging.getLogger(__name__)`` (so ``memix.preprocess.faces`` and so on) and
configure nothing; only the entry points (``stages/_common.py``, ``memix.cli``) call :func:`configure`, which
maps a verbosity to levels:

* ``-1`` (``--quiet``): warnings and errors only; the bars stay (tqdm reads its defaults from the environment
  when it is imported, before any option is parsed: ``TQDM_DISABLE=1`` hides them);
* ``0`` (default): INFO, i.e. each stage's one-line summary, plus the bars;
* ``1`` (``--verbose``): DEBUG, with time and logger name on each line, and MediaPipe's native log. With no
  option, ``MEMIX_DEBUG`` set in the environment means the same, so ``MEMIX_DEBUG=1 dvc repro`` talks too.

Records are written with ``tqdm.write`` so that a line never lands in the middle of an active progress bar.
MediaPipe's C++ side (absl, TFLite, LiteRT) prints straight onto file descriptor 2 and ignores the usual
environment switches (``GLOG_minloglevel``, ``TF_CPP_MIN_LOG_LEVEL``, ``ABSL_MIN_LOG_LEVEL`` have no effect on
mediapipe 1.2), so :func:`native_stderr` captures that descriptor around each native call instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator

from tqdm import tqdm

ROOT = "memix"
NATIVE = "memix.native"
"""Logger whose DEBUG level decides whether native (C++) stderr output is shown."""

QUIET, NORMAL, VERBOSE = -1, 0, 1
_PLAIN = "%(levelname_prefix)s%(message)s"
_DETAILED = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class _Formatter(logging.Formatter):
    """INFO lines are the bare message; warnings and errors say what they are."""

    def format(self, record: logging.LogRecord) -> str:
        record.levelname_prefix = "" if record.levelno <= logging.INFO else f"{record.levelname.lower()}: "
        return super().format(record)


class TqdmHandler(logging.Handler):
    """Writes each record through ``tqdm.write`` to the stderr of the moment, so bars are cleared and redrawn."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # logging must never take the run down
            self.handleError(record)


def configure(verbosity: int = NORMAL) -> None:
    """Send ``memix`` records (and other libraries' warnings) to stderr at the level ``verbosity`` asks for.

    Idempotent: a second call replaces the handler the first installed and leaves other handlers alone.
    """
    verbosity = max(QUIET, min(VERBOSE, int(verbosity)))
    if verbosity == NORMAL and os.environ.get("MEMIX_DEBUG"):
        verbosity = VERBOSE
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, TqdmHandler)]:
        root.removeHandler(handler)
    handler = TqdmHandler()
    handler.setFormatter(_Formatter(_DETAILED if verbosity == VERBOSE else _PLAIN, datefmt="%H:%M:%S"))
    root.addHandler(handler)
    level = {QUIET: logging.WARNING, NORMAL: logging.INFO, VERBOSE: logging.DEBUG}[verbosity]
    logging.getLogger(ROOT).setLevel(level)


_native_lock = threading.RLock()
_native_depth = 0


KNOWN_ERRORS = (ValueError, FileNotFoundError, RuntimeError, OSError)
"""Failures with a message meant for the user (bad input, missing file, a full disk): one line, no traceback."""


INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT), as a shell reports it."""


def run_reporting(name: str, body: Callable[[], None], verbosity: int = NORMAL) -> int:
    """Configure logging, run ``body``; a known failure becomes ``<name>: error: <message>`` on stderr and exit
    status 1 (``MEMIX_DEBUG=1`` re-raises it with its traceback). Ctrl-C becomes one line, ``interrupted: <what a
    rerun does>`` (the message the ``KeyboardInterrupt`` carries), and exit status 130. The stages and ``memix``
    both end this way."""
    configure(verbosity)
    try:
        body()
    except KeyboardInterrupt as err:
        if os.environ.get("MEMIX_DEBUG"):
            raise
        print(f"interrupted: {err}" if str(err) else f"{name}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except KNOWN_ERRORS as err:
        if os.environ.get("MEMIX_DEBUG"):
            raise
        print(f"{name}: error: {err}", file=sys.stderr)
        return 1
    return 0


@contextlib.contextmanager
def native_stderr(what: str) -> Iterator[None]:
    """Capture what native code writes to file descriptor 2 inside the block, unless ``memix.native`` is at DEBUG.

    The captured text is dropped when the block succeeds and logged as a warning when it raises (it may say
    why). ``what`` names the call in that warning. Nested blocks capture once, at the outermost.
    """
    global _native_depth
    if logging.getLogger(NATIVE).isEnabledFor(logging.DEBUG):
        yield
        return
    with _native_lock:
        outermost = _native_depth == 0
        _native_depth += 1
        try:
            if not outermost:
                yield
                return
            with tempfile.TemporaryFile() as sink:
                with contextlib.suppress(Exception):
                    sys.stderr.flush()
                saved = os.dup(2)
                os.dup2(sink.fileno(), 2)
                try:
                    yield
                except BaseException:
                    _restore(saved)
                    saved = -1
                    sink.seek(0)
                    text = sink.read().decode("utf-8", "replace").strip()
                    if text:
                        logging.getLogger(NATIVE).warning("%s failed; MediaPipe's native log:\n%s", what, text)
                    raise
                finally:
                    if saved >= 0:
                        _restore(saved)
        finally:
            _native_depth -= 1


def _restore(saved: int) -> None:
    os.dup2(saved, 2)
    os.close(saved)


__all__ = ["NATIVE", "NORMAL", "QUIET", "ROOT", "VERBOSE", "TqdmHandler", "configure", "native_stderr"]
