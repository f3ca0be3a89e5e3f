"""Remix (Chou et al., ECCV-W 2020): mixup inputs, labels pushed towards the minority class of each pair.

With the training fold's class counts n, for the pair (i, j = pi(i)) and the batch's l:
l_y = 0 if n_i / n_j >= kappa and l < tau; l_y = 1 if n_i / n_j <= 1/kappa and 1 - l < tau; else l_y = l.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from memix.mixing.base import Draw, GroupBinding, GroupDraws, GroupPlan, Mixer, mixup_draw, mixup_group


def remix_label_lam(
    lam: float | torch.Tensor, counts_own: torch.Tensor, counts_partner: torch.Tensor, kappa: float, tau: float
) -> torch.Tensor:
    """Per-pair own-label weight from the pair's class counts (the Remix rules); ``lam`` a float or a float64
    tensor that broadcasts against the counts (a group: (G, 1))."""
    ratio = counts_own.to(torch.float64) / counts_partner.to(torch.float64)
    lam = torch.as_tensor(lam, dtype=torch.float64, device=ratio.device)
    out = lam.to(torch.float32).expand(ratio.shape)
    out = torch.where((ratio >= kappa) & (lam < tau), torch.zeros_like(out), out)
    out = torch.where((ratio <= 1.0 / kappa) & (1.0 - lam < tau), torch.ones_like(out), out)
    return out


class RemixMixer(Mixer):
    name = "remix"

    def _check_unit(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if self.class_counts is None:
            raise RuntimeError("mixing.remix: call bind(train_labels) with the training fold's labels first")
        if self.trusted:
            return
        counts = self.class_counts.to(y.device)
        missing = torch.unique(y[counts[y] == 0])
        if missing.numel():
            raise ValueError(f"mixing.remix: batch holds classes {missing.tolist()} absent from the bound fold")

    def draw(self, rng: np.random.Generator, batch: int, height: int, width: int) -> Draw:
        return mixup_draw(rng, batch, self.params.alpha)

    def mix_group(self, x: torch.Tensor, y: torch.Tensor, draws: GroupDraws, binding: GroupBinding) -> GroupPlan:
        if binding.counts is None:
            raise RuntimeError("mixing.remix: call bind(train_labels) with the training fold's labels first")
        plan = mixup_group(x, y, draws)
        own = remix_label_lam(
            draws.lam64[:, None], binding.counts.gather(1, y), binding.counts.gather(1, plan.partner_y),
            self.params.kappa, self.params.tau,
        )
        return dataclasses.replace(plan, own=own)
