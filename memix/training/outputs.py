"""What a LOSO run leaves behind: the predictions table, DVCLive logs per fold and the pooled curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from memix.io import atomic
from memix.training.folds import Fold


def fold_predictions(index: pd.DataFrame, fold: Fold, state: dict[str, Any], names: list[str]) -> pd.DataFrame:
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


def write_live(live_dir: Path, fold: Fold, history: dict[str, torch.Tensor], n_train: int) -> None:
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


