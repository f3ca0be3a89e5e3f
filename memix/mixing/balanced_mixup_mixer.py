"""Balanced-MixUp (Galdran et al., MICCAI 2021): blend the natural batch with a class-balanced one.

The balanced batch is drawn with replacement from the bound training fold with sampler weight 1/n_c per
sample (so every class is equally likely); x' = (1 - l) * x_nat + l * x_bal and the same l for labels,
l ~ Beta(a, 1). ``plan.lam`` is the natural sample's weight, 1 - l. (This is the method the MEMix README
links as "Remix".) The bound inputs must be in the same space as the batches (normalised the same way).
"""

from __future__ import annotations

import numpy as np
import torch

from memix.mixing.base import Draw, GroupBinding, GroupDraws, GroupPlan, Mixer
from memix.mixing.batched import blend


def balanced_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Sampling probability per sample, 1/n_c normalised: each present class gets an equal share."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = 1.0 / counts[labels]
    return weights / weights.sum()


class BalancedMixupMixer(Mixer):
    name = "balanced_mixup"
    needs_inputs = True

    def _bind(self, train_labels: torch.Tensor, train_inputs: torch.Tensor | None) -> None:
        if train_inputs is None:
            raise ValueError(
                "mixing.balanced_mixup: bind() needs the fold's inputs too: bind(train_labels, train_inputs)"
            )
        if train_inputs.ndim != 4 or train_inputs.shape[0] != train_labels.shape[0]:
            raise ValueError(
                f"mixing.balanced_mixup: train_inputs must be (N, C, H, W) with N = {train_labels.shape[0]} labels, "
                f"got {tuple(train_inputs.shape)}"
            )
        self.train_inputs = train_inputs
        self.train_labels = train_labels
        self.weights = balanced_weights(train_labels.cpu().numpy(), self.num_classes)

    def draw_balanced(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Indices into the bound fold of a class-balanced sample, with replacement."""
        return rng.choice(len(self.weights), size=size, replace=True, p=self.weights)

    def _check_unit(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if self.class_counts is None or not hasattr(self, "train_inputs"):
            raise RuntimeError(
                "mixing.balanced_mixup: call bind(train_labels, train_inputs) with the training fold first"
            )
        if self.train_inputs.shape[1:] != x.shape[1:]:
            raise ValueError(
                f"mixing.balanced_mixup: batch shape {tuple(x.shape[1:])} differs from the bound inputs "
                f"{tuple(self.train_inputs.shape[1:])}"
            )

    def draw(self, rng: np.random.Generator, batch: int, height: int, width: int) -> Draw:
        l_bal = float(rng.beta(self.params.alpha, 1.0))
        lam = 1.0 - l_bal
        return Draw(n=batch, lam=lam, a=lam, b=l_bal, index=self.draw_balanced(rng, batch))

    def mix_group(self, x: torch.Tensor, y: torch.Tensor, draws: GroupDraws, binding: GroupBinding) -> GroupPlan:
        if binding.inputs is None or binding.labels is None:
            raise RuntimeError("mixing.balanced_mixup: the group binding holds no fold inputs")
        rows = draws.index.reshape(-1)  # every unit's balanced batch, one gather from the group's bank
        x_bal = binding.inputs.index_select(0, rows).view(x.shape).to(dtype=x.dtype)
        mixed = torch.where(draws.valid[:, :, None, None, None], blend(x, x_bal, draws), x)  # padding stays 0
        return GroupPlan(
            x=mixed, y=y, partner_y=binding.labels.index_select(0, rows).view(y.shape), draws=draws,
            own=draws.lam[:, None].expand_as(y),
        )
