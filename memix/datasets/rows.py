"""One sheet row -> one clip, or a reported drop, or a :class:`~memix.datasets.problems.RowProblem`.

The checks, in order: a clip row at all, the subject and Filename, the sample list (MEGC 2019) and the class
map, onset and offset, the clip's folder and its frames, the apex (missing, outside the clip, or equal to the
onset: patched to the middle frame, left to the faces stage to spot or dropped, per ``on_bad_apex``; then
``dataset.apex`` picks the annotated, middle or spotted frame), a strict decode of the onset and apex images, and
the clip's length against its dataset's bound (reported).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memix.config import DatasetParams
from memix.datasets import classmaps, protocol
from memix.datasets.adapter import LayoutError, casefold_matches
from memix.datasets.frames import BadFrameError, list_frames, read_frame
from memix.datasets.problems import Notes, RowProblem, exclude_hint, patch_hint
from memix.datasets.sheets import Sheet
from memix.datasets.sources import Source
from memix.datasets.values import as_int, folder_name_problem, jsonable, text

LONG_CLIP_S = 2.0  # 4 x the 500 ms of a micro-expression's definition: longer clips are reported


def long_bound(src: Source) -> int:
    """The frame count past which a clip of ``src`` is reported as too long for a micro-expression."""
    return int(round(src.adapter.fps * LONG_CLIP_S))


def ingest_row(
    row: int, values: dict[str, Any], *, sheet: Sheet, src: Source, params: DatasetParams, notes: Notes,
    left_out: list[str],
) -> dict[str, Any] | None:  # fmt: skip
    """The clip of one row, None when the row is dropped (reported in ``notes``); raises RowProblem."""
    adapter, cmap = src.adapter, src.cmap
    if text(values.get("filename")) == "":
        notes.dropped.append({"dataset": adapter.name, "clip": None, "subject": text(values.get("subject")) or None,
                              "filename": None, "row": row,
                              "reason": "no Filename: not a clip row (notes or totals?)"})  # fmt: skip
        return None
    skip = adapter.skip_row(values)
    if skip is not None:
        notes.dropped.append({"dataset": adapter.name, "clip": None, "subject": text(values.get("subject")) or None,
                              "filename": text(values.get("filename")), "row": row, "reason": skip})  # fmt: skip
        return None
    raw_subject = values.get("subject")
    if text(raw_subject) == "":
        raise RowProblem("subject", "empty", "fill it in with dataset.patches (field subject is not patchable: fix "
                         "the sheet) or leave the row out")  # fmt: skip
    try:
        canonical = adapter.canonical_subject(raw_subject)
    except ValueError as err:
        raise RowProblem("subject", str(err), "correct the sheet's Subject cell") from None
    subject = src.subject_id(canonical)
    clip = text(values.get("filename"))
    bad_name = folder_name_problem(clip)
    if bad_name:
        raise RowProblem("filename", bad_name, "correct it: dataset.patches with field filename")
    clip_key = f"{subject}/{clip}"
    entry = {"dataset": adapter.name, "clip": clip_key, "subject": subject, "filename": clip, "row": row}
    onset_cell = as_int(values.get("onset"))

    def hint(field: str, value: str) -> str:
        return patch_hint(src.source_key, canonical, clip, onset_cell, field, value)

    emotion_raw = text(values.get("emotion"))
    try:  # the emotion, or (classes objective) the objective class: "I".."VII"
        shown, emotion = classmaps.label_cell(adapter.name, params.classes, values)
    except ValueError as err:
        raise RowProblem("objective", str(err), hint("objective", "<I to VII>")) from None
    if src.protocol is not None:
        listed = src.protocol.get(protocol.key(src, canonical, clip))
        mapped = cmap.emotions.get(emotion)
        if listed is None:
            if mapped is not None:
                left_out.append(clip_key)
                notes.dropped.append({**entry, "reason": "not on the MEGC 2019 sample list (dataset.protocol)"})
                return None
        elif mapped != listed:
            raise RowProblem(
                "emotion",
                f"emotion {emotion_raw!r} gives class {mapped}, the MEGC 2019 list says {listed}",
                hint("emotion", "<an emotion of that class>") + ", or dataset.protocol: classes",
            )
    if emotion not in cmap.emotions:
        kind = "excluded from" if emotion in cmap.known else "unknown emotion for"
        counted = {"excluded_class": emotion} if emotion in cmap.known else {}  # counted per class in the report
        notes.dropped.append({**entry, "reason": f"{kind} {adapter.name} {params.classes}: {shown!r}", **counted})
        return None
    label = cmap.emotions[emotion]

    if values.get("frameless"):
        return _frameless(Path(values["frameless"]), src, params, notes, entry, canonical, clip)
    onset, offset = onset_cell, as_int(values.get("offset"))
    if onset is None:
        raise RowProblem("onset", f"not a frame number: {values.get('onset')!r}", hint("onset", "<frame>"))
    if offset is None:
        raise RowProblem("offset", f"not a frame number: {values.get('offset')!r}", hint("offset", "<frame>"))
    if offset < onset:
        raise RowProblem("offset", f"offset {offset} is before onset {onset}", hint("offset", "<frame>"))

    with casefold_matches() as loose:
        try:
            clip_dir = adapter.clip_dir(src.root, canonical, clip, onset)
        except LayoutError as err:
            fix = "check dataset.root and the folder names, or " + exclude_hint(src.source_key, canonical, clip, onset)
            raise RowProblem(err.field, str(err), fix) from None
    for match in loose:
        notes.folders.append({**entry, **match, "note": "matched ignoring letter case (the only such folder)"})
    try:
        frames = list_frames(clip_dir)
    except ValueError as err:
        raise RowProblem("filename", str(err), "remove one of the two files") from None
    if not frames:
        return _frameless(clip_dir, src, params, notes, entry, canonical, clip, onset)
    in_range = [n for n in frames if onset <= n <= offset]
    if onset not in frames:
        raise RowProblem("onset", f"no image for frame {onset} in {clip_dir}", hint("onset", "<frame>"))

    chosen = _apex(values, onset, offset, in_range, src, params, notes, entry)
    if chosen is None:
        return None
    apex, apex_source = chosen
    if apex not in frames:
        raise RowProblem("apex", f"no image for frame {apex} in {clip_dir}", hint("apex", "<frame>"))

    for field, number in (("onset", onset), ("apex", apex)):
        image_path = clip_dir / frames[number]
        try:
            read_frame(image_path, clip_key, max_side=params.max_frame_side)
        except BadFrameError as err:
            if params.on_bad_frame == "skip":
                reason = f"damaged {sheet.columns[field]} frame: {err} (on_bad_frame: skip)"
                notes.dropped.append({**entry, "file": image_path.as_posix(), "reason": reason})
                return None
            fix = "set dataset.on_bad_frame: skip to leave such clips out"
            raise RowProblem(field, str(err), fix) from None
    if len(in_range) != offset - onset + 1:
        notes.incomplete.append({**entry, "expected": offset - onset + 1, "found": len(in_range)})
    bound = long_bound(src)
    if offset - onset + 1 > bound:
        notes.long.append({**entry, "onset": onset, "offset": offset, "frames": offset - onset + 1, "bound": bound,
                           "note": f"longer than {LONG_CLIP_S:g} s at {adapter.fps:g} fps (4 x a micro-expression's "
                           "500 ms): check onset and offset"})  # fmt: skip
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
        "action_units": text(values.get("action_units")),
        "frame_dir": frame_dir.as_posix(),
        "onset_path": (frame_dir / frames[onset]).as_posix(),
        "apex_path": (frame_dir / frames[apex]).as_posix(),
        "apex_annotated": as_int(values.get("apex")),
        "apex_source": apex_source,
    }


def _frameless(
    clip_dir: Path, src: Source, params: DatasetParams, notes: Notes, entry: dict[str, Any], canonical: str,
    clip: str, onset: int | None = None,
) -> None:  # fmt: skip
    """A clip folder without a single frame image: a problem naming it, or a reported skip."""
    what = f"clip folder {clip_dir} holds no frame images"
    if params.on_bad_frame == "skip":
        notes.dropped.append({**entry, "folder": clip_dir.as_posix(), "reason": f"{what} (on_bad_frame: skip)"})
        return None
    raise RowProblem("filename", what, "set dataset.on_bad_frame: skip to leave such clips out, or "
                     + exclude_hint(src.source_key, canonical, clip, onset))  # fmt: skip


def _apex(
    values: dict[str, Any], onset: int, offset: int, in_range: list[int], src: Source, params: DatasetParams,
    notes: Notes, entry: dict[str, Any],
) -> tuple[int, str] | None:  # fmt: skip
    """The apex frame and how it was chosen (schema.APEX_SOURCES), or None when the clip is dropped.

    An impossible annotation (missing, outside the clip, = onset) is handled per ``on_bad_apex`` whatever
    ``dataset.apex`` is, so the three apex settings keep the same clips; then ``dataset.apex`` picks the frame.
    A dataset without apex annotation (SMIC) takes the spotted apex unless ``dataset.apex: middle``: on the
    synthetic SMIC layout spotting is within a frame of the true apex far more often (benchmarks/spotting.py).
    A clip to be spotted carries its middle frame until the faces stage spots it.
    """
    middle = in_range[max(1, (len(in_range) - 1) // 2)] if len(in_range) > 1 else in_range[0]  # never the onset
    spot = "middle" if params.apex == "middle" else "spotted"
    apex = as_int(values.get("apex"))
    if apex is None and not src.adapter.has_apex and values.get("apex") is None:
        notes.middle_apex += 1
        return middle, spot  # no apex annotation (SMIC): spotted or the middle frame, said in the report
    if apex is None or not onset <= apex <= offset:
        problem = (
            f"apex {values.get('apex')!r} is not a frame number"
            if apex is None
            else f"apex {apex} outside [onset {onset}, offset {offset}]"
        )
        new_apex = middle
    elif apex == onset:
        problem = f"apex {apex} equals the onset: no onset->apex motion"
        new_apex = middle if len(in_range) > 1 else None
        notes.zero_motion.append({**entry, "onset": onset, "apex": apex, "action": params.on_bad_apex})
    else:
        return (apex, "annotated") if params.apex == "annotated" else (middle, params.apex)
    if params.on_bad_apex == "drop" or new_apex is None:
        why = "on_bad_apex: drop" if params.on_bad_apex == "drop" else "a one-frame clip: no later frame to take"
        notes.dropped.append({**entry, "reason": f"{problem} ({why})"})
        return None
    if params.apex == "middle":
        source = "middle"
    elif params.apex == "spotted" or params.on_bad_apex == "spot":
        source = "spotted"
    else:
        source = "patched"
    then = "to be spotted by the faces stage" if source == "spotted" else "set to the middle frame"
    notes.patched.append({**entry, "field": "apex", "old": jsonable(values.get("apex")), "new": new_apex,
                          "reason": f"{problem}; {then} (dataset.apex: {params.apex}, "
                          f"on_bad_apex: {params.on_bad_apex})"})  # fmt: skip
    return new_apex, source
