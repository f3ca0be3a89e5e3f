"""The coding sheet: CASME II's header (blank columns included), pandas round trip, byte-identical output."""

from __future__ import annotations

import io
import zipfile

import openpyxl
import pandas as pd

from memix.synth.sheet import FIXED_TIME, HEADER, ZIP_TIME, sheet_bytes, sheet_row

ROWS = [
    sheet_row(1, "EP02_01f", 46, 59, 86, "12", "happiness"),
    sheet_row(1, "EP03_02", 130, 139, 161, "4+L10", "disgust"),
    sheet_row(2, "EP19_05", 2001, 2010, 2025, "1+2", "surprise"),
]


def test_header_is_casme2_order_with_blank_columns() -> None:
    ws = openpyxl.load_workbook(io.BytesIO(sheet_bytes(ROWS))).active
    header = [c.value for c in ws[1]]
    assert header == [
        "Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None, "Action Units",
        "Estimated Emotion",
    ]  # fmt: skip
    assert tuple(header) == HEADER


def test_pandas_round_trip_keeps_values_and_types() -> None:
    df = pd.read_excel(io.BytesIO(sheet_bytes(ROWS)))
    assert list(df.columns) == [
        "Subject", "Filename", "Unnamed: 2", "OnsetFrame", "ApexFrame", "OffsetFrame", "Unnamed: 6",
        "Action Units", "Estimated Emotion",
    ]  # fmt: skip
    assert df["Unnamed: 2"].isna().all() and df["Unnamed: 6"].isna().all()
    assert df["Subject"].tolist() == [1, 1, 2]
    assert df["Filename"].tolist() == ["EP02_01f", "EP03_02", "EP19_05"]
    assert df[["OnsetFrame", "ApexFrame", "OffsetFrame"]].values.tolist() == [
        [46, 59, 86],
        [130, 139, 161],
        [2001, 2010, 2025],
    ]
    # CASME II stores a single bilateral AU as a number and combinations as text.
    assert [str(v) for v in df["Action Units"]] == ["12", "4+L10", "1+2"]
    assert df["Estimated Emotion"].tolist() == ["happiness", "disgust", "surprise"]


def test_bytes_are_pinned() -> None:
    data = sheet_bytes(ROWS)
    assert data == sheet_bytes([list(r) for r in ROWS])
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert {info.date_time for info in zf.infolist()} == {ZIP_TIME}
        core = zf.read("docProps/core.xml").decode()
    stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f">{stamp}</dcterms:created>" in core and f">{stamp}</dcterms:modified>" in core
    assert sheet_bytes(ROWS[:2]) != data
