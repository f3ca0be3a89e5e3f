"""MEGC 2018 objective classes in the synthetic sheets: Davison et al.'s AU table, the classes it gives the default
synthetic set, and the CASME II, SAMM and CAS(ME)^3 layouts written so that ingest reads every planned class back."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import openpyxl
import pytest

from memix.config import DatasetParams, SynthParams
from memix.datasets import ingest
from memix.synth import layouts
from memix.synth.objective import TABLE, objective_class
from memix.synth.plan import plan_dataset

ROMAN = ["I", "II", "III", "IV", "V", "VI", "VII"]


@pytest.mark.parametrize(
    ("aus", "expected"),
    [
        ([(6, "B"), (12, "B")], 1),
        ([(12, "L")], 1),  # a one-sided AU is that AU
        ([(1, "B"), (2, "B"), (25, "B")], 2),
        ([(4, "B")], 3),
        ([(4, "R"), (9, "R")], 4),
        ([(10, "B")], 4),
        ([(15, "B"), (17, "B")], 5),
        ([(1, "B"), (4, "B")], 5),
        ([(1, "B"), (2, "B"), (4, "B")], 6),
        ([(12, "B"), (25, "B")], 7),  # a combination the table does not list: others
        ([(4, "B"), (10, "B")], 7),
        ([(14, "B")], 7),
    ],
)
def test_the_class_is_the_table_row_listing_the_clips_au_set(aus: list[tuple[int, str]], expected: int) -> None:
    assert objective_class(aus) == expected


def test_no_combination_is_listed_twice() -> None:
    combos = [c for class_combos in TABLE.values() for c in class_combos]
    assert len(combos) == len(set(combos)) == 36 and sorted(TABLE) == [1, 2, 3, 4, 5, 6]


def test_default_synthetic_set_has_every_kept_class() -> None:
    """The default's 8 subjects / 80 clips per layout (params.yaml): I-V all present, VII (left out) not most."""
    params = SynthParams(subjects=8, clips=80)
    counts = {}
    for name in ("casme2", "samm"):
        layout = layouts.get(name)
        clips = plan_dataset(layout.params(params), layout.proportions)
        counts[name] = dict(sorted(Counter(ROMAN[c.objective_class - 1] for c in clips).items()))
    assert counts == {
        "casme2": {"I": 12, "II": 6, "III": 13, "IV": 9, "V": 5, "VII": 35},
        "samm": {"I": 13, "II": 6, "III": 1, "IV": 23, "V": 6, "VII": 31},
    }


def _write(name: str, params: SynthParams, root: Path) -> list[layouts.Placed]:
    """The layout's sheets as memix.synth writes them, with flat 8x8 frames in place of rendered faces."""
    layout = layouts.get(name)
    lp = layout.params(params)
    placed = layout.place(plan_dataset(lp, layout.proportions))
    for p in placed:
        (root / p.folder).mkdir(parents=True, exist_ok=True)
        for n in range(p.onset, p.offset + 1):
            assert cv2.imwrite(str(root / p.folder / p.frame_name.format(n=n)), np.full((8, 8), n % 256, np.uint8))
    layout.finish(root, lp, placed)
    return placed


def test_the_layouts_write_the_rules_class_and_ingest_reads_it_back(tmp_path: Path) -> None:
    params = SynthParams(subjects=3, clips=24, frames_min=5, frames_max=6)
    planned = {name: _write(name, params, tmp_path / name) for name in ("casme2", "samm", "casme3")}
    # CASME II's classes in a workbook of their own, SAMM's and CAS(ME)^3's in the coding sheet's column
    book = openpyxl.load_workbook(tmp_path / "casme2" / layouts.CASME2_OBJECTIVE).active
    rows = list(book.iter_rows(values_only=True))
    assert rows[0][-1] == "Objective Class"
    assert [r[-1] for r in rows[1:]] == [p.clip.objective_class for p in planned["casme2"]]
    sources = [{"name": n, "root": n} for n in planned]
    out = tmp_path / "out"
    df = ingest.run(DatasetParams(name="composite", root=str(tmp_path), sources=sources, classes="objective"), out)
    report = json.loads((out / "ingest_report.json").read_text())
    for name, placed in planned.items():  # each clip has the rule's class, or is left out and counted
        assert report["sources"][name]["rows"] == len(placed) == params.clips
        classes = [ROMAN[p.clip.objective_class - 1] for p in placed]
        kept = sorted(c for c in classes if c in ROMAN[:5])
        assert sorted(df.loc[df["dataset"] == name, "label"]) == kept
        left_out = dict(sorted(Counter(c for c in classes if c not in ROMAN[:5]).items()))
        assert report["sources"][name]["left_out_classes"] == left_out
    assert report["class_names"] == ROMAN[:5]
