"""Stage ``faces``: find the face on each clip's onset frame, align it, and crop onset and apex alike.

MediaPipe's FaceLandmarker gives the 478-point mesh on the onset frame; the eye centres fix a similarity
transform (``memix.preprocess.align``) onto a ``size`` px square, greyscale uint8 crop. The SAME 2x3 affine is applied
to the apex frame (and, with ``all_frames``, to every frame onset..offset), so head pose jitter between
detections never shows up as motion in the flow. The apex frame must show a face too (a blank or damaged apex
would give a flow of nothing under the clip's label); ``on_missing`` decides for either frame.

The apex is the clip index's, except for a clip whose ``apex_source`` is ``spotted`` (``dataset.apex: spotted``,
``on_bad_apex: spot``, or a dataset without apex annotation such as SMIC; see :mod:`memix.datasets.rows`): every
frame onset..offset is cropped with the onset's transform and the frame of greatest motion from the onset
(:func:`memix.preprocess.spotting.spot_apex`) becomes the apex, searched for a face like an annotated one.

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

import dataclasses
import logging
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import pandas as pd
from tqdm import tqdm

from memix.config import FacesParams
from memix.datasets.frames import BadFrameError, list_frames, read_frame
from memix.datasets.schema import validate_clip_index
from memix.io import atomic, shards
from memix.log import native_stderr
from memix.preprocess import align, spotting
from memix.preprocess.facemodel import check_bundle
from memix.preprocess.landmarks import LandmarkDetector, eye_centres

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


@dataclass(frozen=True)
class AlignedClip:
    """One clip aligned: the chosen face (largest), its eye centres, the onset -> crop affine and both crops."""

    mesh: np.ndarray  # (478, 3) landmarks of the chosen face, source pixels
    left: np.ndarray  # eye centres (x, y), source pixels
    right: np.ndarray
    affine: np.ndarray  # 2x3, source px -> crop px
    n_faces: int
    rgb: np.ndarray  # the onset frame as RGB (for the detection score)
    onset: np.ndarray  # (size, size) uint8 crops
    apex: np.ndarray
    apex_faces: int = -1  # faces found on the apex frame (checked, not used for the transform); -1 = not looked


def align_clip(
    detector: LandmarkDetector, onset_file: Path, apex_file: Path, clip_id: str, size: int, margin: float
) -> AlignedClip | None:
    """Find the face on the onset frame and crop onset and apex with its transform; None when no face is found.

    The apex frame is searched too (``apex_faces``): a blank or damaged apex would otherwise give a flow of
    nothing under the clip's label. Its face is not used: the onset's transform keeps head jitter out of the flow.
    The faces stage and ``memix predict`` both run this, so a new clip is cropped exactly as training clips were.
    """
    aligned = align_onset(detector, onset_file, clip_id, size, margin)
    return None if aligned is None else with_apex(detector, aligned, apex_file, clip_id, size)


def align_onset(
    detector: LandmarkDetector, onset_file: Path, clip_id: str, size: int, margin: float
) -> AlignedClip | None:
    """The onset half of :func:`align_clip`: face, transform and onset crop (``apex`` is the onset crop and
    ``apex_faces`` -1 until :func:`with_apex`); None when no face is found. Spotting crops every frame with this
    transform before the apex is known."""
    onset = read_frame(onset_file, clip_id)
    rgb = align.bgr_to_rgb(onset)
    faces = detector.detect(rgb)
    if not faces:
        return None
    mesh = faces[0]
    left, right = eye_centres(mesh)
    affine = align.similarity_from_eyes(left, right, size, margin)
    onset_crop = crop(onset, affine, size)
    return AlignedClip(
        mesh=mesh, left=left, right=right, affine=affine, n_faces=len(faces), rgb=rgb, onset=onset_crop,
        apex=onset_crop,
    )


def with_apex(
    detector: LandmarkDetector, aligned: AlignedClip, apex_file: Path, clip_id: str, size: int
) -> AlignedClip:
    """``aligned`` with its apex: the frame cropped with the onset's transform and searched for faces."""
    apex = read_frame(apex_file, clip_id)
    if apex.shape[:2] != aligned.rgb.shape[:2]:
        raise ValueError(
            f"clip {clip_id}: apex frame {apex_file} is {apex.shape[1]}x{apex.shape[0]} px but the "
            f"onset frame is {aligned.rgb.shape[1]}x{aligned.rgb.shape[0]}"
        )
    apex_faces = len(detector.detect(align.bgr_to_rgb(apex)))
    return dataclasses.replace(aligned, apex=crop(apex, aligned.affine, size), apex_faces=apex_faces)


def crop(frame: np.ndarray, affine: np.ndarray, size: int) -> np.ndarray:
    """A frame as read (grey, BGR or BGRA) -> the aligned greyscale uint8 crop."""
    return align.warp_to_crop(align.bgr_to_grey(frame), affine, size)


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
                chosen = _align_chosen(detector, clip, dataset_root, params)
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


def offset_frame(clip_dir: Path, apex: int, offset: int) -> str:
    """The file of the clip's offset frame: the last frame on disk numbered apex..offset (a sheet's offset past the
    frames on disk, or a missing offset file, falls back to the last one there is)."""
    frames = {n: name for n, name in list_frames(clip_dir).items() if apex <= n <= offset}
    if not frames:
        raise ValueError(f"{clip_dir}: no frame numbered between the apex {apex} and the offset {offset}")
    return frames[max(frames)]


