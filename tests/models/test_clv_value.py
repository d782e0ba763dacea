"""CLV formulas, value tiers, customer equity, equity at risk and holdout checks, by hand."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from models.clv import (
    BGNBD,
    EQUITY_GROUPS,
    customer_equity,
    discount_factor,
    equity_tables,
    forecast_accuracy,
    holdout_check,
    period_discount_rate,
    probabilistic_clv,
    retention_per_period,
    textbook_clv,
    top_equity_at_risk,
    value_tier,
)
from tests.cdnow import CALIBRATION_END, HOLDOUT_END, cdnow_events

# --- textbook CLV ----------------------------------------------------------------------------


def test_textbook_clv_three_periods_by_hand() -> None:
    # m = 100, r = 0.8, d = 0.1: 100 (0.8 / 1.1 + 0.64 / 1.21 + 0.512 / 1.331)
    #                          = 72.7273 + 52.8926 + 38.4673 = 164.0872
    assert textbook_clv(100.0, 0.8, 0.1, 3)[0] == pytest.approx(164.0872, abs=1e-4)
    # margins growing 10% a period: m_t / 1.1^t = 100 / 1.1 each period,
    # 90.9091 (0.8 + 0.64 + 0.512) = 177.4545
    growing = textbook_clv([[100.0, 110.0, 121.0]], 0.8, 0.1, 3)
    assert growing[0] == pytest.approx(177.4545, abs=1e-4)
    # one value per customer
    np.testing.assert_allclose(
        textbook_clv([100.0, 10.0], [0.8, 1.0], 0.0, 2), [100 * (0.8 + 0.64), 10 * 2]
    )
    with pytest.raises(ValueError, match="periods"):
        textbook_clv(100.0, 0.8, 0.1, 0)
    with pytest.raises(ValueError, match="retention must be between 0 and 1"):
        textbook_clv(100.0, 1.2, 0.1, 3)
    with pytest.raises(ValueError, match="expected 3"):
        textbook_clv([[1.0, 2.0]], 0.8, 0.1, 3)


def test_discounting_and_retention_conversions() -> None:
    assert discount_factor(365.25, 0.1)[0] == pytest.approx(1 / 1.1)
    assert discount_factor(0, 0.1)[0] == 1.0
    # twelve monthly periods compound to the annual rate
    monthly = period_discount_rate(0.1, 365.25 / 12)
    assert (1 + monthly) ** 12 == pytest.approx(1.1)
    # a 36% chance of churning within a year is a 20% chance per half year at a constant hazard
    assert retention_per_period(0.36, 365, 182.5)[0] == pytest.approx(0.8)
    with pytest.raises(ValueError, match="annual discount rate"):
        discount_factor(10, -1.5)
    with pytest.raises(ValueError, match="churn_probability"):
        retention_per_period(1.5, 365, 30)


def test_probabilistic_clv_discounts_each_steps_purchases() -> None:
    model = BGNBD.from_params(r=0.5, alpha=20.0, a=0.8, b=2.5)
    x, tx, t = np.array([0.0, 4.0]), np.array([0.0, 80.0]), np.array([100.0, 100.0])
    e30 = model.conditional_expected_purchases(30, x, tx, t)
    e60 = model.conditional_expected_purchases(60, x, tx, t)
    margin = np.array([10.0, 25.0])
    undiscounted = probabilistic_clv(
        model, x, tx, t, margin, horizon_days=60, annual_discount_rate=0.0
    )
    np.testing.assert_allclose(undiscounted, margin * e60)
    discounted = probabilistic_clv(
        model, x, tx, t, margin, horizon_days=60, annual_discount_rate=0.1
    )
    by_hand = margin * (e30 * 1.1 ** (-30 / 365.25) + (e60 - e30) * 1.1 ** (-60 / 365.25))
    np.testing.assert_allclose(discounted, by_hand)
    # a horizon that is not a whole number of steps ends with a short step; weeks work the same
    short = probabilistic_clv(model, x, tx, t, 1.0, horizon_days=45, annual_discount_rate=0.0)
    np.testing.assert_allclose(short, model.conditional_expected_purchases(45, x, tx, t))
    weekly = BGNBD.from_params(r=0.5, alpha=20.0 / 7, a=0.8, b=2.5)
    in_weeks = probabilistic_clv(
        weekly,
        x,
        tx / 7,
        t / 7,
        margin,
        horizon_days=60,
        annual_discount_rate=0.1,
        time_unit_days=7,
    )
    np.testing.assert_allclose(in_weeks, discounted)


# --- tiers and equity --------------------------------------------------------------------------


def test_value_tiers_by_rank_with_ties_and_nulls() -> None:
    hundred = pl.DataFrame({"clv": [*map(float, range(100, 0, -1)), None]})
    tiers = hundred.select(value_tier(pl.col("clv")))["value_tier"].to_list()
    assert tiers[:1] == ["top_1pct"]
    assert tiers[1:5] == ["top_5pct"] * 4
    assert tiers[5:20] == ["top_20pct"] * 15
    assert tiers[20:100] == ["rest"] * 80
    assert tiers[100] is None  # no CLV, no tier, not counted
    tied = pl.DataFrame({"clv": [10.0, 10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0]})
    assert tied.select(value_tier(pl.col("clv")))["value_tier"].to_list()[:3] == [
        "top_1pct",
        "top_1pct",  # tied with the best: the better tier
        "rest",  # 2 of 10 customers are above it: not under 20%
    ]


def values() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e"],
            "clv": [100.0, 50.0, 20.0, 10.0, 0.0],
            "churn_probability": [0.1, 0.5, 0.9, None, 0.3],
            "rfm_segment": ["champions", "champions", "lost", "lost", "new"],
        }
    )


def test_customer_equity_overall_and_by_segment_by_hand() -> None:
    overall = customer_equity(values())
    assert overall.to_dicts() == [
        {
            "customers": 5,
            "scored": 4,
            "equity": 180.0,
            "equity_share": 1.0,
            "equity_at_risk": pytest.approx(10 + 25 + 18 + 0),  # d has no churn probability
            "risk_share": pytest.approx(53 / 180),
            "mean_churn_probability": pytest.approx(1.8 / 4),
        }
    ]
    by_segment = customer_equity(values(), "rfm_segment")
    expected = pl.DataFrame(
        {
            "rfm_segment": ["champions", "lost", "new"],
            "customers": [2, 2, 1],
            "scored": [2, 1, 1],
            "equity": [150.0, 30.0, 0.0],
            "equity_share": [150 / 180, 30 / 180, 0.0],
            "equity_at_risk": [35.0, 18.0, 0.0],
            "risk_share": [35 / 150, 18 / 30, None],
            "mean_churn_probability": [0.3, 0.9, 0.3],
        },
        schema_overrides={"customers": pl.UInt32, "scored": pl.UInt32},
    )
    assert_frame_equal(by_segment, expected, check_dtypes=False)
    # the groups add up to the whole
    assert by_segment["equity"].sum() == overall["equity"][0]
    assert by_segment["equity_at_risk"].sum() == pytest.approx(overall["equity_at_risk"][0])


def test_equity_tables_add_revenue_and_mean_clv_and_sum_to_the_whole() -> None:
    table = values().with_columns(
        pl.Series("revenue_365d", [300.0, 200.0, 40.0, 10.0, 5.0]),
        pl.Series("value_tier", ["top_1pct", "top_20pct", "rest", "rest", None]),
        pl.Series("rfm_segment", ["champions", "champions", "lost", None, "new"]),
    )
    tables = equity_tables(table)
    overall = tables["overall"].row(0, named=True)
    assert overall["revenue"] == 555.0 and overall["mean_clv"] == 36.0
    segments = {r["rfm_segment"]: r for r in tables["rfm_segment"].iter_rows(named=True)}
    assert segments["champions"]["revenue"] == 500.0 and segments["champions"]["mean_clv"] == 75.0
    assert segments[None]["customers"] == 1 and segments[None]["equity"] == 10.0  # no segment
    tiers = {r["value_tier"]: r for r in tables["value_tier"].iter_rows(named=True)}
    assert tiers["rest"]["revenue"] == 50.0 and tiers["rest"]["mean_clv"] == 15.0
    for by in EQUITY_GROUPS:
        for column in ("customers", "equity", "equity_at_risk", "revenue"):
            assert tables[by][column].sum() == pytest.approx(overall[column])


def test_top_equity_at_risk_are_the_fewest_carrying_the_share() -> None:
    top = top_equity_at_risk(values(), share=0.5)
    # at risk: b 25, c 18, a 10, e 0 (d unknown); b alone is 25/53 < 0.5, b and c reach 43/53
    assert top["customer_id"].to_list() == ["b", "c"]
    np.testing.assert_allclose(top["cumulative_share"], [25 / 53, 43 / 53])
    assert top_equity_at_risk(values(), share=1.0)["customer_id"].to_list() == ["b", "c", "a"]
    safe = values().with_columns(pl.lit(0.0).alias("churn_probability"))
    assert top_equity_at_risk(safe).height == 0


# --- holdout checks ----------------------------------------------------------------------------


def test_forecast_accuracy_by_hand() -> None:
    accuracy = forecast_accuracy([1.0, 2.0, 3.0], [1.0, 1.0, 5.0])
    assert accuracy.customers == 3
    assert accuracy.mae == pytest.approx(1.0)  # (0 + 1 + 2) / 3
    assert accuracy.correlation == pytest.approx(np.sqrt(3) / 2)
    assert accuracy.forecast_total == 6.0 and accuracy.actual_total == 7.0
    assert accuracy.aggregate_error == pytest.approx(-1 / 7)
    assert accuracy.as_dict()["mae"] == pytest.approx(1.0)
    assert np.isnan(forecast_accuracy([1.0, 1.0], [0.0, 2.0]).correlation)
    with pytest.raises(ValueError, match="actual has 2 values, expected 3"):
        forecast_accuracy([1.0, 2.0, 3.0], [1.0, 2.0])


def test_cdnow_holdout_bgnbd_beats_same_as_last_period() -> None:
    check = holdout_check(cdnow_events(), CALIBRATION_END, HOLDOUT_END, time_unit_days=7)
    assert check.model.params_["r"] == pytest.approx(0.243, rel=0.01)  # the paper's fit
    bgnbd, naive = check.accuracy["bgnbd"], check.accuracy["naive"]
    assert bgnbd.customers == naive.customers == 2357
    assert bgnbd.actual_total == naive.actual_total > 1500
    assert bgnbd.mae < naive.mae
    assert bgnbd.correlation > naive.correlation
    assert abs(bgnbd.aggregate_error) < abs(naive.aggregate_error)
    assert abs(bgnbd.aggregate_error) < 0.15  # measured -0.121 (1,653 forecast, 1,882 actual)
    shown = check.as_dict()
    assert shown["days"] == 273 and shown["forecasts"]["bgnbd"]["mae"] == bgnbd.mae
