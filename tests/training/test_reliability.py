"""Training never resumes another code's checkpoints, never passes a diverged loss, stops cleanly on Ctrl-C, and
replaces its outputs as one set."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from flowsets import tree_bytes

from memix import codehash, log
from memix.config import parse_params
from memix.training import divergence, fit, loop, outputs, run

REPO = Path(__file__).resolve().parents[2]


def tiny_params(**train: object):
    return parse_params({
        "model": {"patch_size": 4, "embed_dim": 16, "depth": 1, "num_heads": 2},
        "train": {"epochs": 2, "batch_size": 8, "device": "cpu", "threads": 1, "lr": 3e-3, "fold_batch": 2,
                  "workers": 1, **train},
        "compare": {"seeds": [0]},
    })


class Killed(Exception):
    pass


def _kill_second_group(units, epoch):
    if units[0].fold.index == 2:
        raise Killed


# ------------------------------------------------------------------------------------------ code in checkpoints
def test_the_fingerprint_covers_the_train_stages_code(tmp_path: Path, monkeypatch) -> None:
    copy = tmp_path / "checkout"
    for part in ("memix", "stages"):
        shutil.copytree(REPO / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(codehash, "ROOT", copy)
    before = run.code_hash("memix")
    assert before == run.code_hash("memix") and before != run.code_hash("mixup")
    (copy / "memix" / "mixing" / "mixup_mixer.py").write_text("# another method's module\n")
    assert run.code_hash("memix") == before  # not in memix's closure
    with (copy / "memix" / "models" / "vit.py").open("a") as fh:
        fh.write("\n# changed\n")
    assert run.code_hash("memix") != before


def test_checkpoints_of_other_code_are_discarded_and_the_rerun_equals_a_clean_run_of_the_new_code(
    flow_dir: Path, tmp_path: Path, monkeypatch, caplog
) -> None:
    """Killed after a finished group, the code changed so that results change: the resumed folds must come from
    the new code, not from the old code's checkpoints."""
    copy = tmp_path / "checkout"  # the code the hash reads: a copy, so this test can change it
    for part in ("memix", "stages"):
        shutil.copytree(REPO / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(codehash, "ROOT", copy)
    params = tiny_params()
    out = tmp_path / "t"
    monkeypatch.setattr(loop, "on_epoch_end", _kill_second_group)
    with pytest.raises(Killed):
        run.run(params, "none", flow_dir=flow_dir, out_dir=out)
    assert sorted(p.name for p in (out / "checkpoints").glob("unit-*")) == ["unit-s0-f00.pt", "unit-s0-f01.pt"]
    monkeypatch.setattr(loop, "on_epoch_end", lambda units, epoch: None)
    old = tmp_path / "old"
    run.run(params, "none", flow_dir=flow_dir, out_dir=old)

    # the new code: other initial weights (a real edit of the trainer's source, and the behaviour it gives)
    source = copy / "memix" / "training" / "units.py"  # where unit_seeds lives
    source.write_text(source.read_text().replace("SeedSequence([seed, fold])", "SeedSequence([seed, fold, 7])"))
    real_seeds = loop.unit_seeds
    monkeypatch.setattr(loop, "unit_seeds", lambda seed, fold: real_seeds(seed + 1000, fold))
    clean = tmp_path / "clean"
    run.run(params, "none", flow_dir=flow_dir, out_dir=clean)
    with caplog.at_level(logging.WARNING, logger="memix"):
        run.run(params, "none", flow_dir=flow_dir, out_dir=out)
    assert "discarding 2 checkpoint(s)" in caplog.text and "other code, params or inputs" in caplog.text
    assert tree_bytes(out) == tree_bytes(clean)
    assert tree_bytes(old)["predictions.parquet"] != tree_bytes(clean)["predictions.parquet"]  # the change mattered


# ------------------------------------------------------------------------------------------------- divergence
def test_a_diverging_run_fails_naming_method_seed_fold_and_epoch(flow_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "t"
    with pytest.raises(divergence.DivergenceError,
                       match=r"training diverged: method none, seed 0, fold 0 \(test subject sub01\), epoch \d"):
        run.run(tiny_params(lr=1e9), "none", flow_dir=flow_dir, out_dir=out)
    assert not (out / "predictions.parquet").exists()


def test_drop_leaves_the_diverged_fold_out_for_every_seed_and_says_so(
    flow_dir: Path, tmp_path: Path, monkeypatch, caplog
) -> None:
    real_epoch = loop.GroupTrainer._epoch

    def fold_1_diverges_at_epoch_2(self, epoch):  # what the device-summed loss shows after a blow-up
        real_epoch(self, epoch)
        for unit, hist in zip(self.units, self.history, strict=True):
            if unit.seed == 0 and unit.fold.index == 1 and epoch == 1:
                hist["loss"][epoch] = float("nan")

    monkeypatch.setattr(loop.GroupTrainer, "_epoch", fold_1_diverges_at_epoch_2)
    params = parse_params({**tiny_params(on_divergence="drop").model_dump(by_alias=True, mode="json"),
                           "compare": {"seeds": [0, 1]}})
    out = tmp_path / "t"
    with caplog.at_level(logging.WARNING, logger="memix"):
        run.run(params, "none", flow_dir=flow_dir, out_dir=out)
    assert "seed 0 fold 1 (test subject sub02) diverged at epoch 2: fold 1 left out" in caplog.text
    preds = pd.read_parquet(out / "predictions.parquet")
    assert sorted(preds["fold"].unique()) == [0, 2, 3]
    assert preds.groupby("seed")["clip_id"].apply(frozenset).nunique() == 1  # every seed predicts the same clips
    with pytest.raises(divergence.DivergenceError, match="seed 0, fold 1"):  # the default stops instead
        run.run(tiny_params(), "none", flow_dir=flow_dir, out_dir=tmp_path / "f")


def test_fit_of_a_diverging_run_fails(flow_dir: Path) -> None:
    from memix.io import flowset

    with pytest.raises(divergence.DivergenceError, match=r"method none, seed 0, fold 4 \(test subject all\)"):
        fit.fit(tiny_params(lr=1e9), "none", 0, flowset.read(flow_dir), torch.device("cpu"), progress=False)


# ---------------------------------------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_is_one_line_saying_what_a_rerun_resumes_and_exit_130(
    flow_dir: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    def ctrl_c_in_second_group(units, epoch):
        if units[0].fold.index == 2:
            raise KeyboardInterrupt

    monkeypatch.delenv("MEMIX_DEBUG", raising=False)
    monkeypatch.setattr(loop, "on_epoch_end", ctrl_c_in_second_group)
    out = tmp_path / "t"
    code = log.run_reporting("stage train", lambda: run.run(tiny_params(), "none", flow_dir=flow_dir, out_dir=out))
    assert code == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "interrupted: rerun resumes from 1 finished groups"
    assert "Traceback" not in err
    assert (out / "checkpoints" / "unit-s0-f01.pt").is_file()


# ----------------------------------------------------------------------------------------- all outputs or none
def test_a_failure_while_writing_the_outputs_leaves_the_earlier_set_whole(
    flow_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    out = tmp_path / "t"
    run.run(tiny_params(), "none", flow_dir=flow_dir, out_dir=out)
    before = tree_bytes(out)

    def full_disk(live_dir, curves, seeds, into=None):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs, "write_live", full_disk)
    with pytest.raises(OSError, match="No space left"):
        run.run(tiny_params(lr=1e-2), "none", flow_dir=flow_dir, out_dir=out)
    after = {k: v for k, v in tree_bytes(out).items() if not k.startswith("checkpoints/")}
    assert after == before  # the new predictions were not put beside the old live/ (nor the reverse)
