"""One clip's crops on the onset's transform: every frame cropped alike, and a frame of another size refused."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from memix.preprocess import clip_align


def _aligned(side: int) -> clip_align.AlignedClip:
    """An onset aligned by the identity transform (no detector needed for what is tested here)."""
    onset = np.zeros((16, 16), np.uint8)
    return clip_align.AlignedClip(mesh=np.zeros((478, 3)), left=np.zeros(2), right=np.ones(2),
                                  affine=np.eye(2, 3), n_faces=1, rgb=np.zeros((side, side, 3), np.uint8),
                                  onset=onset, apex=onset)


def _frame(path: Path, side: int, value: int) -> Path:
    cv2.imwrite(str(path), np.full((side, side), value, np.uint8))
    return path


def test_frames_are_cropped_in_frame_order_with_the_onsets_transform(tmp_path: Path) -> None:
    files = {7: _frame(tmp_path / "img7.png", 32, 70), 3: _frame(tmp_path / "img3.png", 32, 30)}
    crops = clip_align.crop_frames(_aligned(32), files, "sub01/EP01", 16)
    assert [n for n, _ in crops] == [3, 7]
    assert [int(c[8, 8]) for _, c in crops] == [30, 70]  # the identity transform keeps each frame's grey


def test_a_frame_of_another_size_than_the_onset_is_refused_naming_it(tmp_path: Path) -> None:
    files = {1: _frame(tmp_path / "img1.png", 32, 0), 2: _frame(tmp_path / "img2.png", 40, 0)}
    with pytest.raises(ValueError, match=r"clip sub01/EP01: frame .*img2.png differs in size from the onset frame"):
        clip_align.crop_frames(_aligned(32), files, "sub01/EP01", 16)
