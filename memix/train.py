"""Leave-one-subject-out training of one (method, seed): predictions for every fold and evaluated epoch.

Why it looks the way it does:
- The fold's whole training set sits on the device as one normalised tensor; a batch is an ``index_select``
  of a generator-drawn permutation, then augmentation and mixing run on the device. No DataLoader, no
  per-step host work beyond what the mixers need.
- Every random draw comes from explicit ``torch.Generator`` objects seeded from (seed, fold), plus
  ``torch.manual_seed`` before the model is built, so one seed gives the same bytes on CPU every time.
- Nothing of the test subject reaches normalisation (fold statistics from the training rows' per-clip sums),
  training, or any choice made here: every evaluated epoch is written and selection happens in evaluate.
- Resume: ``out_dir/checkpoints/fold<NN>.pt`` when a fold ends (predictions + history) and ``current.pt``
  inside a fold (model, optimizer, generator states; at most every ``CHECKPOINT_SECONDS``). A resumed run
  replays to the same bytes as an uninterrupted one. The folder is deleted when the run completes (it is not
  a DVC output); a fingerprint of params and inputs makes a stale folder be ignored rather than mixed in.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from memix import atomic, checkpoint, loso
from memix.config import METHODS, Params

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
    arrays: dict[str, np.ndarray], fold: loso.Fold, mean: np.ndarray, std: np.ndarray, y: np.ndarray,
    face: bool, device: torch.device,
) -> FoldTensors:
    """Copy a fold's rows from the (memory-mapped) shards to the device, once per fold."""
    m = torch.as_tensor(mean, dtype=torch.float32, device=device).reshape(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=device).reshape(1, -1, 1, 1)

    def flow(rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(arrays["flow"][rows])).to(device=device, dtype=torch.float32)

    def faces(rows: np.ndarray) -> torch.Tensor | None:
        if not face:
            return None
        onset = torch.from_numpy(np.ascontiguousarray(arrays["onset"][rows])).to(device)
        return (onset.to(torch.float32) / 255.0).unsqueeze(1)

    def labels(rows: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(y[rows], dtype=torch.int64, device=device)

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


def fingerprint(params: Params, method: str, seed: int, index: pd.DataFrame, device: torch.device) -> str:
    """What a checkpoint must match to be resumed: the params this run uses, its inputs' index and device."""
    payload = {
        "train": params.train.model_dump(mode="json"),
        "model": params.model.model_dump(mode="json"),
        "mixing": getattr(params.mixing, method).model_dump(mode="json"),
        "method": method,
        "seed": seed,
        "device": device.type,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode())
    digest.update(pd.util.hash_pandas_object(index, index=False).to_numpy().tobytes())
    return digest.hexdigest()


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
    params: Params, method: str, seed: int, fold: loso.Fold, data: FoldTensors, num_classes: int,
    device: torch.device, ckpt_dir: Path, fp: str, progress: bool = True,
) -> dict[str, Any]:
    """Train one fold from scratch (or from ``current.pt``) and return its predictions and history."""
    from memix import mixing, models
    from memix.augment import augment_batch

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


def fold_predictions(index: pd.DataFrame, fold: loso.Fold, state: dict[str, Any], names: list[str]) -> pd.DataFrame:
    """Rows (clip_id, subject, fold, epoch, true, label, pred, prob_k) of one fold, all evaluated epochs."""
    test = index.iloc[fold.test_rows]
    probs = state["probs"].numpy().astype(np.float32)  # (E, n_test, K)
    epochs = state["pred_epochs"].numpy()
    n_ep, n_test, k = probs.shape
    frame = pd.DataFrame({
        "clip_id": np.tile(test["clip_id"].astype(str).to_numpy(), n_ep),
        "subject": fold.subject,
        "fold": np.int64(fold.index),
        "epoch": np.repeat(epochs.astype(np.int64), n_test),
        "true": np.tile(test["label_id"].astype(np.int64).to_numpy(), n_ep),
        "pred": probs.argmax(-1).reshape(-1).astype(np.int64),
    })
    frame.insert(5, "label", [names[t] for t in frame["true"]])
    prob_cols = pd.DataFrame(probs.reshape(-1, k), columns=[f"prob_{j}" for j in range(k)])
    return pd.concat([frame, prob_cols], axis=1)


