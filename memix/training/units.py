"""What the fold-batched trainer trains and returns: units, their per-unit seeds and batch slices, their results.

Kept apart from the trainer so that the code deciding *which* rows and seeds a unit gets (the part that fixes a
run's bytes) reads on its own, and so that the run, executors and outputs can name units and results without
importing the training step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from memix.mixing.base import Mixer
from memix.training.folds import Fold


@dataclass(frozen=True)
class Unit:
    """One fold of one seed: what a group trains many of at once."""

    seed: int
    fold: Fold

    def describe(self) -> str:
        return f"seed {self.seed} {self.fold.describe()}"


@dataclass
class UnitResult:
    """A finished unit: per-epoch history, the test probabilities of every evaluated epoch and, per key-frame noise
    level, the last epoch's probabilities on the shifted test clips."""

    seed: int
    fold: int
    subject: str
    history: dict[str, torch.Tensor]  # HISTORY_KEYS -> (epochs,) float64, NaN where not measured
    pred_epochs: torch.Tensor  # (E,) int64, 1-based
    probs: torch.Tensor  # (E, n_test, K) float32
    noise: dict[int, torch.Tensor] = field(default_factory=dict)  # level -> (n_test, K) float32, last epoch

    def to_state(self) -> dict[str, Any]:
        """Tensors, numbers and strings only (a checkpoint loads with ``weights_only``); the noise levels as a
        tensor beside their stacked probabilities, and left out when there are none."""
        state = {"seed": self.seed, "fold": self.fold, "subject": self.subject, "history": self.history,
                 "pred_epochs": self.pred_epochs, "probs": self.probs}
        if self.noise:
            levels = sorted(self.noise)
            state["noise_levels"] = torch.tensor(levels, dtype=torch.int64)
            state["noise_probs"] = torch.stack([self.noise[n] for n in levels])
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> UnitResult:
        levels = state.get("noise_levels")
        noise = {} if levels is None else {
            int(n): p for n, p in zip(levels.tolist(), state["noise_probs"].unbind(0), strict=True)
        }
        return cls(int(state["seed"]), int(state["fold"]), str(state["subject"]), dict(state["history"]),
                   state["pred_epochs"], state["probs"], noise)


ProgressFn = Callable[[int, list[dict[str, float]]], None]
"""Called after each epoch with the epoch (1-based) and, per unit, loss, train_acc, test_correct, n_test."""


def unit_seeds(seed: int, fold: int) -> dict[str, int]:
    """Independent seeds for init, batch order, augmentation, mixing and dropout, derived from (seed, fold)."""
    state = np.random.SeedSequence([seed, fold]).generate_state(4, dtype=np.uint32)
    seeds = {name: int(s) for name, s in zip(("init", "data", "augment", "mix"), state, strict=True)}
    seeds["dropout"] = int(np.random.SeedSequence([seed, fold, 1]).generate_state(1, dtype=np.uint32)[0])
    return seeds


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """Slices of one epoch; the last partial batch is kept unless it holds a single sample (mixing needs 2)."""
    bounds = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    if bounds and bounds[-1][1] - bounds[-1][0] < 2:
        bounds.pop()
    return bounds


@dataclass
class UnitState:
    """What a unit needs during training, on the device (rows index the flow set)."""

    unit: Unit
    train_rows: torch.Tensor
    test_rows: torch.Tensor
    mean: torch.Tensor  # (1, C, 1, 1)
    std: torch.Tensor
    mixer: Mixer
    gens: dict[str, torch.Generator]
    bounds: list[tuple[int, int]]
    epoch_rows: torch.Tensor | None = None

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std
