"""Stage ``keyframe_noise@<n>``: the flow set of every clip with its onset and apex moved by up to ``n`` frames.

Why it is built this way: the noise set must differ from the flow stage's output in the key frames and nothing else,
so the pipeline's own code makes it. Per clip of ``data/processed/flow`` (same clips, same order), the frames of
the shifted onset and apex (:mod:`memix.preprocess.keyframe_shift`: the draw and the clamping rule) are read from the
clip's folder (the clip index), cropped with the faces stage's onset transform (its index's ``affine``, through
:func:`memix.preprocess.clip_align.crop`), written as a faces-like shard folder into a temp folder, and the flow stage's
library function (:func:`memix.preprocess.flow.run`) turns that into a flow set exactly as the flow stage would.
The clips are the flow stage's: its outlier rule already chose them, so here every clip is kept (``on_outlier``
keep; ``report.json`` still lists what the rule would flag). With ``flow.pairs`` apex_offset the offset face is the
faces stage's rule applied to the new apex (the last frame on disk from the new apex up to the offset; the new
apex itself when it lies past the offset).

The base key frames are the clip index's onset and the apex the faces stage used: its index's ``apex`` column when
it records one (a spotted apex), else the clip index's. A clip whose apex is to be spotted but whose faces index
records no ``apex`` is refused (its clip index holds only a placeholder).

Output (``data/processed/keyframe_noise/<n>/``): a flow set (:mod:`memix.io.flowset`) with the flow set's index
columns plus ``onset_frame``, ``apex_frame`` (the frame numbers used), ``onset_draw``, ``apex_draw`` (the draws),
``onset_shift``, ``apex_shift`` (the applied shifts, in frames on disk), and the files ``stats.json``,
``report.json``, ``montage.png`` (the flow stage's, of these flows) and ``keyframe_noise.json`` (level, seed, rule,
counts). Byte-reproducible; written whole or not at all.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from memix.config import FlowParams
from memix.datasets.frames import BadFrameError, list_frames, read_frame
from memix.datasets.schema import validate_clip_index
from memix.io import atomic, flowset, noise_sets, shards
from memix.io.noise_sets import INFO_FILE
from memix.preprocess import clip_align, flow
from memix.preprocess.keyframe_shift import RULE, Shift, shift_clip

MONTAGE_FILE = "montage.png"
FRAME_COLUMNS = ("onset_frame", "apex_frame", "onset_draw", "apex_draw", "onset_shift", "apex_shift")
SPOTTED_APEX_COLUMN = "apex"
"""The faces index column that records the apex it cropped, where it chose one (a spotted apex)."""
_FACES_SHARD_MB = 64.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Moved:
    """One clip's crops at the noise level, and which frames they are."""

    shift: Shift
    onset_index: int  # positions in the clip's frames on disk of the annotated (base) key frames
    apex_index: int
    onset_at: int  # ... and of the frames used
    apex_at: int
    onset: np.ndarray  # (S, S) uint8
    apex: np.ndarray
    offset: np.ndarray | None


