"""``memix show``: PNGs to check by eye what the flow stage stored and what a mixing method does to it.

``show_flow``: one clip's flow recomputed from the aligned faces at crop size (top row) beside the stored
tensor (bottom row). ``show_mix``: rows are samples of one small batch drawn from the flow set; columns show
the flow (hue = direction, brightness = magnitude), its patch-grid motion score with the mixed region
outlined, the partner's flow, the mixed flow and how much each pixel changed. No model is involved, so
methods that weight labels by attention get a stand-in attention map: the motion score itself (said in the title).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from memix import mixing
from memix.config import Params
from memix.io import flowset, shards
from memix.mixing.memix_mixer import motion_grid
from memix.plots import FlowPanel, flow_montage, flow_to_rgb, robust_max, save_png
from memix.preprocess import optical_flow

ROWS = 4
BATCH = 8


def show_mix(params: Params, method: str, flow_dir: Path, out_path: Path, seed: int) -> Path:
    """Mix a seeded batch of real flows with ``method`` and write the figure to ``out_path`` (PNG)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    flow_dir, out_path = Path(flow_dir), Path(out_path)
    data = flowset.read(flow_dir)
    index, flow = data.index, data.flow
    rows = np.sort(np.random.default_rng(seed).choice(len(flow), size=min(BATCH, len(flow)), replace=False))
    labels_all = index["label_id"].to_numpy().astype(np.int64)
    flows, labels = np.asarray(flow[rows], dtype=np.float32), labels_all[rows]
    clip_ids = index["clip_id"].to_numpy()[rows]
    patch = params.model.patch_size
    mixer = mixing.get(
        method, data.num_classes, patch_size=patch, label_smoothing=params.train.label_smoothing,
        **getattr(params.mixing, method).model_dump(),
    )
    x, y = torch.from_numpy(flows), torch.from_numpy(labels)
    inputs = torch.from_numpy(np.asarray(flow, dtype=np.float32)) if mixer.needs_inputs else None
    mixer.bind(torch.from_numpy(labels_all), inputs)
    plan = mixer.mix_inputs(x, y, torch.Generator().manual_seed(seed))
    size = x.shape[-1]
    score = motion_grid(x, patch, "avg") if size % patch == 0 else None
    attention = score if mixer.needs_attention else None
    targets = mixer.mix_targets(plan, attention).numpy()
    partner = x[plan.perm] if plan.perm is not None else None  # balanced mixup: partners came from outside x

    n = min(ROWS, x.shape[0])
    scale = robust_max(np.hypot(flows[:, 0], flows[:, 1]))
    fig = Figure(figsize=(12.5, 2.6 * n))  # no pyplot: no global state, Agg via savefig
    axes = fig.subplots(n, 5, squeeze=False)
    grid_p = size // patch
    for r in range(n):
        ax = axes[r]
        ax[0].imshow(flow_to_rgb(np.stack([flows[r, 0], flows[r, 1]], -1), scale))
        ax[0].set_title(f"{clip_ids[r]} (class {labels[r]})", fontsize=8)
        if score is not None:
            ax[1].imshow(score[r].reshape(grid_p, grid_p).numpy(), cmap="magma")
            if plan.token_mask is not None:
                for t in np.flatnonzero(plan.token_mask[r].numpy()):
                    ax[1].add_patch(Rectangle((t % grid_p - 0.5, t // grid_p - 0.5), 1, 1, fill=False, ec="cyan"))
            k_note = f", K={int(plan.k[r])}" if plan.k is not None else ""
            ax[1].set_title("motion score / patch" + k_note, fontsize=8)
        if plan.box is not None:
            y0, y1, x0, x1 = plan.box
            ax[0].add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="white"))
        if partner is not None:
            p = partner[r].numpy()
            ax[2].imshow(flow_to_rgb(np.stack([p[0], p[1]], -1), scale))
            ax[2].set_title(f"partner #{int(plan.perm[r])} (class {int(plan.partner_y[r])})", fontsize=8)
        else:
            ax[2].set_title(f"partner: class {int(plan.partner_y[r])}", fontsize=8)
        mixed = plan.x[r].numpy()
        ax[3].imshow(flow_to_rgb(np.stack([mixed[0], mixed[1]], -1), scale))
        top = np.argsort(-targets[r])[:2]
        ax[3].set_title("mixed; target " + ", ".join(f"{k}:{targets[r, k]:.2f}" for k in top), fontsize=8)
        ax[4].imshow(np.abs(mixed - flows[r]).sum(0), cmap="gray")
        ax[4].set_title(f"|change|, lam={plan.lam:.2f}", fontsize=8)
        for a in ax:
            a.set_xticks([])
            a.set_yticks([])
    note = " (attention stand-in: motion score)" if mixer.needs_attention else ""
    if plan.manifold is not None:
        note += f" (mixes hidden tokens after block {plan.manifold.block}; input unchanged)"
    fig.suptitle(f"{method}, seed {seed}, patch {patch}{note}", fontsize=10)
    fig.tight_layout()
    save_png(fig, out_path, dpi=80)
    return out_path


def show_flow(flow_dir: str | Path, faces_dir: str | Path, clip_id: str, out_path: str | Path) -> None:
    """PNG of one clip: the flow recomputed at crop size from the faces (top) and the stored tensor (bottom).

    The recomputation uses the method and settings recorded in the flow stage's ``stats.json``.
    """
    flow_dir, faces_dir = Path(flow_dir), Path(faces_dir)
    flows = flowset.read(flow_dir)
    c_index, c_arrays = shards.load(faces_dir)
    frow = _find_clip(flows.index, clip_id, flow_dir)
    crow = _find_clip(c_index, clip_id, faces_dir)
    channels = flows.channels
    method, settings = flows.stats["method"], flows.stats["method_params"]

    onset = np.asarray(c_arrays["onset"][crow])
    apex = np.asarray(c_arrays["apex"][crow])
    full = optical_flow.compute_flow(onset, apex, method, **settings)
    stored = np.asarray(flows.flow[frow], dtype=np.float32)
    stored_flow = np.stack([stored[channels.index("u")], stored[channels.index("v")]], axis=-1)
    if "strain" in channels:
        stored_strain, strain_note = stored[channels.index("strain")], "stored"
    else:
        stored_strain, strain_note = optical_flow.optical_strain(stored_flow), "from stored u, v"
    label = flows.index["label"].iloc[frow]
    crop, size = onset.shape[0], stored.shape[-1]
    panels = [
        FlowPanel(
            f"{clip_id} ({label})\nrecomputed {method} at {crop} px",
            onset,
            full,
            optical_flow.optical_strain(full),
            apex=apex,
        ),
        FlowPanel(
            f"stored tensor at {size} px\n(strain {strain_note})",
            np.asarray(flows.onset[frow]) if flows.onset is not None else onset,
            stored_flow,
            stored_strain,
        ),
    ]
    flow_montage(panels, out_path, title=f"{clip_id}: top = recomputed from {faces_dir}, bottom = stored in {flow_dir}")



def _find_clip(index: pd.DataFrame, clip_id: str, where: Path) -> int:
    hits = np.flatnonzero(index["clip_id"].to_numpy() == clip_id)
    if len(hits) == 0:
        ids = index["clip_id"].tolist()
        sample = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
        raise ValueError(f"clip {clip_id!r} not in {where} ({len(ids)} clips, e.g. {sample})")
    return int(hits[0])
