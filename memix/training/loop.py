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
- ``group.pt`` in the checkpoint folder holds the group's weights, optimizer and generator states at most every
  ``CHECKPOINT_SECONDS``, so a killed run resumes to the same bytes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from memix import mixing, models
from memix.config import Params
from memix.io.flowset import FlowSet
from memix.mixing.base import Mixer, MixPlan
from memix.models.grouped import GroupedFlowModel, GroupManifold
from memix.training import checkpoint
from memix.training.augment import Transforms, apply_transforms, draw_transforms
from memix.training.folds import Fold, fold_stats
from memix.training.optim import GroupedAdam

CHECKPOINT_SECONDS = 30.0
"""Minimum wall time between mid-group checkpoints."""

EVAL_BATCH = 256
"""Test clips per unit per forward pass when predicting."""

HISTORY_KEYS = ("loss", "train_acc", "test_acc")


def on_epoch_end(units: Sequence[Unit], epoch: int) -> None:
    """Hook called after each epoch's state is final (tests patch it to simulate a kill)."""


@dataclass(frozen=True)
class Unit:
    """One LOSO fold of one seed: what a group trains many of at once."""

    seed: int
    fold: Fold

    def describe(self) -> str:
        return f"seed {self.seed} fold {self.fold.index} (test subject {self.fold.subject})"


@dataclass
class UnitResult:
    """A finished unit: per-epoch history and the test probabilities of every evaluated epoch."""

    seed: int
    fold: int
    subject: str
    history: dict[str, torch.Tensor]  # HISTORY_KEYS -> (epochs,) float64, NaN where not measured
    pred_epochs: torch.Tensor  # (E,) int64, 1-based
    probs: torch.Tensor  # (E, n_test, K) float32

    def to_state(self) -> dict[str, Any]:
        return {"seed": self.seed, "fold": self.fold, "subject": self.subject, "history": self.history,
                "pred_epochs": self.pred_epochs, "probs": self.probs}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> UnitResult:
        return cls(int(state["seed"]), int(state["fold"]), str(state["subject"]), dict(state["history"]),
                   state["pred_epochs"], state["probs"])


ProgressFn = Callable[[int, list[dict[str, float]]], None]
"""Called after each epoch with the epoch (1-based) and, per unit, loss, train_acc, test_correct, n_test."""


def unit_seeds(seed: int, fold: int) -> dict[str, int]:
    """Independent seeds for init, batch order, augmentation, mixing and dropout, derived from (seed, fold)."""
    state = np.random.SeedSequence([seed, fold]).generate_state(4, dtype=np.uint32)
    seeds = {name: int(s) for name, s in zip(("init", "data", "augment", "mix"), state, strict=True)}
    seeds["dropout"] = int(np.random.SeedSequence([seed, fold, 1]).generate_state(1, dtype=np.uint32)[0])
    return seeds


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """mean over the batch of sum_k -t_k log softmax(logits)_k, in float32."""
    return -(targets * F.log_softmax(logits.float(), dim=-1)).sum(dim=-1).mean()


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """Slices of one epoch; the last partial batch is kept unless it holds a single sample (mixing needs 2)."""
    bounds = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    if bounds and bounds[-1][1] - bounds[-1][0] < 2:
        bounds.pop()
    return bounds


