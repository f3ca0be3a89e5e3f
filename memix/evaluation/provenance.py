"""What a comparison was computed on: the datasets and their coding sheets' sha256, the model, and every
result-relevant param that differs from memix's defaults (nothing a stage does not track as an input)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from memix.config import Params, dump_params
from memix.evaluation.comparison import MethodEval

RESULT_SECTIONS = ("dataset", "synth", "faces", "flow", "model", "train", "mixing", "eval", "compare")
"""The params sections the results depend on: the table lists their values that differ from the defaults
(compare depends on all of them in dvc.yaml, so the list is never stale)."""

RUN_ONLY = ("faces.model_source", "flow.workers", "train.workers", "train.executor", "train.ray_gpus")
"""Params that choose where or how a stage runs, not what it computes (the face model is sha256-pinned, and the
outputs are the same for any worker count or executor): never listed as a difference."""


def changed_params(params: Params) -> dict[str, Any]:
    """Dotted key -> value of every result-relevant param that differs from memix.config's defaults
    (``mixing.<m>`` only for the compared methods)."""
    ours, defaults = dump_params(params), dump_params(Params())
    out: dict[str, Any] = {}

    def walk(a: Any, b: Any, key: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for name in a:
                walk(a[name], b.get(name), f"{key}.{name}" if key else name)
        elif a != b and key not in RUN_ONLY:
            out[key] = a

    for section in RESULT_SECTIONS:
        if section == "mixing":
            for method in params.compare.methods:
                walk(ours["mixing"][method], defaults["mixing"][method], f"mixing.{method}")
        else:
            walk(ours[section], defaults[section], section)
    return out


def sheets(report_path: Path | None) -> list[dict[str, str]]:
    """(file, sha256) of every coding sheet the ingest report names (one per source dataset)."""
    if report_path is None or not Path(report_path).is_file():
        return []
    try:
        report = json.loads(Path(report_path).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{report_path}: not valid JSON ({err})") from None
    found: list[dict[str, str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("sha256"), str) and isinstance(node.get("file"), str):
                found.append({"file": node["file"], "sha256": node["sha256"]})
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(report)
    return found


def provenance(params: Params, base: MethodEval, ingest_report: Path | None) -> dict[str, Any]:
    content = base.content
    return {
        "datasets": [d for d in content.get("datasets", []) if d] or [params.dataset.name],
        "dataset_param": params.dataset.name,
        "sheets": sheets(ingest_report),
        "model": params.model.name + (" + onset-face ResNet-18 stream (MixMeFormer)" if params.model.face_stream
                                      else ""),
        "epochs": params.train.epochs,
        "params_changed": changed_params(params),
        "code": "the commit holding this table's dvc.lock (which pins the md5 of every code file the stages ran)",
    }
