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
With K = P*P the batch and labels are exactly mixup's. All per-sample steps run batched on the device.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from memix.mixing.base import Mixer, MixPlan, blend, random_perm, upload


def motion_grid(x: torch.Tensor, patch: int, pool: str) -> torch.Tensor:
    """(B, P*P) motion score per patch, row-major, from channels u and v of x."""
    if x.shape[1] < 2:
        raise ValueError(f"mixing.memix: flow needs channels u, v first; got {x.shape[1]} channel(s)")
    score = (x[:, 0].abs() + x[:, 1].abs())[:, None].to(torch.float32)
    pooled = F.avg_pool2d(score, patch) if pool == "avg" else F.max_pool2d(score, patch)
    return pooled.flatten(1)


def top_k_mask(scores: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """(B, N) bool: True on each row's k[b] highest scores; ties go to the lower index. One batched sort."""
    order = torch.argsort(scores, dim=1, descending=True, stable=True)
    rank = torch.empty_like(order)
    positions = torch.arange(scores.shape[1], device=scores.device).expand_as(order)
    rank.scatter_(1, order, positions)
    return rank < k.to(scores.device)[:, None]


def tokens_to_pixels(tokens: torch.Tensor, grid: tuple[int, int], patch: int) -> torch.Tensor:
    """(B, P*P) token mask -> (B, 1, H, W) pixel mask, each token an exact patch x patch block."""
    blocks = tokens.reshape(-1, 1, grid[0], grid[1])
    return blocks.repeat_interleave(patch, dim=2).repeat_interleave(patch, dim=3)


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

    def _mix(self, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator) -> MixPlan:
        grid = self._grid(x)
        n_tokens = grid[0] * grid[1]
        batch = x.shape[0]
        k = upload(torch.from_numpy(self.draw_k(rng, batch, n_tokens)), x.device)
        lam = float(rng.beta(self.params.mix_alpha, self.params.mix_alpha))
        perm = random_perm(rng, batch, x.device)
        tokens = top_k_mask(motion_grid(x, self.patch_size, self.params.pool), k)
        mask = tokens_to_pixels(tokens, grid, self.patch_size)
        mixed = torch.where(mask, blend(x, perm, lam), x)
        return MixPlan(x=mixed, y=y, perm=perm, lam=lam, partner_y=y[perm], mask=mask, token_mask=tokens, k=k)

    def _label_lam(self, plan: MixPlan, attention: torch.Tensor | None) -> torch.Tensor:
        return 1.0 - (1.0 - plan.lam) * self._attention_share(attention, plan)
