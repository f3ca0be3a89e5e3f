"""The batched form every mixer runs in: one unit's host draws (:class:`Draw`), a group's draws stacked on a
leading unit axis (:class:`GroupDraws`) and what mixing a group did (:class:`GroupPlan`).

Why: a fold-batched step trains G units. Drawing stays per unit, each from its own generator in a fixed order, so
a unit's draws do not depend on its group; the mixing, targets and loss then run once over (G, B, ...) tensors,
so a group issues about as many ops as one unit. A batch mixed alone is a group of one: both share every formula.
Rows past a unit's real batch (padding) stay zero (their partners are themselves; balanced mixup keeps them as
they are) and get finite targets; the loss masks them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import torch


def upload(t: torch.Tensor, device: torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``t`` (host draws) on ``device`` without a host synchronisation: torch waits for the stream after a copy from
    pageable memory, so on a GPU the copy goes through pinned memory, asynchronously (torch keeps the pinned block
    alive until the copy is done)."""
    if dtype is not None and t.dtype != dtype:
        t = t.to(dtype)
    if torch.device(device).type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


@dataclasses.dataclass(frozen=True)
class GroupManifold:
    """Manifold mixing for a group: unit g mixes before ``block[g]`` (-1: not at all) with ``lam[g]`` and the row
    permutation ``perm[g]`` (B,), rows past the unit's real batch mapping to themselves."""

    block: torch.Tensor  # (G,) int64
    lam: torch.Tensor  # (G,) float32
    perm: torch.Tensor  # (G, B) int64


@dataclasses.dataclass
class Draw:
    """One unit's random draws for one batch of ``n`` rows, made on the host (numpy values, no device work)."""

    n: int
    lam: float = 1.0
    """Own-label weight where known at draw time (CutMix: the clipped box's complement)."""
    a: float = 1.0
    """Input blend ``a * own + b * partner`` (inside the mask, where a method has one)."""
    b: float = 0.0
    perm: np.ndarray | None = None
    k: np.ndarray | None = None
    box: tuple[int, int, int, int] | None = None
    is_box: bool = False
    block: int = -1
    index: np.ndarray | None = None
    """Balanced mixup: rows of the bound training fold that form the balanced batch."""


@dataclasses.dataclass(frozen=True)
class GroupDraws:
    """G units' draws on the device, padded to B rows (one upload of ints, one of floats)."""

    valid: torch.Tensor  # (G, B) bool: real rows
    perm: torch.Tensor  # (G, B) int64: partner row within the unit (identity past n)
    flat_perm: torch.Tensor  # (G * B,) int64: the same partner as a row of the flattened (G * B) batch
    k: torch.Tensor  # (G, B) int64: MEMix patches per row (0 past n)
    index: torch.Tensor  # (G, B) int64: balanced rows, into the group's partner bank (padding: the fold's first)
    box: torch.Tensor  # (G, 4) int64: clipped (y0, y1, x0, x1)
    is_box: torch.Tensor  # (G,) bool
    block: torch.Tensor  # (G,) int64
    lam64: torch.Tensor  # (G,) float64, as drawn
    lam: torch.Tensor  # (G,) float32
    om: torch.Tensor  # (G,) float32
    a: torch.Tensor  # (G,) float32
    b: torch.Tensor  # (G,) float32


def stack_draws(
    draws: Sequence[Draw | None], batch: int, device: torch.device, offsets: Sequence[int] | None = None
) -> GroupDraws:
    """The units' draws as one :class:`GroupDraws` (``None``: the unit sits the step out, all rows padding);
    ``offsets[g]`` is added to unit g's balanced rows (its fold's first row in the group's bank)."""
    G, B = len(draws), batch
    ints = np.zeros((G, 5 * B + 6), dtype=np.int64)
    ints[:, :B] = np.arange(B)
    ints[:, B:2 * B] = np.arange(B) + B * np.arange(G)[:, None]
    ints[:, -1] = -1
    floats = np.zeros((G, 4), dtype=np.float64)
    floats[:, 0] = floats[:, 2] = 1.0
    if offsets is not None:
        ints[:, 3 * B:4 * B] = np.asarray(offsets, dtype=np.int64)[:, None]
    for g, d in enumerate(draws):
        if d is None:
            continue
        n = d.n
        if d.perm is not None:
            ints[g, :n] = d.perm
            ints[g, B:B + n] = d.perm + g * B
        if d.k is not None:
            ints[g, 2 * B:2 * B + n] = d.k
        if d.index is not None:
            ints[g, 3 * B:3 * B + n] = d.index + (offsets[g] if offsets is not None else 0)
        ints[g, 4 * B:4 * B + n] = 1
        if d.box is not None:
            ints[g, 5 * B:5 * B + 4] = d.box
        ints[g, 5 * B + 4] = int(d.is_box)
        ints[g, -1] = d.block
        floats[g] = (d.lam, 1.0 - d.lam, d.a, d.b)
    i = upload(torch.from_numpy(ints), device)
    f64 = upload(torch.from_numpy(floats), device)
    f32 = f64.to(torch.float32)
    return GroupDraws(
        valid=i[:, 4 * B:5 * B].bool(), perm=i[:, :B], flat_perm=i[:, B:2 * B].reshape(-1), k=i[:, 2 * B:3 * B],
        index=i[:, 3 * B:4 * B], box=i[:, 5 * B:5 * B + 4], is_box=i[:, 5 * B + 4].bool(), block=i[:, -1],
        lam64=f64[:, 0], lam=f32[:, 0], om=f32[:, 1], a=f32[:, 2], b=f32[:, 3],
    )


