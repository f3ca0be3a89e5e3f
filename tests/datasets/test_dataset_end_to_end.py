"""Every adapter end to end on its tiny synthetic layout: ingest -> faces -> flow -> a short LOSO training, and a
composite of three layouts the same way. The ``dataset`` column travels from the clip index to the flow index.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from memix.config import DatasetParams, FacesParams, FlowParams, parse_params
from memix.datasets import ingest
from memix.io import shards
from memix.preprocess import faces, flow
from memix.training import run as training

CASES = {
    "casme2": {"name": "casme2", "root": "casme2", "classes": "5class"},
    "samm": {"name": "samm", "root": "samm", "classes": "5class"},
    "smic": {"name": "smic", "root": "smic", "classes": "megc3"},
    "casme3": {"name": "casme3", "root": "casme3", "classes": "7class"},
    "mmew": {"name": "mmew", "root": "mmew", "classes": "7class"},
    "megc": {
        "name": "composite",
        "root": ".",
        "sources": [{"name": n, "root": n} for n in ("casme2", "samm", "smic")],
        "classes": "megc3",
    },
}


def _dataset(root: Path, case: str) -> DatasetParams:
    spec = dict(CASES[case])
    spec["root"] = str(root / spec["root"])
    return DatasetParams.model_validate(spec)


@pytest.mark.parametrize("case", list(CASES))
def test_adapter_end_to_end_on_its_synthetic_layout(
    case: str, tiny_layouts_root: Path, tiny_layouts_params, face_model_path: Path, tmp_path: Path
) -> None:
    params = _dataset(tiny_layouts_root, case)
    clips = ingest.run(params, tmp_path / "interim")
    report = json.loads((tmp_path / "interim" / "ingest_report.json").read_text())
    names = params.source_names()
    # every generated clip is a clip (megc3 leaves out "others"); the synthetic set is recognised, so no
    # published-count warnings
    assert {n: report["sources"][n]["rows"] for n in names} == {n: tiny_layouts_params.clips for n in names}
    dropped = pd.Series([d["dataset"] for d in report["dropped"]], dtype=object).value_counts().to_dict()
    assert all(d["reason"].startswith("excluded from") and "other" in d["reason"].lower() for d in report["dropped"])
    assert clips["dataset"].value_counts().to_dict() == {
        n: tiny_layouts_params.clips - dropped.get(n, 0) for n in names
    }
    assert bool(dropped) == (case == "megc")
    assert report["warnings"] == [] and report["published"]["checks"] == []
    assert {n["scope"] for n in report["published"]["not_compared"]} >= set(names)
    assert report["patched"] == [] and report["incomplete"] == []
    if case == "megc":
        assert all(s.split("/")[0] in names for s in clips["subject"]) and clips["subject"].nunique() == 9

    faces_dir = tmp_path / "faces"
    faces.run(
        FacesParams(size=48), tmp_path / "interim" / "clips.parquet", Path(params.root), face_model_path, faces_dir
    )
    face_index, _ = shards.load(faces_dir)
    assert face_index["dataset"].tolist() == clips["dataset"].tolist()

    flow_dir = tmp_path / "flow"
    flow.run(FlowParams(size=16, workers=1, montage_per_class=1), faces_dir, flow_dir, tmp_path / "montage.png")
    flow_index, _ = shards.load(flow_dir)
    assert flow_index[["clip_id", "dataset", "subject", "label_id"]].equals(
        face_index[["clip_id", "dataset", "subject", "label_id"]]
    )

    train = parse_params(
        {
            "model": {"patch_size": 4, "embed_dim": 16, "depth": 1, "num_heads": 2},
            "train": {"epochs": 1, "batch_size": 8, "device": "cpu", "threads": 1, "workers": 1},
        }
    )
    predictions = pd.read_parquet(training.run(train, "none", flow_dir=flow_dir, out_dir=tmp_path / "train", seeds=[0]))
    assert sorted(set(predictions["clip_id"])) == sorted(clips["clip_id"])
    assert predictions.groupby("fold")["subject"].nunique().eq(1).all()  # leave one subject out
    assert predictions["subject"].nunique() == clips["subject"].nunique()
