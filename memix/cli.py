"""The ``memix`` console script: commands for people, beside the pipeline.

The pipeline's stages are the scripts in ``stages/`` (``dvc repro`` runs them); this module holds what a
user runs by hand: ``memix params`` (validate and print params.yaml with every default), ``memix show flow``
and ``memix show mix`` (PNGs to look at), ``memix predict`` and ``memix export`` (use a model the ``fit`` stage
trained; they need no params.yaml). The only module of the library with argparse; each handler imports what it
draws with, so ``memix --help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from memix import __version__, log
from memix.config import MIXING_METHODS, Params, load_params
from memix.io import atomic, paths

Handler = Callable[[argparse.Namespace, Params | None], None]


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


def _predict(args: argparse.Namespace, params: Params | None) -> None:
    from memix.models import resolve_device
    from memix.serving import modelfile, predict

    one_clip = _check_predict_inputs(args)
    out = args.out or (None if one_clip else "predictions.csv")
    if out is not None:
        atomic.check_output(out)  # refused before any work, and never deleted
    project = load_params(args.params) if args.dataset is not None or Path(args.params).is_file() else None
    face_model = Path(args.face_model or (project.faces.model if project else paths.FACE_MODEL))
    if args.frames is not None or args.video is not None:
        _predict_frames(args, face_model, out)
        return
    clips: list[predict.ClipPair] = []
    if args.onset is not None:
        offset = Path(args.offset) if args.offset else None
        clips.append(predict.ClipPair(Path(args.onset).name, Path(args.onset), Path(args.apex), offset=offset))
    if args.clips is not None:
        clips += predict.clips_in_folder(args.clips)
    if args.dataset is not None:
        assert project is not None
        clips += predict.clips_in_dataset(project.dataset.model_copy(update={"root": args.dataset}))
    names = [c.name for c in clips]
    if len(set(names)) != len(names):
        raise ValueError(f"clip name {next(n for n in names if names.count(n) > 1)!r} appears twice in the input")

    model_file = modelfile.load(args.model)
    predict.check_labels(clips, model_file.class_names, args.model)
    with predict.Predictor(model_file, face_model, resolve_device(args.device, "--device")) as predictor:
        probs = predictor.predict(clips)
    table = predict.predictions_frame(clips, probs, model_file.class_names)
    if args.onset is not None:
        _print_probabilities(table["predicted"].iloc[0], probs[0], model_file.class_names)
        if out is not None:
            print(predict.write_csv(out, table))
        return
    assert out is not None
    print(predict.write_csv(out, table))
    if "label" in table:
        hits = int((table["label"] == table["predicted"]).sum())
        print(f"accuracy against the sheet's labels: {hits / len(table):.3f} ({hits}/{len(table)} clips)")


def _check_predict_inputs(args: argparse.Namespace) -> bool:
    """Refuse a mix of modes; True for the modes that score one clip (and write a CSV only with --out)."""
    if (args.onset is None) != (args.apex is None):
        raise ValueError("--onset and --apex go together")
    if args.offset is not None and args.onset is None:
        raise ValueError("--offset goes with --onset and --apex")
    single = [flag for flag, value in (("--onset/--apex", args.onset), ("--frames", args.frames),
                                       ("--video", args.video)) if value is not None]
    many = [flag for flag, value in (("--clips", args.clips), ("--dataset", args.dataset)) if value is not None]
    if not single and not many:
        raise ValueError("give --onset A --apex B, --frames FOLDER, --video FILE, or --clips FOLDER and/or "
                         "--dataset ROOT (see memix predict --help)")
    if len(single) > 1 or (single and many):
        raise ValueError(f"{single[0]} scores one clip; leave out {', '.join(single[1:] + many)}")
    return bool(single)


def _predict_frames(args: argparse.Namespace, face_model: Path, out: str | None) -> None:
    """--frames / --video: the onset is the first frame, the apex is spotted; a still clip is refused (exit 1)."""
    from memix.models import resolve_device
    from memix.serving import clip_frames, modelfile, predict

    frames = clip_frames.FolderFrames(args.frames) if args.frames is not None else clip_frames.VideoFrames(args.video)
    model_file = modelfile.load(args.model)
    fp = model_file.faces
    with predict.Predictor(model_file, face_model, resolve_device(args.device, "--device")) as predictor:
        clip = clip_frames.spot_clip(predictor.detector, frames, fp.size, fp.margin)
        for line in clip_frames.describe(clip, offset=predictor.needs_offset):
            print(predict.printable(line))
        clip_frames.refuse_if_still(clip)
        offset = clip.offset_face if predictor.needs_offset else None
        used = predictor.input_of(clip.name, clip.aligned, offset, clip.frames(offset=predictor.needs_offset))
        probs = predictor.classify([clip.name], [used])
    _print_probabilities(model_file.class_names[int(probs[0].argmax())], probs[0], model_file.class_names)
    if out is not None:
        print(predict.write_csv(out, clip_frames.predictions_frame(clip, probs, model_file.class_names,
                                                                   predictor.needs_offset)))


def _print_probabilities(predicted: str, probs: Sequence[float], class_names: Sequence[str]) -> None:
    from memix.serving.predict import printable

    names = [printable(n) for n in class_names]
    print(f"predicted: {printable(predicted)}")
    for k, name in enumerate(names):
        print(f"  {name:<{max(map(len, names))}}  {probs[k]:.4f}")


def _export(args: argparse.Namespace, params: Params | None) -> None:
    from memix.serving import export, modelfile

    out = Path(args.out) if args.out else Path(args.model).with_suffix(".onnx")
    atomic.check_output(out)  # refused before any work, and never deleted
    model_file = modelfile.load(args.model)
    print(export.export_onnx(model_file, out))


def _params(args: argparse.Namespace, params: Params) -> None:
    import yaml

    from memix.config import dump_params

    print(yaml.safe_dump(dump_params(params), sort_keys=False), end="")


PREDICT_MODES = """\
modes (give exactly one; --clips and --dataset may go together):
  --onset A --apex B [--offset C]
      one clip from its annotated frames; prints the predicted class and the
      class probabilities.
  --frames FOLDER | --video FILE
      one clip nobody annotated. The onset is the first frame (rule). The face
      is found on it and every frame is cropped with its transform, as the faces
      stage does; the apex is the frame of greatest motion relative to the onset
      on those faces (memix.preprocess.spotting). A network that reads the
      apex -> offset flow (CausalNet) gets the last frame as its offset (rule).
      Prints the frames used (name and index), the motion peak vs the noise
      floor, then the class probabilities, computed exactly as --onset/--apex
      would with those frames. A clip whose motion is not clearly above its
      noise floor is refused: a message, nothing predicted, exit status 1.
  --clips FOLDER, --dataset ROOT
      many clips; writes a CSV (default predictions.csv), one row per clip.

