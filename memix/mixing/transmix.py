"""TransMix (Chen et al., CVPR 2022): a CutMix box whose label weight is re-read from the ViT's attention.

Per batch, with probability ``mixup_prob`` the batch is a plain mixup (label l), else a CutMix box. For a
box, each sample's pasted weight is (box area fraction + share of the CLS attention A on pasted tokens) / 2,
where A is the last block's CLS row of the MIXED forward pass and a token counts as pasted when its top-left
pixel lies in the box.
"""

from __future__ import annotations

import numpy as np
import torch

from memix.mixing.base import Mixer, MixPlan, blend, full_lam, random_perm
from memix.mixing.cutmix import box_area_fraction, box_mask, draw_box


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
        alpha = self.params.alpha
        batch = x.shape[0]
        grid = self._grid(x)
        use_mixup = bool(rng.random() < self.params.mixup_prob)
        lam = float(rng.beta(alpha, alpha))
        if use_mixup:
            perm = random_perm(rng, batch, x.device)
            return MixPlan(
                x=blend(x, perm, lam), y=y, perm=perm, lam=lam, partner_y=y[perm],
                label_lam=full_lam(lam, batch, x.device), extra={"mode": "mixup"},
            )
        height, width = x.shape[-2:]
        box = draw_box(rng, lam, height, width)
        perm = random_perm(rng, batch, x.device)
        mask = box_mask(box, height, width, x.device)
        tokens = pasted_tokens(box, grid, self.patch_size, x.device)
        return MixPlan(
            x=torch.where(mask, x[perm], x), y=y, perm=perm, lam=1.0 - box_area_fraction(box, height, width),
            partner_y=y[perm], mask=mask, box=box, token_mask=tokens[None].expand(batch, -1),
            extra={"mode": "cutmix"},
        )

    def _label_lam(self, plan: MixPlan, attention: torch.Tensor | None) -> torch.Tensor:
        if plan.token_mask is None:  # mixup batch: the attention plays no part
            return super()._label_lam(plan, attention)
        attention = self._check_attention(attention, plan)
        total = attention.sum(dim=1).clamp_min(torch.finfo(torch.float32).tiny)
        pasted_attention = (attention * plan.token_mask).sum(dim=1) / total
        pasted = (1.0 - plan.lam + pasted_attention) / 2.0
        return 1.0 - pasted
