"""The flow set: the flow stage's output folder, read and validated in one place.

A flow set is a shard folder (:mod:`memix.io.shards`) with the array ``flow`` (N, C, S, S) float16 (channels
u, v[, strain], vectors in pixels of the S-sized image), usually ``onset`` and ``apex`` (N, S, S) uint8 (the
aligned onset and apex faces at the same size: MixMeFormer's face stream, and the input of the comparison networks
that take faces), with ``flow.pairs`` apex_offset also ``flow_offset`` (N, C, S, S) (the apex -> offset flow), an
index with clip_id, subject, label, label_id, per-clip sums (``n_pixels``, ``sum_<ch>``, ``sumsq_<ch>``) and the
faces stage's five points in the tensors' pixels (``landmarks``, for the region views of :mod:`memix.io.views`), so
any subset of clips gets its channel statistics without
touching the arrays, and ``stats.json`` (channels, whole-set mean/std, flow method and its settings).

Writer: :mod:`memix.preprocess.flow`. Readers: training, ``memix show`` and the mixing figure, all through
:func:`read`, so every check happens once: the shards' sha256 (:func:`memix.io.shards.load`) and, since a
shard written with a NaN has a valid checksum, every flow value being finite.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memix.io import atomic, shards
from memix.io.checks import nonfinite_rows

STATS_FILE = "stats.json"
FACE_CHANNELS = ("onset", "apex")
"""The channels of :func:`memix.io.views.faces_view`: grey faces, 0..255."""
BASE_COLUMNS = ("clip_id", "subject", "label", "label_id", "n_pixels")


@dataclass(frozen=True)
class FlowSet:
    """A validated flow set: ``index`` row i describes ``flow[i]`` (and ``onset[i]``)."""

    path: Path
    index: pd.DataFrame
    flow: np.ndarray
    onset: np.ndarray | None
    stats: dict[str, Any]

    @property
    def channels(self) -> list[str]:
        return list(self.stats["channels"])

    @property
    def size(self) -> int:
        return int(self.flow.shape[-1])

    @property
    def vectors(self) -> bool:
        """Whether channels 0, 1 are a vector field (u, v): geometric augmentation then turns them too."""
        return self.channels[:2] == ["u", "v"]

    @property
    def num_classes(self) -> int:
        return num_classes(self.index)

    @property
    def class_names(self) -> list[str]:
        return class_names(self.index)

    @property
    def labels(self) -> np.ndarray:
        return self.index["label_id"].astype(np.int64).to_numpy()


def read(path: str | Path, need_onset: bool = False) -> FlowSet:
    """Open the flow set at ``path`` (memory-mapped); every problem is an error naming the file and field. A
    network that reads a view of it (faces, facial regions) reads it through :func:`memix.io.views.read`."""
    return load(path, need_onset)[0]


def load(path: str | Path, need_onset: bool = False) -> tuple[FlowSet, dict[str, np.ndarray]]:
    """:func:`read`, and every array of the set by name (what the views are made from)."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: flow stage output not found; run `dvc repro flow`")
    stats = read_stats(path)
    channels = list(stats["channels"])
    index, arrays = shards.load(path)
    index = index.reset_index(drop=True)
    validate_index(index, channels, path / shards.INDEX)
    if "flow" not in arrays:
        raise ValueError(f"{path}: no array 'flow' in the shard folder (has: {', '.join(sorted(arrays))})")
    flow = arrays["flow"]
    shape = flow.shape
    if len(shape) != 4 or shape[0] != len(index) or shape[1] != len(channels) or shape[2] != shape[3]:
        raise ValueError(
            f"{path}: array flow has shape {shape}; expected ({len(index)}, {len(channels)}, S, S) "
            f"for channels {channels}"
        )
    check_finite(flow, index, path)
    onset = arrays.get("onset")
    if onset is None and need_onset:
        raise ValueError(f"{path}: model.face_stream is true but the shard folder has no array 'onset'")
    if onset is not None and onset.shape != (shape[0], shape[2], shape[3]):
        raise ValueError(f"{path}: array onset has shape {onset.shape}; expected ({shape[0]}, {shape[2]}, {shape[3]})")
    return FlowSet(path=path, index=index, flow=flow, onset=onset, stats=stats), arrays


def write(
    path: str | Path, index: pd.DataFrame, arrays: dict[str, np.ndarray], stats: dict[str, Any], shard_mb: float,
    files: dict[str, bytes] | None = None,
) -> None:
    """Write a flow set into the folder ``path`` in one step: the shards, ``stats.json`` and any other ``files``,
    every one listed with its sha256 in the manifest."""
    extra = {STATS_FILE: atomic.json_bytes(stats), **(files or {})}
    shards.write(Path(path), index, arrays, shard_mb=shard_mb, files=extra)


