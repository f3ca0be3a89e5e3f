"""Flow-aware geometric augmentation, batched on the device with an explicit generator.

A flow field is a vector field, so moving its pixels is not enough: a horizontal flip mirrors the field and
negates u; a rotation rotates both the sampling grid and the (u, v) vectors; a translation moves the field
and leaves its values alone. Other channels (optical strain: a rotation-invariant magnitude) only move.
The same geometric transform is applied to a paired onset face when one is given.

Run it on flow in pixel units (or scaled the same for u and v, zero mean), i.e. before per-channel
normalisation: rotating channels that were scaled differently would mix incompatible units.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from memix.mixing.base import upload

if TYPE_CHECKING:
    from memix.config import AugmentParams


@dataclasses.dataclass(frozen=True)
class Transforms:
    """Per-sample draws: flip (B,) bool, angle (B,) radians, shift (B, 2) as fractions of (width, height)."""

    flip: torch.Tensor
    angle: torch.Tensor
    shift: torch.Tensor


def draw_uniform(batch: int, generator: torch.Generator) -> torch.Tensor:
    """(4, batch) float64 uniforms, on the generator's device: everything a batch's transforms are made from."""
    return torch.rand(4, batch, generator=generator, device=generator.device, dtype=torch.float64)


IDENTITY_UNIFORM = 0.5
"""A uniform that makes the identity transform (no flip, angle 0, shift 0): what padding rows get."""


def draw_transforms(batch: int, generator: torch.Generator, params: AugmentParams, device: torch.device) -> Transforms:
    """Draw every sample's transform; the stream of draws does not depend on which options are on."""
    return uniform_transforms(upload(draw_uniform(batch, generator), device), params)


def uniform_transforms(u: torch.Tensor, params: AugmentParams) -> Transforms:
    """The transforms that (4, B) uniforms stand for (several units' uniforms side by side give each its own)."""
    flip = (u[0] < 0.5) & bool(params.flip)
    angle = (u[1] * 2.0 - 1.0) * math.radians(params.rotate_deg)
    shift = (u[2:4].T * 2.0 - 1.0) * params.translate_frac
    return Transforms(flip=flip, angle=angle, shift=shift)


def flip(t: torch.Tensor, which: torch.Tensor, negate_u: bool) -> torch.Tensor:
    """Mirror the chosen samples left-right (exactly, no resampling); for flow also negate channel 0 (u)."""
    mirrored = t.flip(-1)
    if negate_u:
        sign = torch.ones(t.shape[1], dtype=t.dtype, device=t.device)
        sign[0] = -1
        mirrored = mirrored * sign.reshape(1, -1, 1, 1)
    return torch.where(which.reshape(-1, 1, 1, 1), mirrored, t)


def rotate_translate(t: torch.Tensor, angle: torch.Tensor, shift: torch.Tensor, vectors: bool) -> torch.Tensor:
    """Rotate each sample by ``angle`` about the centre and move it by ``shift`` (fractions of the size).

    Content at pixel offset p from the centre ends up at R p + shift (image axes: x right, y down). With
    ``vectors`` channels 0, 1 are (u, v) in that frame and are rotated by R too. Bilinear, zeros outside.
    """
    batch, _, height, width = t.shape
    cos, sin = torch.cos(angle), torch.sin(angle)
    # output -> input map in normalised coordinates: n_in = D^-1 R^-1 D (n_out - 2*shift), D = diag(W/2, H/2)
    a = torch.stack(
        [torch.stack([cos, sin * height / width], -1), torch.stack([-sin * width / height, cos], -1)], -2
    )
    offset = -(a @ (2.0 * shift)[..., None])
    theta = torch.cat([a, offset], -1).to(torch.float32)
    grid = F.affine_grid(theta, [batch, t.shape[1], height, width], align_corners=False)
    work = t.to(torch.float32)
    out = F.grid_sample(work, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if vectors:
        c, s = cos.to(torch.float32)[:, None, None], sin.to(torch.float32)[:, None, None]
        u, v = out[:, 0], out[:, 1]
        out = torch.cat([torch.stack([c * u - s * v, s * u + c * v], 1), out[:, 2:]], 1)
    return out


def apply_transforms(
    x: torch.Tensor, tf: Transforms, face: torch.Tensor | None = None, moves: bool | None = None,
    vectors: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Apply drawn transforms to flow x (B, C>=2, H, W) and the same geometry to face (B[, C], h, w).

    ``moves`` says whether any rotation/shift is non-zero (None: look, which syncs a GPU); without one the
    result is exact (flips only, no resampling). ``vectors=False``: x holds images (the onset/apex faces a
    comparison network takes), whose pixels only move.
    """
    if moves is None:
        moves = bool((tf.angle != 0).any()) or bool((tf.shift != 0).any())
    out = flip(x, tf.flip, negate_u=vectors)
    if moves:
        out = rotate_translate(out, tf.angle, tf.shift, vectors=vectors).to(x.dtype)
    if face is None:
        return out, None
    squeeze = face.ndim == 3
    f = face[:, None] if squeeze else face
    f = flip(f, tf.flip, negate_u=False)
    if moves:
        warped = rotate_translate(f, tf.angle, tf.shift, vectors=False)
        if face.dtype.is_floating_point:
            f = warped.to(face.dtype)
        else:
            info = torch.iinfo(face.dtype)
            f = warped.round().clamp(info.min, info.max).to(face.dtype)
    return (out, f[:, 0] if squeeze else f)


def augment_batch(
    x: torch.Tensor, generator: torch.Generator, params: AugmentParams, face: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Randomly flip / rotate / translate a flow batch (and its onset faces) in one batched pass."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] < 2 or not x.dtype.is_floating_point:
        got = f"shape {tuple(x.shape)} dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"augment: flow batch must be float (B, C>=2, H, W) with u, v first, got {got}")
    if face is not None and (face.ndim not in (3, 4) or face.shape[0] != x.shape[0]):
        raise ValueError(
            f"augment: face batch must be (B, H, W) or (B, C, H, W) with B = {x.shape[0]}, got {tuple(face.shape)}"
        )
    tf = draw_transforms(x.shape[0], generator, params, x.device)
    return apply_transforms(x, tf, face, moves=params.rotate_deg > 0 or params.translate_frac > 0)
