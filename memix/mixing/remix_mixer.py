"""Remix (Chou et al., ECCV-W 2020): mixup inputs, labels pushed towards the minority class of each pair.

With the training fold's class counts n, for the pair (i, j = pi(i)) and the batch's l:
l_y = 0 if n_i / n_j >= kappa and l < tau; l_y = 1 if n_i / n_j <= 1/kappa and 1 - l < tau; else l_y = l.
"""

from __future__ import annotations

import numpy as np
import torch

from memix.mixing.base import Mixer, MixPlan, blend, random_perm, upload


def remix_label_lam(
    lam: float, counts_own: torch.Tensor, counts_partner: torch.Tensor, kappa: float, tau: float
) -> torch.Tensor:
    """Per-pair own-label weight from the pair's class counts (the Remix rules)."""
    ratio = counts_own.to(torch.float64) / counts_partner.to(torch.float64)
    out = torch.full(ratio.shape, lam, dtype=torch.float32, device=ratio.device)
    out = torch.where((ratio >= kappa) & (lam < tau), torch.zeros_like(out), out)
    out = torch.where((ratio <= 1.0 / kappa) & (1.0 - lam < tau), torch.ones_like(out), out)
    return out


class RemixMixer(Mixer):
    name = "remix"
    _counts: torch.Tensor | None = None  # class_counts on the batches' device

    def _bind(self, train_labels: torch.Tensor, train_inputs: torch.Tensor | None) -> None:
        self._counts = None

    def _mix(self, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator) -> MixPlan:
        if self.class_counts is None:
            raise RuntimeError("mixing.remix: call bind(train_labels) with the training fold's labels first")
        if self._counts is None or self._counts.device != y.device:
            self._counts = upload(self.class_counts, y.device)  # once per fold, not per step
        counts = self._counts
        missing = None if self.trusted else torch.unique(y[counts[y] == 0])
        if missing is not None and missing.numel():
            raise ValueError(f"mixing.remix: batch holds classes {missing.tolist()} absent from the bound fold")
        alpha = self.params.alpha
        lam = float(rng.beta(alpha, alpha))
        perm = random_perm(rng, x.shape[0], x.device)
        label_lam = remix_label_lam(lam, counts[y], counts[y[perm]], self.params.kappa, self.params.tau)
        return MixPlan(x=blend(x, perm, lam), y=y, perm=perm, lam=lam, partner_y=y[perm], label_lam=label_lam)
