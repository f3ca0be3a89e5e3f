"""Action units as small, smooth displacement fields anchored on MediaPipe face-mesh landmarks.

Each AU is a few Gaussian "handles": a landmark, a direction in the face's own frame and a weight. A
field is the weighted sum of the handles' Gaussian bumps, so motion sits where the muscle acts (AU12
at the mouth corners, AU1 at the inner brows) and fades within a fraction of the face size.

Sides follow FACS/CASME II: ``R`` is the subject's right, which appears in the image's LEFT half
(MediaPipe indices such as 33, 61, 159), ``L`` the subject's left (image right: 263, 291, 386).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memix.preprocess.landmarks import eye_centres

# Sides an AU acts on. Bilateral AUs are written bare ("12"), one-sided ones with a prefix ("L12").
BOTH = "B"
SIDES = ("R", "L")


@dataclass(frozen=True)
class Handle:
    """One Gaussian bump: landmark on the subject's right (image left), its mirror, direction and weight.

    ``lateral`` > 0 moves away from the face's midline, ``down`` > 0 towards the chin. A midline handle has
    ``right == left``; it acts at half weight when only one side of the AU is active.
    """

    right: int
    left: int
    lateral: float
    down: float
    weight: float = 1.0

    @property
    def midline(self) -> bool:
        return self.right == self.left


@dataclass(frozen=True)
class AUSpec:
    """An action unit: its handles and the width of its bumps as a fraction of the face size."""

    number: int
    name: str
    handles: tuple[Handle, ...]
    sigma: float


def _h(right: int, left: int, lateral: float, down: float, weight: float = 1.0) -> Handle:
    return Handle(right, left, lateral, down, weight)


AUS: dict[int, AUSpec] = {
    spec.number: spec
    for spec in (
        AUSpec(
            1, "inner brow raiser", (_h(55, 285, -0.15, -1), _h(107, 336, -0.15, -1), _h(65, 295, 0, -1, 0.5)), 0.06
        ),
        AUSpec(2, "outer brow raiser", (_h(46, 276, 0.1, -1), _h(70, 300, 0.1, -1), _h(105, 334, 0, -1, 0.6)), 0.06),
        AUSpec(4, "brow lowerer", (_h(55, 285, -0.6, 0.8), _h(107, 336, -0.6, 0.8), _h(65, 295, -0.3, 0.9, 0.7)), 0.06),
        AUSpec(6, "cheek raiser", (_h(117, 346, 0.1, -1), _h(50, 280, 0.1, -1, 0.8), _h(145, 374, 0, -1, 0.4)), 0.08),
        AUSpec(9, "nose wrinkler", (_h(129, 358, -0.2, -1), _h(48, 278, -0.2, -1), _h(6, 6, 0, -0.6, 0.5)), 0.055),
        AUSpec(10, "upper lip raiser", (_h(37, 267, 0, -1), _h(0, 0, 0, -1, 0.8)), 0.06),
        AUSpec(12, "lip corner puller", (_h(61, 291, 0.8, -0.6), _h(57, 287, 0.8, -0.6, 0.7)), 0.06),
        AUSpec(14, "dimpler", (_h(61, 291, -1, 0.1), _h(212, 432, -1, 0, 0.6)), 0.05),
        AUSpec(15, "lip corner depressor", (_h(61, 291, 0.2, 1), _h(57, 287, 0.2, 1, 0.7)), 0.06),
        AUSpec(
            17,
            "chin raiser",
            (_h(199, 199, 0, -1), _h(175, 175, 0, -1, 0.7), _h(17, 17, 0, -1, 0.8), _h(84, 314, 0, -1, 0.6)),
            0.07,
        ),
        AUSpec(
            25,
            "lips part",
            (_h(14, 14, 0, 1), _h(17, 17, 0, 1, 0.6), _h(84, 314, 0, 1, 0.6), _h(13, 13, 0, -0.5)),
            0.05,
        ),
        AUSpec(26, "jaw drop", (_h(17, 17, 0, 1), _h(199, 199, 0, 1), _h(152, 152, 0, 1), _h(84, 314, 0, 1, 0.7)), 0.1),
    )
}

# Not an AU of any class: the upper eyelid closing. Used for blinks, which real clips show in any class.
BLINK = AUSpec(45, "blink", (_h(159, 386, 0, 1),), 0.045)

# AUs that CASME II's coders mark as one-sided at times (L/R prefix); the rest act on the midline.
LATERAL_AUS = frozenset({1, 2, 4, 6, 9, 10, 12, 14, 15})


def au_landmarks(number: int) -> list[int]:
    """Mesh indices of the handles of AU ``number`` (both sides)."""
    spec = AUS[number]
    return sorted({i for h in spec.handles for i in (h.right, h.left)})


def face_axes(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The face's own frame: centre, unit x towards the image's right eye, unit y towards the chin."""
    left, right = eye_centres(landmarks)
    ex = (right - left) / max(float(np.linalg.norm(right - left)), 1e-6)
    ey = np.array([-ex[1], ex[0]])
    centre = landmarks[:, :2].mean(axis=0)
    return centre, ex.astype(np.float64), ey.astype(np.float64)


def face_scale(landmarks: np.ndarray) -> float:
    """Size of the face in pixels: the larger side of the landmarks' bounding box."""
    return float(max(np.ptp(landmarks[:, 0]), np.ptp(landmarks[:, 1])))


def au_field(spec: AUSpec, sides: str, landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Displacement field (H, W, 2) of one AU at unit strength: its largest vector is 1 px long.

    ``sides`` is ``"B"`` (both), ``"R"`` or ``"L"``; ``landmarks`` are (478, >=2) pixel coordinates.
    """
    h, w = shape
    _, ex, ey = face_axes(landmarks)
    sigma = spec.sigma * face_scale(landmarks)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    field = np.zeros((h, w, 2), np.float32)
    active = SIDES if sides == BOTH else (sides,)
    for handle in spec.handles:
        for side in SIDES:
            if handle.midline and side == "L":
                continue  # a midline handle is one point
            if not handle.midline and side not in active:
                continue
            idx = handle.right if side == "R" else handle.left
            outward = -ex if side == "R" else ex
            direction = handle.lateral * outward + handle.down * ey
            weight = handle.weight * (0.5 if handle.midline and sides != BOTH else 1.0)
            px, py = landmarks[idx, :2]
            bump = np.exp(-((xs - px) ** 2 + (ys - py) ** 2) / np.float32(2 * sigma**2)) * np.float32(weight)
            field += bump[..., None] * direction.astype(np.float32)
    peak = float(np.sqrt((field**2).sum(axis=2)).max())
    if peak <= 0:
        raise ValueError(f"AU{spec.number} ({sides}) gives no motion: check the landmarks")
    return field / np.float32(peak)


def format_aus(aus: list[tuple[int, str]]) -> str:
    """CASME II-style AU string: sorted by number, one-sided AUs prefixed, e.g. ``4+L10`` or ``1+2``."""
    parts = []
    for number, side in sorted(aus):
        parts.append(f"{'' if side == BOTH else side}{number}")
    return "+".join(parts)


def parse_aus(text: str | int) -> list[tuple[int, str]]:
    """Inverse of :func:`format_aus` (accepts the int a sheet cell holds for a single bilateral AU)."""
    out = []
    for part in str(text).split("+"):
        part = part.strip()
        side = BOTH
        if part[:1] in SIDES:
            side, part = part[0], part[1:]
        if not part.isdigit():
            raise ValueError(f"cannot read AU {part!r} in {text!r}")
        out.append((int(part), side))
    return out
