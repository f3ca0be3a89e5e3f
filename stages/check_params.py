"""DVC stage `check_params`: validate the whole params.yaml before any other stage runs -> data/params_checked.txt.

DVC deletes a stage's outputs before it runs the stage's command, so a stage that refuses a bad params file
itself has already lost its outputs, and a section no stage depends on (``trian:`` for ``train:``) would
never be looked at. This stage depends on every key of params.yaml and every other stage depends on its
output, so DVC runs it first and stops at its error. Its output's bytes never depend on the values: a
valid change reruns this stage but nothing else on its account.
"""

from __future__ import annotations

import sys
from pathlib import Path

import _common

from memix.config import load_params
from memix.io import atomic, paths

CHECKED = "params.yaml passed memix/config's schema; see dvc.lock for the values\n"


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("check_params", "Validate params.yaml (every section) before any other stage runs.")
    p.add_argument("--out", default=str(paths.PARAMS_CHECKED), help="marker file (default: %(default)s)")
    args = p.parse_args(argv)

    def body() -> None:
        load_params(args.params)
        atomic.remove_stale_temps(args.out)
        atomic.write_text(Path(args.out), CHECKED)

    return _common.run("check_params", body)


if __name__ == "__main__":
    sys.exit(main())
