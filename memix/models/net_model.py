"""A comparison architecture (:mod:`memix.models.arch`) behind the interface the trainer and serving use.

The pipeline's flow is (B, C, S, S) at ``flow.size``; each network wants its own side (STSTNet 28 px), so the
input is resized here (bilinear with antialiasing, i.e. area-weighted when shrinking). Mixing happens before, on the
pipeline's flow: input blends commute with the (linear) resize, and CutMix boxes are cut on the flow's pixels. The
flow's per-fold normalisation makes the pixel unit of u and v (which halves with the side) irrelevant.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from memix.mixing.base import ManifoldPlan


class NetModel(nn.Module):
    """``net`` on pipeline inputs (B, in_chans, img_size, img_size); logits (B, num_classes).

    Mirrors :class:`memix.models.FlowModel`'s attributes: ``depth`` is the number of stages manifold mixup can mix
    before, ``patch_size`` is 1 (a CNN has no patch grid: CutMix boxes are in pixels) and ``cls_attention`` is
    always None (TransMix and MEMix are refused for these networks, :mod:`memix.models.registry`).
    """

    def __init__(self, net: nn.Module, name: str, in_chans: int, img_size: int) -> None:
        super().__init__()
        self.net = net
        self.name = name
        self.in_chans = in_chans
        self.img_size = img_size
        self.net_size = int(net.img_size)
        self.num_classes = int(net.num_classes)
        self.depth = len(net.stages)
        self.patch_size = 1
        self.grid = img_size
        self.cls_attention: torch.Tensor | None = None

    def forward(
        self,
        x: torch.Tensor,
        face: torch.Tensor | None = None,
        manifold: ManifoldPlan | None = None,
        need_attention: bool = False,
    ) -> torch.Tensor:
        want = (self.in_chans, self.img_size, self.img_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(f"input batch has shape {tuple(x.shape)}, {self.name} expects (B, {want[0]}, {want[1]}, "
                             f"{want[2]}) (in_chans = flow channels, img_size = flow.size)")
        if face is not None:
            raise ValueError(f"{self.name} takes no onset-face stream (model.face_stream is MixMeFormer's)")
        if need_attention:
            raise ValueError(f"{self.name} has no CLS attention over patches (TransMix and MEMix need a ViT)")
        return self.net(self.resize(x), manifold=manifold)

    def resize(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == self.net_size:
            return x
        return F.interpolate(x, size=(self.net_size, self.net_size), mode="bilinear", align_corners=False,
                             antialias=True)

    def extra_repr(self) -> str:
        return f"name={self.name}, input {self.img_size} px -> {self.net_size} px, stages={self.depth}"
