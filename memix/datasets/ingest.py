"""Ingest: a dataset's coding sheet + frame folders -> the clip index and a report of every decision.

Each sheet row becomes one clip after: the known errata shipped with memix (``dataset.errata``), params patches
and exclusions (keyed by Subject + Filename, :mod:`memix.datasets.corrections`), path safety, the MEGC 2019
sample list where it applies (:mod:`memix.datasets.protocol`), the class map (unknown or excluded emotions are
dropped and reported, the excluded ones counted per class; ``classes: objective`` reads the objective class
instead, :mod:`memix.datasets.objective`), onset/offset checks, frame discovery, apex repair (patch to the middle
frame or drop, per ``on_bad_apex``; an apex equal to the onset included) and a strict decode of the onset and apex
images (:func:`memix.datasets.frames.read_frame`; a damaged one stops ingest or, per ``on_bad_frame``, drops the clip);
see :mod:`memix.datasets.rows`. Every row's problem is collected and ingest stops once listing them all
(:mod:`memix.datasets.problems`), naming sheet, row and field and what to write in params. Nothing is written
until every row has passed, so a failure leaves no clips.parquet behind.

A composite (``dataset.name: composite``) runs this same path once per source, each with its own adapter
(:mod:`memix.datasets.sources`), and merges the clips: subject ids get the source's name in front
(``casme2/sub01``), frame paths are relative to ``dataset.root``, and the sources' class maps must give the
same classes (``megc3``, or ``objective``: I-V for CASME II, SAMM and CAS(ME)^3 alike). With real data, counts
are compared with the published ones (:mod:`memix.datasets.published`); a difference is a warning in the report
and on stderr.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
from tqdm import tqdm

from memix.config import COMPOSITE, DatasetParams
from memix.datasets import classmaps, corrections, objective, protocol, published, report, sources
from memix.datasets.adapter import Adapter
from memix.datasets.problems import IngestError, Notes, RowProblem, raise_problems
from memix.datasets.rows import ingest_row, long_bound
from memix.datasets.schema import APEX_COLUMNS, APEX_SOURCES, CLIP_COLUMNS, validate_clip_index
from memix.datasets.sheets import Sheet
from memix.datasets.sources import Source
from memix.io import atomic

ADAPTERS: dict[str, Adapter] = sources.ADAPTERS
CLIPS_FILE = "clips.parquet"
REPORT_FILE = "ingest_report.json"
__all__ = ["ADAPTERS", "CLIPS_FILE", "REPORT_FILE", "IngestError", "build_index", "run"]

log = logging.getLogger(__name__)


def _unique_ids(rows: list[dict[str, Any]], sheet: Path) -> None:
    """A Filename listed more than once for a subject (several MEs in one take) gets ``#<onset>`` on its id."""
    counts = Counter(r["clip_id"] for r in rows)
    for r in rows:
        if counts[r["clip_id"]] > 1:
            r["clip_id"] = f"{r['clip_id']}#{r['onset']}"
    dup = [k for k, n in Counter(r["clip_id"] for r in rows).items() if n > 1]
    if dup:
        raise IngestError(f"{sheet}: the same clip and onset appear on more than one row: {sorted(dup)[:5]}")


def _sources(params: DatasetParams) -> list[Source]:
    """The datasets to read, each with its adapter and class map; a composite's class lists must agree."""
    namespace = params.name == COMPOSITE and len(params.sources) > 1
    out = []
    for source in params.source_list():
        try:
            adapter = sources.adapter_for(source)
            cmap = classmaps.get(source.name, params.classes)
        except ValueError as err:
            raise IngestError(f"dataset: {err}") from None
        prefix = PurePosixPath(source.root.replace("\\", "/"))
        out.append(Source(source, adapter, cmap, Path(params.root) / prefix, prefix, namespace))
    names = {s.adapter.name: s.cmap.names for s in out}
    if len(set(names.values())) > 1:
        listed = "; ".join(f"{n}: {', '.join(c)}" for n, c in names.items())
        raise IngestError(
            f"dataset.classes {params.classes!r} gives the sources different classes ({listed}); "
            "a composite needs one class list (megc3: negative, positive, surprise)"
        )
    return out


def _ingest_source(src: Source, params: DatasetParams, notes: Notes) -> tuple[list[dict[str, Any]], Sheet, Source,
                                                                             dict[str, Any]]:  # fmt: skip
    """One dataset's clips (the shared path: corrections, then every row's checks); problems go to ``notes``."""
    name = src.adapter.name
    try:
        sheet = src.adapter.table(src.root, src.params.sheet)
    except ValueError as err:
        raise IngestError(str(err)) from None
    if classmaps.task(params.classes) == classmaps.OBJECTIVE:
        sheet, notes.objective = objective.attach(sheet, src, notes)
    why = protocol.why_not(src, params.classes, params.protocol, protocol.synthetic(src, sheet.creator))
    if why is None:
        src = Source(src.params, src.adapter, src.cmap, src.root, src.prefix, src.namespace, protocol.listed(src))
    values = corrections.apply(sheet, src, params, notes)
    if notes.objective is not None:
        values = objective.unlisted(values, src, notes, notes.objective["from"])
    rows: list[dict[str, Any]] = []
    left_out: list[str] = []
    for row, vals in tqdm(values.items(), desc=f"ingest {name}", unit="clip", leave=False):
        try:
            out = ingest_row(row, vals, sheet=sheet, src=src, params=params, notes=notes, left_out=left_out)
        except RowProblem as err:
            clip = _clip_of(src, vals)
            where = sheet.where(row) + (f" ({clip})" if clip and sheet.origins is None else "")
            column = sheet.columns.get(err.field) if err.field else None
            notes.problem(where, column, err.what, err.fix)
            continue
        if out is not None:
            rows.append(out)
    if not rows and not notes.problems:
        reasons = Counter(d["reason"].split(":")[0] for d in notes.dropped)
        raise IngestError(
            f"{sheet.path}: no clips left after ingest ({len(sheet.records)} rows; dropped: {dict(reasons)})"
        )
    if not notes.problems:
        _unique_ids(rows, sheet.path)
    return rows, sheet, src, protocol.report(src, why, rows, left_out, notes.dropped)


