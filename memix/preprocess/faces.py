"""Stage ``faces``: find the face on each clip's onset frame, align it, and crop onset and apex alike.

MediaPipe's FaceLandmarker gives the 478-point mesh on the onset frame; the eye centres fix a similarity
transform (``memix.preprocess.align``, through :mod:`memix.preprocess.clip_align`) onto a ``size`` px square,
greyscale uint8 crop. The SAME 2x3 affine is applied to the apex frame (and, with ``all_frames``, to every frame
onset..offset), so head pose jitter between detections never shows up as motion in the flow. The apex frame must
show a face too (a blank or damaged apex would give a flow of nothing under the clip's label); ``on_missing``
decides for either frame.

The apex is the clip index's, except for a clip whose ``apex_source`` is ``spotted`` (``dataset.apex: spotted``,
``on_bad_apex: spot``, or a dataset without apex annotation such as SMIC; see :mod:`memix.datasets.rows`): every
frame onset..offset is cropped with the onset's transform and the frame of greatest motion from the onset
(:func:`memix.preprocess.spotting.spot_apex`) becomes the apex, searched for a face like an annotated one
(:mod:`memix.preprocess.apex_choice`).

Output (``data/processed/faces/``), a shard folder (``memix.io.shards``):

* arrays ``onset`` and ``apex``: uint8 (N, S, S); with ``offset`` (``flow.pairs`` holding ``apex_offset``: the
  apex -> offset flow of the whole-sequence networks) also ``offset``, the clip's last frame on disk at or before
  its offset, cropped with the onset's transform like the apex and not searched for a face (the apex already was);
  ``report.json`` counts the clips whose offset frame is their apex (``n_offset_at_apex``: no apex -> offset
  motion);
* index columns: clip_id, dataset, subject, label, label_id (from the clip index), status ("ok"), score,
  n_faces, landmarks (10 floats: x, y of ``LANDMARK_NAMES`` in source pixels), affine (6 floats, row
  major, source px -> crop px), box_x0, box_y0, box_x1, box_y1 (the mesh's extent in source pixels), onset,
  offset, apex (the frame number used), apex_annotated (the sheet's, null if none), apex_source (annotated, middle,
  patched or spotted) and, for spotted clips, spot_peak, spot_floor and spot_detectable (the fields of
  :class:`memix.preprocess.spotting.Spot`; NaN / null otherwise);
* ``report.json``: counts, skipped clips with the reason, clips with several faces; ``apex``: apexes per source,
  the spotted clips whose peak does not clear the noise floor, and ``error_frames``, the spotting error
  |spotted - annotated| in frames (median, 90th percentile, share within 1 and 2) over the spotted clips with a
  valid annotation (onset < annotated <= offset: ``dataset.apex: spotted``);
* with ``all_frames``: the index also has ``frames_start`` and ``frames_count``, and the sub-folder
  ``frames/`` is a shard folder with the array ``face`` (M, S, S) and columns clip_id, frame (the frame
  number); a clip's frames are rows ``frames_start .. frames_start + frames_count - 1``, in frame order.

``score``: FaceLandmarker reports no confidence, so the face detector inside the same ``.task`` bundle
(BlazeFace, the model FaceLandmarker itself runs first) is run on the onset frame and the score of the
detection that best overlaps the chosen mesh (IoU >= 0.3) is recorded; NaN when no detection overlaps.
Several faces: the largest mesh (by box area) is used and the clip is listed in ``report.json``;
``n_faces`` counts up to ``MAX_FACES``.
"""

from __future__ import annotations

import logging
import math
import zipfile
from pathlib import Path
from types import TracebackType

import numpy as np
import pandas as pd
from tqdm import tqdm

from memix.config import FacesParams
from memix.datasets.frames import BadFrameError
from memix.datasets.schema import validate_clip_index
from memix.io import atomic, shards
from memix.log import native_stderr
from memix.preprocess.apex_choice import Chosen, align_chosen, apex_fields, apex_report, check_apex_sources
from memix.preprocess.clip_align import AlignedClip, crop_like_onset, offset_frame
from memix.preprocess.facemodel import check_bundle
from memix.preprocess.landmarks import LandmarkDetector

