"""Which frame a clip's apex is: the clip index's (annotated, middle, patched) or the one spotted on the aligned
faces (``dataset.apex: spotted``, ``on_bad_apex: spot``), and what the faces stage records and reports about it.

Kept apart from the stage (:mod:`memix.preprocess.faces`) so the apex rules read on their own: a spotted clip has
every frame onset..offset cropped with the onset's transform, the frame of greatest motion from the onset taken
(:mod:`memix.preprocess.spotting`) and searched for a face as an annotated apex is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from memix.config import FacesParams
from memix.preprocess import spotting
from memix.preprocess.clip_align import AlignedClip, align_clip, align_onset, clip_files, crop_frames, spot_aligned
from memix.preprocess.landmarks import LandmarkDetector


@dataclass(frozen=True)
class Chosen:
    """One clip aligned with the apex it uses: the index's, or the one spotted on its aligned frames."""

    aligned: AlignedClip | None  # None: no face on the onset frame
    apex: int  # frame number of the apex used
    apex_file: Path
    crops: list[tuple[int, np.ndarray]]  # (frame number, crop) onset..offset with faces.all_frames, else []
    spot: spotting.Spot | None = None  # apex_source spotted: the spotting, its index counting from the onset


def align_chosen(detector: LandmarkDetector, clip, dataset_root: Path, params: FacesParams) -> Chosen:
    """Align the clip; an ``apex_source: spotted`` clip crops every frame onset..offset with the onset's transform,
    takes the frame of greatest motion from the onset (:mod:`memix.preprocess.spotting`) and searches it for a face
    as an annotated apex is."""
    clip_id, size = str(clip.clip_id), params.size
    onset_file = dataset_root / str(clip.onset_path)
    apex_file = dataset_root / str(clip.apex_path)
    if str(clip.apex_source) != "spotted":
        aligned = align_clip(detector, onset_file, apex_file, clip_id, size, params.margin)
        files = clip_files(dataset_root / str(clip.frame_dir), int(clip.onset), int(clip.offset))
        crops = crop_frames(aligned, files, clip_id, size) if aligned is not None and params.all_frames else []
        return Chosen(aligned, int(clip.apex), apex_file, crops)
    aligned = align_onset(detector, onset_file, clip_id, size, params.margin)
    if aligned is None:
        return Chosen(None, int(clip.apex), apex_file, [])
    files = clip_files(dataset_root / str(clip.frame_dir), int(clip.onset), int(clip.offset))
    aligned, number, spot, crops = spot_aligned(detector, aligned, files, clip_id, size, params.margin)
    return Chosen(aligned, number, files[number], crops if params.all_frames else [], spot)


def check_apex_sources(clips: pd.DataFrame, apex: str, on_bad_apex: str, clips_path: Path) -> None:
    """Refuse a clip index whose apex choices another ``dataset.apex`` / ``on_bad_apex`` made (a stale index).

    ``annotated`` keeps a valid annotation (onset < apex <= offset); an impossible or missing one is patched or
    spotted per ``on_bad_apex`` (a dataset without apex annotation, SMIC, is spotted under either).
    """
    annotated = clips["apex_annotated"]
    valid = (annotated.notna() & (annotated > clips["onset"]) & (annotated <= clips["offset"])).fillna(False)
    for i, row in enumerate(clips.itertuples(index=False)):
        if apex in ("spotted", "middle"):
            allowed = {apex}
        elif valid.iloc[i]:
            allowed = {"annotated"}
        else:
            allowed = {"spotted"} | ({"patched"} if on_bad_apex == "patch" else set())
        if row.apex_source not in allowed:
            raise ValueError(
                f"{clips_path}: clip {row.clip_id} has apex_source {row.apex_source!r}, which dataset.apex: {apex} "
                f"with on_bad_apex: {on_bad_apex} does not give (an index from other settings? `dvc repro ingest`)"
            )


def apex_fields(clip, chosen: Chosen) -> dict:
    """The faces index's apex columns: the annotation, the frame used, how it was chosen and the spotting's numbers."""
    annotated = None if pd.isna(clip.apex_annotated) else int(clip.apex_annotated)
    spot = chosen.spot
    return {
        "onset": int(clip.onset),
        "offset": int(clip.offset),
        "apex": chosen.apex,
        "apex_annotated": annotated,
        "apex_source": str(clip.apex_source),
        "spot_peak": math.nan if spot is None else spot.peak,
        "spot_floor": math.nan if spot is None else spot.floor,
        "spot_detectable": None if spot is None else spot.detectable,
    }


def apex_report(index: pd.DataFrame, apex: str | None, on_bad_apex: str | None) -> dict:
    """report.json's ``apex``: the settings, how many apexes each way, the spotted clips not clearing the noise floor,
    and the spotting error against the annotation where there is a valid one (onset < annotated <= offset)."""
    spotted = index[index["apex_source"] == "spotted"]
    weak = spotted[~spotted["spot_detectable"].astype(bool)]  # set on every spotted row
    annotated = spotted["apex_annotated"]
    valid = annotated.notna() & (annotated > spotted["onset"]) & (annotated <= spotted["offset"])
    errors = (spotted["apex"][valid] - annotated[valid].astype("int64")).abs().to_numpy(dtype=np.float64)
    return {
        "setting": apex,
        "on_bad_apex": on_bad_apex,
        "clips_by_source": {k: int(v) for k, v in index["apex_source"].value_counts().sort_index().items()},
        "spotting": "frame of greatest motion from the onset on the aligned faces (memix.preprocess.spotting)",
        "detectable_rule": f"peak > {spotting.DETECT_RATIO:g} x the clip's noise floor and > {spotting.MIN_PEAK:g}",
        "n_not_detectable": len(weak),
        "not_detectable": [
            {"clip_id": str(r.clip_id), "apex": int(r.apex), "peak": float(r.spot_peak), "floor": float(r.spot_floor)}
            for r in weak.itertuples(index=False)
        ],
        "error_frames": spotting_error(errors),
    }


def spotting_error(errors: np.ndarray) -> dict:
    """|spotted - annotated| in frames: count, median, 90th percentile, share within 1 and 2 frames (None if none)."""
    if not len(errors):
        return {"n": 0, "median": None, "p90": None, "within_1": None, "within_2": None}
    return {
        "n": len(errors),
        "median": float(np.median(errors)),
        "p90": float(np.percentile(errors, 90)),
        "within_1": float(np.mean(errors <= 1)),
        "within_2": float(np.mean(errors <= 2)),
    }
