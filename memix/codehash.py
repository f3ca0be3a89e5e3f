"""The code a stage runs, found from the source, and one hash of it.

A stage's import closure: every ``import`` / ``from ... import`` of a ``memix`` module or of ``stages/_common.py``,
followed transitively, package ``__init__`` files included; imports under ``if TYPE_CHECKING:`` are left out since
they never run. The data files a package ships (folders without ``__init__.py`` beside its modules, e.g. the
datasets' errata) belong to the closure of every module of that package.

The pipeline's ``code`` stage writes one listing per stage (:func:`stage_listings`: path and sha256 of every
file of its closure) and each stage depends on its own listing instead of on every module: DVC then checks
one small file per stage rather than dozens (a faster no-op ``dvc repro``), and a stage still reruns exactly
when a file it runs changes. The training checkpoints carry :func:`code_hash` of the same closure, so a run
interrupted before a code change is not resumed with the new code.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
"""The checkout this package was imported from (holds ``memix/`` and, in a project, ``stages/``)."""


def module_file(name: str, root: Path | None = None) -> Path | None:
    """The source file of module ``name`` under ``root`` (``memix.x.y`` or a stage-local module), if any."""
    root = ROOT if root is None else root
    parts = name.split(".")
    candidates = [root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts, "__init__.py")]
    if len(parts) == 1:
        candidates.append(root / "stages" / f"{name}.py")
    return next((c for c in candidates if c.is_file()), None)


def package_inits(name: str, root: Path | None = None) -> list[Path]:
    """The ``__init__.py`` of every package above module ``name``."""
    root = ROOT if root is None else root
    parts = name.split(".")
    return [p for i in range(1, len(parts)) if (p := root.joinpath(*parts[:i], "__init__.py")).is_file()]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(tree: ast.AST) -> list[str]:
    """Absolute module names a source imports (``from a import b`` gives ``a`` and ``a.b``), TYPE_CHECKING aside."""
    names: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def import_closure(script: Path, extra_modules: Iterable[str] = (), root: Path | None = None) -> set[Path]:
    """Every source file under ``root`` that running ``script`` imports (the script itself included), plus the
    modules ``extra_modules`` (imported by name at run time, e.g. a mixing method's module) and their imports."""
    root = ROOT if root is None else root
    seen: set[Path] = set()
    todo = [script, *(f for m in extra_modules for f in [module_file(m, root), *package_inits(m, root)] if f)]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_names(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if not (name == "memix" or name.startswith("memix.") or name == "_common"):
                continue
            found = module_file(name, root)
            if found is not None:
                todo.append(found)
                todo.extend(package_inits(name, root))
    return seen | {f for path in seen for f in package_data(path.parent)}


def package_data(package: Path) -> list[Path]:
    """The data files a package folder ships: every file under its sub-folders that are not packages."""
    if not (package / "__init__.py").is_file():
        return []
    return [
        f
        for sub in sorted(package.iterdir())
        if sub.is_dir() and not (sub / "__init__.py").exists() and sub.name != "__pycache__"
        for f in sorted(sub.rglob("*"))
        if f.is_file() and "__pycache__" not in f.parts
    ]


def code_hash(files: Iterable[Path], root: Path | None = None) -> str:
    """sha256 over the files' paths (relative to ``root``) and bytes, in path order."""
    root = ROOT if root is None else root
    digest = hashlib.sha256()
    for path in sorted(Path(f) for f in files):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def stage_code_hash(stage: str, extra_modules: Iterable[str] = (), entry: str = "memix") -> str:
    """:func:`code_hash` of ``stages/<stage>.py``'s closure; where the package runs outside a project (no
    ``stages/``), of the closure of the module ``entry``."""
    script = ROOT / "stages" / f"{stage}.py"
    if not script.is_file():
        script = module_file(entry) or ROOT / "memix" / "__init__.py"
    return code_hash(import_closure(script, extra_modules))


LISTING_SUFFIX = ".txt"
PER_METHOD_STAGES = ("train", "fit", "transfer")
"""Stages that import a mixing method's module by name: one listing per (stage, method)."""

ALL_METHODS_STAGES = ("arch",)
"""Stages that may run any mixing method (a run's ``methods``): their listing holds every method's module."""


def listing_name(stage: str, method: str | None = None) -> str:
    """The file name of a stage's code listing (``train-memix.txt`` for a per-method stage)."""
    return f"{stage}-{method}{LISTING_SUFFIX}" if method else f"{stage}{LISTING_SUFFIX}"


def listing(files: Iterable[Path], root: Path | None = None) -> str:
    """One line per file, ``<sha256>  <path relative to root>``, in path order (the bytes DVC hashes)."""
    root = ROOT if root is None else root
    lines = [
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(root).as_posix()}"
        for p in sorted(Path(f) for f in files)
    ]
    return "".join(line + "\n" for line in lines)


def stage_listings(methods: Iterable[str], root: Path | None = None) -> dict[str, str]:
    """File name -> code listing, for every stage script in ``root/stages`` (helpers starting with ``_`` and the
    ``code`` stage aside); :data:`PER_METHOD_STAGES` get one per method, with the method's module added."""
    from memix.mixing import module_name  # the mixing registry names each method's module

    root = ROOT if root is None else root
    out: dict[str, str] = {}
    for script in sorted((root / "stages").glob("*.py")):
        stage = script.stem
        if stage.startswith("_") or stage == "code":
            continue
        if stage in PER_METHOD_STAGES:
            for method in methods:
                files = import_closure(script, [module_name(method)], root)
                out[listing_name(stage, method)] = listing(files, root)
        elif stage in ALL_METHODS_STAGES:
            files = import_closure(script, [module_name(m) for m in methods], root)
            out[listing_name(stage)] = listing(files, root)
        else:
            out[listing_name(stage)] = listing(import_closure(script, (), root), root)
    return out
