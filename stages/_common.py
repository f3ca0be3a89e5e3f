"""What every stage script shares; each imports it first.

- ``import memix`` must load THIS checkout's code (the one DVC hashed as the stage's deps), not whatever copy
  the virtual environment's editable install points at: ``dvc exp run --temp`` and queued experiments run
  stages in temporary copies of the project. So the checkout's root goes first on ``sys.path``.
- The ``--params`` option, and failures as one line naming the stage (``MEMIX_DEBUG=1`` for a traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if sys.path[:1] != [str(ROOT)]:
    sys.path.insert(0, str(ROOT))


def parser(stage: str, description: str) -> argparse.ArgumentParser:
    """An argument parser for the stage script ``stages/<stage>.py`` with the shared ``--params`` option."""
    p = argparse.ArgumentParser(prog=f"stages/{stage}.py", description=description)
    p.add_argument("--params", default="params.yaml", help="params file (default: %(default)s)")
    return p


def run(stage: str, body: Callable[[], None]) -> int:
    """Run the stage's body; a known failure becomes one line on stderr and exit status 1."""
    try:
        body()
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as err:
        if os.environ.get("MEMIX_DEBUG"):
            raise
        print(f"stage {stage}: error: {err}", file=sys.stderr)
        return 1
    return 0
