"""The benchmark scripts are not run by the suite (they time things), so a rename in memix could break them
unnoticed: every memix name they import or reach through an imported memix module must exist."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))


def _memix_names(tree: ast.Module) -> tuple[dict[str, str], list[tuple[str, str, int]]]:
    """Local name -> memix module it is bound to, and (module, attribute, line) for each `from memix... import`."""
    modules: dict[str, str] = {}
    imported: list[tuple[str, str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "memix":
            for alias in node.names:
                imported.append((node.module, alias.name, node.lineno))
                try:
                    importlib.import_module(f"{node.module}.{alias.name}")
                    modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                except ImportError:
                    pass
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "memix":
                    modules[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else "memix"
    return modules, imported


def _exists(module: str, name: str) -> bool:
    if hasattr(importlib.import_module(module), name):
        return True
    try:
        importlib.import_module(f"{module}.{name}")
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.name)
def test_every_memix_name_a_benchmark_uses_exists(script: Path) -> None:
    tree = ast.parse(script.read_text())
    modules, imported = _memix_names(tree)
    missing = [f"line {line}: {mod}.{name}" for mod, name, line in imported if not _exists(mod, name)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            if not _exists(modules[node.value.id], node.attr):
                missing.append(f"line {node.lineno}: {modules[node.value.id]}.{node.attr}")
    assert not missing, f"{script.name} uses names memix does not have: {missing}"
