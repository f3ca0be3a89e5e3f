"""The fold-batched training loop: a group of LOSO units, each a (seed, fold) pair, trained in lockstep.

Why it looks the way it does:
- A unit is what one fold of one seed used to be: its own model (initialised from its own seed), optimizer state,
  training rows, batch order, augmentation and mixing draws, normalisation statistics and test subject. A group
  of G units runs every step as one (see :class:`memix.models.grouped.GroupedFlowModel`), so G folds cost about one
  fold's kernel launches; on one device the result of a unit does not depend on G or on its group companions.
- Units have different numbers of training clips, so near an epoch's end some have no batch left: they sit the
  step out (zero rows, no loss, no optimizer update; :class:`memix.training.optim.GroupedAdam`).
- The whole flow set sits on the device once; a batch is an ``index_select`` of a generator-drawn permutation;
  augmentation and mixing run on the device. Every random draw comes from per-unit ``torch.Generator`` objects on
  the CPU seeded from (seed, fold), so a seed gives the same bytes every time and drawing never waits for a GPU.
- Nothing of the test subject reaches normalisation (training rows' statistics), training or any choice made
  here: every evaluated epoch's test probabilities are returned and epoch selection happens in evaluation.
- After the last epoch each unit's test clips are scored again in every key-frame noise set (``eval.keyframe_noise``:
  the same clips with shifted onset and apex, :mod:`memix.preprocess.keyframe_noise`), with the same model, the
  fold's normalisation and the same forward; nothing of that reaches training.
- ``group.pt`` in the checkpoint folder holds the group's weights, optimizer and generator states at most every
  ``CHECKPOINT_SECONDS``, so a killed run resumes to the same bytes.

This module is the orchestration (building a group, epochs, checkpoint save and resume, out-of-memory splitting);
the parts it is assembled from live beside it: units, their seeds and results (:mod:`memix.training.units`), the
host's part of a step (:mod:`memix.training.step_prepare`), the device's part (:mod:`memix.training.step_core`)
and test-subject prediction (:mod:`memix.training.heldout`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from memix import mixing, models
from memix.io.flowset import FlowSet
from memix.mixing.base import upload
from memix.training import checkpoint, divergence
from memix.training.folds import fold_stats
from memix.training.heldout import (
    EVAL_BATCH,
    HISTORY_KEYS,
    HeldOutEvaluation,
    device_faces,
    device_flow,
    empty_history,
)
from memix.training.optim import GroupedAdam
from memix.training.schedule import epoch_lr
from memix.training.step_core import StepCore, soft_cross_entropy
from memix.training.step_prepare import StepInputs, StepPreparation
from memix.training.units import ProgressFn, Unit, UnitResult, UnitState, batch_bounds, unit_seeds

if TYPE_CHECKING:  # the trainer imports without pydantic: params only need attribute access
    from memix.config import Params

__all__ = [  # names other modules, benchmarks and tests import from here, wherever they are defined
    "CHECKPOINT_SECONDS", "CHECKPOINT_SHARE", "EVAL_BATCH", "HISTORY_KEYS", "GroupTrainer", "ProgressFn",
    "StepInputs", "Unit", "UnitResult", "batch_bounds", "checkpoint_interval", "on_epoch_end", "soft_cross_entropy",
    "train_group", "unit_seeds",
]

log = logging.getLogger(__name__)

CHECKPOINT_SECONDS = 30.0
"""Minimum wall time between mid-group checkpoints."""

CHECKPOINT_SHARE = 0.05
"""Most of the wall time that mid-group checkpoints may take: after a save that took s seconds, the next waits at
least s / CHECKPOINT_SHARE (a 27 GB group state that takes 20 s to write is saved every ~7 min, not every 30 s)."""


def checkpoint_interval(last_save_seconds: float) -> float:
    """Seconds to wait before the next mid-group checkpoint, so that saving costs at most ``CHECKPOINT_SHARE``."""
    return max(CHECKPOINT_SECONDS, last_save_seconds / CHECKPOINT_SHARE)


def on_epoch_end(units: Sequence[Unit], epoch: int) -> None:
    """Hook called after each epoch's state is final (tests patch it to simulate a kill)."""


