"""The real dvc.yaml on a tiny configuration: rerun scope of param changes and a DVC-remote round trip.

One tiny project is reproduced once per session (``tiny_project`` in conftest.py, built by tests/dvcproject.py);
each test then changes one thing, runs ``dvc repro`` for real and checks which stages ran.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from dvcproject import COPIED, REPO, dvc, ran, sh


def assert_reran(output: str, expected: set[str]) -> None:
    """Exactly ``expected`` ran, plus ``check_params``, which validates params.yaml whenever it changes (its
    output's bytes do not depend on the values, so nothing reruns because of it)."""
    assert ran(output) == expected | {"check_params"}, ran(output)


def set_param(project: Path, dotted: str, value: object) -> None:
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    node = params
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node[key]
    node[leaf] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def project(tiny_project: Path) -> Path:
    return tiny_project


@pytest.fixture
def restore(project: Path):
    """Put params.yaml back (and the outputs with it) after a test that changed it."""
    yield project
    sh(project, "git", "checkout", "--", "params.yaml")
    dvc(project, "repro")
    assert dvc(project, "status").strip().endswith("Data and pipelines are up to date.")


def test_tiny_pipeline_wrote_the_table(project: Path) -> None:
    table = (project / "reports" / "mixup_table.md").read_text()
    assert "| No mixing (baseline) |" in table and "| MEMix |" in table


def test_no_change_reruns_nothing(project: Path) -> None:
    assert ran(dvc(project, "repro")) == set()
    assert "Data and pipelines are up to date." in dvc(project, "status")


def test_train_epochs_reruns_training_evaluation_and_table_only(restore: Path) -> None:
    set_param(restore, "train.epochs", 2)
    assert_reran(dvc(restore, "repro"), {
        "train@none", "train@memix", "evaluate@none", "evaluate@memix", "fit@memix", "compare"
    })


def test_one_methods_param_reruns_only_that_method_and_compare(restore: Path) -> None:
    set_param(restore, "mixing.memix.k_offset", 3)
    assert_reran(dvc(restore, "repro"), {"train@memix", "evaluate@memix", "fit@memix", "compare"})


def test_flow_param_reruns_flow_and_everything_after(restore: Path) -> None:
    set_param(restore, "flow.method", "farneback")
    assert_reran(dvc(restore, "repro"), {
        "flow", "train@none", "train@memix", "evaluate@none", "evaluate@memix", "fit@memix", "compare"
    })


def test_keyframe_noise_levels_rerun_their_sets_training_evaluation_and_tables_only(restore: Path) -> None:
    """A level adds its noise set (keyframe_noise@<n>); every method retrains (its units score the set after their
    last epoch); faces, flow, the fit and the architecture runs stay. Taking it out again removes its set, even
    where DVC restores the level list from its run cache (here: the build ran `keyframe_noise: []`), so the train
    stage's folder dependency holds the configured sets only (what a clone pulls)."""
    set_param(restore, "eval.keyframe_noise", [1])
    assert_reran(dvc(restore, "repro"), {
        "keyframe_noise_levels", "keyframe_noise@1", "train@none", "train@memix", "evaluate@none", "evaluate@memix",
        "compare", "models_table",  # models_table depends on all of eval (its output keeps its bytes)
    })
    assert "UF1 at ±1 frame |" in (restore / "reports" / "mixup_table.md").read_text()
    assert ran(dvc(restore, "repro")) == set()
    set_param(restore, "eval.keyframe_noise", [])
    assert_reran(dvc(restore, "repro"), {
        "keyframe_noise_levels", "train@none", "train@memix", "evaluate@none", "evaluate@memix", "compare",
        "models_table",
    })
    assert sorted(p.name for p in (restore / "data/processed/keyframe_noise").iterdir() if p.name != ".gitignore") \
        == ["levels.json"]
    assert dvc(restore, "status").strip().endswith("Data and pipelines are up to date.")


def test_a_methods_code_change_reruns_only_that_methods_stages(project: Path) -> None:
    """A code change reruns the ``code`` stage, then only the stages whose code listing changed: here the training
    and fit of the method whose module changed (their outputs keep their bytes, so nothing after them reruns)."""
    mixer = project / "memix" / "mixing" / "memix_mixer.py"
    try:
        mixer.write_text(mixer.read_text() + "\n# a comment: the same behaviour, other bytes\n")
        assert ran(dvc(project, "repro")) == {"code", "train@memix", "fit@memix"}
    finally:
        sh(project, "git", "checkout", "--", "memix/mixing/memix_mixer.py")
        dvc(project, "repro")
    assert dvc(project, "status").strip().endswith("Data and pipelines are up to date.")


def test_remote_round_trip_leaves_nothing_to_rerun(project: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    dvc(project, "remote", "add", "-d", "shared", str(remote))
    dvc(project, "push", "--run-cache")
    sh(project, "git", "add", "-A")
    sh(project, "git", "commit", "-qm", "remote")

    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(project), str(clone))
    dvc(clone, "pull")
    assert "Data and pipelines are up to date." in dvc(clone, "status")
    assert ran(dvc(clone, "repro", "--dry")) == set()
    assert (clone / "reports" / "mixup_table.md").read_bytes() == (project / "reports" / "mixup_table.md").read_bytes()

    set_param(clone, "mixing.memix.mix_alpha", 0.5)
    assert_reran(dvc(clone, "repro"), {"train@memix", "evaluate@memix", "fit@memix", "compare"})


def test_a_top_level_train_key_a_run_sets_itself_leaves_its_arch_stage_up_to_date(tmp_path: Path) -> None:
    """arch@<run> depends on the values its run reads (data/arch_params/<run>.json, written by check_params), not on
    all of train: `-S train.epochs=3` reran STSTNet's and MMNet's runs, whose recipes set their own epochs.

    Light: no stage trains; the runs' outputs are stand-ins recorded with `dvc commit`, then `dvc status` says which
    runs a change makes stale."""
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, tmp_path / name)
    shutil.copy2(REPO / "params.models.yaml", tmp_path / "params.yaml")  # runs ststnet (500 epochs), vit (train's)
    sh(tmp_path, "git", "init", "-q")
    dvc(tmp_path, "init", "-q")
    sh(tmp_path, "git", "add", "-A")
    sh(tmp_path, "git", "commit", "-qm", "pipeline")
    assert ran(dvc(tmp_path, "repro", "check_params")) == {"code", "check_params"}
    for out in ("data/processed/flow", "data/arch/ststnet", "data/arch/vit"):
        (tmp_path / out).mkdir(parents=True)
        (tmp_path / out / "stand-in").write_text(out)
    dvc(tmp_path, "commit", "-f", "arch@ststnet", "arch@vit")
    assert "up to date" in dvc(tmp_path, "status", "arch@ststnet", "arch@vit")

    set_param(tmp_path, "train.epochs", 3)
    assert ran(dvc(tmp_path, "repro", "check_params")) == {"check_params"}
    status = dvc(tmp_path, "status", "arch@ststnet", "arch@vit")
    assert "arch@vit:" in status and "modified:           data/arch_params/vit.json" in status, status
    assert "arch@ststnet" not in status, status