def _offset_crop(clip, dataset_root: Path, aligned: AlignedClip, size: int, chosen: Chosen) -> tuple[np.ndarray, bool]:
    """The offset face, and whether the offset frame is the apex frame itself (no apex -> offset motion)."""
    clip_dir = dataset_root / str(clip.frame_dir)
    name = offset_frame(clip_dir, chosen.apex, int(clip.offset))
    at_apex = name == chosen.apex_file.name
    return crop_like_onset(clip_dir / name, str(clip.clip_id), aligned, size), at_apex


def crop_like_onset(path: Path, clip_id: str, aligned: AlignedClip, size: int) -> np.ndarray:
    """Another frame of the clip (the offset) cropped with the onset's transform, as the apex is."""
    frame = read_frame(path, clip_id)
    if frame.shape[:2] != aligned.rgb.shape[:2]:
        raise ValueError(f"clip {clip_id}: frame {path} differs in size from the onset frame")
    return crop(frame, aligned.affine, size)


@dataclass(frozen=True)
class Chosen:
    """One clip aligned with the apex it uses: the index's, or the one spotted on its aligned frames."""

    aligned: AlignedClip | None  # None: no face on the onset frame
    apex: int  # frame number of the apex used
    apex_file: Path
    crops: list[tuple[int, np.ndarray]]  # (frame number, crop) onset..offset with faces.all_frames, else []
    spot: spotting.Spot | None = None  # apex_source spotted: the spotting, its index counting from the onset


def _align_chosen(detector: LandmarkDetector, clip, dataset_root: Path, params: FacesParams) -> Chosen:
    """Align the clip; an ``apex_source: spotted`` clip crops every frame onset..offset with the onset's transform,
    takes the frame of greatest motion from the onset (:mod:`memix.preprocess.spotting`) and searches it for a face
    as an annotated apex is."""
    clip_id, size = str(clip.clip_id), params.size
    onset_file = dataset_root / str(clip.onset_path)
    apex_file = dataset_root / str(clip.apex_path)
    if str(clip.apex_source) != "spotted":
        aligned = align_clip(detector, onset_file, apex_file, clip_id, size, params.margin)
        crops = (
            _align_all_frames(clip, dataset_root, aligned.affine, size, aligned.rgb.shape[:2])
            if aligned is not None and params.all_frames
            else []
        )
        return Chosen(aligned, int(clip.apex), apex_file, crops)
    aligned = align_onset(detector, onset_file, clip_id, size, params.margin)
    if aligned is None:
        return Chosen(None, int(clip.apex), apex_file, [])
    files = clip_files(dataset_root / str(clip.frame_dir), int(clip.onset), int(clip.offset))
    aligned, number, spot, crops = spot_aligned(detector, aligned, files, clip_id, size, params.margin)
    return Chosen(aligned, number, files[number], crops if params.all_frames else [], spot)


def clip_files(clip_dir: Path, onset: int, offset: int) -> dict[int, Path]:
    """Frame number -> file of a clip's frames numbered onset..offset on disk, in frame order."""
    return {n: clip_dir / name for n, name in sorted(list_frames(clip_dir).items()) if onset <= n <= offset}


def spot_aligned(
    detector: LandmarkDetector, aligned: AlignedClip, files: dict[int, Path], clip_id: str, size: int, margin: float
) -> tuple[AlignedClip, int, spotting.Spot, list[tuple[int, np.ndarray]]]:
    """The apex of an onset-aligned clip spotted among ``files`` (frame number -> file, onset first): every frame
    cropped with the onset's transform, the frame of greatest motion from the onset taken and searched for a face
    (:func:`with_apex`). Returns the clip with that apex, its frame number, the spotting and the crops. The faces
    stage and ``memix predict --dataset`` both run this for a clip whose apex is spotted."""
    crops = []
    for number, path in sorted(files.items()):
        frame = read_frame(path, clip_id)
        if frame.shape[:2] != aligned.rgb.shape[:2]:
            raise ValueError(f"clip {clip_id}: frame {path} differs in size from the onset frame")
        crops.append((number, crop(frame, aligned.affine, size)))
    spot = spotting.spot_apex(np.stack([c for _, c in crops]), margin=margin)
    number = crops[spot.apex][0]
    return with_apex(detector, aligned, files[number], clip_id, size), number, spot, crops


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


def _align_all_frames(
    clip, dataset_root: Path, affine: np.ndarray, size: int, shape: tuple[int, int]
) -> list[tuple[int, np.ndarray]]:
    """Every frame onset..offset of the clip, warped with the onset's transform."""
    clip_dir = dataset_root / str(clip.frame_dir)
    out = []
    for number, name in list_frames(clip_dir).items():
        if not int(clip.onset) <= number <= int(clip.offset):
            continue
        frame = read_frame(clip_dir / name, str(clip.clip_id))
        if frame.shape[:2] != shape:
            raise ValueError(f"clip {clip.clip_id}: frame {clip_dir / name} differs in size from the onset frame")
        out.append((number, crop(frame, affine, size)))
    return out


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


__all__ = ["LANDMARK_NAMES", "AlignedClip", "Chosen", "FaceScorer", "align_clip", "align_onset", "apex_report",
           "check_apex_sources", "crop", "crop_like_onset", "offset_frame", "run", "spotting_error", "used_landmarks",
           "with_apex"]
