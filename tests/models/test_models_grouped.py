"""The grouped model reproduces each of its timm-built members: forward, CLS attention, manifold mixing, gradients."""

from __future__ import annotations

import pytest
import torch

from memix import models
from memix.config import ModelParams
from memix.mixing.base import ManifoldPlan
from memix.models.grouped import GroupedFlowModel, GroupManifold

TINY = ModelParams(patch_size=4, embed_dim=24, depth=2, num_heads=3)


def _members(params: ModelParams, n: int = 3) -> list[models.FlowModel]:
    out = []
    for seed in range(n):
        torch.manual_seed(seed)
        out.append(models.build(params, in_chans=3, num_classes=5, img_size=16))
    return out


@pytest.mark.parametrize("face_stream", [False, True])
def test_forward_attention_and_gradients_match_each_member(face_stream: bool) -> None:
    members = _members(TINY.model_copy(update={"face_stream": face_stream}))
    grouped = GroupedFlowModel(members)
    x = torch.randn(3, 6, 3, 16, 16)
    face = torch.rand(3, 6, 1, 16, 16) if face_stream else None
    perm = torch.stack([torch.randperm(6, generator=torch.Generator().manual_seed(g)) for g in range(3)])
    plan = GroupManifold(block=torch.tensor([0, 1, -1]), lam=torch.tensor([0.3, 0.6, 0.9]), perm=perm)
    out = grouped(x, face=face, manifold=plan, need_attention=True)
    out.square().sum().backward()
    for g, m in enumerate(members):
        own = None if g == 2 else ManifoldPlan(block=int(plan.block[g]), lam=float(plan.lam[g]), perm=perm[g])
        ref = m(x[g], face=None if face is None else face[g], manifold=own, need_attention=True)
        torch.testing.assert_close(out[g], ref, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(grouped.cls_attention[g], m.cls_attention, atol=1e-6, rtol=1e-5)
        ref.square().sum().backward()
        for name, p in m.vit.named_parameters():
            torch.testing.assert_close(grouped.w(name).grad[g], p.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_padding_rows_change_nothing_for_real_rows() -> None:
    grouped = GroupedFlowModel(_members(TINY, 2))
    x = torch.randn(2, 8, 3, 16, 16)
    torch.testing.assert_close(grouped(x[:, :5]), grouped(x)[:, :5], atol=0, rtol=0)


def test_a_units_weights_load_into_a_plain_flow_model() -> None:
    members = _members(TINY.model_copy(update={"face_stream": True}), 2)
    grouped = GroupedFlowModel(members).eval()
    fresh = models.build(TINY.model_copy(update={"face_stream": True}), in_chans=3, num_classes=5, img_size=16)
    fresh.load_state_dict(grouped.unit_state_dict(1))
    x, face = torch.randn(2, 4, 3, 16, 16), torch.rand(2, 4, 1, 16, 16)
    torch.testing.assert_close(fresh.eval()(x[1], face=face[1]), grouped(x, face=face)[1], atol=1e-6, rtol=1e-5)


def test_dropout_draws_from_each_units_own_generator() -> None:
    params = TINY.model_copy(update={"drop_rate": 0.5})
    x = torch.randn(1, 4, 3, 16, 16)
    outs = []
    for companions in (0, 2):  # unit 0 alone, then with two companions drawing from their own streams
        members = _members(params, 1 + companions)
        grouped = GroupedFlowModel(members).train()
        grouped.dropout_generators = [torch.Generator().manual_seed(100 + g) for g in range(1 + companions)]
        outs.append(grouped(x.expand(1 + companions, -1, -1, -1, -1).contiguous())[0])
    torch.testing.assert_close(outs[0], outs[1], atol=1e-6, rtol=1e-5)  # a different mask would move it by ~1
    with pytest.raises(RuntimeError, match="dropout_generators"):
        GroupedFlowModel(_members(params, 1)).train()(x)


def test_unsupported_vits_are_refused_with_the_reason() -> None:
    member = _members(TINY, 1)[0]
    member.vit.blocks[0].attn.q_norm = torch.nn.LayerNorm(8)
    with pytest.raises(ValueError, match="fold-batched training supports timm ViTs with.*q/k norm"):
        GroupedFlowModel([member])
