"""DVC stage `compare`: the mixup comparison over methods and seeds -> reports/mixup_table.{md,json,png},
reports/summary.json (the DVC metric) and reports/curves.csv (the overlaid curves)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import _common

from memix.config import load_params
from memix.evaluation import report
from memix.io import atomic, paths

log = logging.getLogger("memix.stages.compare")


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("compare", "The mixup comparison table over compare.methods and compare.seeds.")
    p.add_argument("--eval-root", default=str(paths.EVAL), help="evaluations (default: %(default)s)")
    p.add_argument("--ingest-report", default=str(paths.INTERIM / "ingest_report.json"),
                   help="for the table's provenance (default: %(default)s)")
    p.add_argument("--out", default=str(paths.COMPARE), help="output folder (default: %(default)s)")
    args = p.parse_args(argv)

    def body() -> None:
        atomic.remove_stale_temps(*(Path(args.out) / name for name in report.OUTPUT_FILES))
        content = report.run(load_params(args.params), eval_root=Path(args.eval_root), out_dir=Path(args.out),
                             ingest_report=Path(args.ingest_report))
        log.info("%s", report.headline(content))

    return _common.run("compare", body)


if __name__ == "__main__":
    sys.exit(main())
