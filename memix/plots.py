"""PNG helpers every figure of the project uses: flow colouring, the flow montage, confusion matrices, saving.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot state, no display) and
saved without the software/version metadata, so equal data gives equal PNG bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from memix.io import atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def flow_to_rgb(flow: np.ndarray, max_mag: float | None = None) -> np.ndarray:
    """Colour a flow field (H, W, 2): hue = direction, brightness = magnitude / ``max_mag`` (default: the max).

    Direction in image coordinates (v down): red = right, ~yellow-green = down, cyan = left, ~purple = up.
    """
    from matplotlib.colors import hsv_to_rgb

    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"a flow field must be (H, W, 2), got {flow.shape}")
    u = flow[..., 0].astype(np.float64)
    v = flow[..., 1].astype(np.float64)
    mag = np.hypot(u, v)
    scale = float(mag.max()) if max_mag is None else float(max_mag)
    hue = (np.arctan2(v, u) % (2 * np.pi)) / (2 * np.pi)
    val = np.clip(mag / scale, 0.0, 1.0) if scale > 0 else np.zeros_like(mag)
    hsv = np.stack([hue, np.ones_like(hue), val], axis=-1)
    return np.round(hsv_to_rgb(hsv) * 255).astype(np.uint8)


@dataclass(frozen=True)
class FlowPanel:
    """One clip's pictures for a montage row; ``flow`` and ``strain`` on the same grid as ``face``."""

    title: str
    face: np.ndarray
    flow: np.ndarray
    strain: np.ndarray
    apex: np.ndarray | None = None


def flow_montage(panels: Sequence[FlowPanel], out_path: str | Path, title: str) -> None:
    """A grid, one row per clip: onset[, apex], flow colour, magnitude, strain; written atomically as PNG.

    Colours saturate at each panel's 99th percentile (given in its title), not at its maximum.
    """
    if not panels:
        raise ValueError(f"{out_path}: no clips to draw")
    with_apex = any(p.apex is not None for p in panels)
    ncols = 5 if with_apex else 4
    fig = _figure(len(panels), ncols)
    axes = fig.subplots(len(panels), ncols, squeeze=False)
    for r, panel in enumerate(panels):
        mag = np.hypot(panel.flow[..., 0], panel.flow[..., 1])
        cells: list[tuple[str, np.ndarray | None, str | None]] = [(f"{panel.title}\nonset", panel.face, "gray")]
        if with_apex:
            cells.append(("apex" if panel.apex is not None else "", panel.apex, "gray"))
        top_mag, top_strain = robust_max(mag), robust_max(panel.strain)
        cells += [
            (f"flow (hue = direction)\nfull at {top_mag:.2f} px", flow_to_rgb(panel.flow, top_mag), None),
            (f"magnitude, px\n(scale {top_mag:.2f}, max {mag.max():.2f})", mag, "magma"),
            (f"strain\n(scale {top_strain:.3f}, max {panel.strain.max():.3f})", panel.strain, "viridis"),
        ]
        limits = {"gray": 255.0, "magma": top_mag, "viridis": top_strain}
        for ax, (name, img, cmap) in zip(axes[r], cells, strict=True):
            ax.set_axis_off()
            if img is None:
                continue
            kwargs = {"vmin": 0, "vmax": limits[cmap]} if cmap else {}
            ax.imshow(img, cmap=cmap, interpolation="nearest", **kwargs)
            ax.set_title(name, fontsize=7)
    fig.suptitle(title, fontsize=8, y=1 - 0.08 / fig.get_figheight(), va="top")
    save_png(fig, out_path)


def save_png(fig: Figure, out_path: str | Path, dpi: int = 100) -> None:
    """Write ``fig`` as PNG through memix.io.atomic, without metadata that would vary between runs."""
    with atomic.atomic_path(out_path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})


def robust_max(values: np.ndarray) -> float:
    """99th percentile: the colour scale, so a few border outliers of the flow solver do not blacken the rest."""
    top = float(np.percentile(values, 99))
    return top if top > 0 else float(values.max()) or 1.0


def _figure(nrows: int, ncols: int) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    height = 2.0 * nrows + 0.6
    fig = Figure(figsize=(1.9 * ncols, height))
    FigureCanvasAgg(fig)
    # fixed margins: constrained layout costs ~1 s per montage and the cells are all alike
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.01, top=1 - 0.7 / height, wspace=0.08, hspace=0.35)
    return fig


def confusion_grid_png(panels: Sequence[tuple[str, np.ndarray]], names: list[str], title: str, ncols: int) -> bytes:
    """Count matrices (panel title, K x K counts), ``ncols`` per row, as one PNG without pyplot state and
    without version metadata (stable bytes)."""
    from matplotlib.figure import Figure

    if not panels:
        raise ValueError(f"{title}: no confusion matrices to draw")
    nrows = -(-len(panels) // ncols)
    cell, left, bottom, top = 0.45 * len(names), 1.1, 0.9, 0.6  # inches: the matrix, tick labels, titles
    width, height = ncols * (cell + left + 0.2), nrows * (cell + bottom + top) + 0.35
    fig = Figure(figsize=(width, height), dpi=90)
    # fixed margins: constrained layout would double the drawing time for cells that are all alike
    fig.subplots_adjust(left=left / width, right=1 - 0.2 / width, bottom=bottom / height,
                        top=1 - (top + 0.35) / height, wspace=(left + 0.2) / cell, hspace=(bottom + top) / cell)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_axis_off()
    for ax, (name, cm) in zip(axes.flat, panels, strict=False):
        ax.imshow(cm, cmap="Blues", vmin=0)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("actual", fontsize=8)
        ax.set_title(name, fontsize=8)
        top = cm.max() if cm.size else 0
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                colour = "white" if cm[i, j] > top / 2 else "black"
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", color=colour, fontsize=7)
    fig.suptitle(title, fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()
