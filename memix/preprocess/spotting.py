"""Apex spotting: the frame of a clip where the face has moved most since the onset (no I/O).

The measure, per frame t: dense Farneback flow from frame 0 to frame t at :data:`WORK_SIDE` px, its magnitude
averaged in each block of a :data:`GRID` x :data:`GRID` grid over the aligned face, and the mean of the
:data:`TOP_SHARE` largest block averages. Ranking blocks and keeping the largest, rather than averaging the whole
face, is the feature-difference spotting of Moilanen, Zhao and Pietikainen ("Spotting rapid facial movements from
videos using appearance-based feature difference analysis", ICPR 2014, doi:10.1109/ICPR.2014.303, which ranks
the feature differences of a block grid over the face and averages the largest): a micro-expression moves a few
regions (a brow, a mouth corner), and the face-wide mean drowns it in sensor noise. Optical flow in the blocks
in place of their LBP histograms is the block feature of Wang et al.'s main directional maximal difference
(MDMD; Neurocomputing 230, 2017, pp. 382-389); MDMD's main-direction filter measured worse on the synthetic
clips when the measure was chosen, and is left out. Measured there too: a tenth of the blocks beat a third, a
6 x 6 grid beat 8 x 8 and 12 x 12, and Farneback at 64 px beat DIS and a blurred frame difference.

Left out of the blocks: a box around each eye of the alignment template (a blink is a large, fast motion
that is no micro-expression; the synthetic clips have blinks for that reason) and a thin border (edge pixels
replicated by the crop warp, background). Each frame's brightness is scaled to the onset's over the same
pixels first, so lighting flicker does not read as motion.

Rigid head motion is taken out first: the median flow vector over those pixels is subtracted (a slow head drift
otherwise grows frame by frame into a peak as large as a weak expression's).

The noise floor is the same measure between consecutive frames, the mean of the smaller half of them: between two
frames a step apart a still face moves by sensor noise alone, and the smaller half leaves out the steps an
expression's own rise and fall span (in a short clip they are most of the motion). A clip whose peak does not
clear :data:`DETECT_RATIO` times the floor (and :data:`MIN_PEAK`, for frames identical but for round-off) holds
no micro-expression worth the name (:attr:`Spot.detectable`).
The ratio was set on synthetic clips (``benchmarks/spotting.py --still N`` prints the shares): called detectable
were 1 of 40 and 0 of 100 still clips (no expression; blinks, head drift, flicker and noise kept), 2 of 100 with
blinks in half of them, all of 80 and 119 of 120 clips with a 6-10 px expression, and 78 % of clips with a
1.5-4 px one and blinks in half of them.

Deterministic: OpenCV runs on one thread here (as in the flow stage), all sums in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from memix.preprocess import align
from memix.preprocess.optical_flow import one_opencv_thread

WORK_SIDE = 64  # faces are shrunk to this side: flow at sub-pixel noise averages out, and it is fast
GRID = 6  # blocks a side over the crop
TOP_SHARE = 0.1  # share of the usable blocks whose mean is a frame's motion (at least one block)
EYE_BOX = (0.4, 0.4, 0.25)  # box left out around each eye centre: half-width, above, below, in eye distances
BORDER = 0.05  # share of the side left out along each edge of the crop
DETECT_RATIO = 3.5  # detectable: peak above this many noise floors
MIN_PEAK = 0.01  # ... and above this many px at WORK_SIDE (identical frames: flow round-off, no floor to clear)
DEFAULT_MARGIN = 0.25  # faces.margin the crops were made with (the eye boxes follow the template)
# Farneback (pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags): a small window at 64 px keeps
# a blink's flow from spreading onto the brows.
FARNEBACK = (0.5, 3, 7, 3, 5, 1.1, 0)


@dataclass(frozen=True)
class Spot:
    """The spotted apex of one clip and the motion curve it was read from."""

    apex: int  # index into the frames given (0 = the first frame, taken as the onset)
    motion: np.ndarray  # (T,) float64, each frame's motion relative to frame 0 (motion[0] == 0)
    peak: float  # motion[apex]
    floor: float  # the motion level a still clip shows (noise floor estimate), same units
    detectable: bool  # peak > DETECT_RATIO * floor and > MIN_PEAK: False = no micro-expression found


def spot_apex(faces: np.ndarray, *, margin: float = DEFAULT_MARGIN) -> Spot:
    """The frame of greatest motion relative to frame 0 (never frame 0 itself when there are two frames or more),
    with the motion curve, the clip's noise floor and whether the peak clears it."""
    work = _prepare(faces, margin)
    with one_opencv_thread():
        motion = np.array([0.0] + [_motion(work.frames[0], f, work) for f in work.frames[1:]], dtype=np.float64)
        steps = [_motion(work.frames[t - 1], work.frames[t], work) for t in range(1, len(work.frames))]
    apex = 1 + int(np.argmax(motion[1:])) if len(motion) > 1 else 0
    floor = float(np.mean(np.sort(steps)[: max(1, len(steps) // 2)])) if steps else 0.0
    peak = float(motion[apex])
    detectable = bool(peak > DETECT_RATIO * floor and peak > MIN_PEAK)
    return Spot(apex=apex, motion=motion, peak=peak, floor=floor, detectable=detectable)


def motion_curve(faces: np.ndarray, *, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """(T, S, S) uint8 aligned greyscale faces -> (T,) float64: each frame's motion relative to frame 0 (px at
    :data:`WORK_SIDE`)."""
    work = _prepare(faces, margin)
    with one_opencv_thread():
        return np.array([0.0] + [_motion(work.frames[0], f, work) for f in work.frames[1:]], dtype=np.float64)


def region_mask(side: int, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """(side, side) bool: the pixels the measure reads (the crop less the eye boxes and the border)."""
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float64) + 0.5
    left, right = align.template(side, margin)
    iod = float(right[0] - left[0])
    half_width, above, below = EYE_BOX
    mask = np.ones((side, side), dtype=bool)
    for eye in (left, right):
        dy = ys - eye[1]
        mask &= ~((np.abs(xs - eye[0]) < half_width * iod) & (dy > -above * iod) & (dy < below * iod))
    edge = max(1, int(round(side * BORDER)))
    mask[:edge] = mask[-edge:] = False
    mask[:, :edge] = mask[:, -edge:] = False
    return mask


@dataclass(frozen=True)
class _Work:
    frames: np.ndarray  # (T, W, W) float32, brightness matched to frame 0
    blocks: tuple[tuple[slice, slice, np.ndarray], ...]  # rows, cols, mask inside the block
    top: int  # blocks averaged per frame
    mask: np.ndarray


def _prepare(faces: np.ndarray, margin: float) -> _Work:
    if not isinstance(faces, np.ndarray) or faces.dtype != np.uint8 or faces.ndim != 3:
        got = f"{faces.dtype} {faces.shape}" if isinstance(faces, np.ndarray) else type(faces).__name__
        raise ValueError(f"faces must be a (T, S, S) uint8 array of aligned greyscale crops, got {got}")
    if len(faces) < 1 or faces.shape[1] != faces.shape[2] or faces.shape[1] < GRID:
        raise ValueError(f"faces must hold at least one square crop of {GRID} px or more, got shape {faces.shape}")
    side = min(WORK_SIDE, faces.shape[1])
    with one_opencv_thread():
        small = [f if f.shape[0] == side else cv2.resize(f, (side, side), interpolation=cv2.INTER_AREA) for f in faces]
    mask = region_mask(side, margin)
    frames = np.stack(small).astype(np.float32)
    means = frames[:, mask].astype(np.float64).mean(axis=1)
    gains = np.where(means > 0, means[0] / np.where(means > 0, means, 1.0), 1.0)
    frames *= gains.astype(np.float32)[:, None, None]
    blocks = []
    edges = np.linspace(0, side, GRID + 1).round().astype(int)
    for r0, r1 in zip(edges[:-1], edges[1:], strict=True):
        for c0, c1 in zip(edges[:-1], edges[1:], strict=True):
            inside = mask[r0:r1, c0:c1]
            if inside.mean() >= 0.5:  # a block mostly masked would average a few stray pixels
                blocks.append((slice(r0, r1), slice(c0, c1), inside))
    return _Work(frames, tuple(blocks), max(1, int(round(TOP_SHARE * len(blocks)))), mask)


def _motion(a: np.ndarray, b: np.ndarray, work: _Work) -> float:
    """Mean of the ``work.top`` largest block averages of the a -> b flow magnitude."""
    flow = cv2.calcOpticalFlowFarneback(a, b, None, *FARNEBACK).astype(np.float64)
    flow -= np.median(flow[work.mask], axis=0)
    mag = np.hypot(flow[..., 0], flow[..., 1])
    means = np.array([mag[rows, cols][inside].mean() for rows, cols, inside in work.blocks])
    return float(np.sort(means)[::-1][: work.top].mean())


__all__ = ["DETECT_RATIO", "MIN_PEAK", "Spot", "motion_curve", "region_mask", "spot_apex"]
