"""Atomic output: every stage writes to a temporary sibling and renames, so a failure leaves nothing half-written.

A killed process cannot clean up, so its temporary sibling (``.<name>.<random>.tmp``) survives; each stage calls
:func:`remove_stale_temps` on its outputs when it starts. Replacing a folder keeps the ``.gitignore`` DVC put in
it (DVC lists a folder's tracked files there; losing it would let ``git add -A`` commit outputs). An ``OSError``
raised while writing (a full disk says only ``No space left on device``) is re-raised naming the output.

Also the one file checksum the outputs record (shard manifests, the ingest report's sheet digest).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

GITIGNORE = ".gitignore"
TEMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(r"^\.(.+)\.[a-z0-9_]{8}" + re.escape(TEMP_SUFFIX) + "$")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success rename it over ``path``, on error remove it.

    Works for files and directories alike: the caller creates whatever it wants at the yielded path. A folder
    that is replaced keeps its ``.gitignore`` files (DVC's) unless the new folder brings its own.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent))
    except OSError as err:
        raise _naming(err, path, None) from err
    target = tmp / path.name
    try:
        yield target
        if not target.exists():
            raise RuntimeError(f"nothing was written for {path}")
        if path.is_dir() and not path.is_symlink():
            _keep_gitignores(path, target)
            shutil.rmtree(path)
        os.replace(target, path)
    except OSError as err:
        named = _naming(err, path, target)
        if named is err:
            raise
        raise named from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_paths(*paths: str | Path) -> Iterator[list[Path]]:
    """:func:`atomic_path` for several outputs that belong together: all are renamed into place, or none."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(atomic_path(p)) for p in paths]


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


def _naming(err: OSError, path: Path, target: Path | None) -> OSError:
    """The error naming the output: ``err`` itself when it names a file outside the temp folder, the same error
    with the temp location (``target``) mapped onto ``path`` when it names one inside, else naming ``path``."""
    if err.filename is None:
        return OSError(err.errno, err.strerror or str(err), str(path))
    name = Path(os.fsdecode(err.filename))
    if target is not None and (name == target or target in name.parents):
        return OSError(err.errno, err.strerror or str(err), str(path / name.relative_to(target)))
    if target is not None and name == target.parent:
        return OSError(err.errno, err.strerror or str(err), str(path))
    return err


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    """Deterministic JSON (sorted keys, fixed indent) so equal content gives equal bytes."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_parquet(path: str | Path, df: pd.DataFrame) -> None:
    """Parquet without pandas' index and without write-time metadata that would change the bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata(None)
    with atomic_path(path) as tmp:
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
