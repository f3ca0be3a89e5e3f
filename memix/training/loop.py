"""One LOSO fold's training loop: data on the device, every random draw from seeded generators, resumable.

Why it looks the way it does:
- The fold's whole training set sits on the device as one tensor; a batch is an ``index_select`` of a
  generator-drawn permutation, then augmentation and mixing run on the device. No DataLoader, no per-step
  host work beyond what the mixers need.
- Every random draw comes from explicit ``torch.Generator`` objects seeded from (seed, fold), plus
  ``torch.manual_seed`` before the model is built, so one seed gives the same bytes on CPU every time.
- Nothing of the test subject reaches normalisation (fold statistics from the training rows' per-clip sums)
  or training; every evaluated epoch's test predictions are returned and selection happens in evaluation.
- Inside a fold, ``currentNN.pt`` holds model, optimizer and generator states (at most every
  ``CHECKPOINT_SECONDS``), so a killed run resumes to the same bytes.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from memix import mixing, models
from memix.config import Params
from memix.io.flowset import FlowSet
from memix.training import checkpoint
from memix.training.augment import augment_batch
from memix.training.folds import Fold

CHECKPOINT_SECONDS = 30.0
"""Minimum wall time between mid-fold checkpoints; a fold's end is always checkpointed."""

EVAL_BATCH = 256


def on_epoch_end(fold: int, epoch: int) -> None:
    """Hook called after each epoch's state is final (tests patch it to simulate a kill)."""


def on_fold_end(fold: int) -> None:
    """Hook called after a fold's checkpoint is written (tests patch it to simulate a kill)."""


@dataclass
class FoldTensors:
    """A fold's data on the device.

    Training flow stays in pixel units (augmentation rotates u and v together, which per-channel scaling
    would distort) and is normalised per batch after augmentation (mixers that draw from the fold, i.e.
    ``needs_inputs``, get ``normalise(x_train)``). Test flow is normalised.
    Faces are float in [0, 1], (N, 1, S, S).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    face_train: torch.Tensor | None
    x_test: torch.Tensor
    y_test: torch.Tensor
    face_test: torch.Tensor | None
    mean: torch.Tensor
    std: torch.Tensor

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def fold_tensors(
    data: FlowSet, fold: Fold, mean: np.ndarray, std: np.ndarray, face: bool, device: torch.device
) -> FoldTensors:
    """Copy a fold's rows from the (memory-mapped) flow set to the device, once per fold."""
    m = torch.as_tensor(mean, dtype=torch.float32, device=device).reshape(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=device).reshape(1, -1, 1, 1)

    def flow(rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(data.flow[rows])).to(device=device, dtype=torch.float32)

    def faces(rows: np.ndarray) -> torch.Tensor | None:
        if not face:
            return None
        onset = torch.from_numpy(np.ascontiguousarray(data.onset[rows])).to(device)
        return (onset.to(torch.float32) / 255.0).unsqueeze(1)

    def labels(rows: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(data.labels[rows], dtype=torch.int64, device=device)

    tr, te = fold.train_rows, fold.test_rows
    x_train = flow(tr)
    return FoldTensors(
        x_train=x_train, y_train=labels(tr), face_train=faces(tr),
        x_test=(flow(te) - m) / s, y_test=labels(te), face_test=faces(te), mean=m, std=s,
    )


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without one is an error naming the key."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but torch sees no CUDA device; use 'auto' or 'cpu'")
    return torch.device(name)


def fold_seeds(seed: int, fold: int) -> dict[str, int]:
    """Independent seeds for init, batch order, augmentation and mixing, derived from (seed, fold)."""
    state = np.random.SeedSequence([seed, fold]).generate_state(4, dtype=np.uint32)
    return {name: int(s) for name, s in zip(("init", "data", "augment", "mix"), state, strict=True)}


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """mean over the batch of sum_k -t_k log softmax(logits)_k, in float32."""
    return -(targets * F.log_softmax(logits.float(), dim=-1)).sum(dim=-1).mean()


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """Slices of one epoch; the last partial batch is kept unless it holds a single sample (mixing needs 2)."""
    bounds = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    if bounds and bounds[-1][1] - bounds[-1][0] < 2:
        bounds.pop()
    return bounds


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor, face: torch.Tensor | None, autocast: Any) -> torch.Tensor:
    """Class probabilities (N, K) float32 on the CPU, in chunks so a large fold fits."""
    was_training = model.training
    model.eval()
    out = []
    for s in range(0, x.shape[0], EVAL_BATCH):
        f = None if face is None else face[s : s + EVAL_BATCH]
        with autocast():
            logits = model(x[s : s + EVAL_BATCH], face=f)
        out.append(torch.softmax(logits.float(), dim=-1))
    model.train(was_training)
    return torch.cat(out).cpu()


def _gen_states(gens: dict[str, torch.Generator], device: torch.device) -> dict[str, torch.Tensor]:
    states = {name: g.get_state() for name, g in gens.items()}
    states["torch"] = torch.get_rng_state()
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def _set_gen_states(gens: dict[str, torch.Generator], states: dict[str, torch.Tensor], device: torch.device) -> None:
    for name, g in gens.items():
        g.set_state(states[name])
    torch.set_rng_state(states["torch"])
    if device.type == "cuda":
        torch.cuda.set_rng_state(states["cuda"], device)


