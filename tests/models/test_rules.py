"""Rule baselines: feature threshold search, category affinity and popularity by hand."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import polars as pl
import pytest
from sklearn.base import clone

from features.contracts import event_schema
from models.rules import (
    POPULARITY_WINDOW_DAYS,
    CategoryAffinityRule,
    CategoryPopularityRule,
    FeatureThresholdRule,
    affinity_fallback,
    category_affinity,
    category_inputs,
    category_lift,
    category_popularity,
)
from models.tasks import Baseline, get_task
from tests.training.frames import CUTOFF, at, day, events_frame


def test_recency_rule_churn() -> None:
    x = pd.DataFrame({"recency_days": [5.0, 10, 40, 50, 200, np.nan]})
    y = np.array([0, 0, 0, 1, 1, 1])
    rule = FeatureThresholdRule("recency_days", "above", candidates=(7, 45, 100)).fit(x, y)
    assert rule.threshold_ == 45  # flags 50, 200, never: TPR 1, FPR 0
    assert rule.youden_j_ == pytest.approx(1.0)
    assert rule.predict(x).tolist() == [0, 0, 0, 1, 1, 1]
    assert rule.rates_ == (0.0, 1.0)
    assert rule.decision_function(x).tolist() == [5, 10, 40, 50, 200, 201]
    assert rule.describe() == {
        "name": "no order in the last X days",
        "threshold_days": 45,
        "train_youden_j": 1.0,
    }


def test_recency_rule_repurchase_direction() -> None:
    x = pd.DataFrame({"recency_days": [5.0, 10, 40, 50]})
    y = np.array([1, 1, 0, 0])
    rule = FeatureThresholdRule("recency_days", "at_most", candidates=(7, 20, 45)).fit(x, y)
    assert rule.threshold_ == 20
    assert rule.predict_proba(x)[:, 1].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert rule.decision_function(x).tolist() == [-5, -10, -40, -50]


def test_threshold_rule_on_a_count_feature() -> None:
    x = pd.DataFrame({"referrals_365d": [0.0, 0, 1, 3, 0, 2]})
    y = np.array([0, 0, 1, 1, 0, 0])
    rule = FeatureThresholdRule(
        "referrals_365d", "above", candidates=(0, 1, 2), name="x", setting="threshold"
    ).fit(x, y)
    assert rule.threshold_ == 0  # flags 1, 3, 2: TPR 1, FPR 1/4
    assert rule.describe() == {"name": "x", "threshold": 0, "train_youden_j": 0.75}
    assert rule.predict_proba(x)[:, 1].tolist() == pytest.approx([0, 0, 2 / 3, 2 / 3, 0, 2 / 3])


def test_threshold_rule_needs_its_feature_and_a_direction() -> None:
    with pytest.raises(KeyError, match="recency_days"):
        FeatureThresholdRule().fit(pd.DataFrame({"x": [1.0]}), np.array([1]))
    with pytest.raises(ValueError, match="direction"):
        FeatureThresholdRule(direction="sideways").fit(  # type: ignore[arg-type]
            pd.DataFrame({"recency_days": [1.0]}), np.array([1])
        )


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


def test_category_inputs_by_hand() -> None:
    """Buyers by the cutoff: A {x, y}, B {x}, C {y, z}, F {z}; F's z order, 350 days back, is
    the only one in last year's 30-day season window (z: share 1 there against 1 of the year's 4
    category orders, a season of 4; x and y sold nothing then, 0). In the rule's 365 days only
    A, B and F ordered (C's orders are 400 days back): x 2/3, y 1/3, z 1/3, the affinity rule's
    fallback, where over all time each is 2/4."""
    events = events_frame([*_orders(), ("F", at(day(-350)), "order", "z")])
    got = category_inputs(events, CUTOFF, ["x", "y", "z"], 30)
    assert got["popularity"] == pytest.approx({"x": 0.5, "y": 0.5, "z": 0.5})
    assert got["recent_popularity"] == pytest.approx({"x": 2 / 3, "y": 1 / 3, "z": 1 / 3})
    assert affinity_fallback(got) == got["recent_popularity"]
    assert got["co_bought"] == {"x": {"y": 0.5}, "y": {"x": 0.5, "z": 0.5}, "z": {"y": 0.5}}
    assert got["season"] == pytest.approx({"x": 0.0, "y": 0.0, "z": 4.0})
    # a shorter window, as a rule built with one would take: only F's order, 350 days back, is out
    assert category_inputs(events, CUTOFF, ["x", "y", "z"], 30, 100)[
        "recent_popularity"
    ] == pytest.approx({"x": 1.0, "y": 0.5, "z": 0.0})
    nothing = category_inputs(events.head(0), CUTOFF, ["x"], 30)
    assert nothing == {
        "popularity": {"x": 0.0},
        "recent_popularity": {"x": 0.0},
        "co_bought": {},
        "season": {"x": 1.0},
    }


def test_the_fallback_of_statistics_saved_before_it_is_the_old_one() -> None:
    """A model saved with statistics that lack ``recent_popularity`` keeps the fallback it was
    trained with, the popularity over all time."""
    saved = {"popularity": {"x": 0.5}, "co_bought": {}, "season": {"x": 1.0}}
    assert affinity_fallback(saved) == {"x": 0.5}
    assert affinity_fallback({**saved, "recent_popularity": {"x": 0.25}}) == {"x": 0.25}
    assert affinity_fallback({}) == {}


def test_the_affinity_rule_and_its_model_input_share_a_window() -> None:
    """The model input ``candidate_affinity`` is the graded rule's score only if its fallback
    takes the rule's window: training computes the statistics with the spec's
    ``popularity_window_days``, the window the spec builds its affinity rule with (a task whose
    graded rule has no window takes the default)."""
    spec = get_task("cross_sell")
    rule = spec.rules[0].rule
    assert isinstance(rule, CategoryAffinityRule)
    assert rule.describe()["popularity_window_days"] == spec.popularity_window_days
    assert spec.popularity_window_days == POPULARITY_WINDOW_DAYS
    other = replace(spec, rules=(Baseline("rule", CategoryAffinityRule(window_days=90)),))
    assert other.popularity_window_days == 90
    assert get_task("churn").popularity_window_days == POPULARITY_WINDOW_DAYS


def test_category_popularity_by_hand() -> None:
    got = category_popularity(events_frame(_orders()), CUTOFF, ["x", "y", "z", "w"])
    # recent buyers (365 days): A, B; x bought by both, y by A
    assert dict(got.iter_rows()) == {"x": 1.0, "y": 0.5, "z": 0.0, "w": 0.0}


def test_category_rules_score_rows_of_every_cutoff() -> None:
    events = events_frame(_orders())
    index = pd.MultiIndex.from_tuples(
        [(CUTOFF, "B", "y"), (CUTOFF, "B", "z"), (CUTOFF, "E", "x"), (CUTOFF, "A", "z")],
        names=["cutoff", "customer_id", "category"],
    )
    x = pd.DataFrame({"f": [0.0] * 4}, index=index)
    y = np.array([1, 0, 0, 1])
    affinity = clone(CategoryAffinityRule()).fit(x, y, events=events)
    # B: P(y|x) = 1/2, P(z|x) = 0; E bought nothing: popularity of x (1.0); A: z via y (1/2)
    assert affinity.decision_function(x, events=events).tolist() == pytest.approx(
        [0.5, 0.0, 1.0, 0.5]
    )
    proba = affinity.predict_proba(x, events=events)
    assert proba.shape == (4, 2) and np.allclose(proba.sum(axis=1), 1.0)
    popularity = CategoryPopularityRule().fit(x, y, events=events)
    assert popularity.decision_function(x, events=events).tolist() == pytest.approx(
        [0.5, 0.0, 1.0, 0.0]
    )
    assert popularity.describe() == {"name": "category popularity", "window_days": 365}
    with pytest.raises(ValueError, match="events"):
        CategoryAffinityRule().fit(x, y)


def test_category_lift_by_hand() -> None:
    """Four buyers: a, b bought toys and garden; c bought toys; d bought kitchen.
    Garden: 2 of 4 buyers (0.5); among the 3 toys buyers 2 (2/3): lift 4/3. Toys among the
    2 garden buyers: 2 of 2 (1.0) against 3 of 4: lift 4/3. Kitchen is never bought with another."""
    bought = [("a", "toys"), ("a", "garden"), ("b", "toys"), ("b", "garden"), ("c", "toys")]
    bought += [("d", "kitchen"), ("e", "garden")]  # e orders after the cutoff: not counted
    rows = [
        {
            "customer_id": cid,
            "ts": datetime(2024, 6, 30 if cid == "e" else 1, tzinfo=UTC),
            "event_type": "order",
            "amount": 10.0,
            "quantity": 1.0,
            "category": cat,
            "ref_id": f"{cid}{cat}",
        }
        for cid, cat in bought
    ]
    events = pl.DataFrame(rows, schema=event_schema())
    lift = category_lift(events, date(2024, 6, 1), ["garden", "kitchen", "toys"])
    assert lift == {
        "garden": {"toys": pytest.approx(4 / 3)},
        "toys": {"garden": pytest.approx(4 / 3)},
    }
