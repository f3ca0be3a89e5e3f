"""Atomic writes: a failure leaves neither the target nor temp leftovers; success replaces whole folders."""

from __future__ import annotations

import errno
import os
import pickle
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from memix.io import atomic


def test_failure_inside_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic.atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "half.bin").write_bytes(b"x")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_folder_is_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "stale.txt").write_text("old")
    (target / "manifest.json").write_text("{}")
    with atomic.atomic_path(target, owned=atomic.owned_if_holds("manifest.json")) as tmp:
        tmp.mkdir()
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_writing_nothing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="nothing was written"):
        with atomic.atomic_path(tmp_path / "f.txt"):
            pass


def test_json_and_parquet_bytes_are_deterministic(tmp_path: Path) -> None:
    df = pd.DataFrame({"clip_id": ["a", "b"], "x": [1.5, 2.5]})
    for name in ("a", "b"):
        atomic.write_parquet(tmp_path / name / "t.parquet", df)
        atomic.write_json(tmp_path / name / "t.json", {"z": 1, "a": [1, 2]})
    for f in ("t.parquet", "t.json"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "a" / "t.parquet"), df)


# ------------------------------------------------------------------------------------ leftovers of a killed run
def _killed_mid_write(path: Path) -> Path:
    """What a SIGKILL inside ``atomic_path(path)`` leaves: the temp folder with a half-written output in it."""
    tmp = tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    (Path(tmp) / path.name).mkdir()
    (Path(tmp) / path.name / "half.bin").write_bytes(b"x")
    return Path(tmp)


def test_stale_temps_beside_and_inside_an_output_are_removed(tmp_path: Path) -> None:
    out = tmp_path / "eval" / "none"
    out.mkdir(parents=True)
    (out / "metrics.json").write_text("{}")
    beside = _killed_mid_write(out)  # reports/eval/.none.*.tmp
    (out / "live").mkdir()
    inside = _killed_mid_write(out / "live" / "fold03")  # live/.fold03.*.tmp
    other = _killed_mid_write(tmp_path / "eval" / "memix")  # another stage's: not ours to remove
    (out / ".hidden.tmp").mkdir()  # not atomic_path's naming: left alone
    removed = atomic.remove_stale_temps(out)
    assert sorted(removed) == sorted([beside, inside])
    assert not beside.exists() and not inside.exists() and other.exists() and (out / ".hidden.tmp").is_dir()
    assert (out / "metrics.json").read_text() == "{}"
    assert atomic.remove_stale_temps(out, tmp_path / "absent" / "x.json") == []


def test_every_stage_removes_its_stale_temps_when_it_starts() -> None:
    """Each stage script of dvc.yaml calls remove_stale_temps for its outputs before its work."""
    import yaml

    repo = Path(__file__).resolve().parents[2]
    for name in yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]:
        assert "atomic.remove_stale_temps(" in (repo / "stages" / f"{name}.py").read_text(), name


def test_replacing_a_folder_keeps_dvcs_gitignore(tmp_path: Path) -> None:
    """DVC lists a folder's tracked files in a .gitignore inside it; losing it lets `git add -A` commit outputs."""
    target = tmp_path / "seed0"
    target.mkdir()
    (target / ".gitignore").write_text("/metrics.json\n/per_subject.csv\n")
    (target / "metrics.json").write_text("old")
    owned = atomic.owned_if_holds("metrics.json")
    with atomic.atomic_path(target, owned=owned) as tmp:
        tmp.mkdir()
        (tmp / "metrics.json").write_text("new")
    assert (target / ".gitignore").read_text() == "/metrics.json\n/per_subject.csv\n"
    assert (target / "metrics.json").read_text() == "new"
    with atomic.atomic_path(target, owned=owned) as tmp:  # a new folder with its own .gitignore keeps that one
        tmp.mkdir()
        (tmp / ".gitignore").write_text("/other\n")
    assert (target / ".gitignore").read_text() == "/other\n"


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EFBIG, errno.EDQUOT])
def test_a_full_disk_names_the_output_and_leaves_nothing(tmp_path: Path, monkeypatch, code: int) -> None:
    def full(self, data):  # what a write to a full disk raises: the errno, but no file name
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(OSError) as info:
        atomic.write_text(tmp_path / "out" / "table.md", "x")
    assert info.value.errno == code and str(tmp_path / "out" / "table.md") in str(info.value)
    assert list((tmp_path / "out").iterdir()) == []
    # inside a folder being built, the file is named at its final place, not in the temp folder
    monkeypatch.undo()
    with pytest.raises(OSError) as info:
        with atomic.atomic_path(tmp_path / "flow") as tmp:
            tmp.mkdir()
            raise OSError(code, os.strerror(code), str(tmp / "flow-00003.npy"))
    assert str(tmp_path / "flow" / "flow-00003.npy") in str(info.value) and ".tmp" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_dvc_does_not_hash_temp_folders(tmp_path: Path) -> None:
    """Until the stage removes it, a killed run's temp folder inside reports/eval must not flag `compare`."""
    repo = Path(__file__).resolve().parents[2]
    shutil.copy2(repo / ".dvcignore", tmp_path / ".dvcignore")
    leftover = _killed_mid_write(_mkdir(tmp_path / "reports" / "eval" / "none"))
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    proc = subprocess.run([*dvc, "check-ignore", "-d", f"{leftover.relative_to(tmp_path)}/", "reports/eval/none/"],
                          cwd=tmp_path, capture_output=True, text=True, check=False)
    assert leftover.name in proc.stdout and "reports/eval/none/\n" not in proc.stdout.replace("\t", "\n")


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


