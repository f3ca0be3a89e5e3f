"""Manifold mixing in a network written as a sequence of stages: the one rule every model here follows.

h' = lam * h + (1 - lam) * h[perm] replaces the tensor entering stage ``min(manifold.block, stages - 1)`` (block 0
mixes the input), ``lam`` a number, a 0-d tensor or one value per sample. The ViT's blocks
(:class:`memix.models.FlowModel`) and the comparison architectures' stages (:mod:`memix.models.arch`) share it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from memix.mixing.base import ManifoldPlan


def mix_hidden(h: torch.Tensor, lam: float | torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """lam*h + (1-lam)*h[perm]; ``lam`` a scalar, a 0-d tensor or one value per sample (B,)."""
    if isinstance(lam, torch.Tensor):
        lam = lam.to(device=h.device, dtype=h.dtype)
        if lam.ndim == 1:
            lam = lam.view(-1, *([1] * (h.ndim - 1)))
    return lam * h + (1 - lam) * h[perm.to(h.device)]


def mix_stage(manifold: ManifoldPlan | None, batch: int, n_stages: int, first: int = 0) -> int:
    """The stage whose input ``manifold`` mixes (-1: none), checked; ``first`` is the earliest stage that runs (a
    network fed later-stage features starts there and mixes them)."""
    if manifold is None:
        return -1
    block = int(manifold.block)
    if block < 0:
        raise ValueError(f"manifold.block must be >= 0, got {block}")
    perm = manifold.perm
    if perm.ndim != 1 or perm.shape[0] != batch:
        raise ValueError(f"manifold.perm must have shape ({batch},), got {tuple(perm.shape)}")
    return max(min(block, n_stages - 1), first)


def run_stages(
    stages: Sequence[nn.Module], h: torch.Tensor, manifold: ManifoldPlan | None, first: int = 0
) -> torch.Tensor:
    """``stages[first:]`` in order, mixing the input of the stage ``manifold`` names."""
    mix_at = mix_stage(manifold, h.shape[0], len(stages), first)
    for i in range(first, len(stages)):
        if i == mix_at:
            h = mix_hidden(h, manifold.lam, manifold.perm)
        h = stages[i](h)
    return h
