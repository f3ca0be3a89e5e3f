"""dvc.yaml's deps cannot drift from the code: every file a stage runs is hashed into that stage's deps.

Each stage depends on its code listing (``data/code/<stage>.txt``, written by the ``code`` stage from
:func:`memix.codehash.stage_listings`), which holds the path and sha256 of every file of the stage's import
closure; the ``code`` stage depends on all of ``memix/`` and ``stages/``. So a code change reruns the ``code``
stage, and then exactly the stages whose listing changed. The one import made by name, the mixing registry's
``memix.mixing.<method>_mixer``, is in the listing of the method's train and fit stages only.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from memix import codehash
from memix.codehash import import_closure, listing_name, stage_listings
from memix.config import MIXING_METHODS
from memix.io import paths
from memix.mixing import module_name

REPO = Path(__file__).resolve().parents[1]
DVC_STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def _stages() -> list[tuple[str, str, dict, dict[str, str]]]:
    """(name, dvc.yaml stage key, stage, item) for every stage but ``code``, matrix stages expanded."""
    out = []
    for name, stage in DVC_STAGES.items():
        if name == "code":
            continue
        if "matrix" in stage and "method" not in stage["matrix"]:  # one stage per protocol: the same code
            out.append((name, name, stage, {"protocol": "holdout_database"}))
        elif "matrix" in stage:
            out.extend((f"{name}@{m}", name, stage, {"method": m, "protocol": "holdout_database"})
                       for m in MIXING_METHODS)
        elif "foreach" in stage:  # one stage per run of a params mapping: the same code for each
            out.append((name, name, stage["do"], {}))
        else:
            out.append((name, name, stage, {}))
    return out


def _deps(stage: dict, item: dict[str, str]) -> list[str]:
    return [re.sub(r"\$\{item\.(\w+)\}", lambda m: item[m.group(1)], str(dep)) for dep in stage.get("deps", [])]


STAGES = _stages()
LISTINGS = stage_listings(MIXING_METHODS)


def _listed(text: str) -> set[Path]:
    return {REPO / line.split("  ", 1)[1] for line in text.splitlines()}


@pytest.mark.parametrize(("name", "key", "stage", "item"), STAGES, ids=[s[0] for s in STAGES])
def test_each_stage_depends_on_the_listing_of_exactly_the_code_it_runs(
    name: str, key: str, stage: dict, item: dict[str, str]
) -> None:
    method = item.get("method") if key in codehash.PER_METHOD_STAGES else None
    listing = (paths.CODE / listing_name(key, method)).as_posix()
    deps = _deps(stage, item)
    assert listing in deps, f"dvc.yaml stage {name} does not depend on its code listing {listing}"
    code_deps = [d for d in deps if d.startswith(("memix", "stages/"))]
    assert not code_deps, f"{name}: code is covered by {listing}; these deps are redundant: {code_deps}"

    script = REPO / stage["cmd"].split()[1]
    by_name = [module_name(m) for m in MIXING_METHODS] if key in codehash.ALL_METHODS_STAGES else []
    closure = import_closure(script, (module_name(method),) if method else by_name)
    listed = _listed(LISTINGS[listing_name(key, method)])
    assert script in listed
    assert listed == closure, f"{listing} differs from {name}'s import closure"


def test_the_code_stage_sees_every_file_a_listing_holds() -> None:
    code = DVC_STAGES["code"]
    assert set(code["deps"]) == {"memix", "stages"} and code["outs"] == [paths.CODE.as_posix()]
    assert "params" not in code  # it must run even when params.yaml is invalid
    listed = set().union(*(_listed(text) for text in LISTINGS.values()))
    assert all(p.is_relative_to(REPO / "memix") or p.is_relative_to(REPO / "stages") for p in listed)


def test_package_data_is_in_the_listing_of_the_stages_that_read_it() -> None:
    # ingest applies the errata and the MEGC 2019 list shipped inside memix/datasets
    ingest = _listed(LISTINGS[listing_name("ingest")])
    assert REPO / "memix/datasets/errata/casme3.csv" in ingest
    assert REPO / "memix/datasets/protocols/megc2019.csv" in ingest
    assert REPO / "memix/datasets/errata/casme3.csv" not in _listed(LISTINGS[listing_name("train", "memix")])


@pytest.mark.parametrize("kind", ["train", "fit", "transfer"])
def test_a_change_to_one_method_changes_only_that_methods_listings(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "checkout"
    shutil.copytree(REPO / "memix", root / "memix", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "stages", root / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    before = stage_listings(MIXING_METHODS, root)
    mixer = root / (module_name("mixup").replace(".", "/") + ".py")
    mixer.write_text(mixer.read_text() + "\n# changed\n")
    after = stage_listings(MIXING_METHODS, root)
    changed = sorted(name for name in before if before[name] != after[name])
    # the arch stage may run any method (a run's methods), so its listing holds every method's module
    assert changed == [listing_name("arch"), listing_name("fit", "mixup"), listing_name("train", "mixup"),
                       listing_name("transfer", "mixup")]
    assert before[listing_name(kind, "memix")] == after[listing_name(kind, "memix")]


def test_the_code_stage_writes_the_listings(tmp_path: Path) -> None:
    out = tmp_path / "code"
    done = subprocess.run([sys.executable, str(REPO / "stages/code.py"), "--out", str(out)], capture_output=True,
                          text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    written = {p.name: p.read_text(encoding="utf-8") for p in out.iterdir() if p.name != ".gitignore"}
    assert written == LISTINGS


def test_the_closure_follows_imports_transitively() -> None:
    # stages/train.py reaches the CLS-attention probe only through memix.training -> memix.models
    closure = import_closure(REPO / "stages" / "train.py")
    assert REPO / "memix" / "models" / "attention.py" in closure
    assert REPO / "memix" / "io" / "__init__.py" in closure
    assert REPO / "memix" / "mixing" / "memix_mixer.py" not in closure  # imported by name only
