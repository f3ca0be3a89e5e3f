"""TransMix (Chen et al., CVPR 2022): a CutMix box whose label weight is re-read from the ViT's attention.

Per batch, with probability ``mixup_prob`` the batch is a plain mixup (label l), else a CutMix box. For a
box, each sample's pasted weight is (box area fraction + share of the CLS attention A on pasted tokens) / 2,
where A is the last block's CLS row of the MIXED forward pass and a token counts as pasted when its top-left
pixel lies in the box.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from memix.mixing.base import Mixer, MixPlan, cutmix_plan, mixup_plan


def pasted_tokens(
    box: tuple[int, int, int, int], grid: tuple[int, int], patch: int, device: torch.device
) -> torch.Tensor:
    """(P*P,) bool, row-major: tokens whose top-left pixel (row*patch, col*patch) lies in the box."""
    y0, y1, x0, x1 = box
    tops = torch.arange(grid[0], device=device) * patch
    lefts = torch.arange(grid[1], device=device) * patch
    inside = ((tops >= y0) & (tops < y1))[:, None] & ((lefts >= x0) & (lefts < x1))[None, :]
    return inside.reshape(-1)


class TransmixMixer(Mixer):
    name = "transmix"
    needs_attention = True

    def _mix(self, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator) -> MixPlan:
        grid = self._grid(x)
        if rng.random() < self.params.mixup_prob:
            return mixup_plan(x, y, rng, self.params.alpha)
        plan = cutmix_plan(x, y, rng, self.params.alpha)
        tokens = pasted_tokens(plan.box, grid, self.patch_size, x.device)
        return dataclasses.replace(plan, label_lam=None, token_mask=tokens[None].expand(x.shape[0], -1))

    def _label_lam(self, plan: MixPlan, attention: torch.Tensor | None) -> torch.Tensor:
        if plan.token_mask is None:  # mixup batch: the attention plays no part
            return super()._label_lam(plan, attention)
        pasted = (1.0 - plan.lam + self._attention_share(attention, plan)) / 2.0
        return 1.0 - pasted
