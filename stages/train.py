"""DVC stage `train`: leave-one-subject-out training of one mixing method with one seed -> data/train/<m>/seed<N>."""

from __future__ import annotations

import sys
from pathlib import Path

import _common

from memix.config import MIXING_METHODS, load_params
from memix.io import paths
from memix.training import run


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("train", "LOSO-train one mixing method with one seed; resumes from its checkpoints.")
    p.add_argument("--method", choices=MIXING_METHODS, default="none", help="mixing method (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default: %(default)s)")
    p.add_argument("--flow", default=str(paths.FLOW), help="flow stage output (default: %(default)s)")
    p.add_argument("--out", help="output folder (default: data/train/<method>/seed<seed>)")
    p.add_argument("--restart", action="store_true", help="ignore checkpoints and start from the first fold")
    args = p.parse_args(argv)

    def body() -> None:
        out = Path(args.out) if args.out else paths.train_dir(args.method, args.seed)
        run.run(
            load_params(args.params), method=args.method, seed=args.seed, flow_dir=Path(args.flow), out_dir=out,
            resume=not args.restart,
        )

    return _common.run("train", body)


if __name__ == "__main__":
    sys.exit(main())
