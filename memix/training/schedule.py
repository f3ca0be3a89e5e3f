"""The learning rate of each epoch (``train.schedule``): set once per epoch, so it depends on the epoch alone and
every unit of a fold group, whatever steps it sits out, trains at the rate it would have alone."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # not at run time: benchmarks/bench_gpu.py trains through the loop without pydantic
    from memix.config.training import TrainParams


def epoch_lr(train: TrainParams, epoch: int) -> float:
    """The rate of 0-based ``epoch``: ``constant`` is ``train.lr`` throughout; ``cosine`` rises linearly over
    ``warmup_epochs`` (epoch e < W trains at lr (e + 1) / (W + 1)) and then follows a half cosine from ``train.lr``
    towards 0 over the remaining epochs (the last epoch's rate is still above 0)."""
    if not 0 <= epoch < train.epochs:
        raise ValueError(f"epoch {epoch} outside the run's {train.epochs} epochs")
    if train.schedule == "constant":
        return train.lr
    warm = train.warmup_epochs
    if epoch < warm:
        return train.lr * (epoch + 1) / (warm + 1)
    done = (epoch - warm) / (train.epochs - warm)
    return train.lr * 0.5 * (1.0 + math.cos(math.pi * done))
