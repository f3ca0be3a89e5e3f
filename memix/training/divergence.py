"""A training run whose loss turns NaN or infinite (too high a learning rate) must not end as if it had trained.

The loss of every step is summed on the device and read once per epoch, where the epoch's metrics are read
anyway, so this check costs no extra host synchronisation. ``train.on_divergence`` says what happens to a unit
(one seed's fold) whose epoch loss is not finite: ``fail`` stops the run naming method, seed, fold and epoch;
``drop`` lets it finish and leaves that fold out of the outputs with a warning (:func:`diverged_epoch`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from memix.training.units import Unit


class DivergenceError(ValueError):
    """The training loss became NaN or infinite."""


def check_epoch(
    method: str, units: Sequence[Unit], history: Sequence[Mapping[str, torch.Tensor]], epoch: int, policy: str
) -> None:
    """Under ``fail``, raise :class:`DivergenceError` if a unit's loss of ``epoch`` (0-based) is not finite."""
    if policy != "fail":
        return
    for unit, hist in zip(units, history, strict=True):
        loss = float(hist["loss"][epoch])
        if not math.isfinite(loss):
            raise DivergenceError(
                f"training diverged: method {method}, seed {unit.seed}, {unit.fold.describe()}, "
                f"epoch {epoch + 1}: loss {loss}; lower train.lr, or set "
                "train.on_divergence: drop to leave such folds out"
            )


def diverged_epoch(history: Mapping[str, torch.Tensor]) -> int | None:
    """The first epoch (1-based) whose training loss is NaN or infinite in a finished unit's history, if any."""
    bad = torch.nonzero(~torch.isfinite(history["loss"])).flatten()
    return int(bad[0]) + 1 if len(bad) else None
