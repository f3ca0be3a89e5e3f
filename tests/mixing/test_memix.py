"""MEMix: the mixed patches are each sample's top-K motion patches, K = N is mixup, the attention label."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from memix import mixing

K_CLASSES = 3


def _reference_topk(flow: np.ndarray, patch: int, k: int, pool: str) -> set[int]:
    """Brute force for one sample: score each patch by looping over it, sort, ties to the lower index."""
    _, h, w = flow.shape
    scores = []
    for r in range(h // patch):
        for c in range(w // patch):
            block = np.abs(flow[0, r * patch:(r + 1) * patch, c * patch:(c + 1) * patch]).astype(np.float64)
            block += np.abs(flow[1, r * patch:(r + 1) * patch, c * patch:(c + 1) * patch])
            scores.append(block.mean() if pool == "avg" else block.max())
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return set(order[:k])


def _check_plan(plan, x: torch.Tensor, patch: int, pool: str) -> None:
    n = plan.token_mask.shape[1]
    grid = x.shape[-1] // patch
    for b in range(x.shape[0]):
        k = int(plan.k[b])
        chosen = set(torch.nonzero(plan.token_mask[b]).flatten().tolist())
        assert chosen == _reference_topk(x[b].numpy(), patch, k, pool), f"sample {b}, K={k}"
        assert 1 <= k <= n
    # the pixel mask is the token mask, every token an exact patch block
    blocks = plan.mask[:, 0].reshape(x.shape[0], grid, patch, grid, patch)
    assert torch.equal(blocks.all(4).all(2), blocks.any(4).any(2))
    assert torch.equal(blocks.any(4).any(2).flatten(1), plan.token_mask)
    # inside: blended with the partner's same pixels; outside: untouched, bit for bit
    blended = plan.lam * x + (1 - plan.lam) * x[plan.perm]
    m = plan.mask.expand_as(x)
    assert torch.equal(plan.x[m], blended[m])
    assert torch.equal(plan.x[~m], x[~m])


@pytest.mark.parametrize("pool", ["avg", "max"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mixed_patches_are_top_k_on_random_flows(pool: str, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(6, 3, 24, 24, generator=g)
    mixer = mixing.get("memix", K_CLASSES, patch_size=4, pool=pool, k_offset=2)
    plan = mixer.mix_inputs(x, torch.arange(6) % K_CLASSES, g)
    _check_plan(plan, x, 4, pool)


@pytest.mark.parametrize("k", [1, 5, 16, 100])
def test_top_k_with_ties_and_k_equal_n(k: int) -> None:
    """Patch-constant small-integer flows: many exactly tied scores; K >= N is clipped to N."""
    g = torch.Generator().manual_seed(k)
    levels = torch.randint(0, 3, (5, 2, 4, 4), generator=g).float()
    x = levels.repeat_interleave(4, 2).repeat_interleave(4, 3)
    x = torch.cat([x, torch.randn(5, 1, 16, 16, generator=g)], 1)  # strain must not count
    x[:, 0] *= torch.where(torch.rand(5, 1, 1, generator=g) < 0.5, -1.0, 1.0)  # signs must not count
    mixer = mixing.get("memix", K_CLASSES, patch_size=4, k_mode="fixed", k=k)
    plan = mixer.mix_inputs(x, torch.zeros(5, dtype=torch.long), g)
    assert torch.all(plan.k == min(k, 16))
    _check_plan(plan, x, 4, "avg")


def test_k_equal_n_is_exactly_mixup() -> None:
    x = torch.randn(8, 2, 16, 16, generator=torch.Generator().manual_seed(0))
    y = torch.arange(8) % K_CLASSES
    memix = mixing.get("memix", K_CLASSES, patch_size=4, k_mode="fixed", k=10_000, mix_alpha=0.7)
    mixup = mixing.get("mixup", K_CLASSES, alpha=0.7)
    p_me = memix.mix_inputs(x, y, torch.Generator().manual_seed(5))
    p_mu = mixup.mix_inputs(x, y, torch.Generator().manual_seed(5))
    assert p_me.lam == p_mu.lam and torch.equal(p_me.perm, p_mu.perm)
    assert torch.equal(p_me.x, p_mu.x)
    attention = torch.rand(8, 16)  # any attention: all of it lies on mixed patches
    torch.testing.assert_close(memix.mix_targets(p_me, attention), mixup.mix_targets(p_mu))


def test_label_formula_on_hand_built_attention() -> None:
    # sample 0 moves only in patch 0, sample 1 only in patch 3 (2 x 2 grid of 4-pixel patches)
    x = torch.zeros(2, 2, 8, 8)
    x[0, 0, :4, :4] = 1.0
    x[1, 1, 4:, 4:] = -2.0
    y = torch.tensor([0, 1])
    mixer = mixing.get("memix", K_CLASSES, patch_size=4, k_mode="fixed", k=1)
    # seed 1 swaps the two samples (seed 0 pairs each with itself, where any label weight gives the same target)
    plan = mixer.mix_inputs(x, y, torch.Generator().manual_seed(1))
    assert (plan.perm != torch.arange(2)).all()
    assert plan.token_mask.tolist() == [[True, False, False, False], [False, False, False, True]]
    attention = torch.tensor([[0.2, 0.3, 0.1, 0.4], [1.0, 1.0, 1.0, 5.0]])
    targets = mixer.mix_targets(plan, attention)
    lam = plan.lam
    own = torch.tensor([1 - (1 - lam) * 0.2 / 1.0, 1 - (1 - lam) * 5.0 / 8.0])
    partner = y[plan.perm]
    for b in range(2):
        expect = torch.zeros(K_CLASSES)
        expect[y[b]] += own[b]
        expect[partner[b]] += 1 - own[b]
        torch.testing.assert_close(targets[b], expect)


def test_samples_in_one_batch_get_different_k() -> None:
    x = torch.randn(32, 2, 32, 32, generator=torch.Generator().manual_seed(0))
    mixer = mixing.get("memix", K_CLASSES, patch_size=4, k_offset=14)  # 64 tokens
    plan = mixer.mix_inputs(x, torch.zeros(32, dtype=torch.long), torch.Generator().manual_seed(0))
    assert len(set(plan.k.tolist())) > 5
    assert torch.equal(plan.token_mask.sum(1), plan.k)
    assert int(plan.k.min()) >= 14 and int(plan.k.max()) <= 64


def test_k_distribution_follows_beta_plus_offset() -> None:
    """K = min(N, floor(l_k N) + offset) with l_k ~ Beta(2, 2): mean about N/2 + offset (clipped)."""
    mixer = mixing.get("memix", K_CLASSES, patch_size=4, k_offset=0)
    rng = np.random.default_rng(0)
    ks = mixer.draw_k(rng, 20000, 196)
    assert ks.min() >= 0 and ks.max() <= 196
    assert ks.mean() == pytest.approx(196 / 2 - 0.5, abs=1.5)
    assert ks.std() == pytest.approx(196 * np.sqrt(1 / 20), abs=2.0)  # Beta(2,2) sd = sqrt(1/20)
