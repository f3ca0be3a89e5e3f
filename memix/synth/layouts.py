"""Where and how each dataset keeps its clips: the synthetic set written in any adapter's layout.

The clips themselves (subjects, AU recipes, motion, nuisances) come from the same plan and renderer for every
layout; a layout decides the emotion proportions and names (an AU recipe shows as SAMM's ``Anger`` or SMIC's
``negative``), the folder and file-name patterns, the frame numbering, the image format and the coding sheet.
Each follows the real dataset's conventions (DATASETS.md), so its adapter reads it unchanged:

* ``casme2``: ``subNN/EPxx_yy/img{N}.jpg`` and CASME II's sheet (the default), and beside it the objective
  classes in a workbook of their own, as CASME II's were released (``CASME2-ObjectiveClasses.xlsx``);
* ``samm``: ``006/006_<inducement>_<n>/006_{NNNN|NNNNN}.jpg``, greyscale, 4- or 5-digit frame numbers
  (by subject), "Other" and "Others" both used, 13 notes rows above the sheet's header, the objective class in
  its ``Objective Classes`` column;
* ``smic``: ``HS/sN/micro/<emotion>/sN_<ne|po|sur>_NN/image{NNNNNN}.bmp``, no coding sheet, no apex; a
  ``memix-synth.json`` at the root marks it synthetic (the other layouts' sheets name memix.synth as author);
* ``casme3``: ``spNO.N/<letter>/color/{N}.jpg``, two micro-expressions per recording (same folder, later
  onset), subjects spelled ``spNo.N`` in the sheet for even N, the sheet in a worksheet called ``label`` with
  an ``Objective class`` column;
* ``mmew``: ``Micro_Expression/<emotion>/SNN-EE-KKK/{N}.jpg`` with the sheet's ``others`` in ``repression/``,
  frame numbers starting near 1.

A layout other than casme2 draws its own plan from a seed derived from ``synth.seed`` and the layout, so a
composite of several layouts has different subjects in each (as different datasets do). Objective classes (MEGC
2018) follow from each clip's AUs by Davison et al.'s table (:mod:`memix.synth.objective`), written as numbers
1-7 as the releases hold them.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from memix.config import SynthParams
from memix.synth.classes import CASME2_COUNTS
from memix.synth.plan import ClipPlan
from memix.synth.sheet import sheet_row, write_sheet

CASME2_SHEET = "CASME2-coding-synthetic.xlsx"
CASME2_OBJECTIVE = "CASME2-ObjectiveClasses-synthetic.xlsx"  # named like the release's: read as its class list
SAMM_SHEET = "SAMM_Micro_FACS_Codes_v2-synthetic.xlsx"
CASME3_SHEET = "cas(me)3_part_A_ME_label_JpgIndex_v2-synthetic.xlsx"
MMEW_SHEET = "MMEW_Micro_Exp-synthetic.xlsx"
MARKER = "memix-synth.json"  # read by memix.datasets.published (SYNTH_MARKER)

SAMM_HEADER = (
    "Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration", "Type",
    "Action Units", "Estimated Emotion", "Objective Classes", "Notes",
)  # fmt: skip
SAMM_NOTES = [
    ["SAMM micro-movement FACS codes (synthetic, written by memix.synth)"],
    ["Version 2 layout"],
    [None],
    ["Notes:"],
    ["Onset, Apex and Offset are frame numbers of the long recording"],
    [None],
    ["Inducement codes refer to the stimuli"],
    [None],
    ["Type: Micro - 1/2"],
    [None],
    ["Objective classes group the AUs"],
    [None],
    [None],
]
# CASME2-ObjectiveClasses.xlsx as MER code reads it (IcedDoggie/Micro-Expression-with-Deep-Learning, utilities.py):
# Subject, Filename and "Objective Class" by name, and the class in the 7th column, where the reader it shares with
# CASME2_label_Ver_2.xls finds that sheet's emotion; the frame and AU columns between are inferred from that
CASME2_OBJECTIVE_HEADER = (
    "Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Objective Class",
)  # fmt: skip
CASME3_HEADER = ("Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion")
MMEW_HEADER = (
    "Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion", "remarks",
)  # fmt: skip
SMIC_ABBREVIATIONS = {"negative": "ne", "positive": "po", "surprise": "sur"}
MMEW_EMOTION_INDEX = {"happiness": 1, "surprise": 2, "anger": 3, "disgust": 4, "fear": 5, "sadness": 6, "others": 7}


@dataclass(frozen=True)
class Placed:
    """A planned clip as a layout stores it: folder (relative to the layout's root), sheet values, numbering."""

    clip: ClipPlan
    folder: str
    filename: str
    subject: Any  # the sheet's Subject cell
    emotion: str  # the dataset's own label
    onset: int  # number of the clip's first frame
    frame_name: str  # format string with {n}

    @property
    def apex(self) -> int:
        return self.onset + self.clip.apex_offset

    @property
    def offset(self) -> int:
        return self.onset + self.clip.n_frames - 1


@dataclass(frozen=True)
class Layout:
    name: str
    salt: int  # 0 keeps synth.seed (casme2: the default's bytes); others derive their own seed
    proportions: dict[str, int]  # AU recipe (memix.synth.classes) -> weight
    labels: dict[str, str]  # AU recipe -> the dataset's emotion label
    image: str  # "jpg", "jpg-grey" or "bmp"

    def params(self, params: SynthParams) -> SynthParams:
        """The params this layout renders with: its own seed unless it is casme2."""
        if self.salt == 0:
            return params
        seed = int(np.random.SeedSequence([params.seed, self.salt]).generate_state(1)[0])
        return params.model_copy(update={"seed": seed})

    def place(self, clips: list[ClipPlan]) -> list[Placed]:
        return PLACERS[self.name](self, clips)

    def encode(self, frame: np.ndarray, quality: int, where: str) -> bytes:
        """One RGB uint8 frame as this layout's file bytes."""
        if self.image == "bmp":
            ok, buf = cv2.imencode(".bmp", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        elif self.image == "jpg-grey":
            grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
            ok, buf = cv2.imencode(".jpg", grey, [int(cv2.IMWRITE_JPEG_QUALITY), quality])
        else:
            ok, buf = cv2.imencode(
                ".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [int(cv2.IMWRITE_JPEG_QUALITY), quality]
            )
        if not ok:
            raise RuntimeError(f"image encoding failed for {where}")
        return buf.tobytes()

    def finish(self, root: Path, params: SynthParams, placed: list[Placed]) -> None:
        """Write the coding sheet (or, for SMIC, the marker)."""
        FINISHERS[self.name](self, root, params, placed)


# ------------------------------------------------------------------------------------------ placing
def _place_casme2(layout: Layout, clips: list[ClipPlan]) -> list[Placed]:
    return [Placed(c, c.folder, c.filename, c.subject, layout.labels[c.emotion], c.onset, "img{n}.jpg") for c in clips]


def _place_samm(layout: Layout, clips: list[ClipPlan]) -> list[Placed]:
    seen: Counter[tuple[int, int]] = Counter()
    out, others = [], 0
    for c in clips:
        number = 5 + c.subject  # SAMM's subjects start at 006
        inducement = 1 + c.index % 7
        seen[(number, inducement)] += 1
        filename = f"{number:03d}_{inducement}_{seen[(number, inducement)]}"
        emotion = layout.labels[c.emotion]
        if emotion == "Other":
            others += 1
            emotion = "Others" if others % 2 == 0 else emotion  # both spellings occur in SAMM's sheet
        digits = 5 if c.subject % 2 == 0 else 4
        cell: Any = f"{number:03d}" if c.subject % 2 == 0 else number  # the sheet holds 6 and "006" alike
        out.append(
            Placed(
                c, f"{number:03d}/{filename}", filename, cell, emotion, c.onset, f"{number:03d}_{{n:0{digits}d}}.jpg"
            )
        )
    return out


def _place_smic(layout: Layout, clips: list[ClipPlan]) -> list[Placed]:
    seen: Counter[tuple[int, str]] = Counter()
    out = []
    for c in clips:
        emotion = layout.labels[c.emotion]
        seen[(c.subject, emotion)] += 1
        filename = f"s{c.subject}_{SMIC_ABBREVIATIONS[emotion]}_{seen[(c.subject, emotion)]:02d}"
        folder = f"HS/s{c.subject}/micro/{emotion}/{filename}"
        out.append(Placed(c, folder, filename, f"s{c.subject}", emotion, c.onset, "image{n:06d}.bmp"))
    return out


def _place_casme3(layout: Layout, clips: list[ClipPlan]) -> list[Placed]:
    out: list[Placed] = []
    position: Counter[int] = Counter()
    for c in clips:
        j = position[c.subject]
        position[c.subject] += 1
        letter = "abcdefghijklmnopqrstuvwxyz"[j // 2]
        onset = c.onset
        if j % 2 and out and out[-1].clip.subject == c.subject:
            onset = out[-1].offset + 3  # the recording's second micro-expression, a little later
        cell = f"spNo.{c.subject}" if c.subject % 2 == 0 else f"spNO.{c.subject}"
        folder = f"spNO.{c.subject}/{letter}/color"
        out.append(Placed(c, folder, letter, cell, layout.labels[c.emotion], onset, "{n}.jpg"))
    return out


def _place_mmew(layout: Layout, clips: list[ClipPlan]) -> list[Placed]:
    seen: Counter[tuple[int, str]] = Counter()
    out = []
    for c in clips:
        emotion = layout.labels[c.emotion]
        seen[(c.subject, emotion)] += 1
        filename = f"S{c.subject:02d}-{MMEW_EMOTION_INDEX[emotion]:02d}-{seen[(c.subject, emotion)]:03d}"
        folder = f"Micro_Expression/{'repression' if emotion == 'others' else emotion}/{filename}"
        out.append(Placed(c, folder, filename, c.subject, emotion, 1 + c.onset % 5, "{n}.jpg"))
    return out


PLACERS = {
    "casme2": _place_casme2,
    "samm": _place_samm,
    "smic": _place_smic,
    "casme3": _place_casme3,
    "mmew": _place_mmew,
}


# ------------------------------------------------------------------------------------------ sheets
def _finish_casme2(layout: Layout, root: Path, params: SynthParams, placed: list[Placed]) -> None:
    rows = [sheet_row(p.subject, p.filename, p.onset, p.apex, p.offset, p.clip.action_units, p.emotion) for p in placed]
    write_sheet(root / CASME2_SHEET, rows)
    classes = [
        [p.subject, p.filename, p.onset, p.apex, p.offset, _au_cell(p.clip.action_units), p.clip.objective_class]
        for p in placed
    ]
    write_sheet(root / CASME2_OBJECTIVE, classes, header=CASME2_OBJECTIVE_HEADER)


def _au_cell(aus: str) -> Any:
    return int(aus) if aus.isdigit() else aus


def _finish_samm(layout: Layout, root: Path, params: SynthParams, placed: list[Placed]) -> None:
    rows = [
        [
            p.subject, p.filename, int(p.filename.split("_")[1]), p.onset, p.apex, p.offset, p.offset - p.onset + 1,
            "Micro - 1/2", p.clip.action_units, p.emotion, p.clip.objective_class, None,
        ]
        for p in placed
    ]  # fmt: skip
    write_sheet(root / SAMM_SHEET, rows, header=SAMM_HEADER, notes=SAMM_NOTES)


def _finish_smic(layout: Layout, root: Path, params: SynthParams, placed: list[Placed]) -> None:
    marker = {
        "generator": "memix.synth",
        "layout": "smic",
        "note": "synthetic data in SMIC-HS's layout; not SMIC",
        "seed": params.seed,
        "clips": len(placed),
    }
    (root / MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n")


def _finish_casme3(layout: Layout, root: Path, params: SynthParams, placed: list[Placed]) -> None:
    rows = [
        [p.subject, p.filename, p.onset, p.apex, p.offset, _au_cell(p.clip.action_units), p.clip.objective_class,
         p.emotion]
        for p in placed
    ]  # fmt: skip
    write_sheet(root / CASME3_SHEET, rows, header=CASME3_HEADER, title="label")


def _finish_mmew(layout: Layout, root: Path, params: SynthParams, placed: list[Placed]) -> None:
    rows = [
        [p.subject, p.filename, p.onset, p.apex, p.offset, _au_cell(p.clip.action_units), p.emotion, None]
        for p in placed
    ]
    write_sheet(root / MMEW_SHEET, rows, header=MMEW_HEADER)


FINISHERS = {
    "casme2": _finish_casme2,
    "samm": _finish_samm,
    "smic": _finish_smic,
    "casme3": _finish_casme3,
    "mmew": _finish_mmew,
}

_SAME = {e: e for e in CASME2_COUNTS}
LAYOUTS: dict[str, Layout] = {
    "casme2": Layout("casme2", 0, dict(CASME2_COUNTS), _SAME, "jpg"),
    # roughly SAMM's MEGC proportions: negative (Anger, Contempt) 92, Happiness 26, Surprise 15, Other 26
    "samm": Layout(
        "samm",
        1,
        {"disgust": 70, "repression": 22, "happiness": 26, "surprise": 15, "others": 26},
        {
            "disgust": "Anger",
            "repression": "Contempt",
            "happiness": "Happiness",
            "surprise": "Surprise",
            "others": "Other",
        },
        "jpg-grey",
    ),  # fmt: skip
    # SMIC-HS's 70 / 51 / 43
    "smic": Layout(
        "smic",
        2,
        {"disgust": 40, "repression": 30, "happiness": 51, "surprise": 43},
        {"disgust": "negative", "repression": "negative", "happiness": "positive", "surprise": "surprise"},
        "bmp",
    ),
    "casme3": Layout(
        "casme3",
        3,
        {"others": 3, "disgust": 3, "surprise": 2, "happiness": 1, "repression": 1},
        {"disgust": "disgust", "repression": "sad", "happiness": "happy", "surprise": "surprise", "others": "others"},
        "jpg",
    ),
    "mmew": Layout(
        "mmew",
        4,
        {"others": 100, "surprise": 90, "disgust": 70, "happiness": 36, "repression": 15},
        {
            "disgust": "disgust",
            "repression": "sadness",
            "happiness": "happiness",
            "surprise": "surprise",
            "others": "others",
        },
        "jpg",
    ),  # fmt: skip
}


def get(name: str) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(f"synth.layout: no layout {name!r} (have {sorted(LAYOUTS)})") from None
