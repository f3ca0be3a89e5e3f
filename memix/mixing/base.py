"""The interface every mixing method implements, and the pieces they share (the mixup draw and the CutMix box,
which TransMix and MixAugment build on, live here so no method module imports another).

Two phases, because TransMix and MEMix weight labels by the attention of the mixed forward pass:
``plan = mixer.mix_inputs(x, y, generator)`` mixes the batch and records what it did;
``mixer.mix_targets(plan, attention)`` turns that record into soft targets.
Each phase is the batched group form (:mod:`memix.mixing.batched`) run on a group of one: a method implements
``draw`` (host), ``mix_group`` (device, (G, B, ...) tensors) and, where the label weight needs the attention,
``_group_own``; the fold-batched trainer calls those for all its units at once.

Randomness: every draw of a call comes from one ``numpy.random.Generator`` seeded from the caller's
``torch.Generator`` (numpy's Beta sampler is well-kept and takes a generator; torch's does not). The draws are
B-sized vectors at most, so they cost nothing next to the mixing itself, which runs on the batch's device.
Identical generator states therefore give identical plans on any device.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from memix.mixing.batched import (
    Draw,
    GroupDraws,
    GroupPlan,
    attention_share,
    blend,
    partner_rows,
    smooth_one_hot,
    soft_targets,
    stack_draws,
    upload,
)

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = [
    "Draw", "GroupBinding", "GroupDraws", "GroupPlan", "ManifoldPlan", "MixPlan", "Mixer", "box_area_fraction",
    "cutmix_draw", "draw_box", "group_binding", "mixup_draw", "mixup_group", "numpy_rng", "smooth_one_hot", "upload",
]


@dataclasses.dataclass(frozen=True)
class ManifoldPlan:
    """What the model needs to mix hidden tokens: mix after ``block`` (0 = the input tokens)."""

    block: int
    lam: float
    perm: torch.Tensor


@dataclasses.dataclass
class MixPlan:
    """What one ``mix_inputs`` call did, kept so targets, tests and figures can be derived from it.

    ``lam`` is the weight of each sample's OWN content in the input blend (1.0 = untouched); for MEMix it is
    l_m, the blend inside the salient patches; for balanced mixup it is 1 - l with l ~ Beta(a, 1).
    ``partner_y`` are the labels the partner content came from (``y[perm]``, or the balanced batch's).
    """

    x: torch.Tensor
    y: torch.Tensor
    perm: torch.Tensor | None
    lam: float
    partner_y: torch.Tensor
    mask: torch.Tensor | None = None
    """(B or 1, 1, H, W) bool: pixels that received partner content (cutmix box, MEMix patches)."""
    token_mask: torch.Tensor | None = None
    """(B, P*P) bool: patch tokens counted as pasted / mixed, row-major over the patch grid."""
    label_lam: torch.Tensor | None = None
    """(B,) own-label weight when it is known at mixing time (every method but transmix-box and memix)."""
    manifold: ManifoldPlan | None = None
    k: torch.Tensor | None = None
    """MEMix: (B,) number of patches mixed per sample."""
    box: tuple[int, int, int, int] | None = None
    """Clipped (y0, y1, x0, x1) pixel box of cutmix/transmix, end-exclusive."""
    partner_index: torch.Tensor | None = None
    """Balanced mixup: rows of the bound training set that formed the balanced batch."""
    group: GroupPlan | None = None
    """The group-of-one plan this one was read from (what ``mix_targets`` works on)."""


@dataclasses.dataclass(frozen=True)
class GroupBinding:
    """What the units of a group were bound to, stacked: class counts (G, K) and, for a method that mixes with its
    fold's inputs, every unit's fold in one bank (unit g's rows start at ``offsets[g]``)."""

    counts: torch.Tensor | None
    inputs: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    offsets: tuple[int, ...] | None = None


def numpy_rng(generator: torch.Generator) -> np.random.Generator:
    """A numpy generator whose stream is fixed by (and advances) the torch generator's state."""
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    seed = torch.randint(0, 2**62, (1,), generator=generator, device=generator.device)
    return np.random.default_rng(int(seed.item()))


class Mixer:
    """Base class: validation, binding to a fold, label smoothing and the two-phase flow."""

    name: ClassVar[str] = ""
    needs_attention: ClassVar[bool] = False
    needs_inputs: ClassVar[bool] = False  # bind() must be given the fold's (normalised) inputs
    clean_loss: ClassVar[bool] = False
    trusted: bool = False
    """Set by the trainer: batches come from the bound fold and attention from the model, so the checks that read
    tensor values (label range, finite attention) are skipped; each would wait for the device every step."""

    def __init__(self, num_classes: int, patch_size: int, label_smoothing: float, params: BaseModel) -> None:
        if num_classes < 1:
            raise ValueError(f"mixing.{self.name}: num_classes must be >= 1, got {num_classes}")
        if patch_size < 1:
            raise ValueError(f"mixing.{self.name}: patch_size must be >= 1, got {patch_size}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"mixing.{self.name}: label_smoothing must be in [0, 1), got {label_smoothing}")
        self.num_classes = num_classes
        self.patch_size = patch_size
        self.label_smoothing = label_smoothing
        self.params = params
        self.class_counts: torch.Tensor | None = None
        self._binding: GroupBinding | None = None
        self._binding_device: torch.device | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_classes={self.num_classes}, patch_size={self.patch_size}, {self.params!r})"

    # ------------------------------------------------------------------ fold binding
    def fit_to_depth(self, depth: int) -> None:
        """Adapt to a model with ``depth`` blocks (manifold mixup drops blocks it does not have)."""

    def bind(self, train_labels: torch.Tensor, train_inputs: torch.Tensor | None = None) -> None:
        """Give the training fold's labels (and inputs) to the mixer; call once per fold."""
        labels = torch.as_tensor(train_labels)
        if labels.ndim != 1 or labels.numel() == 0 or labels.dtype.is_floating_point:
            raise ValueError(
                f"mixing.{self.name}: bind() needs a non-empty 1-D integer label tensor, got "
                f"shape {tuple(labels.shape)} dtype {labels.dtype}"
            )
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= self.num_classes:
            raise ValueError(f"mixing.{self.name}: bind() labels must lie in [0, {self.num_classes}), got [{lo}, {hi}]")
        self.class_counts = torch.bincount(labels.long().cpu(), minlength=self.num_classes)
        self._binding = None
        self._bind(labels.long(), train_inputs)

    def _bind(self, train_labels: torch.Tensor, train_inputs: torch.Tensor | None) -> None:
        """Hook for methods that keep more of the fold than its class counts."""

    # ------------------------------------------------------------------ phase 1
    def mix_inputs(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> MixPlan:
        """Mix a batch x (B, C, H, W) float with labels y (B,) int64; the record is the returned plan."""
        self._check_batch(x, y)
        self._check_unit(x, y)
        if self.needs_attention:
            self._grid(x)
        draw = self.draw(numpy_rng(generator), x.shape[0], x.shape[-2], x.shape[-1])
        if self._binding is None or self._binding_device != x.device:
            self._binding_device = x.device
            self._binding = group_binding([self], x.device)  # once per fold, not per batch
        xg = x[None]
        plan = self.mix_group(xg, y[None], stack_draws([draw], x.shape[0], x.device), self._binding)
        return self._unit_plan(plan, draw, x if plan.x is xg else plan.x[0])

    def draw(self, rng: np.random.Generator, batch: int, height: int, width: int) -> Draw:
        """One unit's draws for a batch of ``batch`` rows (host only: the order of draws is part of a run's bytes)."""
        return Draw(n=batch)

    def mix_group(self, x: torch.Tensor, y: torch.Tensor, draws: GroupDraws, binding: GroupBinding) -> GroupPlan:
        """Mix G units' batches x (G, B, C, H, W), labels y (G, B) as ``draws`` say, all units in one pass."""
        raise NotImplementedError

    def _check_unit(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Hook: checks a method makes of a batch mixed alone (bound fold, shapes)."""

    def _unit_plan(self, plan: GroupPlan, draw: Draw, x: torch.Tensor) -> MixPlan:
        """Unit 0 of a group-of-one plan, as the per-batch record."""
        d = plan.draws
        perm = None if draw.index is not None else d.perm[0]
        return MixPlan(
            x=x, y=plan.y[0], perm=perm, lam=draw.lam, partner_y=plan.partner_y[0],
            mask=None if plan.mask is None else plan.mask[0],
            token_mask=None if plan.token_mask is None else plan.token_mask[0].expand(draw.n, -1),
            label_lam=None if plan.own is None else plan.own[0],
            manifold=None if plan.manifold is None else ManifoldPlan(draw.block, draw.lam, d.perm[0]),
            k=None if draw.k is None else d.k[0], box=draw.box,
            partner_index=None if draw.index is None else d.index[0], group=plan,
        )

    # ------------------------------------------------------------------ phase 2
    def mix_targets(self, plan: MixPlan, attention: torch.Tensor | None = None) -> torch.Tensor:
        """Soft targets (B, num_classes), each row a distribution, from the plan (and attention if needed)."""
        if plan.group is None:
            raise ValueError(f"mixing.{self.name}: mix_targets() needs a plan made by mix_inputs()")
        if attention is not None and plan.token_mask is not None:
            attention = self._check_attention(attention, plan)
        return self.group_targets(plan.group, None if attention is None else attention[None])[0]

    def group_targets(self, plan: GroupPlan, attention: torch.Tensor | None = None) -> torch.Tensor:
        """Soft targets (G, B, num_classes) of every unit at once; ``attention``: (G, B, P*P) of the mixed pass."""
        self._need_attention(attention)
        own = self._group_own(plan, attention)
        return soft_targets(plan.y, plan.partner_y, own, self.num_classes, self.label_smoothing)

    def _group_own(self, plan: GroupPlan, attention: torch.Tensor | None) -> torch.Tensor:
        """(G, B) weight of each row's own label."""
        if plan.own is None:
            raise RuntimeError(f"mixing.{self.name}: plan carries no label weight")
        return plan.own

    def _need_attention(self, attention: torch.Tensor | None) -> None:
        if self.needs_attention and attention is None:
            raise ValueError(
                f"mixing.{self.name}: mix_targets() needs the attention map (B, P*P) of the mixed forward pass "
                "(run the model with need_attention=True and pass model.cls_attention)"
            )

    # ------------------------------------------------------------------ helpers
    def _check_batch(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.dtype.is_floating_point:
            got = f"shape {tuple(x.shape)} dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"mixing.{self.name}: x must be a float tensor (B, C, H, W), got {got}")
        if not isinstance(y, torch.Tensor) or y.ndim != 1 or y.dtype != torch.int64 or y.shape[0] != x.shape[0]:
            got = f"shape {tuple(y.shape)} dtype {y.dtype}" if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(f"mixing.{self.name}: y must be int64 of shape ({x.shape[0]},) to match x, got {got}")
        if x.shape[0] == 0:
            raise ValueError(f"mixing.{self.name}: empty batch")
        if self.trusted:
            return
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= self.num_classes:
            raise ValueError(f"mixing.{self.name}: labels must lie in [0, {self.num_classes}), got [{lo}, {hi}]")

    def _grid(self, x: torch.Tensor) -> tuple[int, int]:
        """Patch grid (rows, cols) of x; the image must tile exactly into patches."""
        h, w = x.shape[-2:]
        p = self.patch_size
        if h % p or w % p:
            raise ValueError(
                f"mixing.{self.name}: image size {h}x{w} is not a multiple of the patch size {p} "
                "(patch_size must be the model's)"
            )
        return h // p, w // p

    def _check_attention(self, attention: torch.Tensor, plan: MixPlan) -> torch.Tensor:
        n = plan.token_mask.shape[1] if plan.token_mask is not None else None
        b = plan.x.shape[0]
        if not isinstance(attention, torch.Tensor) or attention.shape != (b, n):
            got = tuple(attention.shape) if isinstance(attention, torch.Tensor) else type(attention).__name__
            raise ValueError(
                f"mixing.{self.name}: attention must be (B, P*P) = ({b}, {n}) for patch size {self.patch_size}, "
                f"got {got}"
            )
        attention = attention.detach().to(device=plan.x.device, dtype=torch.float32)
        bad = not self.trusted and (not bool(torch.isfinite(attention).all()) or bool((attention < 0).any()))
        if bad:
            raise ValueError(f"mixing.{self.name}: attention must be finite and non-negative")
        return attention

    def _attention_share(self, attention: torch.Tensor | None, plan: GroupPlan) -> torch.Tensor:
        """(G, B) share of each row's CLS attention that falls on ``plan.token_mask`` (TransMix, MEMix)."""
        if attention is None or plan.token_mask is None:
            raise RuntimeError(f"mixing.{self.name}: the attention share needs attention and a token mask")
        return attention_share(attention, plan.token_mask)


def group_binding(mixers: Sequence[Mixer], device: torch.device) -> GroupBinding:
    """The bound folds of a group's mixers (one per unit, all of one method) stacked for :meth:`Mixer.mix_group`.

    A method that mixes with its fold's inputs gets one bank of every unit's fold; each mixer's own inputs become
    a view into it, so the group holds each fold once."""
    bound = all(m.class_counts is not None for m in mixers)  # mixup and the like also mix unbound batches
    counts = upload(torch.stack([m.class_counts for m in mixers]), device) if bound else None
    if not mixers[0].needs_inputs:
        return GroupBinding(counts=counts)
    labels = torch.cat([m.train_labels.to(device) for m in mixers])  # type: ignore[attr-defined]
    if len(mixers) == 1:  # the fold itself is the bank (no copy where it already lies on the device)
        bank = mixers[0].train_inputs.to(device)  # type: ignore[attr-defined]
        mixers[0].train_inputs = bank  # type: ignore[attr-defined]
        return GroupBinding(counts=counts, inputs=bank, labels=labels, offsets=(0,))
    first = mixers[0].train_inputs  # type: ignore[attr-defined]  # every fold: rows of one flow set
    rows = sum(m.train_inputs.shape[0] for m in mixers)  # type: ignore[attr-defined]
    inputs = torch.empty((rows, *first.shape[1:]), dtype=first.dtype, device=device)
    offsets, start = [], 0
    for m in mixers:  # each fold is copied in and the mixer's own tensor dropped at once: no fold is held twice
        n = m.train_inputs.shape[0]  # type: ignore[attr-defined]
        view = inputs[start:start + n]
        view.copy_(m.train_inputs)  # type: ignore[attr-defined]
        m.train_inputs = view  # type: ignore[attr-defined]
        offsets.append(start)
        start += n
    return GroupBinding(counts=counts, inputs=inputs, labels=labels, offsets=tuple(offsets))


def mixup_draw(rng: np.random.Generator, batch: int, alpha: float) -> Draw:
    """One mixup batch: l ~ Beta(alpha, alpha), then the partner permutation (TransMix's mixup batches too)."""
    lam = float(rng.beta(alpha, alpha))
    return Draw(n=batch, lam=lam, a=lam, b=1.0 - lam, perm=rng.permutation(batch))


def mixup_group(x: torch.Tensor, y: torch.Tensor, draws: GroupDraws) -> GroupPlan:
    """Every unit's mixup batch at once: x' = lam * x + (1 - lam) * x[perm], own-label weight lam."""
    return GroupPlan(
        x=blend(x, partner_rows(x, draws), draws), y=y, partner_y=y.gather(1, draws.perm), draws=draws,
        own=draws.lam[:, None].expand_as(y),
    )


def cutmix_draw(rng: np.random.Generator, batch: int, height: int, width: int, alpha: float) -> Draw:
    """One CutMix batch: l ~ Beta(alpha, alpha), the box, then the partner permutation; the label weight is the
    clipped box's complement (TransMix's box batches start from this draw and re-weight the labels)."""
    lam = float(rng.beta(alpha, alpha))
    box = draw_box(rng, lam, height, width)
    perm = rng.permutation(batch)
    lam = 1.0 - box_area_fraction(box, height, width)
    return Draw(n=batch, lam=lam, a=0.0, b=1.0, perm=perm, box=box, is_box=True)


def draw_box(rng: np.random.Generator, lam: float, height: int, width: int) -> tuple[int, int, int, int]:
    """Clipped (y0, y1, x0, x1), end-exclusive, of a box with sides sqrt(1 - lam) of the image's."""
    ratio = math.sqrt(max(0.0, 1.0 - lam))
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    y0, x0 = cy - cut_h // 2, cx - cut_w // 2
    y0c, y1c = min(max(y0, 0), height), min(max(y0 + cut_h, 0), height)
    x0c, x1c = min(max(x0, 0), width), min(max(x0 + cut_w, 0), width)
    return y0c, y1c, x0c, x1c


def box_area_fraction(box: tuple[int, int, int, int], height: int, width: int) -> float:
    y0, y1, x0, x1 = box
    return (y1 - y0) * (x1 - x0) / float(height * width)
