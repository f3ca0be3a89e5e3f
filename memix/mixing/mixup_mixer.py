"""Mixup (Zhang et al., ICLR 2018): x' = l*x + (1-l)*x[pi], y' likewise, one l ~ Beta(a, a) per batch.

Not timm's ``Mixup``: that pairs each sample with the flipped batch (not a random permutation), asserts an
even batch size and draws from numpy's global RNG, so plans could not be replayed from our generator.
"""

from __future__ import annotations

import numpy as np
import torch

from memix.mixing.base import Draw, GroupBinding, GroupDraws, GroupPlan, Mixer, mixup_draw, mixup_group


class MixupMixer(Mixer):
    name = "mixup"

    def draw(self, rng: np.random.Generator, batch: int, height: int, width: int) -> Draw:
        return mixup_draw(rng, batch, self.params.alpha)

    def mix_group(self, x: torch.Tensor, y: torch.Tensor, draws: GroupDraws, binding: GroupBinding) -> GroupPlan:
        return mixup_group(x, y, draws)
