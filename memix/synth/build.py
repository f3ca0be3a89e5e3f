"""Generate the whole synthetic CASME II-shaped dataset into one folder, atomically."""

from __future__ import annotations

from pathlib import Path

import cv2
from tqdm import tqdm

from memix.config import SynthParams
from memix.io.atomic import atomic_path
from memix.synth.identity import load_base_face, make_subject
from memix.synth.plan import STREAM_IDENTITY, plan_dataset, rng_for
from memix.synth.render import render_clip
from memix.synth.sheet import sheet_row, write_sheet

SHEET_FILE = "CASME2-coding-synthetic.xlsx"


def generate(params: SynthParams, out_dir: Path, model_path: Path) -> None:
    """Write ``subNN/EPxx_yy/img{N}.jpg`` sequences and the coding sheet to ``out_dir``.

    The folder is built at a temp path and renamed at the end, so a failure leaves no partial dataset.
    Equal params give byte-identical files (JPEG and the pinned .xlsx are deterministic).
    """
    clips = plan_dataset(params)
    base = load_base_face(Path(model_path))
    encode = [int(cv2.IMWRITE_JPEG_QUALITY), params.jpeg_quality]
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        subject = None
        for clip in tqdm(clips, desc="synth clips", unit="clip"):
            if subject is None or subject.number != clip.subject:
                rng = rng_for(params.seed, STREAM_IDENTITY, clip.subject)
                subject = make_subject(base, clip.subject, params.frame_size, params.face_size, rng)
            folder = tmp / clip.folder
            folder.mkdir(parents=True)
            for number, frame in enumerate(render_clip(subject, clip, params), start=clip.onset):
                ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), encode)
                if not ok:
                    raise RuntimeError(f"JPEG encoding failed for {clip.folder}/img{number}.jpg")
                (folder / f"img{number}.jpg").write_bytes(buf.tobytes())
        rows = [sheet_row(c.subject, c.filename, c.onset, c.apex, c.offset, c.action_units, c.emotion) for c in clips]
        write_sheet(tmp / SHEET_FILE, rows)
