"""What a method's LOSO run leaves behind, and the live view of it while it trains.

Files in the run folder (``data/train/<method>/``):
- ``predictions.parquet``: seed, clip_id, subject, dataset, fold, epoch, true, label, pred, prob_<k>: every
  evaluated epoch of every fold of every seed (evaluation selects epochs, training never does);
- ``history.parquet``: seed, fold, subject, epoch, train_loss, train_accuracy, test_accuracy (per fold);
- ``curves.csv``: seed, epoch, mean training loss/accuracy over folds and the POOLED test accuracy over folds
  (what the ``last`` rule would report had training stopped at that epoch);
- ``keyframe_noise.parquet`` (the train stage's runs): seed, clip_id, subject, dataset, fold, level, true, pred,
  prob_<k>: per key-frame noise level (``eval.keyframe_noise``) each unit's last-epoch model on its test clips with
  shifted onset and apex; no rows (the same columns) when no level is configured. Level 0 is not repeated here: it
  is ``predictions.parquet``'s last epoch;
- ``live/seed<N>/``: one DVCLive run per seed with those pooled curves. During training it is written step by
  step as every fold of a seed finishes an epoch (so ``dvc exp show`` and DVC Studio can follow a run; where an
  earlier run's outputs are still there, into ``checkpoints/live/`` instead, so that set stays whole); when the
  run completes it is rewritten from the full histories, so its bytes do not depend on interruptions.

They are built in temp folders and swapped in together (:func:`memix.io.atomic.atomic_paths`): a failure
leaves the earlier set whole, never new predictions beside old curves.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memix.io import atomic
from memix.io.flowset import FlowSet
from memix.training.loop import Unit, UnitResult

CURVE_METRICS = ("train_loss", "train_accuracy", "test_accuracy")


def unit_predictions(data: FlowSet, result: UnitResult, test_rows: np.ndarray, names: list[str]) -> pd.DataFrame:
    """Rows (seed, clip_id, subject, dataset, fold, epoch, true, label, pred, prob_k) of one unit, all epochs."""
    test = data.index.iloc[test_rows]
    probs = result.probs.numpy().astype(np.float32)  # (E, n_test, K)
    epochs = result.pred_epochs.numpy()
    n_ep, n_test, k = probs.shape
    true = np.tile(test["label_id"].astype(np.int64).to_numpy(), n_ep)
    dataset = test["dataset"].astype(str).to_numpy() if "dataset" in test.columns else np.full(n_test, "")
    frame = pd.DataFrame({
        "seed": np.int64(result.seed),
        "clip_id": np.tile(test["clip_id"].astype(str).to_numpy(), n_ep),
        "subject": np.tile(test["subject"].astype(str).to_numpy(), n_ep),  # the clip's (a LOSO fold has one)
        "dataset": np.tile(dataset, n_ep),
        "fold": np.int64(result.fold),
        "epoch": np.repeat(epochs.astype(np.int64), n_test),
        "true": true,
        "label": [names[t] for t in true],
        "pred": probs.argmax(-1).reshape(-1).astype(np.int64),
    })
    prob_cols = pd.DataFrame(probs.reshape(-1, k), columns=[f"prob_{j}" for j in range(k)])
    return pd.concat([frame, prob_cols], axis=1)


NOISE_KEYS = ["seed", "clip_id", "subject", "dataset", "fold", "level", "true", "pred"]
"""keyframe_noise.parquet's columns before ``prob_<k>``."""


def noise_predictions(
    data: FlowSet, results: Sequence[UnitResult], test_rows: dict[int, np.ndarray], levels: Sequence[int]
) -> pd.DataFrame:
    """keyframe_noise.parquet: per unit and level its test clips' last-epoch prediction; sorted by seed, fold,
    level and clip; no rows (same columns, ``prob_0..prob_<K-1>``) without levels."""
    k = data.num_classes
    frames = []
    for r in results:
        missing = sorted(set(levels) - set(r.noise))
        if missing:
            raise ValueError(f"seed {r.seed} fold {r.fold}: no key-frame noise predictions of level(s) {missing}")
        test = data.index.iloc[test_rows[r.fold]]
        dataset = test["dataset"].astype(str).to_numpy() if "dataset" in test.columns else np.full(len(test), "")
        for level in levels:
            probs = r.noise[level].numpy().astype(np.float32)  # (n_test, K)
            frame = pd.DataFrame({
                "seed": np.int64(r.seed), "clip_id": test["clip_id"].astype(str).to_numpy(),
                "subject": test["subject"].astype(str).to_numpy(), "dataset": dataset, "fold": np.int64(r.fold),
                "level": np.int64(level), "true": test["label_id"].astype(np.int64).to_numpy(),
                "pred": probs.argmax(-1).astype(np.int64),
            })
            frames.append(pd.concat([frame, pd.DataFrame(probs, columns=[f"prob_{j}" for j in range(k)])], axis=1))
    if not frames:  # parquet's types as with rows: int64, string, float32
        text = ("clip_id", "subject", "dataset")
        return pd.DataFrame({c: pd.Series(dtype="string" if c in text else "int64") for c in NOISE_KEYS}
                            | {f"prob_{j}": pd.Series(dtype=np.float32) for j in range(k)})
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["seed", "fold", "level", "clip_id"], kind="stable").reset_index(drop=True)


