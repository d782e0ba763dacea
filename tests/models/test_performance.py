"""Live performance by hand: calibration bins, ECE, top-decile precision, forecast error."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.customer_rows import RepeatedCustomersError
from models.metrics import calibration_error, reliability_bins
from models.performance import (
    match_outcomes,
    precision_top_decile,
    purchases_forecast_error,
)


def test_calibration_bins_and_ece_by_hand() -> None:
    y = np.array([0, 1, 1, 0])
    p = np.array([0.11, 0.15, 0.85, 0.95])
    bins = reliability_bins(y, p)
    # bin (0.1, 0.2]: two rows, mean 0.13, one positive; 0.85 and 0.95 alone in their bins
    assert [n for *_, n in bins] == [2, 1, 1]
    flat = [v for pred, obs, _ in bins for v in (pred, obs)]
    assert flat == pytest.approx([0.13, 0.5, 0.85, 1.0, 0.95, 0.0])
    # (2 * 0.37 + 1 * 0.15 + 1 * 0.95) / 4
    assert calibration_error(y, p)["ece"] == pytest.approx(0.46)


def test_a_probability_on_an_inner_edge_falls_in_the_lower_bin() -> None:
    assert reliability_bins(np.array([1, 0]), np.array([0.1, 0.1000001]))[0] == (0.1, 1.0, 1)


def test_a_probability_of_one_falls_in_the_last_bin() -> None:
    assert reliability_bins(np.array([1]), np.array([1.0])) == [(1.0, 1.0, 1)]


@given(st.lists(st.floats(0, 1), min_size=1, max_size=50))
def test_perfect_outcomes_of_zero_one_scores_have_no_calibration_error(values: list[float]) -> None:
    p = np.round(np.array(values))
    assert calibration_error(p.astype(int), p)["ece"] == pytest.approx(0.0)


def test_precision_top_decile_by_hand() -> None:
    score = np.arange(20, dtype=float)  # the top decile is the two highest scores
    y = np.zeros(20, dtype=int)
    y[19] = 1
    assert precision_top_decile(y, score) == pytest.approx(0.5)


def test_match_outcomes_keeps_scored_rows_with_an_outcome() -> None:
    scores = pl.DataFrame({"customer_id": ["a", "b", "c"], "score": [0.1, 0.2, 0.3]})
    labels = pl.DataFrame({"customer_id": ["c", "a"], "label": [1, 0]})
    matched = match_outcomes(scores, labels)
    assert matched.rows() == [("a", 0.1, 0), ("c", 0.3, 1)]


def test_purchases_forecast_error_by_hand() -> None:
    c = date(2024, 6, 30)
    values = pl.DataFrame(
        {"customer_id": ["A", "B", "C", "D"], "expected_purchases": [1.0, 0.5, 2.0, 0.0]}
    )
    events = pl.DataFrame(
        {
            "customer_id": ["A", "C", "C", "C", "B", "A"],
            "ts": [
                datetime(2024, 7, 15),
                datetime(2024, 7, 10),
                datetime(2024, 8, 20),
                datetime(2024, 8, 20, 18),  # same day: one purchase day
                datetime(2024, 7, 1),
                datetime(2024, 10, 1),  # after the horizon
            ],
            "event_type": ["order", "order", "order", "order", "visit", "order"],
            "amount": [10.0, 5.0, 5.0, 5.0, None, 10.0],
        }
    ).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    accuracy = purchases_forecast_error(values, events, c, 90)
    assert accuracy["actual_total"] == 3.0 and accuracy["forecast_total"] == 3.5
    assert accuracy["mae"] == pytest.approx(0.125)
    assert accuracy["aggregate_error"] == pytest.approx(3.5 / 3 - 1)
    # dups28: a table listing C twice counted their forecast and purchases twice (5 customers,
    # forecast 5.5, actual 5); it is refused by name
    with pytest.raises(
        RepeatedCustomersError,
        match=r"^the value table as of 2024-06-30 lists customer 'C' on more than one row: which "
        r"row's expected purchases are theirs is not known, and the forecast error would count "
        r"their purchases once a row; write it again \(guanxi value ",
    ):
        purchases_forecast_error(pl.concat([values, values.slice(2, 1)]), events, c, 90)
