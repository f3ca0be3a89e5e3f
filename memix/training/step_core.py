"""The device's part of one fold-batched training step: forward, mixing targets, losses, backward, updates.

Why apart from the host's part (:mod:`memix.training.step_prepare`): this part consumes no random draw and reads
no tensor back on the host, so it can run as one captured graph (tests compile it with
``torch.compile(fullgraph=True)``); keeping it on its own makes that property easy to see and keep.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from memix.models.grouped import GroupedFlowModel
from memix.training.optim import GroupedAdam
from memix.training.step_prepare import StepInputs
from memix.training.units import UnitState

if TYPE_CHECKING:
    from memix.config import Params


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """mean over the batch of sum_k -t_k log softmax(logits)_k, in float32."""
    return -(targets * F.log_softmax(logits.float(), dim=-1)).sum(dim=-1).mean()


class StepCore:
    """The device's half of :class:`memix.training.loop.GroupTrainer`'s step; reads the trainer's attributes below."""

    params: Params
    states: list[UnitState]
    model: GroupedFlowModel
    forward: Callable[..., torch.Tensor]  # the grouped model, compiled or not
    loss_graph: Callable[[StepInputs], torch.Tensor]  # _loss, compiled or not
    opt: GroupedAdam
    autocast: Callable[[], Any]

    def _core(self, inp: StepInputs) -> None:
        """The device's part of a step, one graph (tests capture it with ``torch.compile(fullgraph=True)``):
        forward, mixing targets, loss, backward and every unit's optimizer update; no tensor is read on the host."""
        self.opt.zero_grad()
        self.loss_graph(inp).backward()
        self.opt.step(inp.active)

    def _loss(self, inp: StepInputs) -> torch.Tensor:
        """Forward, mixing targets and the summed loss of every unit that takes the step (what ``train.compile``
        compiles: autograd then records forward and backward as one joint graph)."""
        mixer = self.states[0].mixer
        sizes = inp.sizes
        with self.autocast():
            logits = self.forward(inp.x, face=inp.face, rows=sizes, manifold=inp.manifold,
                                  need_attention=mixer.needs_attention, dropout=inp.dropout[0])
            attention = self.model.cls_attention if mixer.needs_attention else None
            clean_logits = None
            if inp.clean is not None:
                clean_logits = self.forward(inp.clean, face=inp.face, rows=sizes, dropout=inp.dropout[1])
            losses = []
            j = 0
            for g, (s, plan) in enumerate(zip(self.states, inp.plans, strict=True)):
                if plan is None:
                    continue
                n = sizes[g]
                targets = s.mixer.mix_targets(plan, None if attention is None else attention[g, :n])
                loss = soft_cross_entropy(logits[g, :n], targets)
                if clean_logits is not None:
                    loss = loss + F.cross_entropy(
                        clean_logits[g, :n].float(), inp.labels[j], label_smoothing=self.params.train.label_smoothing
                    )
                losses.append(loss)
                s.sums["loss"] += loss.detach() * n
                s.sums["correct"] += (logits[g, :n].detach().argmax(-1) == targets.argmax(-1)).sum()
                s.sums["seen"] += n
                j += 1
        return torch.stack(losses).sum()