def train_fold(
    params: Params, method: str, seed: int, fold: Fold, data: FoldTensors, num_classes: int,
    device: torch.device, ckpt_dir: Path, fp: str, progress: bool = True,
) -> dict[str, Any]:
    """Train one fold from scratch (or from ``current.pt``) and return its predictions and history."""
    tp = params.train
    seeds = fold_seeds(seed, fold.index)
    torch.manual_seed(seeds["init"])
    model = models.build(params.model, data.x_train.shape[1], num_classes, data.x_train.shape[-1]).to(device)
    opt_cls = torch.optim.AdamW if tp.optimizer == "adamw" else torch.optim.Adam
    opt = opt_cls(model.parameters(), lr=tp.lr, weight_decay=tp.weight_decay, foreach=True)
    mixer = mixing.get(
        method, num_classes=num_classes, patch_size=model.patch_size, label_smoothing=tp.label_smoothing,
        **getattr(params.mixing, method).model_dump(),
    )
    mixer.fit_to_depth(model.depth)
    mixer.bind(data.y_train, data.normalise(data.x_train) if mixer.needs_inputs else None)
    gens = {k: torch.Generator(device=device).manual_seed(seeds[k]) for k in ("data", "augment", "mix")}
    autocast = (
        (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" else contextlib.nullcontext
    )
    augment_on = tp.augment.flip or tp.augment.rotate_deg > 0 or tp.augment.translate_frac > 0

    n = data.x_train.shape[0]
    bounds = batch_bounds(n, tp.batch_size)
    if not bounds:
        raise ValueError(f"fold {fold.index} (test subject {fold.subject}): {n} training clip(s); need at least 2")
    history = {
        k: torch.full((tp.epochs,), float("nan"), dtype=torch.float64) for k in ("loss", "train_acc", "test_acc")
    }
    pred_epochs: list[int] = []
    probs: list[torch.Tensor] = []
    start = 0

    cur = checkpoint.load(checkpoint.current_path(ckpt_dir, fold.index))
    if cur is not None and cur.get("fingerprint") == fp and int(cur.get("fold", -1)) == fold.index:
        model.load_state_dict(cur["model"])
        opt.load_state_dict(cur["optimizer"])
        _set_gen_states(gens, cur["rng"], device)
        history = {k: v.clone() for k, v in cur["history"].items()}
        pred_epochs = [int(e) for e in cur["pred_epochs"].tolist()]
        probs = list(cur["probs"].unbind(0)) if pred_epochs else []
        start = int(cur["epoch"])

    last_save = time.monotonic()
    model.train()
    for epoch in tqdm(range(start, tp.epochs), desc=f"fold {fold.index} {fold.subject}", leave=False,
                      disable=not progress, initial=start, total=tp.epochs):
        perm = torch.randperm(n, generator=gens["data"], device=device)
        loss_sum = torch.zeros((), dtype=torch.float32, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        seen = 0
        for s, e in bounds:
            idx = perm[s:e]
            xb = data.x_train.index_select(0, idx)
            yb = data.y_train.index_select(0, idx)
            fb = None if data.face_train is None else data.face_train.index_select(0, idx)
            if augment_on:
                xb, fb = augment_batch(xb, gens["augment"], tp.augment, face=fb)
            xb = data.normalise(xb)
            plan = mixer.mix_inputs(xb, yb, gens["mix"])
            with autocast():
                logits = model(plan.x, face=fb, manifold=plan.manifold, need_attention=mixer.needs_attention)
                attention = model.cls_attention if mixer.needs_attention else None
                targets = mixer.mix_targets(plan, attention)
                loss = soft_cross_entropy(logits, targets)
                if mixer.clean_loss:
                    loss = loss + F.cross_entropy(
                        model(xb, face=fb).float(), yb, label_smoothing=tp.label_smoothing
                    )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * (e - s)
            correct += (logits.detach().argmax(-1) == targets.argmax(-1)).sum()
            seen += e - s
        history["loss"][epoch] = loss_sum.item() / seen
        history["train_acc"][epoch] = correct.item() / seen
        if (epoch + 1) % tp.eval_every == 0 or epoch + 1 == tp.epochs:
            p = predict(model, data.x_test, data.face_test, autocast)
            probs.append(p)
            pred_epochs.append(epoch + 1)
            history["test_acc"][epoch] = (p.argmax(-1) == data.y_test.cpu()).double().mean().item()
        if epoch + 1 < tp.epochs and time.monotonic() - last_save >= CHECKPOINT_SECONDS:
            checkpoint.save(checkpoint.current_path(ckpt_dir, fold.index), {
                "fingerprint": fp, "fold": fold.index, "epoch": epoch + 1,
                "model": model.state_dict(), "optimizer": opt.state_dict(), "rng": _gen_states(gens, device),
                "history": history, "pred_epochs": torch.tensor(pred_epochs, dtype=torch.int64),
                "probs": torch.stack(probs) if probs else torch.zeros(0),
            })
            last_save = time.monotonic()
        on_epoch_end(fold.index, epoch + 1)

    return {
        "fingerprint": fp, "fold": fold.index, "subject": fold.subject, "history": history,
        "pred_epochs": torch.tensor(pred_epochs, dtype=torch.int64), "probs": torch.stack(probs),
    }


