"""Pool workers that do not outlive their parent.

A ``ProcessPoolExecutor`` worker waits on a queue whose write end it holds itself, so when the parent is
killed outright (SIGKILL, the out-of-memory killer) nothing wakes it: it stays, holding its memory (about
150 MB for a flow worker), until someone kills it by hand. Each pool's initializer calls
:func:`die_with_parent` with the parent's pid, taken in the parent before the pool starts.

On Linux the kernel does it: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` kills the worker when the thread that
started it ends, so pools must be started from a thread that lives as long as the pool (the main thread).
Elsewhere a daemon thread polls the parent pid once a second and ends the process when it changes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
POLL_SECONDS = 1.0


def start_worker(parent_pid: int) -> str:
    """What every pool worker does first: leave Ctrl-C to the parent (it reaches the terminal's whole process
    group; the parent alone reports it, in one line, and stops the pool) and end with the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return die_with_parent(parent_pid)


def die_with_parent(parent_pid: int) -> str:
    """Make this process end when the process ``parent_pid`` ends; return how (``prctl`` or ``poll``)."""
    how = "prctl" if _linux_pdeathsig() else "poll"
    if how == "poll":
        threading.Thread(target=_watch, args=(parent_pid,), name="memix-parent-watch", daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before the signal was armed: nothing would deliver it
        os._exit(1)
    return how


def _linux_pdeathsig() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    return False


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(POLL_SECONDS)
    os._exit(1)


__all__ = ["die_with_parent", "start_worker"]
