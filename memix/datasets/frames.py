"""Frame files: discovery by parsed frame number (natural order, whatever the prefix or zero padding) and reading.

CASME II names frames ``img{N}.jpg`` (or ``reg_img{N}.jpg``) with N unpadded, SAMM ``<subj>_{NNNN[N]}.jpg``;
sorting names as strings puts img10 before img9, and building names from numbers breaks on padding. So
names are never built: the number is parsed from each file on disk.

Frames are decoded strictly, every libjpeg or libpng warning an error naming the file. OpenCV decodes a damaged JPEG
with only libjpeg's unnamed warning on stderr ("Corrupt JPEG data: ...", "Premature end of JPEG file"), the damaged
part grey or garbled, and its flow then looks like a large motion; Pillow, the earlier second decoder, lets most of
these warnings pass too (extraneous bytes before a marker, a bad Huffman code, a marker inside the scan). So a JPEG
(known by its content, whatever its suffix) is decoded by libjpeg-turbo in simplejpeg's strict mode, which raises on
every warning: one decode, and the same pixels as ``cv2.imread(path, IMREAD_UNCHANGED)`` (the same libjpeg-turbo
3.1.2, islow IDCT, fancy upsampling; checked on every frame of the synthetic sets and on grey, 4:2:0 to 4:4:4,
progressive, restart-interval and CMYK files). :func:`read_frame` of a 640x480 colour JPEG takes 1.3 ms of CPU,
where OpenCV's decode and Pillow's check took 5.0 ms (AMD EPYC; PyTurboJPEG's stop-on-warning decode is as fast but
needs a system libturbojpeg, which a pip install cannot bring). A PNG is checked as libpng reads it before OpenCV
decodes it: every chunk's CRC, the zlib stream, a valid filter on each row and exactly the image data the header
declares (libpng only warns about a bad ancillary chunk's CRC or too much data; pyspng 0.1.4, libspng's binding,
decodes 7 of the tests' 10 kinds of damaged PNG without complaint, so the check is written here, with the standard
library's zlib). Bytes after the end marker (JPEG's EOI, PNG's IEND) are fine. Damage after which libjpeg decodes
without a warning passes: it is a valid stream of a wrong picture. Of 60 runs of 64 random bytes written into one
320x240 photo's scan data, 3 are such (Pillow let 49 through); of 60 runs of 64 inverted bytes, 1 (Pillow 35). The
flow stage's warning about outliers is the next net.

Before anything is decoded the image's header is read for its size: a frame larger than ``max_side`` pixels
on its longer side (``dataset.max_frame_side``, 8192 by default) is refused, so a forged or huge file cannot
take the memory of the machine. Symbolic links to frames and to clip folders are followed.
"""

from __future__ import annotations

import itertools
import os
import re
import struct
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import simplejpeg

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"})
MAX_SIDE = 8192  # dataset.max_frame_side's default
JPEG_START = b"\xff\xd8"  # SOI marker
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TRAILING_NUMBER = re.compile(r"(\d+)$")
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}  # colour type -> bit depths
_PNG_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples a pixel
# Adam7's seven passes, each (first column, first row, column step, row step)
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_INFLATE_STEP = 1 << 16  # bytes of image data inflated at a time: memory stays bounded whatever the file says


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
    frame = _decode(path, clip_id)
    if frame.dtype == np.uint16:  # 16-bit PNG/TIFF: keep the high byte
        frame = (frame >> 8).astype(np.uint8)
    if frame.dtype != np.uint8:
        raise ValueError(f"clip {clip_id}: unsupported pixel type {frame.dtype} in {path}")
    return frame


def _decode(path: Path, clip_id: str) -> np.ndarray:
    """The file's pixels, by its content: a JPEG strictly, a PNG once checked, anything else as OpenCV decodes it
    (the bytes are read once, for the check and the decode)."""
    data = path.read_bytes()
    if data.startswith(JPEG_START):
        try:
            return decode_jpeg(data)
        except ValueError as err:
            raise BadFrameError(
                f"clip {clip_id}: damaged JPEG {path}: corrupt or truncated data (libjpeg: {err}); "
                f"the file has {len(data)} bytes",
                path,
            ) from None
    if data.startswith(PNG_SIGNATURE):
        problem = png_problem(data)
        if problem:
            raise BadFrameError(f"clip {clip_id}: damaged PNG {path}: {problem}; the file has {len(data)} bytes", path)
    frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None  # read once
    if frame is None:
        raise BadFrameError(f"clip {clip_id}: cannot decode image {path} (damaged, truncated or not an image)", path)
    return frame


def decode_jpeg(data: bytes) -> np.ndarray:
    """A JPEG's pixels exactly as ``cv2.imread(..., IMREAD_UNCHANGED)`` gives them (HxW grey or HxWx3 BGR).

    libjpeg-turbo in simplejpeg's strict mode turns every libjpeg warning into a ValueError carrying libjpeg's
    message, where OpenCV prints it and goes on with grey or garbled pixels.
    """
    colourspace = simplejpeg.decode_jpeg_header(data, strict=True)[2]
    if colourspace == "Gray":
        grey = simplejpeg.decode_jpeg(data, "GRAY", strict=True)
        return grey.reshape(grey.shape[:2])  # (H, W, 1) -> (H, W), as OpenCV returns a one-channel image
    return simplejpeg.decode_jpeg(data, "BGR", strict=True)  # YCbCr, RGB, CMYK or YCCK: converted as OpenCV does


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


