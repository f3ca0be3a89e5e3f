"""Manifold mixing: mixes the whole token sequence right before the chosen block."""

from __future__ import annotations

import pytest
import torch

from memix.models import FlowModel

LAM = 0.3


def _perm(n: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(5))


def test_block0_equals_input_mixup(tiny_model: FlowModel, flow_batch: torch.Tensor, plan_type) -> None:
    perm = _perm(flow_batch.shape[0])
    with torch.no_grad():
        input_mix = tiny_model(LAM * flow_batch + (1 - LAM) * flow_batch[perm])
        manifold0 = tiny_model(flow_batch, manifold=plan_type(0, LAM, perm))
        manifold1 = tiny_model(flow_batch, manifold=plan_type(1, LAM, perm))
    torch.testing.assert_close(manifold0, input_mix, rtol=1e-4, atol=1e-5)
    # Past the (affine) embedding, mixing hidden tokens is no longer input mixup.
    assert (manifold1 - input_mix).abs().max() > 1e-3


@pytest.mark.parametrize("block", [1, 2])
def test_mixes_the_input_of_the_chosen_block(
    block: int, tiny_model: FlowModel, flow_batch: torch.Tensor, plan_type, capture_blocks
) -> None:
    """Mixing at block k == continuing the unmixed run's block-k input, mixed, through blocks k.. and the head."""
    perm = _perm(flow_batch.shape[0])
    vit = tiny_model.vit
    with torch.no_grad():
        _, inputs = capture_blocks(tiny_model, flow_batch)
        mixed_logits, mixed_inputs = capture_blocks(tiny_model, flow_batch, manifold=plan_type(block, LAM, perm))
        h = LAM * inputs[block] + (1 - LAM) * inputs[block][perm]
        for blk in vit.blocks[block:]:
            h = blk(h)
        expected = vit.forward_head(vit.norm(h))
    # Blocks before k see the clean tokens, CLS included in the mix at k.
    for i in range(block):
        torch.testing.assert_close(mixed_inputs[i], inputs[i])
    torch.testing.assert_close(mixed_inputs[block], LAM * inputs[block] + (1 - LAM) * inputs[block][perm])
    torch.testing.assert_close(mixed_logits, expected)


def test_block_past_depth_is_clipped_to_last(tiny_model: FlowModel, flow_batch: torch.Tensor, plan_type) -> None:
    perm = _perm(flow_batch.shape[0])
    last = tiny_model.depth - 1
    with torch.no_grad():
        at_last = tiny_model(flow_batch, manifold=plan_type(last, LAM, perm))
        beyond = tiny_model(flow_batch, manifold=plan_type(last + 4, LAM, perm))
        before_last = tiny_model(flow_batch, manifold=plan_type(last - 1, LAM, perm))
    assert torch.equal(at_last, beyond)
    assert not torch.allclose(at_last, before_last)


def test_lambda_forms_agree(tiny_model: FlowModel, flow_batch: torch.Tensor, plan_type) -> None:
    """A float, a 0-d tensor and a per-sample (B,) tensor of the same value give the same logits."""
    perm = _perm(flow_batch.shape[0])
    b = flow_batch.shape[0]
    with torch.no_grad():
        ref = tiny_model(flow_batch, manifold=plan_type(1, LAM, perm))
        zero_d = tiny_model(flow_batch, manifold=plan_type(1, torch.tensor(LAM), perm))
        per_sample = tiny_model(flow_batch, manifold=plan_type(1, torch.full((b,), LAM), perm))
    torch.testing.assert_close(zero_d, ref)
    torch.testing.assert_close(per_sample, ref)


def test_gradients_reach_both_partners(make_tiny, flow_batch: torch.Tensor, plan_type) -> None:
    model = make_tiny()
    x = flow_batch.clone().requires_grad_(True)
    perm = torch.roll(torch.arange(x.shape[0]), 1)
    model(x, manifold=plan_type(2, 0.5, perm))[0].sum().backward()
    # Output 0 mixes sample 0 with sample perm[0]; both receive gradient, an unrelated sample none.
    norms = x.grad.flatten(1).norm(dim=1)
    assert norms[0] > 0 and norms[perm[0]] > 0
    assert norms[2] == 0


def test_bad_plans_are_rejected(tiny_model: FlowModel, flow_batch: torch.Tensor, plan_type) -> None:
    with pytest.raises(ValueError, match="manifold.block"):
        tiny_model(flow_batch, manifold=plan_type(-1, LAM, _perm(flow_batch.shape[0])))
    with pytest.raises(ValueError, match="manifold.perm"):
        tiny_model(flow_batch, manifold=plan_type(0, LAM, torch.arange(3)))
