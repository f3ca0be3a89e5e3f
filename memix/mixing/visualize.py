"""``memix show mix``: a PNG to check by eye what a mixing method does to real flow.

Rows are samples of one small batch drawn from the flow shards; columns show the flow (hue = direction,
brightness = magnitude), its patch-grid motion score with the mixed region outlined, the partner's flow,
the mixed flow and how much each pixel changed. No model is involved, so methods that weight labels by
attention get a stand-in attention map: the motion score itself (said in the title).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from memix.config import Params
from memix.visualize import flow_to_rgb, robust_max, save_png

ROWS = 4
BATCH = 8


def _load_flows(flow_dir: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """The flow shard folder's index and its (N, C, S, S) 'flow' array, checked for what the figure needs."""
    from memix import shards

    if not flow_dir.is_dir():
        raise FileNotFoundError(f"{flow_dir}: flow stage output not found; run `memix flow` (or `dvc repro flow`)")
    index, arrays = shards.load(flow_dir)
    if "flow" not in arrays:
        raise ValueError(f"{flow_dir}: shard folder has no 'flow' array (has: {', '.join(sorted(arrays))})")
    for col in ("label_id", "clip_id"):
        if col not in index.columns:
            raise ValueError(f"{flow_dir}/index.parquet: column {col!r} missing")
    flow = arrays["flow"]
    if flow.ndim != 4 or flow.shape[1] < 2:
        raise ValueError(f"{flow_dir}: array 'flow' must be (N, C>=2, S, S), got {flow.shape}")
    return index, flow


def show_mix(params: Params, method: str, flow_dir: Path, out_path: Path, seed: int) -> Path:
    """Mix a seeded batch of real flows with ``method`` and write the figure to ``out_path`` (PNG)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from memix import loso, mixing
    from memix.mixing.memix import motion_grid

    flow_dir, out_path = Path(flow_dir), Path(out_path)
    index, flow = _load_flows(flow_dir)
    rows = np.sort(np.random.default_rng(seed).choice(len(flow), size=min(BATCH, len(flow)), replace=False))
    labels_all = index["label_id"].to_numpy().astype(np.int64)
    flows, labels = np.asarray(flow[rows], dtype=np.float32), labels_all[rows]
    clip_ids = index["clip_id"].to_numpy()[rows]
    patch = params.model.patch_size
    mixer = mixing.get(
        method, loso.num_classes(index), patch_size=patch, label_smoothing=params.train.label_smoothing,
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
