"""The flow ViT: a small timm VisionTransformer for CPU runs, or any timm ViT by name (e.g. ViT-B/16).

Weights: ``pretrained: false`` never touches the network. ``pretrained: true`` loads timm's weights from
its hub, or, when ``weights_path`` is set, from that local file instead (timm's
``pretrained_cfg_overlay=dict(file=...)``); either way timm adapts the patch embedding to the flow's
channel count and resamples position embeddings to ``img_size``. Offline with ``pretrained: true`` and no
``weights_path`` the hub fetch fails and :func:`create_vit` says to set ``weights_path``. ``weights_path``
is read only when ``pretrained`` is true (so it can stay set while toggling). It covers the ViT only: the
MixMeFormer face ResNet-18 loads from timm's hub (or its cache) when ``pretrained`` is true.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import timm
from timm.models.vision_transformer import VisionTransformer

if TYPE_CHECKING:  # the library's training path imports without pydantic (benchmarks on a bare GPU machine)
    from memix.config import ModelParams

TINY = "vit_flow_tiny"


def create_vit(params: ModelParams, in_chans: int, num_classes: int, img_size: int) -> VisionTransformer:
    """Build the flow ViT named by ``params.name``; errors name the ``model.*`` key at fault.

    ``vit_flow_tiny`` takes ``patch_size``, ``embed_dim``, ``depth`` and ``num_heads`` from params and is
    always randomly initialised (torch's global RNG: seed before calling). A named timm model keeps its
    own architecture, so those four keys are ignored for it; its real patch size is what counts.
    """
    for key, value in (("in_chans", in_chans), ("num_classes", num_classes), ("img_size", img_size)):
        if value < 1:
            raise ValueError(f"model: {key} must be >= 1, got {value}")
    if params.name == TINY:
        vit = _tiny(params, in_chans, num_classes, img_size)
    else:
        vit = _named(params, in_chans, num_classes, img_size)
    if not isinstance(vit, VisionTransformer):
        raise ValueError(
            f"model.name {params.name!r} is a timm {type(vit).__name__}, not a timm VisionTransformer; "
            "manifold mixing and the CLS attention row need a plain ViT"
        )
    if vit.cls_token is None:
        raise ValueError(f"model.name {params.name!r} has no class token; the CLS attention row needs one")
    if getattr(vit, "dynamic_img_size", False):
        raise ValueError(f"model.name {params.name!r}: dynamic_img_size ViTs are not supported")
    return vit


def patch_size_of(vit: VisionTransformer) -> int:
    """The (square) patch size of a timm ViT's patch embedding."""
    ph, pw = vit.patch_embed.patch_size
    if ph != pw:
        raise ValueError(f"non-square patches {ph}x{pw} are not supported")
    return int(ph)


def _tiny(params: ModelParams, in_chans: int, num_classes: int, img_size: int) -> VisionTransformer:
    if img_size % params.patch_size:
        raise ValueError(
            f"model.patch_size {params.patch_size} does not divide the flow size {img_size} (flow.size); "
            "the patch grid must tile the image exactly"
        )
    if params.embed_dim % params.num_heads:
        raise ValueError(f"model.embed_dim {params.embed_dim} is not divisible by model.num_heads {params.num_heads}")
    if params.weights_path is not None:
        raise ValueError(f"model.weights_path is set but {TINY} has no pretrained weights; set it to null")
    return VisionTransformer(
        img_size=img_size,
        patch_size=params.patch_size,
        in_chans=in_chans,
        num_classes=num_classes,
        embed_dim=params.embed_dim,
        depth=params.depth,
        num_heads=params.num_heads,
        mlp_ratio=4.0,
        qkv_bias=True,
        class_token=True,
        global_pool="token",
        drop_rate=params.drop_rate,
    )


def _named(params: ModelParams, in_chans: int, num_classes: int, img_size: int) -> VisionTransformer:
    if not timm.is_model(params.name):
        raise ValueError(f"model.name {params.name!r} is neither {TINY!r} nor a timm model name")
    kwargs: dict = dict(in_chans=in_chans, num_classes=num_classes, img_size=img_size, drop_rate=params.drop_rate)
    if params.pretrained and params.weights_path is not None:
        path = Path(params.weights_path)
        if not path.is_file():
            raise FileNotFoundError(f"model.weights_path {path}: no such file")
        kwargs["pretrained_cfg_overlay"] = dict(file=str(path))
    try:
        vit = timm.create_model(params.name, pretrained=params.pretrained, **kwargs)
    except TypeError as err:  # e.g. a CNN's constructor has no img_size
        raise ValueError(
            f"model.name {params.name!r} is not a timm VisionTransformer ({err}); use {TINY!r} or a ViT such as "
            "vit_base_patch16_224"
        ) from err
    except AssertionError as err:  # timm asserts on shapes it cannot build (e.g. grid vs img_size)
        raise ValueError(f"model.name {params.name!r} cannot be built at img_size {img_size}: {err}") from err
    except Exception as err:
        if not params.pretrained:
            raise
        src = params.weights_path or "timm's hub"
        hint = "" if params.weights_path else " (offline? download the weights once and set model.weights_path)"
        raise RuntimeError(
            f"model.name {params.name!r}: loading pretrained weights from {src} failed{hint}: {err}"
        ) from err
    if isinstance(vit, VisionTransformer) and img_size % patch_size_of(vit):
        raise ValueError(
            f"model.name {params.name!r} has {patch_size_of(vit)}-pixel patches, which do not divide the flow "
            f"size {img_size} (flow.size)"
        )
    return vit
