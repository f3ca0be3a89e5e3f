"""The host's part of one fold-batched training step: batch rows and every random draw, padded into one batch.

Why apart from the device's part (:mod:`memix.training.step_core`): everything that consumes a unit's CPU
generators happens here, in one fixed order per step (augmentation of every active unit, then each unit's mixing
draw, then dropout masks), and that order is part of a run's bytes; the device's part then reads no tensor on the
host, so it can be captured as one graph. The padding helpers are shared with test-set prediction
(:mod:`memix.training.heldout`), which pads test chunks the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from memix.mixing.base import MixPlan, upload
from memix.models.grouped import GroupedFlowModel, GroupManifold
from memix.training.augment import Transforms, apply_transforms, draw_transforms
from memix.training.units import UnitState

if TYPE_CHECKING:
    from memix.config import AugmentParams, Params


@dataclass
class StepInputs:
    """What the host prepares for one step (see :meth:`StepPreparation._prepare`); the rest runs on the device."""

    active: list[bool]  # per unit: does it take this step
    sizes: list[int]  # real rows per unit (0: sits out)
    plans: list[MixPlan | None]
    labels: list[torch.Tensor]  # the active units' labels, in order
    x: torch.Tensor  # (G, B, C, H, W) mixed inputs
    clean: torch.Tensor | None  # (G, B, C, H, W) unmixed inputs, for a method with a clean loss term
    face: torch.Tensor | None
    manifold: GroupManifold | None
    dropout: list[dict[str, torch.Tensor] | None]  # per forward pass of the step


def pad_units(xs: Sequence[torch.Tensor | None], rows: int, shape: torch.Size, device: torch.device) -> torch.Tensor:
    """(G, rows, *shape) with each unit's tensor in its first rows and zeros elsewhere (``None``: all zeros)."""
    out = torch.zeros((len(xs), rows, *shape), dtype=torch.float32, device=device)
    for g, x in enumerate(xs):
        if x is not None:
            out[g, : x.shape[0]] = x
    return out


def pad_faces(
    faces: list[torch.Tensor], active: list[bool], rows: int, shape: torch.Size, device: torch.device
) -> torch.Tensor:
    """(G, rows, *shape) onset faces: ``faces`` holds the active units' faces only, in order."""
    out = torch.zeros((len(active), rows, *shape), dtype=torch.float32, device=device)
    it = iter(faces)
    for g, on in enumerate(active):
        if on:
            f = next(it)
            out[g, : f.shape[0]] = f
    return out


def group_manifold(plans: list[MixPlan | None], rows: int, device: torch.device) -> GroupManifold | None:
    """The units' manifold-mixing draws as one :class:`GroupManifold` (identity where a unit mixes no block)."""
    if not any(p is not None and p.manifold is not None for p in plans):
        return None
    block, lam, perm = [], [], []
    for p in plans:
        identity = torch.arange(rows, device=device)
        if p is None or p.manifold is None:
            block.append(-1)
            lam.append(1.0)
            perm.append(identity)
            continue
        block.append(p.manifold.block)
        lam.append(p.manifold.lam)
        n = p.manifold.perm.shape[0]
        perm.append(torch.cat([p.manifold.perm.to(device), identity[n:]]))
    return GroupManifold(
        block=upload(torch.tensor(block, dtype=torch.int64), device),
        lam=upload(torch.tensor(lam, dtype=torch.float32), device),
        perm=torch.stack(perm),
    )


def augment_units(
    states: list[UnitState], xs: list[torch.Tensor], faces: list[torch.Tensor | None], aug: AugmentParams,
    moves: bool, device: torch.device, vectors: bool = True,
) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
    """Each unit draws its own transforms; all of them are applied in one batched pass (``vectors``: x is flow
    with u, v first, else images)."""
    tfs = [draw_transforms(x.shape[0], s.gens["augment"], aug, device) for s, x in zip(states, xs, strict=True)]
    tf = Transforms(
        flip=torch.cat([t.flip for t in tfs]), angle=torch.cat([t.angle for t in tfs]),
        shift=torch.cat([t.shift for t in tfs]),
    )
    face_cat = None if faces[0] is None else torch.cat(faces)  # type: ignore[arg-type]
    out, face_out = apply_transforms(torch.cat(xs), tf, face_cat, moves=moves, vectors=vectors)
    sizes = [x.shape[0] for x in xs]
    new_faces: list[torch.Tensor | None] = (
        list(face_out.split(sizes)) if face_out is not None else [None] * len(xs)
    )
    return list(out.split(sizes)), new_faces


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

    def _prepare(self, step: int) -> StepInputs:
        """The host's part of a step: batch rows, every unit's augmentation, mixing and dropout draws (from its own
        CPU generators, uploaded without waiting), the mixed inputs padded into one (G, B, ...) batch."""
        active = [step < len(s.bounds) for s in self.states]
        batch = self.params.train.batch_size
        xs, ys, faces = [], [], []
        for s, on in zip(self.states, active, strict=True):
            if on:
                lo, hi = s.bounds[step]
                rows = s.epoch_rows[lo:hi]
                xs.append(self.flow.index_select(0, rows))
                ys.append(self.labels.index_select(0, rows))
                faces.append(None if self.faces is None else self.faces.index_select(0, rows))
        if self.augment_on:
            xs, faces = augment_units(
                [s for s, on in zip(self.states, active, strict=True) if on], xs, faces, self.params.train.augment,
                self.moves, self.device, self.vectors,
            )
        plans: list[MixPlan | None] = []
        clean: list[torch.Tensor | None] = []
        it = iter(range(len(xs)))
        for s, on in zip(self.states, active, strict=True):
            if not on:
                plans.append(None)
                clean.append(None)
                continue
            j = next(it)
            x = s.normalise(xs[j])
            clean.append(x)
            plans.append(s.mixer.mix_inputs(x, ys[j], s.gens["mix"]))
        sizes = [0 if p is None else p.x.shape[0] for p in plans]
        clean_loss = self.states[0].mixer.clean_loss
        shape = self.flow.shape[1:]
        return StepInputs(
            active=active, sizes=sizes, plans=plans, labels=ys,
            x=pad_units([None if p is None else p.x for p in plans], batch, shape, self.device),
            clean=pad_units(clean, batch, shape, self.device) if clean_loss else None,
            face=None if self.faces is None else pad_faces(
                faces, active, batch, self.faces.shape[1:], self.device  # type: ignore[arg-type]
            ),
            manifold=group_manifold(plans, batch, self.device),
            dropout=[self.model.draw_dropout(sizes, batch) for _ in range(2 if clean_loss else 1)],
        )
