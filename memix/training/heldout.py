"""Test-subject prediction during training, and the per-epoch history it and the steps fill in.

Why apart from the step: prediction runs in eval mode on the held-out subject only, records every evaluated
epoch's probabilities (epoch selection happens later, in evaluation, so nothing of the test subject steers
training) and is the one place that fills ``test_acc``; the training step never sees test rows. Each chunk of
test clips is padded into one (G, rows, ...) batch (:func:`pad_units`), zeros past a unit's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

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

    @torch.no_grad()
    def _test(self, epoch: int) -> list[int]:
        """Predict every unit's test subject; record probabilities and test accuracy; return correct counts."""
        self.model.eval()
        sizes = [len(s.unit.fold.test_rows) for s in self.states]
        out: list[list[torch.Tensor]] = [[] for _ in self.states]
        for lo in range(0, max(sizes), EVAL_BATCH):
            xs, faces = [], []
            for s in self.states:
                rows = s.test_rows[lo : lo + EVAL_BATCH]
                xs.append(s.normalise(self.flow.index_select(0, rows)) if len(rows) else None)
                faces.append(None if self.faces is None or not len(rows) else self.faces.index_select(0, rows))
            chunk = [0 if x is None else x.shape[0] for x in xs]
            width = max(chunk)
            face_in = None if self.faces is None else pad_units(faces, width, self.faces.shape[1:], self.device)
            with self.autocast():
                logits = self.forward(pad_units(xs, width, self.flow.shape[1:], self.device), face=face_in, rows=chunk)
            probs = torch.softmax(logits.float(), dim=-1)
            for g, n in enumerate(chunk):
                if n:
                    out[g].append(probs[g, :n].cpu())
        self.model.train()
        self.pred_epochs.append(epoch + 1)
        correct = []
        for g, s in enumerate(self.states):
            p = torch.cat(out[g])
            self.probs[g].append(p)
            y = self.labels.index_select(0, s.test_rows).cpu()
            hits = int((p.argmax(-1) == y).sum())
            self.history[g]["test_acc"][epoch] = hits / len(y)
            correct.append(hits)
        return correct
