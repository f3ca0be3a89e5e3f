"""Models: a timm ViT on optical flow (optionally MixMeFormer's onset-face stream), or one of the published MER
networks it is compared with (see ``build``).

Submodules: ``vit`` (which ViT and its weights), ``attention`` (the CLS attention row via a hook),
``mixmeformer`` (the face stream), ``flow_model`` (the forward every mixing method calls), ``grouped`` (G ViTs
as one), ``registry`` and ``arch`` (the comparison architectures), ``net_model`` and ``grouped_net`` (their
forward and their groups), ``staged`` (manifold mixing between stages), ``published`` (the published table).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from memix.config import ModelParams
from memix.models import registry
from memix.models.flow_model import FlowModel
from memix.models.grouped import GroupedFlowModel
from memix.models.grouped_net import GroupedNetModel
from memix.models.mixmeformer import FaceStream
from memix.models.net_model import NetModel
from memix.models.vit import create_vit, patch_size_of

__all__ = ["FlowModel", "NetModel", "build", "group", "resolve_device"]


def resolve_device(name: str, setting: str = "train.device") -> torch.device:
    """``auto`` is CUDA when torch sees one, else the CPU; asking for CUDA without one is an error naming
    ``setting`` (the params key or command-line option that asked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"{setting} is 'cuda' but torch sees no CUDA device; use 'auto' or 'cpu'")
    return torch.device(name)


def build(params: ModelParams, in_chans: int, num_classes: int, img_size: int) -> FlowModel | NetModel:
    """The classifier named by ``params`` for (B, in_chans, img_size, img_size) flow and ``num_classes``.

    Weights are drawn from torch's global RNG: seed it first for a reproducible model. A ``model.name`` of
    :data:`memix.models.registry.ARCHITECTURES` builds that network (``model.options`` to its constructor, the ViT
    fields unused); any other name is a timm ViT. With ``face_stream`` the ViT also takes the onset face
    (MixMeFormer); ``pretrained`` applies to both the named ViT and the face ResNet-18. ``model.grid`` = img_size /
    patch size.
    """
    if registry.is_architecture(params.name):
        return build_architecture(params, in_chans, num_classes, img_size)
    vit = create_vit(params, in_chans, num_classes, img_size)
    face = None
    if params.face_stream:
        face = FaceStream(vit.embed_dim, grid=img_size // patch_size_of(vit), pretrained=params.pretrained)
    return FlowModel(vit, in_chans=in_chans, img_size=img_size, face=face)


def build_architecture(params: ModelParams, in_chans: int, num_classes: int, img_size: int) -> NetModel:
    """A comparison architecture (:mod:`memix.models.registry`) on the pipeline's flow."""
    arch = registry.architecture(params.name)
    if params.face_stream:
        raise ValueError(f"model.face_stream is MixMeFormer's onset-face stream for a ViT; {params.name} has none")
    options = registry.constructor_options(params.name, dict(params.options))
    net = getattr(arch.module, arch.cls)(num_classes=num_classes, in_chans=in_chans, **options)
    return NetModel(net, params.name, in_chans=in_chans, img_size=img_size)


def group(built: list[FlowModel] | list[NetModel]) -> GroupedFlowModel | GroupedNetModel:
    """The fold-batched form of a group's models: batched ViT products, or one call per unit for the others."""
    if all(isinstance(m, NetModel) for m in built):
        return GroupedNetModel(built)  # type: ignore[arg-type]
    return GroupedFlowModel(built)  # type: ignore[arg-type]
