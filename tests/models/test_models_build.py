"""build(): shapes and grid, named timm ViTs, local weights, and clear errors for bad configurations."""

from __future__ import annotations

import huggingface_hub.constants
import pytest
import torch

from memix.config import ModelParams
from memix.models import build


@pytest.mark.parametrize(
    ("img_size", "patch_size", "in_chans", "grid"), [(32, 4, 3, 8), (28, 7, 2, 4), (32, 8, 2, 4)]
)
def test_tiny_shapes_and_grid(img_size: int, patch_size: int, in_chans: int, grid: int) -> None:
    params = ModelParams(patch_size=patch_size, embed_dim=16, depth=2, num_heads=2)
    model = build(params, in_chans=in_chans, num_classes=3, img_size=img_size)
    assert (model.patch_size, model.grid, model.depth) == (patch_size, grid, 2)
    assert model.vit.embed_dim == 16
    with torch.no_grad():
        logits = model(torch.randn(2, in_chans, img_size, img_size), need_attention=True)
    assert logits.shape == (2, 3)
    assert model.cls_attention.shape == (2, grid * grid)


def test_same_seed_same_model(make_tiny, flow_batch: torch.Tensor) -> None:
    """Determinism (DVC cache hits): the seed fixes every weight, the face stream's included."""
    a, b, c = make_tiny(seed=4, face_stream=True), make_tiny(seed=4, face_stream=True), make_tiny(seed=5)
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.vit.patch_embed.proj.weight, c.vit.patch_embed.proj.weight)


def test_bad_geometry_is_a_clear_error(tiny_model) -> None:
    with pytest.raises(ValueError, match=r"model.patch_size 5 does not divide the flow size 32"):
        build(ModelParams(patch_size=5), in_chans=3, num_classes=5, img_size=32)
    with pytest.raises(ValueError, match="model.num_heads"):
        build(ModelParams(embed_dim=30, num_heads=4), in_chans=3, num_classes=5, img_size=32)
    with pytest.raises(ValueError, match="in_chans must be >= 1"):
        build(ModelParams(), in_chans=0, num_classes=5, img_size=32)
    # A batch that does not match the model's in_chans / img_size names both.
    for shape in [(2, 2, 32, 32), (2, 3, 64, 64), (3, 32, 32)]:
        with pytest.raises(ValueError, match=r"expects \(B, 3, 32, 32\)"):
            tiny_model(torch.zeros(shape))


def test_names_that_are_not_flow_vits() -> None:
    with pytest.raises(ValueError, match="model.name 'no_such_vit'"):
        build(ModelParams(name="no_such_vit"), in_chans=3, num_classes=5, img_size=32)
    with pytest.raises(ValueError, match="not a timm VisionTransformer"):
        build(ModelParams(name="resnet18"), in_chans=3, num_classes=5, img_size=32)
    with pytest.raises(ValueError, match="16-pixel patches"):
        build(ModelParams(name="vit_tiny_patch16_224"), in_chans=3, num_classes=5, img_size=40)
    with pytest.raises(ValueError, match="model.weights_path"):
        build(ModelParams(weights_path="w.pth"), in_chans=3, num_classes=5, img_size=32)


def test_vit_base_builds_offline() -> None:
    torch.manual_seed(0)
    model = build(ModelParams(name="vit_base_patch16_224"), in_chans=3, num_classes=5, img_size=224).eval()
    assert (model.patch_size, model.grid, model.depth, model.vit.embed_dim) == (16, 14, 12, 768)
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 224, 224), need_attention=True)
    assert logits.shape == (1, 5)
    assert model.cls_attention.shape == (1, 196)


def test_weights_path_loads_a_local_file(tmp_path) -> None:
    """Offline pretrained: a local file is loaded, and timm adapts the patch embedding to 2 flow channels."""
    torch.manual_seed(1)
    source = build(ModelParams(name="vit_tiny_patch16_224"), in_chans=3, num_classes=5, img_size=32)
    path = tmp_path / "weights.pth"
    torch.save(source.vit.state_dict(), path)

    torch.manual_seed(2)
    params = ModelParams(name="vit_tiny_patch16_224", pretrained=True, weights_path=str(path))
    loaded = build(params, in_chans=2, num_classes=5, img_size=32)
    assert loaded.vit.patch_embed.proj.weight.shape[1] == 2
    assert torch.equal(loaded.vit.blocks[-1].attn.qkv.weight, source.vit.blocks[-1].attn.qkv.weight)
    assert torch.equal(loaded.vit.pos_embed, source.vit.pos_embed)

    with pytest.raises(FileNotFoundError, match="missing.pth"):
        build(params.model_copy(update={"weights_path": str(tmp_path / "missing.pth")}), 2, 5, 32)


def test_pretrained_offline_suggests_weights_path(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(RuntimeError, match="set model.weights_path"):
        build(ModelParams(name="vit_tiny_patch16_224", pretrained=True), in_chans=3, num_classes=5, img_size=32)
