"""DVC stage `synth`: generate the synthetic dataset (frames + sheet, in `synth.layout`) -> data/raw/synthetic."""

from __future__ import annotations

import sys
from pathlib import Path

import _common

from memix.config import load_params
from memix.io import atomic, paths
from memix.synth.build import generate


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("synth", "Generate the synthetic CASME II-shaped dataset from params.yaml's synth section.")
    p.add_argument("--out", default=str(paths.SYNTH_ROOT), help="output folder (default: %(default)s)")
    args = p.parse_args(argv)

    def body() -> None:
        params = load_params(args.params)
        atomic.remove_stale_temps(args.out)
        generate(params.synth, Path(args.out), model_path=Path(params.faces.model))

    return _common.run("synth", body)


if __name__ == "__main__":
    sys.exit(main())