def run(
    params: FlowParams, level: int, seed: int, clips_path: Path, faces_dir: Path, flow_dir: Path, dataset_root: Path,
    out_dir: Path,
) -> dict[str, Any]:
    """Build the noise set of ``level`` into ``out_dir`` (atomically); returns what ``keyframe_noise.json`` holds."""
    if level <= 0:
        raise ValueError(f"key-frame noise level {level}: must be > 0 (level 0 is the flow set itself)")
    clips_path, faces_dir, flow_dir = Path(clips_path), Path(faces_dir), Path(flow_dir)
    if not clips_path.is_file():
        raise FileNotFoundError(f"clip index not found: {clips_path} (run `dvc repro ingest`)")
    clips = validate_clip_index(pd.read_parquet(clips_path), source=str(clips_path)).set_index("clip_id", drop=False)
    faces_index, face_arrays = shards.load(faces_dir)
    flow_ids = flowset.read(flow_dir).index["clip_id"].astype(str).tolist()
    rows = _faces_rows(faces_index, flow_ids, faces_dir, flow_dir)
    size, offset = int(face_arrays["onset"].shape[1]), "apex_offset" in params.pairs

    moved: list[_Moved] = []
    for clip_id, row in tqdm(zip(flow_ids, rows, strict=True), total=len(flow_ids), desc=f"keyframe noise ±{level}",
                             unit="clip"):
        if clip_id not in clips.index:
            raise ValueError(f"{clips_path}: clip {clip_id} of {flow_dir} is not in the clip index (rerun ingest)")
        moved.append(_move_clip(clips.loc[clip_id], faces_index.iloc[row], level, seed, Path(dataset_root), size,
                                offset))
    index = pd.DataFrame({
        **{c: faces_index[c].iloc[rows].to_numpy() for c in flow.FACES_COLUMNS},
        **{c: [[float(v) for v in faces_index[c].iloc[r]] for r in rows] for c in flow.POINT_COLUMNS},
    }).astype({c: faces_index[c].dtype for c in flow.FACES_COLUMNS})
    arrays = {"onset": np.stack([m.onset for m in moved]), "apex": np.stack([m.apex for m in moved])}
    if offset:
        arrays["offset"] = np.stack([m.offset for m in moved])  # type: ignore[misc]
    info = _info(level, seed, moved)
    with tempfile.TemporaryDirectory(prefix="memix-keyframe-noise-") as work:
        flow_set = _flow_of(params, index, arrays, Path(work))
        noise_index, noise_arrays = shards.load(flow_set, mmap=False)
        found = noise_index["clip_id"].astype(str).tolist()
        differ = noise_sets.first_difference(found, flow_ids)
        if differ:
            row, got, want = differ
            raise ValueError(f"key-frame noise set: {len(found)} clips, {flow_dir} has {len(flow_ids)}; row {row} is "
                             f"{got}, {flow_dir} has {want} there: a noise set must hold the flow set's clips in its "
                             "order")
        for col, values in zip(FRAME_COLUMNS, _frame_columns(moved), strict=True):
            noise_index[col] = values
        report = shards.read_file(flow_set, flow.REPORT_FILE)
        files = {flow.REPORT_FILE: report, MONTAGE_FILE: (Path(work) / MONTAGE_FILE).read_bytes(),
                 INFO_FILE: atomic.json_bytes(info)}
        stats = json.loads(shards.read_file(flow_set, flowset.STATS_FILE).decode("utf-8"))
        with atomic.atomic_path(out_dir, owned=atomic.owned_if_holds(shards.MANIFEST)) as tmp:
            flowset.write(tmp, noise_index.drop(columns=["shard", "row"]), noise_arrays, stats,
                          shard_mb=params.shard_mb, files=files)
    log.info(
        "keyframe_noise ±%d: %d clips, onset moved in %d, apex in %d (mean |shift| %.2f / %.2f frames; %d draws "
        "clamped) -> %s", level, info["n_clips"], info["n_onset_moved"], info["n_apex_moved"],
        info["mean_abs_onset_shift"], info["mean_abs_apex_shift"], info["n_clamped"], out_dir,
    )
    listed = json.loads(report.decode("utf-8"))["n_listed"]
    if listed:
        log.info("keyframe_noise ±%d: %d clip(s) without motion or with an outlying flow, kept (listed in %s)",
                 level, listed, Path(out_dir) / flow.REPORT_FILE)
    return info


def _flow_of(params: FlowParams, index: pd.DataFrame, arrays: dict[str, np.ndarray], work: Path) -> Path:
    """The flow stage's computation on these crops: a faces-like shard folder in ``work``, then
    :func:`memix.preprocess.flow.run` on it; returns the flow set's folder (the montage lands beside it)."""
    shards.write(work / "faces", index, arrays, _FACES_SHARD_MB)
    keep = params.model_copy(update={"on_outlier": "keep"})  # the flow stage's rule chose the clips already
    with _quiet(flow.log):  # its lines would name the temp folder; the stage's summary says what they would
        flow.run(keep, faces_dir=work / "faces", out_dir=work / "flow", montage_path=work / MONTAGE_FILE)
    return work / "flow"


@contextlib.contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    """``logger`` at errors only for the duration."""
    before = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(before)


def _faces_rows(faces_index: pd.DataFrame, flow_ids: list[str], faces_dir: Path, flow_dir: Path) -> list[int]:
    """Row of each flow set clip in the faces index (the flow set holds the faces stage's clips, or fewer)."""
    missing = [c for c in (*flow.FACES_COLUMNS, *flow.POINT_COLUMNS) if c not in faces_index.columns]
    if missing:
        raise ValueError(f"{faces_dir}: faces index lacks column(s) {missing} (`dvc repro faces`)")
    where = {str(c): i for i, c in enumerate(faces_index["clip_id"])}
    absent = [c for c in flow_ids if c not in where]
    if absent:
        raise ValueError(f"{flow_dir}: clip(s) {absent[:3]} are not in the faces index {faces_dir} (a stale flow set? "
                         "`dvc repro flow`)")
    return [where[c] for c in flow_ids]


