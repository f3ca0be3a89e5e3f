"""One clip's faces on the onset's transform: find the face on the onset frame, crop it and any other frame of the
clip (the apex, the offset, every frame for spotting) with the same 2x3 affine.

The faces stage (:mod:`memix.preprocess.faces`), the key-frame noise sets and ``memix predict`` all crop through
here, so a new clip is cropped exactly as the training clips were. MediaPipe's FaceLandmarker gives the 478-point
mesh on the onset frame; the eye centres fix a similarity transform (:mod:`memix.preprocess.align`) onto a ``size``
px square, greyscale uint8 crop. The same transform for every frame keeps head pose jitter between detections out
of the flow.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from memix.datasets.frames import list_frames, read_frame
from memix.preprocess import align, spotting
from memix.preprocess.landmarks import LandmarkDetector, eye_centres


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
    return align_onset_frame(detector, read_frame(onset_file, clip_id), size, margin)


def align_onset_frame(detector: LandmarkDetector, onset: np.ndarray, size: int, margin: float) -> AlignedClip | None:
    """:func:`align_onset` on a frame already read (grey, BGR or BGRA; a video's frame has no file)."""
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


def offset_frame(clip_dir: Path, apex: int, offset: int) -> str:
    """The file of the clip's offset frame: the last frame on disk numbered apex..offset (a sheet's offset past the
    frames on disk, or a missing offset file, falls back to the last one there is)."""
    frames = {n: name for n, name in list_frames(clip_dir).items() if apex <= n <= offset}
    if not frames:
        raise ValueError(f"{clip_dir}: no frame numbered between the apex {apex} and the offset {offset}")
    return frames[max(frames)]


def crop_like_onset(path: Path, clip_id: str, aligned: AlignedClip, size: int) -> np.ndarray:
    """Another frame of the clip (the offset) cropped with the onset's transform, as the apex is."""
    frame = read_frame(path, clip_id)
    if frame.shape[:2] != aligned.rgb.shape[:2]:
        raise ValueError(f"clip {clip_id}: frame {path} differs in size from the onset frame")
    return crop(frame, aligned.affine, size)


def clip_files(clip_dir: Path, onset: int, offset: int) -> dict[int, Path]:
    """Frame number -> file of a clip's frames numbered onset..offset on disk, in frame order."""
    return {n: clip_dir / name for n, name in list_frames(clip_dir).items() if onset <= n <= offset}


def crop_frames(aligned: AlignedClip, files: dict[int, Path], clip_id: str, size: int) -> list[tuple[int, np.ndarray]]:
    """(frame number, crop) of each of ``files`` (frame number -> file) in frame order, cropped with the onset's
    transform; a frame of another size than the onset's is an error naming it."""
    crops = []
    for number, path in sorted(files.items()):
        frame = read_frame(path, clip_id)
        if frame.shape[:2] != aligned.rgb.shape[:2]:
            raise ValueError(f"clip {clip_id}: frame {path} differs in size from the onset frame")
        crops.append((number, crop(frame, aligned.affine, size)))
    return crops


def spot_aligned(
    detector: LandmarkDetector, aligned: AlignedClip, files: dict[int, Path], clip_id: str, size: int, margin: float
) -> tuple[AlignedClip, int, spotting.Spot, list[tuple[int, np.ndarray]]]:
    """The apex of an onset-aligned clip spotted among ``files`` (frame number -> file, onset first): every frame
    cropped with the onset's transform, the frame of greatest motion from the onset taken and searched for a face
    (:func:`with_apex`). Returns the clip with that apex, its frame number, the spotting and the crops. The faces
    stage and ``memix predict --dataset`` both run this for a clip whose apex is spotted."""
    crops = crop_frames(aligned, files, clip_id, size)
    spot = spotting.spot_apex(np.stack([c for _, c in crops]), margin=margin)
    number = crops[spot.apex][0]
    return with_apex(detector, aligned, files[number], clip_id, size), number, spot, crops
