"""Atomic output: every stage writes to a temporary sibling and renames, so a failure leaves nothing half-written.

A killed process cannot clean up, so its temporary sibling (``.<name>.<random>.tmp``) survives; each stage calls
:func:`remove_stale_temps` on its outputs when it starts. Replacing a folder keeps the ``.gitignore`` DVC put in
it (DVC lists a folder's tracked files there; losing it would let ``git add -A`` commit outputs).

Nothing is deleted that the command did not write: an existing folder at an output path is replaced only when
the writer recognises it as its own earlier output (``owned``); any other folder is refused before anything is
written. A folder that appears at an output path while the output is built (another process's) is refused at the
swap, even empty: only the earlier output that was there when the build began may be replaced. Several outputs
that belong together (:func:`atomic_paths`) are all built first and then swapped in together: a failure during the
swap puts every previous output back, so the set is either all new or all old.

An ``OSError`` raised while writing is re-raised naming the output, never the temporary path. A full disk says only
``No space left on device`` (or ``Disk quota exceeded``, or numpy's ``N requested and M written``): :func:`is_disk_full`
is the one place that recognises it, and :class:`DiskFullError` the one way it is said, naming the output and the free
space there once, however deeply the writers nest. A C/C++ library's I/O failure (``basic_ios::clear: iostream
error``) is named the same way, with the free space.

Also the one file checksum the outputs record (shard manifests, the ingest report's sheet digest).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

GITIGNORE = ".gitignore"
TEMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(r"^\.(.+)\.[a-z0-9_]{8}" + re.escape(TEMP_SUFFIX) + "$")
_PREVIOUS = ".previous"
"""Name, inside an output's temp folder, of the previous output while the new one is swapped in."""
_SPACE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_SPACE_TEXT = re.compile(
    r"No space left on device|Disk quota exceeded|File too large|database or disk is full|\d+ requested and \d+ written"
)
"""Full-disk messages of I/O errors that come without an errno: pyarrow's, sqlite's (DVCLive's state), numpy's
short write (``1128960 requested and 688064 written``)."""
_NATIVE_IO = re.compile(r"basic_ios|iostream error|Error writing|write failed|unexpected pos", re.IGNORECASE)
"""Messages of C/C++ writers' I/O failures that arrive as other exception types (OpenCV, pyarrow, libstdc++, torch)."""

Owned = Callable[[Path], bool]
"""Tells whether an existing folder at an output path is the writer's own earlier output (and may be replaced)."""


class OutputFolderError(FileExistsError):
    """An output path is an existing folder the command did not write; nothing was written or removed."""


def owned_if_holds(*names: str) -> Owned:
    """An :data:`Owned` test: the folder is empty (``.gitignore`` aside) or holds one of these marker files."""

    def owned(folder: Path) -> bool:
        entries = [p for p in folder.iterdir() if p.name != GITIGNORE]
        return not entries or any((folder / name).is_file() for name in names)

    return owned


