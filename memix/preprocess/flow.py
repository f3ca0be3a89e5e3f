"""The flow stage: faces shard folder -> flow set (:mod:`memix.io.flowset`) and the flow montage PNG.

Per clip: onset -> apex flow (and, with ``flow.pairs`` holding ``apex_offset``, the apex -> offset flow, stored as
``flow_offset`` the same way) at the aligned crop size, optical strain on that full-resolution field
(strain is a dimensionless derivative, so it is computed where the flow is sharpest, then
area-averaged to ``flow.size`` like an image), flow resized to ``flow.size`` with its vectors
rescaled to the new pixels. Clips run in a process pool, one OpenCV thread each, and come back in
index order, so the bytes do not depend on the worker count. The workers die with the stage
(:func:`memix.workers.start_worker`), even when it is killed outright.

``report.json`` in the flow set lists the clips whose flow does not look like a face's micro-motion, by the
largest flow magnitude of each clip (``max_mag``, in pixels of the stored ``flow.size`` tensor):

* ``no motion``: ``max_mag`` below :data:`NO_MOTION_PX` (identical or blank frames give an all-zero flow);
* ``outlier``: ``max_mag`` above ``flow.outlier_factor`` times the median ``max_mag`` of all clips. The median
  is robust to the outliers themselves and follows the dataset's own scale. On the synthetic default the
  clips range from 0.4 to 4.4 times the median (0.23 px); an apex JPEG cut to two thirds (its last third
  decoded grey) gives 25 to 33 times (six clips tried), so the default factor 8 leaves room on both sides.

``flow.on_outlier: keep`` (default) only lists them; ``drop`` also leaves them out of the flow set. Either way the
stage ends with a warning on stderr naming them (:func:`listed_warning`).

The index also carries each clip's five facial points (``landmarks``: x, y of the faces stage's
``LANDMARK_NAMES`` mapped through its affine into the pixels of the stored ``flow.size`` tensors), from which the
region networks' blocks are cut (:mod:`memix.io.views`).
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from memix import plots
from memix.config import FlowParams
from memix.io import atomic, flowset, shards
from memix.preprocess import optical_flow
from memix.workers import start_worker

FACES_COLUMNS = ("clip_id", "dataset", "subject", "label", "label_id")  # dataset: the clip's source
POINT_COLUMNS = ("landmarks", "affine")  # the faces index's points (source px) and its source -> crop transform
REPORT_FILE = "report.json"
NO_MOTION_PX = 0.01

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Job:
    clip_id: str
    onset: np.ndarray
    apex: np.ndarray
    keep_full: bool
    offset: np.ndarray | None = None  # the offset face, when flow.pairs holds apex_offset


@dataclass(frozen=True)
class _Result:
    tensor: np.ndarray  # (C, S, S) float16
    onset: np.ndarray  # (S, S) uint8
    apex: np.ndarray  # (S, S) uint8
    max_mag: float
    mean_mag: float
    sums: np.ndarray  # (C,) float64 over the stored float16 values
    sumsqs: np.ndarray
    full: tuple[np.ndarray, np.ndarray] | None  # crop-size (flow, strain) for the montage
    offset_tensor: np.ndarray | None = None  # (C, S, S) float16 apex -> offset flow (flow.pairs apex_offset)


def run(params: FlowParams, faces_dir: Path, out_dir: Path, montage_path: Path) -> None:
    """Compute every clip's flow tensor, write the flow set ``out_dir`` and the montage, atomically."""
    faces_dir, out_dir, montage_path = Path(faces_dir), Path(out_dir), Path(montage_path)
    sequence = "apex_offset" in params.pairs
    index, arrays_in = _load_faces(faces_dir, sequence)
    onsets, apexes, offsets = arrays_in["onset"], arrays_in["apex"], arrays_in["offset"] if sequence else None
    montage_rows = pick_montage_rows(index, params.montage_per_class)
    keep = set(montage_rows)
    jobs = [
        _Job(str(cid), np.array(onsets[i]), np.array(apexes[i]), i in keep,
             None if offsets is None else np.array(offsets[i]))
        for i, cid in enumerate(index["clip_id"])
    ]
    results = _compute_all(params, jobs, faces_dir)
    flagged = unusual_clips(np.array([r.max_mag for r in results], dtype=np.float64), params.outlier_factor)
    report = flow_report(index, results, flagged, params)
    if params.on_outlier == "drop" and flagged:
        kept = [i for i in range(len(results)) if i not in flagged]
        if not kept:
            raise ValueError(f"{faces_dir}: every clip was flagged (see the rule in memix/preprocess/flow.py)")
        index = index.iloc[kept].reset_index(drop=True)
        jobs, results = [jobs[i] for i in kept], [results[i] for i in kept]
        montage_rows = pick_montage_rows(index, params.montage_per_class)
        for i in montage_rows:
            if results[i].full is None:  # drawn now in place of a dropped clip
                results[i] = _job((params, dataclasses.replace(jobs[i], keep_full=True), str(faces_dir)), serial=True)

    channels = list(params.channels)
    size = params.size
    out_index = index[list(FACES_COLUMNS)].reset_index(drop=True).copy()
    out_index["max_mag"] = np.array([r.max_mag for r in results], dtype=np.float64)
    out_index["mean_mag"] = np.array([r.mean_mag for r in results], dtype=np.float64)
    for c, ch in enumerate(channels):
        out_index[f"sum_{ch}"] = np.array([r.sums[c] for r in results], dtype=np.float64)
        out_index[f"sumsq_{ch}"] = np.array([r.sumsqs[c] for r in results], dtype=np.float64)
    out_index["n_pixels"] = np.full(len(results), size * size, dtype=np.int64)
    if all(c in index.columns for c in POINT_COLUMNS):  # the faces stage writes them; a hand-made folder may not
        out_index["landmarks"] = flow_points(index, int(onsets.shape[1]), size)
    arrays = {
        "flow": np.stack([r.tensor for r in results]),
        "onset": np.stack([r.onset for r in results]),
        "apex": np.stack([r.apex for r in results]),
    }
    if "apex_offset" in params.pairs:
        arrays["flow_offset"] = np.stack([r.offset_tensor for r in results])
    mean, std = flowset.channel_stats(out_index, channels)
    section = getattr(params, params.method)
    stats = {
        "channels": channels,
        "mean": [float(x) for x in mean],
        "std": [float(x) for x in std],
        "n_clips": len(results),
        "size": size,
        "crop_size": int(onsets.shape[1]),
        "pairs": list(params.pairs),
        "method": params.method,
        "method_params": section.model_dump(by_alias=True, mode="json"),
        "note": "whole-set statistics, for information; training normalises per LOSO fold (flowset.channel_stats)",
    }
    panels = [
        plots.FlowPanel(
            f"{index['clip_id'].iloc[i]} ({index['label'].iloc[i]})",
            jobs[i].onset,
            *results[i].full,  # type: ignore[misc]
        )
        for i in montage_rows
    ]
    title = (
        f"{params.method} flow at the {stats['crop_size']} px crop (stored at {size} px); "
        f"{params.montage_per_class} clips per class"
    )
    owned = atomic.owned_if_holds(shards.MANIFEST)
    with atomic.atomic_paths(out_dir, montage_path, owned=owned) as (tmp_out, tmp_png):  # both or neither
        flowset.write(tmp_out, out_index, arrays, stats, shard_mb=params.shard_mb,
                      files={REPORT_FILE: atomic.json_bytes(report)})
        plots.flow_montage(panels, tmp_png, title)
    log.info(
        "flow: %d clips, %s at %d px (%s); magnitude mean %.3f px, largest %.3f px -> %s",
        len(results), ",".join(channels), size, params.method, float(out_index["mean_mag"].mean()),
        float(out_index["max_mag"].max()), out_dir,
    )
    if report["listed"]:
        log.warning("%s", listed_warning(report, out_dir / REPORT_FILE))


