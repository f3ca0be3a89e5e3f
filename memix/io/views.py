"""What a network reads from a flow set, when it is not the flow itself: each view is computed from cached flow-set
arrays when the set is read, deterministic, and carries per-clip sums of its own channels so LOSO folds normalise
it from their training clips (as they do the flow).

- ``faces``: the aligned grey onset and apex faces (MMNet).
- ``regions``: HTNet's input, a 28 x 28 image of four 14 x 14 blocks of the onset -> apex flow (u, v[, strain])
  cut around the eyes and mouth corners: top row [left eye | left mouth corner], bottom row [right eye | right
  mouth corner] (left and right as seen in the image).
- ``sequence``: CausalNet's input, four such region images stacked on channels: the onset -> apex flow, the
  apex -> offset flow (``flow.pairs`` with ``apex_offset``), and the direction map of each.

The blocks: the flow (stored at ``flow.size``) is resized to 28 px as the networks' input would be (bilinear with
antialiasing, :class:`memix.models.NetModel`'s resize); each block's centre is the faces stage's point in those
pixels (the flow index's ``landmarks``), clamped to [7, 21] and truncated to whole pixels, as HTNet's
``main_HTNet.py`` (lines 84-92) treats its MTCNN points. MediaPipe's points map onto MTCNN's five one for one:
the eye centres (mean of each eye's contour points, as the faces stage aligns on), the nose tip (mesh point 1) and
the mouth corners (61, 291). HTNet's release indexes the image's rows by a point's x and its columns by its y
(lines 112-121); with MTCNN's point order (left eye, right eye, nose, left mouth corner, right mouth corner) and
its fallback points (lines 78-82) that transposition puts its blocks on the left eye, the left mouth corner, the
right eye and the right mouth corner, the names its code gives them (``l_eye, l_lips, r_eye, r_lips``); here each
block is cut at its named point, rows by y.

The direction map (CausalNet): per pixel the angle of (u, v) after each of u and v is brought to 0..255 over
the image (min to max), as the release's stored flow images are, drawn as an HSV colour at full saturation and
value (hue = angle / 2 in OpenCV's units) and read back as B, G, R. The release ships these images but not the code
that made them; this rule reproduces its shipped ``*_2``/``*_3`` images from its ``*`` and ``*_1`` images to
within 1.4 grey levels on average (their B channel is 0 wherever the angle lies in 0..90 degrees, which it always
does after the min-max step; that channel normalises to 0, :data:`CONSTANT_CHANNELS`).

Scale: the releases feed each image min-max scaled to 0..255 (their stored PNGs, per image); here the flow keeps
its pixel units and every channel is standardised per LOSO fold from its training clips, as for the other
networks (the direction maps are 0..255 colours by construction).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from memix.io import flowset
from memix.io.flowset import FACE_CHANNELS, FlowSet, channel_stats

REGION_SIZE = 28
"""The region networks' image side (HTNet main_HTNet.py line 223, CausalNet main_train.py line 258)."""
HALF = 7
"""Half a block's side: 14 x 14 blocks, centres clamped to [HALF, REGION_SIZE - HALF]."""
REGION_POINTS = (0, 3, 1, 4)
"""The faces stage's points (eye_left, eye_right, nose_tip, mouth_left, mouth_right) at the blocks, row-major:
[[eye_left, mouth_left], [eye_right, mouth_right]]."""
VIEW_KINDS = ("faces", "regions", "sequence")
INPUT_KINDS = ("flow", *VIEW_KINDS)
"""What a model reads from a flow set (:func:`read`'s ``inputs``): the flow, or one of the views."""
DIRECTION_CHANNELS = ("dir_b", "dir_g", "dir_r")
CONSTANT_CHANNELS = ("dir_b", "offset_dir_b")
"""Channels constant by construction (the direction maps' B: the angle lies in 0..90 degrees), normalised to 0."""


def read(path: str | Path, inputs: str = "flow", need_onset: bool = False) -> FlowSet:
    """The flow set at ``path`` as a network reading ``inputs`` gets it (:data:`INPUT_KINDS`): checked as
    :func:`memix.io.flowset.read` checks it, then made into that view."""
    if inputs not in INPUT_KINDS:
        raise ValueError(f"inputs {inputs!r}: a flow set holds {', '.join(INPUT_KINDS)}")
    data, arrays = flowset.load(path, need_onset)
    return data if inputs == "flow" else view(data, inputs, arrays)


def view(data: FlowSet, kind: str, arrays: dict[str, np.ndarray]) -> FlowSet:
    """The flow set as view ``kind`` reads it (``arrays``: the set's arrays, for those beyond flow and onset)."""
    if kind == "faces":
        return faces_view(data, arrays.get("apex"))
    if kind == "regions":
        return regions_view(data)
    if kind == "sequence":
        return sequence_view(data, arrays.get("flow_offset"))
    raise ValueError(f"view {kind!r}: valid views are {', '.join(VIEW_KINDS)}")


