"""Published clip counts, compared with what ingest read from a real release.

A release whose class counts differ from the published ones usually means another sheet version, a missed
patch or exclusion, or frames that did not come along; so ingest compares every count it has a published
number for and warns, naming the dataset and the class. Numbers are the ones in docs (DATASETS.md): CASME II
and SAMM from their papers and the MEGC 2019 composite, SMIC-HS from its paper. Where releases differ
(CASME II's happiness: 32 or 33), every published value is accepted.

Synthetic data is not compared: memix.synth writes ``memix.synth`` as the author of every coding sheet it
makes, and a ``memix-synth.json`` file into layouts without a sheet (SMIC). Its counts follow ``synth.clips``,
so a comparison would only produce warnings that mean nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SYNTH_CREATOR = "memix.synth"
SYNTH_MARKER = "memix-synth.json"


@dataclass(frozen=True)
class Published:
    """Accepted values of the clip total, each class's count and the subject count (empty = not published)."""

    what: str
    clips: tuple[int, ...]
    classes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    subjects: tuple[int, ...] = ()


# (dataset key, task) -> published counts; the key is the dataset's name, SMIC's with its camera
PUBLISHED: dict[tuple[str, str], Published] = {
    ("casme2", "5class"): Published(
        "CASME II 5-class",
        clips=(246, 247),
        classes={
            "happiness": (32, 33),
            "repression": (27,),
            "disgust": (63,),
            "surprise": (25,),
            "others": (99,),
        },
    ),
    ("casme2", "3class"): Published(
        "CASME II in MEGC 2019",
        clips=(145,),
        classes={"negative": (88,), "positive": (32,), "surprise": (25,)},
        subjects=(24,),
    ),
    ("samm", "5class"): Published("SAMM 5-class", clips=(136,)),
    ("samm", "3class"): Published(
        "SAMM in MEGC 2019",
        clips=(133,),
        classes={"negative": (92,), "positive": (26,), "surprise": (15,)},
        subjects=(28,),
    ),
    ("smic:hs", "3class"): Published(
        "SMIC-HS", clips=(164,), classes={"negative": (70,), "positive": (51,), "surprise": (43,)}, subjects=(16,)
    ),
    ("mmew", "7class"): Published("MMEW micro-expressions", clips=(300,)),
}
MEGC2019_SOURCES = frozenset({"casme2", "samm", "smic:hs"})
MEGC2019 = Published(
    "MEGC 2019 composite (CASME II + SAMM + SMIC-HS)",
    clips=(442,),
    classes={"negative": (250,), "positive": (109,), "surprise": (83,)},
    subjects=(68,),
)


def dataset_key(name: str, camera: str | None) -> str:
    """``smic:hs`` for SMIC (counts differ per camera), the dataset's name otherwise."""
    return f"smic:{camera or 'hs'}" if name == "smic" else name


def synthetic_mark(root: Path, creator: str | None) -> str | None:
    """Why a source is memix's synthetic data (its sheet's author or the marker file), or None if it is not."""
    if creator == SYNTH_CREATOR:
        return f"synthetic data: its coding sheet was written by {SYNTH_CREATOR}"
    if (root / SYNTH_MARKER).is_file():
        return f"synthetic data: {root / SYNTH_MARKER} marks it"
    return None


def compare(scope: str, ref: Published, clips: int, subjects: int, per_class: Mapping[str, int]) -> list[dict]:
    """One check per published number: what was found, what was published, whether it is one of those."""
    items: list[tuple[str, int, Sequence[int]]] = [("clips", clips, ref.clips)]
    items += [(f"class {name}", int(per_class.get(name, 0)), want) for name, want in ref.classes.items()]
    if ref.subjects:
        items.append(("subjects", subjects, ref.subjects))
    return [
        {"scope": scope, "reference": ref.what, "item": item, "found": found, "published": list(want),
         "ok": found in want}
        for item, found, want in items
    ]  # fmt: skip


def warning(check: Mapping[str, Any]) -> str:
    published = " or ".join(str(v) for v in check["published"])
    return f"{check['scope']}: {check['item']} has {check['found']}, published {published} ({check['reference']})"


HINT = (
    "counts differ from the published ones: another sheet release, a missing patch or exclusion "
    "(dataset.patches, dataset.exclude) or missing frames?"
)
