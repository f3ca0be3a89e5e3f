"""Render a clip: warp the subject's neutral face by AU motion, blinks and head drift; add light and noise.

Frame i shows ``neutral(p - D_i(p))`` (a backward warp, fine for small smooth fields), where
``D_i = c_i * E + b_i * B + head_i``: E the expression field (largest vector = the clip's apex magnitude),
c_i its onset -> apex -> offset time course, B a blink, head_i a sub-pixel rigid drift of the head.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

from memix.config import SynthParams
from memix.preprocess.landmarks import LEFT_EYE, RIGHT_EYE
from memix.synth.aus import AUS, BLINK, BOTH, au_field
from memix.synth.identity import Subject
from memix.synth.plan import STREAM_NUISANCE, ClipPlan, rng_for

# Upper/lower lid landmark pairs whose distance is the eye opening a blink closes.
BLINK_LIDS = (LEFT_EYE[2:], RIGHT_EYE[2:])  # (top, bottom) lid of each eye


def time_course(n_frames: int, apex_offset: int) -> np.ndarray:
    """0 at onset, 1 at apex, back to 0 at offset, with raised-cosine (smooth) rise and fall."""
    t = np.arange(n_frames, dtype=np.float64)
    rise = 0.5 - 0.5 * np.cos(np.pi * t / apex_offset)
    fall = 0.5 + 0.5 * np.cos(np.pi * (t - apex_offset) / (n_frames - 1 - apex_offset))
    return np.where(t <= apex_offset, rise, fall)


def expression_field(subject: Subject, clip: ClipPlan) -> np.ndarray:
    """The clip's AU displacement field at apex, (F, F, 2) float32; its largest vector is ``clip.magnitude``."""
    shape = subject.image.shape[:2]
    field = np.zeros((*shape, 2), np.float32)
    for (number, side), weight in zip(clip.aus, clip.au_weights, strict=True):
        field += np.float32(weight) * au_field(AUS[number], side, subject.landmarks, shape)
    peak = float(np.sqrt((field**2).sum(axis=2)).max())
    return field * np.float32(clip.magnitude / peak)


def _smooth_path(rng: np.random.Generator, n: int, amplitude: float) -> np.ndarray:
    """A slow random 1-D trajectory over n frames whose largest excursion is ``amplitude``."""
    t = np.arange(n) / max(n - 1, 1)
    path = np.zeros(n)
    for _ in range(2):
        path += rng.normal() * np.sin(2 * np.pi * rng.uniform(0.2, 1.5) * t + rng.uniform(0, 2 * np.pi))
    peak = np.abs(path).max()
    return path * (amplitude / peak) if peak > 0 else path


def render_clip(subject: Subject, clip: ClipPlan, params: SynthParams) -> Iterator[np.ndarray]:
    """Yield the clip's frames, onset to offset, as uint8 RGB (F, F, 3)."""
    rng = rng_for(params.seed, STREAM_NUISANCE, clip.subject, clip.index)
    n = clip.n_frames
    size = subject.image.shape[0]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)

    expression = expression_field(subject, clip)
    course = time_course(n, clip.apex_offset)

    # Head drift: translation and rotation about the face centre, moving the head only.
    drift = rng.uniform(0.3, 1.0) * params.head_drift_px
    dx, dy = _smooth_path(rng, n, drift), _smooth_path(rng, n, drift)
    angles = np.deg2rad(_smooth_path(rng, n, rng.uniform(0.3, 1.0) * params.head_rotation_deg))
    cx, cy = (float(v) for v in subject.landmarks.mean(axis=0))

    # Blink: the upper lids close partly and reopen; it may start before the clip or run past its end.
    blink = np.zeros(n)
    blink_field = None
    if rng.random() < params.blink_rate:
        opening = float(np.mean([np.linalg.norm(subject.landmarks[a] - subject.landmarks[b]) for a, b in BLINK_LIDS]))
        blink_field = au_field(BLINK, BOTH, subject.landmarks, (size, size)) * np.float32(
            rng.uniform(0.3, 0.8) * opening
        )
        length = rng.uniform(0.6, 1.5) * n
        start = rng.uniform(-0.5 * length, n - 0.5 * length)
        phase = (np.arange(n) - start) / length
        blink = np.where((phase > 0) & (phase < 1), 0.5 - 0.5 * np.cos(2 * np.pi * phase), 0.0)

    # Illumination flicker (mains-like sinusoid plus jitter) and sensor noise.
    freq, phi = rng.uniform(0.05, 0.45), rng.uniform(0, 2 * np.pi)
    gain = 1 + params.flicker * (0.7 * np.sin(2 * np.pi * freq * np.arange(n) + phi) + 0.3 * rng.normal(size=n))

    # Backward map of frame i: p - D_i(p), accumulated in place in float32 (the loop is the hot path).
    terms_x = [np.ascontiguousarray(expression[..., 0])]
    terms_y = [np.ascontiguousarray(expression[..., 1])]
    mask = subject.head_mask
    terms_x += [mask * (xs - cx), mask * (ys - cy), mask]  # rotation cos/sin parts and translation
    terms_y += [mask * (ys - cy), mask * (xs - cx), mask]
    if blink_field is not None:
        terms_x.append(np.ascontiguousarray(blink_field[..., 0]))
        terms_y.append(np.ascontiguousarray(blink_field[..., 1]))
    map_x, map_y, tmp = (np.empty_like(xs) for _ in range(3))
    noise = np.empty(subject.image.shape, np.float32)
    for i in range(n):
        cos, sin = float(np.cos(angles[i])), float(np.sin(angles[i]))
        # D_x = c E_x + m [(cos-1)(x-cx) - sin (y-cy) + dx] + b B_x
        # D_y = c E_y + m [(cos-1)(y-cy) + sin (x-cx) + dy] + b B_y
        weights_x = [float(course[i]), cos - 1, -sin, float(dx[i]), float(blink[i])]
        weights_y = [float(course[i]), cos - 1, sin, float(dy[i]), float(blink[i])]
        for out, base, terms, weights in ((map_x, xs, terms_x, weights_x), (map_y, ys, terms_y, weights_y)):
            out[:] = base
            for term, weight in zip(terms, weights[: len(terms)], strict=True):  # no blink: its weight is unused
                if weight != 0.0:
                    np.multiply(term, weight, out=tmp)
                    out -= tmp
        frame = cv2.remap(subject.image, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        frame *= float(255.0 * gain[i])
        if params.noise_sd > 0:
            rng.standard_normal(out=noise, dtype=np.float32)
            noise *= float(params.noise_sd)
            frame += noise
        np.rint(frame, out=frame)
        np.clip(frame, 0, 255, out=frame)
        yield frame.astype(np.uint8)