def unusual_clips(max_mag: np.ndarray, factor: float) -> dict[int, str]:
    """Row -> reason (``no motion`` or ``outlier``) for the clips the module's rule lists."""
    median = float(np.median(max_mag)) if len(max_mag) else 0.0
    flagged: dict[int, str] = {}
    for i, m in enumerate(max_mag):
        if m < NO_MOTION_PX:
            flagged[i] = "no motion"
        elif median > 0 and m > factor * median:
            flagged[i] = "outlier"
    return flagged


def flow_report(index: pd.DataFrame, results: list[_Result], flagged: dict[int, str], params: FlowParams) -> dict:
    """``report.json``: the rule, the dataset's scale and every listed clip with its numbers."""
    max_mag = np.array([r.max_mag for r in results], dtype=np.float64)
    median = float(np.median(max_mag))
    listed = [
        {
            "clip_id": str(index["clip_id"].iloc[i]),
            "subject": str(index["subject"].iloc[i]),
            "label": str(index["label"].iloc[i]),
            "reason": reason,
            "max_mag": float(max_mag[i]),
            "times_median": float(max_mag[i] / median) if median > 0 else None,
        }
        for i, reason in sorted(flagged.items())
    ]
    return {
        "rule": (
            f"max_mag (largest flow magnitude of a clip, px at {params.size} px) below {NO_MOTION_PX}: no motion; "
            f"above outlier_factor x the median max_mag of all clips: outlier"
        ),
        "n_clips": len(results),
        "median_max_mag": median,
        "largest_max_mag": float(max_mag.max()),
        "outlier_factor": params.outlier_factor,
        "outlier_above": params.outlier_factor * median,
        "no_motion_below": NO_MOTION_PX,
        "on_outlier": params.on_outlier,
        "n_listed": len(listed),
        "n_dropped": len(listed) if params.on_outlier == "drop" else 0,
        "listed": listed,
    }


