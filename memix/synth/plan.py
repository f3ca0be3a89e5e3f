"""The dataset plan: which subject shows which clip, its AUs, frame numbers and apex magnitude.

Everything random is drawn from generators keyed by (seed, stream, subject[, clip]), so a clip's content
does not depend on the order clips are generated in, and the plan can be rebuilt (e.g. by tests) without
rendering a frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memix.config import SynthParams
from memix.synth.aus import format_aus
from memix.synth.classes import class_counts, sample_aus
from memix.synth.objective import objective_class

# Generator streams: keep them distinct so adding draws to one never shifts another.
STREAM_DATASET, STREAM_NAMES, STREAM_CLIP, STREAM_NUISANCE, STREAM_IDENTITY, STREAM_INTENSITY = range(6)


def rng_for(seed: int, stream: int, *keys: int) -> np.random.Generator:
    """A generator for one (seed, stream, keys...) tuple, independent of every other tuple."""
    return np.random.default_rng([seed, stream, *keys])


@dataclass(frozen=True)
class ClipPlan:
    """One micro-expression clip as it appears on the sheet, plus the truth the renderer applies."""

    subject: int  # 1-based, the sheet's Subject
    index: int  # position among the subject's clips (keys its generators)
    filename: str  # EPxx_yy[f]
    emotion: str
    aus: tuple[tuple[int, str], ...]  # (AU number, side B/R/L)
    au_weights: tuple[float, ...]  # relative strength of each AU before the field is scaled
    magnitude: float  # largest displacement of the expression field at apex, pixels
    onset: int  # absolute frame number of the first frame
    apex_offset: int  # frames from onset to apex
    n_frames: int

    @property
    def apex(self) -> int:
        return self.onset + self.apex_offset

    @property
    def offset(self) -> int:
        return self.onset + self.n_frames - 1

    @property
    def action_units(self) -> str:
        return format_aus(list(self.aus))

    @property
    def objective_class(self) -> int:
        """MEGC 2018's objective class (1-7) of the clip's AUs (memix.synth.objective)."""
        return objective_class(self.aus)

    @property
    def folder(self) -> str:
        return f"sub{self.subject:02d}/{self.filename}"


def clips_per_subject(params: SynthParams) -> list[int]:
    """Uneven clip counts per subject (as in CASME II), each at least min(3, clips // subjects)."""
    if params.clips < params.subjects:
        raise ValueError(f"synth.clips ({params.clips}) must be at least synth.subjects ({params.subjects})")
    rng = rng_for(params.seed, STREAM_DATASET)
    floor = min(3, params.clips // params.subjects)
    weights = rng.gamma(1.5, size=params.subjects)
    extra = rng.multinomial(params.clips - floor * params.subjects, weights / weights.sum())
    return [floor + int(e) for e in extra]


def subject_intensity(params: SynthParams, subject: int) -> float:
    """Multiplier on a subject's expression magnitudes (some people move more)."""
    return float(np.exp(rng_for(params.seed, STREAM_INTENSITY, subject).normal(0.0, params.subject_intensity_sd)))


def _filenames(params: SynthParams, subject: int, n: int) -> list[str]:
    """CASME II-style names EPxx_yy, unique per subject; yy counts clips of the same episode xx."""
    rng = rng_for(params.seed, STREAM_NAMES, subject)
    seen: dict[int, int] = {}
    names = []
    for _ in range(n):
        episode = int(rng.integers(1, 20))
        seen[episode] = seen.get(episode, 0) + 1
        suffix = "f" if rng.random() < 0.15 else ""
        names.append(f"EP{episode:02d}_{seen[episode]:02d}{suffix}")
    return names


def _magnitude(params: SynthParams, rng: np.random.Generator, intensity: float) -> float:
    lo, hi = params.apex_px_min, params.apex_px_max
    base = float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if lo > 0 else float(rng.uniform(lo, hi))
    return float(np.clip(base * intensity, lo, hi))


def plan_clip(params: SynthParams, subject: int, index: int, filename: str, emotion: str) -> ClipPlan:
    """Draw one clip's AUs, strength and timing from its own generator."""
    rng = rng_for(params.seed, STREAM_CLIP, subject, index)
    aus = sample_aus(emotion, rng, params.au_dropout, params.distractor_au_rate, params.unilateral_rate)
    weights = tuple(float(w) for w in rng.uniform(0.5, 1.0, len(aus)))
    magnitude = _magnitude(params, rng, subject_intensity(params, subject))
    n_frames = int(rng.integers(params.frames_min, params.frames_max + 1))
    apex = int(round(rng.uniform(0.3, 0.6) * (n_frames - 1)))
    apex = min(max(apex, 1), n_frames - 2)
    onset = int(rng.integers(params.first_frame_min, params.first_frame_max + 1))
    return ClipPlan(
        subject=subject,
        index=index,
        filename=filename,
        emotion=emotion,
        aus=tuple(aus),
        au_weights=weights,
        magnitude=magnitude,
        onset=onset,
        apex_offset=apex,
        n_frames=n_frames,
    )


def plan_dataset(params: SynthParams, proportions: dict[str, int] | None = None) -> list[ClipPlan]:
    """Every clip of the dataset, sorted by subject then filename (the sheet's row order); ``proportions``
    weigh the emotion recipes (CASME II's by default)."""
    per_subject = clips_per_subject(params)
    counts = class_counts(params.clips, proportions)
    labels = np.array([e for e, n in counts.items() for _ in range(n)])
    labels = labels[rng_for(params.seed, STREAM_DATASET, 1).permutation(len(labels))]
    clips = []
    start = 0
    for subject, n in enumerate(per_subject, start=1):
        for index, (name, emotion) in enumerate(
            zip(_filenames(params, subject, n), labels[start : start + n], strict=True)
        ):
            clips.append(plan_clip(params, subject, index, name, str(emotion)))
        start += n
    return sorted(clips, key=lambda c: (c.subject, c.filename))
