"""Frames are decoded strictly: every libjpeg or libpng warning is an error naming clip and file, a clean frame
decodes to exactly the pixels OpenCV gives, and a frame too large on its longer side is refused undecoded.

Each kind of damage is made deterministically from a real photo (scikit-image's astronaut, 160 x 120, encoded by
the pinned OpenCV), and each test asserts the message libjpeg or libpng gives for it, so a damage that stopped
producing its warning would fail here rather than pass unnoticed. ``JPEG_DAMAGE`` is shared with the ingest tests.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image

from memix.datasets.frames import BadFrameError, read_frame


def _frame(width: int = 160, height: int = 120) -> np.ndarray:
    return cv2.resize(cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR), (width, height))


def _write(path: Path, image: np.ndarray) -> bytes:
    assert cv2.imwrite(str(path), image)
    return path.read_bytes()


def _jpeg(*params: int) -> bytes:
    return cv2.imencode(".jpg", _frame(), list(params))[1].tobytes()


def _scan_start(data: bytes) -> int:
    sos = data.index(b"\xff\xda")
    return sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")


# ------------------------------------------------------------------------------------------- damaged JPEGs
def _xor_scan_before_end() -> bytes:
    """The issue's case: 64 bytes of scan data inverted 300 bytes before the end; libjpeg decodes on to the end
    and then finds bytes left over before the EOI marker. Pillow loads it without complaint."""
    data = bytearray(_jpeg())
    for i in range(len(data) - 300, len(data) - 236):
        data[i] ^= 0xFF
    return bytes(data)


def _without_end_marker() -> bytes:
    """Truncated just before EOI: every MCU is there, the file's end is not."""
    return _jpeg()[:-2]


def _ones_near_end() -> bytes:
    """16 bits of ones (0xFF stuffed as FF 00) in the scan 40 bytes before the end: no Huffman code is that long."""
    data = bytearray(_jpeg())
    data[-42:-26] = b"\xff\x00" * 8
    return bytes(data)


def _marker_inside_scan() -> bytes:
    """An RST0 marker in the middle of the scan of a file without restart markers: the scan ends too early."""
    data = bytearray(_jpeg())
    middle = (_scan_start(data) + len(data)) // 2
    data[middle : middle + 2] = b"\xff\xd0"
    return bytes(data)


def _wrong_restart_marker() -> bytes:
    """A file with a restart marker every 4 MCUs whose third one says RST5 instead of RST2."""
    data = _jpeg(cv2.IMWRITE_JPEG_RST_INTERVAL, 4)
    rst2 = data.index(b"\xff\xd2", _scan_start(data))
    return data[:rst2] + b"\xff\xd5" + data[rst2 + 2 :]


# kind -> (damaged file's bytes, libjpeg's message, whether OpenCV alone decodes it without an error)
JPEG_DAMAGE: dict[str, tuple[Callable[[], bytes], str, bool]] = {
    "extraneous bytes before a marker": (
        _xor_scan_before_end,
        r"Corrupt JPEG data: \d+ extraneous bytes before marker 0xd9",
        True,
    ),
    "premature end of the file": (_without_end_marker, "Premature end of JPEG file", True),
    "bad Huffman code": (_ones_near_end, "Corrupt JPEG data: bad Huffman code", True),
    "marker inside the scan": (_marker_inside_scan, "Corrupt JPEG data: premature end of data segment", True),
    "wrong restart marker": (_wrong_restart_marker, "Corrupt JPEG data: found marker 0xd5 instead of RST2", True),
}


@pytest.mark.parametrize("kind", list(JPEG_DAMAGE))
def test_each_kind_of_jpeg_damage_libjpeg_reports_is_an_error_naming_clip_and_file(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], kind: str
) -> None:
    make, said, opencv_decodes = JPEG_DAMAGE[kind]
    path = tmp_path / "img46.jpg"
    path.write_bytes(make())
    assert (cv2.imread(str(path), cv2.IMREAD_UNCHANGED) is not None) == opencv_decodes  # OpenCV alone goes on
    assert re.search(said, capfd.readouterr().err)  # ... with only libjpeg's unnamed warning on stderr
    with pytest.raises(BadFrameError) as info:
        read_frame(path, "sub01/EP02_01f")
    message = str(info.value)
    assert message.startswith(f"clip sub01/EP02_01f: damaged JPEG {path}: corrupt or truncated data (libjpeg: ")
    assert re.search(said, message) and "\n" not in message and info.value.path == path
    assert "Corrupt JPEG" not in capfd.readouterr().err  # the error says it; nothing else is printed