def listed_warning(report: dict, report_path: Path) -> str:
    """The stage's last line when ``report.json`` lists clips: a damaged or misaligned frame shows up here first,
    so the clips are named where the run is watched, not only in the report."""
    clips = ", ".join(_listed_clip(d) for d in report["listed"])
    done = "left out (flow.on_outlier: drop)" if report["on_outlier"] == "drop" else "kept (flow.on_outlier: keep)"
    return (
        f"flow: {report['n_listed']} of {report['n_clips']} clips without motion or with a largest flow over "
        f"{report['outlier_factor']:g} x the median (a damaged or misaligned frame?), {done}: {clips}; "
        f"see {report_path}"
    )


def _listed_clip(entry: dict) -> str:
    """``sub01/EP02_01 (outlier, 22.3 x the median)`` or ``sub01/EP03_02 (no motion)``."""
    if entry["reason"] == "outlier" and entry["times_median"] is not None:
        return f"{entry['clip_id']} (outlier, {entry['times_median']:.1f} x the median)"
    return f"{entry['clip_id']} ({entry['reason']})"


def pick_montage_rows(index: pd.DataFrame, per_class: int) -> list[int]:
    """Row positions to draw: per class (by label_id), ``per_class`` clips spread evenly through the index."""
    rows: list[int] = []
    label_ids = index["label_id"].to_numpy()
    for lab in sorted(set(label_ids.tolist())):
        members = np.flatnonzero(label_ids == lab)
        take = min(per_class, len(members))
        picks = np.unique(np.round(np.linspace(0, len(members) - 1, take)).astype(int))
        rows += [int(members[p]) for p in picks]
    return rows


def flow_points(index: pd.DataFrame, crop_size: int, size: int) -> list[list[float]]:
    """Per clip of the faces index its five points (source px) in the pixels of the stored ``size`` px tensors."""
    out = []
    for cid, points, affine in zip(index["clip_id"], index["landmarks"], index["affine"], strict=True):
        try:
            at = points_in_tensor(points, affine, crop_size, size)
        except ValueError as err:
            raise ValueError(f"clip {cid}: faces index field landmarks/affine: {err}") from None
        out.append([float(v) for v in at.ravel()])
    return out


