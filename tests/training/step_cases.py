"""The grouped step the host-sync and one-graph tests inspect: two units of unequal size, dropout on."""

from __future__ import annotations

import dataclasses

from memix.config import Params, parse_params
from memix.io import flowset
from memix.training import loop
from memix.training.folds import make_folds


def step_params(face_stream: bool, batch_size: int) -> Params:
    return parse_params({
        "model": {"patch_size": 4, "embed_dim": 16, "depth": 2, "num_heads": 2, "drop_rate": 0.2,
                  "face_stream": face_stream},
        "train": {"epochs": 1, "batch_size": batch_size, "device": "cpu", "threads": 1},
        "mixing": {"manifold_mixup": {"blocks": [0, 1]}},
    })


def unequal_units(data: flowset.FlowSet) -> list[loop.Unit]:
    """Two folds of seed 0, the second cut to 9 training clips: it sits the last step(s) out."""
    folds = make_folds(data.index)[:2]
    folds[1] = dataclasses.replace(folds[1], train_rows=folds[1].train_rows[:9])
    return [loop.Unit(0, f) for f in folds]
