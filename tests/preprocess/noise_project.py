"""A tiny on-disk project for the key-frame noise stage, made without MediaPipe: raw frames, the clip index, a faces
folder as the faces stage writes it (its crops made with :func:`memix.preprocess.clip_align.crop` and a known
affine) and the flow stage's output (:func:`memix.preprocess.flow.run`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import skimage.data

from memix.config import FlowParams
from memix.datasets.frames import list_frames, read_frame
from memix.datasets.schema import CLIP_COLUMNS
from memix.io import shards
from memix.preprocess import clip_align, flow

FRAME = 96  # source frame side, px
CROP = 48  # the faces stage's crop side
AFFINE = np.array([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]])  # source px -> crop px
POINTS = [30.0, 35.0, 66.0, 35.0, 48.0, 50.0, 36.0, 66.0, 60.0, 66.0]  # eyes, nose, mouth corners (source px)
LABELS = ["happiness", "disgust", "surprise"]
# per clip: subject, clip, first frame number, number of frames, onset position, apex position, offset position
CLIPS = [
    ("sub01", "EP01", 10, 7, 0, 3, 6), ("sub01", "EP02", 200, 8, 1, 4, 6), ("sub01", "EP03", 5, 6, 0, 2, 5),
    ("sub02", "EP01", 40, 8, 2, 5, 7), ("sub02", "EP02", 1, 7, 0, 4, 6), ("sub02", "EP03", 77, 6, 1, 3, 5),
    ("sub03", "EP01", 300, 8, 0, 5, 7), ("sub03", "EP02", 12, 7, 1, 3, 6), ("sub03", "EP03", 60, 6, 0, 2, 4),
]


@dataclass(frozen=True)
class Project:
    root: Path  # dataset root (raw frames)
    clips: Path  # clip index
    faces: Path
    flow: Path
    params: FlowParams


def flow_params(pairs: tuple[str, ...] = ("onset_apex",)) -> FlowParams:
    return FlowParams(method="farneback", size=16, workers=1, montage_per_class=1, pairs=list(pairs),
                      farneback={"levels": 2})


def _texture() -> np.ndarray:
    grey = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2GRAY)
    return cv2.resize(np.ascontiguousarray(grey[30:230, 130:330]), (FRAME, FRAME), interpolation=cv2.INTER_AREA)


def _frame(base: np.ndarray, step: int, direction: tuple[float, float]) -> np.ndarray:
    """The texture moved ``step`` times a sub-pixel step in ``direction``: each frame differs from the others."""
    m = np.float32([[1, 0, 0.6 * step * direction[0]], [0, 1, 0.6 * step * direction[1]]])
    return cv2.warpAffine(base, m, (FRAME, FRAME), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def build(root: Path, pairs: tuple[str, ...] = ("onset_apex",)) -> Project:
    """Write the project under ``root``; ``pairs`` as ``flow.pairs`` (apex_offset adds the offset crops)."""
    raw = root / "raw"
    base = _texture()
    rows = []
    for i, (subject, clip, first, count, onset, apex, offset) in enumerate(CLIPS):
        clip_dir = raw / subject / clip
        clip_dir.mkdir(parents=True)
        direction = (np.cos(i), np.sin(i))
        for k in range(count):
            cv2.imwrite(str(clip_dir / f"img{first + k}.png"), _frame(base, k, direction))
        label_id = i % len(LABELS)
        rows.append({
            "dataset": "casme2", "subject": subject, "clip": clip, "clip_id": f"{subject}/{clip}",
            "onset": first + onset, "apex": first + apex, "offset": first + offset, "n_frames": offset - onset + 1,
            "emotion": LABELS[label_id], "label": LABELS[label_id], "label_id": label_id, "action_units": "12",
            "frame_dir": f"{subject}/{clip}", "onset_path": f"{subject}/{clip}/img{first + onset}.png",
            "apex_path": f"{subject}/{clip}/img{first + apex}.png",
        })
    clips = pd.DataFrame(rows).astype(CLIP_COLUMNS)
    clips_path = root / "clips.parquet"
    clips.to_parquet(clips_path)
    faces_dir = write_faces(root / "faces", raw, clips, offset="apex_offset" in pairs)
    params = flow_params(pairs)
    flow.run(params, faces_dir, root / "flow", root / "montage.png")
    return Project(raw, clips_path, faces_dir, root / "flow", params)


def write_faces(out: Path, raw: Path, clips: pd.DataFrame, offset: bool = False,
                extra: dict[str, list] | None = None) -> Path:
    """The faces stage's folder for ``clips``: onset and apex (and offset) crops with :data:`AFFINE`."""
    onsets, apexes, offsets, rows = [], [], [], []
    for clip in clips.itertuples(index=False):
        onsets.append(clip_align.crop(read_frame(raw / clip.onset_path, clip.clip_id), AFFINE, CROP))
        apexes.append(clip_align.crop(read_frame(raw / clip.apex_path, clip.clip_id), AFFINE, CROP))
        if offset:
            clip_dir = raw / clip.frame_dir
            name = clip_align.offset_frame(clip_dir, int(clip.apex), int(clip.offset))
            offsets.append(clip_align.crop(read_frame(clip_dir / name, clip.clip_id), AFFINE, CROP))
        rows.append({"clip_id": clip.clip_id, "dataset": clip.dataset, "subject": clip.subject, "label": clip.label,
                     "label_id": int(clip.label_id), "status": "ok", "score": 0.9, "n_faces": 1,
                     "landmarks": list(POINTS), "affine": [float(v) for v in AFFINE.ravel()]})
    index = pd.DataFrame(rows)
    for name, values in (extra or {}).items():
        index[name] = values
    arrays = {"onset": np.stack(onsets), "apex": np.stack(apexes)}
    if offset:
        arrays["offset"] = np.stack(offsets)
    shards.write(out, index, arrays, shard_mb=64)
    return out


def crops(project: Project, clip_id: str, *numbers: int) -> list[np.ndarray]:
    """The clip's frames ``numbers`` cropped as the faces stage crops them."""
    clip_dir = project.root / clip_id
    names = list_frames(clip_dir)
    return [clip_align.crop(read_frame(clip_dir / names[n], clip_id), AFFINE, CROP) for n in numbers]
