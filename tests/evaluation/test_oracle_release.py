"""The ``oracle`` rule against a line-by-line transcription of the released MEMix code's LOSO loop.

The transcription below follows the release's ``main.py`` (its per-subject evaluation and pooling, around
lines 150-225): per-class counts in float32 tensors, accuracy kept with ``bingo_cnt > max_corr``, F1 with
``AVG_F1 >= max_f1``, the fold stopped once its subject is 100 % correct, and the chosen epochs' counts pooled.
Training is replaced by given predictions per epoch. Few clips per subject, as in every MER dataset, make ties
common, which is where a wrong tie rule shows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from memix.evaluation import metrics, selection

CLASSES = 5


def _release_loop(runs: dict[str, tuple[list[int], list[list[int]]]]) -> dict[str, object]:
    """The release's per-subject loop over epochs and its pooling; ``runs``: subject -> (truth, preds per epoch)."""
    num_sum, val_now = 0, 0
    pos_pred_all, pos_label_all, tp_all = torch.zeros(5), torch.zeros(5), torch.zeros(5)
    f1_epochs = {}
    for subj, (labels, epochs) in runs.items():
        max_corr, max_f1 = 0, 0
        max_pos_pred, max_pos_label, max_tp = torch.zeros(5), torch.zeros(5), torch.zeros(5)
        for i, predicts in enumerate(epochs, start=1):
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
            if avg_f1 >= max_f1:
                max_f1 = avg_f1
                max_pos_label, max_pos_pred, max_tp = pos_label, pos_pred, tp
                f1_epochs[subj] = i  # recorded for the test; the release prints only the accuracy epoch
            if acc == 1.0:
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
    return {
        "accuracy": num_sum / val_now, "uf1": float(sum_f1 / count), "f1_epochs": f1_epochs,
        "tp": tp_all.numpy(), "n_true": pos_pred_all.numpy(), "n_pred": pos_label_all.numpy(),
    }


def _random_run(rng: np.random.Generator) -> tuple[dict, pd.DataFrame]:
    """8 subjects of 1-4 clips, 12 epochs of predictions that are right about half the time; every class is in
    the pooled truth (as in a real dataset, whose classes are those its clips carry)."""
    while True:
        sizes = rng.integers(1, 5, size=8)
        truth = [rng.integers(0, CLASSES, size=n).tolist() for n in sizes]
        if len({c for t in truth for c in t}) == CLASSES:
            break
    runs, rows = {}, []
    for s, labels in enumerate(truth):
        epochs = []
        for epoch in range(1, 13):
            right = rng.random(len(labels)) < 0.5
            guess = rng.integers(0, CLASSES, size=len(labels))
            pred = np.where(right, labels, guess).tolist()
            epochs.append(pred)
            rows += [{"seed": 0, "fold": s, "epoch": epoch, "clip_id": f"s{s}/c{j}", "true": t, "pred": p}
                     for j, (t, p) in enumerate(zip(labels, pred, strict=True))]
        runs[f"s{s}"] = (labels, epochs)
    return runs, pd.DataFrame(rows)


def test_oracle_is_the_release_loop_on_random_loso_runs():
    rng = np.random.default_rng(20240414)
    differs_from_earliest_ties = 0
    for _ in range(300):
        runs, preds = _random_run(rng)
        release = _release_loop(runs)
        chosen = selection.select(preds, ["oracle"])
        by_acc, by_f1 = chosen["oracle_acc"], chosen["oracle_f1"]
        ours_acc = metrics.summary(by_acc["true"].to_numpy(), by_acc["pred"].to_numpy(), CLASSES)["accuracy"]
        ours_uf1 = metrics.summary(by_f1["true"].to_numpy(), by_f1["pred"].to_numpy(), CLASSES)["uf1"]
        assert ours_acc == release["accuracy"]
        assert abs(ours_uf1 - release["uf1"]) < 1e-6
        # the pooled counts themselves, and the very epochs the release keeps for F1
        cm = metrics.confusion(by_f1["true"].to_numpy(), by_f1["pred"].to_numpy(), CLASSES)
        np.testing.assert_array_equal(np.diagonal(cm), release["tp"])
        np.testing.assert_array_equal(cm.sum(axis=1), release["n_true"])
        np.testing.assert_array_equal(cm.sum(axis=0), release["n_pred"])
        epochs = by_f1.groupby("fold")["epoch"].first()
        last_one = {f"s{f}": e for f, e in epochs.items()}
        # the release stops a fold at 100 %; later epochs can only tie it with the same perfect counts
        for subj, epoch in last_one.items():
            if epoch != release["f1_epochs"][subj]:
                labels, per_epoch = runs[subj]
                assert per_epoch[epoch - 1] == labels == per_epoch[release["f1_epochs"][subj] - 1]
        differs_from_earliest_ties += _earliest_tie_uf1(preds) != ours_uf1
    assert differs_from_earliest_ties > 30  # the rule matters: earliest-tie F1 would differ on many runs


def _earliest_tie_uf1(preds: pd.DataFrame) -> float:
    """The pooled UF1 if F1 ties went to the earliest epoch (the rule this project used before)."""
    keys = ["fold", "epoch"]
    t, p = preds["true"].to_numpy(), preds["pred"].to_numpy()
    group = preds.groupby(keys, sort=True).ngroup().to_numpy()
    epochs = preds[keys].drop_duplicates().sort_values(keys).reset_index(drop=True)
    epochs["score"] = selection.release_f1(metrics.confusions(group, t, p, len(epochs), CLASSES))
    first = epochs.sort_values(["fold", "score", "epoch"], ascending=[True, False, True]).drop_duplicates("fold")
    pool = preds.merge(first[keys], on=keys)
    return metrics.summary(pool["true"].to_numpy(), pool["pred"].to_numpy(), CLASSES)["uf1"]


def test_f1_ties_are_the_releases_float32_ties():
    """Epochs 1 and 2 both have F1 3/10 mathematically (and in float64), but the release's float32 sums, in class
    order, give 0.3 and 0.29999998: no tie there, so it keeps epoch 1 where a float64 F1 would take the later one."""
    truth = [4, 0, 0, 2, 2]
    runs = {"s0": (truth, [[4, 3, 0, 0, 1], [0, 2, 0, 2, 0]])}
    preds = pd.DataFrame([{"seed": 0, "fold": 0, "epoch": e, "clip_id": f"c{j}", "true": t, "pred": p}
                          for e, pred in enumerate(runs["s0"][1], start=1)
                          for j, (t, p) in enumerate(zip(truth, pred, strict=True))])
    assert _release_loop(runs)["f1_epochs"] == {"s0": 1}
    assert selection.select_oracle(preds, "f1")["epoch"].unique().tolist() == [1]
