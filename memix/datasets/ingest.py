"""Ingest: a dataset's coding sheet + frame folders -> the clip index and a report of every decision.

Each sheet row becomes one clip after: params patches (keyed by Subject + Filename), path safety, the class
map (unknown or excluded emotions are dropped and reported), onset/offset checks, frame discovery, apex
repair (patch to the middle frame or drop, per ``on_bad_apex``) and a strict decode of the onset and apex images
(:func:`memix.datasets.frames.read_frame`; a damaged one stops ingest or, per ``on_bad_frame``, drops the clip).
Problems the pipeline cannot fix on its own are errors naming the sheet, its row and the field. Nothing is
written until every row has passed, so a failure leaves no clips.parquet behind.

A composite (``dataset.name: composite``) runs this same path once per source, each with its own adapter
(:mod:`memix.datasets.sources`), and merges the clips: subject ids get the source's name in front
(``casme2/sub01``), frame paths are relative to ``dataset.root``, and the sources' class maps must give the
same classes (``megc3``). With real data, counts are compared with the published ones
(:mod:`memix.datasets.published`); a difference is a warning in the report and on stderr.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import pandas as pd
from tqdm import tqdm

from memix.config import COMPOSITE, ClipExclusion, ClipPatch, DatasetParams, SourceParams
from memix.datasets import classmaps, published, sources
from memix.datasets.adapter import Adapter, LayoutError
from memix.datasets.classmaps import ClassMap
from memix.datasets.frames import BadFrameError, list_frames, read_frame
from memix.datasets.schema import CLIP_COLUMNS, validate_clip_index
from memix.datasets.sheets import Sheet, SheetRecord
from memix.io import atomic

ADAPTERS: dict[str, Adapter] = sources.ADAPTERS
CLIPS_FILE = "clips.parquet"
REPORT_FILE = "ingest_report.json"

log = logging.getLogger(__name__)


class IngestError(ValueError):
    """Bad dataset input; the message names the sheet (or file), the sheet row and the field."""


@dataclass
class _Log:
    dropped: list[dict[str, Any]] = field(default_factory=list)
    patched: list[dict[str, Any]] = field(default_factory=list)
    incomplete: list[dict[str, Any]] = field(default_factory=list)  # kept, but frames missing in the range
    middle_apex: int = 0  # clips of a dataset without apex annotation (SMIC) given the middle frame


@dataclass(frozen=True)
class _Source:
    """One dataset being ingested: its adapter and class map, its folder, and how its subject ids read."""

    params: SourceParams
    adapter: Adapter
    cmap: ClassMap
    root: Path  # the source's folder on disk
    prefix: PurePosixPath  # that folder relative to dataset.root ("." for a single dataset)
    namespace: bool  # composite: subject ids are "<dataset>/<subject>"

    def subject_id(self, canonical: str) -> str:
        return f"{self.adapter.name}/{canonical}" if self.namespace else canonical


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    return str(value)


def _as_int(value: Any) -> int | None:
    """An integer frame number from 46, 46.0 or "46"; None for "/", blanks and anything else."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = str(value).strip()
    return int(text) if text.isdigit() else None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split())


def _check_filename(value: Any, where: str) -> str:
    """The sheet's Filename as a single folder name; anything that could leave the dataset root is rejected."""
    name = _text(value)
    if not name:
        raise IngestError(f"{where}: empty")
    bad = (
        name in {".", ".."}
        or "/" in name
        or "\\" in name
        or PurePosixPath(name).is_absolute()
        or PureWindowsPath(name).is_absolute()
        or PureWindowsPath(name).drive
        or "\x00" in name
    )
    if bad:
        raise IngestError(
            f"{where}: {name!r} is not a plain folder name (no '..', separators or absolute "
            "paths: no path may leave the dataset root)"
        )
    return name


def _record_keys(sheet: Sheet, src: _Source) -> dict[tuple[str, str], list[SheetRecord]]:
    """(canonical subject, Filename) -> the records with that key, read from the sheet as released."""
    keys: dict[tuple[str, str], list[SheetRecord]] = {}
    for rec in sheet.records:
        try:
            key = (src.adapter.canonical_subject(rec.values["subject"]), _text(rec.values["filename"]))
        except ValueError:
            continue
        keys.setdefault(key, []).append(rec)
    return keys


