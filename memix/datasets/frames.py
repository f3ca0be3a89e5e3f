"""Frame files: discovery by parsed frame number (natural order, whatever the prefix or zero padding) and reading.

CASME II names frames ``img{N}.jpg`` (or ``reg_img{N}.jpg``) with N unpadded, SAMM ``<subj>_{NNNN[N]}.jpg``;
sorting names as strings puts img10 before img9, and building names from numbers breaks on padding. So
names are never built: the number is parsed from each file on disk.

Frames are decoded strictly. OpenCV decodes a damaged JPEG with only libjpeg's unnamed warning on stderr
("Corrupt JPEG data: ...", "Premature end of JPEG file"), the damaged part filled with grey or garbage whose
flow then looks like a large motion. So every JPEG and PNG is also decoded by Pillow, which turns those same
libjpeg/libpng warnings into an exception (a file with extra data after its end marker is fine), and the
frame is refused naming the file; the pixels kept are OpenCV's, so a clean frame reads exactly as before. The
second decode costs 1.0 to 1.9 ms a 640x480 frame (measured on AMD EPYC); ingest and faces read only the onset
and apex frames of a clip. Damage after which libjpeg decodes without a warning passes: it is a valid stream of
a wrong picture (of 60 random 64-byte corruptions of one 320x240 photo's scan data, about 40 were such).

Before anything is decoded the image's header is read for its size: a frame larger than ``max_side`` pixels
a side (``dataset.max_frame_side``, 8192 by default) is refused, so a forged or huge file cannot take the
memory of the machine. Symbolic links to frames and to clip folders are followed.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"})
JPEG_SUFFIXES = frozenset({".jpg", ".jpeg"})
CHECKED_SUFFIXES = JPEG_SUFFIXES | {".png"}  # decoded a second time by Pillow, whose libjpeg/libpng warnings raise
MAX_SIDE = 8192  # dataset.max_frame_side's default
_TRAILING_NUMBER = re.compile(r"(\d+)$")


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


def read_frame(path: Path, clip_id: str, max_side: int = MAX_SIDE) -> np.ndarray:
    """A frame as cv2 reads it (greyscale HxW or BGR[A]) in uint8, decoded strictly (see the module's note).

    A missing file is a FileNotFoundError; a damaged one, or one larger than ``max_side`` px a side, a
    :class:`BadFrameError`; both name the clip and the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"clip {clip_id}: frame file not found: {path}")
    too_big = size_problem(path, max_side)
    if too_big:
        raise BadFrameError(f"clip {clip_id}: image {path} {too_big}", path)
    frame = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if frame is None:
        raise BadFrameError(f"clip {clip_id}: cannot decode image {path} (damaged, truncated or not an image)", path)
    if path.suffix.lower() in CHECKED_SUFFIXES:
        problem = stream_problem(path)
        if problem:
            kind = "JPEG" if path.suffix.lower() in JPEG_SUFFIXES else "PNG"
            raise BadFrameError(f"clip {clip_id}: damaged {kind} {path}: {problem}", path)
    if frame.dtype == np.uint16:  # 16-bit PNG/TIFF: keep the high byte
        frame = (frame >> 8).astype(np.uint8)
    if frame.dtype != np.uint8:
        raise ValueError(f"clip {clip_id}: unsupported pixel type {frame.dtype} in {path}")
    return frame


def size_problem(path: Path, max_side: int = MAX_SIDE) -> str | None:
    """Why ``path`` may not be decoded because of its size (read from its header only), or None."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the bound below decides
            with Image.open(path) as img:  # lazy: reads the header, decodes nothing
                width, height = img.size
    except Image.DecompressionBombError as err:  # past twice Pillow's pixel limit: its header says so first
        return (
            f"is too large to decode safely ({err}); frames may be at most {max_side} px a side "
            "(dataset.max_frame_side); not decoded"
        )
    except Exception:  # not an image Pillow knows: OpenCV decides below
        return None
    if max(width, height) > max_side:
        return f"is {width} x {height} px, larger than {max_side} px a side (dataset.max_frame_side); not decoded"
    return None


def stream_problem(path: Path) -> str | None:
    """Why the JPEG or PNG file ``path`` is damaged (libjpeg's or libpng's complaint), or None when it is whole."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
    except Exception as err:  # Pillow raises OSError, SyntaxError or ValueError for broken streams
        return f"corrupt or truncated data ({err}); the file has {path.stat().st_size} bytes"
    return None
