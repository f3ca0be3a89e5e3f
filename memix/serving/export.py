"""ONNX export of a fitted model, for runtimes without torch (optional extra: ``pip install 'memix[onnx]'``).

The graph is the plain inference forward: flow in pixels (N, C, S, S) float32 as the flow stage stores it ->
normalisation with the training statistics -> the network (no attention probe, no manifold mixing) -> softmax
probabilities (N, K). With a face stream (MixMeFormer) it takes a second input ``face`` (N, 1, S, S) float32
in [0, 1]. A network on faces (``memix.models.registry.input_kind``: MMNet) takes its aligned grey onset and apex
faces (N, 2, S, S) in that first input instead of the flow; HTNet and CausalNet their facial-region images
(``memix.io.views``: (N, 3, 28, 28) or (N, 12, 28, 28)). The batch size is dynamic. The preprocessing recipe
(flow method and settings, face crop, classes) is stored in the ONNX metadata, as JSON strings, since a flow
tensor must be made exactly as in training.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from memix.io import atomic
from memix.serving.modelfile import ModelFile

INPUT, FACE_INPUT, OUTPUT = "flow", "face", "probabilities"
EXTRA_HINT = "ONNX export needs the optional extra: pip install 'memix[onnx]'"


class InferenceGraph(nn.Module):
    """What is exported: normalise, classify, softmax; the model's mixing and attention-probe paths stay out."""

    def __init__(self, model_file: ModelFile) -> None:
        super().__init__()
        self.net = model_file.build_model()
        self.register_buffer("mean", torch.tensor(model_file.mean, dtype=torch.float32).reshape(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(model_file.std, dtype=torch.float32).reshape(1, -1, 1, 1))
        self.eval()

    def forward(self, flow: torch.Tensor, face: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.net((flow - self.mean) / self.std, face=face)
        return torch.softmax(logits.float(), dim=-1)


def metadata(model_file: ModelFile) -> dict[str, str]:
    """The preprocessing recipe and provenance, as ONNX metadata (string values)."""
    raw = model_file.raw
    return {
        "memix_version": str(raw["memix_version"]),
        "method": model_file.method,
        "class_names": json.dumps(model_file.class_names),
        "flow": json.dumps(raw["flow"], sort_keys=True),
        "faces": json.dumps(raw["faces"], sort_keys=True),
        "inputs": _input_text(model_file) + (f"; {FACE_INPUT}: (N, 1, S, S) float32 onset face in [0, 1]"
                                             if model_file.model.face_stream else ""),
        "output": f"{OUTPUT}: (N, K) class probabilities, K = {len(model_file.class_names)}",
    }


def _input_text(model_file: ModelFile) -> str:
    size = model_file.input_size
    if model_file.inputs == "faces":
        return (f"{INPUT}: (N, 2, S, S) float32 aligned grey onset and apex faces (0..255), channels "
                f"{model_file.input_channels}, S = {size}")
    if model_file.inputs in ("regions", "sequence"):
        return (f"{INPUT}: (N, C, S, S) float32 facial-region image(s) (memix.io.views, {model_file.inputs}: four "
                f"14 x 14 blocks of the flow at {size} px around the eyes and mouth corners), channels "
                f"{model_file.input_channels}, S = {size}; made from the flow at {model_file.flow.size} px")
    return f"{INPUT}: (N, C, S, S) float32 flow in pixels, channels {model_file.channels}, S = {size}"


def export_onnx(model_file: ModelFile, out: str | Path) -> Path:
    """Write the model's inference graph as ONNX to ``out`` (atomically); returns ``out``."""
    try:
        import onnx
    except ImportError:
        raise RuntimeError(EXTRA_HINT) from None
    out = Path(out)
    graph = InferenceGraph(model_file)
    size, n_ch = model_file.input_size, len(model_file.input_channels)
    example: tuple[torch.Tensor, ...] = (torch.zeros(2, n_ch, size, size),)
    names = [INPUT]
    if model_file.model.face_stream:
        example += (torch.zeros(2, 1, size, size),)
        names.append(FACE_INPUT)
    batch = torch.export.Dim("batch", min=1)
    dynamic = tuple({0: batch} for _ in names)
    with tempfile.TemporaryDirectory(prefix="memix-onnx-") as tmp, _quiet():
        path = Path(tmp) / "model.onnx"
        try:
            torch.onnx.export(
                graph, example, str(path), input_names=names, output_names=[OUTPUT], dynamo=True,
                dynamic_shapes=dynamic, external_data=False, verbose=False,
            )
        except ImportError as err:  # torch's exporter imports onnxscript lazily
            raise RuntimeError(f"{EXTRA_HINT} ({err})") from None
        proto = onnx.load(str(path))
    for key, value in metadata(model_file).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = f"memix {model_file.method} model from {model_file.path.name}"
    atomic.write_bytes(out, proto.SerializeToString())
    return out


@contextlib.contextmanager
def _quiet():
    """torch's exporter prints progress lines and deprecation notes that say nothing to a memix user."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield
