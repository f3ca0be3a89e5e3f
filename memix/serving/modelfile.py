"""The model file (``models/<method>.pt``): the fitted weights plus everything needed to preprocess a new clip.

A prediction is only as good as its inputs' match with the training data's, so the file carries the whole
preprocessing recipe, not just weights: the face crop (size, margin, detection confidence, the face model's
sha256), the flow (method and its settings, size, channels), the normalisation statistics of the training clips,
the model params and the class names. It is a plain dict of tensors, numbers, strings and lists, written with
``torch.save`` and read with ``torch.load(path, weights_only=True)``, so loading never runs pickled code.

Keys: ``format`` (:data:`FORMAT`), ``format_version``, ``memix_version``, ``method``, ``seed``, ``class_names``,
``flow`` {method, size, channels, params}, ``faces`` {size, margin, min_detection_confidence, model_sha256},
``normalisation`` {mean, std}, ``model`` (the ``model`` params), ``state_dict``, ``state_dict_sha256`` (of the
tensors: names, dtypes, shapes and bytes, so a flipped byte in the weights is caught on load); for the record:
``train`` and ``mixing`` (the params trained with), ``history`` {train_loss, train_accuracy}, ``data``
{n_clips, n_subjects}.
A file from another memix version, or missing a key, is refused with an error naming the file; so is one whose
tensors do not match their sha256 or hold a NaN or an infinity (a diverged fit would otherwise predict NaN).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from pydantic import ValidationError

import memix
from memix.config import FacesParams, FlowParams, ModelParams, Params, error_lines
from memix.io import atomic, views
from memix.io.flowset import FlowSet
from memix.models.registry import input_kind

if TYPE_CHECKING:
    from memix.models import FlowModel
    from memix.training.fit import FitResult

FORMAT = "memix-model"
FORMAT_VERSION = 2
REQUIRED: dict[str, tuple[str, ...]] = {
    "format": (),
    "format_version": (),
    "memix_version": (),
    "method": (),
    "class_names": (),
    "flow": ("method", "size", "channels", "params"),
    "faces": ("size", "margin", "min_detection_confidence", "model_sha256"),
    "normalisation": ("mean", "std"),
    "model": (),
    "state_dict": (),
    "state_dict_sha256": (),
}
"""Top-level keys a model file must have, each with the keys it must hold (checked on load)."""


@dataclass(frozen=True)
class ModelFile:
    """A loaded, validated model file. ``flow`` and ``faces`` are params sections as the pipeline used them."""

    path: Path
    method: str
    class_names: list[str]
    flow: FlowParams
    faces: FacesParams
    face_model_sha256: str
    mean: np.ndarray  # (C,) float64
    std: np.ndarray
    model: ModelParams
    state_dict: dict[str, torch.Tensor]
    raw: dict[str, Any]  # everything the file holds, for the record keys

    @property
    def channels(self) -> list[str]:
        """The flow set's flow channels (the recipe of the flow stage)."""
        return list(self.flow.channels)

    @property
    def inputs(self) -> str:
        """What the network reads: ``flow``, or a view of it (``faces``, ``regions``, ``sequence``:
        :mod:`memix.io.views`) for a comparison network that takes one (:func:`memix.models.registry.input_kind`)."""
        return input_kind(self.model.name)

    @property
    def input_channels(self) -> list[str]:
        """The channels of the network's input: the flow's, or its view's (:func:`memix.io.views.input_channels`)."""
        return input_channels(self.model.name, self.channels)

    @property
    def input_size(self) -> int:
        """The side of the network's input: ``flow.size``, or 28 px for the region views."""
        return views.input_size(self.inputs, self.flow.size)

    def build_model(self) -> FlowModel:
        """The fitted network, in eval mode on the CPU; weights from the file (nothing is downloaded)."""
        from memix import models

        offline = self.model.model_copy(update={"pretrained": False, "weights_path": None})
        net = models.build(offline, len(self.input_channels), len(self.class_names), self.input_size)
        try:
            net.load_state_dict(self.state_dict, strict=True)
        except RuntimeError as err:
            raise ValueError(f"{self.path}: weights do not fit the model its params describe: {err}") from None
        return net.eval()


