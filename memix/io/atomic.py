"""Atomic output: every stage writes to a temporary sibling and renames, so a failure leaves nothing half-written.

A killed process cannot clean up, so its temporary sibling (``.<name>.<random>.tmp``) survives; each stage calls
:func:`remove_stale_temps` on its outputs when it starts. Replacing a folder keeps the ``.gitignore`` DVC put in
it (DVC lists a folder's tracked files there; losing it would let ``git add -A`` commit outputs).

Nothing is deleted that the command did not write: an existing folder at an output path is replaced only when
the writer recognises it as its own earlier output (``owned``); any other folder is refused before anything is
written. Several outputs that belong together (:func:`atomic_paths`) are all built first and then swapped in
together: a failure during the swap puts every previous output back, so the set is either all new or all old.

An ``OSError`` raised while writing (a full disk says only ``No space left on device``) is re-raised naming the
output and the free space there; so is a C/C++ library's I/O failure (``basic_ios::clear: iostream error``).

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
_NATIVE_IO = re.compile(r"basic_ios|iostream error|No space left|Error writing|write failed", re.IGNORECASE)
"""Messages of C/C++ writers' I/O failures that arrive as other exception types (OpenCV, pyarrow, libstdc++)."""

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


class _Output:
    """One output being built: its temp folder beside it and the path the caller writes (``target``)."""

    def __init__(self, path: Path, owned: Owned | None) -> None:
        self.path, self.owned = path, owned
        self.tmp: Path | None = None
        self.previous: Path | None = None  # where the previous output waits during the swap
        self.swapped = False

    @property
    def target(self) -> Path:
        assert self.tmp is not None
        return self.tmp / self.path.name

    def open(self) -> None:
        check_output(self.path, self.owned)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=TEMP_SUFFIX, dir=self.path.parent))
        except OSError as err:
            raise _naming(err, self.path, None) from err

    def swap_in(self) -> None:
        """Put the previous output aside (a hard link for a file, so the path never goes missing) and rename
        the new one into place."""
        path, target = self.path, self.target
        check_output(path, self.owned)  # the path may have become a folder while this one was built
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

    def roll_back(self) -> None:
        """Undo :meth:`swap_in`: the new output back into the temp folder, the previous one back in place."""
        with contextlib.suppress(OSError):
            if self.swapped:
                os.replace(self.path, self.target)
            if self.previous is not None:
                os.replace(self.previous, self.path)

    def close(self) -> None:
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
        if not _NATIVE_IO.search(str(err)):
            raise
        out = _owner(err, outs)
        raise OSError(f"{out}: could not be written ({type(err).__name__}: {err}){_free_space(out)}") from err
    finally:
        for out in outs:
            out.close()


def _owner(err: BaseException, outs: list[_Output]) -> Path:
    """The output a failure concerns: the one whose temp path its message names, else the first."""
    text = str(err)
    for out in outs:
        if out.tmp is not None and str(out.tmp) in text:
            return out.path
    return outs[0].path


def _naming_any(err: OSError, outs: list[_Output]) -> OSError:
    """:func:`_naming` for the output whose temp path the error names (the first output if it names no file)."""
    if err.filename is None:
        return _naming(err, outs[0].path, None)
    name = Path(os.fsdecode(err.filename))
    for out in outs:
        if out.tmp is not None and (name == out.tmp or out.tmp in name.parents):
            return _naming(err, out.path, out.target)
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
    match = _TEMP_NAME.match(path.name)
    return bool(match) and (name is None or match.group(1) == name) and path.is_dir() and not path.is_symlink()


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


def _naming(err: OSError, path: Path, target: Path | None) -> OSError:
    """The error naming the output: ``err`` itself when it names a file outside the temp folder, the same error
    with the temp location (``target``) mapped onto ``path`` when it names one inside, else naming ``path``. A
    full disk (or quota, or file size limit) also says how much space is free there."""
    space = _free_space(path) if err.errno in _SPACE_ERRNOS else ""
    message = (err.strerror or str(err)) + space
    if err.filename is None:
        return OSError(err.errno, message, str(path))
    name = Path(os.fsdecode(err.filename))
    if target is not None and (name == target or target in name.parents):
        return OSError(err.errno, message, str(path / name.relative_to(target)))
    if target is not None and name == target.parent:
        return OSError(err.errno, message, str(path))
    if space:
        return OSError(err.errno, message, str(name))
    return err


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
