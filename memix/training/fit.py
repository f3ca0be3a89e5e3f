"""The model to keep: one model trained on EVERY subject, with exactly the settings a LOSO fold trains with.

LOSO only measures a method; to score new clips one wants the model that has seen all subjects. It trains with
the same ``train``, ``model`` and ``mixing.<method>`` params and the same epoch count as a LOSO fold, and its
normalisation statistics come from all clips (as a fold's come from its training clips). Its random draws come
from ``(seed, n_subjects)``: the fold index after the last LOSO fold, so they are independent of every fold's.

It runs the fold-batched trainer (:class:`memix.training.loop.GroupTrainer`) on one unit whose fold trains on
all rows and has no test clips; the weights come from the trained group (``unit_state_dict``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from memix.config import MIXING_METHODS, Params
from memix.io.flowset import FlowSet
from memix.models import registry
from memix.training import loop
from memix.training.folds import Fold, fold_stats


@dataclass(frozen=True)
class FitResult:
    """The trained model's weights (on the CPU), the normalisation it was trained with, and its history."""

    state_dict: dict[str, torch.Tensor]
    mean: np.ndarray  # (C,) float64, per flow channel
    std: np.ndarray
    history: dict[str, list[float]]  # train_loss, train_accuracy: one value per epoch
    n_clips: int
    n_subjects: int


def all_subjects_fold(data: FlowSet) -> Fold:
    """A fold that trains on every clip; index = number of subjects (one past the last LOSO fold)."""
    subjects = sorted(set(data.index["subject"].astype(str)))
    rows = np.arange(len(data.index))
    if len(rows) < 2:
        raise ValueError(f"{data.path}: {len(rows)} clip(s); fitting needs at least 2")
    return Fold(index=len(subjects), subject="all", train_rows=rows, test_rows=rows[:0])


def fit(
    params: Params, method: str, seed: int, data: FlowSet, device: torch.device, progress: bool = True
) -> FitResult:
    """Train ``method`` with ``seed`` on every clip of ``data`` and return the final model (no selection)."""
    if method not in MIXING_METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(MIXING_METHODS)}")
    registry.check_trainable(params.model.name, method)
    fold = all_subjects_fold(data)
    threads = torch.get_num_threads()
    if params.train.threads:
        torch.set_num_threads(params.train.threads)
    try:
        with tqdm(total=params.train.epochs, desc=f"fit {method}", unit="epoch", disable=not progress) as bar:

            def epoch_done(epoch: int, units: list[dict[str, float]]) -> None:
                bar.set_postfix(loss=f"{units[0]['loss']:.3f}", refresh=False)
                bar.update()

            trainer = loop.GroupTrainer(params, method, [loop.Unit(seed, fold)], data, device, progress=epoch_done)
            (result,) = trainer.run()
    finally:
        torch.set_num_threads(threads)
    mean, std = fold_stats(data.index, fold, data.channels)  # what the trainer normalised with
    weights = {k: v.detach().to("cpu", copy=True) for k, v in trainer.model.unit_state_dict(0).items()}
    history = {
        "train_loss": [float(v) for v in result.history["loss"].tolist()],
        "train_accuracy": [float(v) for v in result.history["train_acc"].tolist()],
    }
    return FitResult(weights, mean, std, history, n_clips=len(data.index), n_subjects=fold.index)