def input_channels(model_name: str, flow_channels: list[str]) -> list[str]:
    """The channels ``model.name`` reads: the flow's, or those of its view (:mod:`memix.io.views`)."""
    return views.input_channels(input_kind(model_name), list(flow_channels))


def from_fit(
    params: Params, method: str, seed: int, data: FlowSet, result: FitResult, face_model: Path
) -> dict[str, Any]:
    """The model file's contents for a fit of ``method`` on the flow set ``data``.

    The flow recipe comes from the flow set's own ``stats.json`` (what the data really is); the face crop from
    ``params.faces``, checked against the crop size the flow set records.
    """
    stats = data.stats
    missing = [k for k in ("method", "method_params", "size", "crop_size") if k not in stats]
    if missing:
        raise ValueError(f"{data.path}: stats.json lacks {', '.join(missing)}; rerun `dvc repro flow`")
    if int(stats["crop_size"]) != params.faces.size:
        raise ValueError(
            f"{data.path}: flow computed on {stats['crop_size']} px face crops but faces.size is {params.faces.size}; "
            "rerun `dvc repro flow`"
        )
    if views.input_size(input_kind(params.model.name), int(stats["size"])) != data.size:
        want = views.input_size(input_kind(params.model.name), int(stats["size"]))
        raise ValueError(f"{data.path}: stats.json says size {stats['size']} (the model's input then {want} px) but "
                         f"the model's input is {data.size} px")
    face_model = Path(face_model)
    if not face_model.is_file():
        raise FileNotFoundError(f"face model not found: {face_model} (run `dvc repro face_model`)")
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "memix_version": memix.__version__,
        "method": method,
        "seed": int(seed),
        "class_names": [str(c) for c in data.class_names],
        "flow": {
            "method": str(stats["method"]),
            "size": int(stats["size"]),
            "channels": [str(c) for c in stats.get("flow_channels", data.channels)],  # a faces view keeps the flow's
            "params": dict(stats["method_params"]),
        },
        "faces": {
            "size": params.faces.size,
            "margin": float(params.faces.margin),
            "min_detection_confidence": float(params.faces.min_detection_confidence),
            "model_sha256": atomic.file_sha256(face_model),
        },
        "normalisation": {
            "mean": [float(v) for v in np.asarray(result.mean).ravel()],
            "std": [float(v) for v in np.asarray(result.std).ravel()],
        },
        "model": params.model.model_dump(mode="json"),
        "train": params.train.model_dump(mode="json"),
        "mixing": getattr(params.mixing, method).model_dump(mode="json"),
        "history": {k: [float(v) for v in vals] for k, vals in result.history.items()},
        "data": {"n_clips": int(result.n_clips), "n_subjects": int(result.n_subjects)},
        "state_dict": dict(result.state_dict),
    }