def check_output(path: str | Path, owned: Owned | None = None) -> None:
    """Refuse (:class:`OutputFolderError`) an output path that is an existing folder this writer did not make."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink() and not (owned is not None and owned(path)):
        raise OutputFolderError(
            f"{path}: is an existing folder, not an output of this command; nothing was written or removed "
            "(give a file path, or move the folder away yourself)"
        )


class DiskFullError(OSError):
    """Out of space (full disk, quota, file size limit) while writing an output: ``<output>: the disk is full
    (<what the writer said>); <N> MiB free on <folder>``. Built as ``OSError(errno, message, output)`` so that it
    pickles (from a worker process) and so that a writer around a writer re-names it without repeating a clause."""

    def __init__(self, code: int | None, message: str, filename: str) -> None:
        super().__init__(code, message, filename)
        self.free = _free_space(Path(filename))

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}{self.free}"


def is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` (or an error it was raised from) says the disk is full: ENOSPC, EDQUOT or EFBIG, or a
    writer's message that says as much without an errno (a short write, sqlite's ``database or disk is full``)."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _SPACE_ERRNOS:
            return True
        if isinstance(seen, OSError | sqlite3.Error) and _SPACE_TEXT.search(str(seen)):
            return True
        seen = seen.__cause__
    return False


def disk_full(err: BaseException, output: str | Path, doing: str = "") -> DiskFullError:
    """``err`` (which :func:`is_disk_full`) as the :class:`DiskFullError` naming ``output``; ``doing`` says who
    was writing (``DVCLive could not write its logs``) where the output alone does not."""
    if isinstance(err, DiskFullError):  # from a writer inside this one: said already, only re-named
        return DiskFullError(err.errno, err.strerror, str(output))
    code = err.errno if isinstance(err, OSError) and err.errno in _SPACE_ERRNOS else errno.ENOSPC
    if isinstance(err, OSError):
        detail = err.strerror or str(err)
    else:
        detail = f"{type(err).__name__}: {err}"
    return DiskFullError(code, f"{doing}: " * bool(doing) + f"the disk is full ({detail})", str(output))


class _Output:
    """One output being built: its temp folder beside it and the path the caller writes (``target``)."""

    def __init__(self, path: Path, owned: Owned | None) -> None:
        self.path, self.owned = path, owned
        self.tmp: Path | None = None
        self.previous: Path | None = None  # where the previous output waits during the swap
        self.swapped = False
        self.found: tuple[int, int] | None = None  # the earlier output folder open() accepted (device, inode)
        self.pin: int | None = None  # a descriptor of that folder, so that its inode cannot be reused meanwhile

    @property
    def target(self) -> Path:
        assert self.tmp is not None
        return self.tmp / self.path.name

    def open(self) -> None:
        check_output(self.path, self.owned)
        self.found = _folder_id(self.path)
        if self.found is not None:
            with contextlib.suppress(OSError):
                self.pin = os.open(self.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=TEMP_SUFFIX, dir=self.path.parent))
        except OSError as err:
            raise _naming(err, self.path, None) from err

    def swap_in(self) -> None:
        """Put the previous output aside (a hard link for a file, so the path never goes missing) and rename
        the new one into place."""
        path, target = self.path, self.target
        self.check_unchanged()
        aside = self.target.parent / _PREVIOUS
        if path.is_dir() and not path.is_symlink():
            _keep_gitignores(path, target)
            os.replace(path, aside)
            self.previous = aside
        elif path.exists() or path.is_symlink():
            try:
                os.link(path, aside, follow_symlinks=False)
            except OSError:  # a file system without hard links: a copy does as well
                shutil.copy2(path, aside, follow_symlinks=False)
            self.previous = aside
        os.replace(target, path)
        self.swapped = True

    def check_unchanged(self) -> None:
        """Refuse a folder at the path that is not the one :meth:`open` accepted: another process made it (or
        swapped it) while this output was built, so it is not this writer's earlier output, whatever it holds."""
        now = _folder_id(self.path)
        if now is not None and now != self.found:
            raise OutputFolderError(
                f"{self.path}: a folder appeared there while this output was built; it was kept and nothing was "
                "replaced (move it away yourself and run again)"
            )
        check_output(self.path, self.owned)

    def roll_back(self) -> None:
        """Undo :meth:`swap_in`: the new output back into the temp folder, the previous one back in place."""
        with contextlib.suppress(OSError):
            if self.swapped:
                os.replace(self.path, self.target)
            if self.previous is not None:
                os.replace(self.previous, self.path)

    def close(self) -> None:
        if self.pin is not None:
            os.close(self.pin)
            self.pin = None
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_path(path: str | Path, owned: Owned | None = None) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success rename it over ``path``, on error remove it.

    Works for files and directories alike: the caller creates whatever it wants at the yielded path. An existing
    folder at ``path`` is replaced only where ``owned`` says it is the writer's own (see :func:`owned_if_holds`);
    otherwise :class:`OutputFolderError` is raised before anything is written. A folder that is replaced keeps its
    ``.gitignore`` files (DVC's) unless the new folder brings its own.
    """
    with atomic_paths(path, owned=owned) as (target,):
        yield target


@contextlib.contextmanager
def atomic_paths(*paths: str | Path, owned: Owned | None = None) -> Iterator[list[Path]]:
    """:func:`atomic_path` for several outputs that belong together: each is built at its temp path, and only when
    every one is complete are they swapped in; a failure in the swap restores every previous output."""
    outs = [_Output(Path(p), owned) for p in paths]
    try:
        for out in outs:
            out.open()
        try:
            yield [out.target for out in outs]
            for out in outs:
                if not out.target.exists():
                    raise RuntimeError(f"nothing was written for {out.path}")
            for out in outs:
                out.swap_in()
        except BaseException:
            for out in reversed(outs):
                out.roll_back()
            raise
    except OutputFolderError:
        raise
    except OSError as err:
        named = _naming_any(err, outs)
        if named is err:
            raise
        raise named from err
    except Exception as err:
        named = write_error(err, _owner(err, outs).path)
        if named is err:
            raise
        raise named from err
    finally:
        for out in outs:
            out.close()


def write_error(err: Exception, output: Path) -> Exception:
    """A writer's failure as the error to show for ``output``: a full disk as :class:`DiskFullError`, a C/C++
    writer's bare I/O failure (torch's ``unexpected pos``, ``basic_ios``) naming the output and the free space;
    any other error as it is."""
    if is_disk_full(err):
        return disk_full(err, output)
    if not _NATIVE_IO.search(str(err)):
        return err
    return OSError(f"{output}: could not be written ({type(err).__name__}: {err}){_free_space(output)}")


@contextlib.contextmanager
def writing(output: str | Path) -> Iterator[None]:
    """Errors of a write in place (no temp path: e.g. a checkpoint replaced in place) named by :func:`write_error`."""
    try:
        yield
    except Exception as err:
        named = write_error(err, Path(output))
        if named is err:
            raise
        raise named from err


def _folder_id(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the real folder at ``path``; None for nothing, a file or a link."""
    try:
        st = path.lstat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


