"""Mixup (Zhang et al., ICLR 2018): x' = l*x + (1-l)*x[pi], y' likewise, one l ~ Beta(a, a) per batch.

Not timm's ``Mixup``: that pairs each sample with the flipped batch (not a random permutation), asserts an
even batch size and draws from numpy's global RNG, so plans could not be replayed from our generator.
"""

from __future__ import annotations

import numpy as np
import torch

from memix.mixing.base import Mixer, MixPlan, mixup_plan


class MixupMixer(Mixer):
    name = "mixup"

    def _mix(self, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator) -> MixPlan:
        return mixup_plan(x, y, rng, self.params.alpha)
