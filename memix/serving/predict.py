"""Class probabilities for new clips: onset + apex (+ offset) images -> the pipeline's own preprocessing -> the
fitted model.

Every step is the code the pipeline ran on the training clips, with the settings the model file recorded:
:func:`memix.preprocess.clip_align.align_clip` (face on the onset frame, the same crop for the apex),
:func:`memix.preprocess.flow.clip_tensor` (flow, strain, resizing, float16 storage, with OpenCV on one thread as
in the flow stage, so the same images give the same bytes), then the training data's normalisation and the
network. The face model file must be the one the model was fitted with (its sha256 is checked).

Clips come as :class:`ClipPair` lists: one pair, a folder of clip folders (:func:`clips_in_folder`), or a
dataset's coding sheet read by its adapter (:func:`clips_in_dataset`). Any clip that fails (unreadable image,
no face) stops the run with an error naming the clip and the file, before anything is written. A clip nobody
annotated (:mod:`memix.serving.clip_frames`: its apex spotted) is already aligned: it joins the same path at
:meth:`Predictor.input_of`, so its two frames give what :meth:`Predictor.flow_of` gives for them as a pair.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from memix.config import DatasetParams
from memix.datasets.frames import IMAGE_SUFFIXES
from memix.io import atomic, views
from memix.preprocess import clip_align, faces, flow
from memix.preprocess.landmarks import LandmarkDetector
from memix.preprocess.optical_flow import one_opencv_thread
from memix.serving.modelfile import ModelFile

BATCH = 256

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipPair:
    """One clip to score: a name, its onset and apex image files, and its label when a coding sheet gives one."""

    name: str
    onset: Path
    apex: Path
    label: str | None = None
    offset: Path | None = None  # the offset frame: a network on the whole sequence (CausalNet) needs it
    spot_among: tuple[Path, ...] = ()  # a clip whose apex is spotted (dataset.apex): its frames onset..offset


class Classifier:
    """The fitted network on a device: flow tensors as the flow stage stores them -> class probabilities."""

    def __init__(self, model_file: ModelFile, device: torch.device | str = "cpu") -> None:
        self.model_file = model_file
        self.device = torch.device(device)
        self.net = model_file.build_model().to(self.device)
        self.mean = torch.as_tensor(model_file.mean, dtype=torch.float32, device=self.device).reshape(1, -1, 1, 1)
        self.std = torch.as_tensor(model_file.std, dtype=torch.float32, device=self.device).reshape(1, -1, 1, 1)
        self.face_stream = model_file.model.face_stream

    @torch.no_grad()
    def probabilities(self, flow_batch: np.ndarray, onset: np.ndarray | None = None, batch: int = BATCH) -> np.ndarray:
        """(N, C, S, S) network input as the flow stage (or its view) stores it, float16 or float32 [+ (N, S, S) uint8
        onset faces] -> (N, K) float32."""
        mf = self.model_file
        want = (len(mf.input_channels), mf.input_size, mf.input_size)
        if flow_batch.ndim != 4 or tuple(flow_batch.shape[1:]) != want:
            raise ValueError(f"flow batch has shape {flow_batch.shape}; {mf.path} expects (N, {want[0]}, {want[1]}, "
                             f"{want[2]})")
        if self.face_stream and onset is None:
            raise ValueError(f"{mf.path} has a face stream (model.face_stream): onset faces are needed")
        out = []
        for s in range(0, flow_batch.shape[0], batch):
            x = torch.from_numpy(np.array(flow_batch[s : s + batch])).to(self.device, torch.float32)
            face = None
            if self.face_stream:
                face = torch.from_numpy(np.ascontiguousarray(onset[s : s + batch])).to(self.device)
                face = (face.to(torch.float32) / 255.0).unsqueeze(1)
            logits = self.net((x - self.mean) / self.std, face=face)
            out.append(torch.softmax(logits.float(), dim=-1).cpu())
        if not out:
            return np.zeros((0, len(mf.class_names)), dtype=np.float32)
        return torch.cat(out).numpy()


class Predictor:
    """``with Predictor(model_file, face_model) as p: probs = p.predict(clips)``: images in, probabilities out."""

    def __init__(self, model_file: ModelFile, face_model: str | Path, device: torch.device | str = "cpu") -> None:
        self.model_file = model_file
        self.face_model = Path(face_model)
        if not self.face_model.is_file():
            raise FileNotFoundError(f"face model not found: {self.face_model} (pass --face-model)")
        sha = atomic.file_sha256(self.face_model)
        if sha != model_file.face_model_sha256:
            raise ValueError(
                f"{self.face_model}: sha256 {sha[:12]}... is not the face model {model_file.path} was fitted with "
                f"({model_file.face_model_sha256[:12]}...); pass that face_landmarker.task with --face-model"
            )
        self.classifier = Classifier(model_file, device)
        self._detector: LandmarkDetector | None = None
        self.without_motion: list[str] = []  # clips whose onset and apex differ by no motion the flow can see

    def __enter__(self) -> Predictor:
        fp = self.model_file.faces
        self._detector = LandmarkDetector(self.face_model, max_faces=faces.MAX_FACES,
                                          min_confidence=fp.min_detection_confidence)
        self._detector.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._detector is not None:
            self._detector.__exit__(exc_type, exc, tb)
            self._detector = None

    @property
    def detector(self) -> LandmarkDetector:
        """The face landmarker the clips are aligned with (open while the predictor is)."""
        if self._detector is None:
            raise RuntimeError("use Predictor as a context manager")
        return self._detector

    @property
    def needs_offset(self) -> bool:
        """Whether the network reads the apex -> offset flow too (a whole-sequence network, CausalNet)."""
        return self.model_file.inputs == "sequence"

    def flow_of(self, clip: ClipPair) -> tuple[np.ndarray, np.ndarray]:
        """The clip's network input (C, S, S) float16 and small onset face (S, S) uint8, as the flow stage stores
        them: its flow, or the view of it the network reads (:func:`memix.io.views.clip_input`: the onset and apex
        faces, or the facial-region images, made by the code that makes them for training)."""
        fp = self.model_file.faces
        if clip.spot_among:  # the apex spotted as the faces stage spots it; the offset is the clip's last frame
            aligned = clip_align.align_onset(self.detector, clip.onset, clip.name, fp.size, fp.margin)
            if aligned is not None:
                files = dict(enumerate(clip.spot_among))
                aligned, number, _, _ = clip_align.spot_aligned(self.detector, aligned, files, clip.name, fp.size,
                                                           fp.margin)
                clip = dataclasses.replace(clip, apex=files[number], offset=clip.spot_among[-1], spot_among=())
        elif self.needs_offset and clip.offset is None:
            raise ValueError(f"clip {clip.name}: {self.model_file.model.name} reads the apex -> offset flow too; "
                             "give the clip an offset frame (offset.<ext> beside onset and apex)")
        else:
            aligned = clip_align.align_clip(self.detector, clip.onset, clip.apex, clip.name, fp.size, fp.margin)
        if aligned is None:
            raise ValueError(f"clip {clip.name}: no face found in its onset frame {clip.onset}")
        if aligned.apex_faces == 0:  # as the faces stage: a blank or damaged apex gives a flow of nothing
            raise ValueError(f"clip {clip.name}: no face found in its apex frame {clip.apex}")
        offset = clip_align.crop_like_onset(clip.offset, clip.name, aligned, fp.size) if self.needs_offset else None
        frames = ", ".join(str(f) for f in (clip.onset, clip.apex, clip.offset if offset is not None else None)
                           if f is not None)
        return self.input_of(clip.name, aligned, offset, frames)

    def input_of(
        self, name: str, aligned: clip_align.AlignedClip, offset: np.ndarray | None, frames: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`flow_of` from the aligned clip on: flow, statistics and view (``offset``: the offset face, cropped
        like the onset, for a whole-sequence network; ``frames`` names the frames in an error)."""
        with one_opencv_thread():
            try:
                result = flow.clip_tensor(self.model_file.flow, aligned.onset, aligned.apex, offset=offset)
            except ValueError as err:
                raise ValueError(f"clip {name} ({frames}): {err}") from None
        if result.max_mag < flow.NO_MOTION_PX:  # the flow stage's "no motion" rule (identical or blank frames)
            self.without_motion.append(name)
        kind, fp = self.model_file.inputs, self.model_file.faces
        if kind == "flow":
            return result.tensor, result.onset
        points = flow.points_in_tensor(faces.used_landmarks(aligned.mesh, aligned.left, aligned.right),
                                       aligned.affine.ravel(), fp.size, self.model_file.flow.size)
        return views.clip_input(kind, result.tensor, points, result.onset, result.apex, result.offset_tensor), \
            result.onset

    def predict(self, clips: Sequence[ClipPair], progress: bool | None = None) -> np.ndarray:
        """(N, K) float32 class probabilities, rows in ``clips`` order; a bar when there are many clips."""
        show = len(clips) > 1 if progress is None else progress
        self.without_motion = []
        inputs = [self.flow_of(clip) for clip in tqdm(clips, desc="predict", unit="clip", disable=not show)]
        return self.classify([clip.name for clip in clips], inputs)

    def classify(self, names: Sequence[str], inputs: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """(N, K) float32 class probabilities of network inputs from :meth:`flow_of` or :meth:`input_of`, one per
        clip name; non-finite ones are an error, clips without motion a warning."""
        if not inputs:
            return self.classifier.probabilities(np.zeros((0, 1, 1, 1), np.float16))
        probs = self.classifier.probabilities(np.stack([t for t, _ in inputs]), np.stack([o for _, o in inputs]))
        bad = np.flatnonzero(~np.isfinite(probs).all(axis=1))
        if len(bad):
            raise ValueError(f"{self.model_file.path}: NaN or infinite probabilities for clip(s) "
                             f"{_some([names[i] for i in bad], shown=3)}; nothing was written")
        if self.without_motion:
            log.warning(
                "no motion between onset and apex (largest flow under %g px, as the flow stage's 'no motion'): "
                "the prediction rests on no movement for %s", flow.NO_MOTION_PX, _some(self.without_motion))
        return probs


def _some(names: Sequence[str], shown: int = 5) -> str:
    """``a, b, c`` or ``a, b, c, ... 12 in all``, control characters escaped."""
    text = ", ".join(printable(n) for n in names[:shown])
    return text + (f", ... {len(names)} in all" if len(names) > shown else "")


def printable(text: str) -> str:
    """``text`` with every non-printable character (ANSI escapes, newlines, ...) written as its Python escape, so
    that names from a model file, sheet or folder cannot drive a terminal or split a CSV header."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def check_labels(clips: Sequence[ClipPair], class_names: Sequence[str], model_path: str | Path) -> None:
    """Refuse clips labelled with classes the model does not have (a sheet read with another class map): their
    accuracy would be a meaningless 0. Names both lists."""
    labels = sorted({c.label for c in clips if c.label is not None})
    unknown = [label for label in labels if label not in class_names]
    if unknown:
        raise ValueError(
            f"the coding sheet's classes {[printable(x) for x in labels]} are not the model's "
            f"{[printable(x) for x in class_names]} ({model_path}): {[printable(x) for x in unknown]} are unknown to "
            "it; read the sheet with the class map the model was fitted with (dataset.classes)"
        )


# ------------------------------------------------------------------------------------------------- clip sources
def clips_in_folder(folder: str | Path) -> list[ClipPair]:
    """Every folder under ``folder`` (itself included) holding ``onset.<ext>`` and ``apex.<ext>`` (and optionally
    ``offset.<ext>``, for a network on the whole sequence) is a clip.

    A clip is named by its folder's path relative to ``folder`` (``folder``'s own name for ``folder`` itself).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"clips folder not found: {folder}")
    dirs = sorted({p.parent for p in folder.rglob("*") if p.is_file() and _role(p) is not None})
    clips = []
    for d in dirs:
        found: dict[str, list[Path]] = {"onset": [], "apex": [], "offset": []}
        for p in sorted(d.iterdir()):
            role = _role(p)
            if role is not None and p.is_file():
                found[role].append(p)
        name = d.name if d == folder else d.relative_to(folder).as_posix()
        for role, files in found.items():
            if len(files) != 1 and (role != "offset" or files):
                what = "no" if not files else f"{len(files)} ({', '.join(f.name for f in files)})"
                raise ValueError(f"clip folder {d}: {what} {role} image; a clip needs one onset.<ext> and apex.<ext> "
                                 "(and at most one offset.<ext>)")
        offset = found["offset"][0] if found["offset"] else None
        clips.append(ClipPair(name, found["onset"][0], found["apex"][0], offset=offset))
    if not clips:
        raise ValueError(f"{folder}: no clip folders (a folder with onset.<ext> and apex.<ext>, e.g. onset.jpg)")
    return clips


