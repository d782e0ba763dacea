"""Labels of each task's spec: hand-computed fixtures, populations on the snapshot, and the
property that only the window (c, c + H] counts."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.snapshot import build_snapshot
from models.labels import known_customers, window_labels
from models.specs.churn import churn_labels
from models.specs.cross_sell import cross_sell_labels
from models.specs.repurchase import repurchase_labels
from models.tasks import ACTIVE_BUYERS, ELIGIBLE, get_task
from tests.training.frames import CUTOFF, at, day, events_frame

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


def _active(events: pl.DataFrame, active_days: int = 365) -> pl.DataFrame:
    """The churn population, as training selects it: on the snapshot as of the cutoff."""
    return ACTIVE_BUYERS.select(build_snapshot(events, None, CUTOFF), active_days)


def test_churn_labels_by_hand(events: pl.DataFrame) -> None:
    got = churn_labels(events, CUTOFF, H, _active(events))
    assert dict(got.iter_rows()) == {"A": 0, "B": 1, "C": 1, "E": 0, "F": 1}
    assert got.schema["label"] == pl.Int8


def test_churn_active_window_is_configurable(events: pl.DataFrame) -> None:
    got = churn_labels(events, CUTOFF, H, _active(events, active_days=50))
    assert set(got["customer_id"]) == {"A", "C", "E", "F"}


def test_population_statuses(events: pl.DataFrame) -> None:
    snapshot = build_snapshot(events, None, CUTOFF).with_columns(ACTIVE_BUYERS.status(365))
    status = dict(snapshot.select("customer_id", "status").iter_rows())
    assert status == {
        "A": ELIGIBLE,
        "B": ELIGIBLE,
        "C": ELIGIBLE,
        "D": "lapsed",
        "E": ELIGIBLE,
        "F": ELIGIBLE,
    }
    prospects = build_snapshot(
        events_frame([("P", at(day(-3)), "visit", None)]), None, CUTOFF
    ).select(ACTIVE_BUYERS.status(365))
    assert prospects["status"].to_list() == ["prospect"]
    described = get_task("churn").population.describe(90)
    assert described["active_days"] == 90 and "90" in described["description"]
    assert set(described["outside"]) == {"prospect", "lapsed"}


def test_repurchase_labels_by_hand(events: pl.DataFrame) -> None:
    got = repurchase_labels(events, CUTOFF, H, known_customers(events, CUTOFF))
    assert dict(got.iter_rows()) == {"A": 1, "B": 0, "C": 1, "D": 1, "E": 1, "F": 0}


def test_cross_sell_labels_by_hand(events: pl.DataFrame) -> None:
    cats = ["garden", "home_garden", "shoes", "toys"]
    got = cross_sell_labels(events, CUTOFF, H, known_customers(events, CUTOFF), cats)
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
    population = pl.DataFrame({"customer_id": ["A", "G", "Z", "A"]})
    got = repurchase_labels(events, CUTOFF, H, population)
    assert dict(got.iter_rows()) == {"A": 1, "G": 1, "Z": 0}
    labels = window_labels(
        events,
        CUTOFF,
        H,
        population,
        pl.col("visited") | pl.col("cancelled"),
        visited=("visit",),
        cancelled=("cancel",),
    )
    assert dict(labels.iter_rows()) == {"A": 0, "G": 0, "Z": 0}


def test_known_customers(events: pl.DataFrame) -> None:
    assert known_customers(events, CUTOFF)["customer_id"].to_list() == list("ABCDEF")


def test_bad_arguments(events: pl.DataFrame) -> None:
    population = known_customers(events, CUTOFF)
    with pytest.raises(ValueError, match="horizon"):
        churn_labels(events, CUTOFF, 0, population)
    with pytest.raises(ValueError, match="horizon"):
        cross_sell_labels(events, CUTOFF, 0, population, ["shoes"])
    with pytest.raises(ValueError, match="unknown task"):
        get_task("upsell")


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
        churn = churn_labels(frame, CUTOFF, horizon, population)
        assert dict(churn.iter_rows()) == expected_churn
        repurchase = repurchase_labels(frame, CUTOFF, horizon, population)
        assert dict(repurchase.iter_rows()) == expected_repurchase

    bought_before = {(r[0], r[4]) for r in raw if r[1] <= 0 and r[3] == "order" and r[4]}
    bought_in = {(r[0], r[4]) for r in in_window if r[3] == "order" and r[4]}
    cross = cross_sell_labels(events, CUTOFF, horizon, population, ["x", "y"])
    assert {(c, k): v for c, k, v in cross.iter_rows()} == {
        (c, k): int((c, k) in bought_in)
        for c in "abcd"
        for k in ("x", "y")
        if (c, k) not in bought_before
    }
