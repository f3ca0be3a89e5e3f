"""Evaluation refuses predictions with a NaN probability (a diverged or damaged run), naming the file and clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from memix.evaluation import evaluate


def _predictions(path: Path, nan_row: int | None) -> Path:
    rows = []
    for seed in (0, 1):
        for fold, subject in enumerate(("sub01", "sub02")):
            for c in range(2):
                for epoch in (1, 2):
                    true = (fold + c) % 2
                    rows.append({
                        "seed": seed, "clip_id": f"{subject}/EP{c:02d}", "subject": subject, "dataset": "casme2",
                        "fold": fold, "epoch": epoch, "true": true, "label": ["happiness", "disgust"][true],
                        "pred": true, "prob_0": 0.9 if true == 0 else 0.1, "prob_1": 0.1 if true == 0 else 0.9,
                    })
    df = pd.DataFrame(rows).astype({"prob_0": np.float32, "prob_1": np.float32})
    if nan_row is not None:
        df.loc[nan_row, ["prob_0", "prob_1"]] = np.nan
    df.to_parquet(path)
    return path


def test_nan_probability_is_an_error_naming_file_and_clip(tmp_path: Path) -> None:
    evaluate.read_predictions(_predictions(tmp_path / "clean.parquet", None))
    path = _predictions(tmp_path / "predictions.parquet", nan_row=9)  # seed 1, sub01/EP00, epoch 2
    with pytest.raises(ValueError) as info:
        evaluate.read_predictions(path)
    message = str(info.value)
    assert str(path) in message and "'sub01/EP00'" in message and "seed 1" in message and "NaN" in message