class GroupTrainer(StepPreparation, StepCore, HeldOutEvaluation):
    """Trains one group of units; ``run()`` returns a :class:`UnitResult` per unit, in the given order."""

    def __init__(
        self, params: Params, method: str, units: Sequence[Unit], data: FlowSet, device: torch.device,
        ckpt_path: Path | None = None, fingerprint: str = "", progress: ProgressFn | None = None,
        noise: Mapping[int, FlowSet] | None = None,
    ) -> None:
        if not units:
            raise ValueError("a group needs at least one unit")
        self.params, self.method, self.units, self.device = params, method, list(units), device
        self.ckpt_path, self.fp, self.progress = ckpt_path, fingerprint, progress
        tp = params.train
        self.epochs = tp.epochs
        self.face_stream = params.model.face_stream
        self.flow = device_flow(data, device)  # the flow set, once
        self.labels = torch.tensor(data.labels, dtype=torch.int64, device=device)
        self.faces = device_faces(data, device) if self.face_stream else None
        k = data.num_classes
        self.states: list[UnitState] = []
        built = []
        for unit in self.units:
            seeds = unit_seeds(unit.seed, unit.fold.index)
            torch.manual_seed(seeds["init"])
            built.append(models.build(params.model, self.flow.shape[1], k, self.flow.shape[-1]))
            self.states.append(self._unit_state(unit, data, built[-1], seeds, k))
        self.model = models.group(built).to(device)
        self.binding = mixing.base.group_binding([s.mixer for s in self.states], device)
        self.mean = torch.stack([s.mean for s in self.states])  # (G, 1, C, 1, 1): all units normalised in one op
        self.std = torch.stack([s.std for s in self.states])
        self._pads: dict[int, torch.Tensor] = {}
        self._reset_sums()
        del built
        self.model.dropout_generators = [s.gens["dropout"] for s in self.states]
        self.opt = GroupedAdam(
            self.model.parameters(), len(self.units), lr=tp.lr, weight_decay=tp.weight_decay,
            decoupled=tp.optimizer == "adamw", decay=self.model.decay_flags(),
        )
        self.forward = self.model
        self.loss_graph = self._loss
        if tp.compile:  # the training step's loss graph (forward, targets, loss; backward traced with it), and the
            mode = None if tp.compile == "default" else tp.compile  # model alone for the held-out predictions
            self.forward = torch.compile(self.model, mode=mode)
            self.loss_graph = torch.compile(self._loss, mode=mode)
        self.autocast: Callable[[], Any] = (
            (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" else contextlib.nullcontext
        )
        a = tp.augment
        self.augment_on = a.flip or a.rotate_deg > 0 or a.translate_frac > 0
        self.moves = a.rotate_deg > 0 or a.translate_frac > 0
        self.vectors = data.vectors  # flow: flips negate u, rotations turn (u, v); faces: pixels only move
        self.history = empty_history(len(self.units), self.epochs)
        self.has_test = any(len(u.fold.test_rows) for u in self.units)  # a fit on every subject has none
        if self.has_test and not all(len(u.fold.test_rows) for u in self.units):
            raise ValueError("units of one group must all have test clips or all have none")
        self.pred_epochs: list[int] = []
        self.probs: list[list[torch.Tensor]] = [[] for _ in self.units]
        self.noise = dict(sorted((noise or {}).items())) if self.has_test else {}  # scored after the last epoch
        self.noise_probs: list[dict[int, torch.Tensor]] = [{} for _ in self.units]
        self.start_epoch = 0

    def _unit_state(
        self, unit: Unit, data: FlowSet, model: models.FlowModel, seeds: dict[str, int], k: int
    ) -> UnitState:
        tp = self.params.train
        fold = unit.fold
        mean, std = fold_stats(data.index, fold, data.channels)
        as_map = dict(dtype=torch.float32, device=self.device)
        train_rows = torch.as_tensor(fold.train_rows, dtype=torch.int64, device=self.device)
        bounds = batch_bounds(len(fold.train_rows), tp.batch_size)
        if not bounds:
            raise ValueError(f"{unit.describe()}: {len(fold.train_rows)} training clip(s); need at least 2")
        mixer = mixing.create(
            self.method, num_classes=k, patch_size=model.patch_size, label_smoothing=tp.label_smoothing,
            settings=getattr(self.params.mixing, self.method),
        )
        mixer.fit_to_depth(model.depth)
        state = UnitState(
            unit=unit, train_rows=train_rows,
            test_rows=torch.as_tensor(fold.test_rows, dtype=torch.int64, device=self.device),
            mean=torch.as_tensor(mean, **as_map).reshape(1, -1, 1, 1),
            std=torch.as_tensor(std, **as_map).reshape(1, -1, 1, 1),
            mixer=mixer,
            gens={name: torch.Generator().manual_seed(seeds[name]) for name in ("data", "augment", "mix", "dropout")},
            bounds=bounds,
        )
        y_train = self.labels.index_select(0, train_rows)
        inputs = state.normalise(self.flow.index_select(0, train_rows)) if mixer.needs_inputs else None
        mixer.bind(y_train, inputs)
        mixer.trusted = True  # batches come from this fold: no per-step value checks (each would sync a GPU)
        return state

    # ------------------------------------------------------------------------------------------- resume
    def _checkpoint_state(self, epoch: int) -> dict[str, Any]:
        return {
            "fingerprint": self.fp,
            "units": torch.tensor([[u.seed, u.fold.index] for u in self.units], dtype=torch.int64),
            "epoch": epoch,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.opt.state_dict(),
            "rng": [{name: g.get_state() for name, g in s.gens.items()} for s in self.states],
            "history": self.history,
            "pred_epochs": torch.tensor(self.pred_epochs, dtype=torch.int64),
            "probs": [torch.stack(p) if p else torch.zeros(0) for p in self.probs],
        }

    def _resume(self) -> None:
        if self.ckpt_path is None:
            return
        state = checkpoint.load(self.ckpt_path)
        units = torch.tensor([[u.seed, u.fold.index] for u in self.units], dtype=torch.int64)
        if state is None or state.get("fingerprint") != self.fp or not torch.equal(state["units"], units):
            return
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        for s, gens in zip(self.states, state["rng"], strict=True):
            for name, g in s.gens.items():
                g.set_state(gens[name])
        self.history = [{k: v.clone() for k, v in h.items()} for h in state["history"]]
        self.pred_epochs = [int(e) for e in state["pred_epochs"].tolist()]
        self.probs = [list(p.unbind(0)) if self.pred_epochs else [] for p in state["probs"]]
        self.start_epoch = int(state["epoch"])

    # --------------------------------------------------------------------------------------------- train
    def run(self) -> list[UnitResult]:
        self._resume()
        tp = self.params.train
        last_save, interval = time.monotonic(), CHECKPOINT_SECONDS
        self.model.train()
        for epoch in range(self.start_epoch, self.epochs):
            self._epoch(epoch)
            divergence.check_epoch(self.method, self.units, self.history, epoch, tp.on_divergence)  # no extra sync
            tested = self.has_test and ((epoch + 1) % tp.eval_every == 0 or epoch + 1 == self.epochs)
            correct = self._test(epoch) if tested else [None] * len(self.units)
            if tested and epoch + 1 == self.epochs and self.noise:
                self._test_noise()  # the last epoch's model: the rows `last` reports, with shifted key frames
            if self.progress is not None:
                self.progress(epoch + 1, [
                    {"loss": float(h["loss"][epoch]), "train_acc": float(h["train_acc"][epoch]),
                     "test_correct": c, "n_test": len(s.unit.fold.test_rows)}
                    for h, c, s in zip(self.history, correct, self.states, strict=True)
                ])
            due = time.monotonic() - last_save >= interval
            if self.ckpt_path is not None and epoch + 1 < self.epochs and due:
                started = time.monotonic()
                checkpoint.save(self.ckpt_path, self._checkpoint_state(epoch + 1))
                last_save = time.monotonic()
                interval = checkpoint_interval(last_save - started)
            on_epoch_end(self.units, epoch + 1)
        none = torch.zeros((0, 0, self.model.num_classes))
        return [
            UnitResult(s.unit.seed, s.unit.fold.index, s.unit.fold.subject, h,
                       torch.tensor(self.pred_epochs, dtype=torch.int64), torch.stack(p) if p else none, dict(q))
            for s, h, p, q in zip(self.states, self.history, self.probs, self.noise_probs, strict=True)
        ]

    def _epoch(self, epoch: int) -> None:
        self.opt.lr = epoch_lr(self.params.train, epoch)
        for s in self.states:
            perm = upload(torch.randperm(len(s.unit.fold.train_rows), generator=s.gens["data"]), self.device)
            s.epoch_rows = s.train_rows.index_select(0, perm)
        self._epoch_table()
        self._reset_sums()
        for step in range(max(len(s.bounds) for s in self.states)):
            self._step(step)
        loss, correct = self.sums["loss"].tolist(), self.sums["correct"].tolist()  # once per epoch, not per step
        for g, h in enumerate(self.history):
            h["loss"][epoch] = loss[g] / self.seen[g]
            h["train_acc"][epoch] = correct[g] / self.seen[g]

    def _reset_sums(self) -> None:
        """Zero the per-unit sums an epoch's steps add to (loss * rows, correct rows, rows seen)."""
        G = len(self.states)
        self.sums = {"loss": torch.zeros(G, device=self.device),
                     "correct": torch.zeros(G, dtype=torch.int64, device=self.device)}
        self.seen = [0] * G

    def _step(self, step: int) -> None:
        self._core(self._prepare(step))


def train_group(
    params: Params, method: str, units: Sequence[Unit], data: FlowSet, device: torch.device,
    ckpt_path: Path | None = None, fingerprint: str = "", progress: ProgressFn | None = None,
    noise: Mapping[int, FlowSet] | None = None,
) -> list[UnitResult]:
    """Train ``units`` together (see :class:`GroupTrainer`) and return their results in order; ``noise`` (level ->
    key-frame noise set, the flow set's clips in its order) is scored after the last epoch.

    A group that runs out of device memory is split in two halves trained one after the other (again, down to
    single units), with a warning: a unit's result does not depend on its group, so only the time changes.
    """
    try:
        return GroupTrainer(params, method, units, data, device, ckpt_path, fingerprint, progress, noise).run()
    except torch.OutOfMemoryError:
        if len(units) == 1:
            raise
    # outside the except block, so the failed trainer (held by the traceback) is freed before retrying
    if device.type == "cuda":
        torch.cuda.empty_cache()
    half = (len(units) + 1) // 2
    parts = [list(units[:half]), list(units[half:])]
    log.warning("out of memory on %s training %d units at once (%s ...): retrying as groups of %d and %d",
                device, len(units), units[0].describe(), len(parts[0]), len(parts[1]))
    first_stats: dict[int, list[dict[str, float]]] = {}

    def first(epoch: int, stats: list[dict[str, float]]) -> None:
        first_stats[epoch] = stats

    def second(epoch: int, stats: list[dict[str, float]]) -> None:  # the caller sees whole-group epochs
        if progress is not None and epoch in first_stats:
            progress(epoch, first_stats[epoch] + stats)

    results = []
    for i, (part, report) in enumerate(zip(parts, (first, second), strict=True)):
        path = None if ckpt_path is None else ckpt_path.with_name(f"{ckpt_path.stem}-part{i}{ckpt_path.suffix}")
        results += train_group(params, method, part, data, device, path, fingerprint, report, noise)
    return results
