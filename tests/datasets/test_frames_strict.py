"""Frames are decoded strictly: a truncated or undecodable JPEG, PNG or BMP is an error naming clip and file."""

from __future__ import annotations

import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from memix.datasets.frames import BadFrameError, read_frame


def _frame() -> np.ndarray:
    return cv2.resize(cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR), (160, 120))


def _write(path: Path, image: np.ndarray) -> bytes:
    assert cv2.imwrite(str(path), image)
    return path.read_bytes()


def test_truncated_jpeg_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "img46.jpg"
    data = _write(path, _frame())
    path.write_bytes(data[: len(data) * 2 // 3])
    # OpenCV alone accepts it: the missing part comes back grey, with only libjpeg's unnamed warning
    grey_filled = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert grey_filled is not None and grey_filled.shape == (120, 160, 3)
    with pytest.raises(BadFrameError) as info:
        read_frame(path, "sub01/EP02_01f")
    assert "sub01/EP02_01f" in str(info.value) and str(path) in str(info.value) and info.value.path == path


@pytest.mark.parametrize("tail", [b"\x00" * 16, b"EXTRA-DATA-AFTER-THE-IMAGE" * 10], ids=["zero padding", "appended"])
def test_complete_jpeg_with_bytes_after_its_end_is_accepted(tmp_path: Path, tail: bytes) -> None:
    path = tmp_path / "img1.jpg"
    data = _write(path, _frame())
    clean = read_frame(path, "c")
    path.write_bytes(data + tail)
    np.testing.assert_array_equal(read_frame(path, "c"), clean)


@pytest.mark.parametrize("suffix", [".png", ".bmp"])
def test_truncated_png_or_bmp_is_an_error_naming_the_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"img3{suffix}"
    data = _write(path, _frame())
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(BadFrameError, match=str(path)):
        read_frame(path, "sub02/EP01")


def test_clean_frames_decode_exactly_as_opencv_reads_them(tmp_path: Path) -> None:
    for name in ("a.jpg", "b.png", "c.bmp"):
        _write(tmp_path / name, _frame())
        np.testing.assert_array_equal(read_frame(tmp_path / name, "c"), cv2.imread(str(tmp_path / name), -1))


def _scan_start(data: bytes) -> int:
    sos = data.index(b"\xff\xda")
    return sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")


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


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` RGB pixels, with (far too little) image data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    data = chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + data + chunk(b"IEND", b"")


@pytest.mark.parametrize(("side", "max_side", "said"), [(20000, 8192, "too large"), (300, 256, "300 x 300 px")])
def test_an_image_larger_than_the_bound_is_refused_from_its_header(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, side: int, max_side: int, said: str
) -> None:
    path = tmp_path / "img1.png"
    path.write_bytes(_png_header(side, side))

    def no_decoding(*args: object) -> None:
        raise AssertionError("decoded")

    monkeypatch.setattr(cv2, "imread", no_decoding)
    with pytest.raises(BadFrameError, match=f"image {path} .*{said}.*dataset.max_frame_side.*not decoded"):
        read_frame(path, "c", max_side=max_side)
