"""A full disk while compare writes: the error names the file (never its temp), says the free space once, and no
output is left half-written."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import fake_train
import pytest
import yaml
from diskfull import full, raising, says_disk_full, stage_main, the_error_line
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


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EFBIG, errno.EDQUOT])
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
    assert "the disk is full" in str(info.value)  # a quota or a file size limit is a full disk too
    assert sorted(p.name for p in out.iterdir()) == ["mixup_table.md"]  # no .tmp leftovers, no new file
    assert (out / "mixup_table.md").read_text() == "previous table\n"


@pytest.mark.parametrize("writer", ["table", "figure"])
def test_full_disk_is_the_compare_stages_one_line_naming_the_file(
    eval_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], writer: str
) -> None:
    """The table goes through a writer inside the set's writer (two temp folders deep): still the file's own name
    and one free-space clause, for the folder it goes into."""
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"compare": {"methods": METHODS, "seeds": [0, 1]}}))
    out = tmp_path / "reports"
    if writer == "table":
        monkeypatch.setattr(Path, "write_bytes", raising(full(errno.ENOSPC)))
    else:
        monkeypatch.setattr(Figure, "savefig", raising(full(errno.ENOSPC)))
    monkeypatch.delenv("MEMIX_DEBUG", raising=False)
    code = stage_main("compare")(["--params", str(params), "--eval-root", str(eval_root), "--out", str(out),
                                  "--ingest-report", str(tmp_path / "absent.json")])
    assert code == 1
    line = the_error_line(capsys.readouterr().err, "compare")
    said = says_disk_full(line, "compare", out / ("mixup_table.md" if writer == "table" else "mixup_table.png"))
    assert said and said.group(3) == str(out), line
    assert list(out.iterdir()) == []
