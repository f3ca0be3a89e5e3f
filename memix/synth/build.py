"""Generate the whole synthetic dataset (CASME II's layout, another adapter's, or several) atomically."""

from __future__ import annotations

import logging
from pathlib import Path

from tqdm import tqdm

from memix.config import SynthParams
from memix.io.atomic import atomic_path
from memix.synth import layouts
from memix.synth.identity import BaseFace, load_base_face, make_subject
from memix.synth.plan import STREAM_IDENTITY, plan_dataset, rng_for
from memix.synth.render import render_clip

SHEET_FILE = layouts.CASME2_SHEET

log = logging.getLogger(__name__)


def generate(params: SynthParams, out_dir: Path, model_path: Path) -> None:
    """Write the dataset in ``synth.layout`` to ``out_dir``: by default ``subNN/EPxx_yy/img{N}.jpg`` sequences
    and CASME II's coding sheet; a list of layouts writes one sub-folder each (``out_dir/<layout>``).

    The folder is built at a temp path and renamed at the end, so a failure leaves no partial dataset.
    Equal params give byte-identical files (JPEG, BMP and the pinned .xlsx are deterministic).
    """
    several = not isinstance(params.layout, str)
    chosen = [layouts.get(name) for name in (params.layout if several else [params.layout])]
    base = load_base_face(Path(model_path))
    with atomic_path(out_dir, owned=_earlier_synth) as tmp:
        tmp.mkdir()
        for layout in chosen:
            root = tmp / layout.name if several else tmp
            root.mkdir(exist_ok=True)
            n_clips, n_subjects, n_frames = _write_layout(layout, params, base, root)
            where = out_dir / layout.name if several else out_dir
            log.info(
                "synth: %d clips of %d subjects (%d frames) in %s's layout -> %s",
                n_clips, n_subjects, n_frames, layout.name, where,
            )  # fmt: skip


def _earlier_synth(folder: Path) -> bool:
    """A folder an earlier synth run wrote (its marker at the top or in each layout's folder), or an empty one:
    only such a folder is replaced."""
    entries = [p for p in folder.iterdir() if p.name != ".gitignore"]
    return not entries or (folder / layouts.MARKER).is_file() or any((p / layouts.MARKER).is_file() for p in entries)


def _write_layout(layout: layouts.Layout, params: SynthParams, base: BaseFace, root: Path) -> tuple[int, int, int]:
    """Plan, render and store one layout's clips under ``root``; returns (clips, subjects, frames)."""
    lp = layout.params(params)
    clips = plan_dataset(lp, layout.proportions)
    placed = layout.place(clips)
    n_frames = 0
    subject = None
    for place in tqdm(placed, desc="synth clips" if layout.name == "casme2" else f"synth {layout.name}", unit="clip"):
        clip = place.clip
        if subject is None or subject.number != clip.subject:
            rng = rng_for(lp.seed, STREAM_IDENTITY, clip.subject)
            subject = make_subject(base, clip.subject, lp.frame_size, lp.face_size, rng)
        folder = root / place.folder
        folder.mkdir(parents=True, exist_ok=True)  # CAS(ME)^3: two clips of a recording share a folder
        for number, frame in enumerate(render_clip(subject, clip, lp), start=place.onset):
            name = place.frame_name.format(n=number)
            (folder / name).write_bytes(layout.encode(frame, lp.jpeg_quality, f"{place.folder}/{name}"))
            n_frames += 1
    layout.finish(root, lp, placed)
    return len(clips), len({c.subject for c in clips}), n_frames
