"""The divergence check sees every non-finite loss: NaN, +inf and -inf (train.on_divergence)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from memix.training import divergence
from memix.training.folds import Fold

BAD = [float("nan"), float("inf"), float("-inf")]
IDS = ["nan", "+inf", "-inf"]


def _units(n: int) -> list[SimpleNamespace]:
    return [SimpleNamespace(seed=3, fold=Fold(i, f"sub{i + 1:02d}", np.arange(0), np.arange(0))) for i in range(n)]


def _history(losses: list[list[float]]) -> list[dict[str, torch.Tensor]]:
    return [{"loss": torch.tensor(unit, dtype=torch.float64)} for unit in losses]


@pytest.mark.parametrize("bad", BAD, ids=IDS)
def test_fail_stops_at_a_non_finite_epoch_loss_naming_the_unit(bad: float) -> None:
    history = _history([[0.9, 0.8], [0.9, bad]])
    divergence.check_epoch("memix", _units(2), history, 0, "fail")  # epoch 1 is finite everywhere
    with pytest.raises(divergence.DivergenceError,
                       match=r"method memix, seed 3, fold 1 \(test subject sub02\), epoch 2: loss"):  # fmt: skip
        divergence.check_epoch("memix", _units(2), history, 1, "fail")
    divergence.check_epoch("memix", _units(2), history, 1, "drop")  # drop lets the run finish


@pytest.mark.parametrize("bad", BAD, ids=IDS)
def test_drop_finds_the_first_non_finite_epoch(bad: float) -> None:
    assert divergence.diverged_epoch({"loss": torch.tensor([0.9, 0.8, bad, 0.7], dtype=torch.float64)}) == 3
    assert divergence.diverged_epoch({"loss": torch.tensor([0.9, 0.8, 1e300], dtype=torch.float64)}) is None
