"""Adam / AdamW over stacked unit weights, where a unit can sit a step out.

In a fold-batched step every weight has a leading unit axis (G, ...). Units train on different numbers of clips, so
near the end of an epoch some units have no batch left: for them this step must not exist (no moment decay, no
weight decay, no step count), exactly as if each unit had its own ``torch.optim.AdamW``. Each unit keeps its own
step count, hence its own bias correction. The arithmetic follows torch's implementation term by term.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch


class GroupedAdam:
    """``torch.optim.Adam`` (``decoupled=False``) or ``AdamW`` (``decoupled=True``) per unit, units masked per step."""

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        units: int,
        lr: float,
        weight_decay: float,
        decoupled: bool,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params = [p for p in params if p.requires_grad]
        for p in self.params:
            if p.shape[0] != units:
                raise ValueError(f"every parameter needs a leading unit axis of {units}, got shape {tuple(p.shape)}")
        self.units = units
        self.lr, self.weight_decay, self.decoupled = lr, weight_decay, decoupled
        self.betas, self.eps = betas, eps
        self.steps = [0] * units
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, active: Sequence[bool]) -> None:
        """Update the units whose ``active`` flag is set; the others keep weights, moments and step count."""
        if len(active) != self.units:
            raise ValueError(f"step() needs one flag per unit ({self.units}), got {len(active)}")
        on = [g for g in range(self.units) if active[g]]
        if not on:
            return
        for g in on:
            self.steps[g] += 1
        beta1, beta2 = self.betas
        device = self.params[0].device
        mask = torch.tensor(list(active), device=device)
        # per-unit scalars computed on the host in double precision, as torch does with Python floats
        bc1 = [1 - beta1 ** max(s, 1) for s in self.steps]
        bc2_sqrt = [math.sqrt(1 - beta2 ** max(s, 1)) for s in self.steps]
        step_size = torch.tensor([self.lr / b for b in bc1], device=device)
        bc2_sqrt_t = torch.tensor(bc2_sqrt, device=device)
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq, strict=True):
            if p.grad is None:  # as torch: a parameter without a gradient is left alone
                continue
            grad = p.grad
            shape = (-1,) + (1,) * (p.ndim - 1)
            keep = mask.view(shape)
            if self.weight_decay:
                if self.decoupled:
                    new_p = p * (1 - self.lr * self.weight_decay)
                else:
                    new_p = p
                    grad = grad.add(p, alpha=self.weight_decay)
            else:
                new_p = p
            new_m = m.lerp(grad, 1 - beta1)
            new_v = v.mul(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = (new_v.sqrt() / bc2_sqrt_t.to(p.dtype).view(shape)).add_(self.eps)
            new_p = new_p + (-step_size.to(p.dtype).view(shape) * new_m) / denom  # torch's addcdiv order
            p.copy_(torch.where(keep, new_p, p))
            m.copy_(torch.where(keep, new_m, m))
            v.copy_(torch.where(keep, new_v, v))

    def state_dict(self) -> dict[str, Any]:
        return {
            "steps": torch.tensor(self.steps, dtype=torch.int64),
            "exp_avg": [m.detach().cpu() for m in self.exp_avg],
            "exp_avg_sq": [v.detach().cpu() for v in self.exp_avg_sq],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = [int(s) for s in state["steps"].tolist()]
        for dst, src in zip(self.exp_avg + self.exp_avg_sq, state["exp_avg"] + state["exp_avg_sq"], strict=True):
            dst.copy_(src.to(dst.device))
