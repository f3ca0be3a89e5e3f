"""Emotion -> class maps per dataset and task; the label order is part of the contract (label_id).

CASME II 5-class follows the MEMix code's order; the 3-class maps are MEGC 2019's composite classes
(``megc3`` is the same task under the composite protocol's name), extended in the same spirit to CAS(ME)^3
and MMEW (negative = their negative emotions, others left out). ``7class`` is CAS(ME)^3's and MMEW's own list.
Emotions a dataset knows but a task leaves out (CASME II fear/sadness in 5-class) are dropped and reported
as excluded; anything else is reported as unknown, so a typo in a sheet is never silently a class.

``objective`` (MEGC 2018) reads another cell: the objective class I-VII (:func:`normalise_objective`; where the
cell is, :mod:`memix.datasets.objective`), kept
as I-V with VI and VII excluded, the same label set for every dataset that has such classes (so a composite of
CASME II and SAMM has one). SMIC and MMEW have none, and are refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from memix.datasets.values import text


@dataclass(frozen=True)
class ClassMap:
    """Class names in label_id order, and the dataset's normalised emotions mapped to a class name."""

    names: tuple[str, ...]
    emotions: dict[str, str]
    known: frozenset[str]  # every emotion this dataset's sheets use, mapped or not

    def label_id(self, label: str) -> int:
        return self.names.index(label)

    def to_report(self) -> dict[str, object]:
        return {"names": list(self.names), "emotions": dict(sorted(self.emotions.items()))}


CASME2_EMOTIONS = frozenset({"happiness", "repression", "disgust", "surprise", "others", "fear", "sadness"})
SAMM_EMOTIONS = frozenset({"anger", "contempt", "happiness", "surprise", "other", "disgust", "fear", "sadness"})
SMIC_EMOTIONS = frozenset({"negative", "positive", "surprise"})
SEVEN = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "others")
CASME3_EMOTIONS = MMEW_EMOTIONS = frozenset(SEVEN)

# spelling variants seen across releases, applied after lower-casing and trimming
_COMMON = {"happy": "happiness", "surprised": "surprise", "sad": "sadness", "angry": "anger"}
ALIASES: dict[str, dict[str, str]] = {
    "casme2": {"other": "others", "happy": "happiness", "surprised": "surprise", "sad": "sadness"},
    "samm": {"others": "other", "happy": "happiness", "surprised": "surprise", "sad": "sadness"},
    "smic": {"po": "positive", "ne": "negative", "sur": "surprise", "surprised": "surprise"},
    "casme3": {**_COMMON, "other": "others"},
    "mmew": {**_COMMON, "other": "others"},
}
# task names that are another task's map under a protocol's name
TASK_ALIASES = {"megc3": "3class"}
OBJECTIVE = "objective"
OBJECTIVE_CLASSES = ("I", "II", "III", "IV", "V", "VI", "VII")  # MEGC 2018's objective classes (Davison et al. 2018)
OBJECTIVE_KEPT = OBJECTIVE_CLASSES[:5]  # the task's classes, in label_id order; VI and VII are left out
OBJECTIVE_FIELD = "objective"  # the canonical sheet field (memix.datasets.sheets.COLUMNS)
_OBJECTIVE_CELL = re.compile(r"^(?:class\s*[-:.]?\s*)?([ivx]+|\d+)$", re.IGNORECASE)
OBJECTIVE_DATASETS = ("casme2", "samm", "casme3")  # whose releases give objective classes (column or workbook)
NEGATIVE_POSITIVE_SURPRISE = ("negative", "positive", "surprise")


def _identity(names: tuple[str, ...], known: frozenset[str]) -> ClassMap:
    """A map whose classes are the emotions themselves (the 5-class tasks)."""
    return ClassMap(names=names, emotions={e: e for e in names}, known=known)


