"""The folder of key-frame noise sets (``data/processed/keyframe_noise/``): ``levels.json`` and one flow set per
level, ``<n>/``, each marked by its :data:`INFO_FILE` (:mod:`memix.preprocess.keyframe_noise` writes them).

Kept apart from the builder so that the stages which only read or tidy the folder (the level list, training) do
not run, and rerun on, the preprocessing code.

Why sets get removed: the train stage depends on the whole folder (DVC cannot list the outputs of a matrix stage
as a dependency), so a set of a level no longer configured would stay in that dependency's hash, and a clone, which
pulls the configured sets only, would retrain. DVC restores an earlier run of the level list from its run cache
without running it (going back to ``keyframe_noise: []`` does), so the train stage tidies the folder too, before it
trains: DVC records a stage's dependencies after its command has run.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from memix.io.shards import MANIFEST
from memix.preprocess.keyframe_shift import RULE

INFO_FILE = "keyframe_noise.json"
"""The file every noise set holds (level, seed, rule, counts): what marks a folder as one."""


def levels_record(levels: list[int], seed: int) -> dict[str, Any]:
    """``levels.json``: the levels (sorted) and seed whose sets the folder holds, and the rule that made them. With
    no level it holds the empty list alone: the train stages depend on this folder, and the seed of no set must not
    rerun them."""
    if not levels:
        return {"levels": []}
    return {"levels": sorted(int(n) for n in levels), "seed": int(seed), "rule": RULE,
            "note": "level 0 (no shift) is the flow set itself (data/processed/flow); each level n is a folder <n>/"}


def unlisted(root: Path, levels: list[int]) -> list[Path]:
    """The noise sets in ``root`` of levels not in ``levels``: folders named by a level that hold a noise set's
    :data:`INFO_FILE` and shard manifest (nothing else there is touched)."""
    root = Path(root)
    found = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        name = folder.name
        if not (name.isdigit() and str(int(name)) == name) or folder.is_symlink() or not folder.is_dir():
            continue
        if int(name) not in levels and (folder / INFO_FILE).is_file() and (folder / MANIFEST).is_file():
            found.append(folder)
    return sorted(found, key=lambda p: int(p.name))


def remove_unlisted(root: Path, levels: list[int]) -> list[int]:
    """Remove :func:`unlisted`'s sets; returns their levels."""
    removed = []
    for folder in unlisted(root, levels):
        shutil.rmtree(folder)
        removed.append(int(folder.name))
    return removed



def first_difference(found: list[str], expected: list[str]) -> tuple[int, str, str] | None:
    """Where two clip orders part: (row, clip found there or "nothing", clip expected there or "nothing"); None
    when they are equal. A noise set must hold the flow set's clips in its order (a unit's test rows index both)."""
    if found == expected:
        return None
    row = next((i for i, (a, b) in enumerate(zip(found, expected, strict=False)) if a != b),
               min(len(found), len(expected)))
    return row, found[row] if row < len(found) else "nothing", expected[row] if row < len(expected) else "nothing"

__all__ = ["INFO_FILE", "first_difference", "levels_record", "remove_unlisted", "unlisted"]
