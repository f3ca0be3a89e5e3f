"""Flow stage: accuracy on a real face with known motion, strain, resizing, fold statistics and the stage itself."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from skimage import data

from memix import log
from memix.config import FlowParams
from memix.io import flowset, shards
from memix.preprocess import flow, optical_flow

BORDER = 16


def _face(size: int | None = None) -> np.ndarray:
    """A 144 px greyscale crop around the astronaut's face (real texture), optionally resized."""
    grey = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    crop = np.ascontiguousarray(grey[30:174, 150:294])
    return crop if size is None else cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def _smooth_field(xx: np.ndarray, yy: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """u and v differ in form and axis (u varies along y, v along x), magnitudes ~0.2-2.2 px."""
    u = 1.0 + 0.8 * np.sin(2 * np.pi * yy / h)
    v = -0.6 + 0.6 * np.cos(2 * np.pi * xx / w)
    return u.astype(np.float32), v.astype(np.float32)


def _warp(onset: np.ndarray, field) -> tuple[np.ndarray, np.ndarray]:
    """Apex such that onset pixel x moves to x + F(x); returns (apex, true flow (H, W, 2) on the onset grid)."""
    h, w = onset.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = field(xx, yy, h, w)
    gu, gv = u.copy(), v.copy()
    for _ in range(10):  # invert the forward field: apex(y) = onset(y - G(y)) with G(y) = F(y - G(y))
        gu, gv = field(xx - gu, yy - gv, h, w)
    apex = cv2.remap(onset, xx - gu, yy - gv, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    return apex, np.stack([u, v], axis=-1)


def _epe(est: np.ndarray, true: np.ndarray) -> float:
    diff = (est - true)[BORDER:-BORDER, BORDER:-BORDER]
    return float(np.hypot(diff[..., 0], diff[..., 1]).mean())


@pytest.fixture(scope="module")
def warped() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    onset = _face()
    apex, true = _warp(onset, _smooth_field)
    return onset, apex, true


@pytest.fixture(scope="module")
def tvl1_flow(warped) -> np.ndarray:
    onset, apex, _ = warped
    return optical_flow.compute_flow(onset, apex, "tvl1")


# ------------------------------------------------------------------------------------ compute_flow
def test_tvl1_recovers_known_motion_on_a_real_face(warped, tvl1_flow) -> None:
    _, _, true = warped
    assert tvl1_flow.shape == true.shape and tvl1_flow.dtype == np.float32
    zero_epe = _epe(np.zeros_like(true), true)  # ~1.35 px: what "no motion found" scores
    assert _epe(tvl1_flow, true) < 0.15
    # the bound is far below what a sign flip or u/v swap would score
    assert _epe(-tvl1_flow, true) > 10 * 0.15 and _epe(tvl1_flow[..., ::-1], true) > 10 * 0.15
    assert zero_epe > 1.0


def test_horizontal_flip_negates_u(warped, tvl1_flow) -> None:
    onset, apex, true = warped
    flipped = optical_flow.compute_flow(onset[:, ::-1].copy(), apex[:, ::-1].copy(), "tvl1")
    back = flipped[:, ::-1]  # mirrored back onto the original grid
    inner = (slice(BORDER, -BORDER), slice(BORDER, -BORDER))
    corr_u = np.corrcoef(back[inner][..., 0].ravel(), tvl1_flow[inner][..., 0].ravel())[0, 1]
    corr_v = np.corrcoef(back[inner][..., 1].ravel(), tvl1_flow[inner][..., 1].ravel())[0, 1]
    assert corr_u < -0.9 and corr_v > 0.9
    assert back[inner][..., 0].mean() < -0.5  # the true u is ~+1 px: mirrored, it points left
    mirrored_true = np.stack([-true[..., 0], true[..., 1]], axis=-1)
    assert _epe(back, mirrored_true) < 0.15


@pytest.mark.parametrize("method", ["farneback", "dis"])
def test_other_methods_recover_the_field_roughly(warped, method) -> None:
    onset, apex, true = warped
    est = optical_flow.compute_flow(onset, apex, method)
    assert est.shape == true.shape and est.dtype == np.float32
    assert _epe(est, true) < 0.35


def test_method_params_reach_opencv() -> None:
    onset = _face(48)
    apex, _ = _warp(onset, _smooth_field)
    default = optical_flow.compute_flow(onset, apex, "tvl1", nscales=2, warps=2)
    smooth = optical_flow.compute_flow(onset, apex, "tvl1", nscales=2, warps=2, **{"lambda": 0.01})
    assert not np.allclose(default, smooth, atol=1e-3)  # lambda changed the solution
    same = optical_flow.compute_flow(onset, apex, "tvl1", nscales=2, warps=2, lambda_=0.01)
    np.testing.assert_array_equal(smooth, same)  # params.yaml spelling and Python spelling agree
    coarse = optical_flow.compute_flow(onset, apex, "farneback", levels=1, winsize=5)
    assert not np.allclose(coarse, optical_flow.compute_flow(onset, apex, "farneback"), atol=1e-3)


def test_bad_method_param_or_input_is_named() -> None:
    img = _face(32)
    with pytest.raises(ValueError, match="unknown flow method 'raft'"):
        optical_flow.compute_flow(img, img, "raft")
    with pytest.raises(ValueError, match="tvl1.*omega"):
        optical_flow.compute_flow(img, img, "tvl1", omega=1.0)
    with pytest.raises(ValueError, match="nscales"):
        optical_flow.compute_flow(img, img, "tvl1", nscales=0)
    with pytest.raises(ValueError, match="preset"):
        optical_flow.compute_flow(img, img, "dis", preset="slow")
    with pytest.raises(ValueError, match="apex must be a uint8"):
        optical_flow.compute_flow(img, img.astype(np.float32), "farneback")
    with pytest.raises(ValueError, match="differ in shape"):
        optical_flow.compute_flow(img, img[:16], "farneback")


# ------------------------------------------------------------------------------------------ strain
def test_strain_of_a_linear_field_matches_the_formula() -> None:
    a, b, c, d = 0.08, 0.01, 0.03, -0.02  # all different, so an axis mix-up changes the answer
    yy, xx = np.mgrid[0:40, 0:50].astype(np.float64)
    field = np.stack([a * xx + b * yy, c * xx + d * yy], axis=-1).astype(np.float32)
    strain = optical_flow.optical_strain(field)
    expected = np.sqrt(a**2 + d**2 + 0.5 * (b + c) ** 2)
    assert strain.shape == (40, 50)
    np.testing.assert_allclose(strain[1:-1, 1:-1], expected, rtol=1e-4)
    wrong = np.sqrt(b**2 + c**2 + 0.5 * (a + d) ** 2)  # d/dy taken for d/dx
    assert abs(expected - wrong) > 0.01


def test_strain_ignores_pure_translation_and_rotation() -> None:
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)
    shift = np.stack([np.full_like(xx, 1.5), np.full_like(xx, -0.7)], axis=-1)
    np.testing.assert_allclose(optical_flow.optical_strain(shift), 0.0, atol=1e-6)
    w = 0.02  # small rigid rotation: u = -w y, v = w x has zero symmetric gradient
    rot = np.stack([-w * yy, w * xx], axis=-1)
    np.testing.assert_allclose(optical_flow.optical_strain(rot), 0.0, atol=1e-6)


# ---------------------------------------------------------------------------------------- resizing
def test_resize_scales_vectors_with_the_grid() -> None:
    const = np.zeros((128, 128, 2), np.float32)
    const[..., 0], const[..., 1] = 2.0, -1.0
    small = optical_flow.resize_flow(const, 32)
    assert small.shape == (32, 32, 2)
    np.testing.assert_allclose(small[..., 0], 0.5, rtol=1e-6)
    np.testing.assert_allclose(small[..., 1], -0.25, rtol=1e-6)
    # non-square: u follows the width ratio, v the height ratio
    rect = optical_flow.resize_flow(np.ones((64, 128, 2), np.float32), (32, 32))
    np.testing.assert_allclose(rect[..., 0], 0.25, rtol=1e-6)
    np.testing.assert_allclose(rect[..., 1], 0.5, rtol=1e-6)
    np.testing.assert_allclose(optical_flow.resize_flow(small, 64)[..., 0], 1.0, rtol=1e-6)  # enlarging


def test_resize_area_averages_when_shrinking() -> None:
    field = np.zeros((8, 8, 2), np.float32)
    field[:4, :4, 0] = 4.0  # one quadrant moves
    small = optical_flow.resize_flow(field, 2)
    np.testing.assert_allclose(small[..., 0], [[1.0, 0.0], [0.0, 0.0]], atol=1e-6)  # mean 4 px * 1/4 scale


# ----------------------------------------------------------------------------------- channel stats
def test_channel_stats_from_sums_equal_direct_stats() -> None:
    rng = np.random.default_rng(0)
    clips = [rng.normal(loc=i, scale=1 + i, size=(3, n)) for i, n in enumerate([50, 80, 30, 64])]
    subjects = ["s1", "s1", "s2", "s3"]
    channels = ["u", "v", "strain"]
    rows = []
    for clip, subj in zip(clips, subjects, strict=True):
        row = {"subject": subj, "n_pixels": clip.shape[1]}
        for c, ch in enumerate(channels):
            row[f"sum_{ch}"] = clip[c].sum()
            row[f"sumsq_{ch}"] = (clip[c] ** 2).sum()
        rows.append(row)
    index = pd.DataFrame(rows)
    mean, std = flowset.channel_stats(index, channels)
    whole = np.concatenate(clips, axis=1)
    np.testing.assert_allclose(mean, whole.mean(axis=1), rtol=1e-10)
    np.testing.assert_allclose(std, whole.std(axis=1), rtol=1e-10)
    train = index["subject"] != "s1"  # a LOSO fold's training rows
    mean, std = flowset.channel_stats(index[train], channels)
    part = np.concatenate([c for c, s in zip(clips, subjects, strict=True) if s != "s1"], axis=1)
    np.testing.assert_allclose(mean, part.mean(axis=1), rtol=1e-10)
    np.testing.assert_allclose(std, part.std(axis=1), rtol=1e-10)
    with pytest.raises(ValueError, match="sum_strain"):
        flowset.channel_stats(index.drop(columns="sum_strain"), channels)
    with pytest.raises(ValueError, match="empty"):
        flowset.channel_stats(index.iloc[:0], channels)


# ------------------------------------------------------------------------------------------- stage
CROP, SIZE = 48, 16
LABELS = ["happiness", "disgust", "surprise"]


def _shift(du: float, dv: float):
    def field(xx, yy, h, w):
        return np.full_like(xx, du), np.full_like(yy, dv)

    return field


def write_faces(out_dir: Path, n: int = 6) -> list[tuple[float, float]]:
    """A faces shard folder of ``n`` clips: the face and the same face shifted by a known constant motion."""
    onset = _face(CROP)
    rows, onsets, apexes, shifts = [], [], [], []
    for i in range(n):
        du, dv = 0.5 + 0.25 * i, -0.4 if i % 2 else 0.6
        apex, _ = _warp(onset, _shift(du, dv))
        subject = f"sub{i % 2 + 1:02d}"
        rows.append(
            {
                "clip_id": f"{subject}/EP{i:02d}",
                "dataset": "casme2",
                "subject": subject,
                "label": LABELS[i % 3],
                "label_id": i % 3,
                "status": "ok",
            }
        )
        onsets.append(onset)
        apexes.append(apex)
        shifts.append((du, dv))
    shards.write(out_dir, pd.DataFrame(rows), {"onset": np.stack(onsets), "apex": np.stack(apexes)}, shard_mb=64)
    return shifts


@pytest.fixture(scope="module")
def faces_dir(tmp_path_factory) -> tuple[Path, list[tuple[float, float]]]:
    root = tmp_path_factory.mktemp("faces")
    shifts = write_faces(root / "faces")
    return root / "faces", shifts


def _params(**kw) -> FlowParams:
    base = {"size": SIZE, "montage_per_class": 1, "tvl1": {"nscales": 3}}
    return FlowParams(**{**base, **kw})


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_run_writes_the_flow_contract(faces_dir, tmp_path, caplog) -> None:
    faces, shifts = faces_dir
    out, png = tmp_path / "flow", tmp_path / "reports" / "flow_montage.png"
    with caplog.at_level(logging.WARNING, logger="memix"):
        flow.run(_params(workers=1), faces, out, png)
    assert not caplog.records  # no clip listed in report.json: no warning
    index, arrays = shards.load(out)
    n = len(shifts)
    assert arrays["flow"].shape == (n, 3, SIZE, SIZE) and arrays["flow"].dtype == np.float16
    assert arrays["onset"].shape == (n, SIZE, SIZE) and arrays["onset"].dtype == np.uint8
    expected_cols = [
        "clip_id",
        "dataset",
        "subject",
        "label",
        "label_id",
        "max_mag",
        "mean_mag",
        "sum_u",
        "sumsq_u",
        "sum_v",
        "sumsq_v",
        "sum_strain",
        "sumsq_strain",
        "n_pixels",
        "shard",
        "row",
    ]
    assert sorted(index.columns) == sorted(expected_cols)
    assert index["clip_id"].tolist() == [f"sub{i % 2 + 1:02d}/EP{i:02d}" for i in range(n)]  # faces order kept
    # vectors are in pixels of the stored grid: a (du, dv) shift at 48 px is (du, dv) / 3 at 16 px
    inner = arrays["flow"][:, :, 2:-2, 2:-2].astype(np.float64)
    scale = SIZE / CROP
    for i, (du, dv) in enumerate(shifts):
        assert inner[i, 0].mean() == pytest.approx(du * scale, abs=0.05)
        assert inner[i, 1].mean() == pytest.approx(dv * scale, abs=0.05)
        assert np.median(inner[i, 2]) < 0.05  # a rigid shift has (almost) no strain
    # index sums describe exactly the stored float16 values
    stored = np.asarray(arrays["flow"], dtype=np.float64)
    mean, std = flowset.channel_stats(index, ["u", "v", "strain"])
    np.testing.assert_allclose(mean, stored.mean(axis=(0, 2, 3)), rtol=1e-9)
    np.testing.assert_allclose(std, stored.std(axis=(0, 2, 3)), rtol=1e-9)
    mags = np.hypot(stored[:, 0], stored[:, 1])
    np.testing.assert_allclose(index["mean_mag"], mags.mean(axis=(1, 2)), rtol=1e-9)
    np.testing.assert_allclose(index["max_mag"], mags.max(axis=(1, 2)), rtol=1e-9)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["channels"] == ["u", "v", "strain"] and stats["method"] == "tvl1"
    np.testing.assert_allclose(stats["mean"], mean)
    assert stats["method_params"]["nscales"] == 3 and "lambda" in stats["method_params"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the stored onset is the aligned face at the flow size
    np.testing.assert_array_equal(
        arrays["onset"][0], cv2.resize(_face(CROP), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    )


def test_run_bytes_do_not_depend_on_worker_count(faces_dir, tmp_path) -> None:
    faces, _ = faces_dir
    for w in (1, 2):
        flow.run(_params(workers=w), faces, tmp_path / f"flow{w}", tmp_path / f"montage{w}.png")
    assert _files(tmp_path / "flow1") == _files(tmp_path / "flow2")
    assert (tmp_path / "montage1.png").read_bytes() == (tmp_path / "montage2.png").read_bytes()


def test_run_channels_follow_params(faces_dir, tmp_path) -> None:
    faces, _ = faces_dir
    flow.run(_params(workers=1, channels=["u", "v"], method="farneback"), faces, tmp_path / "f", tmp_path / "m.png")
    index, arrays = shards.load(tmp_path / "f")
    assert arrays["flow"].shape[1] == 2 and "sum_strain" not in index.columns


def test_run_failure_leaves_no_output(faces_dir, tmp_path, monkeypatch) -> None:
    faces, _ = faces_dir
    out, png = tmp_path / "flow", tmp_path / "montage.png"
    out.mkdir()
    (out / "previous.txt").write_text("kept")
    real = optical_flow.flow_for
    calls = []

    def failing(params, onset, apex):
        calls.append(1)
        if len(calls) == 3:
            raise cv2.error("solver exploded")
        return real(params, onset, apex)

    monkeypatch.setattr(optical_flow, "flow_for", failing)
    with pytest.raises(RuntimeError, match=r"clip 'sub01/EP02'.*solver exploded"):
        flow.run(_params(workers=1), faces, out, png)
    assert _files(out) == {"previous.txt": b"kept"}  # the old output is untouched
    assert not png.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flow"]  # no temp leftovers


def test_run_rejects_a_faces_folder_without_apex(tmp_path) -> None:
    onset = np.zeros((2, 16, 16), np.uint8)
    index = pd.DataFrame({"clip_id": ["a/1", "a/2"], "subject": ["a", "a"], "label": ["x", "y"], "label_id": [0, 1]})
    index["dataset"] = "casme2"
    shards.write(tmp_path / "faces", index, {"onset": onset}, shard_mb=1)
    with pytest.raises(ValueError, match=r"faces.*no array 'apex'"):
        flow.run(_params(), tmp_path / "faces", tmp_path / "flow", tmp_path / "m.png")
    assert not (tmp_path / "flow").exists()


# ----------------------------------------------------------------------------------------- flow report
def _unusual_faces(out_dir: Path) -> list[str]:
    """Nine clips of small rigid motion, except clip 2 (apex identical to onset: no motion) and clip 5 (the apex's
    lower half grey, as a truncated JPEG decodes: a flow far outside the others')."""
    onset = _face(CROP)
    rows, apexes = [], []
    for i in range(9):
        apex, _ = _warp(onset, _shift(0.3 + 0.05 * i, 0.2))
        if i == 2:
            apex = onset.copy()
        if i == 5:
            apex = np.concatenate([onset[: CROP // 2], np.full((CROP - CROP // 2, CROP), 128, np.uint8)])
        subject = f"sub{i % 3 + 1:02d}"
        rows.append({"clip_id": f"{subject}/EP{i:02d}", "dataset": "casme2", "subject": subject,
                     "label": LABELS[i % 3], "label_id": i % 3})
        apexes.append(apex)
    onsets = np.stack([onset] * 9)
    shards.write(out_dir, pd.DataFrame(rows), {"onset": onsets, "apex": np.stack(apexes)}, shard_mb=64)
    return [r["clip_id"] for r in rows]


def test_report_lists_clips_without_motion_or_far_outside_the_range(tmp_path, caplog) -> None:
    ids = _unusual_faces(tmp_path / "faces")
    flow.run(_params(workers=1), tmp_path / "faces", tmp_path / "keep", tmp_path / "keep.png")
    report = json.loads((tmp_path / "keep" / flow.REPORT_FILE).read_text())
    assert {d["clip_id"]: d["reason"] for d in report["listed"]} == {ids[2]: "no motion", ids[5]: "outlier"}
    outlier = next(d for d in report["listed"] if d["reason"] == "outlier")
    assert outlier["max_mag"] > report["outlier_factor"] * report["median_max_mag"] == report["outlier_above"]
    assert report["on_outlier"] == "keep" and report["n_dropped"] == 0
    kept = flowset.read(tmp_path / "keep")
    assert kept.index["clip_id"].tolist() == ids  # listed, not dropped

    with caplog.at_level(logging.WARNING, logger="memix"):
        flow.run(_params(workers=1, on_outlier="drop"), tmp_path / "faces", tmp_path / "drop", tmp_path / "drop.png")
    assert "2 of 9 clips" in caplog.text and "left out (flow.on_outlier: drop)" in caplog.text
    dropped = flowset.read(tmp_path / "drop")
    rest = [i for i in range(9) if i not in (2, 5)]
    assert dropped.index["clip_id"].tolist() == [ids[i] for i in rest]
    np.testing.assert_array_equal(dropped.flow, kept.flow[rest])  # the other clips are untouched
    stats = json.loads((tmp_path / "drop" / "stats.json").read_text())
    assert stats["n_clips"] == 7
    np.testing.assert_allclose(stats["mean"], flowset.channel_stats(kept.index.iloc[rest], kept.channels)[0])
    assert json.loads((tmp_path / "drop" / flow.REPORT_FILE).read_text())["n_dropped"] == 2
    assert (tmp_path / "drop.png").read_bytes()[:4] == b"\x89PNG"


def test_listed_clips_are_named_on_stderr_in_the_stage_s_last_line(tmp_path, capsys, monkeypatch) -> None:
    """An apex decoded half grey gives a flow 20-30 x the median: the stage ends saying so, naming the clips,
    so that it is seen without opening report.json."""
    ids = _unusual_faces(tmp_path / "faces")
    monkeypatch.delenv("MEMIX_DEBUG", raising=False)
    out = tmp_path / "flow"
    faces, png = tmp_path / "faces", tmp_path / "flow.png"
    assert log.run_reporting("stage flow", lambda: flow.run(_params(workers=1), faces, out, png)) == 0
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("warning: flow: 2 of 9 clips without motion or with a largest flow over 8 x the median")
    assert f"{ids[2]} (no motion)" in last and re.search(rf"{ids[5]} \(outlier, \d+\.\d x the median\)", last)
    assert "kept (flow.on_outlier: keep)" in last and last.endswith(f"see {out / flow.REPORT_FILE}")
    assert not [clip for i, clip in enumerate(ids) if clip in last and i not in (2, 5)]


def _listed(folder: Path) -> set[str]:
    manifest = json.loads((folder / shards.MANIFEST).read_text())
    return set(manifest["files"]) | {s["file"] for a in manifest["arrays"].values() for s in a["shards"]}


def test_every_file_of_the_flow_set_is_in_its_manifest_and_a_foreign_folder_is_kept(faces_dir, tmp_path) -> None:
    faces, _ = faces_dir
    out, png = tmp_path / "flow", tmp_path / "montage.png"
    flow.run(_params(workers=1), faces, out, png)
    assert _listed(out) == {p.name for p in out.iterdir()} - {shards.MANIFEST}
    assert {"index.parquet", "stats.json", "report.json"} <= _listed(out)
    flow.run(_params(workers=1), faces, out, png)  # its own earlier output is replaced
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="existing folder"):
        flow.run(_params(workers=1), faces, foreign, tmp_path / "m2.png")
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"] and not (tmp_path / "m2.png").exists()


def test_apex_offset_pair_adds_the_relaxation_flow_and_the_points(tmp_path) -> None:
    """flow.pairs apex_offset stores the apex -> offset flow beside the onset -> apex one (same code, same size),
    and the faces index's points come through its affine into the tensors' pixels."""
    write_faces(tmp_path / "faces", n=4)
    index, arrays = shards.load(tmp_path / "faces")
    index = index.drop(columns=["shard", "row"])
    onsets = np.array(arrays["onset"])
    offsets = onsets[:, ::-1].copy()  # any other face will do
    index["landmarks"] = [[10.0, 12.0, 30.0, 12.0, 20.0, 24.0, 14.0, 34.0, 27.0, 34.0]] * len(index)
    index["affine"] = [[0.5, 0.0, 2.0, 0.0, 0.5, -1.0]] * len(index)
    shards.write(tmp_path / "faces2", index, {"onset": onsets, "apex": np.array(arrays["apex"]), "offset": offsets},
                 shard_mb=64)
    with pytest.raises(ValueError, match="no array 'offset'"):
        flow.run(_params(workers=1, pairs=["onset_apex", "apex_offset"]), tmp_path / "faces", tmp_path / "x",
                 tmp_path / "x.png")
    flow.run(_params(workers=1, pairs=["onset_apex", "apex_offset"]), tmp_path / "faces2", tmp_path / "flow",
             tmp_path / "m.png")
    out_index, out = shards.load(tmp_path / "flow")
    expected, _ = flow.pair_tensor(_params(), np.array(arrays["apex"][1]), offsets[1])
    np.testing.assert_array_equal(out["flow_offset"][1], expected)
    assert out["flow_offset"].shape == out["flow"].shape
    # (10, 12) source px -> crop (7, 5) -> pixel centres scaled 48 -> 16 px
    np.testing.assert_allclose(out_index["landmarks"].iloc[0][:2], [(7 + 0.5) / 3 - 0.5, (5 + 0.5) / 3 - 0.5])
    with pytest.raises(ValueError, match="pairs must start with onset_apex"):
        _params(pairs=["apex_offset"])
