"""Property tests of build_snapshot: point-in-time correctness and order independence."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from features.contracts import CHANNELS, EVENT_TYPES, FEATURES, event_schema
from features.snapshot import build_snapshot
from tests.features.conftest import AS_OF

DAYS_SINCE = [n for n, f in FEATURES.items() if f.unit == "days" and f.dtype == "int"]

row = st.fixed_dictionaries(
    {
        "customer_id": st.sampled_from(["a", "b", "c", "d"]),
        "ts": st.builds(
            lambda days, seconds: (
                datetime.combine(AS_OF, time(), tzinfo=UTC) + timedelta(days=days, seconds=seconds)
            ),
            st.integers(-400, 0),
            st.integers(0, 86_399),
        ),
        "event_type": st.sampled_from(EVENT_TYPES),
        "channel": st.sampled_from([*CHANNELS[:4], None]),
        "amount": st.integers(0, 100).map(float),
        "margin": st.one_of(st.none(), st.integers(-10, 30).map(float)),
        "category": st.sampled_from(["Toys", "Home & Garden", None]),
        "score": st.integers(1, 5).map(float),
        "ref_id": st.sampled_from(["t1", "t2", None]),
    }
)

priced_row = st.builds(
    lambda event, cents, margin_cents: {
        **event,
        "amount": cents / 100,
        "margin": None if event["margin"] is None else margin_cents / 100,
    },
    row,
    st.integers(0, 100_000),
    st.integers(-10_000, 30_000),
)
"""An event with amounts in cents: float sums of them depend on the order of addition."""


def frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=event_schema())


def later(rows: list[dict[str, object]], days: int) -> list[dict[str, object]]:
    """The same rows moved ``days`` days later (so past AS_OF for days >= 401)."""
    return [{**r, "ts": r["ts"] + timedelta(days=days)} for r in rows]  # type: ignore[operator]


@settings(max_examples=50, deadline=None)
@given(
    seen=st.lists(row, max_size=30),
    unseen=st.lists(row, max_size=10),
    shift=st.integers(401, 800),
)
def test_events_after_as_of_change_nothing_and_absent_customers(
    seen: list[dict[str, object]], unseen: list[dict[str, object]], shift: int
) -> None:
    future = later(unseen, shift)  # strictly after AS_OF, possibly new customers
    base = build_snapshot(frame(seen), None, AS_OF)
    assert_frame_equal(build_snapshot(frame(seen + future), None, AS_OF), base, check_exact=True)
    # one row per customer with an event on or before AS_OF, none for the others
    assert base["customer_id"].to_list() == sorted({str(r["customer_id"]) for r in seen})
    # days-since features and recency are never negative
    for name in DAYS_SINCE:
        assert (base[name].drop_nulls() >= 0).all(), name


@settings(max_examples=50, deadline=None)
@given(rows=st.lists(priced_row, min_size=1, max_size=30), data=st.data())
def test_row_order_changes_nothing(rows: list[dict[str, object]], data: st.DataObject) -> None:
    """Not even the last bit of a float sum or mean: the snapshot is reproducible exactly."""
    shuffled = data.draw(st.permutations(rows))
    cats = data.draw(st.sampled_from([None, ["toys", "Books"]]))
    assert_frame_equal(
        build_snapshot(frame(shuffled), None, AS_OF, cats),
        build_snapshot(frame(rows), None, AS_OF, cats),
        check_exact=True,
    )
