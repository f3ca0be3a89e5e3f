"""HTNet's hierarchical region transformer: the one implementation that HTNet (:mod:`memix.models.arch.htnet`, the
whole network) and CausalNet (:mod:`memix.models.arch.causalnet`, each of its two branches) build on.

Release read for these layers (no licence: read to learn the architecture; nothing here is copied): github
wangzhifengharrison/HTNet at commit 91cf4bda0a2db50d638d46c04c5d7cf3b602d446, ``Model.py``: channel LayerNorm 11-21,
pre-norm 23-30, feed-forward 32-43, attention 45-75, aggregate 77-82, transformer 84-105, and the patch embedding and
level loop of class ``HTNet`` 107-172. CausalNet's release (github tony19980810/CausalNet at commit
7bdf163face030eeae4358fc7638cf538305acce, MIT licence, ``Models.py``, class ``CausalNet``) builds each branch from
the same parts under the same names, so one key mapping (:func:`level_key_from_release`) serves both converters.

    x (N, C, S, S) -> space-to-depth of p x p patches, channels ordered (row in patch, column in patch, channel)
    -> 1x1 conv to dim                                                          (PatchEmbed)
    for level i = 0 .. L-1 (width dim * 2**i, heads heads * 2**i, depth block_repeats[i]):              (Level)
        cut the map into 2**(L-1-i) x 2**(L-1-i) blocks; on every block add a learned position vector of length
        seq_len = (fmap // 2**(L-1))**2 (one value per token, broadcast over channels), then per layer
        x + attn(LN(x)), x + ff(LN(x))                                          (MapBlock)
        put the blocks back; then (not at the last level) conv 3x3 (pad 1) to the next width, LN, max pool 3 stride 2
        pad 1                                                                   (Merge: the release's aggregate)

LN (:class:`ChannelNorm`) is a LayerNorm over the channels of a (N, C, H, W) map (biased variance, eps 1e-5, scale and
shift shaped (1, C, 1, 1)). Attention (:class:`MapAttention`) works on 1x1 convolutions: head width dim // heads,
inner = head width * heads (255 of 256 channels at 3 heads), q, k, v from one bias-free 1x1 conv (head-major
channels), softmax(q k^T (dim // heads)**-0.5) over the block's tokens (dropout on those weights), output 1x1 conv
with bias. Feed-forward (:class:`ConvFeedForward`): 1x1 conv dim -> mult * dim, GELU, 1x1 conv; dropout after the
GELU and at the end, and after the attention's output conv, as in the release.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class ChannelNorm(nn.Module):
    """LayerNorm over the channels of a (B, C, H, W) map (biased variance), as the release normalises its maps."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(1, dim, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, dim, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var, mean = torch.var_mean(x, dim=1, unbiased=False, keepdim=True)
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias


class MapAttention(nn.Module):
    """Multi-head self-attention over the H*W positions of a map, projections as 1x1 convolutions."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        inner = self.head_dim * heads
        self.dropout = dropout
        self.qkv = nn.Conv2d(dim, 3 * inner, 1, bias=False)
        self.proj = nn.Conv2d(inner, dim, 1)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        # (B, 3 * heads * head_dim, H, W) -> 3 x (B, heads, H*W, head_dim), channels head-major
        q, k, v = self.qkv(x).reshape(b, 3, self.heads, self.head_dim, h * w).transpose(-1, -2).unbind(1)
        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)  # softmax(q k^T / sqrt(head_dim)) v
        out = out.transpose(-1, -2).reshape(b, self.heads * self.head_dim, h, w)
        return self.proj_drop(self.proj(out))


class ConvFeedForward(nn.Module):
    """Position-wise MLP as 1x1 convolutions (dim -> mult * dim -> dim, GELU), dropout after GELU and at the end."""

    def __init__(self, dim: int, mult: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, dim * mult, 1)
        self.fc2 = nn.Conv2d(dim * mult, dim, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(F.gelu(self.fc1(x)))))


class MapBlock(nn.Module):
    """Pre-norm transformer layer on a map: x + attn(LN(x)), then x + ff(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_mult: int, dropout: float) -> None:
        super().__init__()
        self.attn_norm = ChannelNorm(dim)
        self.attn = MapAttention(dim, heads, dropout)
        self.ff_norm = ChannelNorm(dim)
        self.ff = ConvFeedForward(dim, mlp_mult, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x))
        return x + self.ff(self.ff_norm(x))