def _owner(err: BaseException, outs: list[_Output]) -> _Output:
    """The output a failure concerns: the one whose temp path its message names, else the one being written
    when it failed (the last that has something at its temp path), else the first."""
    text = str(err)
    for out in outs:
        if out.tmp is not None and str(out.tmp) in text:
            return out
    started = [out for out in outs if out.tmp is not None and (out.target.exists() or out.target.is_symlink())]
    return started[-1] if started else outs[0]


def _naming_any(err: OSError, outs: list[_Output]) -> OSError:
    """:func:`_naming` for the output whose temp path the error names (see :func:`_owner` if it names no file)."""
    if err.filename is None:
        out = _owner(err, outs)
        return _naming(err, out.path, out.tmp)
    name = Path(os.fsdecode(err.filename))
    for out in outs:
        if out.tmp is not None and (name == out.tmp or out.tmp in name.parents):
            return _naming(err, out.path, out.tmp)
    return _naming(err, name, None)


def stale_temps(path: str | Path) -> list[Path]:
    """Temporary folders :func:`atomic_path` left for ``path`` (beside it, and anywhere inside it if a folder)."""
    path = Path(path)
    found = []
    if path.parent.is_dir():
        found = [p for p in path.parent.iterdir() if p.name.startswith(f".{path.name}.") and _is_temp(p, path.name)]
    if path.is_dir() and not path.is_symlink():
        found += [p for p in path.rglob(f".*{TEMP_SUFFIX}") if _is_temp(p)]
    return sorted(found)


