"""MixAugment (Psaroudakis & Kollias, CVPRW 2022), as we read the paper: a mixup batch AND the clean batch
both enter the loss, L = CE_soft(f(x'), y') + CE(f(x), y).

The input and label mixing is mixup's; ``clean_loss = True`` tells the trainer to add the clean term. (The
repository the MEMix README links under this name is a fixed l = 0.5 blend with no paper behind it.)
"""

from __future__ import annotations

import numpy as np
import torch

from memix.mixing.base import Mixer, MixPlan, mixup_plan


class MixAugmentMixer(Mixer):
    name = "mixaugment"
    clean_loss = True

    def _mix(self, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator) -> MixPlan:
        return mixup_plan(x, y, rng, self.params.alpha)
