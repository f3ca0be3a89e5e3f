"""memix predict --frames / --video: a clip nobody annotated is scored from its first frame and its spotted apex,
through the very path --onset/--apex takes, and a still clip is refused."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from fitted_model import Fitted

from memix.cli import main
from memix.datasets.frames import list_frames, read_frame
from memix.serving import clip_frames, modelfile, predict

FIRST = 5
"""The test clip's frames are renamed img5, img6, ...: img10 sorts before img5 by name, after img9 by number."""

APEX_TOLERANCE = 1
"""Frames between the spotted and the sheet's apex. The tiny set's motion rises and falls as a raised cosine, flat
near its top; measured on its 12 clips with memix.preprocess.spotting as of this test: 0 frames off on each (the
clip used here: peak 5x its noise floor)."""

USED = re.compile(r"^(onset|apex|offset): (.+?) \(index (\d+)", re.MULTILINE)


@dataclass(frozen=True)
class Clip:
    folder: Path  # img5.jpg, img6.jpg, ... the synthetic clip's frames in order
    apex: int  # the sheet's apex, as an index into the frames
    video: Path  # the same frames, losslessly encoded


@pytest.fixture(scope="module")
def clip(fitted: Fitted, tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """The first synthetic clip (by name) of at least 10 frames, copied with its frames renumbered from FIRST, and
    written as an FFV1 video (lossless: it decodes to the very pixels of the JPEGs)."""
    work = tmp_path_factory.mktemp("unannotated")
    pair = next(c for c in sorted(predict.clips_in_dataset(fitted.params.dataset), key=lambda c: c.name)
                if len(list_frames(c.onset.parent)) >= 10)
    names = list(list_frames(pair.onset.parent).values())
    assert names[0] == pair.onset.name  # the synthetic clip starts at its onset
    folder = work / "frames"
    folder.mkdir()
    video = work / "clip.avi"
    frames = [read_frame(pair.onset.parent / name, pair.name) for name in names]
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"FFV1"), 30.0, frames[0].shape[1::-1])
    assert writer.isOpened()
    for i, (name, frame) in enumerate(zip(names, frames, strict=True)):
        shutil.copy(pair.onset.parent / name, folder / f"img{FIRST + i}.jpg")
        writer.write(frame)
    writer.release()
    return Clip(folder, names.index(pair.apex.name), video)


def _predict(fitted: Fitted, capsys: pytest.CaptureFixture[str], *args: str, model: Path | None = None
             ) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--params", str(fitted.params_path), "predict", "--model", str(model or fitted.model_path),
                 "--face-model", str(fitted.face_model), "--device", "cpu", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _used(out: str) -> dict[str, tuple[str, int]]:
    return {role: (name, int(index)) for role, name, index in USED.findall(out)}


def _probs(csv: Path) -> pd.Series:
    table = pd.read_csv(csv)
    assert len(table) == 1
    return table.filter(like="prob_").iloc[0]