def tensors_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().to("cpu").contiguous()
        digest.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def nonfinite_tensors(state_dict: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors holding a NaN or an infinity."""
    return [name for name, t in sorted(state_dict.items())
            if t.is_floating_point() and not bool(torch.isfinite(t).all())]


def write(path: str | Path, contents: dict[str, Any]) -> Path:
    """Save atomically, with the tensors' sha256; serialised in memory first, so the bytes do not depend on the
    temp file's name. A model with a NaN or infinite weight (a diverged fit) is refused: nothing is written."""
    path = Path(path)
    bad = nonfinite_tensors(contents["state_dict"])
    if bad:
        raise ValueError(
            f"{path}: not written: the model has NaN or infinite weights ({_names(bad)}); training diverged "
            "(try a smaller train.lr)"
        )
    contents = {**contents, "state_dict_sha256": tensors_sha256(contents["state_dict"])}
    buffer = io.BytesIO()
    torch.save(contents, buffer)
    atomic.write_bytes(path, buffer.getvalue())
    return path


def load(path: str | Path) -> ModelFile:
    """Read and validate a model file; every problem is a ``ValueError`` (or ``FileNotFoundError``) naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path} (make one with `dvc repro fit`)")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise ValueError(f"{path}: not a readable memix model file ({type(err).__name__})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ValueError(f"{path}: not a memix model file (no format {FORMAT!r}); make one with `dvc repro fit`")
    version = raw.get("memix_version")
    if version != memix.__version__:
        raise ValueError(
            f"{path}: model file from memix {version}, this is memix {memix.__version__}; "
            "refit it with this version (`dvc repro fit`) or predict with the version that made it"
        )
    if raw.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: model file format {raw.get('format_version')!r}, expected {FORMAT_VERSION}")
    missing = [key for key in REQUIRED if key not in raw]
    missing += [
        f"{key}.{sub}" for key, subs in REQUIRED.items() if isinstance(raw.get(key), dict) for sub in subs
        if sub not in raw[key]
    ]
    missing += [key for key, subs in REQUIRED.items() if subs and key in raw and not isinstance(raw[key], dict)]
    if missing:
        raise ValueError(f"{path}: model file lacks key(s) {', '.join(missing)}; refit it with `dvc repro fit`")
    return _parse(path, raw)


def _parse(path: Path, raw: dict[str, Any]) -> ModelFile:
    flow, faces = raw["flow"], raw["faces"]
    try:
        recipe = {"method": flow["method"], "size": flow["size"], "channels": flow["channels"]}
        flow_params = FlowParams.model_validate({**recipe, flow["method"]: flow["params"]})
        face_params = FacesParams(
            size=faces["size"], margin=faces["margin"], min_detection_confidence=faces["min_detection_confidence"]
        )
        model_params = ModelParams.model_validate(raw["model"])
    except (ValidationError, TypeError) as err:
        detail = "; ".join(error_lines(err)) if isinstance(err, ValidationError) else str(err)
        raise ValueError(f"{path}: invalid preprocessing or model settings: {detail}") from None
    names = raw["class_names"]
    if not isinstance(names, list) or len(names) < 2 or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{path}: class_names must be a list of at least 2 names, got {names!r}")
    mean = np.asarray(raw["normalisation"]["mean"], dtype=np.float64)
    std = np.asarray(raw["normalisation"]["std"], dtype=np.float64)
    n_ch = len(input_channels(model_params.name, list(flow_params.channels)))
    if mean.shape != (n_ch,) or std.shape != (n_ch,) or not np.all(np.isfinite(mean)) or not np.all(std > 0):
        raise ValueError(f"{path}: normalisation mean/std must be {n_ch} finite values (std > 0), got {mean}, {std}")
    state = raw["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: state_dict must map names to tensors")
    if tensors_sha256(state) != raw["state_dict_sha256"]:
        raise ValueError(
            f"{path}: the weights differ from their sha256 in the file (damaged or changed); refit it with "
            "`dvc repro fit` or restore it from the DVC cache (`dvc checkout`)"
        )
    bad = nonfinite_tensors(state)
    if bad:
        raise ValueError(f"{path}: NaN or infinite weights ({_names(bad)}); the fit diverged: refit with a smaller "
                         "train.lr")
    sha = faces["model_sha256"]
    if not isinstance(sha, str) or len(sha) != 64:
        raise ValueError(f"{path}: faces.model_sha256 must be a sha256 hex digest, got {sha!r}")
    return ModelFile(
        path=path, method=str(raw["method"]), class_names=list(names), flow=flow_params, faces=face_params,
        face_model_sha256=sha, mean=mean, std=std, model=model_params, state_dict=state, raw=raw,
    )


def _names(names: list[str], limit: int = 3) -> str:
    more = f", ... {len(names)} tensors in all" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more
