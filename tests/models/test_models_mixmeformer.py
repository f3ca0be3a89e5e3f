"""MixMeFormer: onset-face tokens are added to the flow patch tokens; only the flow input is ever mixed."""

from __future__ import annotations

import pytest
import torch

from memix.models import FlowModel

LAM = 0.4


@pytest.fixture
def mmf(make_tiny) -> FlowModel:
    return make_tiny(face_stream=True).eval()


@pytest.fixture
def faces() -> torch.Tensor:
    return torch.rand(6, 1, 64, 64, generator=torch.Generator().manual_seed(7))


def test_shapes_and_face_forms(mmf: FlowModel, flow_batch: torch.Tensor, faces: torch.Tensor) -> None:
    with torch.no_grad():
        grey = mmf(flow_batch, face=faces, need_attention=True)
        assert grey.shape == (6, 5)
        assert mmf.cls_attention.shape == (6, mmf.grid**2)
        rgb = mmf(flow_batch, face=faces.repeat(1, 3, 1, 1))
        squeezed = mmf(flow_batch, face=faces[:, 0])
        as_uint8 = mmf(flow_batch, face=(faces * 255).round().to(torch.uint8))
        from_uint8 = mmf(flow_batch, face=(faces * 255).round() / 255)
    torch.testing.assert_close(rgb, grey)  # greyscale is repeated to 3 channels inside
    torch.testing.assert_close(squeezed, grey)
    torch.testing.assert_close(as_uint8, from_uint8)


def test_face_changes_patch_tokens_not_cls(
    mmf: FlowModel, flow_batch: torch.Tensor, faces: torch.Tensor, capture_blocks
) -> None:
    other = torch.rand(faces.shape, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        logits_a, (h_a, *_) = capture_blocks(mmf, flow_batch, face=faces)
        logits_b, (h_b, *_) = capture_blocks(mmf, flow_batch, face=other)
    assert (logits_a - logits_b).abs().max() > 1e-4  # different faces => different predictions
    diff = (h_a - h_b).abs().amax(dim=-1)  # (B, 1 + P*P) at block 0's input
    assert torch.all(diff[:, 0] == 0)  # CLS untouched
    assert torch.all(diff[:, 1:] > 0)  # every patch token carries its face token
    # The face enters as an additive term: block-0 input minus the flow-only tokens is the face tokens.
    flow_only = mmf.vit._pos_embed(mmf.vit.patch_embed(flow_batch))
    torch.testing.assert_close(h_a[:, 1:] - flow_only[:, 1:], mmf.face(faces))


def test_only_flow_is_mixed(mmf: FlowModel, flow_batch: torch.Tensor, faces: torch.Tensor, plan_type, capture_blocks):
    """Manifold mixing blends whole tokens (after the face addition); the face stream never sees a partner face."""
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(9))
    face_inputs: list[torch.Tensor] = []
    hook = mmf.face.register_forward_pre_hook(lambda _m, args: face_inputs.append(args[0]))
    try:
        with torch.no_grad():
            _, (h0, *_) = capture_blocks(mmf, flow_batch, face=faces)
            _, (m0, *_) = capture_blocks(mmf, flow_batch, face=faces, manifold=plan_type(0, LAM, perm))
    finally:
        hook.remove()
    assert len(face_inputs) == 2  # one face-stream call per forward (plain, then manifold-mixed)
    assert all(f is faces for f in face_inputs)
    torch.testing.assert_close(m0, LAM * h0 + (1 - LAM) * h0[perm])


def test_face_stream_is_trained(make_tiny, flow_batch: torch.Tensor, faces: torch.Tensor) -> None:
    model = make_tiny(face_stream=True)
    model(flow_batch, face=faces).logsumexp(dim=1).sum().backward()
    assert model.face.proj.weight.grad.abs().sum() > 0
    assert next(model.face.backbone.parameters()).grad.abs().sum() > 0


def test_face_presence_must_match_the_model(mmf: FlowModel, tiny_model: FlowModel, flow_batch, faces) -> None:
    with pytest.raises(ValueError, match="face_stream is true"):
        mmf(flow_batch)
    with pytest.raises(ValueError, match="face_stream is false"):
        tiny_model(flow_batch, face=faces)
    with pytest.raises(ValueError, match="face batch"):
        mmf(flow_batch, face=torch.rand(6, 2, 64, 64))
    with pytest.raises(ValueError, match="4 samples"):
        mmf(flow_batch, face=faces[:4])