MAX_FACES = 4
NOSE_TIP, MOUTH_LEFT, MOUTH_RIGHT = 1, 61, 291
LANDMARK_NAMES = ("eye_left", "eye_right", "nose_tip", "mouth_left", "mouth_right")
_DETECTOR_IN_BUNDLE = "face_detector.tflite"
_MIN_IOU = 0.3

log = logging.getLogger(__name__)


class FaceScorer:
    """BlazeFace from the FaceLandmarker bundle, for the detection score FaceLandmarker does not expose."""

    def __init__(self, model_path: str | Path, min_confidence: float) -> None:
        self.model_path = check_bundle(model_path)
        self.min_confidence = min_confidence
        self._detector = None

    def __enter__(self) -> FaceScorer:
        from mediapipe.tasks.python import BaseOptions, vision

        try:
            with zipfile.ZipFile(self.model_path) as bundle:
                buffer = bundle.read(_DETECTOR_IN_BUNDLE)
        except (zipfile.BadZipFile, KeyError) as err:
            raise ValueError(f"{self.model_path}: no {_DETECTOR_IN_BUNDLE} inside the face model bundle") from err
        options = vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_buffer=buffer),
            running_mode=vision.RunningMode.IMAGE,
            min_detection_confidence=self.min_confidence,
        )
        with native_stderr(f"loading the face detector of {self.model_path}"):
            self._detector = vision.FaceDetector.create_from_options(options)
            self._detector.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._detector is not None:
            with native_stderr("closing the face detector"):
                self._detector.__exit__(exc_type, exc, tb)
            self._detector = None

    def score(self, rgb: np.ndarray, box: tuple[float, float, float, float]) -> float:
        """Score of the detection overlapping ``box`` (x0, y0, x1, y1) best; NaN if none overlaps enough."""
        import mediapipe as mp

        if self._detector is None:
            raise RuntimeError("use FaceScorer as a context manager")
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        with native_stderr("face detection"):
            result = self._detector.detect(image)
        best_iou, best = 0.0, math.nan
        for det in result.detections:
            b = det.bounding_box
            iou = _iou(box, (b.origin_x, b.origin_y, b.origin_x + b.width, b.origin_y + b.height))
            if iou >= _MIN_IOU and iou > best_iou:
                best_iou, best = iou, float(det.categories[0].score)
        return best


