"""Manifold mixup (Verma et al., ICML 2019) for a ViT: mix the whole token sequence after a random block.

The mixer only decides (block, l, pi); the model applies h' = l*h + (1-l)*h[pi] to the token sequence
entering block ``block`` (0 = the embedded input tokens, CLS included) when called as
``model(x, manifold=plan.manifold)`` (a group: every unit's block, l and pi in one :class:`GroupManifold`).
``plan.x`` is the unmixed batch.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import BaseModel

from memix.mixing.base import Draw, GroupBinding, GroupDraws, GroupPlan, Mixer
from memix.mixing.batched import GroupManifold


class ManifoldMixupMixer(Mixer):
    name = "manifold_mixup"

    def __init__(self, num_classes: int, patch_size: int, label_smoothing: float, params: BaseModel) -> None:
        super().__init__(num_classes, patch_size, label_smoothing, params)
        blocks = list(self.params.blocks)
        if not blocks or min(blocks) < 0 or len(set(blocks)) != len(blocks):
            raise ValueError(f"mixing.manifold_mixup.blocks: need distinct block indices >= 0, got {blocks}")
        self.blocks = sorted(blocks)

    def fit_to_depth(self, depth: int) -> None:
        """Keep only blocks a model with ``depth`` blocks can mix before (0..depth-1); error if none is left.

        Without this a model clamps larger indices to its last block, which skews the block distribution.
        """
        kept = [b for b in self.blocks if b < depth]
        if not kept:
            raise ValueError(f"mixing.manifold_mixup.blocks {self.blocks}: none is below the model depth {depth}")
        self.blocks = kept

    def draw(self, rng: np.random.Generator, batch: int, height: int, width: int) -> Draw:
        alpha = self.params.alpha
        block = int(self.blocks[int(rng.integers(len(self.blocks)))])
        lam = float(rng.beta(alpha, alpha))
        return Draw(n=batch, lam=lam, a=lam, b=1.0 - lam, perm=rng.permutation(batch), block=block)

    def mix_group(self, x: torch.Tensor, y: torch.Tensor, draws: GroupDraws, binding: GroupBinding) -> GroupPlan:
        return GroupPlan(
            x=x, y=y, partner_y=y.gather(1, draws.perm), draws=draws, own=draws.lam[:, None].expand_as(y),
            manifold=GroupManifold(block=draws.block, lam=draws.lam, perm=draws.perm),
        )
