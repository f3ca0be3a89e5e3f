"""The faces stage with dataset.apex: spotted / middle and on_bad_apex: spot, after ingest on the tiny synthetic set:
which clips change, the frames chosen in the index and report.json, and byte-reproducibility."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from memix.config import DatasetParams, FacesParams
from memix.datasets import ingest
from memix.io import shards
from memix.preprocess import faces
from memix.synth import quirks

PARAMS = FacesParams()


def _faces(root: Path, work: Path, model: Path, apex: str = "annotated", on_bad_apex: str = "patch",
           params: FacesParams = PARAMS, offset: bool = False) -> tuple[pd.DataFrame, dict, dict]:  # fmt: skip
    """Ingest ``root`` with the apex settings and run the faces stage: (index, arrays, report)."""
    ingest.run(DatasetParams(root=str(root), apex=apex, on_bad_apex=on_bad_apex), work / "interim")
    out = work / "faces"
    faces.run(params, work / "interim" / "clips.parquet", root, model, out, offset=offset, apex=apex,
              on_bad_apex=on_bad_apex)  # fmt: skip
    index, arrays = shards.load(out)
    return index.set_index("clip_id"), {k: np.asarray(v) for k, v in arrays.items()}, _report(out)


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def annotated(tiny_synth_root: Path, face_model_path: Path, tmp_path_factory: pytest.TempPathFactory):
    return _faces(tiny_synth_root, tmp_path_factory.mktemp("annotated"), face_model_path)


def test_spotted_every_clip_near_its_annotated_apex(
    annotated, tiny_synth_root: Path, face_model_path: Path, tmp_path: Path
) -> None:
    a_index, a_arrays, a_report = annotated
    params = FacesParams(all_frames=True)
    index, arrays, report = _faces(tiny_synth_root, tmp_path / "one", face_model_path, "spotted", params=params,
                                   offset=True)  # fmt: skip
    assert list(index.index) == list(a_index.index) and set(index["apex_source"]) == {"spotted"}
    assert (index["apex_annotated"] == a_index["apex"]).all()  # the sheet's apex, recorded
    errors = (index["apex"] - index["apex_annotated"]).abs()
    assert errors.median() == 0 and (errors <= 1).mean() >= 0.9, errors.tolist()
    assert index["spot_detectable"].astype(bool).all() and (index["spot_peak"] > index["spot_floor"]).all()
    assert a_index["spot_peak"].isna().all() and a_index["spot_detectable"].isna().all()
    spot = report["apex"]
    assert spot["setting"] == "spotted" and spot["clips_by_source"] == {"spotted": len(index)}
    assert spot["error_frames"] == {
        "n": len(index), "median": float(errors.median()), "p90": float(np.percentile(errors, 90)),
        "within_1": float((errors <= 1).mean()), "within_2": float((errors <= 2).mean()),
    }  # fmt: skip
    assert a_report["apex"]["error_frames"]["n"] == 0 and a_report["apex"]["setting"] == "annotated"
    _same_crops_where_same_frames(index, arrays, a_index, a_arrays)
    # the apex crop is the spotted frame's crop among all frames; the offset follows the spotted apex
    frames_index, frames = shards.load(tmp_path / "one" / "faces" / "frames")
    for i, row in enumerate(index.itertuples()):
        at = row.frames_start + list(frames_index["frame"][row.frames_start:row.frames_start + row.frames_count]) \
            .index(row.apex)  # fmt: skip
        assert np.array_equal(np.asarray(frames["face"][at]), arrays["apex"][i])
    assert report["n_offset_at_apex"] == int((index["apex"] == index["offset"]).sum())
    # byte-reproducible: a second run writes the same folder
    _faces(tiny_synth_root, tmp_path / "two", face_model_path, "spotted", params=params, offset=True)
    for path in sorted((tmp_path / "one" / "faces").rglob("*")):
        if path.is_file():
            twin = tmp_path / "two" / "faces" / path.relative_to(tmp_path / "one" / "faces")
            assert path.read_bytes() == twin.read_bytes(), path.name


def _same_crops_where_same_frames(index, arrays, a_index, a_arrays) -> None:
    """The onset crops do not change, and an apex crop changes exactly where its frame does."""
    assert arrays["onset"].tobytes() == a_arrays["onset"].tobytes()
    for i, unchanged in enumerate((index["apex"] == a_index["apex"]).to_numpy()):
        assert (arrays["apex"][i].tobytes() == a_arrays["apex"][i].tobytes()) == unchanged, index.index[i]


def test_middle_takes_the_middle_frame(annotated, tiny_synth_root: Path, face_model_path: Path, tmp_path: Path) -> None:
    index, arrays, report = _faces(tiny_synth_root, tmp_path, face_model_path, "middle")
    assert (index["apex"] == index["onset"] + (index["offset"] - index["onset"]) // 2).all()
    assert set(index["apex_source"]) == {"middle"} and report["apex"]["clips_by_source"] == {"middle": len(index)}
    assert (index["apex_annotated"] == annotated[0]["apex"]).all()
    assert (index["apex"] != annotated[0]["apex"]).any()  # else the next check proves little
    _same_crops_where_same_frames(index, arrays, annotated[0], annotated[1])


def test_on_bad_apex_spot_spots_only_the_impossible_apex(
    tiny_synth_root: Path, face_model_path: Path, tmp_path: Path
) -> None:
    root = tmp_path / "synthetic"
    shutil.copytree(tiny_synth_root, root)
    changed = quirks.apex_at_onset(root, row=0)  # the sheet says apex = onset; the frames peak at changed["old"]
    bad = f"sub{int(changed['subject']):02d}/{changed['filename']}"
    patched, p_arrays, _ = _faces(root, tmp_path / "patch", face_model_path, on_bad_apex="patch")
    spotted, s_arrays, report = _faces(root, tmp_path / "spot", face_model_path, on_bad_apex="spot")
    assert spotted.loc[bad, "apex_source"] == "spotted" and patched.loc[bad, "apex_source"] == "patched"
    assert abs(spotted.loc[bad, "apex"] - changed["old"]) <= 1  # the frame the expression peaks on
    assert spotted.loc[bad, "apex_annotated"] == changed["onset"]
    others = spotted.index != bad
    assert (spotted["apex"][others] == patched["apex"][others]).all()
    assert set(spotted["apex_source"][others]) == {"annotated"}
    row = list(spotted.index).index(bad)
    keep = [i for i in range(len(spotted)) if i != row]
    assert s_arrays["apex"][keep].tobytes() == p_arrays["apex"][keep].tobytes()  # nothing else moved
    apex = report["apex"]
    assert apex["clips_by_source"] == {"annotated": len(spotted) - 1, "spotted": 1}
    assert apex["error_frames"]["n"] == 0  # apex = onset is no annotation to measure against
    assert apex["on_bad_apex"] == "spot" and apex["n_not_detectable"] == 0


def test_an_index_from_other_apex_settings_is_refused(tiny_synth_root: Path, face_model_path: Path,
                                                      tmp_path: Path) -> None:  # fmt: skip
    ingest.run(DatasetParams(root=str(tiny_synth_root)), tmp_path / "interim")
    with pytest.raises(ValueError, match=r"clips\.parquet: clip sub\d+/EP\w+ has apex_source 'annotated', which "
                       r"dataset\.apex: spotted .*dvc repro ingest"):  # fmt: skip
        faces.run(PARAMS, tmp_path / "interim" / "clips.parquet", tiny_synth_root, face_model_path, tmp_path / "f",
                  apex="spotted", on_bad_apex="patch")  # fmt: skip
    assert not (tmp_path / "f").exists()
    ingest.run(DatasetParams(root=str(tiny_synth_root), apex="spotted"), tmp_path / "interim")
    with pytest.raises(ValueError, match=r"apex_source 'spotted', which dataset\.apex: annotated with on_bad_apex: "):
        faces.run(PARAMS, tmp_path / "interim" / "clips.parquet", tiny_synth_root, face_model_path, tmp_path / "f",
                  apex="annotated", on_bad_apex="spot")  # fmt: skip
