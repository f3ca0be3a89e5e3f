"""A comparison architecture fitted the pipeline's way is served like the ViT: the model file round-trips, `predict`
reproduces the fitted model's own outputs, and the ONNX export gives torch's probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from fitted_model import Fitted

from memix.cli import main
from memix.serving import export, modelfile, predict
from memix.training import fit


@pytest.fixture(scope="module")
def ststnet_file(fitted: Fitted, tmp_path_factory: pytest.TempPathFactory) -> Path:
    params = fitted.params.model_copy(update={
        "model": fitted.params.model.model_copy(update={"name": "ststnet"}),
        "train": fitted.params.train.model_copy(update={"epochs": 3}),
    })
    result = fit.fit(params, "mixup", 0, fitted.data, torch.device("cpu"), progress=False)
    contents = modelfile.from_fit(params, "mixup", 0, fitted.data, result, fitted.face_model)
    return modelfile.write(tmp_path_factory.mktemp("ststnet") / "ststnet.pt", contents)


def test_predict_gives_the_fitted_networks_outputs(fitted: Fitted, ststnet_file: Path) -> None:
    model_file = modelfile.load(ststnet_file)
    assert model_file.model.name == "ststnet"
    net = model_file.build_model().eval()
    flow = np.array(fitted.data.flow[:6], dtype=np.float32)
    x = (torch.from_numpy(flow) - torch.tensor(model_file.mean).view(1, -1, 1, 1)) / torch.tensor(
        model_file.std).view(1, -1, 1, 1)
    with torch.no_grad():
        want = torch.softmax(net(x.float()), dim=-1).numpy()
    got = predict.Classifier(model_file).probabilities(flow)
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    assert not np.allclose(got, got[:1])


def test_the_onnx_export_gives_torchs_probabilities(fitted: Fitted, ststnet_file: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "ststnet.onnx"
    assert main(["export", "--model", str(ststnet_file), "--format", "onnx", "--out", str(out)]) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    flow = np.array(fitted.data.flow[:5], dtype=np.float32)
    (got,) = session.run([export.OUTPUT], {export.INPUT: flow})
    want = predict.Classifier(modelfile.load(ststnet_file)).probabilities(flow)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
