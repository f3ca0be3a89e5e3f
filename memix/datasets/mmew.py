"""MMEW micro-expressions: ``<root>/Micro_Expression/<emotion>/<Filename>/{N}.jpg``.

The sheet ``MMEW_Micro_Exp.xlsx`` has Subject (a number), Filename (``S13-07-001``: person, emotion, sample),
OnsetFrame, ApexFrame, OffsetFrame, Action Units and Estimated Emotion. Clips are grouped in folders by
emotion, and the sheet's ``others`` are stored in a folder called ``repression``; so a clip is found by its
Filename under whichever emotion folder holds it (exactly one must), which also survives an emotion patch.
Subjects are canonical ``S13``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memix.datasets.adapter import Adapter, one_match, subject_number

MICRO = "Micro_Expression"


def canonical_subject(value: Any) -> str:
    return f"S{subject_number(value):02d}"


def clip_dir(root: Path, subject: str, filename: str, onset: int | None = None) -> Path:
    return one_match(root / MICRO, filename, "emotion")


ADAPTER = Adapter(
    name="mmew",
    canonical_subject=canonical_subject,
    clip_dir=clip_dir,
    layout=f"{MICRO}/<emotion>/<Filename>/{{N}}.jpg (the sheet's others in {MICRO}/repression/)",
    fps=90.0,
)
