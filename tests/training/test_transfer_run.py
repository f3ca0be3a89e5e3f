"""Cross-dataset training (transfer.protocols) end to end on a tiny composite flow set: each fold tests exactly its
test source's clips, nothing of the test side reaches training, and the table scores the last epoch."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from flowsets import make_flow_set
from sklearn.metrics import f1_score, recall_score
from test_training_run import tiny_params

from memix.evaluation import transfer
from memix.training import run

SOURCES = ("casme2", "samm")  # sub01, sub03 -> casme2; sub02, sub04 -> samm


@pytest.fixture(scope="module")
def composite(tmp_path_factory: pytest.TempPathFactory):
    return make_flow_set(tmp_path_factory.mktemp("composite") / "flow", sources=SOURCES)


@pytest.mark.parametrize("protocol", ["holdout_database", "leave_one_dataset_out"])
def test_each_fold_predicts_every_clip_of_its_test_source_and_nothing_else(composite, tmp_path, protocol):
    out = tmp_path / protocol
    preds = pd.read_parquet(run.run(tiny_params(), "mixup", flow_dir=composite, out_dir=out, seeds=[0, 1],
                                    protocol=protocol))
    history = pd.read_parquet(out / "history.parquet")
    names = dict(history.drop_duplicates("fold")[["fold", "subject"]].itertuples(index=False))
    want = {0: "casme2->samm", 1: "samm->casme2"} if protocol == "holdout_database" else {0: "samm->casme2",
                                                                                            1: "casme2->samm"}
    assert names == want
    for (_, fold), part in preds.groupby(["seed", "fold"]):
        test = names[fold].split("->")[-1]
        assert set(part["dataset"]) == {test}
        assert set(part["clip_id"]) == {f"{test}/sub{s:02d}/EP{c:02d}" for s in (1, 2, 3, 4)
                                        if SOURCES[(s - 1) % 2] == test for c in range(5)}
        assert set(part["subject"]) == {c.rsplit("/", 1)[0] for c in part["clip_id"]}  # each clip's own subject


@pytest.mark.parametrize("protocol", ["holdout_database", "leave_one_dataset_out"])
def test_the_test_source_never_reaches_its_folds_training(composite, tmp_path, protocol):
    """sub02 (samm) changed in flow and labels: the fold testing samm trains byte-identically, the other does not."""
    changed = make_flow_set(tmp_path / "changed", changed_subject="sub02", sources=SOURCES)
    params = tiny_params()
    run.run(params, "memix", flow_dir=composite, out_dir=tmp_path / "a", protocol=protocol)
    run.run(params, "memix", flow_dir=changed, out_dir=tmp_path / "b", protocol=protocol)
    a, b = (pd.read_parquet(tmp_path / name / "history.parquet") for name in ("a", "b"))
    cols = ["train_loss", "train_accuracy"]
    # holdout_database: fold 0 casme2->samm, fold 1 samm->casme2; leave_one_dataset_out: fold 0 casme2, fold 1 samm
    tests_samm, trains_on_samm = (0, 1) if protocol == "holdout_database" else (1, 0)
    assert a[a["fold"] == tests_samm][cols].equals(b[b["fold"] == tests_samm][cols])
    assert not a[a["fold"] == trains_on_samm][cols].equals(b[b["fold"] == trains_on_samm][cols])


def test_the_table_scores_each_fold_at_its_last_epoch_over_every_class(composite, tmp_path):
    root = tmp_path / "transfer"
    for method in ("none", "mixup"):
        run.run(tiny_params(epochs=3), method, flow_dir=composite, out_dir=root / "holdout_database" / method,
                seeds=[0, 1], protocol="holdout_database")
    evals = tmp_path / "eval"  # the composite's LOSO evaluated for `none` only: its CDE rows, none for mixup
    (evals / "none").mkdir(parents=True)
    per_source = {"casme2": {"accuracy": 0.6, "uf1": 0.5, "uar": 0.4, "n": 10},
                  "samm": {"accuracy": 0.4, "uf1": None, "uar": 0.3, "n": 10}}
    cde = {"rules": {"last": "honest"}, "n_clips": 20, "datasets": list(SOURCES),
           "mean": {"last": {m: {"mean": 0.5, "std": 0.1} for m in ("accuracy", "uf1", "uar")}},
           "per_seed": [{"seed": 0, "last": {"per_dataset": per_source}},
                        {"seed": 1, "last": {"per_dataset": {**per_source, "casme2": {**per_source["casme2"],
                                                                                      "uar": 0.6}}}}]}
    (evals / "none" / "metrics.json").write_text(json.dumps(cde))
    table = transfer.run("holdout_database", root, evals, ["none", "mixup"], [0, 1], tmp_path / "reports")

    preds = pd.read_parquet(root / "holdout_database" / "mixup" / "predictions.parquet")
    last = preds[(preds["epoch"] == 3) & (preds["fold"] == 1) & (preds["seed"] == 1)]
    row = table["methods"]["mixup"]["rows"][1]
    assert (row["train"], row["test"], row["n_clips"]) == ("samm", "casme2", 10)
    want_uf1 = f1_score(last["true"], last["pred"], labels=[0, 1, 2], average="macro", zero_division=0)
    want_uar = recall_score(last["true"], last["pred"], labels=[0, 1, 2], average="macro", zero_division=0)
    assert row["per_seed"]["1"]["uf1"] == pytest.approx(want_uf1)
    assert row["per_seed"]["1"]["uar"] == pytest.approx(want_uar)
    accs = [row["per_seed"][s]["accuracy"] for s in ("0", "1")]
    assert row["accuracy"]["mean"] == pytest.approx(np.mean(accs))
    cde_rows = table["methods"]["none"]["cde"]
    assert [(r["rule"], r["test"]) for r in cde_rows] == [("last", "all"), ("last", "casme2"), ("last", "samm")]
    assert cde_rows[1]["uar"] == pytest.approx({"mean": 0.5, "std": float(np.std([0.4, 0.6], ddof=1))})
    assert cde_rows[2]["uf1"] is None and "| No mixing | last | samm | 10 | n/a |" in (
        tmp_path / "reports" / "holdout_database.md").read_text()
    assert table["methods"]["mixup"]["cde"] == []
    md = (tmp_path / "reports" / "holdout_database.md").read_text()
    assert "| Mixup | samm | casme2 | 10 |" in md
    assert "oracle rule does not apply" in md
    # an evaluation left over from a method compare.methods no longer lists is not read
    assert transfer.build("holdout_database", root, evals, ["none"], [0, 1], loso_methods=["mixup"])[
        "methods"]["none"]["cde"] == []
    again = transfer.run("holdout_database", root, evals, ["none", "mixup"], [0, 1], tmp_path / "again")
    assert again == table
    assert (tmp_path / "again" / "holdout_database.json").read_bytes() == (
        tmp_path / "reports" / "holdout_database.json").read_bytes()


def test_the_table_refuses_a_run_of_other_seeds(composite, tmp_path):
    root = tmp_path / "transfer"
    run.run(tiny_params(), "none", flow_dir=composite, out_dir=root / "leave_one_dataset_out" / "none", seeds=[0],
            protocol="leave_one_dataset_out")
    with pytest.raises(ValueError, match=r"seeds \[0\], compare.seeds is \[0, 1\]"):
        transfer.build("leave_one_dataset_out", root, tmp_path / "eval", ["none"], [0, 1])
    with pytest.raises(FileNotFoundError, match="run the transfer stage of this protocol and method first"):
        transfer.build("leave_one_dataset_out", root, tmp_path / "eval", ["mixup"], [0])


def test_a_test_side_without_a_class_is_scored_over_the_classes_it_holds():
    """A whole test dataset may lack a class (few class III clips in SAMM): UAR over its classes, not a recall of 0."""
    part = pd.DataFrame({"seed": 0, "clip_id": [f"c{i}" for i in range(4)], "true": [0, 0, 1, 1],
                         "pred": [0, 0, 1, 0]})
    row = transfer._row(part, k=3, seeds=[0])
    assert row["per_seed"]["0"]["uar"] == pytest.approx((1.0 + 0.5) / 2)  # class 2 absent: not a third term of 0
    assert row["per_seed"]["0"]["uf1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert row["per_seed"]["0"]["accuracy"] == pytest.approx(0.75)


def test_a_checkpoint_of_one_protocol_is_not_resumed_under_another(composite):
    """Unit checkpoints are named by seed and fold index alone: the fingerprint must tell the protocols apart (and
    keep LOSO's fingerprints as they were, so LOSO checkpoints written before protocols existed still resume)."""
    import torch

    from memix.io import flowset

    index, params, cpu = flowset.read(composite).index, tiny_params(), torch.device("cpu")
    loso = run.fingerprint(params, "none", index, cpu)
    assert run.fingerprint(params, "none", index, cpu, "loso") == loso
    others = {run.fingerprint(params, "none", index, cpu, p) for p in ("holdout_database", "leave_one_dataset_out")}
    assert len(others) == 2 and loso not in others
