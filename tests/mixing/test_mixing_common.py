"""Properties every mixing method must have: valid targets, replayable plans, clear errors."""

from __future__ import annotations

import pytest
import torch

from memix import mixing

B, C, S, PATCH, K = 12, 3, 16, 4, 5
N_TOKENS = (S // PATCH) ** 2


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, C, S, S, generator=g)
    y = torch.arange(B) % K
    return x, y


def _bound(name: str, **params) -> mixing.base.Mixer:
    mixer = mixing.get(name, K, patch_size=PATCH, **params)
    x, y = _batch(99)
    mixer.bind(y, x)
    return mixer


def _attention(seed: int = 1) -> torch.Tensor:
    return torch.rand(B, N_TOKENS, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", mixing.MIXING_METHODS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_targets_are_distributions(name: str, smoothing: float) -> None:
    mixer = mixing.get(name, K, patch_size=PATCH, label_smoothing=smoothing)
    x, y = _batch()
    mixer.bind(y, x)
    plan = mixer.mix_inputs(x, y, torch.Generator().manual_seed(3))
    targets = mixer.mix_targets(plan, _attention())
    assert targets.shape == (B, K)
    assert torch.all(targets >= 0)
    torch.testing.assert_close(targets.sum(1), torch.ones(B))
    assert plan.x.shape == x.shape
    if smoothing:  # smoothing is applied to the one-hot before mixing: no class drops below eps/K
        assert torch.all(targets >= smoothing / K - 1e-6)


@pytest.mark.parametrize("name", mixing.MIXING_METHODS)
def test_identical_seeds_identical_plans(name: str) -> None:
    x, y = _batch()
    plans = [_bound(name).mix_inputs(x, y, torch.Generator().manual_seed(7)) for _ in range(2)]
    assert torch.equal(plans[0].x, plans[1].x)
    assert plans[0].lam == plans[1].lam
    assert torch.equal(plans[0].partner_y, plans[1].partner_y)
    t = [_bound(name).mix_targets(p, _attention()) for p in plans]
    assert torch.equal(t[0], t[1])
    if name != "none":  # another seed gives another draw
        other = _bound(name).mix_inputs(x, y, torch.Generator().manual_seed(8))
        assert other.lam != plans[0].lam


def test_none_is_identity() -> None:
    x, y = _batch()
    mixer = _bound("none")
    plan = mixer.mix_inputs(x, y, torch.Generator().manual_seed(0))
    assert torch.equal(plan.x, x)
    assert torch.equal(mixer.mix_targets(plan), torch.nn.functional.one_hot(y, K).float())


def test_generator_state_advances() -> None:
    """Two consecutive batches from one generator must not repeat the same draw."""
    x, y = _batch()
    mixer = _bound("mixup")
    g = torch.Generator().manual_seed(0)
    assert mixer.mix_inputs(x, y, g).lam != mixer.mix_inputs(x, y, g).lam


def test_unknown_method_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown mixing method 'mixupp'.*memix"):
        mixing.get("mixupp", K)


def test_unknown_param_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"mixing\.memix: unknown param\(s\) kmode.*k_mode"):
        mixing.get("memix", K, kmode="beta")


def test_invalid_param_value_is_named() -> None:
    with pytest.raises(ValueError, match=r"mixing\.mixup: invalid params: alpha"):
        mixing.get("mixup", K, alpha=-1.0)


def test_params_reach_the_mixer() -> None:
    assert mixing.get("memix", K, k_mode="fixed", k=3).params.k == 3


@pytest.mark.parametrize("name", ["remix", "balanced_mixup"])
def test_unbound_methods_fail_clearly(name: str) -> None:
    x, y = _batch()
    with pytest.raises(RuntimeError, match=f"mixing.{name}: call bind"):
        mixing.get(name, K, patch_size=PATCH).mix_inputs(x, y, torch.Generator())


@pytest.mark.parametrize("name", ["transmix", "memix"])
def test_missing_or_misshaped_attention_fails_clearly(name: str) -> None:
    x, y = _batch()
    mixer = _bound(name)
    assert mixer.needs_attention
    plan = mixer.mix_inputs(x, y, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="needs the attention map"):
        mixer.mix_targets(plan)
    with pytest.raises(ValueError, match=r"attention must be \(B, P\*P\)"):
        mixer.mix_targets(plan, torch.rand(B, N_TOKENS + 1))


def test_bad_batches_are_named() -> None:
    mixer = _bound("mixup")
    x, y = _batch()
    with pytest.raises(ValueError, match="x must be a float tensor"):
        mixer.mix_inputs(x[0], y, torch.Generator())
    with pytest.raises(ValueError, match="y must be int64"):
        mixer.mix_inputs(x, y[:-1], torch.Generator())
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 5\)"):
        mixer.mix_inputs(x, y + K, torch.Generator())


def test_patch_grid_must_tile_the_image() -> None:
    mixer = mixing.get("memix", K, patch_size=5)
    x, y = _batch()
    with pytest.raises(ValueError, match="not a multiple of the patch size 5"):
        mixer.mix_inputs(x, y, torch.Generator())


def test_only_mixaugment_asks_for_the_clean_loss() -> None:
    assert [m for m in mixing.MIXING_METHODS if mixing.get(m, K).clean_loss] == ["mixaugment"]
    assert {m for m in mixing.MIXING_METHODS if mixing.get(m, K).needs_attention} == {"transmix", "memix"}
