"""ingest_report.json's parts: each source's sheet and counts, the published-count checks, report entries."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd

from memix.config import DatasetParams
from memix.datasets import classmaps, published
from memix.datasets.problems import Notes
from memix.datasets.sheets import Sheet
from memix.datasets.sources import Source


def entries(entries: list[dict[str, Any]], sheet: Sheet, *sort: str) -> list[dict[str, Any]]:
    """Report entries in sheet order; records read from folders name their folder instead of a row."""
    out = sorted(entries, key=lambda d: tuple(d[k] for k in sort))
    if sheet.origins is not None:
        out = [{**d, "row": None, "folder": sheet.origins[d["row"]]} for d in out]
    return out


def source_report(src: Source, sheet: Sheet, part: pd.DataFrame, notes: Notes) -> dict[str, Any]:
    name = src.adapter.name
    if sheet.origins is None:
        table = {
            "file": sheet.path.name,
            "sha256": sheet.sha256,
            "worksheet": sheet.worksheet,
            "header_row": sheet.header_row,
            "columns": sheet.columns,
        }
    else:
        table = {"file": None, "folders": sheet.path.as_posix(), "columns": sheet.columns}
    apex = (
        "from the coding sheet"
        if src.adapter.has_apex
        else f"{name} has no apex annotation: the middle frame found between onset and offset "
        f"({notes.middle_apex} clips)"
        if not (part["apex_source"] == "spotted").any()  # dataset.apex: middle
        else f"{name} has no apex annotation: spotted by the faces stage, the middle frame found between onset "
        f"and offset standing in until then ({notes.middle_apex} clips)"
    )
    report = {
        "root": src.params.root,
        "path": src.root.as_posix(),
        "layout": src.adapter.layout,
        "sheet": table,
        "apex": apex,
        "class_map": src.cmap.to_report(),
        "rows": len(sheet.records),
        "clips": len(part),
        "subjects": int(part["subject"].nunique()),
        "counts_per_class": {c: int((part["label"] == c).sum()) for c in src.cmap.names},
        "left_out_classes": left_out_classes(notes),
        "synthetic": published.synthetic_mark(src.root, sheet.creator),
    }
    if notes.objective is not None:
        report["objective_classes"] = notes.objective
    if name == "smic":
        report["camera"] = src.params.camera or "hs"
    return report


def left_out_classes(notes: Notes) -> dict[str, int]:
    """How many rows each class the task leaves out had (CASME II fear and sadness in 5class, VI and VII in
    objective): the dropped rows' reasons say it row by row, this says it at a glance."""
    found = Counter(d["excluded_class"] for d in notes.dropped if "excluded_class" in d)
    return dict(sorted(found.items()))


def published_checks(params: DatasetParams, parts: list[tuple[Source, Sheet, pd.DataFrame]]) -> dict[str, Any]:
    """Counts compared with the published ones, where there are any and the data is not synthetic."""
    task = classmaps.task(params.classes)
    checks: list[dict[str, Any]] = []
    not_compared: list[dict[str, str]] = []
    all_real, keys = True, set()
    for src, sheet, part in parts:
        name = src.adapter.name
        key = published.dataset_key(name, src.params.camera)
        keys.add(key)
        mark = published.synthetic_mark(src.root, sheet.creator)
        if mark:
            all_real = False
            not_compared.append({"scope": name, "why": mark})
            continue
        ref = published.PUBLISHED.get((key, task))
        if ref is None:
            not_compared.append({"scope": name, "why": f"no published counts for {key} with classes {params.classes}"})
            continue
        per_class = part["label"].value_counts().to_dict()
        checks += published.compare(name, ref, len(part), int(part["subject"].nunique()), per_class)
    if len(parts) > 1:
        if keys != published.MEGC2019_SOURCES or task != "3class":
            not_compared.append({"scope": "composite", "why": "no published counts for this combination of sources"})
        elif not all_real:
            not_compared.append({"scope": "composite", "why": "not every source is real data"})
        else:
            df = pd.concat([part for _, _, part in parts])
            per_class = df["label"].value_counts().to_dict()
            subjects = int(df["subject"].nunique())
            checks += published.compare("composite", published.MEGC2019, len(df), subjects, per_class)
    return {"checks": checks, "not_compared": not_compared}
