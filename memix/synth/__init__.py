"""A synthetic CASME II-shaped dataset: real-face subjects showing AU-like micro-motions.

``generate(params, out_dir, model_path)`` writes CASME II's layout (``subNN/EPxx_yy/img{N}.jpg``) and
coding sheet, so the CASME II adapter reads it unchanged. Modules: ``aus`` (AU displacement fields),
``classes`` (emotion recipes and proportions), ``identity`` (subjects from one photo), ``plan`` (who shows
what, seeded per clip), ``render`` (frames), ``sheet`` (deterministic .xlsx), ``build`` (the entry point).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memix.config import SynthParams

__all__ = ["generate"]


def generate(params: SynthParams, out_dir: Path, model_path: Path) -> None:
    """Build the dataset in a temp folder beside ``out_dir`` and rename it into place (see ``build``)."""
    from memix.synth.build import generate as _generate

    _generate(params, Path(out_dir), Path(model_path))
