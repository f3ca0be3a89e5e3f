"""The per-epoch learning rate (``train.schedule``): its values, its params checks, and that training uses it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from memix.config import parse_params
from memix.config.training import TrainParams
from memix.training import loop
from memix.training.folds import make_folds
from memix.training.loop import Unit
from memix.training.optim import GroupedAdam
from memix.training.schedule import epoch_lr


def test_constant_keeps_the_rate_and_cosine_warms_up_then_decays_towards_zero() -> None:
    assert [epoch_lr(TrainParams(epochs=4, lr=0.01), e) for e in range(4)] == [0.01] * 4
    tp = TrainParams(epochs=10, lr=0.01, schedule="cosine", warmup_epochs=3)
    rates = [epoch_lr(tp, e) for e in range(10)]
    assert rates[:3] == pytest.approx([0.0025, 0.005, 0.0075])  # linear, below the peak
    assert rates[3] == pytest.approx(0.01)  # the peak right after the warm-up
    assert all(a > b for a, b in zip(rates[3:], rates[4:], strict=False))  # then strictly falling
    assert rates[-1] == pytest.approx(0.01 * 0.5 * (1 + math.cos(math.pi * 6 / 7))) and rates[-1] > 0
    with pytest.raises(ValueError, match="outside"):
        epoch_lr(tp, 10)


@pytest.mark.parametrize(("train", "message"), [
    ({"schedule": "constant", "warmup_epochs": 2}, "needs train.schedule: cosine"),
    ({"schedule": "cosine", "warmup_epochs": 5, "epochs": 5}, "must be below train.epochs"),
])
def test_a_warm_up_the_run_cannot_have_is_refused(train: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_params({"train": train})


def test_each_epoch_trains_at_its_scheduled_rate_and_the_schedule_changes_the_weights(data, monkeypatch) -> None:
    seen: list[float] = []
    step = GroupedAdam.step

    def spy(self: GroupedAdam, active) -> None:
        seen.append(self.lr)
        step(self, active)

    monkeypatch.setattr(GroupedAdam, "step", spy)
    folds = make_folds(data.index)[:2]

    def train(schedule: str) -> tuple[list[np.ndarray], object]:
        params = parse_params({
            "model": {"patch_size": 4, "embed_dim": 16, "depth": 1, "num_heads": 1},
            "train": {"epochs": 3, "batch_size": 8, "device": "cpu", "threads": 1, "lr": 3e-3, "schedule": schedule,
                      "warmup_epochs": 1 if schedule == "cosine" else 0, "augment": {"flip": False,
                      "rotate_deg": 0.0, "translate_frac": 0.0}},
        })
        seen.clear()
        results = loop.train_group(params, "none", [Unit(0, f) for f in folds], data, torch.device("cpu"))
        return [r.probs.numpy() for r in results], params

    const, _ = train("constant")
    assert set(seen) == {3e-3}
    cosine, params = train("cosine")
    steps = len(seen) // 3  # the same number of steps in every epoch
    assert seen == [epoch_lr(params.train, e) for e in range(3) for _ in range(steps)]
    assert not np.array_equal(const[0], cosine[0])