def points_in_tensor(points: object, affine: object, crop_size: int, size: int) -> np.ndarray:
    """Five points (x, y in source px) -> (5, 2) in the pixels of a ``size`` px tensor: through the source -> crop
    affine, then from the crop's pixel centres to the tensor's (as a resize maps them)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    a = np.asarray(affine, dtype=np.float64).reshape(2, 3)
    if pts.shape != (5, 2) or not np.isfinite(pts).all() or not np.isfinite(a).all():
        raise ValueError("not 5 finite points (x, y) and a finite 2x3 affine")
    crop = pts @ a[:, :2].T + a[:, 2]
    return (crop + 0.5) * (size / crop_size) - 0.5


def pair_tensor(
    params: FlowParams, first: np.ndarray, second: np.ndarray, keep_full: bool = False
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """The flow first -> second at crop size, strain there, both brought to ``params.size`` as (C, S, S) float16;
    with ``keep_full`` also the crop-size (flow, strain) for the montage."""
    full = optical_flow.flow_for(params, first, second)
    if not np.isfinite(full).all():
        raise ValueError("flow has non-finite values")
    small = optical_flow.resize_flow(full, params.size)
    maps = {"u": small[..., 0], "v": small[..., 1]}
    strain_full = None
    if "strain" in params.channels or keep_full:
        strain_full = optical_flow.optical_strain(full)
        maps["strain"] = optical_flow.resize_scalar(strain_full, params.size)
    tensor = np.stack([maps[ch] for ch in params.channels]).astype(np.float16)
    return tensor, ((full, strain_full) if keep_full else None)  # type: ignore[return-value]


def clip_tensor(
    params: FlowParams, onset: np.ndarray, apex: np.ndarray, keep_full: bool = False, offset: np.ndarray | None = None
) -> _Result:
    """One clip's onset -> apex flow (:func:`pair_tensor`) with its statistics and faces at ``params.size``, and the
    apex -> offset flow likewise when ``offset`` is given."""
    tensor, full = pair_tensor(params, onset, apex, keep_full)
    try:
        offset_tensor = None if offset is None else pair_tensor(params, apex, offset)[0]
    except ValueError as err:
        raise ValueError(f"apex -> offset flow: {err}") from None
    stored = tensor.astype(np.float64)
    mag = np.hypot(stored[0], stored[1])
    interp = cv2.INTER_AREA if params.size <= onset.shape[0] else cv2.INTER_LINEAR
    return _Result(
        tensor=tensor,
        onset=cv2.resize(onset, (params.size, params.size), interpolation=interp),
        apex=cv2.resize(apex, (params.size, params.size), interpolation=interp),
        max_mag=float(mag.max()),
        mean_mag=float(mag.mean()),
        sums=stored.sum(axis=(1, 2)),
        sumsqs=(stored**2).sum(axis=(1, 2)),
        full=full,
        offset_tensor=offset_tensor,
    )


# ------------------------------------------------------------------------------------------ helpers
def _load_faces(faces_dir: Path, need_offset: bool = False) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    index, arrays = shards.load(faces_dir)
    missing = [c for c in FACES_COLUMNS if c not in index.columns]
    if missing:
        raise ValueError(
            f"{faces_dir}: faces index lacks column(s) {missing} (written by an older faces stage? `dvc repro faces`)"
        )
    for name in ("onset", "apex", *(("offset",) if need_offset else ())):
        if name not in arrays:
            hint = " (flow.pairs apex_offset needs the faces stage's offset crops: `dvc repro faces`)" \
                if name == "offset" else ""
            raise ValueError(f"{faces_dir}: faces shard folder has no array {name!r} (has {sorted(arrays)}){hint}")
        arr = arrays[name]
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[1] != arr.shape[2]:
            raise ValueError(f"{faces_dir}: array {name!r} must be uint8 (N, S, S), got {arr.dtype} {arr.shape}")
    for name in ("apex", "offset") if need_offset else ("apex",):
        if arrays["onset"].shape != arrays[name].shape:
            raise ValueError(f"{faces_dir}: onset {arrays['onset'].shape} and {name} {arrays[name].shape} differ")
    if len(index) == 0:
        raise ValueError(f"{faces_dir}: no clips in the faces index")
    dup = index["clip_id"][index["clip_id"].duplicated()].tolist()
    if dup:
        raise ValueError(f"{faces_dir}: duplicate clip_id(s) {dup[:5]}")
    return index.reset_index(drop=True), arrays


def _compute_all(params: FlowParams, jobs: list[_Job], faces_dir: Path) -> list[_Result]:
    workers = min(params.workers or os.cpu_count() or 1, len(jobs))
    log.debug("flow: %d clips on %d worker process(es)", len(jobs), workers)
    bar = dict(total=len(jobs), desc="flow", unit="clip")
    args = [(params, job, str(faces_dir)) for job in jobs]
    if workers <= 1:
        return [_job(a, serial=True) for a in tqdm(args, **bar)]
    chunk = max(1, min(4, len(jobs) // (workers * 16)))  # small chunks: a smooth bar, little pickling overhead
    with pool(workers) as executor:
        return list(tqdm(executor.map(_job, args, chunksize=chunk), **bar))


def pool(workers: int) -> ProcessPoolExecutor:
    """The flow stage's process pool: spawned workers (no fork of a threaded parent: OpenCV/torch pools), one
    OpenCV thread each, ending with this process even when it is killed (:func:`memix.workers.start_worker`)."""
    ctx = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(os.getpid(),))


def _init_worker(parent_pid: int) -> None:
    start_worker(parent_pid)
    cv2.setNumThreads(1)


def _job(arg: tuple[FlowParams, _Job, str], serial: bool = False) -> _Result:
    params, job, faces_dir = arg
    before = cv2.getNumThreads()
    if serial:
        cv2.setNumThreads(1)  # same arithmetic as the pool's workers, so bytes match
    try:
        return clip_tensor(params, job.onset, job.apex, job.keep_full, job.offset)
    except Exception as err:  # re-raised with the clip named; the pool carries it to the parent
        raise RuntimeError(f"flow failed for clip {job.clip_id!r} of {faces_dir}: {err}") from None
    finally:
        if serial:
            cv2.setNumThreads(before)
