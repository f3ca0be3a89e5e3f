"""GroupedAdam: each unit follows torch's own Adam/AdamW, and a unit sitting a step out changes in nothing."""

from __future__ import annotations

import pytest
import torch

from memix.training.optim import GroupedAdam

ACTIVE = [[True, True, True], [True, False, True], [True, False, False], [True, True, True],
          [False, True, True], [True, True, True]]


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("decoupled", [True, False])
def test_each_unit_follows_torchs_optimizer_and_skipped_steps_do_not_exist(decoupled: bool, fused: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(3, 4, 5, generator=gen)
    grads = [torch.randn(3, 4, 5, generator=gen) for _ in range(6)]
    active = [[True, True, True], [True, False, True], [True, False, False], [True, True, True],
              [False, True, True], [True, True, True]]
    stacked = start.clone().requires_grad_(True)
    opt = GroupedAdam([stacked], units=3, lr=1e-2, weight_decay=0.05, decoupled=decoupled, fused=fused)
    for grad, on in zip(grads, active, strict=True):
        stacked.grad = grad.clone()
        opt.step(on)
    for g in range(3):
        p = start[g].clone().requires_grad_(True)
        cls = torch.optim.AdamW if decoupled else torch.optim.Adam
        ref = cls([p], lr=1e-2, weight_decay=0.05, foreach=True)
        for grad, on in zip(grads, active, strict=True):
            if on[g]:
                p.grad = grad[g].clone()
                ref.step()
        torch.testing.assert_close(stacked.detach()[g], p.detach(), atol=1e-6, rtol=1e-6)
    assert opt.steps == [5, 4, 5]


def test_state_round_trips() -> None:
    p = torch.zeros(2, 3, requires_grad=True)
    opt = GroupedAdam([p], units=2, lr=0.1, weight_decay=0.0, decoupled=True)
    p.grad = torch.ones(2, 3)
    opt.step([True, False])
    again = GroupedAdam([p], units=2, lr=0.1, weight_decay=0.0, decoupled=True)
    again.load_state_dict(opt.state_dict())
    assert again.steps == [1, 0]
    torch.testing.assert_close(again.exp_avg[0], opt.exp_avg[0])
    with pytest.raises(ValueError, match="leading unit axis of 4"):
        GroupedAdam([p], units=4, lr=0.1, weight_decay=0.0, decoupled=True)


@pytest.mark.parametrize("decay", [[True, True], [True, False]])
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("decoupled", [True, False])
def test_each_unit_is_torchs_optimizer_with_its_param_groups(decoupled: bool, fused: bool, decay: list[bool]) -> None:
    """Per unit, torch's own Adam/AdamW (fused: bit for bit, the same kernel) over two param groups, the second
    at weight_decay 0 when ``decay`` exempts it (STSTNet's biases)."""
    gen = torch.Generator().manual_seed(1)
    starts = [torch.randn(3, 4, 5, generator=gen), torch.randn(3, 7, generator=gen)]
    grads = [[torch.randn(t.shape, generator=gen) for t in starts] for _ in ACTIVE]
    stacked = [t.clone().requires_grad_(True) for t in starts]
    opt = GroupedAdam(stacked, units=3, lr=3e-3, weight_decay=0.05, decoupled=decoupled, fused=fused, decay=decay)
    for step_grads, on in zip(grads, ACTIVE, strict=True):
        for p, grad in zip(stacked, step_grads, strict=True):
            p.grad = grad.clone()
        opt.step(on)
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    for g in range(3):
        own = [t[g].clone().requires_grad_(True) for t in starts]
        groups = [{"params": [p], "weight_decay": 0.05 if d else 0.0} for p, d in zip(own, decay, strict=True)]
        ref = cls(groups, lr=3e-3, fused=True) if fused else cls(groups, lr=3e-3, foreach=True)
        for step_grads, on in zip(grads, ACTIVE, strict=True):
            if on[g]:
                for p, grad in zip(own, step_grads, strict=True):
                    p.grad = grad[g].clone()
                ref.step()
        for p, mine in zip(own, stacked, strict=True):
            if fused:
                assert torch.equal(mine.detach()[g], p.detach())
            else:
                torch.testing.assert_close(mine.detach()[g], p.detach(), atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match="one flag per parameter"):
        GroupedAdam(stacked, units=3, lr=0.1, weight_decay=0.0, decoupled=True, decay=[True])
