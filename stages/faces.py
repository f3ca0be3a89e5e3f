"""DVC stage `faces`: detect, align and crop each clip's onset and apex faces with MediaPipe -> data/processed/faces."""

from __future__ import annotations

import sys
from pathlib import Path

import _common

from memix.config import load_params
from memix.io import atomic, paths
from memix.preprocess import faces


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("faces", "Align every clip's onset and apex faces (MediaPipe FaceLandmarker, eye alignment).")
    p.add_argument("--clips", default=str(paths.CLIPS), help="clip index (default: %(default)s)")
    p.add_argument("--out", default=str(paths.FACES), help="output folder (default: %(default)s)")
    args = p.parse_args(argv)

    def body() -> None:
        params = load_params(args.params)
        atomic.remove_stale_temps(args.out)
        faces.run(
            params.faces,
            clips_path=Path(args.clips),
            dataset_root=Path(params.dataset.root),
            model_path=Path(params.faces.model),
            out_dir=Path(args.out),
            on_bad_frame=params.dataset.on_bad_frame,
            offset="apex_offset" in params.flow.pairs,  # the offset face, only when a flow of it is asked for
            apex=params.dataset.apex,  # checked against the clip index's apex_source, and reported
            on_bad_apex=params.dataset.on_bad_apex,
        )

    return _common.run("faces", body)


if __name__ == "__main__":
    sys.exit(main())
