"""The MEGC 2019 composite protocol: the organisers' sample list, shipped with memix (``protocols/megc2019.csv``).

The class rule alone does not give the protocol: from the 2019 CASME II sheet it keeps five clips the list
leaves out. So with ``classes: megc3`` and ``protocol: megc2019`` (the defaults), each CASME II, SAMM and SMIC-HS
source follows the list: exactly the listed clips, with the listed labels (a sheet whose emotion maps to another
class is an error naming the clip). A single one of those datasets follows its part of the list. Synthetic data
(memix.synth's) has names the list cannot hold, so it follows the class rule, and the report says so.
"""

from __future__ import annotations

import csv
import io
import re
from functools import cache
from importlib import resources
from typing import Any

from memix.datasets import published
from memix.datasets.sources import Source
from memix.datasets.values import text

LIST_FILE = "megc2019.csv"
CLASSES = ("negative", "positive", "surprise")  # the list's 0, 1, 2
DATASETS = ("casme2", "samm", "smic")
_SMIC_CLIP = re.compile(r"^s0*(\d+)_", re.IGNORECASE)


@cache
def _rows() -> tuple[tuple[str, str, str, str], ...]:
    data = resources.files("memix.datasets").joinpath("protocols", LIST_FILE).read_text(encoding="utf-8")
    out = []
    for dataset, subject, filename, label in csv.reader(io.StringIO(data)):
        out.append((dataset.strip(), subject.strip(), filename.strip(), CLASSES[int(label)]))
    return tuple(out)


def list_sha256() -> str:
    import hashlib

    data = resources.files("memix.datasets").joinpath("protocols", LIST_FILE).read_bytes()
    return hashlib.sha256(data).hexdigest()


def fold_filename(dataset: str, filename: str) -> str:
    """A clip name as the releases spell it: the list's SMIC ``s01_ne_01`` is folder ``s1_ne_01``."""
    if dataset == "smic":
        return _SMIC_CLIP.sub(lambda m: f"s{int(m.group(1))}_", filename)
    return filename


def why_not(src: Source, classes: str, protocol: str, synthetic: str | None) -> str | None:
    """Why ``src`` does not follow the list (None when it does)."""
    if classes != "megc3":
        return f"classes is {classes}, not megc3"
    if protocol != "megc2019":
        return "dataset.protocol: classes (the class rule alone)"
    if src.name not in DATASETS:
        return f"{src.name} is not part of MEGC 2019 (CASME II, SAMM, SMIC-HS): the class rule"
    if src.name == "smic" and (src.params.camera or "hs") != "hs":
        return f"SMIC camera {src.params.camera}: MEGC 2019 uses SMIC-HS; the class rule"
    if synthetic:
        return f"{synthetic}; its clips are not on the list, so the class rule applies"
    return None


def listed(src: Source) -> dict[tuple[str, str], str]:
    """(canonical subject, Filename as on disk) -> class name, for the list's clips of ``src``'s dataset."""
    out = {}
    for dataset, subject, filename, label in _rows():
        if dataset == src.name:
            out[(src.adapter.canonical_subject(subject), fold_filename(dataset, filename))] = label
    return out


def key(src: Source, canonical: str, filename: Any) -> tuple[str, str]:
    return canonical, fold_filename(src.name, text(filename))


def report(src: Source, why: str | None, kept: list[dict[str, Any]], left_out: list[str],
           dropped: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    """The report's account of the list for one source: followed or not, missing clips, clips left out."""
    if why is not None or src.protocol is None:
        return {"followed": False, "why": why}
    have = {(r["subject"], r["clip"]) for r in kept}
    reasons = {d["clip"]: d["reason"] for d in dropped if d.get("clip")}
    missing = []
    for (subject, filename), label in sorted(src.protocol.items()):
        sid = src.subject_id(subject)
        if (sid, filename) not in have:
            clip = f"{sid}/{filename}"
            missing.append({"clip": clip, "label": label, "why": reasons.get(clip, "no row in the sheet or folders")})
    return {
        "followed": True,
        "list": f"memix/datasets/protocols/{LIST_FILE}",
        "sha256": list_sha256(),
        "listed": len(src.protocol),
        "kept": len(kept),
        "listed_not_found": missing,
        "left_out": sorted(left_out),
    }


def synthetic(src: Source, creator: str | None) -> str | None:
    return published.synthetic_mark(src.root, creator)
