"""MEMix (Gu et al., ICASSP 2024): mixup restricted to each sample's most-moving patches.

1. Motion score |u| + |v| per pixel (channels 0 and 1 of the normalised, augmented flow), pooled (avg or
   max) to the model's P x P patch grid.
2. Per sample, K_b = min(P*P, floor(l_k * P*P) + k_offset), l_k ~ Beta(alpha_k, alpha_k); or a fixed K
   (clipped to the grid) when ``k_mode`` is ``fixed``.
3. The K_b highest-scoring patches of each sample are selected (ties go to the lower row-major index); the
   mask is upsampled so every patch is an exact pixel block.
4. One l_m ~ Beta(mix_alpha, mix_alpha) and one permutation per batch: inside the selected patches
   x' = l_m * x + (1 - l_m) * x[pi], elsewhere x' = x.
5. Label weight l_y = 1 - (1 - l_m) * A(selected) / A(all), with A the CLS attention of the mixed pass.
With K = P*P the batch and labels are exactly mixup's. Every step after the draws runs batched on the device,
over all samples of all units of a group at once (one sort for every unit's top-K).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from memix.mixing.base import Draw, GroupBinding, GroupDraws, GroupPlan, Mixer
from memix.mixing.batched import blend, partner_rows


def motion_grid(x: torch.Tensor, patch: int, pool: str) -> torch.Tensor:
    """(..., P*P) motion score per patch, row-major, from channels u and v of x (..., C, H, W)."""
    if x.shape[-3] < 2:
        raise ValueError(f"mixing.memix: flow needs channels u, v first; got {x.shape[-3]} channel(s)")
    score = (x[..., 0, :, :].abs() + x[..., 1, :, :].abs()).to(torch.float32)
    flat = score.reshape(-1, 1, *score.shape[-2:])
    pooled = F.avg_pool2d(flat, patch) if pool == "avg" else F.max_pool2d(flat, patch)
    return pooled.reshape(*score.shape[:-2], -1)


def top_k_mask(scores: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """(..., N) bool: True on each row's k[...] highest scores; ties go to the lower index. One batched sort."""
    order = torch.argsort(scores, dim=-1, descending=True, stable=True)
    rank = torch.empty_like(order)
    positions = torch.arange(scores.shape[-1], device=scores.device).expand_as(order)
    rank.scatter_(-1, order, positions)
    return rank < k.to(scores.device)[..., None]


def tokens_to_pixels(tokens: torch.Tensor, grid: tuple[int, int], patch: int) -> torch.Tensor:
    """(..., P*P) token mask -> (..., 1, H, W) pixel mask, each token an exact patch x patch block."""
    blocks = tokens.reshape(*tokens.shape[:-1], 1, grid[0], grid[1])
    return blocks.repeat_interleave(patch, dim=-2).repeat_interleave(patch, dim=-1)


class MEMixMixer(Mixer):
    name = "memix"
    needs_attention = True

    def draw_k(self, rng: np.random.Generator, batch: int, n_tokens: int) -> np.ndarray:
        """Patches to mix per sample (step 2)."""
        p = self.params
        if p.k_mode == "fixed":
            return np.full(batch, min(p.k, n_tokens), dtype=np.int64)
        l_k = rng.beta(p.alpha_k, p.alpha_k, size=batch)
        return np.minimum(n_tokens, np.floor(l_k * n_tokens).astype(np.int64) + p.k_offset)

    def draw(self, rng: np.random.Generator, batch: int, height: int, width: int) -> Draw:
        k = self.draw_k(rng, batch, (height // self.patch_size) * (width // self.patch_size))
        lam = float(rng.beta(self.params.mix_alpha, self.params.mix_alpha))
        return Draw(n=batch, lam=lam, a=lam, b=1.0 - lam, perm=rng.permutation(batch), k=k)

    def mix_group(self, x: torch.Tensor, y: torch.Tensor, draws: GroupDraws, binding: GroupBinding) -> GroupPlan:
        grid = (x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size)
        tokens = top_k_mask(motion_grid(x, self.patch_size, self.params.pool), draws.k)
        mask = tokens_to_pixels(tokens, grid, self.patch_size)
        mixed = torch.where(mask, blend(x, partner_rows(x, draws), draws), x)
        return GroupPlan(
            x=mixed, y=y, partner_y=y.gather(1, draws.perm), draws=draws, mask=mask, token_mask=tokens
        )

    def _group_own(self, plan: GroupPlan, attention: torch.Tensor | None) -> torch.Tensor:
        return 1.0 - plan.draws.om[:, None] * self._attention_share(attention, plan)
