"""What predict and export must never do: delete a folder at --out, use damaged or non-finite weights, or write a
CSV cell that a spreadsheet runs as a formula."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from fitted_model import Fitted

from memix.cli import main
from memix.serving import modelfile, predict


def _one_clip(fitted: Fitted, model: Path, *args: str) -> int:
    clip = predict.clips_in_dataset(fitted.params.dataset)[0]
    return main(["predict", "--model", str(model), "--face-model", str(fitted.face_model), "--device", "cpu",
                 "--onset", str(clip.onset), "--apex", str(clip.apex), *args])


def _with_weights(fitted: Fitted, dst: Path, change, rehash: bool) -> Path:
    raw = torch.load(fitted.model_path, map_location="cpu", weights_only=True)
    name = sorted(k for k, v in raw["state_dict"].items() if v.is_floating_point() and v.numel() > 1)[0]
    change(raw["state_dict"][name])
    if rehash:  # a file written that way (a diverged fit), not damaged afterwards
        raw["state_dict_sha256"] = modelfile.tensors_sha256(raw["state_dict"])
    torch.save(raw, dst)
    return dst


# ---------------------------------------------------------------------------------------------- --out
@pytest.mark.parametrize("command", ["predict", "export"])
def test_out_at_an_existing_folder_is_refused_and_the_folder_kept(
    fitted: Fitted, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "notes.txt").write_text("mine")
    if command == "predict":
        code = _one_clip(fitted, fitted.model_path, "--out", str(results))
    else:
        code = main(["export", "--model", str(fitted.model_path), "--out", str(results)])
    assert code == 1
    err = capsys.readouterr().err
    assert str(results) in err and "existing folder" in err
    assert [p.name for p in results.iterdir()] == ["notes.txt"] and (results / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_predict_out_at_an_existing_file_replaces_it(fitted: Fitted, tmp_path: Path) -> None:
    out = tmp_path / "pred.csv"
    out.write_text("old")
    assert _one_clip(fitted, fitted.model_path, "--out", str(out)) == 0
    assert pd.read_csv(out)["clip"].tolist() == [predict.clips_in_dataset(fitted.params.dataset)[0].onset.name]


def test_export_out_at_an_existing_file_replaces_it(fitted: Fitted, tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    out = tmp_path / "m.onnx"
    out.write_text("old")
    assert main(["export", "--model", str(fitted.model_path), "--out", str(out)]) == 0
    assert out.read_bytes() != b"old"


# ---------------------------------------------------------------------------------------------- weights
def test_a_flipped_byte_in_the_weights_is_refused_naming_the_file(fitted: Fitted, tmp_path: Path) -> None:
    def flip(t: torch.Tensor) -> None:
        t.view(-1)[0] = -t.view(-1)[0] + 1.0

    damaged = _with_weights(fitted, tmp_path / "damaged.pt", flip, rehash=False)
    with pytest.raises(ValueError, match="differ from their sha256") as info:
        modelfile.load(damaged)
    assert str(damaged) in str(info.value)


def test_the_file_records_the_sha256_of_its_tensors(fitted: Fitted) -> None:
    raw = torch.load(fitted.model_path, map_location="cpu", weights_only=True)
    assert raw["state_dict_sha256"] == modelfile.tensors_sha256(fitted.result.state_dict)


@pytest.mark.parametrize("command", ["load", "predict", "export"])
def test_a_nan_weight_is_refused(
    fitted: Fitted, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    def nan(t: torch.Tensor) -> None:
        t.view(-1)[0] = float("nan")

    model = _with_weights(fitted, tmp_path / "nan.pt", nan, rehash=True)
    if command == "load":
        with pytest.raises(ValueError, match="NaN or infinite weights") as info:
            modelfile.load(model)
        assert str(model) in str(info.value)
        return
    out = tmp_path / "out"
    if command == "predict":
        code = _one_clip(fitted, model, "--out", str(out))
    else:
        code = main(["export", "--model", str(model), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 1 and "NaN or infinite weights" in captured.err and str(model) in captured.err
    assert "predicted" not in captured.out and not out.exists()


@pytest.mark.parametrize("value", [float("inf"), float("-inf")], ids=["+inf", "-inf"])
def test_an_infinite_weight_is_refused_on_load_and_on_write(fitted: Fitted, tmp_path: Path, value: float) -> None:
    def infinite(t: torch.Tensor) -> None:
        t.view(-1)[0] = value

    model = _with_weights(fitted, tmp_path / "inf.pt", infinite, rehash=True)  # the checksum matches: only the value
    with pytest.raises(ValueError, match="NaN or infinite weights") as info:
        modelfile.load(model)
    assert str(model) in str(info.value)
    contents = dict(torch.load(model, map_location="cpu", weights_only=True))
    out = tmp_path / "models" / "memix.pt"
    with pytest.raises(ValueError, match="not written: the model has NaN or infinite weights"):
        modelfile.write(out, contents)
    assert not out.exists()


def test_a_model_with_a_nan_weight_is_not_written(fitted: Fitted, tmp_path: Path) -> None:
    contents = dict(torch.load(fitted.model_path, map_location="cpu", weights_only=True))
    contents["state_dict"] = {k: v.clone() for k, v in contents["state_dict"].items()}
    next(v for v in contents["state_dict"].values() if v.is_floating_point()).view(-1)[0] = float("inf")
    out = tmp_path / "models" / "memix.pt"
    with pytest.raises(ValueError, match="not written: the model has NaN or infinite weights"):
        modelfile.write(out, contents)
    assert not out.exists()


# ---------------------------------------------------------------------------------------------- CSV
def test_cells_that_would_start_a_formula_are_quoted(tmp_path: Path) -> None:
    names = ["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "sub01/EP02", "a=b"]
    clips = [predict.ClipPair(n, Path("o.jpg"), Path("a.jpg"), label="-neg") for n in names]
    probs = np.tile(np.array([[0.25, 0.75]], np.float32), (len(names), 1))
    predict.write_csv(tmp_path / "p.csv", predict.predictions_frame(clips, probs, ["=cls", "ok"]))
    table = pd.read_csv(tmp_path / "p.csv", dtype=str, keep_default_na=False)
    assert table["clip"].tolist() == ["'=HYPERLINK(\"http://x\")", "'+1", "'-2", "'@SUM(A1)", "sub01/EP02", "a=b"]
    assert set(table["label"]) == {"'-neg"} and set(table["predicted"]) == {"ok"}
    assert list(table.columns) == ["clip", "label", "predicted", "prob_=cls", "prob_ok"]
    assert table["prob_ok"].tolist() == ["0.750000"] * len(names)


def test_non_finite_probabilities_are_refused_naming_the_clips(
    fitted: Fitted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = predict.Classifier.probabilities

    def second_row_nan(self, flow_batch, onset=None, batch=predict.BATCH):
        probs = real(self, flow_batch, onset, batch)
        probs[1] = np.nan
        return probs

    monkeypatch.setattr(predict.Classifier, "probabilities", second_row_nan)
    clips = predict.clips_in_dataset(fitted.params.dataset)[:3]
    with predict.Predictor(modelfile.load(fitted.model_path), fitted.face_model, "cpu") as predictor:
        with pytest.raises(ValueError, match=rf"NaN or infinite probabilities for clip\(s\) {clips[1].name}; "):
            predictor.predict(clips, progress=False)
