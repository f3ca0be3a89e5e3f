"""A full disk while compare writes: the error names the file, and no output is left half-written."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import fake_train
import pytest
from matplotlib.figure import Figure

from memix.config import EvalParams, parse_params
from memix.evaluation import evaluate, report

METHODS = ["none", "memix"]


@pytest.fixture(scope="module")
def eval_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("compare")
    table = fake_train.clips(n_subjects=4, per_subject=5)
    for i, method in enumerate(METHODS):
        train = fake_train.write_method(root / "train", method, table, seeds=[0, 1], skill=0.5 + 0.1 * i, seed=i)
        evaluate.run(EvalParams(), method, train, root / "eval" / method)
    return root / "eval"


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EFBIG])
def test_full_disk_during_compare_names_the_file_and_writes_nothing(
    eval_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    params = parse_params({"compare": {"methods": METHODS, "seeds": [0, 1]}})
    out = tmp_path / "reports"
    out.mkdir()
    (out / "mixup_table.md").write_text("previous table\n")  # a run by hand keeps the previous set whole

    def savefig(self, fname, *args, **kwargs):  # a PNG cut short by a full disk: some bytes, then the error
        Path(fname).write_bytes(b"\x89PNG\r\n")
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(Figure, "savefig", savefig)
    with pytest.raises(OSError) as info:
        report.run(params, eval_root, out)
    assert info.value.errno == code and str(out / "mixup_table.png") in str(info.value)
    assert sorted(p.name for p in out.iterdir()) == ["mixup_table.md"]  # no .tmp leftovers, no new file
    assert (out / "mixup_table.md").read_text() == "previous table\n"