def _clip_of(src: Source, values: dict[str, Any]) -> str | None:
    subject = src.canonical(values.get("subject"))
    filename = values.get("filename")
    if subject is None or filename is None:
        return None
    return f"{src.subject_id(subject)}/{filename}"


def build_index(params: DatasetParams) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read and check the dataset (or every source of a composite); return the clip index and the report."""
    srcs = _sources(params)
    rows: list[dict[str, Any]] = []
    done: list[tuple[Source, Sheet, Notes, dict[str, Any]]] = []
    for src in srcs:
        notes = Notes()
        src_rows, sheet, src, followed = _ingest_source(src, params, notes)
        rows += src_rows
        done.append((src, sheet, notes, followed))
    raise_problems([p for *_, n, _ in done for p in n.problems])
    where = str(done[0][1].path) if len(done) == 1 else params.root
    columns = list(CLIP_COLUMNS) + list(APEX_COLUMNS)
    df = pd.DataFrame(rows, columns=columns).sort_values(["subject", "clip", "onset"], kind="stable")
    df = validate_clip_index(df, source=where)

    names = srcs[0].cmap.names
    parts = [(src, sheet, df[df["dataset"] == src.adapter.name]) for src, sheet, _, _ in done]
    checks = report.published_checks(params, parts)
    out = {
        "dataset": params.name,
        "root": params.root,
        "sources": {src.adapter.name: report.source_report(src, sheet, part, n) for (src, sheet, part), (_, _, n, _) in
                    zip(parts, done, strict=True)},
        "classes": params.classes,
        "class_names": list(names),
        "on_bad_apex": params.on_bad_apex,
        "apex": {  # spotted: the faces stage picks the frame (its report.json says which and how far off)
            "setting": params.apex,
            "clips_by_source": {s: int((df["apex_source"] == s).sum()) for s in APEX_SOURCES},
        },
        "on_bad_frame": params.on_bad_frame,
        "clips": len(df),
        "subjects": int(df["subject"].nunique()),
        "counts_per_class": {name: int((df["label"] == name).sum()) for name in names},
        "counts_per_dataset": {
            src.adapter.name: {c: int((part["label"] == c).sum()) for c in names} for src, _, part in parts
        },
        "counts_per_subject": {str(k): int(v) for k, v in df["subject"].value_counts().sort_index().items()},
        "published": checks,
        "warnings": [published.warning(c) for c in checks["checks"] if not c["ok"]],
        "dropped": [d for _, sheet, n, _ in done for d in report.entries(n.dropped, sheet, "row")],
        "patched": [d for _, sheet, n, _ in done for d in report.entries(n.patched, sheet, "row", "field")],
        "incomplete": [d for _, sheet, n, _ in done for d in report.entries(n.incomplete, sheet, "row")],
        "errata": {"setting": params.errata, "entries": [e for *_, n, _ in done for e in n.errata]},
        "protocol": {"setting": params.protocol, "sources": {src.adapter.name: f for src, _, _, f in done}},
        "zero_motion": [d for _, sheet, n, _ in done for d in report.entries(n.zero_motion, sheet, "row")],
        "long_clips": {
            "bound_frames": {src.adapter.name: long_bound(src) for src, *_ in done},
            "clips": [d for _, sheet, n, _ in done for d in report.entries(n.long, sheet, "row")],
        },
        "folders_matched_ignoring_case": [
            d for _, sheet, n, _ in done for d in report.entries(n.folders, sheet, "row")
        ],
    }  # fmt: skip
    return df, out


def run(params: DatasetParams, out_dir: Path) -> pd.DataFrame:
    """The ingest stage: write ``out_dir/clips.parquet`` and ``out_dir/ingest_report.json``; return the index."""
    df, rep = build_index(params)
    out_dir = Path(out_dir)
    with atomic.atomic_paths(out_dir / CLIPS_FILE, out_dir / REPORT_FILE) as (clips_tmp, report_tmp):
        atomic.parquet_into(clips_tmp, df)  # both or neither: a report never describes another index
        report_tmp.write_bytes(atomic.json_bytes(rep))
    per_class = ", ".join(f"{name} {n}" for name, n in rep["counts_per_class"].items())
    log.info(
        "ingest: %d clips of %d subjects from %s (%s); %d rows dropped, %d fields patched, %d clips with missing "
        "frames -> %s",
        rep["clips"],
        rep["subjects"],
        ", ".join(s["sheet"]["file"] or s["sheet"]["folders"] for s in rep["sources"].values()),
        per_class,
        len(rep["dropped"]),
        len(rep["patched"]),
        len(rep["incomplete"]),
        out_dir / REPORT_FILE,
    )
    left_out = "; ".join(
        f"{name} " + ", ".join(f"{c} {n}" for c, n in s["left_out_classes"].items())
        for name, s in rep["sources"].items()
        if s["left_out_classes"]
    )
    if left_out:
        log.info("ingest: rows of classes %s leaves out: %s", rep["classes"], left_out)
    if rep["warnings"]:
        log.warning("ingest: %s (%s, 'published')", published.HINT, out_dir / REPORT_FILE)
    for warning in rep["warnings"]:
        log.warning("ingest: %s", warning)
    return df
