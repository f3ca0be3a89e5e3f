"""The ``release`` rule: each network under its own release's epoch selection, held to a literal transcription of
each release's loop on random LOSO predictions.

Each ``_<release>_loop`` below follows that release's code line by line (the lines each rule records): per test
subject a loop over the epochs in order, ``val_acc = correct / n`` as a Python float, the release's comparison
from 0, its early stop, what it keeps, and the pooling of the kept predictions. Training is replaced by given
predictions per epoch. Subjects have 1-4 clips and 3 classes, and a third of them are never right, so ties and
never-right subjects are frequent: that is where the rules differ. Every random run is one ``seed`` of a single
predictions frame, so that memix selects all of them in one call.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import f1_score, recall_score

from memix.evaluation import metrics, release_rules, selection

K = 3
EPOCHS = 10
RUNS = 200

Runs = dict[str, tuple[list[int], list[list[int]]]]
"""One LOSO run: subject -> (its clips' truth, its predictions per epoch, epoch 1 first)."""


# ------------------------------------------------------------------ the releases' loops, transcribed
def _ststnet_loop(runs: Runs) -> dict:
    """christy1206/STSTNet main.py lines 213-224: after the last epoch, the subject's predictions are pooled."""
    total_pred, total_gt, epochs = [], [], {}
    for subj, (y, per_epoch) in runs.items():
        for epoch in range(1, len(per_epoch) + 1):
            yhat = per_epoch[epoch - 1]
        total_pred.extend(yhat)
        total_gt.extend(y)
        epochs[subj] = epoch
    return {"truth": total_gt, "pred": total_pred, "epochs": epochs}


def _aman_loop(runs: Runs) -> dict:
    """weimengting/AMAN main/train.py lines 46-75 (set_train), the records of every subject pooled."""
    truth, preds, epochs = [], [], {}
    for subj, (target, per_epoch) in runs.items():
        best_acc = 0
        temp_num = 0
        len_val = len(target)
        for epoch in range(len(per_epoch)):  # range(opt.epochs)
            pred = per_epoch[epoch]
            acc_number = sum(1 for p, t in zip(pred, target, strict=True) if p == t)
            if (acc_number / len_val) > best_acc:
                best_acc = acc_number / len_val
                temp_num = acc_number
                pp = [str(k) for k in pred]
                df = [str(m) for m in target]
                epochs[subj] = epoch + 1  # recorded for the test
            if best_acc == 1:
                break
            if best_acc == 0:
                pp = [str(k) for k in pred]
                df = [str(m) for m in target]
                epochs[subj] = epoch + 1
        assert temp_num == sum(1 for p, t in zip(pp, df, strict=True) if p == t)
        preds += [int(k) for k in pp]
        truth += [int(m) for m in df]
    return {"truth": truth, "pred": preds, "epochs": epochs}


def _htnet_loop(runs: Runs) -> dict:
    """wangzhifengharrison/HTNet main_HTNet.py lines 250-314: ``<=`` from 0, no early stop, best preds pooled."""
    total_gt, best_total_pred, epochs = [], [], {}
    for subj, (y, per_epoch) in runs.items():
        best_accuracy_for_each_subject = 0
        best_each_subject_pred = []
        for epoch in range(1, len(per_epoch) + 1):
            yhat = per_epoch[epoch - 1]
            num_val_correct = sum(1 for p, t in zip(yhat, y, strict=True) if p == t)
            num_val_examples = len(y)
            val_acc = num_val_correct / num_val_examples
            temp_best_each_subject_pred = []
            if best_accuracy_for_each_subject <= val_acc:
                best_accuracy_for_each_subject = val_acc
                temp_best_each_subject_pred.extend(yhat)
                best_each_subject_pred = temp_best_each_subject_pred
                epochs[subj] = epoch  # recorded for the test
        total_gt.extend(y)
        best_total_pred.extend(best_each_subject_pred)
    return {"truth": total_gt, "pred": best_total_pred, "epochs": epochs}


def _causalnet_loop(runs: Runs) -> dict:
    """tony19980810/CausalNet main_train.py lines 293-371 (each subject's results file: best epoch and matrix),
    then calculate_all_results.py lines 38-71 (every subject's matrix pooled into y_true and y_pred)."""
    results = {}
    for subj, (y, per_epoch) in runs.items():
        best_accuracy_for_each_subject = 0
        best_epoch = 0
        best_matrix = []
        for epoch in range(1, len(per_epoch) + 1):
            matrix = []
            predicts = per_epoch[epoch - 1]
            for a in range(0, len(predicts)):
                matrix.append([int(predicts[a]), int(y[a])])
            num_val_correct = sum(1 for p, t in zip(predicts, y, strict=True) if p == t)
            val_acc = num_val_correct / len(y)
            if best_accuracy_for_each_subject < val_acc:
                best_accuracy_for_each_subject = val_acc
                best_matrix = matrix
                best_epoch = epoch
            if val_acc >= 1:
                results[subj] = (best_epoch, best_matrix)
                break
            if epoch == len(per_epoch):
                results[subj] = (best_epoch, best_matrix)
    all_matrix = []
    for subj in runs:
        all_matrix = all_matrix + results[subj][1]
    y_true, y_pred = [], []
    for m in range(0, len(all_matrix)):
        y_pred.append(all_matrix[m][0])
        y_true.append(all_matrix[m][1])
    epochs = {subj: e for subj, (e, matrix) in results.items() if matrix}  # best_epoch 0: none kept
    return {"truth": y_true, "pred": y_pred, "epochs": epochs}


def _memix_style_loop(runs: Runs, stop_at_100: bool) -> dict:
    """The MEMix loop (Nikki-Gu/MEMix main.py lines 150-225, ``stop_at_100``) and MMNet's (muse1998/MMNet
    CASME2_5.py lines 560-610, no stop): float32 per-class counts, ``bingo_cnt > max_corr``, ``AVG_F1 >= max_f1``,
    the kept counts pooled."""
    num_sum, val_now = 0, 0
    pos_label_all, pos_pred_all, tp_all = torch.zeros(5), torch.zeros(5), torch.zeros(5)
    acc_epochs, f1_epochs = {}, {}
    for subj, (labels, per_epoch) in runs.items():
        max_corr, max_f1 = 0, 0
        max_pos_label, max_pos_pred, max_tp = torch.zeros(5), torch.zeros(5), torch.zeros(5)
        for i in range(1, len(per_epoch) + 1):
            predicts = per_epoch[i - 1]
            pos_label, pos_pred, tp = torch.zeros(5), torch.zeros(5), torch.zeros(5)
            bingo_cnt = sum(int(p == t) for p, t in zip(predicts, labels, strict=True))
            for cls in range(5):
                for element in predicts:
                    if element == cls:
                        pos_label[cls] = pos_label[cls] + 1
                for element in labels:
                    if element == cls:
                        pos_pred[cls] = pos_pred[cls] + 1
                for element_p, element_l in zip(predicts, labels, strict=True):
                    if element_p == element_l and element_p == cls:
                        tp[cls] = tp[cls] + 1
            count, sum_f1 = 0, 0
            for index in range(5):
                if pos_label[index] != 0 or pos_pred[index] != 0:
                    count = count + 1
                    sum_f1 = sum_f1 + 2 * tp[index] / (pos_pred[index] + pos_label[index])
            avg_f1 = sum_f1 / count
            acc = bingo_cnt / len(labels)
            if bingo_cnt > max_corr:
                max_corr = bingo_cnt
                acc_epochs[subj] = i  # MEMix's max_epoch; recorded for the test in MMNet's
            if avg_f1 >= max_f1:
                max_f1 = avg_f1
                max_pos_label, max_pos_pred, max_tp = pos_label, pos_pred, tp
                f1_epochs[subj] = i  # recorded for the test
            if stop_at_100 and acc == 1.0:
                break
        num_sum += max_corr
        pos_label_all = pos_label_all + max_pos_label
        pos_pred_all = pos_pred_all + max_pos_pred
        tp_all = tp_all + max_tp
        val_now += len(labels)
    count, sum_f1 = 0, 0
    for index in range(5):
        if pos_label_all[index] != 0 or pos_pred_all[index] != 0:
            count = count + 1
            sum_f1 = sum_f1 + 2 * tp_all[index] / (pos_pred_all[index] + pos_label_all[index])
    recall = [float(tp_all[c] / pos_pred_all[c]) if pos_pred_all[c] else 0.0 for c in range(K)]
    return {"accuracy": num_sum / val_now, "uf1": float(sum_f1 / count), "uar": sum(recall) / K,
            "acc_epochs": acc_epochs, "f1_epochs": f1_epochs}


LOOPS = {
    "ststnet": _ststnet_loop,
    "aman": _aman_loop,
    "htnet": _htnet_loop,
    "causalnet": _causalnet_loop,
    "mmnet": lambda runs: _memix_style_loop(runs, stop_at_100=False),
    "mixmeformer": lambda runs: _memix_style_loop(runs, stop_at_100=True),
    "vit": lambda runs: _memix_style_loop(runs, stop_at_100=True),
}


# ------------------------------------------------------------------ random LOSO runs
def _random_runs(rng: np.random.Generator, n: int) -> tuple[dict[int, Runs], pd.DataFrame]:
    """``n`` runs (one per seed) of 6-8 subjects with 1-4 clips and 10 epochs; each subject is right with a
    probability drawn from {0, 0, 0.3, 0.6, 0.9} per clip and epoch (a third never right); every class is in each
    run's truth."""
    all_runs, rows = {}, []
    for seed in range(n):
        while True:
            sizes = rng.integers(1, 5, size=rng.integers(6, 9))
            truth = [rng.integers(0, K, size=s).tolist() for s in sizes]
            if len({c for t in truth for c in t}) == K:
                break
        runs: Runs = {}
        for s, labels in enumerate(truth):
            p_right = rng.choice([0.0, 0.0, 0.3, 0.6, 0.9])
            per_epoch = []
            for epoch in range(1, EPOCHS + 1):
                right = rng.random(len(labels)) < p_right
                wrong = (np.array(labels) + rng.integers(1, K, size=len(labels))) % K
                pred = np.where(right, labels, wrong).tolist()
                per_epoch.append(pred)
                rows += [{"seed": seed, "fold": s, "epoch": epoch, "clip_id": f"s{s}/c{j}", "subject": f"s{s}",
                          "dataset": "casme2", "true": t, "pred": p}
                         for j, (t, p) in enumerate(zip(labels, pred, strict=True))]
            runs[f"s{s}"] = (labels, per_epoch)
        all_runs[seed] = runs
    return all_runs, pd.DataFrame(rows)


def _pooled(truth: list[int], pred: list[int]) -> dict[str, float]:
    """Acc, UF1 and UAR of a pool over all K classes (memix's pooled figures) in plain Python."""
    n_true = [sum(1 for t in truth if t == c) for c in range(K)]
    n_pred = [sum(1 for p in pred if p == c) for c in range(K)]
    tp = [sum(1 for t, p in zip(truth, pred, strict=True) if t == p == c) for c in range(K)]
    return {"accuracy": sum(tp) / len(truth),
            "uf1": sum(2 * tp[c] / (n_true[c] + n_pred[c]) if n_true[c] + n_pred[c] else 0.0 for c in range(K)) / K,
            "uar": sum(tp[c] / n_true[c] if n_true[c] else 0.0 for c in range(K)) / K}


def _ours(rows: pd.DataFrame, seeds: list[int]) -> dict[int, dict[str, float]]:
    """memix's pooled figures of each seed's selected rows (all seeds at once, from count matrices)."""
    idx = pd.Index(seeds).get_indexer(rows["seed"])
    cms = metrics.confusions(idx, rows["true"].to_numpy(), rows["pred"].to_numpy(), len(seeds), K)
    scores = metrics.from_confusion(cms)
    return {seed: {m: float(scores[m][i]) for m in metrics.METRICS} for i, seed in enumerate(seeds)}


def _epochs(rows: pd.DataFrame, seed: int) -> dict[str, int]:
    """The epoch the selection chose per subject of one seed (exactly one each)."""
    per = rows[rows["seed"] == seed].groupby("fold")["epoch"].unique()
    assert all(len(e) == 1 for e in per), "one epoch per fold"
    return {f"s{fold}": int(e[0]) for fold, e in per.items()}


def _kept(rows: pd.DataFrame, seed: int) -> list[tuple[int, int]]:
    """The selected (truth, prediction) pairs of one seed in subject and clip order, as the releases pool them."""
    part = rows[rows["seed"] == seed].sort_values(["fold", "clip_id"])
    return list(zip(part["true"].tolist(), part["pred"].tolist(), strict=True))


@pytest.fixture(scope="module")
def random_runs() -> tuple[dict[int, Runs], pd.DataFrame]:
    return _random_runs(np.random.default_rng(20250601), RUNS)


# ------------------------------------------------------------------ the rules against the loops
@pytest.mark.parametrize("network", ["ststnet", "aman", "htnet", "causalnet"])
def test_one_epoch_rules_are_their_releases_loops(network: str, random_runs) -> None:
    """The kept predictions (hence every pooled figure) and the chosen epoch per subject, on every random run."""
    all_runs, preds = random_runs
    chosen = selection.select(preds, ["release"], network=network)
    rows = chosen["release_acc"]
    assert chosen["release_f1"] is rows  # one epoch gives Acc, UF1 and UAR
    ours = _ours(rows, list(all_runs))
    dropped = 0
    for seed, runs in all_runs.items():
        release = LOOPS[network](runs)
        assert _epochs(rows, seed) == release["epochs"], f"seed {seed}"
        assert _kept(rows, seed) == list(zip(release["truth"], release["pred"], strict=True)), f"seed {seed}"
        figures = _pooled(release["truth"], release["pred"])
        assert ours[seed] == pytest.approx(figures, abs=1e-12), f"seed {seed}"
        dropped += len(runs) - len(release["epochs"])
    assert (dropped > 100) == (network == "causalnet")  # only CausalNet's pool loses its never-right subjects


def test_causalnet_figures_are_what_calculate_all_results_prints(random_runs) -> None:
    """Its own sklearn calls (macro over the classes in the pool) on its pooled lists: memix's figures wherever
    every class is in the pool."""
    all_runs, preds = random_runs
    rows = selection.select(preds, ["release"], network="causalnet")["release_acc"]
    ours = _ours(rows, list(all_runs))
    compared = 0
    for seed, runs in list(all_runs.items())[:60]:
        release = _causalnet_loop(runs)
        y_true, y_pred = release["truth"], release["pred"]
        if set(y_true) | set(y_pred) != set(range(K)) or set(y_true) != set(range(K)):
            continue
        assert ours[seed]["uf1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
        assert ours[seed]["uar"] == pytest.approx(recall_score(y_true, y_pred, average="macro"))
        compared += 1
    assert compared > 20


@pytest.mark.parametrize("network", ["mmnet", "mixmeformer", "vit"])
def test_memix_style_rules_are_their_releases_loops(network: str, random_runs) -> None:
    """Acc from the kept correct counts, UF1 from the kept F1 counts (float32 ties), the epochs of both."""
    all_runs, preds = random_runs
    chosen = selection.select(preds, ["release"], network=network)
    by_acc, by_f1 = chosen["release_acc"], chosen["release_f1"]
    acc_ours, f1_ours = _ours(by_acc, list(all_runs)), _ours(by_f1, list(all_runs))
    for seed, runs in all_runs.items():
        release = LOOPS[network](runs)
        assert acc_ours[seed]["accuracy"] == release["accuracy"]
        assert f1_ours[seed]["uf1"] == pytest.approx(release["uf1"], abs=1e-6)
        assert f1_ours[seed]["uar"] == pytest.approx(release["uar"], abs=1e-6)
        acc_epochs = _epochs(by_acc, seed)
        assert {s: acc_epochs[s] for s in release["acc_epochs"]} == release["acc_epochs"]
        assert all(acc_epochs[s] == 1 for s in set(runs) - set(release["acc_epochs"]))  # never right: 0 either way
        for subj, epoch in _epochs(by_f1, seed).items():
            if epoch != release["f1_epochs"][subj]:  # MEMix stops at 100 %: a later epoch only ties a perfect one
                labels, per_epoch = runs[subj]
                assert network != "mmnet"
                assert per_epoch[epoch - 1] == labels == per_epoch[release["f1_epochs"][subj] - 1]
    # the same rows as the oracle rule's
    oracle = selection.select(preds, ["oracle"])
    assert by_acc.equals(oracle["oracle_acc"]) and by_f1.equals(oracle["oracle_f1"])


def test_the_ststnet_rule_is_the_last_rule(random_runs) -> None:
    _, preds = random_runs
    chosen = selection.select(preds, ["last", "release"], network="ststnet")
    assert chosen["release_acc"].equals(chosen["last"]) and chosen["release_f1"].equals(chosen["last"])


# ------------------------------------------------------------------ the cases that tell the rules apart
def _frame(runs: Runs) -> pd.DataFrame:
    return pd.DataFrame([{"seed": 0, "fold": s, "epoch": e, "clip_id": f"{subj}/c{j}", "subject": subj,
                          "dataset": "casme2", "true": t, "pred": p}
                         for s, (subj, (labels, per_epoch)) in enumerate(runs.items())
                         for e, pred in enumerate(per_epoch, start=1)
                         for j, (t, p) in enumerate(zip(labels, pred, strict=True))])


def test_causalnet_drops_a_never_right_subject_that_aman_and_htnet_keep_at_its_last_epoch() -> None:
    runs: Runs = {"s0": ([0, 1], [[0, 0], [0, 1], [1, 1]]),  # best at epoch 2 (2/2)
                  "s1": ([2, 2], [[0, 1], [1, 0], [0, 0]])}  # never right
    preds = _frame(runs)
    kept = {n: selection.select(preds, ["release"], network=n)["release_acc"] for n in ("causalnet", "aman", "htnet")}
    assert kept["causalnet"]["subject"].unique().tolist() == ["s0"]
    assert _causalnet_loop(runs)["truth"] == [0, 1]  # the release pools subject s0's two clips only
    # the dropped subject's wrong answers are gone: a perfect pooled accuracy
    assert (kept["causalnet"]["true"] == kept["causalnet"]["pred"]).all()
    for network in ("aman", "htnet"):
        assert _epochs(kept[network], 0) == {"s0": 2, "s1": 3} == LOOPS[network](runs)["epochs"]
    assert "inflates" in release_rules.release_rule("causalnet").description


def test_htnet_keeps_the_latest_tied_epoch_and_causalnet_the_earliest() -> None:
    runs: Runs = {"s0": ([0, 1, 2], [[0, 0, 0], [0, 1, 0], [1, 1, 1], [0, 0, 2], [2, 2, 2]])}  # 2/3 at epochs 2, 4
    preds = _frame(runs)
    htnet = selection.select(preds, ["release"], network="htnet")["release_acc"]
    causalnet = selection.select(preds, ["release"], network="causalnet")["release_acc"]
    assert _epochs(htnet, 0) == {"s0": 4} == _htnet_loop(runs)["epochs"]
    assert _epochs(causalnet, 0) == {"s0": 2} == _causalnet_loop(runs)["epochs"]
    assert htnet["pred"].tolist() == [0, 0, 2] and causalnet["pred"].tolist() == [0, 1, 0]


# ------------------------------------------------------------------ the records
def test_every_rule_is_recorded_and_an_unknown_network_is_refused() -> None:
    assert set(release_rules.RULES) == {"ststnet", "mmnet", "mixmeformer", "vit", "aman", "htnet", "causalnet"}
    for network, rule in release_rules.RULES.items():
        assert rule.network == network and rule.release.count("/") == 1 and "line" in rule.where
        assert rule.description and "\n" not in rule.description
        assert rule.record()["tie"] == rule.tie
    assert (release_rules.release_rule("htnet").tie, release_rules.release_rule("causalnet").tie) == ("latest",
                                                                                                       "earliest")
    assert release_rules.release_rule("ststnet").selects == "last"
    assert release_rules.release_rule("vit") == dataclasses.replace(release_rules.release_rule("mixmeformer"),
                                                                    network="vit")
    assert release_rules.RUN == selection.RUN
    with pytest.raises(ValueError, match="no release rule for network 'resnet'.*ststnet"):
        release_rules.release_rule("resnet")
    with pytest.raises(ValueError, match="needs the network"):
        selection.select(_frame({"s0": ([0], [[0]])}), ["release"])
