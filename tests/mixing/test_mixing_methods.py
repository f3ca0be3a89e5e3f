"""Method-specific semantics (docs/mixing.md) checked against what the plan records."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn.functional import one_hot

from memix import mixing
from memix.mixing.remix_mixer import remix_label_lam

K = 4


def _batch(b: int = 10, s: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 2, s, s, generator=g), torch.arange(b) % K


@pytest.mark.parametrize("name", ["mixup", "mixaugment", "remix"])
def test_mixup_blend_matches_recorded_lam_and_perm(name: str) -> None:
    x, y = _batch()
    mixer = mixing.get(name, K)
    mixer.bind(y)
    plan = mixer.mix_inputs(x, y, torch.Generator().manual_seed(1))
    assert sorted(plan.perm.tolist()) == list(range(len(y)))
    assert 0.0 < plan.lam < 1.0
    torch.testing.assert_close(plan.x, plan.lam * x + (1 - plan.lam) * x[plan.perm])
    if name != "remix":
        expect = plan.lam * one_hot(y, K) + (1 - plan.lam) * one_hot(y[plan.perm], K)
        torch.testing.assert_close(mixer.mix_targets(plan), expect.float())


@pytest.mark.parametrize("seed", range(12))
def test_cutmix_lam_is_clipped_box_complement(seed: int) -> None:
    x, y = _batch(s=20)  # 20 is not a multiple of anything special: clipping happens often
    mixer = mixing.get("cutmix", K, alpha=0.5)
    plan = mixer.mix_inputs(x, y, torch.Generator().manual_seed(seed))
    y0, y1, x0, x1 = plan.box
    assert 0 <= y0 <= y1 <= 20 and 0 <= x0 <= x1 <= 20
    inside = torch.zeros(20, 20, dtype=torch.bool)
    inside[y0:y1, x0:x1] = True
    assert np.isclose(plan.lam, 1.0 - inside.float().mean().item())
    torch.testing.assert_close(plan.x[..., inside], x[plan.perm][..., inside], rtol=0, atol=0)
    torch.testing.assert_close(plan.x[..., ~inside], x[..., ~inside], rtol=0, atol=0)
    differ = y != plan.partner_y
    own = mixer.mix_targets(plan)[torch.arange(len(y)), y]
    torch.testing.assert_close(own[differ], torch.full((int(differ.sum()),), plan.lam))


def test_cutmix_boxes_get_clipped_sometimes() -> None:
    """Over many draws some boxes touch the border and lose area (the lam correction matters)."""
    mixer = mixing.get("cutmix", K)
    x, y = _batch(s=16)
    g = torch.Generator().manual_seed(0)
    clipped = 0
    for _ in range(40):
        plan = mixer.mix_inputs(x, y, g)
        y0, y1, x0, x1 = plan.box
        clipped += y0 == 0 or x0 == 0 or y1 == 16 or x1 == 16
    assert clipped > 0


def test_manifold_plan_carries_block_lam_perm_and_leaves_input() -> None:
    x, y = _batch()
    mixer = mixing.get("manifold_mixup", K, blocks=[1, 3])
    g = torch.Generator().manual_seed(0)
    blocks = set()
    for _ in range(20):
        plan = mixer.mix_inputs(x, y, g)
        assert plan.x is x
        assert plan.manifold.lam == plan.lam and torch.equal(plan.manifold.perm, plan.perm)
        blocks.add(plan.manifold.block)
    assert blocks == {1, 3}
    mixer.fit_to_depth(3)
    assert {mixer.mix_inputs(x, y, g).manifold.block for _ in range(20)} == {1}
    with pytest.raises(ValueError, match="none is below the model depth 1"):
        mixer.fit_to_depth(1)


def test_transmix_label_is_mean_of_area_and_attention_in_box() -> None:
    patch, s = 4, 16  # 4 x 4 token grid
    x, y = _batch(b=3, s=s)
    mixer = mixing.get("transmix", K, patch_size=patch)
    # seed 10: a CutMix box and a partner permutation with no fixed point (labels are distinct), so every
    # sample's own and partner weights are both visible in its target row
    plan = mixer.mix_inputs(x, y, torch.Generator().manual_seed(10))
    assert plan.box is not None and (plan.perm != torch.arange(3)).all()
    y0, y1, x0, x1 = plan.box
    # brute force: token (r, c) is pasted when its top-left pixel (4r, 4c) is in the box
    pasted = torch.tensor([[y0 <= 4 * r < y1 and x0 <= 4 * c < x1 for c in range(4)] for r in range(4)]).flatten()
    assert torch.equal(plan.token_mask[0], pasted)
    attention = torch.zeros(3, 16)
    attention[0] = 1.0  # uniform
    attention[1, 0] = 5.0  # all mass on token 0
    attention[2] = torch.arange(16.0)
    targets = mixer.mix_targets(plan, attention)
    area = (y1 - y0) * (x1 - x0) / s**2
    checked = 0
    for b in range(3):
        share = (attention[b] * pasted).sum() / attention[b].sum()
        w = (area + share.item()) / 2
        own = targets[b, y[b]].item() if y[b] != y[plan.perm[b]] else None
        if own is not None:
            assert np.isclose(own, 1 - w, atol=1e-6)
            assert np.isclose(targets[b, y[plan.perm[b]]].item(), w, atol=1e-6)
            checked += 1
    assert checked == 3


def test_transmix_mixup_mode_ignores_attention() -> None:
    x, y = _batch()
    mixer = mixing.get("transmix", K, mixup_prob=1.0, patch_size=4)
    plan = mixer.mix_inputs(x, y, torch.Generator().manual_seed(0))
    torch.testing.assert_close(plan.x, plan.lam * x + (1 - plan.lam) * x[plan.perm])
    a, b = mixer.mix_targets(plan, torch.rand(10, 16)), mixer.mix_targets(plan, torch.rand(10, 16))
    assert torch.equal(a, b)


def test_remix_rules_on_constructed_counts() -> None:
    counts_own = torch.tensor([90, 90, 10, 10, 30, 30])
    counts_partner = torch.tensor([10, 10, 90, 90, 20, 20])
    kappa, tau = 3.0, 0.5
    # own class is the majority (ratio 9 >= kappa): label goes wholly to the partner when lam < tau
    assert remix_label_lam(0.3, counts_own, counts_partner, kappa, tau)[0] == 0.0
    assert remix_label_lam(0.7, counts_own, counts_partner, kappa, tau)[0] == pytest.approx(0.7)
    # own class is the minority (ratio 1/9 <= 1/kappa): label stays own when 1 - lam < tau
    assert remix_label_lam(0.7, counts_own, counts_partner, kappa, tau)[2] == 1.0
    assert remix_label_lam(0.3, counts_own, counts_partner, kappa, tau)[2] == pytest.approx(0.3)
    # ratio 1.5 is inside (1/kappa, kappa): plain mixup label
    assert remix_label_lam(0.3, counts_own, counts_partner, kappa, tau)[4] == pytest.approx(0.3)
    # kappa boundary is inclusive
    assert remix_label_lam(0.3, torch.tensor([30]), torch.tensor([10]), kappa, tau)[0] == 0.0


def test_remix_uses_bound_fold_counts() -> None:
    train = torch.tensor([0] * 30 + [1] * 3 + [2] * 10 + [3] * 10)
    mixer = mixing.get("remix", K)
    mixer.bind(train)
    x, y = _batch(b=8)
    g = torch.Generator().manual_seed(2)
    seen_rule = False
    for _ in range(30):
        plan = mixer.mix_inputs(x, y, g)
        targets = mixer.mix_targets(plan)
        for b in range(8):
            i, j = int(y[b]), int(plan.partner_y[b])
            ratio = mixer.class_counts[i] / mixer.class_counts[j]
            if i == j:
                continue
            if ratio >= 3 and plan.lam < 0.5:
                assert targets[b, i] == 0.0
                seen_rule = True
            elif ratio <= 1 / 3 and 1 - plan.lam < 0.5:
                assert targets[b, i] == 1.0
                seen_rule = True
            else:
                assert targets[b, i].item() == pytest.approx(plan.lam)
    assert seen_rule
    with pytest.raises(ValueError, match=r"classes \[3\] absent from the bound fold"):
        mixer.bind(torch.tensor([0, 1, 2]))
        mixer.mix_inputs(x, y, g)


def test_balanced_sampler_frequencies_approach_uniform() -> None:
    labels = torch.tensor([0] * 200 + [1] * 50 + [2] * 10 + [3] * 4)
    inputs = torch.randn(len(labels), 2, 8, 8)
    mixer = mixing.get("balanced_mixup", K)
    mixer.bind(labels, inputs)
    x, y = inputs[:64], labels[:64]
    g = torch.Generator().manual_seed(0)
    drawn = torch.cat([mixer.mix_inputs(x, y, g).partner_y for _ in range(100)])
    freq = torch.bincount(drawn, minlength=K).float() / len(drawn)
    torch.testing.assert_close(freq, torch.full((K,), 0.25), atol=0.03, rtol=0)  # natural freq of class 3: 0.015


def test_balanced_blend_and_label_share_l() -> None:
    labels = torch.arange(20) % K
    inputs = torch.randn(20, 2, 8, 8)
    mixer = mixing.get("balanced_mixup", K, alpha=2.0)
    mixer.bind(labels, inputs)
    x, y = torch.randn(6, 2, 8, 8), torch.zeros(6, dtype=torch.long)
    plan = mixer.mix_inputs(x, y, torch.Generator().manual_seed(3))
    x_bal = inputs[plan.partner_index]
    assert torch.equal(plan.partner_y, labels[plan.partner_index])
    torch.testing.assert_close(plan.x, plan.lam * x + (1 - plan.lam) * x_bal)
    targets = mixer.mix_targets(plan)
    expect = plan.lam * one_hot(y, K) + (1 - plan.lam) * one_hot(plan.partner_y, K)
    torch.testing.assert_close(targets, expect.float())


def test_balanced_l_follows_beta_a_1() -> None:
    """l ~ Beta(a, 1) has mean a / (a + 1): 1/6 for a = 0.2 (the natural batch dominates)."""
    labels = torch.arange(8) % K
    mixer = mixing.get("balanced_mixup", K, alpha=0.2)
    mixer.bind(labels, torch.randn(8, 2, 4, 4))
    g = torch.Generator().manual_seed(0)
    ls = [1 - mixer.mix_inputs(torch.randn(8, 2, 4, 4), labels, g).lam for _ in range(600)]
    assert np.mean(ls) == pytest.approx(0.2 / 1.2, abs=0.03)


def test_balanced_bind_needs_inputs() -> None:
    with pytest.raises(ValueError, match=r"needs the fold's inputs too"):
        mixing.get("balanced_mixup", K).bind(torch.arange(4))


def test_balanced_group_padding_rows_stay_zero_and_real_rows_match_alone() -> None:
    """In a group, padding rows (of a unit with a short batch, or of one that sits the step out) stay exactly zero
    after balanced mixup, and each unit's real rows equal the unit mixed alone, bit for bit."""
    from memix.mixing.base import group_binding, numpy_rng
    from memix.mixing.batched import stack_draws

    folds = [(torch.randn(n, 2, 8, 8) + shift, torch.arange(n) % K) for n, shift in ((12, 3.0), (9, -3.0), (5, 1.0))]
    grouped, alone = [mixing.get("balanced_mixup", K) for _ in folds], [mixing.get("balanced_mixup", K) for _ in folds]
    for m, a, (inputs, labels) in zip(grouped, alone, folds, strict=True):
        m.bind(labels, inputs)
        a.bind(labels, inputs.clone())
    binding = group_binding(grouped, torch.device("cpu"))
    sizes, batch = [6, 4, 0], 6  # unit 1: two padding rows; unit 2 sits the step out
    xs = [torch.randn(n, 2, 8, 8) for n in sizes]
    ys = [torch.arange(n) % K for n in sizes]
    x, y = torch.zeros(3, batch, 2, 8, 8), torch.zeros(3, batch, dtype=torch.long)
    for g, n in enumerate(sizes):
        x[g, :n], y[g, :n] = xs[g], ys[g]
    draws = [m.draw(numpy_rng(torch.Generator().manual_seed(g)), n, 8, 8) if n else None
             for g, (m, n) in enumerate(zip(grouped, sizes, strict=True))]
    plan = grouped[0].mix_group(x, y, stack_draws(draws, batch, x.device, binding.offsets), binding)
    assert torch.equal(plan.x[1, 4:], torch.zeros(2, 2, 8, 8))
    assert torch.equal(plan.x[2], torch.zeros(batch, 2, 8, 8))
    for g, n in enumerate(sizes[:2]):
        single = alone[g].mix_inputs(xs[g], ys[g], torch.Generator().manual_seed(g))
        assert torch.equal(plan.x[g, :n], single.x)
        assert torch.equal(plan.partner_y[g, :n], single.partner_y)