CLASS_MAPS: dict[tuple[str, str], ClassMap] = {
    ("casme2", "5class"): _identity(("happiness", "repression", "disgust", "surprise", "others"), CASME2_EMOTIONS),
    ("casme2", "3class"): ClassMap(
        names=("negative", "positive", "surprise"),
        emotions={"disgust": "negative", "repression": "negative", "happiness": "positive", "surprise": "surprise"},
        known=CASME2_EMOTIONS,
    ),
    ("samm", "5class"): _identity(("anger", "contempt", "happiness", "surprise", "other"), SAMM_EMOTIONS),
    ("samm", "3class"): ClassMap(
        names=("negative", "positive", "surprise"),
        emotions={
            "anger": "negative",
            "contempt": "negative",
            "disgust": "negative",
            "fear": "negative",
            "sadness": "negative",
            "happiness": "positive",
            "surprise": "surprise",
        },
        known=SAMM_EMOTIONS,
    ),
    ("smic", "3class"): _identity(NEGATIVE_POSITIVE_SURPRISE, SMIC_EMOTIONS),
    **{
        (name, "3class"): ClassMap(
            names=NEGATIVE_POSITIVE_SURPRISE,
            emotions={
                **{e: "negative" for e in ("anger", "disgust", "fear", "sadness")},
                "happiness": "positive",
                "surprise": "surprise",
            },
            known=known,
        )
        for name, known in (("casme3", CASME3_EMOTIONS), ("mmew", MMEW_EMOTIONS))
    },
    ("casme3", "7class"): _identity(SEVEN, CASME3_EMOTIONS),
    ("mmew", "7class"): _identity(SEVEN, MMEW_EMOTIONS),
    **{(name, OBJECTIVE): _identity(OBJECTIVE_KEPT, frozenset(OBJECTIVE_CLASSES)) for name in OBJECTIVE_DATASETS},
}


def task(classes: str) -> str:
    """The task a ``dataset.classes`` value names (``megc3`` is ``3class``)."""
    return TASK_ALIASES.get(classes, classes)


def get(dataset: str, classes: str) -> ClassMap:
    if task(classes) == OBJECTIVE and dataset not in OBJECTIVE_DATASETS:
        raise ValueError(f"no objective classes in {dataset}'s sheets: classes objective reads CASME II, SAMM and "
                         "CAS(ME)^3 (MEGC 2018 used CASME II and SAMM)")  # fmt: skip
    try:
        return CLASS_MAPS[(dataset, task(classes))]
    except KeyError:
        have = sorted(c for d, c in CLASS_MAPS if d == dataset)
        have += sorted(a for a, t in TASK_ALIASES.items() if t in have)
        raise ValueError(f"no class map for dataset {dataset!r} with classes {classes!r} (it has: {have})") from None


def normalise_emotion(dataset: str, raw: object) -> str:
    """Trimmed, lower-cased emotion with the dataset's spelling variants folded ("Others" -> "other" in SAMM)."""
    text = "" if raw is None else " ".join(str(raw).split()).lower()
    return ALIASES.get(dataset, {}).get(text, text)


def label_cell(dataset: str, classes: str, values: Mapping[str, Any]) -> tuple[str, str]:
    """The cell a row's class comes from, as the report shows it, and its normalised form: the emotion, or for
    ``objective`` the objective class "I".."VII" (ValueError when that cell cannot be read)."""
    if task(classes) == OBJECTIVE:
        found = normalise_objective(values.get(OBJECTIVE_FIELD))
        return found, found
    shown = text(values.get("emotion"))
    return shown, normalise_emotion(dataset, shown)


def normalise_objective(cell: Any) -> str:
    """An objective-class cell as "I".."VII" from 3, 3.0, "3", "III", "iii" or "Class III" (releases write 1-7);
    ValueError for anything else (the caller names the file, row and field)."""
    if cell is None or (isinstance(cell, str) and not cell.strip()):
        raise ValueError("no objective class (empty cell)")
    number = 0
    if isinstance(cell, float) and cell.is_integer():
        number = int(cell)
    elif isinstance(cell, int) and not isinstance(cell, bool):
        number = cell
    elif isinstance(cell, str):
        match = _OBJECTIVE_CELL.match(" ".join(cell.split()))
        token = match.group(1).upper() if match else ""
        if token.isdigit():
            number = int(token)
        elif token in OBJECTIVE_CLASSES:
            number = OBJECTIVE_CLASSES.index(token) + 1
    if not 1 <= number <= len(OBJECTIVE_CLASSES):
        raise ValueError(f"not an objective class (I-VII, or 1-7): {cell!r}")
    return OBJECTIVE_CLASSES[number - 1]