def history_frame(results: Sequence[UnitResult]) -> pd.DataFrame:
    rows = []
    for r in results:
        n = len(r.history["loss"])
        rows.append(pd.DataFrame({
            "seed": np.int64(r.seed), "fold": np.int64(r.fold), "subject": r.subject,
            "epoch": np.arange(1, n + 1, dtype=np.int64),
            "train_loss": r.history["loss"].numpy(), "train_accuracy": r.history["train_acc"].numpy(),
            "test_accuracy": r.history["test_acc"].numpy(),
        }))
    return pd.concat(rows, ignore_index=True)


def curves_frame(preds: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Per seed and evaluated epoch: mean training loss/accuracy over folds, pooled test accuracy."""
    pooled = (preds["true"] == preds["pred"]).groupby([preds["seed"], preds["epoch"]]).mean().rename("test_accuracy")
    train = history.groupby(["seed", "epoch"])[["train_loss", "train_accuracy"]].mean()
    out = train.join(pooled, how="inner").reset_index()
    return out[["seed", "epoch", *CURVE_METRICS]]


def write_outputs(
    out_dir: Path, data: FlowSet, results: Sequence[UnitResult], seeds: Sequence[int], protocol: str = "loso",
    noise_levels: Sequence[int] | None = None,
) -> None:
    """predictions.parquet, history.parquet, curves.csv, the DVCLive runs and (``noise_levels`` given, even empty)
    keyframe_noise.parquet, all swapped in together."""
    from memix.training.folds import make_folds

    folds = {f.index: f for f in make_folds(data.index, protocol)}
    names = data.class_names
    preds = pd.concat(
        [unit_predictions(data, r, folds[r.fold].test_rows, names) for r in results], ignore_index=True
    ).sort_values(["seed", "fold", "epoch", "clip_id"], kind="stable").reset_index(drop=True)
    history = history_frame(results).sort_values(["seed", "fold", "epoch"], kind="stable").reset_index(drop=True)
    curves = curves_frame(preds, history)
    names = ["predictions.parquet", "history.parquet", "curves.csv", "live"]
    noise = None
    if noise_levels is not None:
        test_rows = {f.index: f.test_rows for f in folds.values()}
        noise = noise_predictions(data, results, test_rows, sorted(noise_levels))
        names.append("keyframe_noise.parquet")
    with atomic.atomic_paths(*(out_dir / n for n in names), owned=_live_folder) as tmps:
        p_tmp, h_tmp, c_tmp, l_tmp = tmps[:4]
        atomic.write_parquet(p_tmp, preds)
        atomic.write_parquet(h_tmp, history)
        c_tmp.write_bytes(curves.to_csv(index=False, float_format="%.6f", lineterminator="\n").encode("utf-8"))
        write_live(out_dir / "live", curves, seeds, into=l_tmp)
        if noise is not None:
            atomic.write_parquet(tmps[4], noise)


def _live_folder(folder: Path) -> bool:
    """An earlier ``live/`` (nothing but ``seed<N>`` runs): the one output folder that may be replaced."""
    return all(p.name == ".gitignore" or (p.is_dir() and re.fullmatch(r"seed\d+", p.name)) for p in folder.iterdir())


def write_live(live_dir: Path, curves: pd.DataFrame, seeds: Sequence[int], into: Path | None = None) -> None:
    """One DVCLive run per seed, replayed from the pooled curves into a temp folder and renamed into place (or
    built at ``into``, a temp path the caller swaps in with other outputs).

    Metrics carry no timestamps, so equal curves give equal bytes. Names have no ``/`` (DVCLive would make a
    folder per prefix, and every folder costs each no-op ``dvc repro`` a status check).
    """
    if into is None:
        with atomic.atomic_path(live_dir, owned=_live_folder) as tmp:
            write_live(live_dir, curves, seeds, into=tmp)
        return
    into.mkdir()
    for seed in seeds:
        with _writing(live_dir / f"seed{seed}"), _live(into / f"seed{seed}") as live:
            for row in curves[curves["seed"] == seed].itertuples(index=False):
                live.step = int(row.epoch)
                for name in CURVE_METRICS:
                    live.log_metric(name, float(getattr(row, name)), timestamp=False)
            live.make_summary()


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """DVCLive's own failures as an error naming the folder it was writing: a full disk (an OSError without a
    file name, or sqlite3's ``database or disk is full`` from its state) as :class:`memix.io.atomic.DiskFullError`."""
    try:
        yield
    except (sqlite3.Error, OSError) as err:
        doing = "DVCLive could not write its logs"
        if atomic.is_disk_full(err):
            raise atomic.disk_full(err, path, doing) from err
        raise OSError(f"{path}: {doing} ({type(err).__name__}: {err})") from err


def _live(path: Path) -> Any:
    from dvclive import Live
    from scmrepo.exceptions import SCMError

    try:
        return Live(dir=str(path), dvcyaml=False, save_dvc_exp=False, report=None)
    except SCMError as err:  # DVCLive reads the current commit; a fresh `git init` has none
        raise RuntimeError(
            f"DVCLive could not read the git repository ({err}); commit the project once "
            "(`git add -A && git commit -m init`) before training"
        ) from None


class LiveLog:
    """The live view while a run trains: pooled per-seed curves logged to DVCLive as each epoch completes for
    every fold of a seed, and a progress bar callback with the latest loss and accuracy."""

    def __init__(self, live_dir: Path, seeds: Sequence[int], n_folds: int, epochs: int) -> None:
        self.live_dir, self.n_folds, self.epochs = live_dir, n_folds, epochs
        self.seeds = list(seeds)
        self._epochs: dict[tuple[int, int], dict[int, dict[str, float]]] = defaultdict(dict)
        self._runs: dict[int, Any] = {}
        self._failed = False  # a write failed: the run stops with that error, and close() adds no second one
        self.on_update: Callable[[str], None] | None = None

    def progress(self, groups: Sequence[Sequence[Unit]]) -> Callable[[int, int, list[dict[str, float]]], None]:
        """A callback for the executor: (group position, epoch, per-unit stats of that epoch)."""

        def report(group: int, epoch: int, stats: list[dict[str, float]]) -> None:
            for unit, st in zip(groups[group], stats, strict=True):
                self._epochs[(unit.seed, epoch)][unit.fold.index] = st
                if len(self._epochs[(unit.seed, epoch)]) == self.n_folds:
                    self._log(unit.seed, epoch, self._epochs.pop((unit.seed, epoch)))

        return report

    def _log(self, seed: int, epoch: int, folds: dict[int, dict[str, float]]) -> None:
        stats = list(folds.values())
        values = {
            "train_loss": float(np.mean([s["loss"] for s in stats])),
            "train_accuracy": float(np.mean([s["train_acc"] for s in stats])),
        }
        if all(s["test_correct"] is not None for s in stats):
            values["test_accuracy"] = sum(s["test_correct"] for s in stats) / sum(s["n_test"] for s in stats)
        with self._failing(), _writing(self.live_dir / f"seed{seed}"):
            if seed not in self._runs:
                self._runs[seed] = _live(self.live_dir / f"seed{seed}")
            live = self._runs[seed]
            live.step = epoch
            for name, value in values.items():
                live.log_metric(name, value, timestamp=False)
            live.make_summary()
        if self.on_update is not None:
            shown = ", ".join(f"{k} {v:.3f}" for k, v in values.items())
            self.on_update(f"seed {seed} epoch {epoch}/{self.epochs}: {shown}")

    @contextlib.contextmanager
    def _failing(self) -> Iterator[None]:
        """Remember that a write of the live view failed, for :meth:`close`."""
        try:
            yield
        except BaseException:
            self._failed = True
            raise

    def close(self) -> None:
        """End each DVCLive run. After a failed write (a full disk) the run is failing with that error already:
        ending would fail again and hide it, and the live view is rewritten whole when a run completes."""
        runs, self._runs = dict(self._runs), {}
        if self._failed:
            return
        for seed, live in runs.items():
            with self._failing(), _writing(self.live_dir / f"seed{seed}"):
                live.end()
