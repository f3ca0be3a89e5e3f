"""DVC stage `evaluate`: pooled LOSO metrics of one (method, seed) for the last and oracle rules -> reports/eval."""

from __future__ import annotations

import sys
from pathlib import Path

import _common

from memix.config import MIXING_METHODS, load_params
from memix.evaluation import evaluate
from memix.io import paths


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("evaluate", "Pooled LOSO metrics (accuracy, F1/UF1, UAR) for the last and oracle rules.")
    p.add_argument("--method", choices=MIXING_METHODS, default="none", help="mixing method (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default: %(default)s)")
    p.add_argument("--train-dir", help="train output folder (default: data/train/<method>/seed<seed>)")
    p.add_argument("--out", help="output folder (default: reports/eval/<method>/seed<seed>)")
    args = p.parse_args(argv)

    def body() -> None:
        src = Path(args.train_dir) if args.train_dir else paths.train_dir(args.method, args.seed)
        out = Path(args.out) if args.out else paths.eval_dir(args.method, args.seed)
        evaluate.run(load_params(args.params).eval, train_dir=src, out_dir=out)

    return _common.run("evaluate", body)


if __name__ == "__main__":
    sys.exit(main())
