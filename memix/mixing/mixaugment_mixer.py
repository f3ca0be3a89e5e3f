"""MixAugment (Psaroudakis & Kollias, CVPRW 2022), as we read the paper: a mixup batch AND the clean batch
both enter the loss, L = CE_soft(f(x'), y') + CE(f(x), y).

The input and label mixing is mixup's; ``clean_loss = True`` tells the trainer to add the clean term. (The
repository the MEMix README links under this name is a fixed l = 0.5 blend with no paper behind it.)
"""

from __future__ import annotations

import numpy as np
import torch

from memix.mixing.base import Draw, GroupBinding, GroupDraws, GroupPlan, Mixer, mixup_draw, mixup_group


class MixAugmentMixer(Mixer):
    name = "mixaugment"
    clean_loss = True

    def draw(self, rng: np.random.Generator, batch: int, height: int, width: int) -> Draw:
        return mixup_draw(rng, batch, self.params.alpha)

    def mix_group(self, x: torch.Tensor, y: torch.Tensor, draws: GroupDraws, binding: GroupBinding) -> GroupPlan:
        return mixup_group(x, y, draws)
