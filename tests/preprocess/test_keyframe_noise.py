"""Stage keyframe_noise@<n>: the flow set's clips, in its order, with shifted key frames cropped by the faces stage's
transform and their flow computed by the flow stage's code; unshifted clips keep the flow stage's tensor exactly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import noise_project
import numpy as np
import pandas as pd
import pytest
import yaml
from flowsets import tree_bytes

from memix.datasets.frames import list_frames
from memix.io import flowset, shards
from memix.preprocess import flow, keyframe_noise
from memix.preprocess.keyframe_shift import shift_clip

REPO = Path(__file__).resolve().parents[2]
LEVEL = 1


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> noise_project.Project:
    return noise_project.build(tmp_path_factory.mktemp("noise"))


def _seed_with_both(project: noise_project.Project, level: int) -> int:
    """A seed under which some clips keep their key frames and others move (so one run tests both)."""
    clips = pd.read_parquet(project.clips)
    for seed in range(100):
        kept = [shift_clip(seed, level, c.clip_id, sorted(list_frames(project.root / c.frame_dir)), c.onset, c.apex)
                for c in clips.itertuples()]
        unmoved = [(s.onset, s.apex) == (c.onset, c.apex) for s, c in zip(kept, clips.itertuples(), strict=True)]
        if 2 <= sum(unmoved) <= len(unmoved) - 2:
            return seed
    raise AssertionError("no seed moves some clips and not others")


def _build(project: noise_project.Project, out: Path, seed: int, level: int = LEVEL, **kw) -> dict:
    args = dict(clips_path=project.clips, faces_dir=project.faces, flow_dir=project.flow,
                dataset_root=project.root, out_dir=out)
    args.update(kw)
    return keyframe_noise.run(project.params, level=level, seed=seed, **args)


@pytest.fixture(scope="module")
def built(project: noise_project.Project, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    seed = _seed_with_both(project, LEVEL)
    out = tmp_path_factory.mktemp("built") / str(LEVEL)
    _build(project, out, seed)
    return out, seed


def test_unshifted_clips_keep_the_flow_stages_tensor_and_shifted_ones_get_their_new_frames_flow(project, built):
    out, seed = built
    clean, noisy = flowset.read(project.flow), flowset.read(out)
    assert noisy.index["clip_id"].tolist() == clean.index["clip_id"].tolist()  # same clips, same order
    clips = pd.read_parquet(project.clips).set_index("clip_id")
    arrays = shards.load(out)[1]
    kept = moved = 0
    for i, clip_id in enumerate(clean.index["clip_id"]):
        clip = clips.loc[clip_id]
        frames = sorted(list_frames(project.root / clip_id))
        shift = shift_clip(seed, LEVEL, clip_id, frames, int(clip["onset"]), int(clip["apex"]))
        row = noisy.index.iloc[i]
        assert (row["onset_frame"], row["apex_frame"]) == (shift.onset, shift.apex)
        assert (row["onset_draw"], row["apex_draw"]) == (shift.d_onset, shift.d_apex)
        assert row["onset_shift"] == frames.index(shift.onset) - frames.index(int(clip["onset"]))
        if (shift.onset, shift.apex) == (clip["onset"], clip["apex"]):
            kept += 1
            assert np.array_equal(noisy.flow[i], clean.flow[i])  # byte for byte the flow stage's
        else:
            moved += 1
            onset, apex = noise_project.crops(project, clip_id, shift.onset, shift.apex)
            expected = flow.clip_tensor(project.params, onset, apex)
            assert np.array_equal(noisy.flow[i], expected.tensor)  # the flow stage's computation, new frames
            assert np.array_equal(arrays["apex"][i], expected.apex)
            assert not np.array_equal(noisy.flow[i], clean.flow[i])
    assert kept >= 2 and moved >= 2
    # what a network reads of a clip besides its flow: the faces stage's points, unchanged
    assert [list(p) for p in noisy.index["landmarks"]] == [list(p) for p in clean.index["landmarks"]]
    info = json.loads(shards.read_file(out, keyframe_noise.INFO_FILE))
    assert (info["level"], info["seed"], info["n_clips"], info["n_unshifted"]) == (LEVEL, seed, 9, kept)
    assert {"report.json", "stats.json", "montage.png"} <= set(json.loads((out / shards.MANIFEST).read_text())["files"])


def test_same_bytes_again_and_whatever_the_order_of_the_clip_index(project, built, tmp_path):
    out, seed = built
    shuffled = tmp_path / "clips.parquet"
    pd.read_parquet(project.clips).sample(frac=1.0, random_state=3).to_parquet(shuffled)
    _build(project, tmp_path / "again", seed, clips_path=shuffled)
    assert tree_bytes(tmp_path / "again") == tree_bytes(out)
    _build(project, tmp_path / "other", seed + 1)
    assert flowset.read(tmp_path / "other").index["apex_frame"].tolist() != \
        flowset.read(out).index["apex_frame"].tolist()  # the seed matters


def test_a_larger_level_moves_frames_further(project, tmp_path):
    _build(project, tmp_path / "3", 0, level=3)
    index = flowset.read(tmp_path / "3").index
    assert index["onset_draw"].abs().max() <= 3 and index["apex_draw"].abs().max() <= 3
    assert index["onset_draw"].abs().max() + index["apex_draw"].abs().max() > 2
    assert (index["apex_frame"] > index["onset_frame"]).all()


def test_clips_that_do_not_match_are_refused_by_name(project, tmp_path):
    clips = pd.read_parquet(project.clips)
    fewer = tmp_path / "clips.parquet"
    clips[clips["clip_id"] != "sub02/EP03"].to_parquet(fewer)
    with pytest.raises(ValueError, match=r"clip sub02/EP03 of .*flow is not in the clip index"):
        _build(project, tmp_path / "a", 0, clips_path=fewer)
    faces_index, arrays = shards.load(project.faces)
    keep = faces_index["clip_id"] != "sub01/EP02"
    partial = tmp_path / "faces"
    shards.write(partial, faces_index[keep].drop(columns=["shard", "row"]).reset_index(drop=True),
                 {k: np.asarray(v)[keep.to_numpy()] for k, v in arrays.items()}, shard_mb=64)
    with pytest.raises(ValueError, match=r"sub01/EP02.*not in the faces index"):
        _build(project, tmp_path / "b", 0, faces_dir=partial)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_spotted_apex_is_shifted_from_the_frame_the_faces_stage_recorded(project, tmp_path):
    clips = pd.read_parquet(project.clips)
    spotted = clips.assign(apex_source="spotted", apex_annotated=pd.array([None] * len(clips), dtype="Int64"))
    spotted_path = tmp_path / "clips.parquet"
    spotted.to_parquet(spotted_path)
    with pytest.raises(ValueError, match=r"clip sub01/EP01: its apex is spotted by the faces stage.*'apex'"):
        _build(project, tmp_path / "a", 0, clips_path=spotted_path)
    recorded = (clips["apex"] + 1).tolist()  # the frames the faces stage would have spotted
    faces_dir = noise_project.write_faces(tmp_path / "faces", project.root, clips.assign(apex=recorded),
                                          extra={"apex": recorded})
    _build(project, tmp_path / "b", 0, clips_path=spotted_path, faces_dir=faces_dir)
    index = flowset.read(tmp_path / "b").index
    for clip, got in zip(clips.itertuples(), index["apex_frame"], strict=True):
        frames = sorted(list_frames(project.root / clip.frame_dir))
        assert got == shift_clip(0, LEVEL, clip.clip_id, frames, clip.onset, clip.apex + 1).apex


def test_the_apex_offset_pair_moves_with_the_apex(tmp_path):
    project = noise_project.build(tmp_path / "p", pairs=("onset_apex", "apex_offset"))
    seed = _seed_with_both(project, LEVEL)
    _build(project, tmp_path / "n", seed)
    _, clean = shards.load(project.flow)
    index, noisy = shards.load(tmp_path / "n")
    clips = pd.read_parquet(project.clips).set_index("clip_id")
    for i, clip_id in enumerate(index["clip_id"]):
        clip, row = clips.loc[clip_id], index.iloc[i]
        if (row["onset_frame"], row["apex_frame"]) == (clip["onset"], clip["apex"]):
            assert np.array_equal(noisy["flow_offset"][i], clean["flow_offset"][i])
        else:  # the faces stage's offset rule from the new apex: the last frame on disk up to the offset
            names = list_frames(project.root / clip_id)
            last = max(n for n in names if row["apex_frame"] <= n <= max(clip["offset"], row["apex_frame"]))
            apex, offset = noise_project.crops(project, clip_id, row["apex_frame"], last)
            assert np.array_equal(noisy["flow_offset"][i], flow.pair_tensor(project.params, apex, offset)[0])


def test_the_stage_builds_a_listed_level_and_refuses_another(project, tmp_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["dataset"]["root"] = str(project.root)
    params["flow"] = {**params["flow"], **project.params.model_dump(by_alias=True, mode="json")}
    params["eval"]["keyframe_noise"] = [2]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    script = [sys.executable, str(REPO / "stages" / "keyframe_noise.py"), "--clips", str(project.clips),
              "--faces", str(project.faces), "--flow", str(project.flow)]
    done = subprocess.run([*script, "--level", "3"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "--level 3 is not in eval.keyframe_noise [2]" in done.stderr
    done = subprocess.run([*script, "--level", "2"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "keyframe_noise ±2: 9 clips" in done.stderr
    assert flowset.read(tmp_path / "data/processed/keyframe_noise/2").index["clip_id"].tolist() == \
        flowset.read(project.flow).index["clip_id"].tolist()
