"""DVC stage `ingest`: a dataset's coding sheet and frames -> data/interim/clips.parquet + ingest_report.json."""

from __future__ import annotations

import sys
from pathlib import Path

import _common

from memix.config import load_params
from memix.datasets import ingest
from memix.io import atomic, paths


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("ingest", "Read the dataset named by params.yaml's dataset section into the clip index.")
    p.add_argument("--out", default=str(paths.INTERIM), help="output folder (default: %(default)s)")
    args = p.parse_args(argv)

    def body() -> None:
        params = load_params(args.params)
        out = Path(args.out)
        atomic.remove_stale_temps(out / ingest.CLIPS_FILE, out / ingest.REPORT_FILE)
        ingest.run(params.dataset, out_dir=out)

    return _common.run("ingest", body)


if __name__ == "__main__":
    sys.exit(main())
