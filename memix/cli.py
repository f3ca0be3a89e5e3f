"""The ``memix`` console script: commands for people, beside the pipeline.

The pipeline's stages are the scripts in ``stages/`` (``dvc repro`` runs them); this module holds what a
user runs by hand: ``memix params`` (validate and print params.yaml with every default), ``memix show flow``
and ``memix show mix`` (PNGs to look at). The only module of the library with argparse; each handler
imports what it draws with, so ``memix --help`` stays instant.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from memix import __version__
from memix.config import MIXING_METHODS, Params, load_params
from memix.io import paths

Handler = Callable[[argparse.Namespace, Params], None]


def _show_flow(args: argparse.Namespace, params: Params) -> None:
    from memix import show

    out = Path(args.out or f"reports/show_flow_{args.clip.replace('/', '_')}.png")
    show.show_flow(flow_dir=Path(args.flow), faces_dir=Path(args.faces), clip_id=args.clip, out_path=out)
    print(out)


def _show_mix(args: argparse.Namespace, params: Params) -> None:
    from memix import show

    out = Path(args.out or f"reports/show_mix_{args.method}.png")
    show.show_mix(params, method=args.method, flow_dir=Path(args.flow), out_path=out, seed=args.seed)
    print(out)


def _params(args: argparse.Namespace, params: Params) -> None:
    import yaml

    from memix.config import dump_params

    print(yaml.safe_dump(dump_params(params), sort_keys=False), end="")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memix",
        description=(
            "Micro-expression recognition with motion-aware mixup. The pipeline runs with `dvc repro` (its "
            "stages are the scripts in stages/, listed in dvc.yaml); these commands help you look at what it "
            "made. Settings come from params.yaml (see README)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"memix {__version__}")
    parser.add_argument("--params", default="params.yaml", help="params file (default: %(default)s)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Handler | None, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(handler=handler)
        return p

    show = add("show", None, "write a PNG to look at a clip's flow or a mixing method")
    show_sub = show.add_subparsers(dest="what", required=True, metavar="WHAT")
    s = show_sub.add_parser("flow", help="aligned onset, apex, flow colour, magnitude and strain of one clip")
    s.set_defaults(handler=_show_flow)
    s.add_argument("--clip", required=True, help="clip_id (subject/clip, e.g. sub01/EP01_01 on the synthetic set)")
    s.add_argument("--flow", default=str(paths.FLOW), help="flow stage output (default: %(default)s)")
    s.add_argument("--faces", default=str(paths.FACES), help="faces stage output (default: %(default)s)")
    s.add_argument("--out", help="PNG path (default: reports/show_flow_<clip>.png)")
    s = show_sub.add_parser("mix", help="a few flows, their motion grid, chosen patches, partner and mixed result")
    s.set_defaults(handler=_show_mix)
    s.add_argument("--method", choices=MIXING_METHODS, default="memix", help="mixing method (default: %(default)s)")
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