def read_stats(path: Path) -> dict[str, Any]:
    """``stats.json`` of a flow set, checked against the manifest's sha256, with its ``channels`` checked."""
    stats_path = Path(path) / STATS_FILE
    if not stats_path.is_file():
        raise FileNotFoundError(f"{stats_path}: missing (is {path} a flow stage output?)")
    try:
        stats = json.loads(shards.read_file(path, STATS_FILE).decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{stats_path}: not valid JSON ({err})") from None
    channels = stats.get("channels") if isinstance(stats, dict) else None
    if not isinstance(channels, list) or not channels or not all(isinstance(c, str) for c in channels):
        raise ValueError(f"{stats_path}: field channels must be a non-empty list of names, got {channels!r}")
    return stats


def validate_index(index: pd.DataFrame, channels: list[str], source: str | Path) -> None:
    """Fail early, naming ``source`` and the column or clip, if the flow index cannot drive LOSO."""
    needed = [*BASE_COLUMNS, *(f"sum_{c}" for c in channels), *(f"sumsq_{c}" for c in channels)]
    missing = [c for c in needed if c not in index.columns]
    if missing:
        raise ValueError(f"{source}: flow index lacks column(s) {', '.join(missing)}")
    if len(index) == 0:
        raise ValueError(f"{source}: flow index has no clips")
    dup = index["clip_id"][index["clip_id"].duplicated()]
    if len(dup):
        raise ValueError(f"{source}: clip_id {dup.iloc[0]!r} appears more than once")
    ids = pd.to_numeric(index["label_id"], errors="coerce")
    bad = index["clip_id"][ids.isna() | (ids < 0) | (ids != ids.round())]
    if len(bad):
        raise ValueError(f"{source}: clip {bad.iloc[0]!r}: field label_id must be a non-negative integer")
    pairs = index[["label_id", "label"]].drop_duplicates()
    clash = pairs["label_id"][pairs["label_id"].duplicated()]
    if len(clash):
        raise ValueError(f"{source}: field label: label_id {int(clash.iloc[0])} maps to more than one label")


def check_finite(flow: np.ndarray, index: pd.DataFrame, path: Path) -> None:
    """Fail naming the shard file and the clip rows if any flow value is NaN or infinite."""
    bad = nonfinite_rows(flow)
    if len(bad) == 0:
        return
    shard_of = index["shard"].to_numpy() if "shard" in index.columns else np.zeros(len(index), dtype=np.int64)
    first = int(shard_of[bad[0]])
    in_first = bad[shard_of[bad] == first]
    more = f"; {len(bad)} clips in all" if len(bad) > len(in_first) else ""
    where = shards.items_text(index, in_first)
    raise ValueError(
        f"{path / shards.shard_file('flow', first)}: NaN or infinite flow values in {where}{more}; "
        "rebuild the flow set (`dvc repro flow`)"
    )


def num_classes(index: pd.DataFrame) -> int:
    """Classes over the WHOLE index (max label_id + 1), so every fold scores the same K classes."""
    return int(index["label_id"].max()) + 1


def class_names(index: pd.DataFrame) -> list[str]:
    """Name per label_id; ids no clip carries get ``class_<k>``."""
    names = dict(zip(index["label_id"].astype(int), index["label"].astype(str), strict=True))
    return [names.get(k, f"class_{k}") for k in range(num_classes(index))]


def channel_stats(index: pd.DataFrame, channels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and (population) std of the clips in ``index``, from their stored sums.

    Pass the training rows of a LOSO fold so normalisation never sees the test subject.
    """
    channels = list(channels)
    if len(index) == 0:
        raise ValueError("channel_stats needs at least one clip; the index rows given are empty")
    needed = ["n_pixels"] + [f"{k}_{ch}" for ch in channels for k in ("sum", "sumsq")]
    missing = [c for c in needed if c not in index.columns]
    if missing:
        raise ValueError(f"flow index lacks column(s) {missing}; is it a flow stage index with channels {channels}?")
    n = float(index["n_pixels"].to_numpy(np.float64).sum())
    sums = np.array([index[f"sum_{ch}"].to_numpy(np.float64).sum() for ch in channels])
    sumsq = np.array([index[f"sumsq_{ch}"].to_numpy(np.float64).sum() for ch in channels])
    mean = sums / n
    var = np.maximum(sumsq / n - mean**2, 0.0)
    return mean, np.sqrt(var)