def test_truncated_jpeg_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "img46.jpg"
    data = _write(path, _frame())
    path.write_bytes(data[: len(data) * 2 // 3])
    # OpenCV alone accepts it: the missing part comes back grey, with only libjpeg's unnamed warning
    grey_filled = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert grey_filled is not None and grey_filled.shape == (120, 160, 3)
    with pytest.raises(BadFrameError, match="Premature end of JPEG file") as info:
        read_frame(path, "sub01/EP02_01f")
    assert "sub01/EP02_01f" in str(info.value) and str(path) in str(info.value) and info.value.path == path


def test_jpeg_with_corrupt_scan_data_and_its_end_marker_intact_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "img12.jpg"
    data = bytearray(_write(path, _frame()))
    middle = _scan_start(data) + (len(data) - 2 - _scan_start(data)) // 2
    for i in range(middle, middle + 64):
        data[i] ^= 0xFF
    assert data.endswith(b"\xff\xd9")
    path.write_bytes(bytes(data))
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED) is not None  # OpenCV decodes it, with libjpeg's warning only
    with pytest.raises(BadFrameError, match=f"clip sub01/EP02_01f: damaged JPEG {path}: corrupt"):
        read_frame(path, "sub01/EP02_01f")


@pytest.mark.parametrize("tail", [b"\x00" * 16, b"EXTRA-DATA-AFTER-THE-IMAGE" * 10], ids=["zero padding", "appended"])
def test_complete_jpeg_with_bytes_after_its_end_is_accepted(tmp_path: Path, tail: bytes) -> None:
    path = tmp_path / "img1.jpg"
    data = _write(path, _frame())
    clean = read_frame(path, "c")
    path.write_bytes(data + tail)
    np.testing.assert_array_equal(read_frame(path, "c"), clean)


def test_a_frame_is_known_by_its_content_not_its_suffix(tmp_path: Path) -> None:
    """A damaged JPEG named .bmp is still decoded strictly; a PNG named .jpg reads as OpenCV reads it."""
    disguised = tmp_path / "img2.bmp"
    disguised.write_bytes(_ones_near_end())
    with pytest.raises(BadFrameError, match="damaged JPEG .*bad Huffman code"):
        read_frame(disguised, "c")
    png = tmp_path / "img3.jpg"
    png.write_bytes(cv2.imencode(".png", _frame())[1].tobytes())
    np.testing.assert_array_equal(read_frame(png, "c"), cv2.imread(str(png), cv2.IMREAD_UNCHANGED))


# --------------------------------------------------------------------------------------------- clean frames
def _pillow(image: Image.Image, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", **options)
    return out.getvalue()


def _clean_files() -> dict[str, bytes]:
    """JPEGs of every layout a dataset may hold (the pixels are libjpeg-turbo's in both decoders), PNG and BMP."""
    image, odd = _frame(), _frame(161, 121)
    grey, rgb = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    sampling = cv2.IMWRITE_JPEG_SAMPLING_FACTOR
    files = {
        "420.jpg": cv2.imencode(".jpg", image)[1],
        "odd-size.jpg": cv2.imencode(".jpg", odd)[1],
        "444.jpg": cv2.imencode(".jpg", image, [sampling, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444])[1],
        "422.jpg": cv2.imencode(".jpg", odd, [sampling, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422])[1],
        "grey.jpg": cv2.imencode(".jpg", grey, [cv2.IMWRITE_JPEG_QUALITY, 95])[1],
        "progressive.jpg": cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1],
        "optimised.jpg": cv2.imencode(".jpg", odd, [cv2.IMWRITE_JPEG_OPTIMIZE, 1])[1],
        "restart.jpg": cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_RST_INTERVAL, 4])[1],
        "grey.png": cv2.imencode(".png", grey)[1],
        "bgra.png": cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_BGR2BGRA))[1],
        "16-bit.png": cv2.imencode(".png", image.astype(np.uint16) * 257)[1],
        "frame.bmp": cv2.imencode(".bmp", image)[1],
    }
    return {
        **{name: data.tobytes() for name, data in files.items()},
        "pillow-444.jpg": _pillow(rgb, quality=90, subsampling=0),
        "pillow-cmyk.jpg": _pillow(rgb.convert("CMYK"), quality=90),
        "pillow-palette.png": _png_bytes(rgb.convert("P")),
    }


