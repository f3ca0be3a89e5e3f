"""What the configured model trains on: the flow set read as its input kind (the flow, or a view of it: the onset
and apex faces, or the facial-region images; :mod:`memix.io.views`), with the onset faces MixMeFormer's stream
needs. LOSO training and the fit both read through here, so both refuse what the model cannot train on."""

from __future__ import annotations

from pathlib import Path

from memix.config import Params
from memix.io import flowset, views
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
