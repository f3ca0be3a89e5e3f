"""No mixing: the baseline. Targets are the (smoothed) one-hot labels."""

from __future__ import annotations

import torch

from memix.mixing.base import GroupBinding, GroupDraws, GroupPlan, Mixer


class NoneMixer(Mixer):
    """Identity: the batch goes through untouched."""

    name = "none"

    def mix_group(self, x: torch.Tensor, y: torch.Tensor, draws: GroupDraws, binding: GroupBinding) -> GroupPlan:
        return GroupPlan(x=x, y=y, partner_y=y, draws=draws, own=draws.lam[:, None].expand_as(y))
