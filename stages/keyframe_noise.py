"""DVC stage `keyframe_noise@<n>`: the flow set of every clip with its onset and apex each moved by a seeded draw in
[-n, n] frames -> data/processed/keyframe_noise/<n>/ (one stage per level of eval.keyframe_noise; none by default)."""

from __future__ import annotations

import sys
from pathlib import Path

import _common

from memix.config import load_params
from memix.io import atomic, paths
from memix.preprocess import keyframe_noise


def main(argv: list[str] | None = None) -> int:
    p = _common.parser(
        "keyframe_noise",
        "Build the key-frame noise set of one level of eval.keyframe_noise: each clip's onset and apex moved by a "
        "seeded draw in [-n, n] frames, cropped with the faces stage's transform, its flow computed as the flow "
        "stage computes it.",
    )
    p.add_argument("--level", type=int, required=True, help="a level of eval.keyframe_noise (frames)")
    p.add_argument("--clips", default=str(paths.CLIPS), help="clip index (default: %(default)s)")
    p.add_argument("--faces", default=str(paths.FACES), help="faces stage output (default: %(default)s)")
    p.add_argument("--flow", default=str(paths.FLOW), help="flow stage output (default: %(default)s)")
    p.add_argument("--out", help="output folder (default: data/processed/keyframe_noise/<level>)")
    args = p.parse_args(argv)

    def body() -> None:
        params = load_params(args.params)
        levels = params.eval.keyframe_noise
        if args.level not in levels:
            raise ValueError(f"--level {args.level} is not in eval.keyframe_noise {levels} of {args.params}")
        out = Path(args.out) if args.out else paths.keyframe_noise_dir(args.level)
        atomic.remove_stale_temps(out)
        keyframe_noise.run(
            params.flow, level=args.level, seed=params.eval.keyframe_noise_seed, clips_path=Path(args.clips),
            faces_dir=Path(args.faces), flow_dir=Path(args.flow), dataset_root=Path(params.dataset.root), out_dir=out,
        )

    return _common.run("keyframe_noise", body)


if __name__ == "__main__":
    sys.exit(main())
