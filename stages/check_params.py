"""DVC stage `check_params`: validate the whole params.yaml before any other stage runs -> data/params_checked.txt,
and each architecture run's params -> data/arch_params/<run>.json.

DVC deletes a stage's outputs before it runs the stage's command, so a stage that refuses a bad params file
itself has already lost its outputs, and a section no stage depends on (``trian:`` for ``train:``) would
never be looked at. This stage depends on every key of params.yaml and every other stage depends on its
output, so DVC runs it first and stops at its error (a run's ``model.name`` and ``model.options`` included). The
marker's bytes never depend on the values: a valid change reruns this stage but nothing else on its account.

``arch@<run>`` reads the top-level ``train`` under its recipe, the mixing sections of its own methods, ``eval`` and
the seeds; dvc.yaml cannot list "the train keys this run's recipe leaves alone", so this stage writes the values a
run reads (:func:`memix.config.arch_run_inputs`) to ``data/arch_params/<run>.json`` and the run depends on that file:
``train.epochs`` changed at the top reruns a run whose recipe sets its own epochs no more. ``index.txt`` lists the
runs (and marks the folder as this stage's).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import _common

from memix.config import arch_run_inputs, load_params
from memix.io import atomic, paths

CHECKED = "params.yaml passed memix/config's schema; see dvc.lock for the values\n"
INDEX = "index.txt"

log = logging.getLogger("memix.stages.check_params")


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("check_params", "Validate params.yaml (every section) before any other stage runs.")
    p.add_argument("--out", default=str(paths.PARAMS_CHECKED), help="marker file (default: %(default)s)")
    p.add_argument("--arch-params", help="folder of each architecture run's params, <run>.json (default: "
                   f"{paths.ARCH_PARAMS}, i.e. arch_params beside --out)")
    args = p.parse_args(argv)

    def body() -> None:
        params = load_params(args.params)
        arch_params = Path(args.arch_params) if args.arch_params else Path(args.out).with_name(paths.ARCH_PARAMS.name)
        atomic.remove_stale_temps(args.out, arch_params)
        runs = list(params.architectures.runs)
        with atomic.atomic_paths(args.out, arch_params, owned=atomic.owned_if_holds(INDEX)) as (marker, folder):
            marker.write_text(CHECKED, encoding="utf-8")
            folder.mkdir()
            (folder / INDEX).write_text("".join(f"{run}.json\n" for run in runs), encoding="utf-8")
            for run in runs:
                (folder / f"{run}.json").write_bytes(atomic.json_bytes(arch_run_inputs(params, run)))
        log.info("check_params: %s is valid (every section; %d architecture run(s)) -> %s", args.params, len(runs),
                 args.out)

    return _common.run("check_params", body)


if __name__ == "__main__":
    sys.exit(main())
