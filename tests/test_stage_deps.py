"""dvc.yaml's deps cannot drift from the code: every module a stage runs is a dependency of that stage.

Each stage's import closure is computed from the source (``ast``: every ``import`` / ``from ... import`` of a
``memix`` module or of ``stages/_common.py``, followed transitively, package ``__init__`` files included, imports
under ``if TYPE_CHECKING:`` left out since they never run). The one import made by name, the mixing registry's
``memix.mixing.<method>_mixer``, is added for the method a train stage trains.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from memix.config import MIXING_METHODS
from memix.mixing import module_name

REPO = Path(__file__).resolve().parents[1]


def _module_file(name: str) -> Path | None:
    """The source file of module ``name`` in this repository (``memix.x.y`` or a stage-local module), if any."""
    parts = name.split(".")
    candidates = [REPO.joinpath(*parts).with_suffix(".py"), REPO.joinpath(*parts, "__init__.py")]
    if len(parts) == 1:
        candidates.append(REPO / "stages" / f"{name}.py")
    return next((c for c in candidates if c.is_file()), None)


def _package_inits(name: str) -> list[Path]:
    parts = name.split(".")
    return [p for i in range(1, len(parts)) if (p := REPO.joinpath(*parts[:i], "__init__.py")).is_file()]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported_names(tree: ast.AST) -> list[str]:
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


def import_closure(script: Path, extra_modules: tuple[str, ...] = ()) -> set[Path]:
    """Every repository source file that running ``script`` imports, the script itself included."""
    seen: set[Path] = set()
    todo = [script, *(f for m in extra_modules for f in [_module_file(m), *_package_inits(m)] if f)]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imported_names(ast.parse(path.read_text(), filename=str(path))):
            if not (name == "memix" or name.startswith("memix.") or name == "_common"):
                continue
            found = _module_file(name)
            if found is not None:
                todo.append(found)
                todo.extend(_package_inits(name))
    return seen


def _stages() -> list[tuple[str, dict, dict[str, str]]]:
    """(name, stage, item) for every stage of dvc.yaml, matrix stages expanded over the methods (seed 0)."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    out = []
    for name, stage in stages.items():
        if "matrix" in stage:
            for method in MIXING_METHODS:
                out.append((f"{name}@{method}", stage, {"method": method, "seed": "0"}))
        else:
            out.append((name, stage, {}))
    return out


def _deps(stage: dict, item: dict[str, str]) -> list[Path]:
    deps = []
    for dep in stage.get("deps", []):
        text = re.sub(r"\$\{item\.(\w+)\}", lambda m: item[m.group(1)], str(dep))
        if "${" not in text:
            deps.append((REPO / text).resolve())
    return deps


def _covered(path: Path, deps: list[Path]) -> bool:
    return any(path == d or d in path.parents for d in deps)


STAGES = _stages()


@pytest.mark.parametrize(("name", "stage", "item"), STAGES, ids=[s[0] for s in STAGES])
def test_stage_deps_cover_every_module_the_stage_imports(name: str, stage: dict, item: dict[str, str]) -> None:
    script = REPO / stage["cmd"].split()[1]
    extra = (module_name(item["method"]),) if name.startswith(("train@", "fit@")) else ()
    closure = import_closure(script, extra)
    deps = _deps(stage, item)
    missing = sorted(str(p.relative_to(REPO)) for p in closure if not _covered(p, deps))
    assert not missing, f"dvc.yaml stage {name} runs these but does not list them as deps: {missing}"


@pytest.mark.parametrize("method", MIXING_METHODS)
@pytest.mark.parametrize("kind", ["train", "fit"])
def test_a_methods_train_stage_depends_on_no_other_methods_module(kind: str, method: str) -> None:
    (_, stage, item), = [s for s in STAGES if s[0] == f"{kind}@{method}"]
    deps = _deps(stage, item)
    others = [m for m in MIXING_METHODS if m != method]
    for other in others:
        module = REPO / (module_name(other).replace(".", "/") + ".py")
        assert not _covered(module, deps), f"{kind}@{method} would rerun when {module.name} changes"


def test_the_closure_follows_imports_transitively(tmp_path: Path) -> None:
    # stages/train.py reaches the CLS-attention probe only through memix.training -> memix.models
    closure = import_closure(REPO / "stages" / "train.py")
    assert REPO / "memix" / "models" / "attention.py" in closure
    assert REPO / "memix" / "io" / "__init__.py" in closure
    assert REPO / "memix" / "mixing" / "memix_mixer.py" not in closure  # imported by name only
