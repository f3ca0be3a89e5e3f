"""Tiny flow sets for tests (a real flow stage output, made without running the flow stage)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from memix.io import flowset, shards

CHANNELS = ["u", "v", "strain"]
SIZE = 16
SUBJECTS = 4
CLIPS_PER_SUBJECT = 5
CLASSES = ["happiness", "disgust", "surprise"]


def make_flow_set(
    out_dir: Path, seed: int = 0, changed_subject: str | None = None, sources: tuple[str, ...] = ()
) -> Path:
    """A flow set: 4 subjects x 5 clips, 3 x 16 x 16, with onset and apex faces; the class sets the motion's
    direction.

    Class 0 moves down, class 1 up, class 2 spreads sideways (flip-invariant, like the others' labels).
    ``changed_subject`` gets different flow and labels (for the leakage test); everything else is identical.
    ``sources``: a composite's, subjects spread over them in turn (``dataset`` column; ids ``<source>/subNN``, as a
    composite's are; ``changed_subject`` names the bare ``subNN``).
    """
    rng = np.random.default_rng(seed)
    rows, flows = [], []
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    blob = np.exp(-((yy - 8) ** 2 + (xx - 8) ** 2) / 20.0)
    for s in range(SUBJECTS):
        subject = f"sub{s + 1:02d}"
        for c in range(CLIPS_PER_SUBJECT):
            label_id = (s + c) % len(CLASSES)
            strength = rng.uniform(1.0, 2.0)
            flow = rng.normal(0, 0.2, size=(3, SIZE, SIZE))
            if label_id == 2:
                flow[0] += strength * blob * np.sign(xx - 7.5)
            else:
                flow[1] += strength * blob * (1 if label_id == 0 else -1)
            flow[2] = np.abs(flow[2]) + blob
            if subject == changed_subject:
                flow = flow * 7.0 + 3.0
                label_id = (label_id + 1) % len(CLASSES)
            row = {"clip_id": f"{subject}/EP{c:02d}", "subject": subject, "label": CLASSES[label_id],
                   "label_id": label_id}
            if sources:
                source = sources[s % len(sources)]
                row = {**row, "clip_id": f"{source}/{row['clip_id']}", "subject": f"{source}/{subject}",
                       "dataset": source}
            rows.append(row)
            flows.append(flow.astype(np.float16))
    flow = np.stack(flows)
    index = pd.DataFrame(rows)
    f64 = flow.astype(np.float64)
    for i, ch in enumerate(CHANNELS):
        index[f"sum_{ch}"] = f64[:, i].sum(axis=(1, 2))
        index[f"sumsq_{ch}"] = (f64[:, i] ** 2).sum(axis=(1, 2))
    index["n_pixels"] = SIZE * SIZE
    onset = rng.integers(0, 256, size=(len(index), SIZE, SIZE), dtype=np.uint8)
    # the apex face: the onset moved one pixel the way the class's flow goes (down, up, sideways)
    moves = {0: (1, 0), 1: (-1, 0), 2: (0, 1)}
    apex = np.stack([np.roll(o, moves[int(lab)], axis=(0, 1)) for o, lab in zip(onset, index["label_id"], strict=True)])
    flowset.write(out_dir, index, {"flow": flow, "onset": onset, "apex": apex}, {"channels": CHANNELS}, shard_mb=64)
    return out_dir


def make_region_flow_set(out_dir: Path, seed: int = 0) -> Path:
    """:func:`make_flow_set` with what the region views read too: five points per clip (in the 16 px tensors'
    pixels, as the flow stage writes them) and an apex -> offset flow (the motion going back, a little weaker)."""
    src = make_flow_set(out_dir.parent / f"{out_dir.name}_plain", seed=seed)
    index, arrays = shards.load(src)
    index = index.drop(columns=["shard", "row"])
    rng = np.random.default_rng(seed + 1)
    base = np.array([5.0, 6.0, 10.5, 6.0, 8.0, 8.5, 6.0, 11.0, 10.0, 11.0])  # eyes, nose, mouth corners (x, y)
    index["landmarks"] = [list(base + rng.normal(0, 0.4, size=10)) for _ in range(len(index))]
    arrays = {k: np.array(v) for k, v in arrays.items()}
    arrays["flow_offset"] = (arrays["flow"].astype(np.float32) * -0.7).astype(np.float16)
    flowset.write(out_dir, index, arrays, {"channels": CHANNELS}, shard_mb=64)
    return out_dir


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by its relative path: what byte-identity checks of stage outputs compare."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
