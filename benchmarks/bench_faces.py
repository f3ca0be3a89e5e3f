"""Throughput of the faces stage (detect + score + align + crop onset/apex) in clips per second.

Usage: python benchmarks/bench_faces.py [--clips data/interim/clips.parquet --root data/raw/synthetic]
                                        [--n 32] [--sizes 128 224] [--repeats 2]
Uses the pipeline's clip index and frames when both exist (the synthetic set after `dvc repro ingest`),
else generates ``--n`` jittered astronaut clips (512x512 colour JPEGs) in a temp folder. For each crop
size it runs ``memix.preprocess.faces.run`` ``--repeats`` times and prints the best wall time and clips/s
(model loading included: it is paid once per stage run), plus the per-clip cost of each step alone.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from memix.config import FacesParams
from memix.datasets.frames import read_frame
from memix.datasets.schema import CLIP_COLUMNS
from memix.preprocess import align, faces
from memix.preprocess.landmarks import LandmarkDetector, eye_centres

REPO = Path(__file__).resolve().parents[1]


def make_clips(root: Path, n: int) -> Path:
    """``n`` two-frame clips of the astronaut, each slightly rotated/scaled/shifted, CASME II layout."""
    import skimage.data

    base = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        m = cv2.getRotationMatrix2D((256 + rng.uniform(-20, 20), 200), rng.uniform(-10, 10), rng.uniform(0.8, 1.1))
        frame = cv2.warpAffine(base, m, (512, 512), borderMode=cv2.BORDER_REPLICATE)
        subject, clip = f"sub{i % 4 + 1:02d}", f"EP{i:02d}_01"
        clip_dir = root / subject / clip
        clip_dir.mkdir(parents=True)
        for k in (1, 2):
            cv2.imwrite(str(clip_dir / f"img{k}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        rows.append(
            dict(
                dataset="casme2", subject=subject, clip=clip, clip_id=f"{subject}/{clip}", onset=1, apex=2, offset=2,
                n_frames=2, emotion="happiness", label="happiness", label_id=0, action_units="12",
                frame_dir=f"{subject}/{clip}", onset_path=f"{subject}/{clip}/img1.jpg",
                apex_path=f"{subject}/{clip}/img2.jpg",
            )
        )  # fmt: skip
    path = root / "clips.parquet"
    pd.DataFrame(rows).astype(CLIP_COLUMNS).to_parquet(path)
    return path


def step_costs(clips: pd.DataFrame, root: Path, model: Path, size: int) -> dict[str, float]:
    """Mean ms per clip of reading, landmarking, scoring and warping, each timed on its own."""
    t = dict.fromkeys(("read", "landmarks", "score", "warp"), 0.0)
    with LandmarkDetector(model) as det, faces.FaceScorer(model, 0.3) as scorer:
        for clip in clips.itertuples(index=False):
            s = time.perf_counter()
            onset = read_frame(root / clip.onset_path, clip.clip_id)
            apex = read_frame(root / clip.apex_path, clip.clip_id)
            rgb = align.bgr_to_rgb(onset)
            t["read"] += time.perf_counter() - s
            s = time.perf_counter()
            found = det.detect(rgb)
            t["landmarks"] += time.perf_counter() - s
            if not found:
                continue
            s = time.perf_counter()
            scorer.score(rgb, (0.0, 0.0, float(rgb.shape[1]), float(rgb.shape[0])))
            t["score"] += time.perf_counter() - s
            s = time.perf_counter()
            affine = align.similarity_from_eyes(*eye_centres(found[0]), size, 0.25)
            align.warp_to_crop(align.bgr_to_grey(onset), affine, size)
            align.warp_to_crop(align.bgr_to_grey(apex), affine, size)
            t["warp"] += time.perf_counter() - s
    return {k: 1000 * v / len(clips) for k, v in t.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=Path, default=REPO / "data/interim/clips.parquet")
    parser.add_argument("--root", type=Path, default=REPO / "data/raw/synthetic")
    parser.add_argument("--model", type=Path, default=REPO / "models/face_landmarker.task")
    parser.add_argument("--n", type=int, default=32, help="generated clips when no dataset is present")
    parser.add_argument("--sizes", type=int, nargs="+", default=[FacesParams().size, 224])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="memix-bench-faces-") as tmp:
        tmp = Path(tmp)
        if args.clips.is_file() and args.root.is_dir():
            clips_path, root, source = args.clips, args.root, f"{args.clips} ({args.root})"
        else:
            root = tmp / "raw"
            clips_path, source = make_clips(root, args.n), f"{args.n} generated astronaut clips, 512x512 JPEG"
        clips = pd.read_parquet(clips_path)
        frame = read_frame(root / clips["onset_path"].iloc[0], clips["clip_id"].iloc[0])
        print(f"clips: {len(clips)} from {source}; frame {frame.shape[1]}x{frame.shape[0]}")
        for size in args.sizes:
            params = FacesParams(size=size, on_missing="skip")
            best = float("inf")
            for r in range(args.repeats):
                start = time.perf_counter()
                faces.run(params, clips_path, root, args.model, tmp / f"out{size}_{r}")
                best = min(best, time.perf_counter() - start)
            costs = step_costs(clips, root, args.model, size)
            steps = ", ".join(f"{k} {v:.1f}" for k, v in costs.items())
            print(f"size {size:4d}: {best:6.2f} s  {len(clips) / best:6.1f} clips/s  (ms/clip: {steps})")


if __name__ == "__main__":
    main()
