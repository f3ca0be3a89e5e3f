"""One clip nobody annotated, as a folder of frames or a video: its onset, spotted apex (and offset) faces.

Rules, so that a user knows which frames were compared:

* the onset is the clip's first frame (a clip is expected to start on a neutral face);
* the face is found on the onset and every frame is cropped with the onset's transform, as the faces stage
  crops a clip's frames (head pose jitter between detections never shows up as motion);
* the apex is the frame :func:`memix.preprocess.spotting.spot_apex` picks on those aligned faces; a clip whose
  motion is not clearly above its noise floor (``Spot.detectable`` False) is refused with :class:`NoMotionError`;
* the offset, for a network that reads the apex -> offset flow too (CausalNet), is the clip's last frame.

A folder's frames are its images in the order of the frame number in their names (``img2`` before ``img10``,
:func:`memix.datasets.frames.list_frames`); a video's are the frames OpenCV decodes, as they are (no resampling).
Only the faces are kept in memory; the spotted apex frame is read again to check that it shows a face, as the
faces stage checks a sheet's apex.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import pandas as pd

from memix.datasets.frames import IMAGE_SUFFIXES, frame_number, list_frames, read_frame
from memix.preprocess import align, clip_align
from memix.preprocess.landmarks import LandmarkDetector
from memix.preprocess.spotting import Spot, spot_apex

ONSET_RULE = "the first frame"
OFFSET_RULE = "the last frame"


class NoMotionError(ValueError):
    """The clip shows no motion clearly above its noise floor: there is no apex to classify."""


class ClipFrames(Protocol):
    """A clip's frames in order: each read as OpenCV reads an image (grey, BGR or BGRA uint8)."""

    name: str  # the clip's name: its folder's or video file's name
    source: Path

    def __iter__(self) -> Iterator[np.ndarray]: ...

    def read(self, index: int) -> np.ndarray: ...

    def label(self, index: int) -> str:
        """What names a frame to a user: its file name, or ``frame <index>`` of a video."""
        ...


class FolderFrames:
    """The images of a folder, ordered by the frame number in their names."""

    def __init__(self, folder: str | Path) -> None:
        self.source = Path(folder)
        if not self.source.is_dir():
            raise FileNotFoundError(f"frames folder not found: {self.source}")
        self.name = self.source.resolve().name
        self.labels = list(list_frames(self.source).values())
        unnumbered = sorted(p.name for p in self.source.iterdir() if p.is_file() and not p.name.startswith(".")
                            and p.suffix.lower() in IMAGE_SUFFIXES and frame_number(p.name) is None)
        if unnumbered:
            raise ValueError(f"{self.source}: image(s) without a frame number in their name: {', '.join(unnumbered)}; "
                             "the frames are ordered by that number (img1.jpg, img2.jpg, ...)")
        check_length(len(self.labels), self.source, "frame images")

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self.read(i) for i in range(len(self.labels)))

    def read(self, index: int) -> np.ndarray:
        return read_frame(self.source / self.labels[index], self.name)

    def label(self, index: int) -> str:
        return self.labels[index]


class VideoFrames:
    """The frames of a video file as OpenCV decodes them (opened once here, so a file it cannot read fails early)."""

    def __init__(self, path: str | Path) -> None:
        self.source = Path(path)
        if not self.source.is_file():
            raise FileNotFoundError(f"video not found: {self.source}")
        self.name = self.source.stem
        with contextlib.closing(self._decoded()) as frames:
            next(frames, None)

    def __iter__(self) -> Iterator[np.ndarray]:
        return self._decoded()

    def read(self, index: int) -> np.ndarray:
        # decoded again from the start: seeking is not frame-exact in every codec
        with contextlib.closing(self._decoded()) as frames:
            for i, frame in enumerate(frames):
                if i == index:
                    return frame
        raise ValueError(f"{self.source}: frame {index} could not be decoded again (the video changed?)")

    def _decoded(self) -> Iterator[np.ndarray]:
        capture = cv2.VideoCapture(str(self.source))
        try:
            if not capture.isOpened():
                raise ValueError(f"{self.source}: OpenCV cannot open this video (not a video file, damaged, or in a "
                                 "format its FFmpeg does not read); convert it, or pass its frames with --frames")
            while True:
                ok, frame = capture.read()
                if not ok or frame is None:
                    return
                yield frame
        finally:
            capture.release()

    def label(self, index: int) -> str:
        return f"frame {index}"


MIN_FRAMES = 3
"""Frames a clip needs for its apex to be spotted: the onset, and at least two more, so that the motion peak has a
noise floor (frame-to-frame motion) to clear; with two frames the one step is both. A two-frame clip is an onset
and apex pair: ``--onset``/``--apex``."""


def check_length(count: int, source: Path, what: str) -> None:
    if count < MIN_FRAMES:
        raise ValueError(f"{source}: {count} {what}; spotting the apex needs at least {MIN_FRAMES} (its onset is "
                         f"{ONSET_RULE}, and a noise floor comes from the steps between the others); for an onset and "
                         "apex pair use --onset and --apex")


