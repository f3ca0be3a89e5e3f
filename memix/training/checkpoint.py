"""Resume state of a LOSO run, written in place (at most 1x the state on disk) and loaded with ``weights_only=True``.

Only tensors, numbers, strings and containers go in (generator states are uint8 tensors), so loading a
checkpoint never unpickles code. A checkpoint is a folder: its tensors in chunk files of about ``CHUNK_BYTES``
and a small ``index.pt`` (the state's structure and the chunks' names and sizes). A save first removes the index,
then the previous chunks, writes the new chunks and last the index, through a temp file and a rename: the disk
never holds more than one state plus that small file (a 27 GB group state would need 54 GB through a temp copy),
and a load sees either a complete state or none. The price: a process killed while saving leaves no checkpoint
of that group (a rerun trains it from its first epoch, to the same bytes), so saves are kept short and rare
(``memix.training.loop.CHECKPOINT_SHARE``). A fingerprint of params and inputs (a key of the state) guards
against resuming a different run. A finished unit's results, small and written once, are one file instead
(:func:`save_file`, through a temp file and a rename).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from memix.io import atomic

INDEX = "index.pt"
CHUNK_BYTES = 64 << 20
"""Tensors per chunk file, in bytes (a larger tensor is a chunk of its own)."""
_CHUNK = re.compile(r"^g(\d+)-(\d+)\.pt$")
_TENSOR = "\0tensor"
"""Key of the placeholder that stands for a tensor in the index's copy of the state."""


def save(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` as the checkpoint ``path`` (a folder), replacing the previous one in place."""
    path = Path(path)
    tensors: list[torch.Tensor] = []
    skeleton = _strip(state, tensors)
    if path.is_file() or path.is_symlink():
        path.unlink()
    path.mkdir(parents=True, exist_ok=True)
    generation = 1 + max((int(m.group(1)) for p in path.iterdir() if (m := _CHUNK.match(p.name))), default=0)
    (path / INDEX).unlink(missing_ok=True)  # from here until the new index lands there is no checkpoint
    for old in path.iterdir():
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink()
    chunks = []
    with atomic.writing(path):  # a full disk says so, naming the checkpoint and the free space
        for j, part in enumerate(_chunked(tensors)):
            name = f"g{generation}-{j:04d}.pt"
            torch.save(part, path / name)
            chunks.append((name, len(part), (path / name).stat().st_size))
        tmp = path / f".{INDEX}.tmp"
        torch.save({"state": skeleton, "chunks": chunks}, tmp)
    os.replace(tmp, path / INDEX)


def save_file(path: Path, state: dict[str, Any]) -> None:
    """Write a small ``state`` (a finished unit's results) as one file, through a temp file and a rename."""
    with atomic.atomic_path(path) as tmp:
        torch.save(state, tmp)


def load(path: Path) -> dict[str, Any] | None:
    """The state at ``path``, or None if there is none (never saved, or a save was cut short); a corrupt file is an
    error naming it."""
    path = Path(path)
    if path.is_file():  # written by save_file (or foreign: named, not ignored)
        return _checked(_read(path), path)
    if not (path / INDEX).is_file():
        return None
    index = _read_index(path)
    tensors: list[torch.Tensor] = []
    for name, count, size in index["chunks"]:
        chunk = path / name
        if not chunk.is_file() or chunk.stat().st_size != size:
            raise ValueError(f"{chunk}: checkpoint chunk missing or truncated; delete {path} or run with --restart")
        part = _read(chunk)
        if not isinstance(part, list) or len(part) != count:
            raise ValueError(f"{chunk}: not the chunk its index names; delete {path} or run with --restart")
        tensors += part
    return _checked(_fill(index["state"], tensors), path)


def header(path: Path) -> dict[str, Any] | None:
    """The state's top-level entries that are not tensors or containers (e.g. its fingerprint) read from the index
    alone, without loading the tensors; None where :func:`load` gives None."""
    path = Path(path)
    if path.is_file():
        state = load(path)
    elif (path / INDEX).is_file():
        state = _checked(_read_index(path)["state"], path)
    else:
        return None
    return {k: v for k, v in state.items() if not isinstance(v, dict | list | tuple | torch.Tensor)}


def cut_short(path: Path) -> bool:
    """True when ``path`` is a checkpoint folder whose last save did not finish (so it holds no state)."""
    path = Path(path)
    return path.is_dir() and not (path / INDEX).is_file()


def remove(path: Path) -> None:
    """Delete the checkpoint ``path`` (a folder or a single file), if there is one."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def disk_bytes(path: Path) -> int:
    """Bytes the checkpoint ``path`` takes on disk (its files' sizes)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def fold_path(ckpt_dir: Path, fold: int) -> Path:
    return ckpt_dir / f"fold{fold:02d}.pt"


def current_path(ckpt_dir: Path, fold: int) -> Path:
    """The in-progress state of one fold (one per fold, since folds may train in parallel)."""
    return ckpt_dir / f"current{fold:02d}.pt"


def _read(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types (with long, misleading advice) for foreign files
        raise ValueError(
            f"{path}: unreadable checkpoint ({type(err).__name__}: truncated, foreign or from another torch); "
            "delete it or run with --restart"
        ) from None


def _read_index(path: Path) -> dict[str, Any]:
    index = _read(path / INDEX)
    if not isinstance(index, dict) or not {"state", "chunks"} <= index.keys():
        raise ValueError(f"{path / INDEX}: not a memix checkpoint index; delete {path} or run with --restart")
    return index


def _checked(state: Any, path: Path) -> dict[str, Any]:
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a memix checkpoint; delete it or run with --restart")
    return state


def _strip(obj: Any, tensors: list[torch.Tensor]) -> Any:
    """``obj`` with every tensor moved to ``tensors`` (detached, on the CPU) and replaced by its position."""
    if isinstance(obj, torch.Tensor):
        tensors.append(obj.detach().cpu())
        return {_TENSOR: len(tensors) - 1}
    if isinstance(obj, dict):
        return {k: _strip(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_strip(v, tensors) for v in obj)
    return obj


def _fill(obj: Any, tensors: list[torch.Tensor]) -> Any:
    """The inverse of :func:`_strip`."""
    if isinstance(obj, dict):
        if obj.keys() == {_TENSOR}:
            return tensors[obj[_TENSOR]]
        return {k: _fill(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_fill(v, tensors) for v in obj)
    return obj


def _chunked(tensors: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    """Consecutive runs of tensors of about ``CHUNK_BYTES`` each."""
    chunks: list[list[torch.Tensor]] = []
    size = CHUNK_BYTES
    for t in tensors:
        if size >= CHUNK_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(t)
        size += t.numel() * t.element_size()
    return chunks
