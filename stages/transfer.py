"""DVC stage `transfer`: one mixing method under one cross-dataset protocol, every seed ->
data/transfer/<protocol>/<method>/ (the train stage's files: predictions, history, curves, DVCLive runs)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import _common

from memix.config import MIXING_METHODS, TRANSFER_PROTOCOLS, load_params, method_title
from memix.io import atomic, paths
from memix.training import run
from memix.training.summary import run_summary

log = logging.getLogger("memix.stages.transfer")


def main(argv: list[str] | None = None) -> int:
    p = _common.parser(
        "transfer",
        "Train one mixing method under a cross-dataset protocol of a composite's sources, every seed in "
        "compare.seeds: holdout_database (train on one source, test on another, each ordered pair) or "
        "leave_one_dataset_out (train on all sources but one, test on it). Normalisation statistics come from the "
        "training side only; the folds are batched as in the train stage.",
    )
    p.add_argument("--protocol", choices=TRANSFER_PROTOCOLS, required=True, help="cross-dataset protocol")
    p.add_argument("--method", choices=MIXING_METHODS, default="none", help="mixing method (default: %(default)s)")
    p.add_argument("--flow", default=str(paths.FLOW), help="flow stage output (default: %(default)s)")
    p.add_argument("--out", help="output folder (default: data/transfer/<protocol>/<method>)")
    p.add_argument("--restart", action="store_true", help="ignore checkpoints and start from the first epoch")
    args = p.parse_args(argv)

    def body() -> None:
        out = Path(args.out) if args.out else paths.transfer_dir(args.protocol, args.method)
        atomic.remove_stale_temps(*(out / name for name in run.OUTPUTS))
        run.run(load_params(args.params), method=args.method, flow_dir=Path(args.flow), out_dir=out,
                resume=not args.restart, protocol=args.protocol)
        log.info("%s", run_summary(f"transfer {args.protocol} {method_title(args.method)}", out))

    return _common.run("transfer", body)


if __name__ == "__main__":
    sys.exit(main())
