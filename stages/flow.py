"""DVC stage `flow`: onset -> apex optical flow (+ optical strain) of every clip -> the flow set + montage PNG."""

from __future__ import annotations

import sys
from pathlib import Path

import _common

from memix.config import load_params
from memix.io import atomic, paths
from memix.preprocess import flow


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("flow", "Compute every clip's onset->apex flow tensor with params.yaml's flow section.")
    p.add_argument("--faces", default=str(paths.FACES), help="faces stage output (default: %(default)s)")
    p.add_argument("--out", default=str(paths.FLOW), help="output folder (default: %(default)s)")
    p.add_argument("--montage", default=str(paths.FLOW_MONTAGE), help="montage PNG (default: %(default)s)")
    args = p.parse_args(argv)

    def body() -> None:
        params = load_params(args.params)
        atomic.remove_stale_temps(args.out, args.montage)
        flow.run(params.flow, faces_dir=Path(args.faces), out_dir=Path(args.out), montage_path=Path(args.montage))

    return _common.run("flow", body)


if __name__ == "__main__":
    sys.exit(main())
