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

from memix.mixing.batched import masked_mean
from memix.models.grouped import GroupedFlowModel
from memix.training.optim import GroupedAdam
from memix.training.step_prepare import StepInputs
from memix.training.units import UnitState

if TYPE_CHECKING:
    from memix.config import Params


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """mean over the batch of sum_k -t_k log softmax(logits)_k, in float32."""
    return soft_cross_entropy_rows(logits, targets).mean()


def soft_cross_entropy_rows(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """sum_k -t_k log softmax(logits)_k per row (any leading shape), in float32."""
    return -(targets * F.log_softmax(logits.float(), dim=-1)).sum(dim=-1)


class StepCore:
    """The device's half of :class:`memix.training.loop.GroupTrainer`'s step; reads the trainer's attributes below."""

    params: Params
    states: list[UnitState]
    model: GroupedFlowModel
    forward: Callable[..., torch.Tensor]  # the grouped model, compiled or not
    loss_graph: Callable[[StepInputs], torch.Tensor]  # _loss, compiled or not
    opt: GroupedAdam
    autocast: Callable[[], Any]
    sums: dict[str, torch.Tensor]  # (G,) this epoch's loss * rows and correct rows per unit

    def _core(self, inp: StepInputs) -> None:
        """The device's part of a step, one graph (tests capture it with ``torch.compile(fullgraph=True)``):
        forward, mixing targets, loss, backward and every unit's optimizer update; no tensor is read on the host."""
        self.opt.zero_grad()
        self.loss_graph(inp).backward()
        self.opt.step(inp.active)

    def _loss(self, inp: StepInputs) -> torch.Tensor:
        """Forward, mixing targets and the summed loss of every unit that takes the step (what ``train.compile``
        compiles: autograd then records forward and backward as one joint graph). Targets and cross-entropy run
        once over all G * B rows; each unit's loss is the mean over its real rows, so its gradient is its own."""
        mixer = self.states[0].mixer
        valid = inp.plan.draws.valid
        with self.autocast():
            logits = self.forward(inp.x, face=inp.face, rows=inp.sizes, manifold=inp.manifold,
                                  need_attention=mixer.needs_attention, dropout=inp.dropout[0])
            attention = self.model.cls_attention if mixer.needs_attention else None
            targets = mixer.group_targets(inp.plan, attention)
            loss = masked_mean(soft_cross_entropy_rows(logits, targets), valid, inp.counts)  # (G,)
            if inp.clean is not None:
                clean_logits = self.forward(inp.clean, face=inp.face, rows=inp.sizes, dropout=inp.dropout[1])
                clean = F.cross_entropy(
                    clean_logits.flatten(0, 1).float(), inp.labels.flatten(), reduction="none",
                    label_smoothing=self.params.train.label_smoothing,
                )
                loss = loss + masked_mean(clean.view(inp.labels.shape), valid, inp.counts)
            self.sums["loss"] += loss.detach() * inp.counts
            self.sums["correct"] += ((logits.detach().argmax(-1) == targets.argmax(-1)) & valid).sum(-1)
        return loss.sum()
