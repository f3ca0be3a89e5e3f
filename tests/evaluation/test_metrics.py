"""Metric definitions: the pooled figures, the part-of-a-pool figures and their count-matrix forms agree with
scikit-learn and with UF1/UAR as written down."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, recall_score

from memix.evaluation import metrics

K = 5


def _uf1_by_definition(true: np.ndarray, pred: np.ndarray, k: int) -> float:
    scores = []
    for c in range(k):
        tp = np.sum((true == c) & (pred == c))
        fp = np.sum((true != c) & (pred == c))
        fn = np.sum((true == c) & (pred != c))
        scores.append(0.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def test_pool_summary_counts_every_class_even_when_absent():
    true = np.array([0, 0, 1, 1, 2, 2])  # classes 3 and 4 absent from truth and predictions
    pred = np.array([0, 1, 1, 1, 2, 0])
    s = metrics.summary(true, pred, K)
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert s["uf1"] == pytest.approx(_uf1_by_definition(true, pred, K))
    assert s["uf1"] == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 5)  # two absent classes count 0
    assert s["uar"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 5)


def test_count_matrix_forms_equal_sklearn_on_random_pools():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 7, 400)
    true, pred = rng.integers(0, K, 400), rng.integers(0, K, 400)
    pred[true == 4] = 4  # class 4 always right
    true[groups == 2] = 0  # group 2 holds one class only
    cms = metrics.confusions(groups, true, pred, 7, K)
    assert cms.shape == (7, K, K) and cms.sum() == 400
    pool = metrics.from_confusion(cms)
    part = metrics.part_from_confusion(cms)
    for g in range(7):
        t, p = true[groups == g], pred[groups == g]
        np.testing.assert_array_equal(cms[g], metrics.confusion(t, p, K))
        full = metrics.summary(t, p, K)
        for name in metrics.METRICS:
            assert pool[name][g] == pytest.approx(full[name]), (g, name)
        assert part["accuracy"][g] == pytest.approx(full["accuracy"])
        assert part["uf1"][g] == pytest.approx(f1_score(t, p, average="macro", zero_division=0))
        assert part["uar"][g] == pytest.approx(recall_score(t, p, labels=np.unique(t), average="macro",
                                                            zero_division=0))
    assert part["uar"][2] != pytest.approx(pool["uar"][2])  # a one-class part is not scored over all classes


def test_per_class_reports_zero_where_undefined():
    names = ["a", "b", "c"]
    pc = metrics.per_class(np.array([0, 0, 1]), np.array([0, 1, 0]), names)
    assert pc["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "n": 0}
    assert pc["a"]["n"] == 2 and pc["a"]["recall"] == pytest.approx(0.5)