def remove_stale_temps(*paths: str | Path) -> list[Path]:
    """Delete what killed runs left behind for these outputs (see :func:`stale_temps`); return what was removed.

    Each stage calls it for its outputs when it starts: a leftover inside or beside an output would change
    the folder DVC hashes, and nothing else ever removes it.
    """
    removed = []
    for path in paths:
        for tmp in stale_temps(path):
            try:
                shutil.rmtree(tmp)
            except FileNotFoundError:
                continue
            except OSError as err:
                raise _naming(err, tmp, None) from err
            removed.append(tmp)
    return removed


def _is_temp(path: Path, name: str | None = None) -> bool:
    """A folder ``.<name>.<8 random chars>.tmp`` as ``tempfile.mkdtemp`` names it for :func:`atomic_path`."""
    return _is_temp_name(path, name) and path.is_dir() and not path.is_symlink()


def _is_temp_name(path: Path, name: str | None = None) -> bool:
    """Whether ``path`` is named as :func:`atomic_path`'s temp folder (for the output ``name``, if given)."""
    match = _TEMP_NAME.match(path.name)
    return bool(match) and (name is None or match.group(1) == name)


def _keep_gitignores(old: Path, new: Path) -> None:
    """Copy each ``.gitignore`` of the folder ``old`` into the same place in ``new`` where ``new`` has none."""
    if not new.is_dir():
        return
    for ignore in old.rglob(GITIGNORE):
        dest = new / ignore.relative_to(old)
        if ignore.is_file() and dest.parent.is_dir() and not dest.exists():
            shutil.copy2(ignore, dest)


def _free_space(path: Path) -> str:
    """``; 12.0 MiB free on <folder>`` for the nearest existing folder of ``path`` (empty if it cannot tell)."""
    folder = path if path.is_dir() else path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return ""
    return f"; {free / (1 << 20):.1f} MiB free on {folder}"


def _naming(err: OSError, path: Path, tmp: Path | None) -> OSError:
    """The error naming the output ``path`` (built in the temp folder ``tmp``): ``err`` itself when it names a file
    outside the temp folder, the same error with the temp location mapped onto ``path`` when it names one inside,
    else naming ``path``. A full disk (or quota, or file size limit) is a :class:`DiskFullError`."""
    name = _mapped(err, path, tmp)
    if is_disk_full(err):
        return disk_full(err, name)
    if err.filename is not None and name == Path(os.fsdecode(err.filename)):
        return err
    return OSError(err.errno, err.strerror or str(err), str(name))


def _mapped(err: OSError, path: Path, tmp: Path | None) -> Path:
    """The path an error about ``path`` should name: its file at its final place, never in the temp folder."""
    if err.filename is None:
        return path
    name = Path(os.fsdecode(err.filename))
    if tmp is None and name.parent == path.parent and _is_temp_name(name, path.name):
        return path  # making the temp folder failed
    if tmp is None or not (name == tmp or tmp in name.parents):
        return name
    target = tmp / path.name
    if name == target or target in name.parents:
        return path / name.relative_to(target)
    return path  # the temp folder itself, or a writer's own temp file inside it


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    """Deterministic JSON (sorted keys, fixed indent) so equal content gives equal bytes."""
    write_bytes(path, json_bytes(obj))


def json_bytes(obj: Any) -> bytes:
    """The bytes :func:`write_json` writes."""
    return (json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n").encode("utf-8")


def write_parquet(path: str | Path, df: pd.DataFrame) -> None:
    """Parquet without pandas' index and without write-time metadata that would change the bytes."""
    with atomic_path(path) as tmp:
        parquet_into(tmp, df)


def parquet_into(tmp: Path, df: pd.DataFrame) -> None:
    """:func:`write_parquet`'s bytes at ``tmp``, a temp path that :func:`atomic_paths` gave (several outputs)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False).replace_schema_metadata(None)
    pq.write_table(table, tmp, compression="zstd")


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return obj.as_posix()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