@dataclass(frozen=True)
class SpottedClip:
    """A clip with its apex spotted: the onset + apex faces as :func:`memix.preprocess.clip_align.align_clip` gives them
    for those two frames, the offset face, and where each came from."""

    name: str
    source: Path
    labels: Sequence[str]
    spot: Spot
    aligned: clip_align.AlignedClip
    offset_face: np.ndarray  # the last frame cropped like the onset
    onset: int = 0  # indices into the frames
    offset: int = -1

    def frames(self, offset: bool = False) -> str:
        """The files or frames compared, for an error message."""
        used = [self.onset, self.spot.apex, *((self.offset,) if offset else ())]
        return ", ".join(f"{self.source}: {self.labels[i]}" for i in used)


def spot_clip(detector: LandmarkDetector, clip: ClipFrames, size: int, margin: float) -> SpottedClip:
    """Align every frame with the onset's transform, spot the apex on the faces, and check the apex shows a face
    (only when motion was found: a refused clip needs no apex)."""
    first = clip.label(0)
    onset: clip_align.AlignedClip | None = None
    crops: list[np.ndarray] = []
    for i, frame in enumerate(clip):
        if onset is None:  # the largest face, as the faces stage takes
            onset = clip_align.align_onset_frame(detector, frame, size, margin)
            if onset is None:
                raise ValueError(f"clip {clip.name}: no face found in its onset frame ({ONSET_RULE}) "
                                 f"{clip.source}: {first}")
        elif frame.shape[:2] != onset.rgb.shape[:2]:
            raise ValueError(f"clip {clip.name}: frame {clip.source}: {clip.label(i)} is {frame.shape[1]}x"
                             f"{frame.shape[0]} px but the onset frame {first} is {onset.rgb.shape[1]}x"
                             f"{onset.rgb.shape[0]}")
        crops.append(clip_align.crop(frame, onset.affine, size))
    check_length(len(crops), clip.source, "frames")
    assert onset is not None  # check_length refused a clip without frames
    spot = spot_apex(np.stack(crops), margin=margin)
    apex_faces = len(detector.detect(align.bgr_to_rgb(clip.read(spot.apex)))) if spot.detectable else -1
    if apex_faces == 0:
        raise ValueError(f"clip {clip.name}: no face found in its spotted apex frame {clip.source}: "
                         f"{clip.label(spot.apex)}")
    aligned = dataclasses.replace(onset, apex=crops[spot.apex], apex_faces=apex_faces)
    labels = [clip.label(i) for i in range(len(crops))]
    return SpottedClip(clip.name, clip.source, labels, spot, aligned, crops[-1], offset=len(crops) - 1)


def describe(clip: SpottedClip, offset: bool) -> list[str]:
    """Lines saying which frames were used and why, for the console."""
    spot, labels = clip.spot, clip.labels
    lines = [f"clip: {clip.name} ({len(labels)} frames, {clip.source})",
             f"onset: {labels[clip.onset]} (index {clip.onset}: {ONSET_RULE})"]
    if spot.detectable:
        lines.append(f"apex: {labels[spot.apex]} (index {spot.apex}: spotted, motion peak {spot.peak:.4g} vs noise "
                     f"floor {spot.floor:.4g})")
    else:
        lines.append(f"apex: none (motion peak {spot.peak:.4g} at {labels[spot.apex]} is not clearly above the noise "
                     f"floor {spot.floor:.4g})")
    if offset:
        lines.append(f"offset: {labels[clip.offset]} (index {clip.offset}: {OFFSET_RULE})")
    return lines


def predictions_frame(clip: SpottedClip, probs: np.ndarray, class_names: Sequence[str], offset: bool) -> pd.DataFrame:
    """The one-row table of the other modes (clip, predicted, prob_<class>...) with the frames used and the motion
    peak and floor after the clip's name."""
    used = {"onset": clip.onset, "apex": clip.spot.apex, **({"offset": clip.offset} if offset else {})}
    table = pd.DataFrame({"clip": [clip.name]})
    for role, index in used.items():
        table[role] = [clip.labels[index]]
        table[f"{role}_index"] = [index]
    table["motion_peak"] = [clip.spot.peak]
    table["motion_floor"] = [clip.spot.floor]
    table["predicted"] = [class_names[int(probs[0].argmax())]]
    for k, name in enumerate(class_names):
        table[f"prob_{name}"] = [float(probs[0, k])]
    return table


def refuse_if_still(clip: SpottedClip) -> None:
    """:class:`NoMotionError` for a clip without detectable motion: classifying it would label noise."""
    spot = clip.spot
    if not spot.detectable:
        raise NoMotionError(
            f"clip {clip.name} ({clip.source}): no detectable motion: the motion peak {spot.peak:.4g} (at "
            f"{clip.labels[spot.apex]}) is not clearly above the noise floor {spot.floor:.4g}, so there is no apex "
            "to classify; nothing was predicted. Does the clip hold a micro-expression after its first frame?"
        )


__all__ = ["OFFSET_RULE", "ONSET_RULE", "ClipFrames", "FolderFrames", "NoMotionError", "SpottedClip", "VideoFrames",
           "describe", "predictions_frame", "refuse_if_still", "spot_clip"]