def _role(path: Path) -> str | None:
    if path.suffix.lower() not in IMAGE_SUFFIXES or path.name.startswith("."):
        return None
    stem = path.stem.lower()
    return stem if stem in ("onset", "apex", "offset") else None


def clips_in_dataset(params: DatasetParams) -> list[ClipPair]:
    """The clips of a dataset folder and coding sheet, read exactly as the ingest stage reads them (its adapter,
    class map, patches and checks), with their sheet labels."""
    from memix.datasets.ingest import build_index

    index, _ = build_index(params)
    root = Path(params.root)
    clips = []
    for r in index.itertuples(index=False):
        clip_dir = root / str(r.frame_dir)
        spot = tuple(clip_align.clip_files(clip_dir, int(r.onset), int(r.offset)).values()) \
            if getattr(r, "apex_source", "annotated") == "spotted" else ()
        offset = None if spot else clip_dir / clip_align.offset_frame(clip_dir, int(r.apex), int(r.offset))
        clips.append(ClipPair(str(r.clip_id), root / str(r.onset_path), root / str(r.apex_path), str(r.label),
                              offset, spot))
    return clips


# ---------------------------------------------------------------------------------------------------- output
def predictions_frame(clips: Sequence[ClipPair], probs: np.ndarray, class_names: Sequence[str]) -> pd.DataFrame:
    """One row per clip: clip, label (only when every clip has one), predicted, prob_<class>..."""
    table = pd.DataFrame({"clip": [c.name for c in clips]})
    if clips and all(c.label is not None for c in clips):
        table["label"] = [c.label for c in clips]
    table["predicted"] = [class_names[k] for k in probs.argmax(axis=1)] if len(clips) else []
    for k, name in enumerate(class_names):
        table[f"prob_{name}"] = probs[:, k].astype(np.float64)
    return table


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A spreadsheet reads a cell starting with one of these as a formula (clip and class names come from folders
and sheets, so they may); such a cell is written with a leading ``'``."""


def write_csv(path: str | Path, table: pd.DataFrame) -> Path:
    """The predictions table as CSV, atomically (probabilities to 6 decimals; text cells that a spreadsheet
    would run as a formula quoted with a leading ``'``; control characters escaped, :func:`printable`)."""
    path = Path(path)
    safe = table.copy()
    for col in safe.columns:
        if safe[col].dtype == object or pd.api.types.is_string_dtype(safe[col]):
            safe[col] = [_cell(v) for v in safe[col]]
    safe.columns = [_cell(c) for c in safe.columns]
    atomic.write_text(path, safe.to_csv(index=False, float_format="%.6f", lineterminator="\n"))
    return path


def _cell(value: object) -> object:
    if not isinstance(value, str):
        return value
    return f"'{printable(value)}" if value.startswith(FORMULA_STARTS) else printable(value)


