"""CausalNet's attention over its four fused tokens on a 2 x 2 grid (tony19980810/CausalNet ``Models.py`` at
7bdf163): the distance-masked cross attention between the two direction-map streams (``CrossTransformer``,
``AbsolutePositionalCrossAttention``) and the causal attention block (``CausalAttentionBlock``: spatial-temporal
attention and relation mining). :mod:`memix.models.arch.causalnet` puts them after its two hierarchical branches.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

GRID = 2  # the fused tokens sit on a 2 x 2 grid


def grid_masks(gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, P) for the 2 x 2 token grid: M = 1 where two tokens are at most 1 apart, P[i, j] = -(j+1)*gamma beyond."""
    pos = torch.tensor([[r, c] for r in range(GRID) for c in range(GRID)], dtype=torch.float64)
    far = torch.cdist(pos, pos) > 1.0
    keys = torch.arange(1, GRID * GRID + 1, dtype=torch.float64).expand(GRID * GRID, -1)
    # -(j+1)*gamma in double, then float32: the same rounding as the release's buffer
    return (~far).float(), torch.where(far, -keys * gamma, torch.zeros((), dtype=torch.float64)).float()


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    b, n, c = x.shape
    return x.reshape(b, n, heads, c // heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


class GridAttention(nn.Module):
    """Masked multi-head attention of ``x`` over ``context``, both (B, 4, D) on the 2 x 2 grid.

    weights = softmax(q k^T * scale * M + P) * M (M, P from :func:`grid_masks`): diagonal pairs get weight 0 while
    their exp(P) stays in the softmax's denominator, as in the release.
    """

    def __init__(self, dim: int, heads: int, gamma: float, scale: float, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.scale = scale
        mask, bias = grid_masks(gamma)
        self.register_buffer("mask", mask, persistent=False)
        self.register_buffer("bias", bias, persistent=False)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def weights(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Attention weights (B, heads, 4, 4): query token i, key token j."""
        q = _heads(self.q(x), self.heads)
        k = _heads(self.kv(context).chunk(2, dim=-1)[0], self.heads)
        return torch.softmax(q @ k.transpose(-1, -2) * self.scale * self.mask + self.bias, dim=-1) * self.mask

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        v = _heads(self.kv(context).chunk(2, dim=-1)[1], self.heads)
        return self.drop(self.proj(_merge_heads(self.weights(x, context) @ v)))


class TokenFeedForward(nn.Module):
    def __init__(self, dim: int, mult: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, dim * mult)
        self.fc2 = nn.Linear(dim * mult, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(F.gelu(self.fc1(x)))))


class CrossLayer(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_mult: int, gamma: float, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = GridAttention(dim, heads, gamma, dim**-0.5, dropout)
        self.ff = TokenFeedForward(dim, mlp_mult, dropout)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        na, nb = self.norm(a), self.norm(b)
        a = a + self.attn(na, b)
        b = b + self.attn(nb, a)  # the updated a is b's context
        return a + self.ff(a), b + self.ff(b)


class SpatioTemporalAttention(nn.Module):
    """Grid self-attention on each stream, then the second stream's tokens attend to (first's, own) key/value."""

    def __init__(self, dim: int, heads: int, gamma: float, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.spatial = GridAttention(dim, heads, gamma, self.scale, dropout)
        self.temporal_q = nn.Linear(dim, dim)
        self.temporal_kv = nn.Linear(dim, 2 * dim)
        self.temporal_proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def temporal(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Per token and head, softmax over the pair (first stream's key, second stream's own key)."""
        q = _heads(self.temporal_q(second), self.heads)
        k1, v1 = (_heads(t, self.heads) for t in self.temporal_kv(first).chunk(2, dim=-1))
        k2, v2 = (_heads(t, self.heads) for t in self.temporal_kv(second).chunk(2, dim=-1))
        w = torch.softmax(torch.stack([(q * k1).sum(-1), (q * k2).sum(-1)], dim=-1) * self.scale, dim=-1)
        out = w[..., :1] * v1 + w[..., 1:] * v2
        return self.drop(self.temporal_proj(_merge_heads(out)))

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        first = first + self.spatial(first, first)
        second = second + self.spatial(second, second)
        return first, second + self.temporal(first, second)


class RelationMining(nn.Module):
    """Attention with query from the forward pass, key from the backward pass, value from their sum."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, fwd: torch.Tensor, bwd: torch.Tensor) -> torch.Tensor:
        q, k, v = (_heads(t, self.heads) for t in (self.q(fwd), self.k(bwd), self.v(fwd + bwd)))
        attn = torch.softmax(q @ k.transpose(-1, -2) * self.scale, dim=-1)
        return self.drop(self.proj(_merge_heads(attn @ v) + fwd + bwd))


class CausalBlock(nn.Module):
    """Stage 1: fused tokens (B, 2, 4, D') -> (B, 12 D'): forward and backward passes, then relation mining."""

    def __init__(self, dim: int, heads: int, mlp_mult: int, gamma: float, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = SpatioTemporalAttention(dim, heads, gamma, dropout)
        self.ff = TokenFeedForward(dim, mlp_mult, dropout)
        self.mining = RelationMining(dim, heads, dropout)

    def run_pass(self, first: torch.Tensor, second: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One pass; the normalised streams replace the residual stream (the release passes them as its input)."""
        first, second = self.attn(self.norm(first), self.norm(second))
        return first + self.ff(first), second + self.ff(second)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        u, w = h[:, 0], h[:, 1]
        u_f, w_f = self.run_pass(u, w)
        w_b, u_b = self.run_pass(w, u)  # backward: (w, u); its first output is w's, second u's
        return torch.cat([self.mining(w_f, u_b), u_f, w_b], dim=1).flatten(1)


