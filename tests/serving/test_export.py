"""memix export: the ONNX graph gives torch's probabilities; without the extra, the error says what to install."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from fitted_model import Fitted

from memix.cli import main
from memix.serving import export, modelfile, predict


def test_onnxruntime_gives_torchs_probabilities_on_a_batch(fitted: Fitted, tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")  # torch's ONNX exporter
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "memix.onnx"
    assert main(["export", "--model", str(fitted.model_path), "--format", "onnx", "--out", str(out)]) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    model_file = modelfile.load(fitted.model_path)
    flow = np.array(fitted.data.flow[:5], dtype=np.float32)  # a batch size other than the export example's
    (got,) = session.run([export.OUTPUT], {export.INPUT: flow})
    want = predict.Classifier(model_file).probabilities(flow)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    assert not np.allclose(want, want[:1])  # the clips differ, so a constant output would fail
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["class_names"]) == fitted.data.class_names
    assert json.loads(meta["flow"])["method"] == fitted.data.stats["method"]


def test_without_the_extra_the_error_says_how_to_install_it(
    fitted: Fitted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now fails
    out = tmp_path / "memix.onnx"
    with pytest.raises(RuntimeError, match=r"memix\[onnx\]"):
        export.export_onnx(modelfile.load(fitted.model_path), out)
    assert not out.exists()
