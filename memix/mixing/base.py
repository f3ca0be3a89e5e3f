"""The interface every mixing method implements, and the pieces they share (the mixup blend and the CutMix box,
which TransMix and MixAugment build on, live here so no method module imports another).

Two phases, because TransMix and MEMix weight labels by the attention of the mixed forward pass:
``plan = mixer.mix_inputs(x, y, generator)`` mixes the batch and records what it did;
``mixer.mix_targets(plan, attention)`` turns that record into soft targets.

Randomness: every draw of a call comes from one ``numpy.random.Generator`` seeded from the caller's
``torch.Generator`` (numpy's Beta sampler is well-kept and takes a generator; torch's does not). The draws are
B-sized vectors at most, so they cost nothing next to the mixing itself, which runs on the batch's device.
Identical generator states therefore give identical plans on any device.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

if TYPE_CHECKING:
    from pydantic import BaseModel


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


def numpy_rng(generator: torch.Generator) -> np.random.Generator:
    """A numpy generator whose stream is fixed by (and advances) the torch generator's state."""
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    seed = torch.randint(0, 2**62, (1,), generator=generator, device=generator.device)
    return np.random.default_rng(int(seed.item()))


def upload(t: torch.Tensor, device: torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``t`` (host draws) on ``device`` without a host synchronisation: torch waits for the stream after a copy from
    pageable memory, so on a GPU the copy goes through pinned memory, asynchronously (torch keeps the pinned block
    alive until the copy is done)."""
    if dtype is not None and t.dtype != dtype:
        t = t.to(dtype)
    if torch.device(device).type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def smooth_one_hot(y: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """One-hot rows with label smoothing applied first, as every method's targets start from."""
    onehot = torch.nn.functional.one_hot(y, num_classes).to(torch.float32)
    if smoothing:
        onehot = onehot * (1.0 - smoothing) + smoothing / num_classes
    return onehot


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
        self._bind(labels.long(), train_inputs)

    def _bind(self, train_labels: torch.Tensor, train_inputs: torch.Tensor | None) -> None:
        """Hook for methods that keep more of the fold than its class counts."""

    # ------------------------------------------------------------------ phase 1
    def mix_inputs(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> MixPlan:
        """Mix a batch x (B, C, H, W) float with labels y (B,) int64; the record is the returned plan."""
        self._check_batch(x, y)
        return self._mix(x, y, numpy_rng(generator))

    def _mix(self, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator) -> MixPlan:
        raise NotImplementedError

    # ------------------------------------------------------------------ phase 2
    def mix_targets(self, plan: MixPlan, attention: torch.Tensor | None = None) -> torch.Tensor:
        """Soft targets (B, num_classes), each row a distribution, from the plan (and attention if needed)."""
        if self.needs_attention and attention is None:
            raise ValueError(
                f"mixing.{self.name}: mix_targets() needs the attention map (B, P*P) of the mixed forward pass "
                "(run the model with need_attention=True and pass model.cls_attention)"
            )
        own = self._label_lam(plan, attention).to(device=plan.y.device, dtype=torch.float32)
        y_own = smooth_one_hot(plan.y, self.num_classes, self.label_smoothing)
        y_partner = smooth_one_hot(plan.partner_y.to(plan.y.device), self.num_classes, self.label_smoothing)
        return own[:, None] * y_own + (1.0 - own[:, None]) * y_partner

    def _label_lam(self, plan: MixPlan, attention: torch.Tensor | None) -> torch.Tensor:
        if plan.label_lam is None:
            raise RuntimeError(f"mixing.{self.name}: plan carries no label weight")
        return plan.label_lam

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

    def _attention_share(self, attention: torch.Tensor | None, plan: MixPlan) -> torch.Tensor:
        """(B,) share of each sample's CLS attention that falls on ``plan.token_mask`` (TransMix, MEMix)."""
        attention = self._check_attention(attention, plan)
        total = attention.sum(dim=1).clamp_min(torch.finfo(torch.float32).tiny)
        return (attention * plan.token_mask).sum(dim=1) / total


def random_perm(rng: np.random.Generator, batch: int, device: torch.device) -> torch.Tensor:
    """A random partner permutation of the batch (not timm's flip: any sample may pair with any)."""
    return upload(torch.from_numpy(rng.permutation(batch)), device, torch.long)


def full_lam(value: float, batch: int, device: torch.device) -> torch.Tensor:
    return torch.full((batch,), float(value), dtype=torch.float32, device=device)


def blend(x: torch.Tensor, perm: torch.Tensor, lam: float) -> torch.Tensor:
    """lam * x + (1 - lam) * x[perm], the one formula mixup-style methods share (bit-identical across them)."""
    return lam * x + (1.0 - lam) * x[perm]


def mixup_plan(x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator, alpha: float) -> MixPlan:
    """One mixup batch: l ~ Beta(alpha, alpha), then the partner permutation (TransMix's mixup batches too)."""
    lam = float(rng.beta(alpha, alpha))
    perm = random_perm(rng, x.shape[0], x.device)
    return MixPlan(
        x=blend(x, perm, lam), y=y, perm=perm, lam=lam, partner_y=y[perm],
        label_lam=full_lam(lam, x.shape[0], x.device),
    )


def draw_box(rng: np.random.Generator, lam: float, height: int, width: int) -> tuple[int, int, int, int]:
    """Clipped (y0, y1, x0, x1), end-exclusive, of a box with sides sqrt(1 - lam) of the image's."""
    ratio = math.sqrt(max(0.0, 1.0 - lam))
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    y0, x0 = cy - cut_h // 2, cx - cut_w // 2
    y0c, y1c = min(max(y0, 0), height), min(max(y0 + cut_h, 0), height)
    x0c, x1c = min(max(x0, 0), width), min(max(x0 + cut_w, 0), width)
    return y0c, y1c, x0c, x1c


def box_mask(box: tuple[int, int, int, int], height: int, width: int, device: torch.device) -> torch.Tensor:
    """(1, 1, H, W) bool, True inside the box."""
    y0, y1, x0, x1 = box
    rows = torch.arange(height, device=device)
    cols = torch.arange(width, device=device)
    inside = ((rows >= y0) & (rows < y1))[:, None] & ((cols >= x0) & (cols < x1))[None, :]
    return inside[None, None]


def box_area_fraction(box: tuple[int, int, int, int], height: int, width: int) -> float:
    y0, y1, x0, x1 = box
    return (y1 - y0) * (x1 - x0) / float(height * width)


def cutmix_plan(x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator, alpha: float) -> MixPlan:
    """One CutMix batch: l ~ Beta(alpha, alpha), the box, then the partner permutation; the label weight is
    the clipped box's complement (TransMix's box batches start from this plan and re-weight the labels)."""
    height, width = x.shape[-2:]
    lam = float(rng.beta(alpha, alpha))
    box = draw_box(rng, lam, height, width)
    perm = random_perm(rng, x.shape[0], x.device)
    mask = box_mask(box, height, width, x.device)
    lam = 1.0 - box_area_fraction(box, height, width)
    return MixPlan(
        x=torch.where(mask, x[perm], x), y=y, perm=perm, lam=lam, partner_y=y[perm], mask=mask, box=box,
        label_lam=full_lam(lam, x.shape[0], x.device),
    )
