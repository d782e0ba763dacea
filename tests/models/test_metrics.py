"""Held-out metrics and the grade against hand-computed tiny fixtures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.metrics import (
    RANKED_METRICS,
    binary_metrics,
    grade,
    ranked_evaluation,
    top_decile_lift,
    top_k_metrics,
)

# 20 rows scored 20, 19, ..., 1; positives at ranks 1, 2, 5 and 12 (overall rate 0.2)
SCORE = np.arange(20, 0, -1, dtype=float)
Y = np.zeros(20, dtype=int)
Y[[0, 1, 4, 11]] = 1


def test_top_decile_lift_by_hand() -> None:
    # top decile = ranks 1-2, both positive: rate 1.0 / 0.2 = 5
    assert top_decile_lift(Y, SCORE) == pytest.approx(5.0)
    # row order does not matter
    perm = np.random.default_rng(0).permutation(20)
    assert top_decile_lift(Y[perm], SCORE[perm]) == pytest.approx(5.0)


def test_binary_metrics() -> None:
    m = binary_metrics(Y, SCORE / 20)
    # of 16 negatives: ranks 1 and 2 beat all, rank 5 beats 14 (ranks 6-20 but 12), rank 12 beats 8
    assert m["roc_auc"] == pytest.approx((16 + 16 + 14 + 8) / 64)
    assert m["pr_auc"] == pytest.approx((1 + 1 + 3 / 5 + 4 / 12) / 4)
    assert m["brier"] == pytest.approx(np.mean((SCORE / 20 - Y) ** 2))
    assert m["positive_rate"] == pytest.approx(0.2)
    rule = binary_metrics(Y, SCORE, proba=np.full(20, 0.2))
    assert rule["roc_auc"] == pytest.approx(m["roc_auc"])
    assert rule["brier"] == pytest.approx(0.16)
    single = binary_metrics(np.zeros(3, dtype=int), np.array([0.1, 0.2, 0.3]))
    assert np.isnan(single["roc_auc"]) and np.isnan(single["top_decile_lift"])


def test_top_k_by_hand() -> None:
    customers = np.array(["A", "A", "A", "B", "B", "C", "C", "C"])
    y = np.array([1, 0, 1, 0, 0, 0, 0, 1])
    score = np.array([0.9, 0.5, 0.1, 0.2, 0.8, 0.3, 0.7, 0.4])
    got = top_k_metrics(customers, y, score)
    # A: top1 hit, top3 two hits of 2; B has no positive (ignored); C: top1 miss, top3 1 of 1
    assert got == pytest.approx(
        {"precision@1": 0.5, "recall@1": 0.25, "precision@3": 0.5, "recall@3": 1.0}
    )


def test_grade_thresholds() -> None:
    base = {"roc_auc": 0.70, "pr_auc": 0.40}
    assert grade({"roc_auc": 0.76, "pr_auc": 0.45}, base) == "A"
    assert grade({"roc_auc": 0.76, "pr_auc": 0.43}, base) == "B"  # PR-AUC gain under 10 %
    assert grade({"roc_auc": 0.72, "pr_auc": 0.40}, base) == "B"
    assert grade({"roc_auc": 0.705, "pr_auc": 0.50}, base) == "C"
    assert grade({"roc_auc": 0.80, "pr_auc": 0.39}, base) == "C"


def test_ranked_evaluation_adds_top_k_per_customer() -> None:
    index = pd.MultiIndex.from_arrays(
        [["A", "A", "B", "B"], ["x", "y", "x", "y"]], names=["customer_id", "category"]
    )
    y = np.array([1, 0, 0, 1])
    got = ranked_evaluation(y, np.array([0.9, 0.1, 0.8, 0.2]), None, index)
    assert list(got)[-4:] == list(RANKED_METRICS[-4:])
    assert got["precision@1"] == pytest.approx(0.5) and got["recall@3"] == pytest.approx(1.0)
