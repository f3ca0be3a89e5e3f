"""No mixing: the baseline. Targets are the (smoothed) one-hot labels."""

from __future__ import annotations

import numpy as np
import torch

from memix.mixing.base import Mixer, MixPlan, full_lam


class NoneMixer(Mixer):
    """Identity: the batch goes through untouched."""

    name = "none"

    def _mix(self, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator) -> MixPlan:
        perm = torch.arange(x.shape[0], device=x.device)
        return MixPlan(x=x, y=y, perm=perm, lam=1.0, partner_y=y, label_lam=full_lam(1.0, x.shape[0], x.device))