def run(
    params: FacesParams,
    clips_path: Path,
    dataset_root: Path,
    model_path: Path,
    out_dir: Path,
    on_bad_frame: str = "error",
    offset: bool = False,
    apex: str | None = None,
    on_bad_apex: str | None = None,
) -> None:
    """Align every clip of the clip index and write the faces shard folder + report.json atomically (``offset``:
    crop each clip's offset frame too).

    A clip without a face on its onset or apex frame stops the stage or is skipped (``params.on_missing``); one
    with a damaged frame likewise per ``on_bad_frame`` (``dataset.on_bad_frame``). Skips are in report.json.
    ``apex`` and ``on_bad_apex`` (``dataset.*``, as ingest read them) are checked against the clip index's
    ``apex_source`` and written in the report; None skips the check.
    """
    clips_path, dataset_root, out_dir = Path(clips_path), Path(dataset_root), Path(out_dir)
    if not clips_path.is_file():
        raise FileNotFoundError(f"clip index not found: {clips_path} (run `dvc repro ingest`)")
    clips = validate_clip_index(pd.read_parquet(clips_path), source=str(clips_path))
    if apex is not None:
        check_apex_sources(clips, apex, on_bad_apex or "patch", clips_path)
    size = params.size

    rows: list[dict] = []
    onsets: list[np.ndarray] = []
    apexes: list[np.ndarray] = []
    offsets: list[np.ndarray] = []
    at_apex = 0
    frame_rows: list[dict] = []
    frame_crops: list[np.ndarray] = []
    skipped: list[dict] = []
    multi: list[dict] = []

    detector = LandmarkDetector(model_path, max_faces=MAX_FACES, min_confidence=params.min_detection_confidence)
    with detector, FaceScorer(model_path, params.min_detection_confidence) as scorer:
        for clip in tqdm(clips.itertuples(index=False), total=len(clips), desc="faces", unit="clip"):
            clip_id = str(clip.clip_id)
            onset_file = dataset_root / str(clip.onset_path)
            try:
                chosen = align_chosen(detector, clip, dataset_root, params)
                aligned, apex_file, crops = chosen.aligned, chosen.apex_file, chosen.crops
                want_offset = aligned is not None and offset
                offset_crop = _offset_crop(clip, dataset_root, aligned, size, chosen) if want_offset else None
            except BadFrameError as err:
                if on_bad_frame != "skip":
                    raise ValueError(f"{err} (set dataset.on_bad_frame: skip to leave such clips out)") from None
                skipped.append({"clip_id": clip_id, "file": err.path.as_posix(), "reason": f"damaged frame: {err}"})
                continue
            if aligned is not None and aligned.apex_faces == 0:
                if params.on_missing == "error":
                    raise ValueError(
                        f"clip {clip_id}: no face found in its apex frame {apex_file} "
                        "(set faces.on_missing: skip to leave such clips out)"
                    )
                reason = "no face detected in the apex frame"
                skipped.append({"clip_id": clip_id, "file": apex_file.as_posix(), "reason": reason})
                continue
            if aligned is None:
                if params.on_missing == "error":
                    raise ValueError(
                        f"clip {clip_id}: no face found in its onset frame {onset_file} "
                        "(set faces.on_missing: skip to leave such clips out)"
                    )
                skipped.append({"clip_id": clip_id, "file": onset_file.as_posix(), "reason": "no face detected"})
                log.debug("faces: %s skipped: no face in %s", clip_id, onset_file)
                continue
            if aligned.n_faces > 1:
                multi.append({"clip_id": clip_id, "n_faces": aligned.n_faces})
            mesh, affine = aligned.mesh, aligned.affine
            box = (
                float(mesh[:, 0].min()),
                float(mesh[:, 1].min()),
                float(mesh[:, 0].max()),
                float(mesh[:, 1].max()),
            )
            onsets.append(aligned.onset)
            apexes.append(aligned.apex)
            if offset_crop is not None:
                offsets.append(offset_crop[0])
                at_apex += int(offset_crop[1])
            row = {
                "clip_id": clip_id,
                "dataset": clip.dataset,
                "subject": clip.subject,
                "label": clip.label,
                "label_id": int(clip.label_id),
                "status": "ok",
                "score": scorer.score(aligned.rgb, box),
                "n_faces": aligned.n_faces,
                "landmarks": used_landmarks(mesh, aligned.left, aligned.right),
                "affine": [float(v) for v in affine.ravel()],
                "box_x0": box[0],
                "box_y0": box[1],
                "box_x1": box[2],
                "box_y1": box[3],
                **apex_fields(clip, chosen),
            }
            if params.all_frames:
                row["frames_start"] = len(frame_rows)
                row["frames_count"] = len(crops)
                frame_rows.extend({"clip_id": clip_id, "frame": number} for number, _ in crops)
                frame_crops.extend(crop for _, crop in crops)
            rows.append(row)

    if len(clips) and not rows:
        reasons = "; ".join(f"{s['clip_id']}: {s['reason']} in {s['file']}" for s in skipped[:3])
        raise ValueError(f"{clips_path}: no face found in any of the {len(clips)} clips ({reasons} ...)")

    index = _index_frame(rows, params.all_frames)
    empty = np.zeros((0, size, size), dtype=np.uint8)
    arrays = {
        "onset": np.stack(onsets) if onsets else empty,
        "apex": np.stack(apexes) if apexes else empty,
    }
    if offset:
        arrays["offset"] = np.stack(offsets) if offsets else empty
    report = {
        "n_clips": len(clips),
        "n_ok": len(rows),
        "n_skipped": len(skipped),
        "n_multi_face": len(multi),
        "skipped": skipped,
        "multi_face": multi,
        "size": size,
        "margin": params.margin,
        "all_frames": params.all_frames,
        **({"n_offset_at_apex": at_apex} if offset else {}),
        "apex": apex_report(index, apex, on_bad_apex),
        "n_frames": len(frame_rows),
        "score": "BlazeFace score from the face model bundle, matched to the mesh by IoU >= 0.3; NaN if unmatched",
    }
    with atomic.atomic_path(out_dir, owned=atomic.owned_if_holds(shards.MANIFEST)) as tmp:
        shards.write(tmp, index, arrays, params.shard_mb, files={"report.json": atomic.json_bytes(report)})
        if params.all_frames:
            frames_index = pd.DataFrame(frame_rows, columns=["clip_id", "frame"]).astype(
                {"clip_id": "string", "frame": "int64"}
            )
            frames = np.stack(frame_crops) if frame_crops else empty
            shards.write(tmp / "frames", frames_index, {"face": frames}, params.shard_mb)
    log.info(
        "faces: %d clips: %d aligned at %d px, %d skipped (no face), %d with several faces -> %s",
        len(clips), len(rows), size, len(skipped), len(multi), out_dir,
    )
    if skipped:
        log.warning("faces: %d clip(s) skipped for want of a face, listed in %s", len(skipped), out_dir / "report.json")
    if report["apex"]["n_not_detectable"]:
        log.warning(
            "faces: %d spotted clip(s) move no more than noise (no micro-expression found; apex kept), listed in %s",
            report["apex"]["n_not_detectable"], out_dir / "report.json",
        )