An unreadable image, a frame without a face where one is needed, or a video
OpenCV cannot open is an error naming the file (exit status 1).
"""


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
    loud = parser.add_mutually_exclusive_group()
    loud.add_argument("-v", "--verbose", action="count", default=0, help="debug messages and MediaPipe's native log")
    loud.add_argument("-q", "--quiet", action="count", default=0, help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Handler | None, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(handler=handler)
        return p

    show = add("show", None, "write a PNG to look at a clip's flow or a mixing method")
    show_sub = show.add_subparsers(dest="what", required=True, metavar="WHAT")
    s = show_sub.add_parser("flow", help="aligned onset, apex, flow colour, magnitude and strain of one clip")
    s.set_defaults(handler=_show_flow)
    s.add_argument("--clip", required=True, help="clip_id (subject/clip, e.g. sub01/EP10_01 on the synthetic set)")
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

    s = add("predict", _predict, "class probabilities of new clips from a fitted model (models/<method>.pt)")
    s.set_defaults(needs_params=False)
    s.formatter_class = argparse.RawDescriptionHelpFormatter
    s.epilog = PREDICT_MODES
    s.add_argument("--model", default=str(paths.model_file("memix")), help="model file (default: %(default)s)")
    s.add_argument("--onset", help="onset image of one clip (with --apex): prints its class probabilities")
    s.add_argument("--apex", help="apex image of that clip")
    s.add_argument("--offset", help="offset image of that clip (a network on the whole sequence, CausalNet, needs it)")
    s.add_argument("--frames", metavar="FOLDER", help="one unannotated clip: a folder of its frame images, ordered by "
                   "the frame number in their names; onset = first frame, apex spotted (see below)")
    s.add_argument("--video", metavar="FILE", help="one unannotated clip as a video file OpenCV reads (every frame "
                   "as decoded); onset = first frame, apex spotted (see below)")
    s.add_argument("--clips", help="folder of clip folders, each with onset.<ext> and apex.<ext> (and offset.<ext> "
                   "for CausalNet)")
    s.add_argument("--dataset", metavar="ROOT", help="a dataset folder with its coding sheet, read with params.yaml's "
                   "dataset settings (adapter, sheet, classes); the CSV gets the sheet's labels")
    s.add_argument("--out", help="CSV to write (default for --clips/--dataset: predictions.csv; the one-clip modes "
                   "write one only when asked)")
    s.add_argument("--face-model", help="face_landmarker.task the model was fitted with (default: faces.model of "
                   "params.yaml, else models/face_landmarker.task)")
    s.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="default: %(default)s")
    s = add("export", _export, "write a fitted model as an ONNX graph (needs the extra: pip install 'memix[onnx]')")
    s.set_defaults(needs_params=False)
    s.add_argument("--model", default=str(paths.model_file("memix")), help="model file (default: %(default)s)")
    s.add_argument("--format", choices=["onnx"], default="onnx", help="default: %(default)s")
    s.add_argument("--out", help="output file (default: the model file with suffix .onnx)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> None:
        params = load_params(args.params) if getattr(args, "needs_params", True) else None
        args.handler(args, params)

    return log.run_reporting(f"memix {args.command}", body, args.verbose - args.quiet)


if __name__ == "__main__":
    sys.exit(main())
