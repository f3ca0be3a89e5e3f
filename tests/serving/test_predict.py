"""memix predict: new images go through the pipeline's own preprocessing, so held-in clips come out as in training."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from fitted_model import Fitted

from memix import models
from memix.cli import main
from memix.serving import modelfile, predict

HELD_IN_FLOOR = 0.75
"""Accuracy on the 12 clips the model was fitted on; measured 0.75-0.92 over fit seeds 0-5 (seed 0, used here: 0.92);
5 classes, the majority class is 5/12 = 0.42, chance 0.2."""


def _predict(fitted: Fitted, *args: str) -> int:
    return main(["--params", str(fitted.params_path), "predict", "--model", str(fitted.model_path),
                 "--face-model", str(fitted.face_model), "--device", "cpu", *args])


def _reference(fitted: Fitted) -> np.ndarray:
    """The fitted model on the flow set's own tensors, normalised as in training: no memix.serving code involved."""
    data, result = fitted.data, fitted.result
    net = models.build(fitted.params.model, len(data.channels), data.num_classes, data.size)
    net.load_state_dict(result.state_dict)
    x = torch.from_numpy(np.array(data.flow, dtype=np.float32))
    mean = torch.tensor(result.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(result.std, dtype=torch.float32).view(1, -1, 1, 1)
    with torch.no_grad():
        return torch.softmax(net.eval()((x - mean) / std), dim=-1).numpy()


def _clip_folder(fitted: Fitted, root: Path, names: list[str]) -> Path:
    """Folders <name>/onset.jpg + apex.jpg copied from the synthetic set's frames."""
    clips = {c.name: c for c in predict.clips_in_dataset(fitted.params.dataset)}
    for name in names:
        (root / name).mkdir(parents=True)
        shutil.copy(clips[name].onset, root / name / "onset.jpg")
        shutil.copy(clips[name].apex, root / name / "apex.jpg")
    return root


def test_held_in_clips_are_recovered_far_above_chance(fitted: Fitted, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pred.csv"
    assert _predict(fitted, "--dataset", str(fitted.dataset_root), "--out", str(out)) == 0
    table = pd.read_csv(out)
    names = fitted.data.class_names
    assert list(table.columns) == ["clip", "label", "predicted", *(f"prob_{n}" for n in names)]
    assert sorted(table["clip"]) == sorted(fitted.data.index["clip_id"])
    np.testing.assert_allclose(table[[f"prob_{n}" for n in names]].sum(axis=1), 1.0, atol=1e-5)
    accuracy = float((table["label"] == table["predicted"]).mean())
    assert accuracy >= HELD_IN_FLOOR, accuracy
    assert f"{accuracy:.3f}" in capsys.readouterr().out


def test_predict_gives_the_fitted_models_probabilities_on_the_flow_sets_own_tensors(fitted: Fitted) -> None:
    clips = predict.clips_in_dataset(fitted.params.dataset)
    rows = [fitted.data.index["clip_id"].tolist().index(c.name) for c in clips]
    with predict.Predictor(modelfile.load(fitted.model_path), fitted.face_model) as predictor:
        for clip, row in zip(clips[:3], rows, strict=False):  # the same flow, bit for bit
            tensor, onset = predictor.flow_of(clip)
            assert np.array_equal(tensor, fitted.data.flow[row]), clip.name
            assert np.array_equal(onset, fitted.data.onset[row]), clip.name
        probs = predictor.predict(clips, progress=False)
    np.testing.assert_allclose(probs, _reference(fitted)[rows], atol=1e-5, rtol=0)


def test_one_clip_prints_its_class_probabilities_without_a_project(
    fitted: Fitted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = predict.clips_in_dataset(fitted.params.dataset)[0]
    monkeypatch.chdir(tmp_path)  # no params.yaml here: the model file is all predict needs
    assert main(["predict", "--model", str(fitted.model_path), "--face-model", str(fitted.face_model),
                 "--onset", str(clip.onset), "--apex", str(clip.apex)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("predicted: ")
    printed = {line.split()[0]: float(line.split()[1]) for line in out[1:]}
    assert list(printed) == fitted.data.class_names
    assert sum(printed.values()) == pytest.approx(1.0, abs=1e-3)
    assert out[0].split()[1] == max(printed, key=printed.get)


def test_a_folder_of_clips_gives_the_same_rows_as_the_sheet(fitted: Fitted, tmp_path: Path) -> None:
    names = sorted(fitted.data.index["clip_id"])[:3]
    folder = _clip_folder(fitted, tmp_path / "clips", names)
    assert _predict(fitted, "--clips", str(folder), "--out", str(tmp_path / "folder.csv")) == 0
    assert _predict(fitted, "--dataset", str(fitted.dataset_root), "--out", str(tmp_path / "sheet.csv")) == 0
    by_folder = pd.read_csv(tmp_path / "folder.csv").set_index("clip")
    by_sheet = pd.read_csv(tmp_path / "sheet.csv").set_index("clip").loc[names]
    assert list(by_folder.index) == names and "label" not in by_folder
    pd.testing.assert_frame_equal(by_folder, by_sheet.drop(columns="label"))


@pytest.mark.parametrize(
    ("damage", "frame"), [("no face", "onset"), ("no face", "apex"), ("unreadable", "onset"), ("truncated", "apex")]
)
def test_a_bad_image_is_an_error_naming_it_and_nothing_is_written(
    fitted: Fitted, tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str, frame: str
) -> None:
    names = sorted(fitted.data.index["clip_id"])[:2]
    folder = _clip_folder(fitted, tmp_path / "clips", names)
    bad = folder / names[1] / f"{frame}.jpg"
    if damage == "no face":
        cv2.imwrite(str(bad), np.full((160, 160, 3), 128, np.uint8))
    elif damage == "truncated":
        bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    else:
        bad.write_bytes(b"\xff\xd8 this is no JPEG")
    out = tmp_path / "pred.csv"
    assert _predict(fitted, "--clips", str(folder), "--out", str(out)) == 1
    err = capsys.readouterr().err
    expected = {"no face": f"no face found in its {frame} frame", "unreadable": "damaged JPEG", "truncated": "damaged"}
    assert str(bad) in err and expected[damage] in err
    assert not out.exists() and not list(tmp_path.glob(".pred.csv*"))


def test_a_model_file_from_another_version_is_an_error_naming_it(
    fitted: Fitted, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = torch.load(fitted.model_path, map_location="cpu", weights_only=True)
    raw["memix_version"] = "0.0.1"
    old = tmp_path / "old.pt"
    torch.save(raw, old)
    out = tmp_path / "pred.csv"
    code = main(["--params", str(fitted.params_path), "predict", "--model", str(old), "--face-model",
                 str(fitted.face_model), "--dataset", str(fitted.dataset_root), "--out", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert str(old) in err and "0.0.1" in err
    assert not out.exists()


def test_another_face_model_is_refused(fitted: Fitted, tmp_path: Path) -> None:
    other = tmp_path / "face_landmarker.task"
    other.write_bytes(fitted.face_model.read_bytes() + b"\0")
    with pytest.raises(ValueError, match="is not the face model") as info:
        predict.Predictor(modelfile.load(fitted.model_path), other)
    assert str(other) in str(info.value)


def test_a_clip_folder_without_its_apex_is_named(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    cv2.imwrite(str(tmp_path / "a" / "onset.png"), np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="no apex image") as info:
        predict.clips_in_folder(tmp_path)
    assert str(tmp_path / "a") in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no clip folders"):
        predict.clips_in_folder(tmp_path / "empty")


def test_a_sheet_read_with_other_classes_is_refused_naming_both_lists(
    fitted: Fitted, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The 5-class model against the same sheet read with the 3-class map: refused before any clip is scored,
    rather than an accuracy of 0 against labels the model cannot give."""
    import yaml

    settings = yaml.safe_load(fitted.params_path.read_text())
    settings["dataset"]["classes"] = "3class"
    params_path = tmp_path / "params.yaml"
    params_path.write_text(yaml.safe_dump(settings))
    out = tmp_path / "pred.csv"
    assert main(["--params", str(params_path), "predict", "--model", str(fitted.model_path), "--face-model",
                 str(fitted.face_model), "--device", "cpu", "--dataset", str(fitted.dataset_root),
                 "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "are not the model's" in err and str(fitted.model_path) in err
    assert "'negative'" in err and all(f"'{name}'" in err for name in fitted.data.class_names)
    assert not out.exists()


def test_onset_and_apex_without_motion_are_said(
    fitted: Fitted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clips = predict.clips_in_dataset(fitted.params.dataset)
    monkeypatch.chdir(tmp_path)
    assert main(["predict", "--model", str(fitted.model_path), "--face-model", str(fitted.face_model),
                 "--onset", str(clips[0].onset), "--apex", str(clips[0].onset)]) == 0
    err = capsys.readouterr().err
    assert "no motion between onset and apex" in err and clips[0].onset.name in err
    assert main(["predict", "--model", str(fitted.model_path), "--face-model", str(fitted.face_model),
                 "--onset", str(clips[0].onset), "--apex", str(clips[0].apex)]) == 0
    assert "no motion" not in capsys.readouterr().err  # a clip that moves is not flagged


def test_control_characters_in_a_model_files_class_names_are_escaped(
    fitted: Fitted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    contents = torch.load(fitted.model_path, weights_only=False)
    contents["class_names"] = ["\x1b[2J\x1b[31mhappiness", *contents["class_names"][1:]]
    evil = modelfile.write(tmp_path / "evil.pt", {k: v for k, v in contents.items() if k != "state_dict_sha256"})
    clip = predict.clips_in_dataset(fitted.params.dataset)[0]
    monkeypatch.chdir(tmp_path)
    base = ["predict", "--model", str(evil), "--face-model", str(fitted.face_model)]
    assert main([*base, "--onset", str(clip.onset), "--apex", str(clip.apex)]) == 0
    printed = capsys.readouterr().out
    assert "\x1b" not in printed and "\\x1b[2J\\x1b[31mhappiness" in printed
    folder = _clip_folder(fitted, tmp_path / "clips", [clip.name])
    assert main([*base, "--clips", str(folder), "--out", str(tmp_path / "p.csv")]) == 0
    header = (tmp_path / "p.csv").read_text().splitlines()[0]
    assert "\x1b" not in header and "prob_\\x1b[2J\\x1b[31mhappiness" in header


def test_a_dataset_with_spotted_apexes_is_scored_on_the_apex_the_faces_stage_spots(fitted: Fitted,
                                                                                   tmp_path: Path) -> None:
    """dataset.apex: spotted: predict --dataset spots each clip's apex as the faces stage does (not the middle frame
    the clip index holds until then), so its tensors are the spotted flow set's, bit for bit."""
    from memix.datasets import ingest
    from memix.io import flowset, shards
    from memix.preprocess import faces, flow

    spotted = fitted.params.dataset.model_copy(update={"apex": "spotted"})
    ingest.run(spotted, tmp_path / "interim")
    faces.run(fitted.params.faces, tmp_path / "interim" / "clips.parquet", fitted.dataset_root, fitted.face_model,
              tmp_path / "faces", apex="spotted", on_bad_apex=spotted.on_bad_apex)
    flow.run(fitted.params.flow, tmp_path / "faces", tmp_path / "flow", tmp_path / "montage.png")
    data = flowset.read(tmp_path / "flow")
    placeholder = pd.read_parquet(tmp_path / "interim" / "clips.parquet").set_index("clip_id")["apex"]
    used = shards.load_index(tmp_path / "faces").set_index("clip_id")["apex"]
    clips = {c.name: c for c in predict.clips_in_dataset(spotted)}
    assert all(clips[c].spot_among for c in data.index["clip_id"])  # every clip spotted among onset..offset
    moved = [c for c in data.index["clip_id"] if used[c] != placeholder[c]]  # not the middle frame
    assert len(moved) >= 3
    with predict.Predictor(modelfile.load(fitted.model_path), fitted.face_model) as predictor:
        for name in moved[:3]:
            row = data.index["clip_id"].tolist().index(name)
            tensor, onset = predictor.flow_of(clips[name])
            assert np.array_equal(tensor, data.flow[row]), name
            assert np.array_equal(onset, data.onset[row]), name