def _offset_crop(clip, dataset_root: Path, aligned: AlignedClip, size: int, chosen: Chosen) -> tuple[np.ndarray, bool]:
    """The offset face, and whether the offset frame is the apex frame itself (no apex -> offset motion)."""
    clip_dir = dataset_root / str(clip.frame_dir)
    name = offset_frame(clip_dir, chosen.apex, int(clip.offset))
    at_apex = name == chosen.apex_file.name
    return crop_like_onset(clip_dir / name, str(clip.clip_id), aligned, size), at_apex


def used_landmarks(mesh: np.ndarray, left: np.ndarray, right: np.ndarray) -> list[float]:
    """The five points the index records (x, y of :data:`LANDMARK_NAMES`, source px): MTCNN's five, from the mesh."""
    pts = [left, right, mesh[NOSE_TIP, :2], mesh[MOUTH_LEFT, :2], mesh[MOUTH_RIGHT, :2]]
    return [float(v) for p in pts for v in p]


def _index_frame(rows: list[dict], all_frames: bool) -> pd.DataFrame:
    columns = ["clip_id", "dataset", "subject", "label", "label_id", "status", "score", "n_faces", "landmarks"]
    columns += ["affine", "box_x0", "box_y0", "box_x1", "box_y1"]
    columns += ["onset", "offset", "apex", "apex_annotated", "apex_source"]
    columns += ["spot_peak", "spot_floor", "spot_detectable"]
    dtypes = {c: "string" for c in ("clip_id", "dataset", "subject", "label", "status", "apex_source")}
    dtypes.update({"label_id": "int64", "score": "float64", "n_faces": "int64"})
    dtypes.update({c: "float64" for c in ("box_x0", "box_y0", "box_x1", "box_y1", "spot_peak", "spot_floor")})
    dtypes.update({"onset": "int64", "offset": "int64", "apex": "int64", "apex_annotated": "Int64"})
    dtypes.update({"spot_detectable": "boolean"})
    if all_frames:
        columns += ["frames_start", "frames_count"]
        dtypes.update({"frames_start": "int64", "frames_count": "int64"})
    return pd.DataFrame(rows, columns=columns).astype(dtypes)


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


__all__ = ["LANDMARK_NAMES", "MAX_FACES", "FaceScorer", "run", "used_landmarks"]