def test_frames_spots_the_apex_and_prints_the_frames_used(
    fitted: Fitted, clip: Clip, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _predict(fitted, capsys, "--frames", str(clip.folder))
    assert code == 0, err
    used = _used(out)
    assert used["onset"] == (f"img{FIRST}.jpg", 0)  # by frame number: img5 first, though "img10" < "img5"
    name, index = used["apex"]
    assert abs(index - clip.apex) <= APEX_TOLERANCE, (index, clip.apex)
    assert name == f"img{FIRST + index}.jpg"  # the name printed is the frame at that index
    assert "offset" not in used  # the ViT reads the onset -> apex flow only
    peak, floor = (float(v) for v in re.search(r"motion peak (\S+) vs noise floor (\S+)\)", out).groups())
    assert peak > floor > 0
    probs = {line.split()[0]: float(line.split()[1]) for line in out.splitlines() if line.startswith("  ")}
    assert list(probs) == fitted.data.class_names and sum(probs.values()) == pytest.approx(1.0, abs=1e-3)
    assert f"predicted: {max(probs, key=probs.get)}" in out


def test_frames_give_the_probabilities_of_onset_and_apex_given_those_frames(
    fitted: Fitted, clip: Clip, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    by_frames = tmp_path / "frames.csv"
    code, out, err = _predict(fitted, capsys, "--frames", str(clip.folder), "--out", str(by_frames))
    assert code == 0, err
    apex = _used(out)["apex"][0]
    table = pd.read_csv(by_frames)
    assert table.loc[0, "onset"] == f"img{FIRST}.jpg" and table.loc[0, "apex"] == apex
    assert table.loc[0, "motion_peak"] > table.loc[0, "motion_floor"]
    by_pair = tmp_path / "pair.csv"
    code, _, err = _predict(fitted, capsys, "--onset", str(clip.folder / f"img{FIRST}.jpg"),
                            "--apex", str(clip.folder / apex), "--out", str(by_pair))
    assert code == 0, err
    pd.testing.assert_series_equal(_probs(by_frames), _probs(by_pair), check_exact=True, check_names=False)
    assert table.loc[0, "predicted"] == pd.read_csv(by_pair).loc[0, "predicted"]


def test_the_spotted_clip_is_the_network_input_of_its_two_frames_bit_for_bit(fitted: Fitted, clip: Clip) -> None:
    model_file = modelfile.load(fitted.model_path)
    fp = model_file.faces
    with predict.Predictor(model_file, fitted.face_model) as predictor:
        frames = clip_frames.FolderFrames(clip.folder)
        spotted = clip_frames.spot_clip(predictor.detector, frames, fp.size, fp.margin)
        got = predictor.input_of(spotted.name, spotted.aligned, None, spotted.frames())
        pair = predict.ClipPair("pair", clip.folder / frames.labels[0], clip.folder / frames.labels[spotted.spot.apex])
        want = predictor.flow_of(pair)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert spotted.aligned.apex_faces > 0  # the spotted apex was searched for a face, as a sheet's apex is


def test_a_video_of_the_frames_gives_the_same_frames_and_probabilities(
    fitted: Fitted, clip: Clip, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    by_frames, by_video = tmp_path / "frames.csv", tmp_path / "video.csv"
    code, _, err = _predict(fitted, capsys, "--frames", str(clip.folder), "--out", str(by_frames))
    assert code == 0, err
    code, out, err = _predict(fitted, capsys, "--video", str(clip.video), "--out", str(by_video))
    assert code == 0, err
    frames, video = pd.read_csv(by_frames), pd.read_csv(by_video)
    index = int(frames.loc[0, "apex_index"])
    assert _used(out) == {"onset": ("frame 0", 0), "apex": (f"frame {index}", index)}
    assert video.loc[0, "clip"] == "clip" and video.loc[0, "apex"] == f"frame {index}"
    columns = ["onset_index", "apex_index", "motion_peak", "motion_floor", "predicted"]
    pd.testing.assert_frame_equal(video[columns], frames[columns])
    pd.testing.assert_series_equal(_probs(by_video), _probs(by_frames), check_exact=True)


def test_a_still_clip_is_refused_with_a_message_and_nothing_is_predicted(
    fitted: Fitted, clip: Clip, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    onset = read_frame(clip.folder / f"img{FIRST}.jpg", "still")
    rng = np.random.default_rng(0)
    still = tmp_path / "still"
    still.mkdir()
    for i in range(8):  # the onset again and again, with sensor-like noise (sd 1 grey level), lossless
        frame = np.clip(onset + rng.normal(0.0, 1.0, onset.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(still / f"img{i + 1}.png"), frame)
    out_csv = tmp_path / "pred.csv"
    code, out, err = _predict(fitted, capsys, "--frames", str(still), "--out", str(out_csv))
    assert code == 1
    assert "no detectable motion" in err and "nothing was predicted" in err and str(still) in err
    assert "onset: img1.png (index 0" in out and "apex: none" in out
    assert "predicted:" not in out and not out_csv.exists()


def test_causalnet_gets_the_last_frame_as_its_offset(
    fitted: Fitted, clip: Clip, region_files, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = region_files["causalnet"][0]
    by_frames, by_files = tmp_path / "frames.csv", tmp_path / "files.csv"
    code, out, err = _predict(fitted, capsys, "--frames", str(clip.folder), "--out", str(by_frames), model=model)
    assert code == 0, err
    used, last = _used(out), len(list_frames(clip.folder)) - 1
    assert used["offset"] == (f"img{FIRST + last}.jpg", last)
    code, _, err = _predict(fitted, capsys, "--onset", str(clip.folder / used["onset"][0]),
                            "--apex", str(clip.folder / used["apex"][0]),
                            "--offset", str(clip.folder / used["offset"][0]), "--out", str(by_files), model=model)
    assert code == 0, err
    pd.testing.assert_series_equal(_probs(by_frames), _probs(by_files), check_exact=True, check_names=False)
    assert pd.read_csv(by_frames).loc[0, "offset_index"] == last


def _damage(folder: Path, clip: Clip) -> Path:
    """A copy of the clip whose third frame is a truncated JPEG; returns that file."""
    shutil.copytree(clip.folder, folder)
    bad = folder / f"img{FIRST + 2}.jpg"
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    return bad


@pytest.mark.parametrize("case", ["two frames", "damaged frame", "unnumbered image", "not a video", "no video"])
def test_bad_input_is_an_error_naming_the_file(
    fitted: Fitted, clip: Clip, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    work = tmp_path / "clip"
    if case == "two frames":  # an onset and apex pair: no noise floor to spot against (--onset/--apex takes it)
        work.mkdir()
        shutil.copy(clip.folder / f"img{FIRST}.jpg", work / "img1.jpg")
        shutil.copy(clip.folder / f"img{FIRST + 4}.jpg", work / "img2.jpg")
        args, named, said = ["--frames", str(work)], work, "2 frame images; spotting the apex needs at least 3"
    elif case == "damaged frame":
        args, named, said = ["--frames", str(work)], _damage(work, clip), "damaged JPEG"
    elif case == "unnumbered image":
        shutil.copytree(clip.folder, work)
        shutil.copy(clip.folder / f"img{FIRST}.jpg", work / "neutral.jpg")
        args, named, said = ["--frames", str(work)], work, "without a frame number in their name: neutral.jpg"
    elif case == "not a video":
        work.mkdir()
        named = work / "clip.avi"
        named.write_text("this is no video\n")
        args, said = ["--video", str(named)], "OpenCV cannot open this video"
    else:
        named = work / "missing.mp4"
        args, said = ["--video", str(named)], "video not found"
    code, out, err = _predict(fitted, capsys, *args)
    assert code == 1
    assert said in err and str(named) in err, err
    assert "predicted:" not in out