class Merge(nn.Module):
    """The release's aggregate between levels: 3x3 conv to the next width, LN, max pool 3/2/1 (halves the map)."""

    def __init__(self, dim: int, dim_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(dim, dim_out, 3, padding=1)
        self.norm = ChannelNorm(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(self.norm(self.conv(x)), 3, stride=2, padding=1)


class Level(nn.Module):
    """One level: the map cut into ``split`` x ``split`` blocks, a learned position value per block position (added to
    every channel), ``depth`` shared layers on each block, the blocks put back, then the merge (absent at the last
    level: ``dim_out`` None)."""

    def __init__(
        self, dim: int, dim_out: int | None, heads: int, depth: int, split: int, seq_len: int, mlp_mult: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.split = split
        self.pos = nn.Parameter(torch.randn(seq_len))  # the release draws it from N(0, 1)
        self.blocks = nn.ModuleList(MapBlock(dim, heads, mlp_mult, dropout) for _ in range(depth))
        self.merge: nn.Module = Merge(dim, dim_out) if dim_out is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, hh, ww = x.shape
        s = self.split
        h, w = hh // s, ww // s
        # (N, C, s*h, s*w) -> (N*s*s, C, h, w), blocks in row-major order within each sample
        x = x.reshape(n, c, s, h, s, w).permute(0, 2, 4, 1, 3, 5).reshape(n * s * s, c, h, w)
        x = x + self.pos[: h * w].reshape(1, 1, h, w)
        for block in self.blocks:
            x = block(x)
        x = x.reshape(n, s, s, c, h, w).permute(0, 3, 1, 4, 2, 5).reshape(n, c, hh, ww)
        return self.merge(x)


class PatchEmbed(nn.Conv2d):
    """Space-to-depth of p x p patches (channels ordered row in patch, column in patch, channel), then this 1x1 conv
    to ``dim`` (the release's ``to_patch_embedding``: Rearrange, then Conv2d)."""

    def __init__(self, in_chans: int, patch_size: int, dim: int) -> None:
        super().__init__(patch_size * patch_size * in_chans, dim, 1)
        self.patch_size = patch_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, hh, ww = x.shape
        p = self.patch_size
        x = x.reshape(b, c, hh // p, p, ww // p, p).permute(0, 3, 5, 1, 2, 4).reshape(b, p * p * c, hh // p, ww // p)
        return super().forward(x)


def make_levels(
    fmap: int, dim: int, heads: int, block_repeats: Sequence[int], mlp_mult: int, dropout: float
) -> list[Level]:
    """The levels for a ``fmap`` x ``fmap`` patch map (divisible by 2**(L-1), L = len(block_repeats)): level i has
    width dim * 2**i, heads heads * 2**i, block_repeats[i] layers and 2**(L-1-i) x 2**(L-1-i) blocks."""
    levels = len(block_repeats)
    seq_len = (fmap // 2 ** (levels - 1)) ** 2  # tokens per block, the same at every level
    return [
        Level(dim * 2**i, dim * 2 ** (i + 1) if i < levels - 1 else None, heads * 2**i, depth, 2 ** (levels - 1 - i),
              seq_len, mlp_mult, dropout)
        for i, depth in enumerate(block_repeats)
    ]


class Hierarchy(nn.Module):
    """Patch embedding, then the levels: (N, C, S, S) -> (N, dim * 2**(L-1), m, m), m = S // p // 2**(L-1)."""

    def __init__(
        self, in_chans: int, patch_size: int, fmap: int, dim: int, heads: int, block_repeats: Sequence[int],
        mlp_mult: int, dropout: float,
    ) -> None:
        super().__init__()
        self.embed = PatchEmbed(in_chans, patch_size, dim)
        self.levels = nn.ModuleList(make_levels(fmap, dim, heads, block_repeats, mlp_mult, dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        for level in self.levels:
            x = level(x)
        return x


_RELEASE_LEVEL_KEYS = (  # after the release's "layers<n>.<level>."; 0 = its Transformer, 1 = its aggregate
    (r"0\.pos_emb", "pos"),
    (r"0\.layers\.(\d+)\.0\.norm\.g", r"blocks.\1.attn_norm.weight"),
    (r"0\.layers\.(\d+)\.0\.norm\.b", r"blocks.\1.attn_norm.bias"),
    (r"0\.layers\.(\d+)\.0\.fn\.to_qkv\.weight", r"blocks.\1.attn.qkv.weight"),
    (r"0\.layers\.(\d+)\.0\.fn\.to_out\.0\.(weight|bias)", r"blocks.\1.attn.proj.\2"),
    (r"0\.layers\.(\d+)\.1\.norm\.g", r"blocks.\1.ff_norm.weight"),
    (r"0\.layers\.(\d+)\.1\.norm\.b", r"blocks.\1.ff_norm.bias"),
    (r"0\.layers\.(\d+)\.1\.fn\.net\.0\.(weight|bias)", r"blocks.\1.ff.fc1.\2"),
    (r"0\.layers\.(\d+)\.1\.fn\.net\.3\.(weight|bias)", r"blocks.\1.ff.fc2.\2"),
    (r"1\.0\.(weight|bias)", r"merge.conv.\1"),
    (r"1\.1\.g", "merge.norm.weight"),
    (r"1\.1\.b", "merge.norm.bias"),
)


def level_key_from_release(key: str) -> str | None:
    """A release level's key (what follows its ``layers.<level>.``) as :class:`Level`'s key; None if not one."""
    return next((re.sub(pat, rep, key) for pat, rep in _RELEASE_LEVEL_KEYS if re.fullmatch(pat, key)), None)
