"""The grouped model reproduces each of its timm-built members: forward, CLS attention, manifold mixing, gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from memix import models
from memix.config import ModelParams
from memix.mixing.base import ManifoldPlan
from memix.mixing.batched import GroupManifold
from memix.models.grouped import GroupedFlowModel
from memix.models.grouped_net import GroupedNetModel

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


# ------------------------------------------------------------------------------ partial batches, batch norm
# A partial batch is padded to the group's B rows; batch norm (STSTNet's streams, MMNet's body, the MixMeFormer face
# stream) must see only a unit's real rows. The reference is the plain network run on just those rows in train
# mode: its outputs, its running statistics after the step and its gradients. Padding rows hold large values, so
# that statistics taken over them could not pass for the real ones.
def _padded(shape: tuple[int, ...], rows: list[int], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g)
    for u, n in enumerate(rows):
        x[u, n:] = 50.0 + 100.0 * torch.randn(x[u, n:].shape, generator=g)
    return x


def _assert_unit_matches_plain(grouped, out, member, x_real, loss_real, g, params, buffers, **kw) -> None:
    """Unit g of the grouped step equals ``member`` stepped alone on the real rows (outputs, buffers, grads)."""
    ref = member(x_real, **kw)
    n = x_real.shape[0]
    torch.testing.assert_close(out[g, :n], ref, atol=1e-5, rtol=1e-5)
    loss_real(ref).backward()
    for name, stacked in buffers:
        torch.testing.assert_close(stacked[g], dict(member.named_buffers())[name], atol=1e-6, rtol=1e-5, msg=name)
    for name, stacked in params:
        p = dict(member.named_parameters())[name]
        assert p.grad is not None and stacked.grad is not None, name
        torch.testing.assert_close(stacked.grad[g], p.grad, atol=1e-5, rtol=1e-4, msg=name)


def _loss(out: torch.Tensor, rows: list[int]) -> torch.Tensor:
    """Cross-entropy summed over the real rows (targets row % K), as the trainer's loss reads only those."""
    return sum((F.cross_entropy(out[g, :n], torch.arange(n) % out.shape[-1], reduction="sum")
                for g, n in enumerate(rows) if n), out.new_zeros(()))  # fmt: skip


NETS = {
    # STSTNet: batch norm in each of the three streams (dropout off here: batch norm is the point)
    "ststnet": (ModelParams(name="ststnet", options={"drop_rate": 0.0}), 3, 28, [6, 3, 0]),
    # MMNet: batch norm in its residual body and attention blocks, on onset|apex faces
    "mmnet": (ModelParams(name="mmnet", options={"img_size": 16, "pos_depth": 1}), 2, 16, [4, 2]),
}


@pytest.mark.parametrize("name", list(NETS))
def test_grouped_net_on_a_partial_batch_equals_the_plain_net_on_the_real_rows(name: str) -> None:
    params, in_chans, side, rows = NETS[name]
    members = []
    for seed in range(len(rows)):
        torch.manual_seed(seed)
        members.append(models.build(params, in_chans=in_chans, num_classes=3, img_size=side).train())
    initial = [{k: v.clone() for k, v in m.named_buffers()} for m in members]
    grouped = GroupedNetModel(members).train()
    grouped.dropout_generators = [torch.Generator().manual_seed(g) for g in range(len(rows))]
    x = _padded((len(rows), max(rows), in_chans, side, side), rows, seed=1)
    out = grouped(x, rows=rows)
    _loss(out, rows).backward()
    params_ = [(n, grouped.weights[n.replace(".", "__")]) for n, _ in members[0].named_parameters()]
    buffers = [(n, getattr(grouped, "buf_" + n.replace(".", "__"))) for n, _ in members[0].named_buffers()]
    assert any("running_mean" in n for n, _ in buffers)
    for g, n in enumerate(rows):
        if n == 0:  # a unit sitting the step out: no logits, its statistics and weights untouched
            assert not out[g].any()
            for bname, stacked in buffers:
                torch.testing.assert_close(stacked[g], initial[g][bname], atol=0, rtol=0, msg=bname)
            assert all(not stacked.grad[g].any() for _, stacked in params_)
            continue
        assert not out[g, n:].any()  # padding rows give no logits
        _assert_unit_matches_plain(grouped, out, members[g], x[g, :n], lambda r, n=n: _loss(r[None], [n]), g,
                                   params_, buffers)  # fmt: skip


def test_grouped_face_stream_on_a_partial_batch_equals_the_plain_model_on_the_real_rows() -> None:
    rows = [5, 3]
    members = [m.train() for m in _members(TINY.model_copy(update={"face_stream": True}), len(rows))]
    grouped = GroupedFlowModel(members).train()
    x = _padded((2, 5, 3, 16, 16), rows, seed=2)
    face = torch.rand((2, 5, 1, 32, 32), generator=torch.Generator().manual_seed(3)) * 0.5
    face[1, rows[1] :] = 1.0  # padding faces (in the face's [0, 1] range): white, unlike the real ones
    out = grouped(x, face=face, rows=rows)
    _loss(out, rows).backward()
    template = grouped.face_template
    params_ = [(f"vit.{n}", grouped.w(n)) for n, _ in members[0].vit.named_parameters()]
    params_ += [(f"face.{n}", grouped.face_weights[n.replace(".", "__")]) for n, _ in template.named_parameters()]
    buffers = [(f"face.{n}", getattr(grouped, "face_buf_" + n.replace(".", "__"))) for n, _ in
               template.named_buffers()]  # fmt: skip
    assert any("running_var" in n for n, _ in buffers)
    for g, n in enumerate(rows):
        _assert_unit_matches_plain(grouped, out, members[g], x[g, :n], lambda r, n=n: _loss(r[None], [n]), g,
                                   params_, buffers, face=face[g, :n])  # fmt: skip