def _png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_clean_frames_decode_exactly_as_opencv_reads_them(tmp_path: Path) -> None:
    """The pipeline's outputs are byte-reproducible: strict decoding may not change one pixel of a clean frame."""
    for name, data in _clean_files().items():
        path = tmp_path / name
        path.write_bytes(data)
        expected = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if expected.dtype == np.uint16:
            expected = (expected >> 8).astype(np.uint8)
        frame = read_frame(path, "c")
        assert frame.shape == expected.shape and frame.dtype == np.uint8, name
        assert frame.tobytes() == expected.tobytes(), name


# ------------------------------------------------------------------------------------------- damaged PNGs
def _chunk(kind: bytes, body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")


def _png() -> bytes:
    return cv2.imencode(".png", _frame())[1].tobytes()


def _idat_span(data: bytes) -> tuple[int, int]:
    """Where the IDAT chunks begin and where IEND begins."""
    return data.index(b"IDAT") - 4, data.index(b"IEND") - 4


def _pixels_raw(data: bytes) -> bytes:
    """The image data inflated: one filter byte and the row's bytes, row after row."""
    start, end = _idat_span(data)
    chunks, at = [], start
    while at < end:
        length = int.from_bytes(data[at : at + 4], "big")
        chunks.append(data[at + 8 : at + 8 + length])
        at += 12 + length
    return zlib.decompress(b"".join(chunks))


def _with_image_data(zlib_stream: bytes) -> bytes:
    """The photo's PNG with its IDAT chunks replaced by one holding ``zlib_stream`` (CRC correct)."""
    data = _png()
    start, end = _idat_span(data)
    return data[:start] + _chunk(b"IDAT", zlib_stream) + data[end:]


def _idat_crc_flipped() -> bytes:
    data = bytearray(_png())
    start = _idat_span(bytes(data))[0]
    data[start + 8 + int.from_bytes(data[start : start + 4], "big")] ^= 1  # first byte of the first IDAT's CRC
    return bytes(data)


def _text_chunk_with_bad_crc() -> bytes:
    data = _png()
    bad = bytearray(_chunk(b"tEXt", b"Comment\x00frame 46"))
    bad[-1] ^= 1
    return data[:33] + bytes(bad) + data[33:]  # after the signature and IHDR


# kind -> (damaged file's bytes, the problem said, whether OpenCV alone decodes it)
PNG_DAMAGE: dict[str, tuple[Callable[[], bytes], str, bool]] = {
    "IDAT CRC": (_idat_crc_flipped, r"CRC error in chunk 'IDAT' at byte 33", False),
    "ancillary chunk CRC": (_text_chunk_with_bad_crc, r"CRC error in chunk 'tEXt' at byte 33", True),
    "cut inside IDAT": (lambda: _png()[:5000], r"chunk 'IDAT' at byte \d+ runs past the end of the file", False),
    "no IEND": (lambda: _png()[:-12], r"ends at byte \d+ without an IEND chunk", False),
    "too much image data": (
        lambda: _with_image_data(zlib.compress(_pixels_raw(_png()) + b"\x00" * 481)),
        r"too much image data",
        True,
    ),
    "not enough image data": (
        lambda: _with_image_data(zlib.compress(_pixels_raw(_png())[:30000])),
        r"not enough image data",
        False,
    ),
    "bad row filter": (
        lambda: _with_image_data(zlib.compress(b"\x07" + _pixels_raw(_png())[1:])),
        r"bad adaptive filter value 7 at row 0",
        False,
    ),
    "zlib stream cut short": (
        lambda: _with_image_data(zlib.compress(_pixels_raw(_png()))[:-4]),
        r"zlib stream is cut short",
        False,
    ),
    "zlib checksum": (
        lambda: _with_image_data(zlib.compress(_pixels_raw(_png()))[:-1] + b"\x00"),
        r"corrupt image data \(zlib: .*incorrect data check\)",
        False,
    ),
    "extra compressed data": (
        lambda: _with_image_data(zlib.compress(_pixels_raw(_png())) + b"\x01\x02"),
        r"extra compressed data after the end of the image data",
        True,
    ),
}


@pytest.mark.parametrize("kind", list(PNG_DAMAGE))
def test_each_kind_of_png_damage_libpng_reports_is_an_error_naming_clip_and_file(tmp_path: Path, kind: str) -> None:
    """The strict PNG check must run: OpenCV's libpng only warns about some of these and decodes anyway."""
    make, said, opencv_decodes = PNG_DAMAGE[kind]
    path = tmp_path / "img7.png"
    path.write_bytes(make())
    assert (cv2.imread(str(path), cv2.IMREAD_UNCHANGED) is not None) == opencv_decodes
    with pytest.raises(BadFrameError) as info:
        read_frame(path, "sub02/EP01")
    message = str(info.value)
    assert message.startswith(f"clip sub02/EP01: damaged PNG {path}: ") and re.search(said, message), message
    assert "\n" not in message and info.value.path == path


def test_png_with_bytes_after_its_end_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "img1.png"
    path.write_bytes(_png() + b"EXTRA-DATA-AFTER-IEND")
    np.testing.assert_array_equal(read_frame(path, "c"), _frame())


def _interlaced_png(image: np.ndarray, short_by: int = 0) -> bytes:
    """A greyscale Adam7-interlaced PNG (OpenCV and Pillow write none): each pass's rows, unfiltered; ``short_by``
    bytes of image data left out at the end."""
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    rows = b"".join(b"\x00" + row.tobytes() for x0, y0, dx, dy in passes for row in image[y0::dy, x0::dx] if row.size)
    height, width = image.shape
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 1])
    body = zlib.compress(rows[: len(rows) - short_by])
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")


