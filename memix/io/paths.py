"""Where each stage reads and writes, relative to the project root (mirrors dvc.yaml)."""

from __future__ import annotations

from pathlib import Path

CODE = Path("data/code")
PARAMS_CHECKED = Path("data/params_checked.txt")
FACE_MODEL = Path("models/face_landmarker.task")
SYNTH_ROOT = Path("data/raw/synthetic")
INTERIM = Path("data/interim")
CLIPS = INTERIM / "clips.parquet"
FACES = Path("data/processed/faces")
FLOW = Path("data/processed/flow")
FLOW_MONTAGE = Path("reports/flow_montage.png")
KEYFRAME_NOISE = Path("data/processed/keyframe_noise")  # <n>/: the flow set at key-frame noise level n; levels.json
KEYFRAME_NOISE_LEVELS = KEYFRAME_NOISE / "levels.json"
TRAIN = Path("data/train")
EVAL = Path("reports/eval")
COMPARE = Path("reports")
MODELS = Path("models")
ARCH = Path("data/arch")  # the architecture comparison's runs: data/arch/<run>/, data/arch/runs.json
ARCH_PARAMS = Path("data/arch_params")  # check_params' <run>.json per run: the values arch@<run> reads (its params)
MODELS_TABLE = Path("reports/models_table.md")
TRANSFER = Path("data/transfer")  # the cross-dataset protocols' runs: data/transfer/<protocol>/<method>/
TRANSFER_REPORTS = Path("reports/transfer")  # one table per protocol: reports/transfer/<protocol>.md and .json


def train_dir(method: str) -> Path:
    """Predictions, histories, curves, DVCLive runs and resume checkpoints of one method's LOSO runs (all seeds)."""
    return TRAIN / method


def transfer_dir(protocol: str, method: str) -> Path:
    """One method's runs under a cross-dataset protocol (every seed): the train stage's outputs, same files."""
    return TRANSFER / protocol / method


def keyframe_noise_dir(level: int) -> Path:
    """The flow set of key-frame noise level ``level`` (onset and apex shifted by up to ``level`` frames)."""
    return KEYFRAME_NOISE / str(int(level))


def eval_dir(method: str) -> Path:
    """One method's evaluation over all its seeds (metrics, per-subject table, selected rows, confusion)."""
    return EVAL / method


def model_file(method: str) -> Path:
    """The model ``fit`` trains on every subject with ``method``, for ``memix predict`` and ``memix export``."""
    return MODELS / f"{method}.pt"


def arch_dir(run: str) -> Path:
    return ARCH / run
