"""The host's part of one fold-batched training step: batch rows and every random draw, padded into one batch.

Why apart from the device's part (:mod:`memix.training.step_core`): everything that consumes a unit's CPU
generators happens here, in one fixed order per step (augmentation of every active unit, then each unit's mixing
draw, then dropout masks), and that order is part of a run's bytes; the device's part then reads no tensor on the
host, so it can be captured as one graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from memix.mixing.base import GroupBinding, numpy_rng, upload
from memix.mixing.batched import GroupManifold, GroupPlan, stack_draws
from memix.models.grouped import GroupedFlowModel
from memix.training.augment import IDENTITY_UNIFORM, apply_transforms, draw_uniform, uniform_transforms
from memix.training.units import UnitState

if TYPE_CHECKING:
    from memix.config import Params


@dataclass
class StepInputs:
    """What the host prepares for one step (see :meth:`StepPreparation._prepare`); the rest runs on the device."""

    active: list[bool]  # per unit: does it take this step
    sizes: list[int]  # real rows per unit (0: sits out)
    plan: GroupPlan  # every unit's mixing at once: (G, B, ...) tensors, padding rows flagged in plan.draws.valid
    labels: torch.Tensor  # (G, B) own labels (padding rows hold some class; the loss masks them)
    counts: torch.Tensor  # (G,) float32 real rows per unit, at least 1 (the loss's divisor)
    x: torch.Tensor  # (G, B, C, H, W) mixed inputs
    clean: torch.Tensor | None  # (G, B, C, H, W) unmixed inputs, for a method with a clean loss term
    face: torch.Tensor | None
    manifold: GroupManifold | None
    dropout: list[dict[str, torch.Tensor] | None]  # per forward pass of the step


class StepPreparation:
    """The host's half of :class:`memix.training.loop.GroupTrainer`'s step; reads the trainer's attributes below."""

    params: Params
    device: torch.device
    flow: torch.Tensor  # (N, C, H, W), the whole flow set on the device
    labels: torch.Tensor
    faces: torch.Tensor | None
    states: list[UnitState]
    model: GroupedFlowModel
    augment_on: bool
    moves: bool
    vectors: bool
    binding: GroupBinding  # the units' bound folds, stacked
    mean: torch.Tensor  # (G, 1, C, 1, 1) each unit's normalisation
    std: torch.Tensor
    table: torch.Tensor  # (G, L) this epoch's rows per unit (:meth:`_epoch_table`)
    seen: list[int]  # rows trained per unit this epoch
    _pads: dict[int, torch.Tensor]

    def _epoch_table(self) -> None:
        """Every unit's epoch order in one (G, L) table of flow rows (L: the longest epoch, in whole batches;
        padding rows point at row 0), so that a step takes all units' rows with one slice and one gather."""
        batch = self.params.train.batch_size
        width = max(-(-len(s.epoch_rows) // batch) for s in self.states) * batch  # type: ignore[arg-type]
        table = torch.zeros((len(self.states), width), dtype=torch.int64, device=self.device)
        for g, s in enumerate(self.states):
            table[g, : len(s.epoch_rows)] = s.epoch_rows  # type: ignore[arg-type]
        self.table = table

    def _uniforms(self, active: list[bool], sizes: list[int], batch: int) -> torch.Tensor:
        """(4, G * B) augmentation uniforms: each active unit's own draw, identity uniforms on padding rows."""
        parts = []
        for s, on, n in zip(self.states, active, sizes, strict=True):
            if on:
                parts.append(draw_uniform(n, s.gens["augment"]))
            if n < batch:
                if batch - n not in self._pads:  # made once per size, not per step
                    self._pads[batch - n] = torch.full((4, batch - n), IDENTITY_UNIFORM, dtype=torch.float64)
                parts.append(self._pads[batch - n])
        return upload(torch.cat(parts, 1), self.device)

    def _prepare(self, step: int) -> StepInputs:
        """The host's part of a step: batch rows, every unit's augmentation, mixing and dropout draws (from its own
        CPU generators, uploaded without waiting), then every unit's batch gathered, augmented, normalised and mixed
        at once as one padded (G, B, ...) batch."""
        active = [step < len(s.bounds) for s in self.states]
        sizes = [s.bounds[step][1] - s.bounds[step][0] if on else 0 for s, on in zip(self.states, active, strict=True)]
        batch = self.params.train.batch_size
        G, shape = len(self.states), self.flow.shape[1:]
        rows = self.table[:, step * batch:(step + 1) * batch].reshape(-1)
        x = self.flow.index_select(0, rows)
        y = self.labels.index_select(0, rows).view(G, batch)
        face = None if self.faces is None else self.faces.index_select(0, rows)
        if self.augment_on:
            tf = uniform_transforms(self._uniforms(active, sizes, batch), self.params.train.augment)
            x, face = apply_transforms(x, tf, face, moves=self.moves, vectors=self.vectors)
        height, width = shape[-2:]
        mixer = self.states[0].mixer
        draws = stack_draws([
            s.mixer.draw(numpy_rng(s.gens["mix"]), n, height, width) if on else None
            for s, on, n in zip(self.states, active, sizes, strict=True)
        ], batch, self.device, self.binding.offsets)
        x = x.view(G, batch, *shape)
        x = torch.where(draws.valid[:, :, None, None, None], (x - self.mean) / self.std, 0.0)  # padding rows: zeros
        plan = mixer.mix_group(x, y, draws, self.binding)
        for g, n in enumerate(sizes):
            self.seen[g] += n
        return StepInputs(
            active=active, sizes=sizes, plan=plan, labels=y, counts=upload(
                torch.tensor([max(n, 1) for n in sizes], dtype=torch.float32), self.device
            ),
            x=plan.x, clean=x if mixer.clean_loss else None,
            face=None if face is None else face.view(G, batch, *face.shape[1:]),
            manifold=plan.manifold,
            dropout=[self.model.draw_dropout(sizes, batch) for _ in range(2 if mixer.clean_loss else 1)],
        )
