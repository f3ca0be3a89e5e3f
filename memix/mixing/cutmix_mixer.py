"""CutMix (Yun et al., ICCV 2019): one box per batch filled from the partner, l corrected to the clipped box.

Box: side ratio sqrt(1 - l) of each image side (floored to pixels), centre uniform over the pixels, then
clipped to the image; the label weight is 1 - clipped area / (H*W). timm's ``cutmix_bbox_and_lam`` draws from
numpy's global RNG and timm's ``Mixup`` pairs with the flipped batch, so neither is reused.
"""

from __future__ import annotations

import numpy as np
import torch

from memix.mixing.base import Mixer, MixPlan, cutmix_plan


class CutmixMixer(Mixer):
    name = "cutmix"

    def _mix(self, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator) -> MixPlan:
        return cutmix_plan(x, y, rng, self.params.alpha)
