"""CutMix (Yun et al., ICCV 2019): one box per batch filled from the partner, l corrected to the clipped box.

Box: side ratio sqrt(1 - l) of each image side (floored to pixels), centre uniform over the pixels, then
clipped to the image; the label weight is 1 - clipped area / (H*W). timm's ``cutmix_bbox_and_lam`` draws from
numpy's global RNG and timm's ``Mixup`` pairs with the flipped batch, so neither is reused.
"""

from __future__ import annotations

import numpy as np
import torch

from memix.mixing.base import Draw, GroupBinding, GroupDraws, GroupPlan, Mixer, cutmix_draw
from memix.mixing.batched import box_masks, partner_rows


class CutmixMixer(Mixer):
    name = "cutmix"

    def draw(self, rng: np.random.Generator, batch: int, height: int, width: int) -> Draw:
        return cutmix_draw(rng, batch, height, width, self.params.alpha)

    def mix_group(self, x: torch.Tensor, y: torch.Tensor, draws: GroupDraws, binding: GroupBinding) -> GroupPlan:
        mask = box_masks(draws.box, x.shape[-2], x.shape[-1])  # every unit's box in one op chain
        return GroupPlan(
            x=torch.where(mask, partner_rows(x, draws), x), y=y, partner_y=y.gather(1, draws.perm), draws=draws,
            own=draws.lam[:, None].expand_as(y), mask=mask,
        )
