"""MixMeFormer's onset-face stream: ResNet-18 up to layer3 (stride 16), pooled to the ViT's patch grid.

The face carries identity and appearance that flow lacks; its tokens are added to the flow patch tokens
before the first block (see :class:`memix.models.flow_model.FlowModel`), the CLS token untouched.
Pooling comes before the 1x1 projection: both are linear per pixel, so the order gives the same tokens and
pooling first projects P*P vectors instead of the whole feature map.
"""

from __future__ import annotations

import timm
import torch
from torch import nn

# The statistics ResNet-18's ImageNet weights were trained with; applied inside so callers pass [0, 1].
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class FaceStream(nn.Module):
    """Onset face (B, 1 or 3, H, W) -> (B, grid*grid, embed_dim) tokens.

    ``face`` is float in [0, 1] (a uint8 tensor is divided by 255; a (B, H, W) greyscale batch is
    accepted); greyscale is repeated to 3 channels and ImageNet-normalised inside.
    """

    def __init__(self, embed_dim: int, grid: int, pretrained: bool = False) -> None:
        super().__init__()
        try:
            self.backbone = timm.create_model("resnet18", pretrained=pretrained, features_only=True, out_indices=(3,))
        except Exception as err:
            if not pretrained:
                raise
            raise RuntimeError(
                f"model.face_stream: loading ImageNet weights for resnet18 from timm's hub failed (offline? set "
                f"model.pretrained: false, or put the weights in the hub cache): {err}"
            ) from err
        channels = self.backbone.feature_info.channels()[-1]
        self.grid = grid
        self.pool = nn.AdaptiveAvgPool2d(grid)
        self.proj = nn.Conv2d(channels, embed_dim, kernel_size=1)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, face: torch.Tensor) -> torch.Tensor:
        if face.ndim == 3:
            face = face.unsqueeze(1)
        if face.ndim != 4 or face.shape[1] not in (1, 3):
            raise ValueError(f"face batch must be (B, 1 or 3, H, W) or (B, H, W), got shape {tuple(face.shape)}")
        if face.dtype == torch.uint8:
            face = face.float() / 255.0
        if face.shape[1] == 1:
            face = face.expand(-1, 3, -1, -1)
        face = (face - self.mean.to(face.dtype)) / self.std.to(face.dtype)
        feat = self.backbone(face)[-1]  # (B, 256, H/16, W/16)
        tokens = self.proj(self.pool(feat))  # (B, D, grid, grid)
        return tokens.flatten(2).transpose(1, 2)