def write_live(live_dir: Path, fold: loso.Fold, history: dict[str, torch.Tensor], n_train: int) -> None:
    """A fold's DVCLive logs, replayed from its history into a temp folder and renamed into place.

    Replaying (instead of logging as training goes) makes a resumed run's logs identical to an uninterrupted
    one's and keeps per-epoch file I/O out of the loop. Metrics carry no timestamps, so bytes are stable. Names
    have no `/`: DVCLive would make a folder per prefix, and every folder costs each no-op `dvc repro` a
    status check (27 stages x 12 folds).
    """
    from dvclive import Live
    from scmrepo.exceptions import SCMError

    with atomic.atomic_path(live_dir) as tmp:
        try:
            live_logger = Live(dir=str(tmp), dvcyaml=False, save_dvc_exp=False, report=None)
        except SCMError as err:  # DVCLive reads the current commit; a fresh `git init` has none
            raise RuntimeError(
                f"DVCLive could not read the git repository ({err}); commit the project once "
                "(`git add -A && git commit -m init`) before training"
            ) from None
        with live_logger as live:
            live.log_params({"fold": fold.index, "test_subject": fold.subject, "n_train": n_train,
                             "n_test": len(fold.test_rows)})
            for epoch in range(len(history["loss"])):
                live.step = epoch + 1
                live.log_metric("train_loss", float(history["loss"][epoch]), timestamp=False)
                live.log_metric("train_accuracy", float(history["train_acc"][epoch]), timestamp=False)
                acc = float(history["test_acc"][epoch])
                if not np.isnan(acc):
                    live.log_metric("test_accuracy", acc, timestamp=False)


def run(params: Params, method: str, seed: int, flow_dir: Path, out_dir: Path, resume: bool = True) -> Path:
    """LOSO-train ``method`` with ``seed`` on the flow shards in ``flow_dir``; returns predictions.parquet's path."""
    from memix import shards

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    flow_dir, out_dir = Path(flow_dir), Path(out_dir)
    channels = loso.read_channels(flow_dir)
    index, arrays = shards.load(flow_dir)
    index = index.reset_index(drop=True)
    loso.validate_index(index, channels, flow_dir / "index.parquet")
    _check_arrays(arrays, index, channels, params.model.face_stream, flow_dir)

    device = resolve_device(params.train.device)
    threads = torch.get_num_threads()
    if params.train.threads:
        torch.set_num_threads(params.train.threads)
    try:
        return _run(params, method, seed, index, arrays, channels, device, out_dir, resume)
    finally:
        torch.set_num_threads(threads)


def _run(
    params: Params, method: str, seed: int, index: pd.DataFrame, arrays: dict[str, np.ndarray], channels: list[str],
    device: torch.device, out_dir: Path, resume: bool,
) -> Path:
    k = loso.num_classes(index)
    names = loso.class_names(index)
    folds = loso.make_folds(index)
    y = index["label_id"].astype(np.int64).to_numpy()
    fp = fingerprint(params, method, seed, index, device)

    ckpt_dir = out_dir / "checkpoints"
    if not resume:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    done: dict[int, dict[str, Any]] = {}
    for fold in folds:
        state = checkpoint.load(checkpoint.fold_path(ckpt_dir, fold.index))
        if state is not None and state.get("fingerprint") == fp:
            done[fold.index] = state
    if not done and not _in_progress(ckpt_dir, fp):  # nothing of THIS run to resume: start clean
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        shutil.rmtree(out_dir / "live", ignore_errors=True)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    pending = [fold for fold in folds if fold.index not in done]
    job = _FoldJob(params, method, seed, index, arrays, channels, y, k, device, ckpt_dir, fp)
    workers = fold_workers(params.train, device, len(pending))
    with tqdm(total=len(folds), initial=len(done), desc=f"LOSO {method} seed{seed}", unit="fold") as bar:
        for fold, state in _map_folds(job, pending, workers):
            checkpoint.save(checkpoint.fold_path(ckpt_dir, fold.index), state)
            checkpoint.current_path(ckpt_dir, fold.index).unlink(missing_ok=True)
            done[fold.index] = state
            bar.update()
            on_fold_end(fold.index)

    frames = []
    for fold in folds:
        state = done[fold.index]
        write_live(out_dir / "live" / f"fold{fold.index:02d}", fold, state["history"], len(fold.train_rows))
        frames.append(fold_predictions(index, fold, state, names))

    preds = pd.concat(frames, ignore_index=True).sort_values(["fold", "epoch", "clip_id"], kind="stable")
    out = out_dir / "predictions.parquet"
    atomic.write_parquet(out, preds.reset_index(drop=True))
    write_curves(out_dir / "curves.csv", preds, [done[f.index]["history"] for f in folds])
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    return out