# ------------------------------------------------------------------------- nothing deleted that was not written
@pytest.mark.parametrize("owned", [None, atomic.owned_if_holds("manifest.json")])
def test_an_existing_foreign_folder_is_refused_and_kept(tmp_path: Path, owned) -> None:
    """A folder at the output path that the writer did not make is left alone, with every file in it."""
    target = tmp_path / "results"
    target.mkdir()
    (target / "thesis.tex").write_text("years of work")
    ran = []
    with pytest.raises(atomic.OutputFolderError, match="existing folder"):
        with atomic.atomic_path(target, owned=owned) as tmp:
            ran.append(tmp)
    assert ran == []  # refused before the caller wrote anything
    assert (target / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


@pytest.mark.parametrize("earlier", [False, True])
@pytest.mark.parametrize("holds", [[], ["notes.txt"], ["manifest.json"]])
def test_a_folder_that_appears_while_the_output_is_built_is_kept(tmp_path: Path, earlier: bool, holds) -> None:
    """Another process makes a folder at the output path (or puts its own in place of the earlier output) while the
    output is built: it is not this writer's earlier output, even empty or with the marker file, so the swap
    refuses naming the path, keeps the folder as it is and swaps in none of the set."""
    owned = atomic.owned_if_holds("manifest.json")
    target, other = tmp_path / "flow", tmp_path / "montage.png"
    other.write_text("old montage")
    if earlier:
        target.mkdir()
        (target / "manifest.json").write_text("{}")
    with pytest.raises(atomic.OutputFolderError, match=rf"{target}: a folder appeared there") as info:
        with atomic.atomic_paths(other, target, owned=owned) as (png, tmp):
            png.write_text("new montage")
            tmp.mkdir()
            (tmp / "manifest.json").write_text('{"new": 1}')
            if earlier:
                shutil.rmtree(target)
            target.mkdir()
            for name in holds:
                (target / name).write_text("theirs")
    assert ".tmp" not in str(info.value)
    assert sorted(p.name for p in target.iterdir()) == holds
    assert all((target / name).read_text() == "theirs" for name in holds)
    assert other.read_text() == "old montage"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flow", "montage.png"]  # no temp folder left


def test_an_existing_file_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "out.csv").write_text("old")
    atomic.write_text(tmp_path / "out.csv", "new")
    assert (tmp_path / "out.csv").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


# ------------------------------------------------------------------------------------------- all outputs or none
def _old_set(tmp_path: Path) -> list[Path]:
    paths = [tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "c"]
    paths[0].write_text("old a")
    paths[1].write_text("old b")
    paths[2].mkdir()
    (paths[2] / "seed0").write_text("old c")
    return paths


def test_a_failed_swap_restores_every_previous_output(tmp_path: Path, monkeypatch) -> None:
    """A failure between two renames (a full disk, a kill) must not leave a new output beside an old one."""
    paths = _old_set(tmp_path)
    real_replace = os.replace

    def fail_on_last(src, dst):  # the rename of the new third output into place fails
        if Path(dst) == paths[2] and Path(src).name == "c":
            raise OSError(errno.EIO, "I/O error")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_last)
    with pytest.raises(OSError):
        with atomic.atomic_paths(*paths, owned=atomic.owned_if_holds("seed0")) as (a, b, c):
            a.write_text("new a")
            b.write_text("new b")
            c.mkdir()
            (c / "seed0").write_text("new c")
    monkeypatch.undo()
    assert [paths[0].read_text(), paths[1].read_text(), (paths[2] / "seed0").read_text()] == [
        "old a", "old b", "old c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt", "c"]