def input_channels(kind: str, flow_channels: list[str]) -> list[str]:
    """The channels a network reading ``kind`` gets (``flow`` or a view) from a flow set with ``flow_channels``."""
    if kind == "faces":
        return list(FACE_CHANNELS)
    if kind == "sequence":
        return [*flow_channels, *(f"offset_{c}" for c in flow_channels), *DIRECTION_CHANNELS,
                *(f"offset_{c}" for c in DIRECTION_CHANNELS)]
    return list(flow_channels)


def input_size(kind: str, flow_size: int) -> int:
    """The side of what a network reading ``kind`` gets: the region views are :data:`REGION_SIZE`."""
    return REGION_SIZE if kind in ("regions", "sequence") else flow_size


def clip_input(
    kind: str, flow: np.ndarray, points: np.ndarray, onset: np.ndarray, apex: np.ndarray,
    flow_offset: np.ndarray | None = None,
) -> np.ndarray:
    """One clip's network input, by the very code that makes the view of a flow set (``memix predict``): ``flow``
    (C, S, S) as the flow stage stores it, ``points`` (5, 2) in its pixels, the small onset and apex faces, and for
    ``sequence`` the apex -> offset flow. Returns (C', S', S') float16."""
    if kind == "flow":
        return np.asarray(flow, dtype=np.float16)
    one = FlowSet(
        path=Path("<clip>"), index=pd.DataFrame({"clip_id": ["<clip>"], "landmarks": [np.ravel(points).tolist()],
                                                  "n_pixels": [flow.shape[-1] ** 2]}),
        flow=np.asarray(flow)[None], onset=np.asarray(onset)[None],
        stats={"channels": [f"c{i}" for i in range(flow.shape[0])]},
    )
    extra = {"apex": np.asarray(apex)[None]}
    if flow_offset is not None:
        extra["flow_offset"] = np.asarray(flow_offset)[None]
    return view(one, kind, extra).flow[0]


def faces_view(data: FlowSet, apex: np.ndarray | None) -> FlowSet:
    """The aligned onset and apex faces: ``flow`` (N, 2, S, S) float16 holding the grey levels 0..255 (exact in
    float16), channels :data:`FACE_CHANNELS`. ``onset`` stays (MixMeFormer's stream reads it)."""
    if data.onset is None or apex is None:
        raise ValueError(f"{data.path}: the model takes the onset and apex faces, but the flow set lacks array "
                         f"{'onset' if data.onset is None else 'apex'} (written by an older flow stage? "
                         "`dvc repro flow`)")
    if apex.shape != data.onset.shape:
        raise ValueError(f"{data.path}: array apex has shape {apex.shape}; expected {data.onset.shape} (as onset)")
    return _with_input(data, np.stack([data.onset, apex], axis=1), list(FACE_CHANNELS), "faces")


def regions_view(data: FlowSet) -> FlowSet:
    """HTNet's input: the onset -> apex flow's four blocks at 28 px, channels as the flow's."""
    centres = block_centres(_points(data), data.size)
    images = compose_regions(resize(np.asarray(data.flow), REGION_SIZE), centres)
    return _with_input(data, images, data.channels, "regions")


def sequence_view(data: FlowSet, flow_offset: np.ndarray | None) -> FlowSet:
    """CausalNet's input: [onset -> apex flow, apex -> offset flow, direction map of each] as region images,
    stacked on channels (4 x the flow's channels when those are u, v, strain: 12)."""
    if flow_offset is None:
        raise ValueError(f"{data.path}: the model reads the apex -> offset flow too, but the flow set has no array "
                         "flow_offset: set flow.pairs: [onset_apex, apex_offset] (and `dvc repro flow`)")
    if flow_offset.shape != data.flow.shape:
        raise ValueError(f"{data.path}: array flow_offset has shape {flow_offset.shape}; expected {data.flow.shape}")
    if len(data.channels) != 3:
        raise ValueError(f"{data.path}: the sequence view stacks 3-channel images (the direction maps have 3); "
                         f"flow.channels is {data.channels}: use [u, v, strain]")
    centres = block_centres(_points(data), data.size)
    onset_apex = resize(np.asarray(data.flow), REGION_SIZE)
    apex_offset = resize(np.asarray(flow_offset), REGION_SIZE)
    stacked = np.concatenate(
        [onset_apex, apex_offset, direction_map(onset_apex), direction_map(apex_offset)], axis=1
    )
    channels = [*data.channels, *(f"offset_{c}" for c in data.channels), *DIRECTION_CHANNELS,
                *(f"offset_{c}" for c in DIRECTION_CHANNELS)]
    return _with_input(data, compose_regions(stacked, centres), channels, "sequence")