def write_curves(path: Path, preds: pd.DataFrame, histories: list[dict[str, torch.Tensor]]) -> None:
    """One row per evaluated epoch: mean training loss/accuracy over folds and the POOLED test accuracy.

    The pooled accuracy at epoch e is what the `last` rule would report had training stopped at e; it is the
    curve `dvc plots` shows (the per-fold DVCLive logs stay in live/).
    """
    pooled = (preds["true"] == preds["pred"]).groupby(preds["epoch"]).mean()
    loss = torch.stack([h["loss"] for h in histories]).mean(0)
    train_acc = torch.stack([h["train_acc"] for h in histories]).mean(0)
    rows = [
        f"{int(e)},{float(loss[e - 1]):.6f},{float(train_acc[e - 1]):.6f},{float(acc):.6f}"
        for e, acc in pooled.items()
    ]
    atomic.write_text(path, "epoch,train_loss,train_accuracy,test_accuracy\n" + "\n".join(rows) + "\n")


def fold_workers(tp: Any, device: torch.device, n_pending: int) -> int:
    """Processes training folds at once: ``train.workers`` (0 = one per CPU core), 1 on a GPU or for one fold."""
    if device.type != "cpu" or n_pending <= 1:
        return 1
    wanted = tp.workers or (os.cpu_count() or 1)
    return max(1, min(wanted, n_pending))


@dataclass
class _FoldJob:
    """Everything one fold's training needs, so a worker process can run it from the fold alone."""

    params: Params
    method: str
    seed: int
    index: pd.DataFrame
    arrays: dict[str, np.ndarray]
    channels: list[str]
    y: np.ndarray
    num_classes: int
    device: torch.device
    ckpt_dir: Path
    fp: str

    def __call__(self, fold: loso.Fold, progress: bool = True) -> tuple[loso.Fold, dict[str, Any]]:
        mean, std = loso.fold_stats(self.index, fold, self.channels)
        data = fold_tensors(self.arrays, fold, mean, std, self.y, self.params.model.face_stream, self.device)
        state = train_fold(self.params, self.method, self.seed, fold, data, self.num_classes, self.device,
                           self.ckpt_dir, self.fp, progress=progress)
        return fold, state


_WORKER_JOB: _FoldJob | None = None


def _worker_init(job: _FoldJob) -> None:
    """Per worker: the same thread count a fold gets in-process (``run`` sets it there)."""
    global _WORKER_JOB
    _WORKER_JOB = job
    if job.params.train.threads:
        torch.set_num_threads(job.params.train.threads)


def _worker_run(fold: loso.Fold) -> tuple[loso.Fold, dict[str, Any]]:
    assert _WORKER_JOB is not None
    return _WORKER_JOB(fold, progress=False)


def _map_folds(job: _FoldJob, folds: list[loso.Fold], workers: int) -> Iterator[tuple[loso.Fold, dict[str, Any]]]:
    """Train ``folds`` on ``workers`` processes and yield (fold, state) in fold order.

    Each fold is seeded from (seed, fold) and runs with ``train.threads`` torch threads wherever it runs, so the
    results do not depend on the worker count. Workers are forked where the platform allows (no re-import of
    torch and timm per worker) and spawned elsewhere.
    """
    if workers <= 1:
        for fold in folds:
            yield job(fold)
        return
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    if ctx.get_start_method() == "fork":  # import the heavy modules once here, not once per worker
        from memix import mixing

        importlib.import_module("memix.models.flow_model")
        importlib.import_module("memix.augment")
        mixing.get(job.method, num_classes=job.num_classes)
    with ctx.Pool(workers, initializer=_worker_init, initargs=(job,)) as pool:
        yield from pool.imap(_worker_run, folds)


def _in_progress(ckpt_dir: Path, fp: str) -> bool:
    """True when the folder holds an in-progress fold (``currentNN.pt``) of THIS run (same fingerprint)."""
    for path in sorted(ckpt_dir.glob("current*.pt")) if ckpt_dir.is_dir() else []:
        state = checkpoint.load(path)
        if state is not None and state.get("fingerprint") == fp:
            return True
    return False


def _check_arrays(
    arrays: dict[str, np.ndarray], index: pd.DataFrame, channels: list[str], face: bool, flow_dir: Path
) -> None:
    if "flow" not in arrays:
        raise ValueError(f"{flow_dir}: no array 'flow' in the shard folder")
    shape = arrays["flow"].shape
    if len(shape) != 4 or shape[0] != len(index) or shape[1] != len(channels) or shape[2] != shape[3]:
        raise ValueError(
            f"{flow_dir}: array flow has shape {shape}; expected ({len(index)}, {len(channels)}, S, S) "
            f"for channels {channels}"
        )
    if face:
        if "onset" not in arrays:
            raise ValueError(f"{flow_dir}: model.face_stream is true but the shard folder has no array 'onset'")
        if arrays["onset"].shape != (shape[0], shape[2], shape[3]):
            raise ValueError(f"{flow_dir}: array onset has shape {arrays['onset'].shape}; expected "
                             f"({shape[0]}, {shape[2]}, {shape[3]})")
