"""Frame files: discovery by parsed frame number (natural order, whatever the prefix or zero padding) and reading.

CASME II names frames ``img{N}.jpg`` (or ``reg_img{N}.jpg``) with N unpadded, SAMM ``<subj>_{NNNN[N]}.jpg``;
sorting names as strings puts img10 before img9, and building names from numbers breaks on padding. So
names are never built: the number is parsed from each file on disk.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"})
_TRAILING_NUMBER = re.compile(r"(\d+)$")


def frame_number(name: str) -> int | None:
    """The frame number of an image file name (the last run of digits of its stem), or None if not a frame."""
    stem, suffix = os.path.splitext(name)
    if suffix.lower() not in IMAGE_SUFFIXES:
        return None
    match = _TRAILING_NUMBER.search(stem)
    return int(match.group(1)) if match else None


def list_frames(clip_dir: Path) -> dict[int, str]:
    """Frame number -> file name for the images in ``clip_dir``, in ascending frame order.

    Two files with the same number (``img7.jpg`` and ``img07.jpg``) make the clip ambiguous: an error.
    """
    frames: dict[int, str] = {}
    with os.scandir(clip_dir) as entries:
        for entry in entries:
            if not entry.is_file() or entry.name.startswith("."):
                continue
            number = frame_number(entry.name)
            if number is None:
                continue
            if number in frames:
                first, second = sorted((frames[number], entry.name))
                raise ValueError(f"{clip_dir}: two files for frame {number}: {first} and {second}")
            frames[number] = entry.name
    return dict(sorted(frames.items()))


def read_frame(path: Path, clip_id: str) -> np.ndarray:
    """A frame as cv2 reads it (greyscale HxW or BGR[A]) in uint8; errors name the clip and the file."""
    if not path.is_file():
        raise FileNotFoundError(f"clip {clip_id}: frame file not found: {path}")
    frame = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if frame is None:
        raise ValueError(f"clip {clip_id}: cannot decode image {path}")
    if frame.dtype == np.uint16:  # 16-bit PNG/TIFF: keep the high byte
        frame = (frame >> 8).astype(np.uint8)
    if frame.dtype != np.uint8:
        raise ValueError(f"clip {clip_id}: unsupported pixel type {frame.dtype} in {path}")
    return frame
