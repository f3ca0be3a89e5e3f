"""Stage faces: detection, the onset transform reused on apex/frames, missing faces, report and determinism."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import skimage.data

from memix.config import FacesParams
from memix.datasets.schema import CLIP_COLUMNS
from memix.io import shards
from memix.preprocess import align, clip_align, faces

SHIFT = (6, 4)  # apex of the shifted clip: the whole frame moved 6 px right, 4 px down


def _face() -> np.ndarray:
    """A 300x300 BGR frame around the astronaut's face."""
    bgr = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    return np.ascontiguousarray(bgr[20:320, 75:375])


def _shift(img: np.ndarray, dx: int, dy: int) -> np.ndarray:
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, img.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)


def _write_clip(root: Path, subject: str, clip: str, frames: list[np.ndarray], first: int, apex: int) -> dict:
    """Frames img{first}.. as lossless PNGs in CASME II's layout; the clip index row for them."""
    clip_dir = root / subject / clip
    clip_dir.mkdir(parents=True)
    for k, frame in enumerate(frames):
        cv2.imwrite(str(clip_dir / f"img{first + k}.png"), frame)
    last = first + len(frames) - 1
    return {
        "dataset": "casme2",
        "subject": subject,
        "clip": clip,
        "clip_id": f"{subject}/{clip}",
        "onset": first,
        "apex": apex,
        "offset": last,
        "n_frames": len(frames),
        "emotion": "happiness",
        "label": "happiness",
        "label_id": 0,
        "action_units": "12",
        "frame_dir": f"{subject}/{clip}",
        "onset_path": f"{subject}/{clip}/img{first}.png",
        "apex_path": f"{subject}/{clip}/img{apex}.png",
    }


