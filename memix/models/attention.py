"""The CLS token's attention row of one timm attention module, without turning fused attention off.

timm ViTs run ``scaled_dot_product_attention``, which returns no weights. TransMix and MEMix only need
the CLS row of the last block, so a forward pre-hook grabs the attention module's input and recomputes
q for the CLS token alone against every key with the module's own ``qkv`` projection (and q/k norms):
O(N) extra work per sample instead of the O(N^2) attention matrix, and the network itself is unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

_REQUIRED = ("qkv", "num_heads", "head_dim", "scale", "q_norm", "k_norm")


def check_attention_module(attn: nn.Module, where: str) -> None:
    """Fail early when ``attn`` is not a timm-style attention module the probe can read."""
    missing = [a for a in _REQUIRED if not hasattr(attn, a)]
    if missing:
        raise ValueError(
            f"{where}: attention module {type(attn).__name__} lacks {missing}; the CLS attention row needs a "
            "timm Attention (fused qkv projection)"
        )


def cls_attention_row(attn: nn.Module, x: torch.Tensor, num_prefix_tokens: int) -> torch.Tensor:
    """Head-averaged softmax attention of token 0 (CLS) over all keys, patch columns only: (B, N - prefix).

    ``x`` is the attention module's input (B, N, C), i.e. the block's ``norm1`` output. The softmax runs
    over all keys (CLS and other prefix tokens included), in float32, then the prefix columns are dropped,
    so a row sums to 1 minus the attention the CLS token pays to prefix tokens.
    """
    B, N, _ = x.shape
    heads, head_dim = attn.num_heads, attn.head_dim
    dim = heads * head_dim
    weight, bias = attn.qkv.weight, attn.qkv.bias
    q = F.linear(x[:, :1], weight[:dim], None if bias is None else bias[:dim])
    k = F.linear(x, weight[dim : 2 * dim], None if bias is None else bias[dim : 2 * dim])
    q = attn.q_norm(q.view(B, 1, heads, head_dim).transpose(1, 2))  # (B, H, 1, hd)
    k = attn.k_norm(k.view(B, N, heads, head_dim).transpose(1, 2))  # (B, H, N, hd)
    with torch.autocast(x.device.type, enabled=False):  # float32 scores even inside a bf16 autocast region
        scores = (q.float() * attn.scale) @ k.float().transpose(-2, -1)  # (B, H, 1, N)
        probs = scores.softmax(dim=-1).mean(dim=1)[:, 0]  # (B, N)
    return probs[:, num_prefix_tokens:]


class ClsAttentionProbe:
    """A forward pre-hook on an attention module that stores the CLS row when armed.

    Disarmed it returns immediately, so a plain training step pays nothing. The stored row is computed
    under ``no_grad`` (detached): the attention is a label weight, not something to back-propagate into.
    """

    def __init__(self, attn: nn.Module, num_prefix_tokens: int) -> None:
        check_attention_module(attn, "last block")
        self.num_prefix_tokens = num_prefix_tokens
        self.armed = False
        self.row: torch.Tensor | None = None
        self._handle = attn.register_forward_pre_hook(self._hook)

    def _hook(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        if not self.armed:
            return
        with torch.no_grad():
            self.row = cls_attention_row(module, args[0], self.num_prefix_tokens)

    def remove(self) -> None:
        self._handle.remove()
