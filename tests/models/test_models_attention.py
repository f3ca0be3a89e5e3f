"""The CLS attention row from the hook equals timm's own (non-fused) attention matrix, and changes nothing."""

from __future__ import annotations

import copy

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

from memix.models import FlowModel


def _reference_row(attn: torch.nn.Module, x: torch.Tensor, prefix: int) -> torch.Tensor:
    """Run a copy of the attention module with fused attention OFF and read the softmax matrix it builds."""
    ref = copy.deepcopy(attn)
    ref.fused_attn = False
    got: list[torch.Tensor] = []
    ref.attn_drop.register_forward_hook(lambda _m, _i, out: got.append(out.detach()))  # input == softmax(qk^T/sqrt d)
    with torch.no_grad():
        ref(x)
    (matrix,) = got  # (B, H, N, N)
    return matrix[:, :, 0, prefix:].mean(dim=1)


def _capture_attn_input(model: FlowModel, x: torch.Tensor, need_attention: bool) -> tuple[torch.Tensor, torch.Tensor]:
    seen: list[torch.Tensor] = []
    h = model.vit.blocks[-1].attn.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
    try:
        logits = model(x, need_attention=need_attention)
    finally:
        h.remove()
    return logits, seen[0]


def _qknorm_model() -> FlowModel:
    """A ViT with q/k LayerNorms and 2 register tokens (3 prefix tokens) to cover those paths."""
    torch.manual_seed(3)
    vit = VisionTransformer(
        img_size=16, patch_size=4, in_chans=2, num_classes=3, embed_dim=24, depth=2, num_heads=3,
        qk_norm=True, reg_tokens=2, class_token=True, global_pool="token",
    )
    # Non-trivial q/k norm affine parameters, so an implementation that skipped them would disagree.
    for blk in vit.blocks:
        for norm in (blk.attn.q_norm, blk.attn.k_norm):
            torch.nn.init.normal_(norm.weight, 1.0, 0.5)
            torch.nn.init.normal_(norm.bias, 0.0, 0.5)
    return FlowModel(vit, in_chans=2, img_size=16).eval()


@pytest.mark.parametrize("which", ["tiny", "qknorm_registers"])
def test_cls_row_matches_explicit_softmax(which: str, tiny_model: FlowModel, flow_batch: torch.Tensor) -> None:
    if which == "tiny":
        model, x = tiny_model, flow_batch
    else:
        model, x = _qknorm_model(), torch.randn(4, 2, 16, 16, generator=torch.Generator().manual_seed(2))
    prefix = model.vit.num_prefix_tokens
    _, attn_in = _capture_attn_input(model, x, need_attention=True)
    row = model.cls_attention
    expected = _reference_row(model.vit.blocks[-1].attn, attn_in, prefix)

    assert row.shape == (x.shape[0], model.grid * model.grid)
    assert row.dtype == torch.float32
    torch.testing.assert_close(row, expected, rtol=1e-5, atol=1e-6)
    # The softmax ran over all keys: rows sum to 1 minus the attention paid to prefix tokens, which is > 0.
    assert torch.all(row.sum(dim=1) < 1.0)
    # The network itself still runs fused attention.
    assert model.vit.blocks[-1].attn.fused_attn


def test_hook_changes_nothing(tiny_model: FlowModel, flow_batch: torch.Tensor) -> None:
    with torch.no_grad():
        plain = tiny_model(flow_batch)
        assert tiny_model.cls_attention is None
        probed = tiny_model(flow_batch, need_attention=True)
        assert tiny_model.cls_attention is not None
        again = tiny_model(flow_batch)
    assert torch.equal(plain, probed)
    assert torch.equal(plain, again)
    assert tiny_model.cls_attention is None  # never a stale row from an earlier batch


def test_attention_is_detached_and_gradients_unchanged(make_tiny, flow_batch: torch.Tensor) -> None:
    grads = []
    for need in (False, True):
        model = make_tiny(seed=0)
        model(flow_batch, need_attention=need).logsumexp(dim=1).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
        if need:
            assert not model.cls_attention.requires_grad
    assert torch.equal(grads[0], grads[1])


def test_row_under_bf16_autocast(tiny_model: FlowModel, flow_batch: torch.Tensor) -> None:
    """The GPU recipe trains in bf16 autocast: the row stays float32 and close to the fp32 one."""
    with torch.no_grad():
        tiny_model(flow_batch, need_attention=True)
        fp32 = tiny_model.cls_attention
        with torch.autocast("cpu", dtype=torch.bfloat16):
            tiny_model(flow_batch, need_attention=True)
    assert tiny_model.cls_attention.dtype == torch.float32
    torch.testing.assert_close(tiny_model.cls_attention, fp32, rtol=0.05, atol=2e-3)
