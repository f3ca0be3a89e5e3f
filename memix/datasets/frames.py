"""Frame files: discovery by parsed frame number (natural order, whatever the prefix or zero padding) and reading.

CASME II names frames ``img{N}.jpg`` (or ``reg_img{N}.jpg``) with N unpadded, SAMM ``<subj>_{NNNN[N]}.jpg``;
sorting names as strings puts img10 before img9, and building names from numbers breaks on padding. So
names are never built: the number is parsed from each file on disk.

Frames are decoded strictly. OpenCV already refuses a truncated PNG or BMP, but decodes a truncated JPEG with
only libjpeg's unnamed "Premature end of JPEG file" on stderr, the missing part filled with grey (whose
flow then looks like a large motion). So a JPEG must also end with its end-of-image marker (FF D9, trailing
zero padding allowed); one that does not is decoded again with Pillow, which reads past the marker (a file
with extra data appended is fine) and raises on a truncated stream. The marker check costs about 0.01 ms a
frame, against 1.7 ms for OpenCV's decode of a 640x480 JPEG and 1.0 to 1.9 ms for a second decode with Pillow
(measured on AMD EPYC), so a clean frame is decoded once and keeps OpenCV's exact pixels.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"})
JPEG_SUFFIXES = frozenset({".jpg", ".jpeg"})
_TRAILING_NUMBER = re.compile(r"(\d+)$")
_JPEG_EOI = b"\xff\xd9"
_TAIL = 4096


class BadFrameError(ValueError):
    """A frame file that exists but cannot be decoded completely; the message names the clip and the file."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = Path(path)


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
    """A frame as cv2 reads it (greyscale HxW or BGR[A]) in uint8, decoded strictly (see the module's note).

    A missing file is a FileNotFoundError, a damaged one a :class:`BadFrameError`; both name the clip and file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"clip {clip_id}: frame file not found: {path}")
    frame = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if frame is None:
        raise BadFrameError(f"clip {clip_id}: cannot decode image {path} (damaged, truncated or not an image)", path)
    if path.suffix.lower() in JPEG_SUFFIXES:
        problem = jpeg_problem(path)
        if problem:
            raise BadFrameError(f"clip {clip_id}: damaged JPEG {path}: {problem}", path)
    if frame.dtype == np.uint16:  # 16-bit PNG/TIFF: keep the high byte
        frame = (frame >> 8).astype(np.uint8)
    if frame.dtype != np.uint8:
        raise ValueError(f"clip {clip_id}: unsupported pixel type {frame.dtype} in {path}")
    return frame


def jpeg_problem(path: Path) -> str | None:
    """Why the JPEG file ``path`` is incomplete, or None when its whole stream is there."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - _TAIL))
            tail = fh.read()
    except OSError as err:
        return f"cannot read it ({err})"
    if tail.rstrip(b"\x00").endswith(_JPEG_EOI):
        return None
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
    except Exception as err:  # Pillow raises OSError, SyntaxError or ValueError for broken streams
        return f"truncated or corrupt data ({err}); the file has {size} bytes"
    return None