def _match(
    keys: dict[tuple[str, str], list[SheetRecord]],
    entry: ClipPatch | ClipExclusion,
    src: _Source,
    sheet: Sheet,
    label: str,
) -> tuple[tuple[str, str], SheetRecord]:
    """The one record a params entry names by subject, Filename (and onset); anything else is an error."""
    try:
        key = (src.adapter.canonical_subject(entry.subject), _text(entry.filename))
    except ValueError as err:
        raise IngestError(f"{label}: subject {err}") from None
    matches = keys.get(key, [])
    if entry.onset is not None:
        matches = [rec for rec in matches if _as_int(rec.values.get("onset")) == entry.onset]
    if len(matches) != 1:
        hint = "; add its onset to pick one" if len(matches) > 1 and entry.onset is None else ""
        raise IngestError(f"{label}: matches {len(matches)} rows of {sheet.path}, expected exactly one{hint}")
    return key, matches[0]


def _apply_patches(
    sheet: Sheet, src: _Source, patches: list[tuple[int, ClipPatch]], log: _Log
) -> dict[int, dict[str, Any]]:
    """Row number -> field values with patches applied; a patch matching no row (or several) is an error."""
    values = {rec.row: dict(rec.values) for rec in sheet.records}
    keys = _record_keys(sheet, src)
    for i, patch in patches:
        at = f", onset {patch.onset}" if patch.onset is not None else ""
        label = f"dataset.patches[{i}] ({patch.subject}, {patch.filename}{at}, {patch.field})"
        key, rec = _match(keys, patch, src, sheet, label)
        old = values[rec.row].get(patch.field)
        values[rec.row][patch.field] = patch.value
        subject = src.subject_id(key[0])
        log.patched.append(
            {
                "dataset": src.adapter.name,
                "clip": f"{subject}/{key[1]}",
                "subject": subject,
                "filename": key[1],
                "row": rec.row,
                "field": patch.field,
                "old": _jsonable(old),
                "new": _jsonable(patch.value),
                "reason": label,
            }
        )
    return values


def _apply_exclusions(
    sheet: Sheet, src: _Source, exclude: list[tuple[int, ClipExclusion]], values: dict[int, dict[str, Any]], log: _Log
) -> dict[int, dict[str, Any]]:
    """``values`` without the rows ``dataset.exclude`` names, each reported as dropped with its reason."""
    keys = _record_keys(sheet, src)
    out = dict(values)
    for i, entry in exclude:
        label = f"dataset.exclude[{i}] ({entry.subject}, {entry.filename})"
        key, rec = _match(keys, entry, src, sheet, label)
        subject = src.subject_id(key[0])
        out.pop(rec.row, None)
        log.dropped.append(
            {
                "dataset": src.adapter.name,
                "clip": f"{subject}/{key[1]}",
                "subject": subject,
                "filename": key[1],
                "row": rec.row,
                "reason": f"dataset.exclude[{i}]: {entry.reason}",
            }
        )
    return out


