"""DVC stage `arch@<run>`: one run of the architecture comparison (architectures.runs.<run>): LOSO-train and evaluate
each of its methods with its model and recipe -> data/arch/<run>/.

Its params dep is ``data/arch_params/<run>.json``, the values it reads (written by ``check_params``); it refuses to
run when that file does not hold what params.yaml gives now (forced with ``dvc repro -s -f`` after a change, which
skips check_params), so what DVC records for the run is what it trained with."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import _common

from memix.config import arch_run_inputs, load_params, method_title
from memix.evaluation import arch_runs
from memix.io import atomic, paths
from memix.training.summary import run_summary

log = logging.getLogger("memix.stages.arch")


def main(argv: list[str] | None = None) -> int:
    p = _common.parser(
        "arch",
        "Train and evaluate one run of architectures.runs (its model, its authors' recipe, its mixing methods) under "
        "the same LOSO, seeds and flow set as the mixing table; resumes from checkpoints.",
    )
    p.add_argument("--run", required=True, help="a key of architectures.runs")
    p.add_argument("--flow", default=str(paths.FLOW), help="flow stage output (default: %(default)s)")
    p.add_argument("--out", help="output folder (default: data/arch/<run>)")
    p.add_argument("--arch-params", default=str(paths.ARCH_PARAMS),
                   help="check_params' folder of each run's params, checked against params.yaml if the run's file is "
                   "there (default: %(default)s)")
    args = p.parse_args(argv)

    def body() -> None:
        params = load_params(args.params)
        if args.run not in params.architectures.runs:
            known = ", ".join(params.architectures.runs) or "none"
            raise ValueError(f"--run {args.run!r} is not in architectures.runs (runs: {known})")
        recorded = Path(args.arch_params) / f"{args.run}.json"
        if recorded.is_file() and recorded.read_bytes() != atomic.json_bytes(arch_run_inputs(params, args.run)):
            raise ValueError(
                f"{recorded} does not hold the params {args.params} gives run {args.run} now (it changed after "
                "check_params ran): run `dvc repro`, which runs check_params first, not `dvc repro -s`"
            )
        out = Path(args.out) if args.out else paths.arch_dir(args.run)
        atomic.remove_stale_temps(out / arch_runs.RUN_FILE)
        arch_runs.run(params, args.run, flow_dir=Path(args.flow), out_dir=out)
        methods = params.architectures.runs[args.run].methods
        log.info("arch %s: %s", args.run, " | ".join(run_summary(method_title(m), out / "train" / m) for m in methods))

    return _common.run("arch", body)


if __name__ == "__main__":
    sys.exit(main())
