"""SMIC: ``<root>/HS/sN/micro/{positive,negative,surprise}/sN_{po,ne,sur}_NN/image{NNNNNN}.bmp``.

The cropped release (``SMIC_all_cropped/HS/...``) names its frames ``reg_image{N}.bmp`` and has an empty clip
folder (``s18_sur_03``): frame numbers are parsed whatever the prefix, and a folder without frames is an error
naming it (or, under ``on_bad_frame: skip``, a reported skip).

SMIC ships no coding sheet for its micro-expression clips: the emotion is the folder a clip sits in, and a
clip folder holds exactly the clip, so its onset and offset are its first and last frame numbers (parsed: the
6-digit numbers are absolute positions in the long recording). There is no apex annotation; ingest uses the
middle frame found between onset and offset and says so once in the report. ``camera`` picks the HS (100 fps,
16 subjects), VIS or NIR (25 fps) recordings, each in its own folder under ``root``. Subjects are ``s3``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from memix.datasets.adapter import Adapter, LayoutError, one_match, subject_folder, subject_number
from memix.datasets.frames import list_frames
from memix.datasets.sheets import Sheet, SheetError, SheetRecord

CAMERAS = ("hs", "vis", "nir")
MICRO = "micro"
# what a folder-read record calls each field in error messages and the report
FOLDER_COLUMNS = {
    "subject": "subject folder",
    "filename": "clip folder",
    "onset": "first frame",
    "apex": "apex",
    "offset": "last frame",
    "emotion": "emotion folder",
    "action_units": "action units",
}


def canonical_subject(value: Any) -> str:
    return f"s{subject_number(value)}"


def subject_dirs(subject: str) -> list[str]:
    number = subject_number(subject)
    return list(dict.fromkeys([f"s{number}", f"s{number:02d}"]))


def camera_root(root: Path, camera: str) -> Path:
    """``root/HS`` (or VIS, NIR); a root that already is that folder is accepted too."""
    name = camera.upper()
    if (root / name).is_dir():
        return root / name
    if root.name.upper() == name and root.is_dir():
        return root
    raise LayoutError("subject", f"no folder {name} in the smic root {root} (SMIC keeps each camera in its own folder)")


def clip_dir(camera: str, root: Path, subject: str, filename: str, onset: int | None = None) -> Path:
    base = subject_folder(camera_root(root, camera), subject_dirs(subject), subject)
    return one_match(base / MICRO, filename, "emotion")


def _dirs(path: Path) -> list[Path]:
    return sorted((p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def read_folders(camera: str, adapter: Adapter, root: Path, sheet: str | None) -> Sheet:
    """One record per clip folder under ``<camera>/<subject>/micro/<emotion>/``: subject, clip and emotion from
    the folder names, onset and offset from the first and last frame numbers found."""
    if sheet is not None:
        raise SheetError(
            f"{root}: sheet {sheet!r} is set, but SMIC has no coding sheet: clips, emotions and frames are read from "
            f"{camera.upper()}/<subject>/micro/<emotion>/<clip>/ (leave sheet null)"
        )
    if not root.is_dir():
        raise SheetError(f"{root}: dataset root not found")
    try:
        base = camera_root(root, camera)
    except LayoutError as err:
        raise SheetError(str(err)) from None
    records: list[SheetRecord] = []
    origins: dict[int, str] = {}
    subjects = [d for d in _dirs(base) if (d / MICRO).is_dir()]
    if not subjects:
        raise SheetError(f"{base}: no subject folder with a {MICRO}/ folder inside (e.g. s1/{MICRO}/negative/)")
    for subject_dir in sorted(subjects, key=lambda d: _subject_order(d.name)):
        for emotion_dir in _dirs(subject_dir / MICRO):
            for clip in _dirs(emotion_dir):
                frames = list_frames(clip)
                numbers = list(frames)
                row = len(records) + 1
                values = {
                    "subject": subject_dir.name,
                    "filename": clip.name,
                    "onset": numbers[0] if numbers else None,
                    "apex": None,
                    "offset": numbers[-1] if numbers else None,
                    "emotion": emotion_dir.name,
                    "action_units": None,
                }
                if not numbers:
                    values["frameless"] = clip.as_posix()  # an empty clip folder (SMIC's cropped s18_sur_03)
                records.append(SheetRecord(row=row, values=values))
                origins[row] = str(clip)
    if not records:
        raise SheetError(f"{base}: no clip folders under <subject>/{MICRO}/<emotion>/")
    return Sheet(
        path=base,
        sha256=None,
        worksheet=None,
        header_row=None,
        columns=dict(FOLDER_COLUMNS),
        records=records,
        creator=None,
        origins=origins,
    )


def _subject_order(name: str) -> tuple[int, str]:
    try:
        return subject_number(name), name
    except ValueError:
        return 1 << 30, name


def adapter(camera: str | None) -> Adapter:
    """The SMIC adapter for one camera (null = hs)."""
    camera = camera or "hs"
    if camera not in CAMERAS:
        raise ValueError(f"smic camera must be one of {CAMERAS}, got {camera!r}")
    return Adapter(
        name="smic",
        canonical_subject=canonical_subject,
        clip_dir=partial(clip_dir, camera),
        layout=f"{camera.upper()}/sN/micro/<emotion>/<clip>/image{{NNNNNN}}.bmp (no coding sheet)",
        columns=dict(FOLDER_COLUMNS),
        has_apex=False,
        read=partial(read_folders, camera),
        fps=100.0 if camera == "hs" else 25.0,
    )
