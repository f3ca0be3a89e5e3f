"""Models: a timm ViT on optical flow, optionally MixMeFormer's onset-face stream (see ``build``).

Submodules: ``vit`` (which ViT and its weights), ``attention`` (the CLS attention row via a hook),
``mixmeformer`` (the face stream), ``flow_model`` (the forward every mixing method calls).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from memix.config import ModelParams
from memix.models.flow_model import FlowModel
from memix.models.mixmeformer import FaceStream
from memix.models.vit import create_vit, patch_size_of

__all__ = ["FlowModel", "build", "resolve_device"]


def resolve_device(name: str, setting: str = "train.device") -> torch.device:
    """``auto`` is CUDA when torch sees one, else the CPU; asking for CUDA without one is an error naming
    ``setting`` (the params key or command-line option that asked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"{setting} is 'cuda' but torch sees no CUDA device; use 'auto' or 'cpu'")
    return torch.device(name)


def build(params: ModelParams, in_chans: int, num_classes: int, img_size: int) -> FlowModel:
    """The classifier named by ``params`` for (B, in_chans, img_size, img_size) flow and ``num_classes``.

    Weights are drawn from torch's global RNG: seed it first for a reproducible model. With
    ``face_stream`` the model also takes the onset face (MixMeFormer); ``pretrained`` applies to both
    the named ViT and the face ResNet-18. ``model.grid`` = img_size / patch size.
    """
    vit = create_vit(params, in_chans, num_classes, img_size)
    face = None
    if params.face_stream:
        face = FaceStream(vit.embed_dim, grid=img_size // patch_size_of(vit), pretrained=params.pretrained)
    return FlowModel(vit, in_chans=in_chans, img_size=img_size, face=face)
