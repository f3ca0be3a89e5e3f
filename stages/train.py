"""DVC stage `train`: leave-one-subject-out training of one mixing method, every seed -> data/train/<method>/."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import _common

from memix.config import MIXING_METHODS, load_params, method_title
from memix.io import atomic, noise_sets, paths
from memix.training import run
from memix.training.summary import run_summary

log = logging.getLogger("memix.stages.train")


def main(argv: list[str] | None = None) -> int:
    p = _common.parser(
        "train",
        "LOSO-train one mixing method for every seed in compare.seeds, folds batched (train.fold_batch) and spread "
        "over CPU processes, GPUs or Ray (train.executor); resumes from its checkpoints after an interruption. "
        "Each fold's last-epoch model also scores its test clips in every key-frame noise set (eval.keyframe_noise).",
    )
    p.add_argument("--method", choices=MIXING_METHODS, default="none", help="mixing method (default: %(default)s)")
    p.add_argument("--seeds", type=int, nargs="+", help="training seeds (default: compare.seeds)")
    p.add_argument("--flow", default=str(paths.FLOW), help="flow stage output (default: %(default)s)")
    p.add_argument("--keyframe-noise", default=str(paths.KEYFRAME_NOISE),
                   help="folder of the key-frame noise sets, <level>/ each (default: %(default)s)")
    p.add_argument("--out", help="output folder (default: data/train/<method>)")
    p.add_argument("--restart", action="store_true", help="ignore checkpoints and start from the first epoch")
    args = p.parse_args(argv)

    def body() -> None:
        out = Path(args.out) if args.out else paths.train_dir(args.method)
        atomic.remove_stale_temps(*(out / name for name in run.OUTPUTS))
        params = load_params(args.params)
        levels = params.eval.keyframe_noise
        removed = noise_sets.remove_unlisted(Path(args.keyframe_noise), levels)  # see memix/io/noise_sets.py
        if removed:
            log.info("train: removed the key-frame noise sets of level(s) %s, not in eval.keyframe_noise", removed)
        noise = {n: Path(args.keyframe_noise) / str(n) for n in levels}  # level -> its set
        run.run(
            params, method=args.method, flow_dir=Path(args.flow), out_dir=out, seeds=args.seeds,
            resume=not args.restart, keyframe_noise=noise,
        )
        log.info("%s", run_summary(f"train {method_title(args.method)}", out))

    return _common.run("train", body)


if __name__ == "__main__":
    sys.exit(main())
