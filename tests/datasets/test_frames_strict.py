"""Frames are decoded strictly: a truncated or undecodable JPEG, PNG or BMP is an error naming clip and file."""

from __future__ import annotations

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
