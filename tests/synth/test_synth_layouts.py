"""Each layout's folders, file names, image formats and coding sheet follow the real dataset's conventions.

The patterns are written out from DATASETS.md here rather than taken from memix.synth.layouts, so the test
fails when the generator drifts from the dataset it imitates.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import cv2
import openpyxl
import pytest

from memix.config import SynthParams
from memix.synth import layouts
from memix.synth.build import generate


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _frames(root: Path) -> list[str]:
    return [f for f in _files(root) if not f.endswith((".xlsx", ".json"))]


def _sheet(path: Path) -> tuple[str, list[tuple]]:
    ws = openpyxl.load_workbook(path).active
    return ws.title, list(ws.iter_rows(values_only=True))


def test_casme2_layout(tiny_layouts_root: Path) -> None:
    root = tiny_layouts_root / "casme2"
    assert all(re.fullmatch(r"sub\d\d/EP\d\d_\d\df?/img[1-9]\d*\.jpg", f) for f in _frames(root))
    assert (root / "CASME2-coding-synthetic.xlsx").is_file()


def test_samm_layout_grey_4_and_5_digit_frames_notes_above_header(tiny_layouts_root: Path) -> None:
    root = tiny_layouts_root / "samm"
    frames = _frames(root)
    pattern = re.compile(r"(\d{3})/(\d{3})_\d_\d+/(\d{3})_(\d+)\.jpg")
    matches = [pattern.fullmatch(f) for f in frames]
    assert all(m and m.group(1) == m.group(2) == m.group(3) for m in matches), frames[:5]
    assert {len(m.group(4)) for m in matches if m} == {4, 5}
    assert cv2.imread(str(root / frames[0]), cv2.IMREAD_UNCHANGED).ndim == 2  # greyscale, as SAMM
    _, rows = _sheet(root / "SAMM_Micro_FACS_Codes_v2-synthetic.xlsx")
    header = [i for i, r in enumerate(rows) if r[0] == "Subject"]
    assert header == [13] and all(len([c for c in r if c is not None]) <= 1 for r in rows[:13])  # 13 notes rows
    assert rows[13][:6] == ("Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame")
    emotions = {r[9] for r in rows[14:]}
    assert {"Other", "Others"} <= emotions and emotions <= {
        "Anger",
        "Contempt",
        "Happiness",
        "Surprise",
        "Other",
        "Others",
    }


def test_smic_layout_bmp_6_digits_no_sheet_no_apex(tiny_layouts_root: Path) -> None:
    root = tiny_layouts_root / "smic"
    pattern = re.compile(r"HS/s(\d+)/micro/(negative|positive|surprise)/s(\d+)_(ne|po|sur)_\d\d/image\d{6}\.bmp")
    for f in _frames(root):
        m = pattern.fullmatch(f)
        assert m and m.group(1) == m.group(3) and m.group(2)[:2] == m.group(4)[:2], f
    assert not list(root.rglob("*.xlsx"))
    assert json.loads((root / "memix-synth.json").read_text())["generator"] == "memix.synth"


def test_casme3_layout_color_folders_shared_recordings_spellings(tiny_layouts_root: Path) -> None:
    root = tiny_layouts_root / "casme3"
    assert all(re.fullmatch(r"spNO\.\d+/[a-z]/color/[1-9]\d*\.jpg", f) for f in _frames(root))
    title, rows = _sheet(root / "cas(me)3_part_A_ME_label_JpgIndex_v2-synthetic.xlsx")
    assert title == "label" and rows[0] == (
        "Subject",
        "Filename",
        "Onset",
        "Apex",
        "Offset",
        "AU",
        "Objective class",
        "emotion",
    )
    keys = [(str(r[0]).lower(), r[1]) for r in rows[1:]]
    assert len(set(keys)) < len(keys)  # several micro-expressions share a recording
    assert {str(r[0])[:4] for r in rows[1:]} == {"spNO", "spNo"}
    for subject, filename, onset, apex, offset, *_ in rows[1:]:
        folder = root / f"spNO.{str(subject).split('.')[1]}" / filename / "color"
        assert all((folder / f"{n}.jpg").is_file() for n in range(onset, offset + 1))
        assert onset < apex < offset


def test_mmew_layout_others_in_repression(tiny_layouts_root: Path) -> None:
    root = tiny_layouts_root / "mmew"
    pattern = re.compile(r"Micro_Expression/(\w+)/S(\d\d)-\d\d-\d{3}/([1-9]\d*)\.jpg")
    assert all(pattern.fullmatch(f) for f in _frames(root))
    _, rows = _sheet(root / "MMEW_Micro_Exp-synthetic.xlsx")
    assert rows[0][:7] == (
        "Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion",
    )  # fmt: skip
    folders = {r[1]: r[6] for r in rows[1:]}
    assert "others" in folders.values()
    for filename, emotion in folders.items():
        expected = "repression" if emotion == "others" else emotion
        assert (root / "Micro_Expression" / expected / filename).is_dir()
    assert min(r[2] for r in rows[1:]) <= 5  # numbered from the start of the clip's own folder


def test_casme2_in_a_list_is_byte_identical_to_the_single_layout(
    tiny_layouts_root: Path, tiny_layouts_params: SynthParams, face_model_path: Path, tmp_path: Path
) -> None:
    single = tmp_path / "single"
    generate(tiny_layouts_params.model_copy(update={"layout": "casme2"}), single, face_model_path)

    def digests(root: Path) -> dict[str, str]:
        return {f: hashlib.sha256((root / f).read_bytes()).hexdigest() for f in _files(root)}

    assert digests(single) == digests(tiny_layouts_root / "casme2")
    assert sorted(p.name for p in tiny_layouts_root.iterdir()) == ["casme2", "casme3", "mmew", "samm", "smic"]


def test_each_layout_draws_its_own_subjects(tiny_layouts_params: SynthParams) -> None:
    seeds = {name: layout.params(tiny_layouts_params).seed for name, layout in layouts.LAYOUTS.items()}
    assert seeds["casme2"] == tiny_layouts_params.seed
    assert len(set(seeds.values())) == len(seeds)


def test_layout_params_are_checked() -> None:
    with pytest.raises(ValueError, match="without repeats"):
        SynthParams(layout=["samm", "samm"])
    with pytest.raises(ValueError):
        SynthParams(layout="casme4")
