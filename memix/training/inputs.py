"""What the configured model trains on: the flow set read as its input kind (the flow, or the onset and apex faces
for a comparison network that takes faces), with the onset faces MixMeFormer's stream needs."""

from __future__ import annotations

from pathlib import Path

from memix.config import Params
from memix.io import flowset
from memix.models import registry


def read_data(params: Params, flow_dir: str | Path) -> flowset.FlowSet:
    """The flow set in ``flow_dir`` as ``params.model`` reads it (errors name the file and the missing array)."""
    return flowset.read(flow_dir, need_onset=params.model.face_stream, inputs=registry.input_kind(params.model.name))