@dataclasses.dataclass
class GroupPlan:
    """What mixing a group did: (G, B, ...) tensors; what the targets are made from."""

    x: torch.Tensor  # (G, B, C, H, W) mixed inputs
    y: torch.Tensor  # (G, B) own labels
    partner_y: torch.Tensor  # (G, B) labels the partner content came from
    draws: GroupDraws
    own: torch.Tensor | None = None
    """(G, B) own-label weight when known at mixing time (all but TransMix's boxes and MEMix)."""
    mask: torch.Tensor | None = None
    """(G, B or 1, 1, H, W) bool: pixels that received partner content."""
    token_mask: torch.Tensor | None = None
    """(G, B or 1, P*P) bool: patch tokens counted as pasted / mixed."""
    manifold: GroupManifold | None = None


def unit_view(t: torch.Tensor, ndim: int) -> torch.Tensor:
    """A (G,) tensor shaped to broadcast against a (G, ...) tensor of ``ndim`` dimensions."""
    return t.view((-1,) + (1,) * (ndim - 1))


def partner_rows(x: torch.Tensor, draws: GroupDraws) -> torch.Tensor:
    """x[g, perm[g]] for every unit at once: one gather over the flattened (G * B) rows."""
    return x.flatten(0, 1).index_select(0, draws.flat_perm).view(x.shape)


def blend(x: torch.Tensor, partner: torch.Tensor, draws: GroupDraws) -> torch.Tensor:
    """a * x + b * partner per unit (mixup's lam * x + (1 - lam) * x[perm], with both weights from the host)."""
    return unit_view(draws.a, x.ndim) * x + unit_view(draws.b, x.ndim) * partner


def box_masks(box: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(G, 1, 1, H, W) bool, True inside each unit's box (G, 4) = (y0, y1, x0, x1), end-exclusive."""
    return _inside(box, torch.arange(height, device=box.device), torch.arange(width, device=box.device))[
        :, None, None
    ]


def pasted_token_masks(box: torch.Tensor, grid: tuple[int, int], patch: int) -> torch.Tensor:
    """(G, 1, P*P) bool, row-major: tokens whose top-left pixel (row*patch, col*patch) lies in each unit's box."""
    tops = torch.arange(grid[0], device=box.device) * patch
    lefts = torch.arange(grid[1], device=box.device) * patch
    return _inside(box, tops, lefts).flatten(1)[:, None]


def _inside(box: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    b = box[:, :, None]  # (G, 4, 1)
    in_rows = (rows >= b[:, 0]) & (rows < b[:, 1])  # (G, H)
    in_cols = (cols >= b[:, 2]) & (cols < b[:, 3])
    return in_rows[:, :, None] & in_cols[:, None, :]


def smooth_one_hot(y: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """One-hot rows (any leading shape) with label smoothing applied first, as every method's targets start from;
    built by comparison, so nothing checks the labels' range on the host."""
    onehot = (y[..., None] == torch.arange(num_classes, device=y.device)).to(torch.float32)
    if smoothing:
        onehot = onehot * (1.0 - smoothing) + smoothing / num_classes
    return onehot


def soft_targets(
    y: torch.Tensor, partner_y: torch.Tensor, own: torch.Tensor, num_classes: int, smoothing: float
) -> torch.Tensor:
    """own * onehot(y) + (1 - own) * onehot(partner_y), smoothed, over any leading shape."""
    both = smooth_one_hot(torch.stack([y, partner_y]), num_classes, smoothing)
    own = own.to(torch.float32)[..., None]
    return own * both[0] + (1.0 - own) * both[1]


def attention_share(attention: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
    """(..., B) share of each row's CLS attention (..., B, P*P) that falls on ``token_mask`` (TransMix, MEMix)."""
    attention = attention.detach().to(torch.float32)
    total = attention.sum(dim=-1).clamp_min(torch.finfo(torch.float32).tiny)
    return (attention * token_mask).sum(dim=-1) / total


def masked_mean(values: torch.Tensor, valid: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """(G,) mean of each unit's real rows of ``values`` (G, B); padding rows (even non-finite ones) count 0."""
    return torch.where(valid, values, 0.0).sum(dim=-1) / counts
