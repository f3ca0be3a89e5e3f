"""A model fitted on the tiny synthetic set the pipeline's way (ingest -> faces -> flow -> fit), for the tests here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from memix.config import Params, dump_params
from memix.datasets import ingest
from memix.io import flowset, views
from memix.preprocess import faces, flow
from memix.serving import modelfile
from memix.training import fit

# Small but learnable: 64 px faces, 32 px flow, a one-block ViT; no augmentation, since the tests ask whether the
# model recovers the clips it was fitted on (held-in), i.e. whether prediction reproduces the training inputs.
TINY_FIT = {
    "faces": {"size": 64},
    "flow": {"size": 32, "workers": 1, "montage_per_class": 1},
    "model": {"patch_size": 8, "embed_dim": 16, "depth": 1, "num_heads": 2},
    "train": {
        "epochs": 60, "batch_size": 8, "device": "cpu", "threads": 1,
        "augment": {"flip": False, "rotate_deg": 0.0, "translate_frac": 0.0},
    },
}


@dataclass(frozen=True)
class Fitted:
    params: Params
    params_path: Path  # a params.yaml with these settings (the CLI reads the dataset section from it)
    dataset_root: Path
    face_model: Path
    data: flowset.FlowSet
    result: fit.FitResult
    model_path: Path


def fit_tiny_model(work: Path, dataset_root: Path, face_model: Path) -> Fitted:
    """Run the stages' library functions into ``work`` and fit ``memix`` with seed 0."""
    settings = {**TINY_FIT, "dataset": {"root": str(dataset_root)}}
    settings["faces"] = {**TINY_FIT["faces"], "model": str(face_model)}
    params = Params.model_validate(settings)
    ingest.run(params.dataset, work / "interim")
    faces.run(params.faces, work / "interim" / "clips.parquet", dataset_root, face_model, work / "faces")
    flow.run(params.flow, work / "faces", work / "flow", work / "montage.png")
    data = flowset.read(work / "flow")
    result = fit.fit(params, "memix", 0, data, torch.device("cpu"))
    contents = modelfile.from_fit(params, "memix", 0, data, result, face_model)
    model_path = modelfile.write(work / "models" / "memix.pt", contents)
    params_path = work / "params.yaml"
    params_path.write_text(yaml.safe_dump(dump_params(params), sort_keys=False))
    return Fitted(params, params_path, dataset_root, face_model, data, result, model_path)


TINY_REGION_NET = {"dim": 8, "heads": 1, "block_repeats": [1, 1, 1], "mlp_mult": 2}


def _region_file(fitted: Fitted, folder: Path, name: str, data: flowset.FlowSet, options: dict) -> Path:
    params = fitted.params.model_copy(update={
        "model": fitted.params.model.model_copy(update={"name": name, "options": options}),
        "train": fitted.params.train.model_copy(update={"epochs": 2}),
    })
    result = fit.fit(params, "mixup", 0, data, torch.device("cpu"), progress=False)
    contents = modelfile.from_fit(params, "mixup", 0, data, result, fitted.face_model)
    assert contents["flow"]["size"] == fitted.data.size  # the flow recipe, not the 28 px view's size
    return modelfile.write(folder / f"{name}.pt", contents)


def fit_region_models(work: Path, fitted: Fitted) -> dict[str, tuple[Path, flowset.FlowSet]]:
    """HTNet on the regions view and CausalNet on the sequence view (the flow recomputed with apex_offset), tiny."""
    flow_params = fitted.params.flow.model_copy(update={"pairs": ["onset_apex", "apex_offset"]})
    clips = fitted.data.path.parent / "interim" / "clips.parquet"
    faces.run(fitted.params.faces, clips, fitted.dataset_root, fitted.face_model, work / "faces", offset=True)
    flow.run(flow_params, work / "faces", work / "flow", work / "montage.png")
    regions = views.read(work / "flow", inputs="regions")
    sequence = views.read(work / "flow", inputs="sequence")
    return {
        "htnet": (_region_file(fitted, work, "htnet", regions, TINY_REGION_NET), regions),
        "causalnet": (_region_file(fitted, work, "causalnet", sequence,
                                   {**TINY_REGION_NET, "cross_heads": 2, "head_hidden": 16}), sequence),
    }
