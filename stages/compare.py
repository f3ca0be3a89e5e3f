"""DVC stage `compare`: the mixup comparison table over methods and seeds -> reports/mixup_table.{md,json,png}."""

from __future__ import annotations

import sys
from pathlib import Path

import _common

from memix.config import load_params
from memix.evaluation import report
from memix.io import paths


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("compare", "The mixup comparison table over compare.methods and compare.seeds.")
    p.add_argument("--eval-root", default=str(paths.EVAL), help="evaluations (default: %(default)s)")
    p.add_argument("--out", default=str(paths.COMPARE), help="output folder (default: %(default)s)")
    args = p.parse_args(argv)

    def body() -> None:
        report.run(load_params(args.params).compare, eval_root=Path(args.eval_root), out_dir=Path(args.out))

    return _common.run("compare", body)


if __name__ == "__main__":
    sys.exit(main())
