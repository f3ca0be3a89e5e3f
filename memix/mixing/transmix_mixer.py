"""TransMix (Chen et al., CVPR 2022): a CutMix box whose label weight is re-read from the ViT's attention.

Per batch, with probability ``mixup_prob`` the batch is a plain mixup (label l), else a CutMix box. For a
box, each sample's pasted weight is (box area fraction + share of the CLS attention A on pasted tokens) / 2,
where A is the last block's CLS row of the MIXED forward pass and a token counts as pasted when its top-left
pixel lies in the box. In a group each unit takes its own branch; both are computed and one kept per unit.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from memix.mixing.base import Draw, GroupBinding, GroupDraws, GroupPlan, Mixer, MixPlan, cutmix_draw, mixup_draw
from memix.mixing.batched import blend, box_masks, partner_rows, pasted_token_masks, unit_view


class TransmixMixer(Mixer):
    name = "transmix"
    needs_attention = True

    def draw(self, rng: np.random.Generator, batch: int, height: int, width: int) -> Draw:
        if rng.random() < self.params.mixup_prob:
            return mixup_draw(rng, batch, self.params.alpha)
        return cutmix_draw(rng, batch, height, width, self.params.alpha)

    def mix_group(self, x: torch.Tensor, y: torch.Tensor, draws: GroupDraws, binding: GroupBinding) -> GroupPlan:
        height, width = x.shape[-2:]
        partner = partner_rows(x, draws)
        mask = box_masks(draws.box, height, width)
        boxed = torch.where(mask, partner, x)
        mixed = torch.where(unit_view(draws.is_box, x.ndim), boxed, blend(x, partner, draws))
        tokens = pasted_token_masks(draws.box, (height // self.patch_size, width // self.patch_size), self.patch_size)
        return GroupPlan(x=mixed, y=y, partner_y=y.gather(1, draws.perm), draws=draws, mask=mask, token_mask=tokens)

    def _group_own(self, plan: GroupPlan, attention: torch.Tensor | None) -> torch.Tensor:
        d = plan.draws
        pasted = (d.om[:, None] + self._attention_share(attention, plan)) / 2.0
        return torch.where(d.is_box[:, None], 1.0 - pasted, d.lam[:, None])

    def _unit_plan(self, plan: GroupPlan, draw: Draw, x: torch.Tensor) -> MixPlan:
        unit = super()._unit_plan(plan, draw, x)
        if draw.is_box:
            return unit
        own = plan.draws.lam[:1].expand(draw.n)  # a mixup batch: the attention plays no part
        return dataclasses.replace(unit, mask=None, token_mask=None, label_lam=own)
