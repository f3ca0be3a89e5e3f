"""What the configured model trains on: the flow set read as its input kind (the flow, or a view of it: the onset
and apex faces, or the facial-region images; :mod:`memix.io.views`), with the onset faces MixMeFormer's stream
needs. LOSO training and the fit both read through here, so both refuse what the model cannot train on. The
key-frame noise sets a LOSO run also scores are read the same way, and held to the flow set's clips and shapes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from memix.config import Params
from memix.io import flowset, noise_sets, views
from memix.models import registry


def read_data(params: Params, flow_dir: str | Path) -> flowset.FlowSet:
    """The flow set in ``flow_dir`` as ``params.model`` reads it (errors name the file and the missing array); a
    ``train.augment`` the model's input cannot take is refused first."""
    check_augment(params)
    return views.read(flow_dir, inputs=registry.input_kind(params.model.name), need_onset=params.model.face_stream)


def check_augment(params: Params) -> None:
    """Raise ValueError when ``train.augment`` cannot apply to ``params.model`` (the region views take none)."""
    aug = params.train.augment
    problem = registry.augment_problem(params.model.name, aug.flip, aug.rotate_deg, aug.translate_frac)
    if problem:
        raise ValueError(problem)


def read_noise_sets(
    params: Params, data: flowset.FlowSet, folders: Mapping[int, str | Path]
) -> dict[int, flowset.FlowSet]:
    """Level -> the key-frame noise set in its folder, read as ``data`` was (the model's view); each must hold
    ``data``'s clips in ``data``'s order, with the same labels and input shape (a unit's test rows index both)."""
    out = {}
    for level in sorted(folders):
        folder = Path(folders[level])
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: key-frame noise set of level {level} not found (eval.keyframe_noise "
                                    f"lists it: run `dvc repro keyframe_noise@{level}`)")
        noise = read_data(params, folder)
        check_same_clips(noise, data)
        out[int(level)] = noise
    return out


def check_same_clips(noise: flowset.FlowSet, data: flowset.FlowSet) -> None:
    """Refuse, naming both folders and the first clip that differs, a noise set that is not ``data`` reshot."""
    ours, theirs = noise.index["clip_id"].astype(str).tolist(), data.index["clip_id"].astype(str).tolist()
    differ = noise_sets.first_difference(ours, theirs)
    if differ:
        row, got, want = differ
        raise ValueError(f"{noise.path}: {len(ours)} clips, {data.path} {len(theirs)}; row {row} holds {got} there "
                         f"and {want} here: a key-frame noise set must hold the flow set's clips in its order (stale? "
                         "`dvc repro`)")
    if not np.array_equal(noise.labels, data.labels):
        raise ValueError(f"{noise.path}: field label_id differs from {data.path} (stale? `dvc repro`)")
    if noise.flow.shape != data.flow.shape or noise.channels != data.channels:
        raise ValueError(f"{noise.path}: input {noise.flow.shape} {noise.channels} differs from {data.path}'s "
                         f"{data.flow.shape} {data.channels} (made with other flow params? `dvc repro`)")
