"""Rule baselines: recency threshold search, category affinity and popularity by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.training.frames import CUTOFF, at, day, events_frame
from training.rules import RecencyRule, category_affinity, category_popularity


def test_recency_rule_churn() -> None:
    x = pd.DataFrame({"recency_days": [5.0, 10, 40, 50, 200, np.nan]})
    y = np.array([0, 0, 0, 1, 1, 1])
    rule = RecencyRule("churn", candidates=(7, 45, 100)).fit(x, y)
    assert rule.threshold_days_ == 45  # flags 50, 200, never: TPR 1, FPR 0
    assert rule.youden_j_ == pytest.approx(1.0)
    assert rule.predict(x).tolist() == [0, 0, 0, 1, 1, 1]
    assert rule.rates_ == (0.0, 1.0)
    assert rule.decision_function(x).tolist() == [5, 10, 40, 50, 200, 201]


def test_recency_rule_repurchase_direction() -> None:
    x = pd.DataFrame({"recency_days": [5.0, 10, 40, 50]})
    y = np.array([1, 1, 0, 0])
    rule = RecencyRule("repurchase", candidates=(7, 20, 45)).fit(x, y)
    assert rule.threshold_days_ == 20
    assert rule.predict_proba(x)[:, 1].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert rule.decision_function(x).tolist() == [-5, -10, -40, -50]


def test_recency_rule_needs_recency() -> None:
    with pytest.raises(KeyError, match="recency_days"):
        RecencyRule().fit(pd.DataFrame({"x": [1.0]}), np.array([1]))
    with pytest.raises(ValueError, match="cross_sell"):
        RecencyRule("cross_sell").fit(pd.DataFrame({"recency_days": [1.0]}), np.array([1]))


def _orders() -> list:
    return [
        ("A", at(day(-10)), "order", "x"),
        ("A", at(day(-20)), "order", "y"),
        ("B", at(day(-10)), "order", "x"),
        ("C", at(day(-400)), "order", "y"),
        ("C", at(day(-400)), "order", "z"),
        ("D", at(day(5)), "order", "z"),  # after the cutoff: ignored
        ("E", at(day(-3)), "visit", None),
    ]


def test_category_affinity_by_hand() -> None:
    got = category_affinity(events_frame(_orders()), CUTOFF, ["x", "y", "z"])
    aff = {(c, k): v for c, k, v in got.iter_rows()}
    # buyers: x {A, B}, y {A, C}, z {C}; P(y|x) = 1/2, P(x|y) = 1/2, P(z|y) = 1/2, P(y|z) = 1
    assert aff[("B", "y")] == pytest.approx(0.5)
    assert aff[("B", "z")] == 0.0
    assert aff[("A", "z")] == pytest.approx(0.5)  # via y
    assert aff[("C", "x")] == pytest.approx(0.5)  # via y
    assert aff[("C", "y")] == pytest.approx(1.0)  # via z (already bought, still scored)
    assert {c for c, _ in aff} == {"A", "B", "C"}


def test_category_popularity_by_hand() -> None:
    got = category_popularity(events_frame(_orders()), CUTOFF, ["x", "y", "z", "w"])
    # recent buyers (365 days): A, B; x bought by both, y by A
    assert dict(got.iter_rows()) == {"x": 1.0, "y": 0.5, "z": 0.0, "w": 0.0}