@dataclass
class _UnitState:
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
    sums: dict[str, Any] = field(default_factory=dict)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class GroupTrainer:
    """Trains one group of units; ``run()`` returns a :class:`UnitResult` per unit, in the given order."""

    def __init__(
        self, params: Params, method: str, units: Sequence[Unit], data: FlowSet, device: torch.device,
        ckpt_path: Path | None = None, fingerprint: str = "", progress: ProgressFn | None = None,
    ) -> None:
        if not units:
            raise ValueError("a group needs at least one unit")
        self.params, self.method, self.units, self.device = params, method, list(units), device
        self.ckpt_path, self.fp, self.progress = ckpt_path, fingerprint, progress
        tp = params.train
        self.epochs = tp.epochs
        self.face_stream = params.model.face_stream
        self.flow = torch.from_numpy(np.array(data.flow, dtype=np.float32)).to(device)  # the flow set, once
        self.labels = torch.tensor(data.labels, dtype=torch.int64, device=device)
        self.faces = None
        if self.face_stream:
            onset = torch.from_numpy(np.array(data.onset)).to(device)
            self.faces = (onset.to(torch.float32) / 255.0).unsqueeze(1)
        k = data.num_classes
        self.states: list[_UnitState] = []
        built = []
        for unit in self.units:
            seeds = unit_seeds(unit.seed, unit.fold.index)
            torch.manual_seed(seeds["init"])
            built.append(models.build(params.model, self.flow.shape[1], k, self.flow.shape[-1]))
            self.states.append(self._unit_state(unit, data, built[-1], seeds, k))
        self.model = GroupedFlowModel(built).to(device)
        del built
        self.model.dropout_generators = [s.gens["dropout"] for s in self.states]
        self.opt = GroupedAdam(
            self.model.parameters(), len(self.units), lr=tp.lr, weight_decay=tp.weight_decay,
            decoupled=tp.optimizer == "adamw",
        )
        self.forward = self.model
        if tp.compile:
            self.forward = torch.compile(self.model, mode=None if tp.compile == "default" else tp.compile)
        self.autocast: Callable[[], Any] = (
            (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" else contextlib.nullcontext
        )
        a = tp.augment
        self.augment_on = a.flip or a.rotate_deg > 0 or a.translate_frac > 0
        self.moves = a.rotate_deg > 0 or a.translate_frac > 0
        self.history = [
            {key: torch.full((self.epochs,), float("nan"), dtype=torch.float64) for key in HISTORY_KEYS}
            for _ in self.units
        ]
        self.has_test = any(len(u.fold.test_rows) for u in self.units)  # a fit on every subject has none
        if self.has_test and not all(len(u.fold.test_rows) for u in self.units):
            raise ValueError("units of one group must all have test clips or all have none")
        self.pred_epochs: list[int] = []
        self.probs: list[list[torch.Tensor]] = [[] for _ in self.units]
        self.start_epoch = 0

    def _unit_state(
        self, unit: Unit, data: FlowSet, model: models.FlowModel, seeds: dict[str, int], k: int
    ) -> _UnitState:
        tp = self.params.train
        fold = unit.fold
        mean, std = fold_stats(data.index, fold, data.channels)
        as_map = dict(dtype=torch.float32, device=self.device)
        train_rows = torch.as_tensor(fold.train_rows, dtype=torch.int64, device=self.device)
        bounds = batch_bounds(len(fold.train_rows), tp.batch_size)
        if not bounds:
            raise ValueError(f"{unit.describe()}: {len(fold.train_rows)} training clip(s); need at least 2")
        mixer = mixing.get(
            self.method, num_classes=k, patch_size=model.patch_size, label_smoothing=tp.label_smoothing,
            **getattr(self.params.mixing, self.method).model_dump(),
        )
        mixer.fit_to_depth(model.depth)
        state = _UnitState(
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
        last_save = time.monotonic()
        self.model.train()
        for epoch in range(self.start_epoch, self.epochs):
            self._epoch(epoch)
            tested = self.has_test and ((epoch + 1) % tp.eval_every == 0 or epoch + 1 == self.epochs)
            correct = self._test(epoch) if tested else [None] * len(self.units)
            if self.progress is not None:
                self.progress(epoch + 1, [
                    {"loss": float(h["loss"][epoch]), "train_acc": float(h["train_acc"][epoch]),
                     "test_correct": c, "n_test": len(s.unit.fold.test_rows)}
                    for h, c, s in zip(self.history, correct, self.states, strict=True)
                ])
            due = time.monotonic() - last_save >= CHECKPOINT_SECONDS
            if self.ckpt_path is not None and epoch + 1 < self.epochs and due:
                checkpoint.save(self.ckpt_path, self._checkpoint_state(epoch + 1))
                last_save = time.monotonic()
            on_epoch_end(self.units, epoch + 1)
        none = torch.zeros((0, 0, self.model.num_classes))
        return [
            UnitResult(s.unit.seed, s.unit.fold.index, s.unit.fold.subject, h,
                       torch.tensor(self.pred_epochs, dtype=torch.int64), torch.stack(p) if p else none)
            for s, h, p in zip(self.states, self.history, self.probs, strict=True)
        ]

    def _epoch(self, epoch: int) -> None:
        for s in self.states:
            perm = torch.randperm(len(s.unit.fold.train_rows), generator=s.gens["data"]).to(self.device)
            s.epoch_rows = s.train_rows.index_select(0, perm)
            s.sums = {"loss": torch.zeros((), device=self.device), "correct": torch.zeros(
                (), dtype=torch.int64, device=self.device), "seen": 0}
        for step in range(max(len(s.bounds) for s in self.states)):
            self._step(step)
        for h, s in zip(self.history, self.states, strict=True):
            seen = s.sums["seen"]
            h["loss"][epoch] = s.sums["loss"].item() / seen
            h["train_acc"][epoch] = s.sums["correct"].item() / seen

    def _step(self, step: int) -> None:
        active = [step < len(s.bounds) for s in self.states]
        batch = self.params.train.batch_size
        xs, ys, faces = [], [], []
        for s, on in zip(self.states, active, strict=True):
            if on:
                lo, hi = s.bounds[step]
                rows = s.epoch_rows[lo:hi]
                xs.append(self.flow.index_select(0, rows))
                ys.append(self.labels.index_select(0, rows))
                faces.append(None if self.faces is None else self.faces.index_select(0, rows))
        if self.augment_on:
            xs, faces = self._augment([s for s, on in zip(self.states, active, strict=True) if on], xs, faces)
        plans: list[MixPlan | None] = []
        clean: list[torch.Tensor | None] = []
        it = iter(range(len(xs)))
        for s, on in zip(self.states, active, strict=True):
            if not on:
                plans.append(None)
                clean.append(None)
                continue
            j = next(it)
            x = s.normalise(xs[j])
            clean.append(x)
            plans.append(s.mixer.mix_inputs(x, ys[j], s.gens["mix"]))
        sizes = [0 if p is None else p.x.shape[0] for p in plans]
        x_in = self._pad([None if p is None else p.x for p in plans], batch)
        face_in = self._pad_faces(faces, active, batch)
        mixer = self.states[0].mixer
        manifold = self._manifold(plans, batch)
        with self.autocast():
            logits = self.forward(x_in, face=face_in, rows=sizes, manifold=manifold,
                                  need_attention=mixer.needs_attention)
            attention = self.model.cls_attention if mixer.needs_attention else None
            clean_logits = None
            if mixer.clean_loss:
                clean_logits = self.forward(self._pad(clean, batch), face=face_in, rows=sizes)
            losses = []
            j = 0
            for g, (s, plan) in enumerate(zip(self.states, plans, strict=True)):
                if plan is None:
                    continue
                n = sizes[g]
                targets = s.mixer.mix_targets(plan, None if attention is None else attention[g, :n])
                loss = soft_cross_entropy(logits[g, :n], targets)
                if clean_logits is not None:
                    loss = loss + F.cross_entropy(
                        clean_logits[g, :n].float(), ys[j], label_smoothing=self.params.train.label_smoothing
                    )
                losses.append(loss)
                s.sums["loss"] += loss.detach() * n
                s.sums["correct"] += (logits[g, :n].detach().argmax(-1) == targets.argmax(-1)).sum()
                s.sums["seen"] += n
                j += 1
        self.opt.zero_grad()
        torch.stack(losses).sum().backward()
        self.opt.step(active)

    def _augment(
        self, states: list[_UnitState], xs: list[torch.Tensor], faces: list[torch.Tensor | None]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
        """Each unit draws its own transforms; all of them are applied in one batched pass."""
        aug = self.params.train.augment
        tfs = [
            draw_transforms(x.shape[0], s.gens["augment"], aug, self.device) for s, x in zip(states, xs, strict=True)
        ]
        tf = Transforms(
            flip=torch.cat([t.flip for t in tfs]), angle=torch.cat([t.angle for t in tfs]),
            shift=torch.cat([t.shift for t in tfs]),
        )
        face_cat = None if faces[0] is None else torch.cat(faces)  # type: ignore[arg-type]
        out, face_out = apply_transforms(torch.cat(xs), tf, face_cat, moves=self.moves)
        sizes = [x.shape[0] for x in xs]
        new_faces: list[torch.Tensor | None] = (
            list(face_out.split(sizes)) if face_out is not None else [None] * len(xs)
        )
        return list(out.split(sizes)), new_faces

    def _pad(self, xs: Sequence[torch.Tensor | None], rows: int) -> torch.Tensor:
        """(G, rows, ...) with each unit's tensor in its first rows and zeros elsewhere."""
        shape = self.flow.shape[1:]
        out = torch.zeros((len(xs), rows, *shape), dtype=torch.float32, device=self.device)
        for g, x in enumerate(xs):
            if x is not None:
                out[g, : x.shape[0]] = x
        return out

    def _pad_faces(self, faces: list[torch.Tensor | None], active: list[bool], rows: int) -> torch.Tensor | None:
        if self.faces is None:
            return None
        out = torch.zeros((len(active), rows, *self.faces.shape[1:]), dtype=torch.float32, device=self.device)
        it = iter(faces)
        for g, on in enumerate(active):
            if on:
                f = next(it)
                out[g, : f.shape[0]] = f
        return out

    def _manifold(self, plans: list[MixPlan | None], rows: int) -> GroupManifold | None:
        if not any(p is not None and p.manifold is not None for p in plans):
            return None
        block, lam, perm = [], [], []
        for p in plans:
            identity = torch.arange(rows, device=self.device)
            if p is None or p.manifold is None:
                block.append(-1)
                lam.append(1.0)
                perm.append(identity)
                continue
            block.append(p.manifold.block)
            lam.append(p.manifold.lam)
            n = p.manifold.perm.shape[0]
            perm.append(torch.cat([p.manifold.perm.to(self.device), identity[n:]]))
        return GroupManifold(
            block=torch.tensor(block, dtype=torch.int64, device=self.device),
            lam=torch.tensor(lam, dtype=torch.float32, device=self.device),
            perm=torch.stack(perm),
        )

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
            face_in = self._pad_faces([f for f in faces if f is not None], [n > 0 for n in chunk], width)
            with self.autocast():
                logits = self.forward(self._pad(xs, width), face=face_in, rows=chunk)
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


def train_group(
    params: Params, method: str, units: Sequence[Unit], data: FlowSet, device: torch.device,
    ckpt_path: Path | None = None, fingerprint: str = "", progress: ProgressFn | None = None,
) -> list[UnitResult]:
    """Train ``units`` together (see :class:`GroupTrainer`) and return their results in order."""
    return GroupTrainer(params, method, units, data, device, ckpt_path, fingerprint, progress).run()
