"""Releases as they ship: errata, the MEGC 2019 list, apex == onset, every problem at once, layout variants.

Sheets are written here with the released column names (CASME II's blank columns, SAMM's notes rows,
CAS(ME)^3's ``label`` worksheet) and tiny 8x8 frames; the CAS(ME)^3 rows carry the values of the released
sheet's known bad rows, so the shipped errata must match them as a user's copy would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import openpyxl
import pytest
import skimage.data

from memix.config import DatasetParams
from memix.datasets import corrections, ingest, protocol

CASME2_HEADER = ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units",
                 "Estimated Emotion"]  # fmt: skip
SAMM_HEADER = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration",
               "Type", "Action Units", "Estimated Emotion", "Objective Classes", "Notes"]  # fmt: skip
CASME3_HEADER = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"]


def _frames(clip_dir: Path, numbers: range | list[int], name: str = "img{}.jpg") -> None:
    clip_dir.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        assert cv2.imwrite(str(clip_dir / name.format(n)), np.full((8, 8), (n * 37) % 256, np.uint8))


def _save(path: Path, rows: list[list[Any]], title: str | None = None, creator: str | None = None) -> Path:
    book = openpyxl.Workbook()
    if title:
        book.active.title = title
    if creator:
        book.properties.creator = creator
    for row in rows:
        book.active.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return path


def _report(out: Path) -> dict[str, Any]:
    return json.loads((out / "ingest_report.json").read_text())


# ------------------------------------------------------------------------------------------- CAS(ME)^3
# (Subject, Filename, Onset, Apex, Offset, emotion, take folder, frames on disk): the released sheet's bad rows
CASME3_ROWS = [
    ("spNO.1", "a", 100, 103, 108, "happy", "a", range(100, 109)),
    ("spNO.14", "J", 10, 12, 14, "disgust", "j", range(10, 15)),
    ("spNO.216", "d", 3647, 2660, 2694, "surprise", "d", range(2647, 2695)),
    ("spNO.216", "e", 0, 0, 5, "others", "e", range(1, 6)),
    ("spNO.40", "e", 1812, 1820, 0, "fear", "e", range(1812, 1846)),
    ("spNO.40", "e", 2327, 2340, 0, "fear", "e", range(2327, 2404)),
    ("spNo.214", "c", 5, 20, 3460, "sad", "c", range(5, 40)),
]


@pytest.fixture()
def casme3_release(tmp_path: Path) -> Path:
    root = tmp_path / "CASME3"
    for subject, _, _, _, _, _, take, frames in CASME3_ROWS:
        _frames(root / subject.replace("spNo", "spNO") / take / "color", frames, "{}.jpg")
    rows = [[s, f, on, ap, off, "4+7", None, emo] for s, f, on, ap, off, emo, _, _ in CASME3_ROWS]
    _save(root / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", [CASME3_HEADER, *rows], title="label")
    return root


def test_casme3_release_with_its_bad_rows_ingests_by_default_and_reports_each_erratum(
    casme3_release: Path, tmp_path: Path
) -> None:
    df = ingest.run(DatasetParams(name="casme3", root=str(casme3_release), classes="7class"), tmp_path / "out")
    rep = _report(tmp_path / "out")
    applied = [e for e in rep["errata"]["entries"] if e["dataset"] == "casme3"]
    assert len(applied) == len(corrections.errata("casme3")) == 7 and all(e["applied"] for e in applied)
    assert all(e["source"] for e in applied)
    clips = df.set_index("clip_id")
    assert clips.loc["spNO.14/j", ["onset", "offset"]].tolist() == [10, 14]  # Filename J -> the take folder j
    assert clips.loc["spNO.216/d", ["onset", "apex", "offset"]].tolist() == [2647, 2660, 2694]
    assert clips.loc["spNO.40/e#1812", "offset"] == 1845 and clips.loc["spNO.40/e#2327", "offset"] == 2403
    assert clips.loc["spNO.214/c", ["offset", "n_frames"]].tolist() == [34, 30]
    # spNO.216/e: onset and apex 0 -> 1, which leaves apex == onset: patched to the middle frame, reported
    assert clips.loc["spNO.216/e", ["onset", "apex"]].tolist() == [1, 3]
    assert [z["clip"] for z in rep["zero_motion"]] == ["spNO.216/e"]
    patched = {(p["clip"], p["field"], p["old"], p["new"]) for p in rep["patched"]}
    assert {("spNO.14/J", "filename", "J", "j"), ("spNO.216/d", "onset", 3647, 2647), ("spNO.40/e", "offset", 0, 1845),
            ("spNO.40/e", "offset", 0, 2403), ("spNO.214/c", "offset", 3460, 34)} <= patched  # fmt: skip
    # 77 frames at 30 fps is over the 2 s bound: reported, kept
    assert [c["clip"] for c in rep["long_clips"]["clips"]] == ["spNO.40/e"] and rep["long_clips"]["bound_frames"] == {
        "casme3": 60
    }


def test_without_errata_every_bad_row_is_listed_in_one_error(casme3_release: Path, tmp_path: Path) -> None:
    params = DatasetParams(name="casme3", root=str(casme3_release), classes="7class", errata="none")
    with pytest.raises(ingest.IngestError) as info:
        ingest.run(params, tmp_path / "out")
    message = str(info.value)
    assert message.startswith("4 problems in the dataset (nothing was written")
    for row, clip, what in [
        (4, "spNO.216/d", "offset 2694 is before onset 3647"),
        (5, "spNO.216/e", "no image for frame 0"),
        (6, "spNO.40/e", "offset 0 is before onset 1812"),
        (7, "spNO.40/e", "offset 0 is before onset 2327"),
    ]:
        assert f"row {row} ({clip})" in message and what in message
    assert "dataset.patches: - {subject: 'spNO.40', filename: 'e', onset: 2327, field: offset" in message
    assert not (tmp_path / "out").exists()


def test_a_filename_patch_and_a_case_insensitive_folder_are_reported(casme3_release: Path, tmp_path: Path) -> None:
    # errata off: the upper-case J finds the only folder matching it ignoring case; the report says so
    bad = (("spNO.216", "d", 3647), ("spNO.216", "e", 0), ("spNO.40", "e", 1812), ("spNO.40", "e", 2327))
    exclude = [{"subject": s, "filename": f, "onset": on, "reason": "bad row"} for s, f, on in bad]
    patches = [{"subject": "spNO.1", "filename": "a", "field": "filename", "value": "A"}]
    params = DatasetParams(name="casme3", root=str(casme3_release), classes="7class", errata="none", exclude=exclude,
                           patches=patches)  # fmt: skip
    df = ingest.run(params, tmp_path / "out")
    rep = _report(tmp_path / "out")
    assert set(df["clip_id"]) == {"spNO.1/A", "spNO.14/J", "spNO.214/c"}
    loose = {(f["clip"], Path(f["found"]).relative_to(casme3_release).as_posix()) for f in
             rep["folders_matched_ignoring_case"]}  # fmt: skip
    assert loose == {("spNO.1/A", "spNO.1/a"), ("spNO.14/J", "spNO.14/j")}
    assert {"clip": "spNO.1/a", "field": "filename", "old": "a", "new": "A"}.items() <= rep["patched"][0].items()


def test_clip_package_of_casme3_ingests(casme3_release: Path, tmp_path: Path) -> None:
    root = tmp_path / "package"
    frame = root / "Part_A_ME_clip" / "frame"
    _frames(frame / "spNO.1_a_100", range(100, 109), "{}.jpg")
    _frames(frame / "spNO.40_e_1812", range(1812, 1846), "{}.jpg")
    (root / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx").write_bytes(
        (casme3_release / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx").read_bytes()
    )
    keep = [{"subject": s, "filename": f, "onset": on, "reason": "not in this package"} for s, f, on in
            (("spNO.14", "J", 10), ("spNO.216", "d", 3647), ("spNO.216", "e", 0), ("spNO.40", "e", 2327),
             ("spNo.214", "c", 5))]  # fmt: skip
    df = ingest.run(DatasetParams(name="casme3", root=str(root), classes="7class", exclude=keep), tmp_path / "out")
    assert df["frame_dir"].tolist() == ["Part_A_ME_clip/frame/spNO.1_a_100", "Part_A_ME_clip/frame/spNO.40_e_1812"]
    assert df["offset"].tolist() == [108, 1845]


# ------------------------------------------------------------------------------------------ MEGC 2019
def _casme2(root: Path, rows: list[tuple[Any, ...]], creator: str | None = None) -> None:
    for subject, filename, onset, _, offset, _ in rows:
        _frames(root / f"sub{subject:02d}" / filename, range(onset, offset + 1))
    body = [[s, f, None, on, ap, off, None, "4", emo] for s, f, on, ap, off, emo in rows]
    _save(root / "CASME2-coding-20190701.xlsx", [CASME2_HEADER, *body], creator=creator)


CASME2_ROWS = [
    (1, "EP02_01f", 10, 12, 14, "happiness"),  # listed, positive
    (1, "EP19_05f", 10, 12, 14, "disgust"),  # listed, negative
    (1, "EP01_01", 10, 12, 14, "others"),  # not a MEGC class
    (4, "EP12_01f", 10, "/", 14, "disgust"),  # the '/' apex: a shipped erratum leaves it out
    (5, "EP09_05f", 10, 10, 14, "disgust"),  # the class rule keeps it, the list does not
    (24, "EP07_01", 10, 12, 14, "repression"),  # likewise
]


@pytest.fixture()
def megc_release(tmp_path: Path) -> Path:
    root = tmp_path / "megc"
    _casme2(root / "CASME2", CASME2_ROWS)
    samm = root / "SAMM"
    for clip in ("006_1_2", "006_1_3"):
        _frames(samm / "006" / clip, range(4000, 4006), "006_{:05d}.jpg")
    notes = [["SAMM notes"]] + [[None]] * 12
    body = [[6, c, 1, 4000, 4002, 4005, 6, "Micro - 1/2", "4", emo, "IV", None] for c, emo in
            (("006_1_2", "Anger"), ("006_1_3", "Contempt"))]  # fmt: skip
    _save(samm / "SAMM_Micro_FACS_Codes_v2.xlsx", [*notes, SAMM_HEADER, *body])
    for emotion, clip in (("negative", "s1_ne_01"), ("positive", "s1_po_01"), ("surprise", "s1_sur_01")):
        _frames(root / "SMIC" / "HS" / "s1" / "micro" / emotion / clip, range(300, 306), "reg_image{:06d}.bmp")
    return root


def _megc(root: Path, **kw: Any) -> DatasetParams:
    sources = [{"name": "casme2", "root": "CASME2"}, {"name": "samm", "root": "SAMM"}, {"name": "smic", "root": "SMIC"}]
    return DatasetParams.model_validate({"name": "composite", "root": str(root), "sources": sources, "classes": "megc3",
                                         **kw})  # fmt: skip


def test_composite_follows_the_megc2019_list_and_reports_what_it_left_out(megc_release: Path, tmp_path: Path) -> None:
    df = ingest.run(_megc(megc_release), tmp_path / "out")
    rep = _report(tmp_path / "out")
    assert list(df["clip_id"]) == [
        "casme2/sub01/EP02_01f", "casme2/sub01/EP19_05f", "samm/006/006_1_2", "samm/006/006_1_3",
        "smic/s1/s1_ne_01", "smic/s1/s1_po_01", "smic/s1/s1_sur_01",
    ]  # fmt: skip
    assert list(df["label"]) == ["positive", "negative", "negative", "negative", "negative", "positive", "surprise"]
    followed = rep["protocol"]["sources"]
    assert all(followed[n]["followed"] for n in ("casme2", "samm", "smic"))
    casme2 = followed["casme2"]
    assert casme2["left_out"] == ["casme2/sub05/EP09_05f", "casme2/sub24/EP07_01"]
    assert casme2["listed"] == 145 and casme2["kept"] == 2 and len(casme2["listed_not_found"]) == 143
    assert {"clip": "casme2/sub01/EP19_06f", "label": "negative"}.items() <= casme2["listed_not_found"][0].items()
    assert followed["smic"]["listed"] == 164 and followed["samm"]["listed"] == 133
    assert "casme2/sub04/EP12_01f" in {d["clip"] for d in rep["dropped"] if d["reason"].startswith("erratum")}
    assert rep["zero_motion"] == []  # sub05/EP09_05f (apex == onset) was left out by the list before any check


def test_a_label_that_disagrees_with_the_list_is_an_error_naming_the_clip(megc_release: Path, tmp_path: Path) -> None:
    patches = [{"source": "casme2", "subject": 1, "filename": "EP02_01f", "field": "emotion", "value": "disgust"}]
    with pytest.raises(ingest.IngestError, match=r"casme2/sub01/EP02_01f.*gives class negative, the MEGC 2019 list "
                       r"says positive"):  # fmt: skip
        ingest.run(_megc(megc_release, patches=patches), tmp_path / "out")


def test_class_rule_protocol_and_a_single_dataset_and_synthetic_data(megc_release: Path, tmp_path: Path) -> None:
    rule = ingest.run(_megc(megc_release, protocol="classes"), tmp_path / "rule")
    assert {"casme2/sub05/EP09_05f", "casme2/sub24/EP07_01"} <= set(rule["clip_id"])
    assert _report(tmp_path / "rule")["zero_motion"][0]["clip"] == "casme2/sub05/EP09_05f"  # apex == onset: reported
    one = ingest.run(DatasetParams(name="casme2", root=str(megc_release / "CASME2"), classes="megc3"), tmp_path / "1")
    assert list(one["clip_id"]) == ["sub01/EP02_01f", "sub01/EP19_05f"]
    assert _report(tmp_path / "1")["protocol"]["sources"]["casme2"]["followed"]
    synthetic = tmp_path / "synthetic"
    _casme2(synthetic, CASME2_ROWS, creator="memix.synth")
    df = ingest.run(DatasetParams(name="casme2", root=str(synthetic), classes="megc3"), tmp_path / "s")
    assert "sub24/EP07_01" in set(df["clip_id"])
    assert "synthetic" in _report(tmp_path / "s")["protocol"]["sources"]["casme2"]["why"]


def test_the_shipped_list_is_the_organisers_442_clips() -> None:
    rows = protocol._rows()
    assert len(rows) == 442 and len({(d, s) for d, s, _, _ in rows}) == 68
    counts = {c: sum(r[3] == c for r in rows) for c in protocol.CLASSES}
    assert counts == {"negative": 250, "positive": 109, "surprise": 83}
    assert protocol.fold_filename("smic", "s01_ne_01") == "s1_ne_01"


# ----------------------------------------------------------------------------------------- SMIC, .xls
def test_smic_cropped_release_with_an_empty_clip_folder(megc_release: Path, tmp_path: Path) -> None:
    smic = megc_release / "SMIC"
    empty = smic / "HS" / "s18" / "micro" / "surprise" / "s18_sur_03"
    empty.mkdir(parents=True)
    params = {"name": "smic", "root": str(smic), "classes": "3class"}
    with pytest.raises(ingest.IngestError, match=f"{empty}.*holds no frame images.*on_bad_frame: skip"):
        ingest.run(DatasetParams(**params), tmp_path / "out")
    df = ingest.run(DatasetParams(**params, on_bad_frame="skip"), tmp_path / "skip")
    assert list(df["clip"]) == ["s1_ne_01", "s1_po_01", "s1_sur_01"]
    assert df["apex_path"].str.endswith(".bmp").all() and df["onset"].tolist() == [300] * 3
    dropped = _report(tmp_path / "skip")["dropped"]
    assert len(dropped) == 1 and dropped[0]["folder"] == str(empty) and "on_bad_frame: skip" in dropped[0]["reason"]


def test_an_xls_sheet_is_refused_with_how_to_save_it_as_xlsx(megc_release: Path, tmp_path: Path) -> None:
    casme2 = megc_release / "CASME2"
    sheet = casme2 / "CASME2-coding-20190701.xlsx"
    sheet.rename(casme2 / "CASME2_label_Ver_2.xls")
    with pytest.raises(ingest.IngestError, match=r"CASME2_label_Ver_2.xls: an old Excel \(.xls\).*Save it as .xlsx"):
        ingest.run(DatasetParams(name="casme2", root=str(casme2)), tmp_path / "out")


def test_symlinked_clip_folders_are_followed(megc_release: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    for clip in (megc_release / "CASME2" / "sub01" / "EP02_01f", megc_release / "SMIC/HS/s1/micro/positive/s1_po_01"):
        elsewhere.mkdir(exist_ok=True)
        clip.rename(elsewhere / clip.name)
        clip.symlink_to(elsewhere / clip.name, target_is_directory=True)
    df = ingest.run(_megc(megc_release), tmp_path / "out")
    assert {"casme2/sub01/EP02_01f", "smic/s1/s1_po_01"} <= set(df["clip_id"])
    row = df.set_index("clip_id").loc["casme2/sub01/EP02_01f"]
    assert row["apex_path"] == "CASME2/sub01/EP02_01f/img12.jpg"  # the path through the link, inside the root


def test_a_damaged_apex_jpeg_stops_ingest_naming_the_file_or_is_a_reported_skip(
    megc_release: Path, tmp_path: Path
) -> None:
    root = megc_release / "CASME2"
    apex = root / "sub01" / "EP19_05f" / "img12.jpg"
    image = cv2.resize(cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR), (160, 120))  # a real photo
    assert cv2.imwrite(str(apex), image)
    data = bytearray(apex.read_bytes())
    sos = data.index(b"\xff\xda")
    start = sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")
    middle = start + (len(data) - 2 - start) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    apex.write_bytes(bytes(data))
    params = {"name": "casme2", "root": str(root), "classes": "megc3"}
    with pytest.raises(ingest.IngestError, match=f"row 3 \\(sub01/EP19_05f\\), field ApexFrame: .*damaged JPEG {apex}"):
        ingest.run(DatasetParams(**params), tmp_path / "out")
    df = ingest.run(DatasetParams(**params, on_bad_frame="skip"), tmp_path / "skip")
    assert list(df["clip_id"]) == ["sub01/EP02_01f"]
    assert [d["file"] for d in _report(tmp_path / "skip")["dropped"] if "file" in d] == [str(apex)]


def test_many_bad_rows_are_listed_up_to_fifty_with_a_count(tmp_path: Path) -> None:
    root = tmp_path / "CASME2"
    rows = [[1, f"EP{i:02d}_01", None, 10, 12, "x", None, 4, "disgust"] for i in range(60)]
    _save(root / "CASME2-coding.xlsx", [CASME2_HEADER, *rows])
    _frames(root / "sub01" / "EP00_01", range(10, 13))
    with pytest.raises(ingest.IngestError) as info:
        ingest.run(DatasetParams(name="casme2", root=str(root)), tmp_path / "out")
    lines = str(info.value).splitlines()
    assert lines[0].startswith("60 problems") and lines[-1] == "  ... and 10 more" and len(lines) == 52
    assert "row 2 (sub01/EP00_01), field OffsetFrame: not a frame number: 'x' -> fix: dataset.patches:" in lines[1]
