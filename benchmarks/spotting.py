"""Apex spotting against the true apex of synthetic clips: frame errors of the spotted and the middle frame.

Usage: python benchmarks/spotting.py [--layout casme2|samm|smic|casme3|mmew] [--clips N] [--subjects N]
                                     [--apex-px MIN MAX] [--blink-rate R] [--still N] [--params params.yaml]

Generates a synthetic dataset (params.yaml's synth section in the chosen layout, with the overrides given) in a
temp folder, runs ingest with ``dataset.apex: spotted`` and the faces stage (which spots every clip on its aligned
faces), and compares each clip's spotted apex and its middle frame (the frame ``dataset.apex: middle`` takes) with
the apex the generator rendered (``memix.synth.plan``: the frame where the expression peaks). A clip whose sheet
apex differs from the rendered one (a deliberately corrupted row, ``memix.synth.quirks``) is left out of the truth
and counted. ``--still N`` also renders N clips without expression (blinks, head drift, flicker and noise kept) and
prints the share the spotter calls detectable, i.e. its false detections. Prints one table; errors are in frames.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from memix.config import DatasetParams, SynthParams, load_params
from memix.datasets import ingest
from memix.io import shards
from memix.preprocess import faces
from memix.synth import layouts
from memix.synth.build import generate
from memix.synth.plan import plan_dataset

REPO = Path(__file__).resolve().parents[1]
CLASSES = {"casme2": "5class", "samm": "5class", "smic": "3class", "casme3": "7class", "mmew": "7class"}


def true_apexes(synth: SynthParams) -> dict[tuple[str, int], int]:
    """(clip folder, onset frame) -> the frame the generator put the expression's peak on."""
    layout = layouts.get(str(synth.layout))
    placed = layout.place(plan_dataset(layout.params(synth), layout.proportions))
    return {(p.folder, p.onset): p.apex for p in placed}


def run_set(synth: SynthParams, work: Path, model: Path, faces_params) -> tuple[pd.DataFrame, dict, float]:
    """Generate, ingest (apex spotted) and align one set; the faces index joined with the clip index, the faces
    report and the faces stage's wall seconds."""
    root = work / "raw"
    generate(synth, root, model)
    dataset = DatasetParams(name=synth.layout, root=str(root), classes=CLASSES[str(synth.layout)], apex="spotted")
    clips = ingest.run(dataset, work / "interim")
    start = time.perf_counter()
    faces.run(faces_params, work / "interim" / "clips.parquet", root, model, work / "faces", apex="spotted",
              on_bad_apex=dataset.on_bad_apex)  # fmt: skip
    seconds = time.perf_counter() - start
    index, _ = shards.load(work / "faces")
    joined = index.merge(clips[["clip_id", "frame_dir", "apex"]].rename(columns={"apex": "middle"}), on="clip_id")
    report = json.loads((work / "faces" / "report.json").read_text())
    return joined, report, seconds


def stats(errors: np.ndarray) -> str:
    return (
        f"{len(errors):5d}  {np.median(errors):6.1f}  {np.percentile(errors, 90):6.1f}  "
        f"{np.mean(errors <= 1):8.2f}  {np.mean(errors <= 2):8.2f}  {np.mean(errors):6.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml", help="synth and faces sections")
    parser.add_argument("--layout", choices=sorted(CLASSES), default="casme2")
    parser.add_argument("--clips", type=int, help="clips to generate (default: the params')")
    parser.add_argument("--subjects", type=int, help="subjects (default: the params')")
    parser.add_argument("--apex-px", type=float, nargs=2, metavar=("MIN", "MAX"), help="expression magnitude, px")
    parser.add_argument("--blink-rate", type=float, help="share of clips with a blink (default: the params')")
    parser.add_argument("--still", type=int, default=0, help="also N clips without expression: false detections")
    parser.add_argument("--seed", type=int, help="synth seed (default: the params')")
    args = parser.parse_args()

    params = load_params(args.params)
    update: dict = {"layout": args.layout}
    for key, value in (("clips", args.clips), ("subjects", args.subjects), ("blink_rate", args.blink_rate),
                       ("seed", args.seed)):  # fmt: skip
        if value is not None:
            update[key] = value
    if args.apex_px:
        update.update(apex_px_min=args.apex_px[0], apex_px_max=args.apex_px[1])
    synth = SynthParams(**{**params.synth.model_dump(), **update})
    model = REPO / params.faces.model
    faces_params = params.faces.model_copy(update={"on_missing": "skip"})

    with tempfile.TemporaryDirectory(prefix="memix-bench-spotting-") as tmp:
        joined, report, seconds = run_set(synth, Path(tmp) / "me", model, faces_params)
        truth = true_apexes(synth)
        joined["truth"] = [truth[(d, int(o))] for d, o in zip(joined["frame_dir"], joined["onset"], strict=True)]
        sheet = joined["apex_annotated"]
        corrupted = sheet.notna() & (sheet != joined["truth"])  # rows a quirk changed: no truth there
        kept = joined[~corrupted.fillna(False).astype(bool)]
        spotted = (kept["apex"] - kept["truth"]).abs().to_numpy(np.float64)
        middle = (kept["middle"] - kept["truth"]).abs().to_numpy(np.float64)
        lengths = kept["offset"] - kept["onset"] + 1
        frames = int(lengths.sum())
        print(
            f"{args.layout}: {len(joined)} clips ({int(corrupted.sum())} with a corrupted sheet apex left out), "
            f"{frames} frames of {lengths.min()}-{lengths.max()}, expression {synth.apex_px_min:g}-"
            f"{synth.apex_px_max:g} px, blink rate {synth.blink_rate:g}, faces {faces_params.size} px"
        )
        print(f"{'apex':10s} {'clips':>5s}  {'median':>6s}  {'p90':>6s}  {'within 1':>8s}  {'within 2':>8s}  mean")
        print(f"{'spotted':10s} {stats(spotted)}")
        print(f"{'middle':10s} {stats(middle)}")
        detectable = kept["spot_detectable"].astype(bool)
        print(f"detectable (peak > floor x rule): {detectable.mean():.2f} of the clips with an expression")
        print(f"faces stage with spotting: {seconds:.1f} s for {len(joined)} clips ({frames} frames)")
        print(f"faces report error_frames (spotted vs sheet): {report['apex']['error_frames']}")
        if args.still:
            still = synth.model_copy(update={"clips": args.still, "apex_px_min": 0.0, "apex_px_max": 0.0})
            joined_still, _, _ = run_set(still, Path(tmp) / "still", model, faces_params)
            share = joined_still["spot_detectable"].astype(bool).mean()
            print(f"still clips called detectable (false detections): {share:.2f} of {len(joined_still)}")


if __name__ == "__main__":
    main()