@pytest.mark.parametrize("shape", [(1, 1), (3, 2), (9, 17), (120, 160)])
def test_interlaced_png_is_read_pass_by_pass(tmp_path: Path, shape: tuple[int, int]) -> None:
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path / "img1.png"
    path.write_bytes(_interlaced_png(image))
    np.testing.assert_array_equal(read_frame(path, "c"), image)
    path.write_bytes(_interlaced_png(image, short_by=1))  # the last pass's last pixel missing
    with pytest.raises(BadFrameError, match="not enough image data"):
        read_frame(path, "c")


@pytest.mark.parametrize("suffix", [".png", ".bmp"])
def test_truncated_png_or_bmp_is_an_error_naming_the_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"img3{suffix}"
    data = _write(path, _frame())
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(BadFrameError, match=str(path)):
        read_frame(path, "sub02/EP01")


# ------------------------------------------------------------------------------------------- frame size bound
def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` RGB pixels, with (far too little) image data."""
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    data = _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + data + _chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("width", "height", "max_side", "said"),
    [
        (20000, 20000, 8192, "too large"),
        (300, 300, 256, "300 x 300 px"),
        (300, 100, 256, "300 x 100 px"),  # the longer side decides: a wide frame...
        (100, 300, 256, "100 x 300 px"),  # ... or a tall one
    ],
)
def test_an_image_larger_than_the_bound_is_refused_from_its_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, width: int, height: int, max_side: int, said: str
) -> None:
    path = tmp_path / "img1.png"
    path.write_bytes(_png_header(width, height))

    def no_decoding(*args: object) -> None:
        raise AssertionError("decoded")

    monkeypatch.setattr(cv2, "imread", no_decoding)
    monkeypatch.setattr(cv2, "imdecode", no_decoding)
    with pytest.raises(BadFrameError, match=f"image {path} .*{said}.*dataset.max_frame_side.*not decoded"):
        read_frame(path, "c", max_side=max_side)


def test_a_frame_whose_longer_side_is_the_bound_is_read(tmp_path: Path) -> None:
    path = tmp_path / "img1.jpg"
    _write(path, _frame(256, 100))
    assert read_frame(path, "c", max_side=256).shape == (100, 256, 3)
