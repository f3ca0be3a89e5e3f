"""Where each stage reads and writes, relative to the project root (mirrors dvc.yaml)."""

from __future__ import annotations

from pathlib import Path

FACE_MODEL = Path("models/face_landmarker.task")
SYNTH_ROOT = Path("data/raw/synthetic")
INTERIM = Path("data/interim")
CLIPS = INTERIM / "clips.parquet"
FACES = Path("data/processed/faces")
FLOW = Path("data/processed/flow")
FLOW_MONTAGE = Path("reports/flow_montage.png")
TRAIN = Path("data/train")
EVAL = Path("reports/eval")
COMPARE = Path("reports")


def train_dir(method: str, seed: int) -> Path:
    """Predictions, DVCLive logs and resume checkpoints of one (method, seed) LOSO run."""
    return TRAIN / method / f"seed{seed}"


def eval_dir(method: str, seed: int) -> Path:
    return EVAL / method / f"seed{seed}"
