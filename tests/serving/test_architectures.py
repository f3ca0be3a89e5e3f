"""A comparison architecture fitted the pipeline's way is served like the ViT: the model file round-trips, `predict`
reproduces the fitted model's own outputs, and the ONNX export gives torch's probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from fitted_model import Fitted

from memix.cli import main
from memix.io import views
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


@pytest.fixture(scope="module")
def mmnet_file(fitted: Fitted, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """MMNet fitted on the flow set's onset and apex faces (32 px, its 2 x 2 grid, one transformer block)."""
    params = fitted.params.model_copy(update={
        "model": fitted.params.model.model_copy(update={"name": "mmnet", "options": {"img_size": 32, "pos_depth": 1}}),
        "train": fitted.params.train.model_copy(update={"epochs": 2}),
    })
    faces = views.read(fitted.data.path, inputs="faces")
    result = fit.fit(params, "cutmix", 0, faces, torch.device("cpu"), progress=False)
    contents = modelfile.from_fit(params, "cutmix", 0, faces, result, fitted.face_model)
    assert contents["flow"]["channels"] == fitted.data.channels  # the flow recipe, not the view's channels
    return modelfile.write(tmp_path_factory.mktemp("mmnet") / "mmnet.pt", contents), faces


def test_a_network_on_faces_predicts_from_each_clips_own_onset_and_apex(fitted: Fitted, mmnet_file) -> None:
    path, faces = mmnet_file
    model_file = modelfile.load(path)
    assert model_file.inputs == "faces" and model_file.input_channels == ["onset", "apex"]
    clips = predict.clips_in_dataset(fitted.params.dataset)[:4]
    rows = [faces.index["clip_id"].tolist().index(c.name) for c in clips]
    with predict.Predictor(model_file, fitted.face_model) as predictor:
        tensor, _ = predictor.flow_of(clips[0])
        assert np.array_equal(tensor, faces.flow[rows[0]])  # the very faces it was fitted on, bit for bit
        got = predictor.predict(clips, progress=False)
    want = predict.Classifier(model_file).probabilities(np.array(faces.flow[rows]))
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    assert not np.allclose(got, got[:1])


def test_a_network_on_faces_exports_its_faces_input(mmnet_file, tmp_path: Path) -> None:
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    path, faces = mmnet_file
    out = export.export_onnx(modelfile.load(path), tmp_path / "mmnet.onnx")
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert "onset and apex" in session.get_modelmeta().custom_metadata_map["inputs"]
    x = np.array(faces.flow[:5], dtype=np.float32)
    (got,) = session.run([export.OUTPUT], {export.INPUT: x})
    np.testing.assert_allclose(got, predict.Classifier(modelfile.load(path)).probabilities(x), atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["htnet", "causalnet"])
def test_a_region_network_predicts_from_each_clips_own_regions(fitted: Fitted, region_files, name: str) -> None:
    """`memix predict` makes a clip's region image(s) with the view's own code: bit for bit the fitted input."""
    path, data = region_files[name]
    model_file = modelfile.load(path)
    assert model_file.input_size == 28 and model_file.input_channels == data.channels
    clips = predict.clips_in_dataset(fitted.params.dataset)[:4]
    rows = [data.index["clip_id"].tolist().index(c.name) for c in clips]
    with predict.Predictor(model_file, fitted.face_model) as predictor:
        tensor, _ = predictor.flow_of(clips[0])
        np.testing.assert_array_equal(tensor, data.flow[rows[0]])
        got = predictor.predict(clips, progress=False)
        if name == "causalnet":
            with pytest.raises(ValueError, match="offset frame"):
                predictor.flow_of(predict.ClipPair("x", clips[0].onset, clips[0].apex))
    want = predict.Classifier(model_file).probabilities(np.array(data.flow[rows]))
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["htnet", "causalnet"])
def test_a_region_network_exports_to_onnx_with_torchs_probabilities(region_files, tmp_path: Path, name: str) -> None:
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    path, data = region_files[name]
    out = export.export_onnx(modelfile.load(path), tmp_path / f"{name}.onnx")
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert "facial-region" in session.get_modelmeta().custom_metadata_map["inputs"]
    x = np.array(data.flow[:5], dtype=np.float32)
    (got,) = session.run([export.OUTPUT], {export.INPUT: x})
    np.testing.assert_allclose(got, predict.Classifier(modelfile.load(path)).probabilities(x), atol=1e-4, rtol=0)
