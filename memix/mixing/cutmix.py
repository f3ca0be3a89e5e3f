"""CutMix (Yun et al., ICCV 2019): one box per batch filled from the partner, l corrected to the clipped box.

Box: side ratio sqrt(1 - l) of each image side (floored to pixels), centre uniform over the pixels, then
clipped to the image; the label weight is 1 - clipped area / (H*W). timm's ``cutmix_bbox_and_lam`` draws from
numpy's global RNG and timm's ``Mixup`` pairs with the flipped batch, so neither is reused.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from memix.mixing.base import Mixer, MixPlan, full_lam, random_perm


def draw_box(rng: np.random.Generator, lam: float, height: int, width: int) -> tuple[int, int, int, int]:
    """Clipped (y0, y1, x0, x1), end-exclusive, of a box with sides sqrt(1 - lam) of the image's."""
    ratio = math.sqrt(max(0.0, 1.0 - lam))
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    y0, x0 = cy - cut_h // 2, cx - cut_w // 2
    y0c, y1c = min(max(y0, 0), height), min(max(y0 + cut_h, 0), height)
    x0c, x1c = min(max(x0, 0), width), min(max(x0 + cut_w, 0), width)
    return y0c, y1c, x0c, x1c


def box_mask(box: tuple[int, int, int, int], height: int, width: int, device: torch.device) -> torch.Tensor:
    """(1, 1, H, W) bool, True inside the box."""
    y0, y1, x0, x1 = box
    rows = torch.arange(height, device=device)
    cols = torch.arange(width, device=device)
    inside = ((rows >= y0) & (rows < y1))[:, None] & ((cols >= x0) & (cols < x1))[None, :]
    return inside[None, None]


def box_area_fraction(box: tuple[int, int, int, int], height: int, width: int) -> float:
    y0, y1, x0, x1 = box
    return (y1 - y0) * (x1 - x0) / float(height * width)


def cutmix_plan(x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator, alpha: float) -> MixPlan:
    """One CutMix batch: l ~ Beta(alpha, alpha), the box, then the partner permutation; the label weight is
    the clipped box's complement (TransMix's box batches start from this plan and re-weight the labels)."""
    height, width = x.shape[-2:]
    lam = float(rng.beta(alpha, alpha))
    box = draw_box(rng, lam, height, width)
    perm = random_perm(rng, x.shape[0], x.device)
    mask = box_mask(box, height, width, x.device)
    lam = 1.0 - box_area_fraction(box, height, width)
    return MixPlan(
        x=torch.where(mask, x[perm], x), y=y, perm=perm, lam=lam, partner_y=y[perm], mask=mask, box=box,
        label_lam=full_lam(lam, x.shape[0], x.device),
    )


class CutmixMixer(Mixer):
    name = "cutmix"

    def _mix(self, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator) -> MixPlan:
        return cutmix_plan(x, y, rng, self.params.alpha)
