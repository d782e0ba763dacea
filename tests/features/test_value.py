"""Repeat-purchase summaries, purchase counts and subscription spells: hand-computed and properties.

Every fixture is as of 2024-06-30 (``AS_OF``). 2024-01-01 is 181 days before it, 2024-03-01 121
days, 2024-02-01 150 days, 2024-06-01 29 days.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from features.value import (
    order_events,
    purchase_counts,
    repeat_purchase_summary,
    subscription_spells,
)
from tests.cdnow import CALIBRATION_END, cdnow_events
from tests.features.conftest import AS_OF, events, order, row
from tests.features.test_snapshot_properties import frame, later
from tests.features.test_snapshot_properties import row as event_row


def purchases() -> pl.DataFrame:
    return events(
        order("a", "2024-01-01 09:00", 10.0, margin=2.0),
        order("a", "2024-01-01 17:00", 5.0, margin=1.0),  # same day: one purchase of 15
        order("a", "2024-03-01", 20.0, margin=4.0),
        order("a", "2024-06-30 23:59", 30.0),  # margin unknown
        order("a", "2024-07-05", 100.0, margin=50.0),  # after AS_OF: never seen
        order("b", "2024-06-01", 50.0, margin=10.0),
        ("c", "2024-05-01", "visit"),  # no order: absent
        order("d", "2024-07-01", 70.0),  # only after AS_OF: absent
    )


def test_summary_in_days_by_hand() -> None:
    summary = repeat_purchase_summary(purchases(), AS_OF)
    assert summary["customer_id"].to_list() == ["a", "b"]
    assert row(summary, "a") == {
        "customer_id": "a",
        "frequency": 2,  # three order days, the first is not a repeat
        "recency": 181.0,  # 2024-01-01 to 2024-06-30
        "T": 181.0,
        "monetary_value": 25.0,  # mean of 20 and 30; the first day's 15 is not a repeat
        "margin_value": 4.0,  # only 2024-03-01 has a known margin
    }
    assert row(summary, "b") == {
        "customer_id": "b",
        "frequency": 0,
        "recency": 0.0,
        "T": 29.0,
        "monetary_value": None,
        "margin_value": None,
    }
    assert summary.schema == pl.Schema(
        {
            "customer_id": pl.String,
            "frequency": pl.Int64,
            "recency": pl.Float64,
            "T": pl.Float64,
            "monetary_value": pl.Float64,
            "margin_value": pl.Float64,
        }
    )


def test_summary_in_weeks_divides_times_only() -> None:
    days = repeat_purchase_summary(purchases(), AS_OF)
    weeks = repeat_purchase_summary(purchases(), AS_OF, time_unit_days=7)
    assert weeks["recency"].to_list() == pytest.approx([181 / 7, 0.0])
    assert weeks["T"].to_list() == pytest.approx([181 / 7, 29 / 7])
    assert_frame_equal(weeks.drop("recency", "T"), days.drop("recency", "T"))


def test_summary_refuses_a_bad_unit_and_a_datetime() -> None:
    with pytest.raises(ValueError, match="time_unit_days"):
        repeat_purchase_summary(purchases(), AS_OF, time_unit_days=0)
    with pytest.raises(TypeError, match="calendar day"):
        repeat_purchase_summary(purchases(), datetime(2024, 6, 30))


def test_summary_means_are_the_exact_ones_in_any_order() -> None:
    # float sums of these differ by order: (0.1 + 0.2) + 0.3 != (0.3 + 0.2) + 0.1
    rows = [
        order("a", "2024-01-01", 1.0, margin=1.0),
        order("a", "2024-02-01 08:00", 0.1, margin=0.1),
        order("a", "2024-02-01 09:00", 0.2, margin=0.2),
        order("a", "2024-03-01", 0.3, margin=0.3),
        order("a", "2024-06-01", 0.7, margin=0.1),
        order("a", "2024-06-01", 1e-3, margin=0.2),
    ]
    repeats = [0.1, 0.2, 0.3, 0.7, 1e-3]
    margins = [0.1, 0.2, 0.3, 0.1, 0.2]
    expected = {"monetary_value": math.fsum(repeats) / 3, "margin_value": math.fsum(margins) / 3}
    for ordered in (rows, rows[::-1], rows[2:] + rows[:2]):
        summary = repeat_purchase_summary(events(*ordered), AS_OF)
        assert summary.select(*expected).row(0, named=True) == expected


def test_summary_of_amounts_beyond_the_integers_adds_floats() -> None:
    huge = events(
        order("a", "2024-01-01", 1.0),
        order("a", "2024-02-01", 1e300, margin=-1e300),
        order("a", "2024-03-01", 1e300, margin=0.5),
        order("b", "2024-01-01", 1.0),
        order("b", "2024-02-01", 0.1),
        order("b", "2024-03-01", 0.2),
    )
    summary = repeat_purchase_summary(huge, AS_OF)
    assert summary["monetary_value"].to_list() == [1e300, (0.1 + 0.2) / 2]
    assert summary["margin_value"].to_list() == [(-1e300 + 0.5) / 2, None]
    # without a customer beyond them, b's mean is the exact one
    alone = repeat_purchase_summary(huge.filter(pl.col("customer_id") == "b"), AS_OF)
    assert alone["monetary_value"].to_list() == [math.fsum([0.1, 0.2]) / 2]


def test_summary_falls_back_to_floats_exactly_at_a_customers_limit() -> None:
    # b's repeat purchase of 1e-30 tells the sums apart: the integers count whole 2**-64ths and
    # cut it to 0.0, floats keep it. The limit is 2**62 of one customer's |amount| (or |margin|)
    # summed over the orders; 2**62 - 512 is the float just below it.
    tiny = [order("b", "2024-01-01", 1.0), order("b", "2024-02-01", 1e-30)]

    def summary(*rows: tuple[object, ...]) -> dict[str, list[object]]:
        return repeat_purchase_summary(events(*rows, *tiny), AS_OF).to_dict(as_series=False)

    below = summary(order("a", "2024-01-01", 2.0**61), order("a", "2024-02-01", 2.0**61 - 512))
    assert below["monetary_value"] == [2.0**61 - 512, 0.0]  # exact: 1e-30 cut
    above = summary(order("a", "2024-01-01", 2.0**61), order("a", "2024-02-01", 2.0**61))
    assert above["monetary_value"] == [2.0**61, 1e-30]  # floats
    # margins count as amounts do, their signs aside
    margins = summary(
        order("a", "2024-01-01", 1.0, margin=-(2.0**61)),
        order("a", "2024-02-01", 1.0, margin=-(2.0**61)),
    )
    assert margins["monetary_value"] == [1.0, 1e-30]
    assert margins["margin_value"] == [-(2.0**61), None]
    # one customer's sum, not everyone's: a and c hold 2**63 - 1024 between them, each below
    pair = [order("a", "2024-01-01", 2.0**61), order("a", "2024-02-01", 2.0**61 - 512)]
    both = summary(*pair, *((f"c{r[0][1:]}", *r[1:]) for r in pair))
    assert both["customer_id"] == ["a", "b", "c"]
    assert both["monetary_value"] == [2.0**61 - 512, 0.0, 2.0**61 - 512]


def test_cdnow_summary_matches_the_published_calibration_data() -> None:
    summary = repeat_purchase_summary(cdnow_events(), CALIBRATION_END, time_unit_days=7)
    assert summary.height == 2357
    assert (summary["frequency"] > 0).sum() == 946  # the Gamma-Gamma paper's repeat buyers
    first = row(summary, "0001")  # FHL 2005: x = 2, t_x = 30.43, T = 38.86
    assert first["frequency"] == 2
    assert first["recency"] == pytest.approx(30.43, abs=0.005)
    assert first["T"] == pytest.approx(38.86, abs=0.005)


def test_purchase_counts_count_order_days_in_the_window() -> None:
    counts = purchase_counts(purchases(), date(2024, 2, 29), AS_OF)
    assert counts.to_dicts() == [
        {"customer_id": "a", "purchases": 2},  # 2024-03-01 and 2024-06-30
        {"customer_id": "b", "purchases": 1},
    ]
    same_day = purchase_counts(purchases(), date(2023, 12, 31), date(2024, 1, 1))
    assert same_day.to_dicts() == [{"customer_id": "a", "purchases": 1}]
    assert purchase_counts(purchases(), AS_OF, AS_OF).height == 0  # empty window
    with pytest.raises(ValueError, match="before it starts"):
        purchase_counts(purchases(), AS_OF, date(2024, 1, 1))


def test_order_events_keep_the_orders_through_a_day_and_what_the_summaries_read() -> None:
    orders = order_events(purchases(), AS_OF)
    assert orders.columns == ["customer_id", "ts", "event_type", "amount", "margin"]
    assert orders["customer_id"].to_list() == ["a", "a", "a", "a", "b"]  # no visit, nothing later
    assert orders["amount"].to_list() == [10.0, 5.0, 20.0, 30.0, 50.0]
    assert_frame_equal(
        repeat_purchase_summary(orders, AS_OF), repeat_purchase_summary(purchases(), AS_OF)
    )
    later = order_events(purchases(), date(2024, 7, 5))["amount"].to_list()
    assert later == [10.0, 5.0, 20.0, 30.0, 100.0, 50.0, 70.0]


def subscriptions() -> pl.DataFrame:
    return events(
        ("s1", "2024-01-01", "subscribe"),
        ("s1", "2024-01-15", "cancel"),  # 14 days: lost at renewal 1
        ("s2", "2024-01-01", "subscribe"),
        ("s2", "2024-03-01", "cancel"),  # 60 days: in period 3, lost at renewal 3
        ("s3", "2024-02-01", "subscribe"),  # 150 days and running: 5 renewals survived
        ("s4", "2024-02-01", "cancel"),  # subscribed before the data: left out
        ("s5", "2024-06-01", "subscribe"),
        ("s5", "2024-07-10", "cancel"),  # after AS_OF: still running, 0 renewals yet
        ("s6", "2024-01-10", "cancel"),  # before the subscription: ignored
        ("s6", "2024-02-01", "subscribe"),
        ("s6", "2024-04-01", "cancel"),  # 60 days: lost at renewal 3
        ("s6", "2024-05-01", "subscribe"),  # a second spell: only the first counts
    )


def test_subscription_spells_by_hand() -> None:
    spells = subscription_spells(subscriptions(), AS_OF, period_days=30)
    jan, feb, jun = date(2024, 1, 1), date(2024, 2, 1), date(2024, 6, 1)
    assert spells.to_dicts() == [
        {"customer_id": "s1", "subscribed_on": jan, "cohort": jan, "cancelled": True, "periods": 1},
        {"customer_id": "s2", "subscribed_on": jan, "cohort": jan, "cancelled": True, "periods": 3},
        {
            "customer_id": "s3",
            "subscribed_on": feb,
            "cohort": feb,
            "cancelled": False,
            "periods": 5,
        },
        {
            "customer_id": "s5",
            "subscribed_on": jun,
            "cohort": jun,
            "cancelled": False,
            "periods": 0,
        },
        {"customer_id": "s6", "subscribed_on": feb, "cohort": feb, "cancelled": True, "periods": 3},
    ]
    yearly = subscription_spells(subscriptions(), AS_OF, period_days=365, cohort_every="1y")
    assert set(yearly["cohort"].to_list()) == {date(2024, 1, 1)}
    assert yearly["periods"].to_list() == [1, 1, 0, 0, 1]
    with pytest.raises(ValueError, match="period_days"):
        subscription_spells(subscriptions(), AS_OF, period_days=0)


@settings(max_examples=50, deadline=None)
@given(
    seen=st.lists(event_row, max_size=30),
    unseen=st.lists(event_row, max_size=10),
    shift=st.integers(401, 800),
    data=st.data(),
)
def test_events_after_as_of_and_row_order_change_nothing(
    seen: list[dict[str, object]],
    unseen: list[dict[str, object]],
    shift: int,
    data: st.DataObject,
) -> None:
    future = later(unseen, shift)  # strictly after AS_OF
    shuffled = data.draw(st.permutations(seen + future))
    unit = data.draw(st.sampled_from([1.0, 7.0]))
    base = repeat_purchase_summary(frame(seen), AS_OF, time_unit_days=unit)
    shuffled_summary = repeat_purchase_summary(frame(shuffled), AS_OF, time_unit_days=unit)
    assert_frame_equal(shuffled_summary, base, check_exact=True)  # the means to the last bit
    spells = subscription_spells(frame(seen), AS_OF)
    assert_frame_equal(subscription_spells(frame(shuffled), AS_OF), spells)
    window_start = AS_OF - timedelta(days=90)
    counts = purchase_counts(frame(seen), window_start, AS_OF)
    assert_frame_equal(purchase_counts(frame(shuffled), window_start, AS_OF), counts)
    # the orders through a day summarise and count as the events do, for any day up to it
    orders = order_events(frame(shuffled), AS_OF + timedelta(days=shift))
    assert_frame_equal(
        repeat_purchase_summary(orders, AS_OF, time_unit_days=unit), base, check_exact=True
    )
    assert_frame_equal(purchase_counts(orders, window_start, AS_OF), counts)
    # the invariants the BG/NBD model checks hold for every customer
    assert (base["frequency"] >= 0).all()
    assert (base["recency"] >= 0).all() and (base["recency"] <= base["T"]).all()
    assert ((base["frequency"] > 0) | (base["recency"] == 0)).all()
    assert ((base["frequency"] == 0) == base["monetary_value"].is_null()).all()
    assert (spells["periods"] >= 0).all()
    assert ((spells["periods"] > 0) | ~spells["cancelled"]).all()