def resize(flow: np.ndarray, size: int) -> np.ndarray:
    """(N, C, S, S) -> (N, C, size, size) float32, bilinear with antialiasing (what :class:`NetModel` does)."""
    x = torch.from_numpy(np.ascontiguousarray(flow, dtype=np.float32))
    if x.shape[-1] == size:
        return x.numpy()
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True).numpy()


def block_centres(points: np.ndarray, side: int) -> np.ndarray:
    """(N, 5, 2) points (x, y) in the pixels of a ``side`` px image -> (N, 4, 2) integer block centres (x, y) at
    :data:`REGION_SIZE` px, in :data:`REGION_POINTS` order, clamped and truncated as HTNet's release does."""
    scale = REGION_SIZE / side
    at_28 = (np.asarray(points, dtype=np.float64)[:, list(REGION_POINTS)] + 0.5) * scale - 0.5
    return np.clip(at_28, HALF, REGION_SIZE - HALF).astype(np.int64)


def compose_regions(images: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(N, C, 28, 28) images and (N, 4, 2) block centres -> (N, C, 28, 28): the four 14 x 14 blocks, row-major."""
    out = np.empty_like(images)
    for i, pts in enumerate(centres):
        for b, (x, y) in enumerate(pts):
            r, c = divmod(b, 2)
            out[i, :, r * 2 * HALF:(r + 1) * 2 * HALF, c * 2 * HALF:(c + 1) * 2 * HALF] = images[
                i, :, y - HALF:y + HALF, x - HALF:x + HALF
            ]
    return out


def direction_map(flow: np.ndarray) -> np.ndarray:
    """(N, C >= 2, H, W) flow -> (N, 3, H, W) float32 B, G, R of the direction colour (module docstring), 0..255."""
    out = np.empty((flow.shape[0], 3, *flow.shape[2:]), dtype=np.float32)
    for i, f in enumerate(np.asarray(flow, dtype=np.float64)):
        u, v = (_to_255(f[0]), _to_255(f[1]))
        angle = np.degrees(np.arctan2(v, u)) % 360.0
        hsv = np.empty((*u.shape, 3), dtype=np.uint8)
        hsv[..., 0] = np.round(angle / 2.0).astype(np.int64) % 180
        hsv[..., 1:] = 255
        out[i] = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR).transpose(2, 0, 1)
    return out


def _to_255(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return np.zeros_like(x) if hi <= lo else (x - lo) / (hi - lo) * 255.0


def _points(data: FlowSet) -> np.ndarray:
    if "landmarks" not in data.index.columns:
        raise ValueError(f"{data.path}: the flow index has no column landmarks (the faces stage's five points), "
                         "which the region blocks are cut around: written by an older flow stage? `dvc repro flow`")
    rows = []
    for cid, p in zip(data.index["clip_id"], data.index["landmarks"], strict=True):
        pt = np.asarray(p, dtype=np.float64).ravel() if p is not None else np.zeros(0)
        if pt.shape != (10,) or not np.isfinite(pt).all():
            raise ValueError(f"{data.path}: clip {cid!r}: field landmarks must hold 10 finite numbers (5 points x, y)")
        rows.append(pt)
    return np.stack(rows).reshape(len(rows), 5, 2)


def _with_input(data: FlowSet, images: np.ndarray, channels: list[str], kind: str) -> FlowSet:
    """``data`` with ``images`` (N, C, S, S) as the model input (float16), its channels, and per-clip sums of them
    computed from the stored float16 values."""
    stored = images.astype(np.float16)
    index = data.index.drop(columns=[c for c in data.index.columns if c.startswith(("sum_", "sumsq_"))])
    values = stored.astype(np.float64)
    sums = pd.DataFrame(
        {f"{k}_{ch}": (values[:, c] ** (2 if k == "sumsq" else 1)).sum(axis=(1, 2))
         for c, ch in enumerate(channels) for k in ("sum", "sumsq")},
        index=index.index,
    )
    index = pd.concat([index, sums], axis=1)
    index["n_pixels"] = np.full(len(index), stored.shape[-1] * stored.shape[-2], dtype=np.int64)
    mean, std = channel_stats(index, channels)
    stats = {**data.stats, "channels": list(channels), "inputs": kind, "flow_channels": data.channels,
             "input_size": int(stored.shape[-1]), "mean": [float(x) for x in mean], "std": [float(x) for x in std]}
    return FlowSet(path=data.path, index=index, flow=stored, onset=data.onset, stats=stats)
