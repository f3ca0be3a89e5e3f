"""The clip index: one row per micro-expression clip, the contract between ingest and every later stage."""

from __future__ import annotations

import pandas as pd

# column -> pandas dtype. Frame paths are relative to the dataset root (posix separators).
CLIP_COLUMNS: dict[str, str] = {
    "dataset": "string",
    "subject": "string",  # canonical: "sub01" for CASME II, "006" for SAMM
    "clip": "string",  # the sheet's Filename
    "clip_id": "string",  # unique over the index: f"{subject}/{clip}" (+ "#onset" if a Filename repeats)
    "onset": "int64",
    "apex": "int64",
    "offset": "int64",
    "n_frames": "int64",  # frames found on disk between onset and offset, inclusive
    "emotion": "string",  # raw sheet value
    "label": "string",  # class name after the class map
    "label_id": "int64",
    "action_units": "string",
    "frame_dir": "string",
    "onset_path": "string",
    "apex_path": "string",
}
# How each clip's apex was chosen (dataset.apex, dataset.on_bad_apex), after CLIP_COLUMNS. apex_annotated: the
# sheet's apex (after errata and patches) when it is a frame number, else null; apex_source: annotated (the
# sheet's), middle (dataset.apex: middle), patched (an impossible apex set to the middle frame, on_bad_apex:
# patch) or spotted (the faces stage spots it on the aligned faces; ``apex`` and ``apex_path`` hold the middle
# frame until then). An index written without them reads as every apex annotated.
APEX_COLUMNS: dict[str, str] = {"apex_annotated": "Int64", "apex_source": "string"}
APEX_SOURCES = ("annotated", "middle", "patched", "spotted")


def validate_clip_index(df: pd.DataFrame, source: str = "clip index") -> pd.DataFrame:
    """Check columns and uniqueness; return the frame with the schema's dtypes and column order."""
    missing = [c for c in CLIP_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{source}: missing columns {missing}")
    out = df[list(CLIP_COLUMNS)].astype(CLIP_COLUMNS)
    out["apex_annotated"] = df["apex_annotated"] if "apex_annotated" in df.columns else df["apex"]
    out["apex_source"] = df["apex_source"] if "apex_source" in df.columns else "annotated"
    out = out.astype(APEX_COLUMNS)
    bad = out["clip_id"][~out["apex_source"].isin(APEX_SOURCES).fillna(False)]
    if len(bad):
        raise ValueError(
            f"{source}: apex_source of clip {bad.iloc[0]} is {out['apex_source'][bad.index[0]]!r}, "
            f"not one of {list(APEX_SOURCES)}"
        )
    dup = out["clip_id"][out["clip_id"].duplicated()]
    if len(dup):
        raise ValueError(f"{source}: duplicate clip_id {sorted(dup.unique())[:5]}")
    return out.reset_index(drop=True)
