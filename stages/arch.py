"""DVC stage `arch@<run>`: one run of the architecture comparison (architectures.runs.<run>): LOSO-train and evaluate
each of its methods with its model and recipe -> data/arch/<run>/."""

from __future__ import annotations

import sys
from pathlib import Path

import _common

from memix.config import load_params
from memix.evaluation import arch_runs
from memix.io import atomic, paths


def main(argv: list[str] | None = None) -> int:
    p = _common.parser(
        "arch",
        "Train and evaluate one run of architectures.runs (its model, its authors' recipe, its mixing methods) under "
        "the same LOSO, seeds and flow set as the mixing table; resumes from checkpoints.",
    )
    p.add_argument("--run", required=True, help="a key of architectures.runs")
    p.add_argument("--flow", default=str(paths.FLOW), help="flow stage output (default: %(default)s)")
    p.add_argument("--out", help="output folder (default: data/arch/<run>)")
    args = p.parse_args(argv)

    def body() -> None:
        params = load_params(args.params)
        if args.run not in params.architectures.runs:
            known = ", ".join(params.architectures.runs) or "none"
            raise ValueError(f"--run {args.run!r} is not in architectures.runs (runs: {known})")
        out = Path(args.out) if args.out else paths.arch_dir(args.run)
        atomic.remove_stale_temps(out / arch_runs.RUN_FILE)
        arch_runs.run(params, args.run, flow_dir=Path(args.flow), out_dir=out)

    return _common.run("arch", body)


if __name__ == "__main__":
    sys.exit(main())
