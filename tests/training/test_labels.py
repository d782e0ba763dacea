"""Labels: hand-computed fixtures and the property that only the window (c, c + H] counts."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.training.frames import CUTOFF, at, day, events_frame
from training.labels import (
    churn_labels,
    cross_sell_labels,
    known_customers,
    labels_for,
    repurchase_labels,
)

H = 30


@pytest.fixture
def events() -> pl.DataFrame:
    return events_frame(
        [
            # A: active, orders in the window -> churn 0, repurchase 1
            ("A", at(day(-10)), "order", "Shoes"),
            ("A", at(day(5)), "order", "Garden"),
            # B: active, nothing in the window -> churn 1, repurchase 0
            ("B", at(day(-100)), "order", "Shoes"),
            ("B", at(day(3)), "visit", None),
            # C: active, orders but also cancels in the window -> churn 1, repurchase 1
            ("C", at(day(-1)), "order", "Home & Garden"),
            ("C", at(day(2)), "order", "Shoes"),
            ("C", at(day(20)), "cancel", None),
            # D: last order 400 days before the cutoff -> not active (no churn label)
            ("D", at(day(-400)), "order", "Shoes"),
            ("D", at(day(10)), "order", "Shoes"),
            # E: order at 23:59 on the cutoff day (belongs to the past) and on day c + H (in)
            ("E", datetime(2025, 3, 31, 23, 59, 59, tzinfo=UTC), "order", "Shoes"),
            ("E", datetime(2025, 4, 30, 23, 59, 59, tzinfo=UTC), "order", "Toys"),
            # F: order on day c + H + 1 (out of the window)
            ("F", at(day(-30)), "order", "Toys"),
            ("F", datetime(2025, 5, 1, 0, 0, 0, tzinfo=UTC), "order", "Shoes"),
            # G: first seen after the cutoff -> unknown at c
            ("G", at(day(4)), "order", "Shoes"),
        ]
    )


def test_churn_labels_by_hand(events: pl.DataFrame) -> None:
    got = churn_labels(events, CUTOFF, H)
    assert dict(got.iter_rows()) == {"A": 0, "B": 1, "C": 1, "E": 0, "F": 1}
    assert got.schema["label"] == pl.Int8


def test_churn_active_window_is_configurable(events: pl.DataFrame) -> None:
    got = churn_labels(events, CUTOFF, H, active_days=50)
    assert set(got["customer_id"]) == {"A", "C", "E", "F"}


def test_repurchase_labels_by_hand(events: pl.DataFrame) -> None:
    got = repurchase_labels(events, CUTOFF, H)
    assert dict(got.iter_rows()) == {"A": 1, "B": 0, "C": 1, "D": 1, "E": 1, "F": 0}


def test_cross_sell_labels_by_hand(events: pl.DataFrame) -> None:
    cats = ["garden", "home_garden", "shoes", "toys"]
    got = cross_sell_labels(events, CUTOFF, H, cats)
    labels = {(c, k): v for c, k, v in got.iter_rows()}
    # A bought shoes before: garden bought in the window
    assert labels[("A", "garden")] == 1
    assert ("A", "shoes") not in labels
    assert labels[("A", "toys")] == 0
    # C bought "Home & Garden" (sanitised to home_garden) before, shoes in the window
    assert ("C", "home_garden") not in labels
    assert labels[("C", "shoes")] == 1
    # E: toys on day c + H counts; F: shoes on day c + H + 1 does not
    assert labels[("E", "toys")] == 1
    assert labels[("F", "shoes")] == 0
    assert "G" not in set(got["customer_id"])
    assert len(got) == 6 * 4 - 6  # six known customers, minus the categories they had bought


def test_population_is_respected(events: pl.DataFrame) -> None:
    population = pl.DataFrame({"customer_id": ["A", "G", "Z"]})
    got = repurchase_labels(events, CUTOFF, H, population=population)
    assert dict(got.iter_rows()) == {"A": 1, "G": 1, "Z": 0}
    churn = labels_for("churn", events, CUTOFF, H, population=population)
    assert churn["customer_id"].to_list() == ["A"]


def test_known_customers(events: pl.DataFrame) -> None:
    assert known_customers(events, CUTOFF)["customer_id"].to_list() == list("ABCDEF")


def test_bad_arguments(events: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="horizon"):
        churn_labels(events, CUTOFF, 0)
    with pytest.raises(ValueError, match="unknown task"):
        labels_for("upsell", events, CUTOFF, H)
    with pytest.raises(ValueError, match="categories"):
        labels_for("cross_sell", events, CUTOFF, H)


# --- property: a label never uses an event at or before its cutoff ---------------------------

_event = st.tuples(
    st.sampled_from(["a", "b", "c", "d"]),
    st.integers(min_value=-60, max_value=60),  # day offset from the cutoff
    st.integers(min_value=0, max_value=23),
    st.sampled_from(["order", "order", "cancel", "visit"]),
    st.sampled_from(["x", "y", None]),
)


def _frame(raw: list[tuple[str, int, int, str, str | None]]) -> pl.DataFrame:
    return events_frame([(c, at(day(off), hour), kind, cat) for c, off, hour, kind, cat in raw])


@settings(max_examples=60, deadline=None)
@given(st.lists(_event, max_size=40), st.integers(min_value=1, max_value=45))
def test_labels_only_read_the_window(raw: list, horizon: int) -> None:
    events = _frame(raw)
    population = pl.DataFrame({"customer_id": ["a", "b", "c", "d"]})
    after = events.filter(pl.col("ts").dt.date() > CUTOFF)
    in_window = [r for r in raw if 0 < r[1] <= horizon]

    # brute force from the window only
    ordered = {r[0] for r in in_window if r[3] == "order"}
    cancelled = {r[0] for r in in_window if r[3] == "cancel"}
    expected_churn = {c: int(c not in ordered or c in cancelled) for c in "abcd"}
    expected_repurchase = {c: int(c in ordered) for c in "abcd"}

    for frame in (events, after):  # events at or before the cutoff change no label value
        churn = churn_labels(frame, CUTOFF, horizon, population=population)
        assert dict(churn.iter_rows()) == expected_churn
        repurchase = repurchase_labels(frame, CUTOFF, horizon, population=population)
        assert dict(repurchase.iter_rows()) == expected_repurchase

    bought_before = {(r[0], r[4]) for r in raw if r[1] <= 0 and r[3] == "order" and r[4]}
    bought_in = {(r[0], r[4]) for r in in_window if r[3] == "order" and r[4]}
    cross = cross_sell_labels(events, CUTOFF, horizon, ["x", "y"], population=population)
    assert {(c, k): v for c, k, v in cross.iter_rows()} == {
        (c, k): int((c, k) in bought_in)
        for c in "abcd"
        for k in ("x", "y")
        if (c, k) not in bought_before
    }
