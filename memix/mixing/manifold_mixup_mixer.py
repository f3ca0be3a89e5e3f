"""Manifold mixup (Verma et al., ICML 2019) for a ViT: mix the whole token sequence after a random block.

The mixer only decides (block, l, pi); the model applies h' = l*h + (1-l)*h[pi] to the token sequence
entering block ``block`` (0 = the embedded input tokens, CLS included) when called as
``model(x, manifold=plan.manifold)``.
``plan.x`` is the unmixed batch.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import BaseModel

from memix.mixing.base import ManifoldPlan, Mixer, MixPlan, full_lam, random_perm


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

    def _mix(self, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator) -> MixPlan:
        alpha = self.params.alpha
        block = int(self.blocks[int(rng.integers(len(self.blocks)))])
        lam = float(rng.beta(alpha, alpha))
        perm = random_perm(rng, x.shape[0], x.device)
        return MixPlan(
            x=x, y=y, perm=perm, lam=lam, partner_y=y[perm], label_lam=full_lam(lam, x.shape[0], x.device),
            manifold=ManifoldPlan(block=block, lam=lam, perm=perm),
        )
