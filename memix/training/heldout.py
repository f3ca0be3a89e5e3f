"""Test-subject prediction during training, and the per-epoch history it and the steps fill in.

Why apart from the step: prediction runs in eval mode on the held-out subject only, records every evaluated
epoch's probabilities (epoch selection happens later, in evaluation, so nothing of the test subject steers
training) and is the one place that fills ``test_acc``; the training step never sees test rows. Each chunk of
test clips is padded into one (G, rows, ...) batch (:func:`pad_units`), zeros past a unit's rows. After the last epoch
the same forward scores each unit's test clips in every key-frame noise set (:meth:`HeldOutEvaluation._test_noise`),
so a noise level differs from the unshifted test set in its inputs alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from memix.io.flowset import FlowSet
from memix.models.grouped import GroupedFlowModel
from memix.training.units import UnitState

EVAL_BATCH = 256
"""Test clips per unit per forward pass when predicting."""

HISTORY_KEYS = ("loss", "train_acc", "test_acc")


def pad_units(xs: Sequence[torch.Tensor | None], rows: int, shape: torch.Size, device: torch.device) -> torch.Tensor:
    """(G, rows, *shape) with each unit's tensor in its first rows and zeros elsewhere (``None``: all zeros)."""
    out = torch.zeros((len(xs), rows, *shape), dtype=torch.float32, device=device)
    for g, x in enumerate(xs):
        if x is not None:
            out[g, : x.shape[0]] = x
    return out


def empty_history(units: int, epochs: int) -> list[dict[str, torch.Tensor]]:
    """Per unit, ``HISTORY_KEYS`` -> (epochs,) float64 of NaN (an epoch not measured stays NaN)."""
    return [
        {key: torch.full((epochs,), float("nan"), dtype=torch.float64) for key in HISTORY_KEYS}
        for _ in range(units)
    ]


def device_flow(data: FlowSet, device: torch.device) -> torch.Tensor:
    """The flow set's input tensor (N, C, S, S) as float32 on ``device``: what every prediction indexes."""
    return torch.from_numpy(np.array(data.flow, dtype=np.float32)).to(device)


def device_faces(data: FlowSet, device: torch.device) -> torch.Tensor:
    """The onset faces (N, 1, S, S) as float32 in [0, 1] on ``device``: MixMeFormer's face stream input."""
    if data.onset is None:
        raise ValueError(f"{data.path}: no onset faces for the face stream")
    onset = torch.from_numpy(np.array(data.onset)).to(device)
    return (onset.to(torch.float32) / 255.0).unsqueeze(1)


class HeldOutEvaluation:
    """Test-set prediction of :class:`memix.training.loop.GroupTrainer`; reads the trainer's attributes below."""

    device: torch.device
    flow: torch.Tensor
    labels: torch.Tensor
    faces: torch.Tensor | None
    states: list[UnitState]
    model: GroupedFlowModel
    forward: Callable[..., torch.Tensor]
    autocast: Callable[[], Any]
    history: list[dict[str, torch.Tensor]]
    pred_epochs: list[int]
    probs: list[list[torch.Tensor]]
    noise: dict[int, FlowSet]
    noise_probs: list[dict[int, torch.Tensor]]

    @torch.no_grad()
    def _test(self, epoch: int) -> list[int]:
        """Predict every unit's test subject; record probabilities and test accuracy; return correct counts."""
        per_unit = self._predict(self.flow, self.faces)
        self.pred_epochs.append(epoch + 1)
        correct = []
        for g, s in enumerate(self.states):
            p = per_unit[g]
            self.probs[g].append(p)
            y = self.labels.index_select(0, s.test_rows).cpu()
            hits = int((p.argmax(-1) == y).sum())
            self.history[g]["test_acc"][epoch] = hits / len(y)
            correct.append(hits)
        return correct

    @torch.no_grad()
    def _test_noise(self) -> None:
        """After the last epoch: every unit's test clips in each key-frame noise set (same rows, the fold's own
        normalisation, eval mode, the same forward as :meth:`_test`); one level's inputs on the device at a time."""
        for level, data in self.noise.items():
            flow = device_flow(data, self.device)
            faces = None if self.faces is None else device_faces(data, self.device)
            for g, p in enumerate(self._predict(flow, faces)):
                self.noise_probs[g][level] = p
            del flow, faces

    def _predict(self, flow: torch.Tensor, faces: torch.Tensor | None) -> list[torch.Tensor]:
        """Per unit the (n_test, K) probabilities of its test rows of ``flow`` (and ``faces``), on the CPU."""
        self.model.eval()
        sizes = [len(s.unit.fold.test_rows) for s in self.states]
        out: list[list[torch.Tensor]] = [[] for _ in self.states]
        for lo in range(0, max(sizes), EVAL_BATCH):
            xs, face_rows = [], []
            for s in self.states:
                rows = s.test_rows[lo : lo + EVAL_BATCH]
                xs.append(s.normalise(flow.index_select(0, rows)) if len(rows) else None)
                face_rows.append(None if faces is None or not len(rows) else faces.index_select(0, rows))
            chunk = [0 if x is None else x.shape[0] for x in xs]
            width = max(chunk)
            face_in = None if faces is None else pad_units(face_rows, width, faces.shape[1:], self.device)
            with self.autocast():
                logits = self.forward(pad_units(xs, width, flow.shape[1:], self.device), face=face_in, rows=chunk)
            probs = torch.softmax(logits.float(), dim=-1)
            for g, n in enumerate(chunk):
                if n:
                    out[g].append(probs[g, :n].cpu())
        self.model.train()
        return [torch.cat(parts) for parts in out]