def test_all_outputs_are_swapped_in_together(tmp_path: Path) -> None:
    paths = _old_set(tmp_path)
    with atomic.atomic_paths(*paths, owned=atomic.owned_if_holds("seed0")) as (a, b, c):
        a.write_text("new a")
        b.write_text("new b")
        c.mkdir()
        (c / "seed0").write_text("new c")
        assert paths[0].read_text() == "old a"  # nothing moves before the last output is complete
    assert [paths[0].read_text(), paths[1].read_text(), (paths[2] / "seed0").read_text()] == [
        "new a", "new b", "new c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt", "c"]


@pytest.mark.parametrize("said", [
    "basic_ios::clear: iostream error",
    "[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534",  # torch.save's
])
def test_a_native_writer_failure_names_the_output_and_free_space(tmp_path: Path, said: str) -> None:
    """A C++ stream failure says only `basic_ios::clear: iostream error`; the error must name what was written."""
    with pytest.raises(OSError, match=rf"flow: could not be written .*{re.escape(said)}.* MiB free on "):
        with atomic.atomic_path(tmp_path / "flow") as tmp:
            tmp.mkdir()
            raise RuntimeError(said)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_says_how_much_space_is_free(tmp_path: Path) -> None:
    with pytest.raises(OSError, match=r"MiB free on") as info:
        with atomic.atomic_path(tmp_path / "t.parquet"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert str(tmp_path / "t.parquet") in str(info.value)


def test_an_error_inside_the_second_output_names_that_output(tmp_path: Path) -> None:
    with pytest.raises(OSError) as info:
        with atomic.atomic_paths(tmp_path / "flow", tmp_path / "montage.png") as (flow, png):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(png))
    assert str(tmp_path / "montage.png") in str(info.value) and ".tmp" not in str(info.value)
    assert "MiB free" in str(info.value) and list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------ a full disk
@pytest.mark.parametrize(("err", "full"), [
    (OSError(errno.ENOSPC, "No space left on device"), True),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), True),
    (OSError(errno.EFBIG, "File too large"), True),
    (OSError("1128960 requested and 688064 written"), True),  # numpy's short write
    (OSError("Error writing bytes to file. Detail: [errno 28] No space left on device"), True),  # pyarrow's
    (sqlite3.OperationalError("database or disk is full"), True),  # DVCLive's state
    (OSError(errno.EIO, "Input/output error"), False),
    (ValueError("frame file too large"), False),
])
def test_one_place_says_what_a_full_disk_is(err: BaseException, full: bool) -> None:
    assert atomic.is_disk_full(err) is full


def test_a_nested_writers_full_disk_names_the_output_with_one_free_space_clause(tmp_path: Path) -> None:
    """A writer inside a writer (a table inside a set of outputs, a shard folder inside the flow stage's pair):
    the error names the file at its final place and the free space on its folder, once."""
    with pytest.raises(atomic.DiskFullError) as info:
        with atomic.atomic_paths(tmp_path / "out" / "table.md", tmp_path / "out" / "fig.png") as (md, png):
            with atomic.atomic_path(md) as inner:
                inner.write_text("half")
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    text = str(info.value)
    assert text == f"{tmp_path / 'out' / 'table.md'}: the disk is full (No space left on device){info.value.free}"
    assert info.value.free.endswith(f"MiB free on {tmp_path / 'out'}") and text.count("MiB free") == 1
    assert info.value.errno == errno.ENOSPC and ".tmp" not in text
    assert pickle.loads(pickle.dumps(info.value)).args == info.value.args  # it crosses from worker processes


def test_a_temp_folder_that_cannot_be_made_names_the_output(tmp_path: Path, monkeypatch) -> None:
    def full_mkdtemp(prefix: str, suffix: str, dir: Path) -> str:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(Path(dir) / f"{prefix}abcd1234{suffix}"))

    monkeypatch.setattr(tempfile, "mkdtemp", full_mkdtemp)
    with pytest.raises(atomic.DiskFullError, match=rf"^{tmp_path / 'curves.csv'}: the disk is full") as info:
        atomic.write_text(tmp_path / "curves.csv", "x")
    assert ".tmp" not in str(info.value)
