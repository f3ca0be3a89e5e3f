"""Onset -> apex optical flow, optical strain and flow resizing: the algorithms, no I/O.

The flow stage (:mod:`memix.preprocess.flow`) and the viewers (:mod:`memix.show`) share them. Flow fields
are (H, W, 2) float32 arrays of pixel displacements from onset to apex: ``[..., 0]`` is u (to the right),
``[..., 1]`` is v (downwards).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from pydantic import BaseModel, ValidationError

from memix.config import DISParams, FarnebackParams, TVL1Params

if TYPE_CHECKING:
    from memix.config import FlowParams

FLOW_METHODS: dict[str, type[BaseModel]] = {"tvl1": TVL1Params, "farneback": FarnebackParams, "dis": DISParams}
_DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def method_params(method: str, **params: Any) -> BaseModel:
    """Validate one method's parameters with the same schema as params.yaml (``lambda`` or ``lambda_``)."""
    if method not in FLOW_METHODS:
        raise ValueError(f"unknown flow method {method!r}; choose one of {sorted(FLOW_METHODS)}")
    try:
        return FLOW_METHODS[method](**params)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '?'}: {e['msg']}" for e in err.errors())
        raise ValueError(f"bad {method} flow parameter(s): {problems}") from None


def compute_flow(onset: np.ndarray, apex: np.ndarray, method: str = "tvl1", **params: Any) -> np.ndarray:
    """Dense flow from ``onset`` to ``apex`` (uint8 greyscale, same shape) as (H, W, 2) float32 pixels.

    ``params`` override the method's defaults (the fields of ``FlowParams.<method>``); an unknown
    method or parameter is a ``ValueError`` naming it.
    """
    cfg = method_params(method, **params)
    for name, img in (("onset", onset), ("apex", apex)):
        if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 2:
            got = f"{img.dtype} {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
            raise ValueError(f"{name} must be a uint8 greyscale (H, W) array, got {got}")
    if onset.shape != apex.shape:
        raise ValueError(f"onset {onset.shape} and apex {apex.shape} differ in shape")
    onset = np.ascontiguousarray(onset)
    apex = np.ascontiguousarray(apex)
    if method == "tvl1":
        assert isinstance(cfg, TVL1Params)
        algo = cv2.optflow.DualTVL1OpticalFlow_create(
            cfg.tau,
            cfg.lambda_,
            cfg.theta,
            cfg.nscales,
            cfg.warps,
            cfg.epsilon,
            cfg.inner_iterations,
            cfg.outer_iterations,
            cfg.scale_step,
            cfg.gamma,
            cfg.median_filtering,
            cfg.use_initial_flow,
        )
        init = np.zeros((*onset.shape, 2), np.float32)
        flow = algo.calc(onset, apex, init)
    elif method == "farneback":
        assert isinstance(cfg, FarnebackParams)
        flow = cv2.calcOpticalFlowFarneback(
            onset,
            apex,
            None,
            cfg.pyr_scale,
            cfg.levels,
            cfg.winsize,
            cfg.iterations,
            cfg.poly_n,
            cfg.poly_sigma,
            cfg.flags,
        )
    else:
        assert isinstance(cfg, DISParams)
        flow = cv2.DISOpticalFlow_create(_DIS_PRESETS[cfg.preset]).calc(onset, apex, None)
    return np.asarray(flow, dtype=np.float32)


def flow_for(params: FlowParams, onset: np.ndarray, apex: np.ndarray) -> np.ndarray:
    """:func:`compute_flow` with the method and settings of a ``FlowParams`` section."""
    section: BaseModel = getattr(params, params.method)
    return compute_flow(onset, apex, params.method, **section.model_dump())


def optical_strain(flow: np.ndarray) -> np.ndarray:
    """Magnitude of the infinitesimal strain tensor, sqrt(u_x^2 + v_y^2 + 0.5 (u_y + v_x)^2), per pixel.

    Central differences inside, one-sided at the borders (``np.gradient``), in units of the flow's own
    pixel grid, so strain is dimensionless.
    """
    _check_flow(flow)
    u = flow[..., 0].astype(np.float64)
    v = flow[..., 1].astype(np.float64)
    u_y, u_x = np.gradient(u)  # np.gradient returns d/d(axis 0) = d/dy first
    v_y, v_x = np.gradient(v)
    return np.sqrt(u_x**2 + v_y**2 + 0.5 * (u_y + v_x) ** 2).astype(np.float32)


def resize_flow(flow: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resample a flow field to ``size`` (side, or (height, width)) and rescale the vectors to the new pixels.

    Area interpolation when shrinking (averages the vectors a new pixel covers), bilinear when enlarging.
    """
    _check_flow(flow)
    new_h, new_w = (size, size) if isinstance(size, int) else size
    h, w = flow.shape[:2]
    out = resize_scalar(flow, (new_h, new_w))
    out[..., 0] *= new_w / w
    out[..., 1] *= new_h / h
    return out


def resize_scalar(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resample a float map (H, W[, C]) without scaling its values: area when shrinking, bilinear when enlarging."""
    new_h, new_w = (size, size) if isinstance(size, int) else size
    h, w = image.shape[:2]
    if new_h < 1 or new_w < 1:
        raise ValueError(f"target size must be positive, got {(new_h, new_w)}")
    if (new_h, new_w) == (h, w):
        return np.array(image, dtype=np.float32)
    interp = cv2.INTER_AREA if new_h <= h and new_w <= w else cv2.INTER_LINEAR
    out = cv2.resize(np.ascontiguousarray(image, dtype=np.float32), (new_w, new_h), interpolation=interp)
    return out.reshape((new_h, new_w, *image.shape[2:]))


def _check_flow(flow: np.ndarray) -> None:
    if not isinstance(flow, np.ndarray) or flow.ndim != 3 or flow.shape[2] != 2:
        got = flow.shape if isinstance(flow, np.ndarray) else type(flow).__name__
        raise ValueError(f"a flow field must be an (H, W, 2) array, got {got}")


@contextmanager
def one_opencv_thread() -> Iterator[None]:
    """OpenCV on one thread for the duration, as the flow stage's workers run it: its parallel loops split sums by
    thread, so the thread count would change the bytes (spotting, ``memix predict``)."""
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(before)
