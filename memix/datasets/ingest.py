"""Ingest: a dataset's coding sheet + frame folders -> the clip index and a report of every decision.

Each sheet row becomes one clip after: params patches (keyed by Subject + Filename), path safety, the class
map (unknown or excluded emotions are dropped and reported), onset/offset checks, frame discovery, apex
repair (patch to the middle frame or drop, per ``on_bad_apex``) and a decode of the onset and apex images.
Problems the pipeline cannot fix on its own are errors naming the sheet, its row and the field. Nothing is
written until every row has passed, so a failure leaves no clips.parquet behind.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import pandas as pd
from tqdm import tqdm

from memix.config import ClipPatch, DatasetParams
from memix.datasets import casme2, classmaps, samm
from memix.datasets.adapter import Adapter
from memix.datasets.classmaps import ClassMap
from memix.datasets.frames import list_frames
from memix.datasets.schema import CLIP_COLUMNS, validate_clip_index
from memix.datasets.sheets import Sheet, SheetRecord, find_sheet, read_sheet
from memix.io import atomic

ADAPTERS: dict[str, Adapter] = {a.name: a for a in (casme2.ADAPTER, samm.ADAPTER)}
CLIPS_FILE = "clips.parquet"
REPORT_FILE = "ingest_report.json"


class IngestError(ValueError):
    """Bad dataset input; the message names the sheet (or file), the sheet row and the field."""


@dataclass
class _Log:
    dropped: list[dict[str, Any]] = field(default_factory=list)
    patched: list[dict[str, Any]] = field(default_factory=list)
    incomplete: list[dict[str, Any]] = field(default_factory=list)  # kept, but frames missing in the range


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


def _subject_dir(root: Path, adapter: Adapter, subject: str, where: str) -> Path:
    """The subject's folder under one of the adapter's spellings; none or two is an error naming the row."""
    names = adapter.subject_dirs(subject)
    found = [root / n for n in names if (root / n).is_dir()]
    if not found:
        raise IngestError(f"{where}: no folder {' or '.join(names)} for subject {subject} in {root}")
    if len(found) > 1:
        listed = " and ".join(p.name for p in found)
        raise IngestError(f"{where}: both {listed} exist in {root}; keep one")
    return found[0]


def _apply_patches(sheet: Sheet, adapter: Adapter, patches: list[ClipPatch], log: _Log) -> dict[int, dict[str, Any]]:
    """Row number -> field values with patches applied; a patch matching no row (or several) is an error."""
    values = {rec.row: dict(rec.values) for rec in sheet.records}
    keys: dict[tuple[str, str], list[SheetRecord]] = {}
    for rec in sheet.records:
        try:
            key = (adapter.canonical_subject(rec.values["subject"]), _text(rec.values["filename"]))
        except ValueError:
            continue
        keys.setdefault(key, []).append(rec)
    for i, patch in enumerate(patches):
        label = f"dataset.patches[{i}] ({patch.subject}, {patch.filename}, {patch.field})"
        try:
            key = (adapter.canonical_subject(patch.subject), _text(patch.filename))
        except ValueError as err:
            raise IngestError(f"{label}: subject {err}") from None
        matches = keys.get(key, [])
        if len(matches) != 1:
            raise IngestError(f"{label}: matches {len(matches)} rows of {sheet.path}, expected exactly one")
        rec = matches[0]
        old = values[rec.row].get(patch.field)
        values[rec.row][patch.field] = patch.value
        log.patched.append(
            {
                "clip": f"{key[0]}/{key[1]}",
                "subject": key[0],
                "filename": key[1],
                "row": rec.row,
                "field": patch.field,
                "old": _jsonable(old),
                "new": _jsonable(patch.value),
                "reason": label,
            }
        )
    return values


def _ingest_row(
    row: int,
    values: dict[str, Any],
    *,
    sheet: Sheet,
    root: Path,
    adapter: Adapter,
    cmap: ClassMap,
    params: DatasetParams,
    log: _Log,
) -> dict[str, Any] | None:
    where = f"{sheet.path}, row {row}"
    col = sheet.columns  # field -> the header as this sheet spells it, for messages
    if _text(values.get("filename")) == "":
        text = _text(values.get("subject"))
        log.dropped.append(
            {
                "clip": None,
                "subject": text or None,
                "filename": None,
                "row": row,
                "reason": "no Filename: not a clip row (notes or totals?)",
            }
        )
        return None
    raw_subject = values.get("subject")
    if _text(raw_subject) == "":
        raise IngestError(f"{where}, field {col['subject']}: empty")
    try:
        subject = adapter.canonical_subject(raw_subject)
    except ValueError as err:
        raise IngestError(f"{where}, field {col['subject']}: {err}") from None
    clip = _check_filename(values.get("filename"), f"{where}, field {col['filename']}")
    clip_key = f"{subject}/{clip}"
    where = f"{where} ({clip_key})"
    entry = {"clip": clip_key, "subject": subject, "filename": clip, "row": row}

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

    clip_dir = _subject_dir(root, adapter, subject, f"{where}, field {col['subject']}") / clip
    if not clip_dir.is_dir():
        raise IngestError(f"{where}, field {col['filename']}: clip folder {clip_dir} not found")
    try:
        frames = list_frames(clip_dir)
    except ValueError as err:
        raise IngestError(f"{where}, field {col['filename']}: {err}") from None
    in_range = [n for n in frames if onset <= n <= offset]
    if onset not in frames:
        raise IngestError(f"{where}, field {col['onset']}: no image for frame {onset} in {clip_dir}")

    apex = _as_int(values.get("apex"))
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

    import cv2

    for field_name, number in ((col["onset"], onset), (col["apex"], apex)):
        image_path = clip_dir / frames[number]
        if cv2.imread(str(image_path), cv2.IMREAD_GRAYSCALE) is None:
            raise IngestError(f"{where}, field {field_name}: cannot decode image {image_path}")

    if len(in_range) != offset - onset + 1:
        log.incomplete.append({**entry, "expected": offset - onset + 1, "found": len(in_range)})
    frame_dir = clip_dir.relative_to(root)
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


def build_index(params: DatasetParams) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read and check the dataset named by ``params``; return the clip index and the report (no I/O out)."""
    if params.name not in ADAPTERS:
        raise IngestError(f"dataset.name: no adapter for {params.name!r} (have {sorted(ADAPTERS)})")
    adapter = ADAPTERS[params.name]
    cmap = classmaps.get(params.name, params.classes)
    root = Path(params.root)
    sheet = read_sheet(find_sheet(root, params.sheet))
    log = _Log()
    values = _apply_patches(sheet, adapter, list(params.patches), log)

    rows = []
    for row, vals in tqdm(values.items(), desc=f"ingest {params.name}", unit="clip", leave=False):
        out = _ingest_row(row, vals, sheet=sheet, root=root, adapter=adapter, cmap=cmap, params=params, log=log)
        if out is not None:
            rows.append(out)
    if not rows:
        reasons = Counter(d["reason"].split(":")[0] for d in log.dropped)
        raise IngestError(
            f"{sheet.path}: no clips left after ingest ({len(sheet.records)} rows; dropped: {dict(reasons)})"
        )
    _unique_ids(rows, sheet.path)
    df = pd.DataFrame(rows, columns=list(CLIP_COLUMNS)).sort_values(["subject", "clip", "onset"], kind="stable")
    df = validate_clip_index(df, source=str(sheet.path))

    report = {
        "dataset": params.name,
        "root": params.root,
        "sheet": {
            "file": sheet.path.name,
            "sha256": sheet.sha256,
            "worksheet": sheet.worksheet,
            "header_row": sheet.header_row,
            "columns": sheet.columns,
        },
        "classes": params.classes,
        "class_map": cmap.to_report(),
        "on_bad_apex": params.on_bad_apex,
        "sheet_rows": len(sheet.records),
        "clips": len(df),
        "subjects": int(df["subject"].nunique()),
        "counts_per_class": {name: int((df["label"] == name).sum()) for name in cmap.names},
        "counts_per_subject": {str(k): int(v) for k, v in df["subject"].value_counts().sort_index().items()},
        "dropped": sorted(log.dropped, key=lambda d: d["row"]),
        "patched": sorted(log.patched, key=lambda d: (d["row"], d["field"])),
        "incomplete": sorted(log.incomplete, key=lambda d: d["row"]),
    }
    return df, report


def run(params: DatasetParams, out_dir: Path) -> pd.DataFrame:
    """The ingest stage: write ``out_dir/clips.parquet`` and ``out_dir/ingest_report.json``; return the index."""
    df, report = build_index(params)
    out_dir = Path(out_dir)
    atomic.write_parquet(out_dir / CLIPS_FILE, df)
    atomic.write_json(out_dir / REPORT_FILE, report)
    return df