def base_apex(clip: pd.Series, faces_row: pd.Series) -> int:
    """The apex the faces stage cropped: its index's :data:`SPOTTED_APEX_COLUMN` when it records one, else the clip
    index's (a clip whose apex the faces stage spots has only a placeholder there, so it is refused)."""
    recorded = faces_row.get(SPOTTED_APEX_COLUMN)
    if recorded is not None and not pd.isna(recorded):
        return int(recorded)
    if str(clip.get("apex_source", "annotated")) == "spotted":
        raise ValueError(
            f"clip {clip['clip_id']}: its apex is spotted by the faces stage, but the faces index records no "
            f"{SPOTTED_APEX_COLUMN!r} column to shift it from (the clip index holds a placeholder)"
        )
    return int(clip["apex"])


def _move_clip(
    clip: pd.Series, faces_row: pd.Series, level: int, seed: int, dataset_root: Path, size: int, offset: bool
) -> _Moved:
    """Draw the clip's shift, read its new key frames and crop them with the faces stage's onset transform."""
    clip_id = str(clip["clip_id"])
    clip_dir = dataset_root / str(clip["frame_dir"])
    frames = list_frames(clip_dir)
    numbers = sorted(frames)
    onset, apex = int(clip["onset"]), base_apex(clip, faces_row)
    shift = shift_clip(seed, level, clip_id, numbers, onset, apex)
    affine = np.asarray(faces_row["affine"], dtype=np.float64)
    if affine.shape != (6,) or not np.isfinite(affine).all():
        raise ValueError(f"clip {clip_id}: faces index field affine is not 6 finite numbers")
    affine = affine.reshape(2, 3)
    shape: tuple[int, ...] | None = None
    crops = []
    names = [frames[shift.onset], frames[shift.apex]]
    if offset:
        names.append(clip_align.offset_frame(clip_dir, shift.apex, max(int(clip["offset"]), shift.apex)))
    for name in names:
        path = clip_dir / name
        try:
            frame = read_frame(path, clip_id)
        except BadFrameError as err:
            raise ValueError(f"{err} (a noise set needs every shifted key frame readable)") from None
        if shape is not None and frame.shape[:2] != shape:
            raise ValueError(f"clip {clip_id}: frame {path} differs in size from its onset frame {names[0]}")
        shape = frame.shape[:2]
        crops.append(clip_align.crop(frame, affine, size))
    where = {n: i for i, n in enumerate(numbers)}
    return _Moved(shift, where[onset], where[apex], where[shift.onset], where[shift.apex], crops[0], crops[1],
                  crops[2] if offset else None)


def _frame_columns(moved: list[_Moved]) -> list[np.ndarray]:
    """The index columns of :data:`FRAME_COLUMNS`, in that order."""
    return [np.array(values, dtype=np.int64) for values in (
        [m.shift.onset for m in moved], [m.shift.apex for m in moved],
        [m.shift.d_onset for m in moved], [m.shift.d_apex for m in moved],
        [m.onset_at - m.onset_index for m in moved], [m.apex_at - m.apex_index for m in moved],
    )]


def _info(level: int, seed: int, moved: list[_Moved]) -> dict[str, Any]:
    onset = np.array([m.onset_at - m.onset_index for m in moved], dtype=np.int64)
    apex = np.array([m.apex_at - m.apex_index for m in moved], dtype=np.int64)
    clamped = sum((m.onset_at - m.onset_index, m.apex_at - m.apex_index) != (m.shift.d_onset, m.shift.d_apex)
                  for m in moved)
    return {
        "level": level,
        "seed": seed,
        "rule": RULE,
        "n_clips": len(moved),
        "n_onset_moved": int((onset != 0).sum()),
        "n_apex_moved": int((apex != 0).sum()),
        "n_unshifted": int(((onset == 0) & (apex == 0)).sum()),
        "n_clamped": int(clamped),
        "mean_abs_onset_shift": float(np.abs(onset).mean()) if len(onset) else 0.0,
        "mean_abs_apex_shift": float(np.abs(apex).mean()) if len(apex) else 0.0,
    }


__all__ = ["FRAME_COLUMNS", "INFO_FILE", "SPOTTED_APEX_COLUMN", "base_apex", "run"]
