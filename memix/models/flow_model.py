"""FlowModel: one forward that serves every mixing method (input mixing, manifold mixing, attention labels).

The forward re-walks a timm VisionTransformer's ``forward_features`` block by block, so that it can
(1) add MixMeFormer's face tokens to the patch tokens, (2) mix the hidden tokens before a chosen block
(manifold mixup) and (3) arm the CLS-attention probe on the last block only when a method needs it.
"""

from __future__ import annotations

import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from memix.mixing.base import ManifoldPlan
from memix.models.attention import ClsAttentionProbe
from memix.models.mixmeformer import FaceStream
from memix.models.staged import mix_hidden, mix_stage
from memix.models.vit import patch_size_of


class FlowModel(nn.Module):
    """A flow ViT, optionally with an onset-face stream (MixMeFormer).

    Attributes the other stages rely on: ``patch_size`` and ``grid`` (P, so the grid has P*P patches),
    ``depth`` (number of blocks), ``in_chans``, ``img_size``, ``num_classes``, and after a forward with
    ``need_attention=True`` the detached (B, P*P) float32 ``cls_attention`` (None after any other forward).
    """

    def __init__(self, vit: VisionTransformer, in_chans: int, img_size: int, face: FaceStream | None = None) -> None:
        super().__init__()
        self.vit = vit
        self.face = face
        self.in_chans = in_chans
        self.img_size = img_size
        self.num_classes = vit.num_classes
        self.patch_size = patch_size_of(vit)
        self.grid = img_size // self.patch_size
        self.depth = len(vit.blocks)
        self.cls_attention: torch.Tensor | None = None
        self._probe = ClsAttentionProbe(vit.blocks[-1].attn, vit.num_prefix_tokens)

    def forward(
        self,
        x: torch.Tensor,
        face: torch.Tensor | None = None,
        manifold: ManifoldPlan | None = None,
        need_attention: bool = False,
    ) -> torch.Tensor:
        """Logits (B, num_classes) for a flow batch (B, in_chans, img_size, img_size).

        ``manifold`` mixes the whole token sequence (CLS included), h' = lam*h + (1-lam)*h[perm], right
        before block ``manifold.block``; block 0 is the input tokens after patch embedding, CLS and
        position embedding (and the face tokens, for MixMeFormer: the face stream itself never sees a
        permuted face, but from block 0 on a token carries both streams, so mixing blends the partner's
        face contribution as well). A block past the last is clipped to the last (``depth - 1``).
        """
        self._check_inputs(x, face)
        vit = self.vit
        tokens = vit.patch_embed(x)  # (B, P*P, D)
        if self.face is not None:
            tokens = tokens + self.face(face).to(tokens.dtype)
        h = vit.norm_pre(vit.patch_drop(vit._pos_embed(tokens)))
        mix_at = mix_stage(manifold, x.shape[0], self.depth)
        self._probe.armed = need_attention
        self._probe.row = None
        try:
            for i, blk in enumerate(vit.blocks):
                if i == mix_at:
                    h = mix_hidden(h, manifold.lam, manifold.perm)
                h = blk(h)
        finally:
            self._probe.armed = False
        self.cls_attention = self._probe.row
        self._probe.row = None
        return vit.forward_head(vit.norm(h))

    def _check_inputs(self, x: torch.Tensor, face: torch.Tensor | None) -> None:
        want = (self.in_chans, self.img_size, self.img_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(
                f"flow batch has shape {tuple(x.shape)}, the model expects (B, {want[0]}, {want[1]}, {want[2]}) "
                "(in_chans = flow channels, img_size = flow.size)"
            )
        if self.face is not None and face is None:
            raise ValueError("model.face_stream is true (MixMeFormer) but no onset face batch was given")
        if self.face is None and face is not None:
            raise ValueError("an onset face batch was given but model.face_stream is false")
        if face is not None and face.shape[0] != x.shape[0]:
            raise ValueError(f"face batch has {face.shape[0]} samples, flow batch {x.shape[0]}")

    def extra_repr(self) -> str:
        face = self.face is not None
        return f"patch_size={self.patch_size}, grid={self.grid}, depth={self.depth}, face_stream={face}"
