"""Resume state of a LOSO run: atomic ``torch.save`` files that load with ``weights_only=True``.

Only tensors, numbers, strings and containers go in (generator states are uint8 tensors), so loading a
checkpoint never unpickles code. A run writes ``fold<NN>.pt`` when a fold finishes (its predictions and
history) and ``currentNN.pt`` for a fold in progress; a fingerprint of params and inputs guards against
resuming a different run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from memix.io import atomic


def save(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` through a temp file, so a kill mid-write leaves the old file intact."""
    with atomic.atomic_path(path) as tmp:
        torch.save(state, tmp)


def load(path: Path) -> dict[str, Any] | None:
    """The state at ``path``, or None if there is none; a corrupt file is an error naming it."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types (with long, misleading advice) for foreign files
        raise ValueError(
            f"{path}: unreadable checkpoint ({type(err).__name__}: truncated, foreign or from another torch); "
            "delete it or run with --restart"
        ) from None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a memix checkpoint; delete it or run with --restart")
    return state


def fold_path(ckpt_dir: Path, fold: int) -> Path:
    return ckpt_dir / f"fold{fold:02d}.pt"


def current_path(ckpt_dir: Path, fold: int) -> Path:
    """The in-progress state of one fold (one per fold, since folds may train in parallel)."""
    return ckpt_dir / f"current{fold:02d}.pt"