class _PngDamage(ValueError):
    """What is wrong with a PNG stream, said as libpng would (internal to :func:`png_problem`)."""


def png_problem(data: bytes) -> str | None:
    """Why the PNG ``data`` is damaged, or None when it is whole.

    OpenCV's libpng only warns about a bad CRC in an ancillary chunk or too much image data and decodes anyway,
    so this reads the file as libpng does with every warning an error: each chunk's CRC up to IEND (bytes after
    it are fine), IHDR's fields, and the IDAT zlib stream, which must inflate to exactly the rows IHDR declares,
    each with a valid filter type, and end there.
    """
    try:
        header, idat = _png_chunks(memoryview(data))
        rows = _png_rows(header)
        _check_rows(_inflate(idat), rows)
    except _PngDamage as err:
        return str(err)
    return None


def _png_chunks(data: memoryview) -> tuple[bytes, list[memoryview]]:
    """IHDR's body and the IDAT bodies of a PNG whose chunks are whole and whose CRCs match, up to IEND."""
    pos, header, idat, previous = len(PNG_SIGNATURE), None, [], b""
    while True:
        if pos + 8 > len(data):
            raise _PngDamage(f"the file ends at byte {len(data)} without an IEND chunk (truncated)")
        length, kind = int.from_bytes(data[pos : pos + 4], "big"), bytes(data[pos + 4 : pos + 8])
        name, end = kind.decode("latin-1"), pos + 8 + length
        if end + 4 > len(data):
            raise _PngDamage(f"chunk {name!r} at byte {pos} runs past the end of the file (truncated)")
        if zlib.crc32(data[pos + 4 : end]) != int.from_bytes(data[end : end + 4], "big"):
            raise _PngDamage(f"CRC error in chunk {name!r} at byte {pos}")
        if header is None and kind != b"IHDR":
            raise _PngDamage(f"the first chunk is {name!r}, not 'IHDR'")
        if kind == b"IHDR":
            header = bytes(data[pos + 8 : end])
        elif kind == b"IDAT":
            if idat and previous != b"IDAT":
                raise _PngDamage(f"chunk 'IDAT' at byte {pos} is not next to the other IDAT chunks")
            idat.append(data[pos + 8 : end])
        elif kind == b"IEND":
            break
        pos, previous = end + 4, kind
    if header is None or not idat:
        raise _PngDamage("no IHDR or no IDAT chunk before IEND")
    return header, idat


def _png_rows(header: bytes) -> Iterator[int]:
    """The length of each filtered row (its filter byte included) that IHDR declares, pass by pass if interlaced."""
    if len(header) != 13:
        raise _PngDamage(f"the IHDR chunk has {len(header)} bytes, not 13")
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", header)
    if not (width and height) or depth not in _PNG_DEPTHS.get(colour, ()) or (compression, filtering) != (0, 0):
        raise _PngDamage(f"invalid IHDR: {width} x {height} px, bit depth {depth}, colour type {colour}")
    if interlace not in (0, 1):
        raise _PngDamage(f"invalid IHDR: interlace method {interlace}")
    bits = depth * _PNG_SAMPLES[colour]
    passes = []
    for x0, y0, dx, dy in _ADAM7 if interlace else ((0, 0, 1, 1),):
        columns, lines = -(-(width - x0) // dx), -(-(height - y0) // dy)  # ceilings; <= 0: an empty pass
        if columns > 0 and lines > 0:
            passes.append(itertools.repeat(1 + (columns * bits + 7) // 8, lines))
    return itertools.chain.from_iterable(passes)


def _inflate(idat: list[memoryview]) -> Iterator[bytes]:
    """The IDAT chunks' zlib stream inflated piece by piece; it must end exactly with the last chunk."""
    inflater = zlib.decompressobj()
    for i, chunk in enumerate(idat):
        pending: bytes | memoryview = chunk
        while pending and not inflater.eof:
            try:
                piece = inflater.decompress(pending, _INFLATE_STEP)
            except zlib.error as err:
                raise _PngDamage(f"corrupt image data (zlib: {err})") from None
            yield piece
            pending = inflater.unconsumed_tail
        if inflater.eof and (inflater.unused_data or any(len(rest) for rest in idat[i + 1 :])):
            raise _PngDamage("extra compressed data after the end of the image data")
    if not inflater.eof:
        raise _PngDamage("the image data's zlib stream is cut short (incomplete compressed datastream)")


def _check_rows(pieces: Iterator[bytes], rows: Iterator[int]) -> None:
    """Inflated image data against the rows IHDR declares: each starts with a filter type 0-4, none missing or extra."""
    left, row = 0, 0  # bytes still to come of the current row; rows begun
    for piece in pieces:
        at = 0
        while at < len(piece):
            if not left:
                size = next(rows, None)
                if size is None:
                    raise _PngDamage("too much image data (more than the rows IHDR declares)")
                if piece[at] > 4:
                    raise _PngDamage(f"bad adaptive filter value {piece[at]} at row {row} of the image data")
                left, row = size, row + 1
            step = min(left, len(piece) - at)
            at, left = at + step, left - step
    if left or next(rows, None) is not None:
        raise _PngDamage(f"not enough image data (it ends in row {row}, before the last row IHDR declares)")