def _ingest_row(
    row: int,
    values: dict[str, Any],
    *,
    sheet: Sheet,
    src: _Source,
    params: DatasetParams,
    log: _Log,
) -> dict[str, Any] | None:
    adapter, cmap = src.adapter, src.cmap
    where = sheet.where(row)
    col = sheet.columns  # field -> the header as this sheet spells it, for messages
    if _text(values.get("filename")) == "":
        text = _text(values.get("subject"))
        log.dropped.append(
            {
                "dataset": adapter.name,
                "clip": None,
                "subject": text or None,
                "filename": None,
                "row": row,
                "reason": "no Filename: not a clip row (notes or totals?)",
            }
        )
        return None
    skip = adapter.skip_row(values)
    if skip is not None:
        text = _text(values.get("subject"))
        log.dropped.append(
            {
                "dataset": adapter.name,
                "clip": None,
                "subject": text or None,
                "filename": _text(values.get("filename")),
                "row": row,
                "reason": skip,
            }
        )
        return None
    raw_subject = values.get("subject")
    if _text(raw_subject) == "":
        raise IngestError(f"{where}, field {col['subject']}: empty")
    try:
        canonical = adapter.canonical_subject(raw_subject)
    except ValueError as err:
        raise IngestError(f"{where}, field {col['subject']}: {err}") from None
    subject = src.subject_id(canonical)
    clip = _check_filename(values.get("filename"), f"{where}, field {col['filename']}")
    clip_key = f"{subject}/{clip}"
    where = f"{where} ({clip_key})"
    entry = {"dataset": adapter.name, "clip": clip_key, "subject": subject, "filename": clip, "row": row}

    emotion_raw = _text(values.get("emotion"))
    emotion = classmaps.normalise_emotion(adapter.name, emotion_raw)
    if emotion not in cmap.emotions:
        kind = "excluded from" if emotion in cmap.known else "unknown emotion for"
        log.dropped.append({**entry, "reason": f"{kind} {adapter.name} {params.classes}: {emotion_raw!r}"})
        return None
    label = cmap.emotions[emotion]

    onset, offset = _as_int(values.get("onset")), _as_int(values.get("offset"))
    if onset is None:
        raise IngestError(f"{where}, field {col['onset']}: not a frame number: {values.get('onset')!r}")
    if offset is None:
        raise IngestError(f"{where}, field {col['offset']}: not a frame number: {values.get('offset')!r}")
    if offset < onset:
        raise IngestError(f"{where}, field {col['offset']}: offset {offset} is before onset {onset}")

    try:
        clip_dir = adapter.clip_dir(src.root, canonical, clip)
    except LayoutError as err:
        raise IngestError(f"{where}, field {col[err.field]}: {err}") from None
    try:
        frames = list_frames(clip_dir)
    except ValueError as err:
        raise IngestError(f"{where}, field {col['filename']}: {err}") from None
    in_range = [n for n in frames if onset <= n <= offset]
    if onset not in frames:
        raise IngestError(f"{where}, field {col['onset']}: no image for frame {onset} in {clip_dir}")

    apex = _as_int(values.get("apex"))
    if apex is None and not adapter.has_apex and values.get("apex") is None:
        apex = in_range[(len(in_range) - 1) // 2]  # no apex annotation (SMIC): the middle frame, said in the report
        log.middle_apex += 1
    if apex is None or not onset <= apex <= offset:
        problem = (
            f"apex {values.get('apex')!r} is not a frame number"
            if apex is None
            else f"apex {apex} outside [onset {onset}, offset {offset}]"
        )
        if params.on_bad_apex == "drop":
            log.dropped.append({**entry, "reason": f"{problem} (on_bad_apex: drop)"})
            return None
        new_apex = in_range[(len(in_range) - 1) // 2]
        log.patched.append(
            {
                **entry,
                "field": "apex",
                "old": _jsonable(values.get("apex")),
                "new": new_apex,
                "reason": f"{problem}; set to the middle frame (on_bad_apex: patch)",
            }
        )
        apex = new_apex
    if apex not in frames:
        raise IngestError(f"{where}, field {col['apex']}: no image for frame {apex} in {clip_dir}")

    for field_name, number in ((col["onset"], onset), (col["apex"], apex)):
        image_path = clip_dir / frames[number]
        try:
            read_frame(image_path, clip_key)
        except BadFrameError as err:
            if params.on_bad_frame == "skip":
                reason = f"damaged {field_name} frame: {err} (on_bad_frame: skip)"
                log.dropped.append({**entry, "file": image_path.as_posix(), "reason": reason})
                return None
            raise IngestError(
                f"{where}, field {field_name}: {err} (set dataset.on_bad_frame: skip to leave such clips out)"
            ) from None

    if len(in_range) != offset - onset + 1:
        log.incomplete.append({**entry, "expected": offset - onset + 1, "found": len(in_range)})
    frame_dir = src.prefix / clip_dir.relative_to(src.root).as_posix()  # relative to dataset.root
    return {
        "dataset": adapter.name,
        "subject": subject,
        "clip": clip,
        "clip_id": clip_key,
        "onset": onset,
        "apex": apex,
        "offset": offset,
        "n_frames": len(in_range),
        "emotion": emotion_raw,
        "label": label,
        "label_id": cmap.label_id(label),
        "action_units": _text(values.get("action_units")),
        "frame_dir": frame_dir.as_posix(),
        "onset_path": (frame_dir / frames[onset]).as_posix(),
        "apex_path": (frame_dir / frames[apex]).as_posix(),
    }


def _unique_ids(rows: list[dict[str, Any]], sheet: Path) -> None:
    """A Filename listed more than once for a subject (several MEs in one take) gets ``#<onset>`` on its id."""
    counts = Counter(r["clip_id"] for r in rows)
    for r in rows:
        if counts[r["clip_id"]] > 1:
            r["clip_id"] = f"{r['clip_id']}#{r['onset']}"
    dup = [k for k, n in Counter(r["clip_id"] for r in rows).items() if n > 1]
    if dup:
        raise IngestError(f"{sheet}: the same clip and onset appear on more than one row: {sorted(dup)[:5]}")


def _sources(params: DatasetParams) -> list[_Source]:
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
        out.append(_Source(source, adapter, cmap, Path(params.root) / prefix, prefix, namespace))
    names = {s.adapter.name: s.cmap.names for s in out}
    if len(set(names.values())) > 1:
        listed = "; ".join(f"{n}: {', '.join(c)}" for n, c in names.items())
        raise IngestError(
            f"dataset.classes {params.classes!r} gives the sources different classes ({listed}); "
            "a composite needs one class list (megc3: negative, positive, surprise)"
        )
    return out


def _ingest_source(src: _Source, params: DatasetParams, log: _Log) -> tuple[list[dict[str, Any]], Sheet]:
    """One dataset's clips (the shared path: patches, exclusions, then every row's checks)."""
    name = src.adapter.name
    try:
        sheet = src.adapter.table(src.root, src.params.sheet)
    except ValueError as err:
        raise IngestError(str(err)) from None
    patches = [(i, p) for i, p in enumerate(params.patches) if p.source in (None, name)]
    exclude = [(i, e) for i, e in enumerate(params.exclude) if e.source in (None, name)]
    values = _apply_patches(sheet, src, patches, log)
    values = _apply_exclusions(sheet, src, exclude, values, log)
    rows = []
    for row, vals in tqdm(values.items(), desc=f"ingest {name}", unit="clip", leave=False):
        out = _ingest_row(row, vals, sheet=sheet, src=src, params=params, log=log)
        if out is not None:
            rows.append(out)
    if not rows:
        reasons = Counter(d["reason"].split(":")[0] for d in log.dropped)
        raise IngestError(
            f"{sheet.path}: no clips left after ingest ({len(sheet.records)} rows; dropped: {dict(reasons)})"
        )
    _unique_ids(rows, sheet.path)
    return rows, sheet


def _entries(entries: list[dict[str, Any]], sheet: Sheet, *sort: str) -> list[dict[str, Any]]:
    """Report entries in sheet order; records read from folders name their folder instead of a row."""
    out = sorted(entries, key=lambda d: tuple(d[k] for k in sort))
    if sheet.origins is not None:
        out = [{**d, "row": None, "folder": sheet.origins[d["row"]]} for d in out]
    return out


def _source_report(src: _Source, sheet: Sheet, part: pd.DataFrame, log: _Log) -> dict[str, Any]:
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
        else f"{name} has no apex annotation: the middle frame found between onset and offset ({log.middle_apex} clips)"
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
        "synthetic": published.synthetic_mark(src.root, sheet.creator),
    }
    if name == "smic":
        report["camera"] = src.params.camera or "hs"
    return report


def _published_checks(params: DatasetParams, parts: list[tuple[_Source, Sheet, pd.DataFrame]]) -> dict[str, Any]:
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


def build_index(params: DatasetParams) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read and check the dataset (or every source of a composite); return the clip index and the report."""
    srcs = _sources(params)
    rows: list[dict[str, Any]] = []
    done: list[tuple[_Source, Sheet, list[dict[str, Any]], _Log]] = []
    for src in srcs:
        notes = _Log()
        src_rows, sheet = _ingest_source(src, params, notes)
        rows += src_rows
        done.append((src, sheet, src_rows, notes))
    where = str(done[0][1].path) if len(done) == 1 else params.root
    df = pd.DataFrame(rows, columns=list(CLIP_COLUMNS)).sort_values(["subject", "clip", "onset"], kind="stable")
    df = validate_clip_index(df, source=where)

    names = srcs[0].cmap.names
    parts = [(src, sheet, df[df["dataset"] == src.adapter.name]) for src, sheet, _, _ in done]
    checks = _published_checks(params, parts)
    report = {
        "dataset": params.name,
        "root": params.root,
        "sources": {src.adapter.name: _source_report(src, sheet, part, n) for (src, sheet, part), (*_, n) in
                    zip(parts, done, strict=True)},
        "classes": params.classes,
        "class_names": list(names),
        "on_bad_apex": params.on_bad_apex,
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
        "dropped": [d for _, sheet, _, n in done for d in _entries(n.dropped, sheet, "row")],
        "patched": [d for _, sheet, _, n in done for d in _entries(n.patched, sheet, "row", "field")],
        "incomplete": [d for _, sheet, _, n in done for d in _entries(n.incomplete, sheet, "row")],
    }  # fmt: skip
    return df, report


def run(params: DatasetParams, out_dir: Path) -> pd.DataFrame:
    """The ingest stage: write ``out_dir/clips.parquet`` and ``out_dir/ingest_report.json``; return the index."""
    df, report = build_index(params)
    out_dir = Path(out_dir)
    atomic.write_parquet(out_dir / CLIPS_FILE, df)
    atomic.write_json(out_dir / REPORT_FILE, report)
    per_class = ", ".join(f"{name} {n}" for name, n in report["counts_per_class"].items())
    log.info(
        "ingest: %d clips of %d subjects from %s (%s); %d rows dropped, %d fields patched, %d clips with missing "
        "frames -> %s",
        report["clips"],
        report["subjects"],
        ", ".join(s["sheet"]["file"] or s["sheet"]["folders"] for s in report["sources"].values()),
        per_class,
        len(report["dropped"]),
        len(report["patched"]),
        len(report["incomplete"]),
        out_dir / REPORT_FILE,
    )
    if report["warnings"]:
        log.warning("ingest: %s (%s, 'published')", published.HINT, out_dir / REPORT_FILE)
    for warning in report["warnings"]:
        log.warning("ingest: %s", warning)
    return df