def _write_index(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows).astype(CLIP_COLUMNS).to_parquet(path)
    return path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Four clips: colour with apex == onset, greyscale with a shifted apex, two faces, and no face."""
    root = tmp_path_factory.mktemp("raw")
    face = _face()
    grey = cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(face, (180, 180), interpolation=cv2.INTER_AREA)
    two = np.full((300, 500, 3), 200, np.uint8)
    two[:, :300] = face
    two[60:240, 310:490] = small
    flat = np.full((240, 240, 3), 128, np.uint8)
    rows = [
        _write_clip(root, "sub01", "EP01_01", [face, face, face], first=7, apex=8),
        _write_clip(root, "sub01", "EP02_01", [grey, _shift(grey, *SHIFT)], first=98, apex=99),
        _write_clip(root, "sub02", "EP01_02", [two, two], first=1, apex=2),
        _write_clip(root, "sub02", "EP03_01", [flat, flat], first=10, apex=11),
    ]
    return _write_index(root.parent / "clips.parquet", rows), root


@pytest.fixture(scope="module")
def faces_out(dataset: tuple[Path, Path], face_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    clips, root = dataset
    out = tmp_path_factory.mktemp("processed") / "faces"
    params = FacesParams(size=96, on_missing="skip", all_frames=True, shard_mb=0.01)
    faces.run(params, clips, root, face_model_path, out)
    return out


def test_index_and_arrays(faces_out: Path) -> None:
    index, arrays = shards.load(faces_out)
    assert list(index["clip_id"]) == ["sub01/EP01_01", "sub01/EP02_01", "sub02/EP01_02"]
    assert (index["status"] == "ok").all() and list(index["subject"]) == ["sub01", "sub01", "sub02"]
    for name in ("onset", "apex"):
        assert arrays[name].shape == (3, 96, 96) and arrays[name].dtype == np.uint8
    assert len(index["affine"].iloc[0]) == 6 and len(index["landmarks"].iloc[0]) == 2 * len(faces.LANDMARK_NAMES)
    assert ((index["score"] > 0.5) & (index["score"] <= 1.0)).all()
    # the recorded eye landmarks map onto the template through the recorded affine
    for _, row in index.iterrows():
        affine = np.asarray(row["affine"]).reshape(2, 3)
        eyes = np.asarray(row["landmarks"][:4]).reshape(2, 2)
        template = np.stack(align.template(96, 0.25))
        np.testing.assert_allclose(align.apply(affine, eyes), template, atol=1e-6)
        assert row["box_x0"] < eyes[:, 0].min() and eyes[:, 0].max() < row["box_x1"]


def test_greyscale_frames_align_like_colour(faces_out: Path) -> None:
    index, arrays = shards.load(faces_out)
    colour, grey = arrays["onset"][0].astype(float), arrays["onset"][1].astype(float)
    assert np.abs(colour - grey).mean() < 2.0  # same face, same template; only the detection may wobble


def test_apex_reuses_the_onset_transform(faces_out: Path) -> None:
    index, arrays = shards.load(faces_out)
    np.testing.assert_array_equal(arrays["apex"][0], arrays["onset"][0])  # apex identical to onset
    # shifted apex: the crop moves by the affine's linear part applied to the shift, not back into place
    affine = np.asarray(index["affine"].iloc[1]).reshape(2, 3)
    want = affine[:, :2] @ np.array(SHIFT, dtype=float)
    window = cv2.createHanningWindow((96, 96), cv2.CV_64F)
    (dx, dy), _ = cv2.phaseCorrelate(arrays["onset"][1].astype(float), arrays["apex"][1].astype(float), window)
    np.testing.assert_allclose([dx, dy], want, atol=0.5)
    assert np.hypot(*want) > 3.0


def test_largest_of_several_faces_is_used_and_reported(faces_out: Path) -> None:
    index, _ = shards.load(faces_out)
    row = index.set_index("clip_id").loc["sub02/EP01_02"]
    assert row["n_faces"] == 2
    assert row["box_x1"] < 300  # the full-size face on the left, not the small copy at x >= 310
    report = json.loads((faces_out / "report.json").read_text())
    assert report["multi_face"] == [{"clip_id": "sub02/EP01_02", "n_faces": 2}]


def test_clip_without_face_is_skipped_and_reported(faces_out: Path) -> None:
    report = json.loads((faces_out / "report.json").read_text())
    assert (report["n_clips"], report["n_ok"], report["n_skipped"]) == (4, 3, 1)
    (skip,) = report["skipped"]
    assert skip["clip_id"] == "sub02/EP03_01" and skip["file"].endswith("sub02/EP03_01/img10.png")


def test_all_frames_use_the_onset_transform(faces_out: Path) -> None:
    index, arrays = shards.load(faces_out)
    frames_index, frame_arrays = shards.load(faces_out / "frames")
    frames = frame_arrays["face"]
    assert list(frames_index["frame"]) == [7, 8, 9, 98, 99, 1, 2]
    assert list(index["frames_count"]) == [3, 2, 2]
    for i, row in index.iterrows():
        start, count = int(row["frames_start"]), int(row["frames_count"])
        assert (frames_index["clip_id"].iloc[start : start + count] == row["clip_id"]).all()
        np.testing.assert_array_equal(frames[start], arrays["onset"][i])
    np.testing.assert_array_equal(frames[4], arrays["apex"][1])  # frame 99: the shifted apex


def test_same_inputs_give_identical_bytes(
    faces_out: Path, dataset: tuple[Path, Path], face_model_path: Path, tmp_path: Path
) -> None:
    clips, root = dataset
    params = FacesParams(size=96, on_missing="skip", all_frames=True, shard_mb=0.01)
    faces.run(params, clips, root, face_model_path, tmp_path / "again")
    first = sorted(p.relative_to(faces_out) for p in faces_out.rglob("*") if p.is_file())
    second = sorted(p.relative_to(tmp_path / "again") for p in (tmp_path / "again").rglob("*") if p.is_file())
    assert first == second and len(first) > 6  # several shards per array
    for rel in first:
        assert (faces_out / rel).read_bytes() == (tmp_path / "again" / rel).read_bytes(), rel


def test_no_face_with_on_missing_error_names_clip_and_file(
    dataset: tuple[Path, Path], face_model_path: Path, tmp_path: Path
) -> None:
    clips, root = dataset
    only_flat = _write_index(tmp_path / "clips.parquet", [pd.read_parquet(clips).iloc[3].to_dict()])
    with pytest.raises(ValueError, match=r"sub02/EP03_01.*img10\.png"):
        faces.run(FacesParams(on_missing="error"), only_flat, root, face_model_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="no face found in any of the 1 clips"):
        faces.run(FacesParams(on_missing="skip"), only_flat, root, face_model_path, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clips.parquet"]


def test_missing_frame_file_names_clip_and_file(
    dataset: tuple[Path, Path], face_model_path: Path, tmp_path: Path
) -> None:
    clips, root = dataset
    row = pd.read_parquet(clips).iloc[0].to_dict()
    row["apex_path"] = "sub01/EP01_01/img77.png"
    broken = _write_index(tmp_path / "clips.parquet", [row])
    with pytest.raises(FileNotFoundError, match=r"sub01/EP01_01.*img77\.png"):
        faces.run(FacesParams(), broken, root, face_model_path, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="nope.parquet"):
        faces.run(FacesParams(), tmp_path / "nope.parquet", root, face_model_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_apex_without_a_face_is_an_error_or_a_reported_skip(face_model_path: Path, tmp_path: Path) -> None:
    """A blank apex would give a flow of nothing under the clip's label: the apex must show a face too."""
    root = tmp_path / "raw"
    face = _face()
    blank = np.full_like(face, 128)
    bad = _write_clip(root, "sub03", "EP09_01", [face, blank], first=1, apex=2)
    good = _write_clip(root, "sub03", "EP10_01", [face, face], first=1, apex=2)
    only_bad = _write_index(tmp_path / "bad.parquet", [bad])
    with pytest.raises(ValueError, match=r"clip sub03/EP09_01: no face found in its apex frame .*EP09_01/img2\.png"):
        faces.run(FacesParams(on_missing="error"), only_bad, root, face_model_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    both = _write_index(tmp_path / "both.parquet", [bad, good])
    faces.run(FacesParams(on_missing="skip", size=64), both, root, face_model_path, tmp_path / "out")
    index, _ = shards.load(tmp_path / "out")
    assert list(index["clip_id"]) == ["sub03/EP10_01"]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (skip,) = report["skipped"]
    assert skip["clip_id"] == "sub03/EP09_01" and skip["file"].endswith("EP09_01/img2.png")
    assert "apex" in skip["reason"]


def test_damaged_frame_is_an_error_or_a_reported_skip(face_model_path: Path, tmp_path: Path) -> None:
    root = tmp_path / "raw"
    face = _face()
    bad = _write_clip(root, "sub04", "EP01_01", [face, face, face], first=5, apex=7)
    good = _write_clip(root, "sub04", "EP02_01", [face, face], first=1, apex=2)
    damaged = root / "sub04" / "EP01_01" / "img6.png"  # between onset and apex: read with all_frames only
    damaged.write_bytes(damaged.read_bytes()[:-400])
    clips = _write_index(tmp_path / "clips.parquet", [bad, good])
    params = FacesParams(size=64, all_frames=True)
    with pytest.raises(ValueError, match=rf"sub04/EP01_01.*{damaged}.*on_bad_frame"):
        faces.run(params, clips, root, face_model_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    faces.run(params, clips, root, face_model_path, tmp_path / "out", on_bad_frame="skip")
    index, _ = shards.load(tmp_path / "out")
    assert list(index["clip_id"]) == ["sub04/EP02_01"]
    (skip,) = json.loads((tmp_path / "out" / "report.json").read_text())["skipped"]
    assert skip["clip_id"] == "sub04/EP01_01" and skip["file"] == damaged.as_posix()


def test_every_file_of_the_faces_folder_is_in_its_manifest(faces_out: Path) -> None:
    for folder in (faces_out, faces_out / "frames"):
        manifest = json.loads((folder / shards.MANIFEST).read_text())
        listed = set(manifest["files"]) | {s["file"] for a in manifest["arrays"].values() for s in a["shards"]}
        assert listed == {p.name for p in folder.iterdir() if p.is_file()} - {shards.MANIFEST}
    assert shards.read_file(faces_out, "report.json") == (faces_out / "report.json").read_bytes()


def test_the_offset_frame_is_cropped_with_the_onset_transform_when_asked(
    faces_out: Path, dataset: tuple[Path, Path], face_model_path: Path, tmp_path: Path
) -> None:
    """CausalNet's apex -> offset flow needs the offset face, cropped like the apex (the onset's transform); the
    default run crops no offset (a damaged offset frame then cannot change the clip set of anything else)."""
    assert "offset" not in shards.load(faces_out)[1]
    clips, root = dataset
    params = FacesParams(size=96, on_missing="skip", shard_mb=0.01)
    faces.run(params, clips, root, face_model_path, tmp_path / "faces", offset=True)
    _, arrays = shards.load(tmp_path / "faces")
    assert arrays["offset"].shape == arrays["apex"].shape and arrays["offset"].dtype == np.uint8
    # EP02_01's offset is its apex frame (the shifted grey face); EP01_01's offset frame is its onset's face again
    np.testing.assert_array_equal(arrays["offset"][1], arrays["apex"][1])
    np.testing.assert_array_equal(arrays["offset"][0], arrays["onset"][0])
    report = json.loads((tmp_path / "faces" / "report.json").read_text())
    assert report["n_offset_at_apex"] == 2  # EP02_01 ends at its apex, and so does EP01_02 (two faces)


def test_offset_frame_is_the_last_frame_on_disk_up_to_the_offset(tmp_path: Path) -> None:
    for n in (3, 4, 6, 9):
        (tmp_path / f"img{n}.jpg").write_bytes(b"")
    assert clip_align.offset_frame(tmp_path, 4, 8) == "img6.jpg"  # the sheet's offset 8 is not on disk
    assert clip_align.offset_frame(tmp_path, 4, 9) == "img9.jpg"
    with pytest.raises(ValueError, match="no frame numbered between the apex 7 and the offset 8"):
        clip_align.offset_frame(tmp_path, 7, 8)
