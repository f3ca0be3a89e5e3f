"""The model file: loadable without pickled code, carries the preprocessing recipe, refuses what it cannot use."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fitted_model import Fitted
from flowsets import make_flow_set

import memix
from memix.io import atomic, flowset
from memix.serving import modelfile


def _rewrite(src: Path, dst: Path, change) -> Path:
    raw = torch.load(src, map_location="cpu", weights_only=True)
    change(raw)
    torch.save(raw, dst)
    return dst


def test_the_file_holds_weights_and_the_exact_preprocessing_recipe(fitted: Fitted) -> None:
    raw = torch.load(fitted.model_path, map_location="cpu", weights_only=True)
    assert set(modelfile.REQUIRED) <= set(raw)
    stats = fitted.data.stats
    assert raw["memix_version"] == memix.__version__
    assert raw["class_names"] == fitted.data.class_names
    assert raw["flow"] == {
        "method": stats["method"], "size": fitted.data.size, "channels": fitted.data.channels,
        "params": stats["method_params"],
    }
    assert raw["faces"]["size"] == fitted.params.faces.size == stats["crop_size"]
    assert raw["faces"]["margin"] == fitted.params.faces.margin
    assert raw["faces"]["model_sha256"] == atomic.file_sha256(fitted.face_model)
    assert raw["normalisation"]["mean"] == pytest.approx(fitted.result.mean.tolist())
    assert raw["normalisation"]["std"] == pytest.approx(fitted.result.std.tolist())
    assert raw["model"] == fitted.params.model.model_dump(mode="json")
    assert all(torch.equal(raw["state_dict"][k], v) for k, v in fitted.result.state_dict.items())

    loaded = modelfile.load(fitted.model_path)
    assert loaded.flow.method == stats["method"] and loaded.flow.size == fitted.data.size
    assert loaded.build_model().state_dict().keys() == fitted.result.state_dict.keys()


def test_the_same_contents_give_the_same_bytes_whatever_the_file_name(fitted: Fitted, tmp_path: Path) -> None:
    contents = modelfile.from_fit(
        fitted.params, "memix", 0, fitted.data, fitted.result, fitted.face_model
    )
    a = modelfile.write(tmp_path / "a.pt", contents)
    b = modelfile.write(tmp_path / "sub" / "memix.pt", contents)
    assert a.read_bytes() == b.read_bytes() == fitted.model_path.read_bytes()


def test_a_file_from_another_version_is_refused_naming_file_and_versions(fitted: Fitted, tmp_path: Path) -> None:
    old = _rewrite(fitted.model_path, tmp_path / "old.pt", lambda raw: raw.update(memix_version="0.0.1"))
    with pytest.raises(ValueError, match="memix 0.0.1") as info:
        modelfile.load(old)
    assert str(old) in str(info.value) and memix.__version__ in str(info.value)


def test_missing_keys_are_listed(fitted: Fitted, tmp_path: Path) -> None:
    def drop(raw: dict) -> None:
        del raw["normalisation"]
        del raw["flow"]["params"]

    bad = _rewrite(fitted.model_path, tmp_path / "bad.pt", drop)
    with pytest.raises(ValueError, match=r"lacks key\(s\) normalisation, flow.params") as info:
        modelfile.load(bad)
    assert str(bad) in str(info.value)


@pytest.mark.parametrize("content", [b"not a model", None])
def test_foreign_files_are_refused(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "foreign.pt"
    if content is None:
        torch.save({"weights": torch.zeros(2)}, path)  # a torch file, but not ours
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match="not a") as info:
        modelfile.load(path)
    assert str(path) in str(info.value)
    with pytest.raises(FileNotFoundError, match="dvc repro fit"):
        modelfile.load(tmp_path / "missing.pt")


def test_a_flow_set_without_its_recipe_cannot_make_a_model_file(fitted: Fitted, tmp_path: Path) -> None:
    bare = flowset.read(make_flow_set(tmp_path / "flow"))  # stats.json with channels only
    with pytest.raises(ValueError, match="stats.json lacks method"):
        modelfile.from_fit(fitted.params, "memix", 0, bare, fitted.result, fitted.face_model)
