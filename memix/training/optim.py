"""Adam / AdamW over stacked unit weights, where a unit can sit a step out.

In a fold-batched step every weight has a leading unit axis (G, ...). Units train on different numbers of clips, so
near the end of an epoch some units have no batch left: for them this step must not exist (no moment decay, no
weight decay, no step count), exactly as if each unit had its own ``torch.optim.AdamW``. Each unit keeps its own
step count, hence its own bias correction.

The update is torch's own fused Adam/AdamW kernel (``torch._fused_adam_`` / ``torch._fused_adamw_``, what
``torch.optim.Adam(fused=True)`` runs) over each active unit's slices of the stacked tensors: one kernel call for the
whole group, one pass over weights, gradients and moments (the same memory traffic as ``Adam(fused=True)``), and each
unit's result is bit for bit that of ``torch.optim.AdamW(fused=True)`` on its own weights. ``fused=False`` keeps the
element-wise formulation that follows torch's foreach implementation term by term (about 16 ops per weight tensor).

Weight decay applies to every parameter unless ``decay`` exempts some, as torch's param groups with
``weight_decay=0`` do (e.g. STSTNet's release decays weights, not biases: ``decay_flags()`` of the grouped model).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from memix.mixing.base import upload


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
        fused: bool = True,
        decay: Sequence[bool] | None = None,
    ) -> None:
        params = list(params)
        flags = [True] * len(params) if decay is None else list(decay)
        if len(flags) != len(params):
            raise ValueError(f"decay needs one flag per parameter ({len(params)}), got {len(flags)}")
        self.params = [p for p in params if p.requires_grad]
        self.decay = [f for p, f in zip(params, flags, strict=True) if p.requires_grad]
        for p in self.params:
            if p.shape[0] != units:
                raise ValueError(f"every parameter needs a leading unit axis of {units}, got shape {tuple(p.shape)}")
        self.units = units
        self.lr, self.weight_decay, self.decoupled = lr, weight_decay, decoupled
        self.betas, self.eps = betas, eps
        self.steps = [0] * units
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.fused = fused
        # per unit: views of its slice of every weight and moment (valid for the tensors' lifetime: all updates
        # are in place), and its step count as a device scalar the fused kernel reads
        self._unit_views = [_per_unit(tensors, units) for tensors in (self.params, self.exp_avg, self.exp_avg_sq)]
        device = self.params[0].device if self.params else None
        self._step_counts = torch.zeros(units, dtype=torch.float32, device=device)

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
        if self.fused:
            self._fused_step(active, on)
            return
        beta1, beta2 = self.betas
        device = self.params[0].device
        mask = upload(torch.tensor(list(active)), device)
        # per-unit scalars computed on the host in double precision, as torch does with Python floats
        bc1 = [1 - beta1 ** max(s, 1) for s in self.steps]
        bc2_sqrt = [math.sqrt(1 - beta2 ** max(s, 1)) for s in self.steps]
        step_size = upload(torch.tensor([self.lr / b for b in bc1]), device)
        bc2_sqrt_t = upload(torch.tensor(bc2_sqrt), device)
        for p, m, v, decays in zip(self.params, self.exp_avg, self.exp_avg_sq, self.decay, strict=True):
            if p.grad is None:  # as torch: a parameter without a gradient is left alone
                continue
            grad = p.grad
            shape = (-1,) + (1,) * (p.ndim - 1)
            keep = mask.view(shape)
            if self.weight_decay and decays:
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

    def _fused_step(self, active: Sequence[bool], on: list[int]) -> None:
        with_grad = [i for i, p in enumerate(self.params) if p.grad is not None]  # as torch: no gradient, no update
        if not with_grad:
            return
        device = self.params[0].device
        self._step_counts.add_(upload(torch.tensor([float(a) for a in active]), device))
        grads = [self.params[i].grad.unbind(0) for i in with_grad]
        steps = self._step_counts.unbind(0)
        weights, avgs, avg_sqs = self._unit_views
        kernel = torch._fused_adamw_ if self.decoupled else torch._fused_adam_
        for decays in (True, False):  # one kernel call per weight decay (one in all when nothing is exempt)
            lists: tuple[list[torch.Tensor], ...] = ([], [], [], [], [])
            for g in on:
                for k, i in enumerate(with_grad):
                    if self.decay[i] != decays:
                        continue
                    lists[0].append(weights[g][i])
                    lists[1].append(grads[k][g])
                    lists[2].append(avgs[g][i])
                    lists[3].append(avg_sqs[g][i])
                    lists[4].append(steps[g])
            if lists[0]:
                kernel(*lists[:4], [], lists[4], lr=self.lr, beta1=self.betas[0], beta2=self.betas[1],
                       weight_decay=self.weight_decay if decays else 0.0, eps=self.eps, amsgrad=False,
                       maximize=False)

    def state_dict(self) -> dict[str, Any]:
        return {
            "steps": torch.tensor(self.steps, dtype=torch.int64),
            "exp_avg": [m.detach().cpu() for m in self.exp_avg],
            "exp_avg_sq": [v.detach().cpu() for v in self.exp_avg_sq],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = [int(s) for s in state["steps"].tolist()]
        self._step_counts.copy_(state["steps"].to(torch.float32))
        for dst, src in zip(self.exp_avg + self.exp_avg_sq, state["exp_avg"] + state["exp_avg_sq"], strict=True):
            dst.copy_(src.to(dst.device))


def _per_unit(tensors: list[torch.Tensor], units: int) -> list[list[torch.Tensor]]:
    """[unit][tensor]: each stacked tensor's slice for each unit, as views sharing its storage."""
    slices = [t.detach().unbind(0) for t in tensors]
    return [[s[g] for s in slices] for g in range(units)]
