"""The customer value table: columns worked by hand, loss-making customers, churn populations."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from features.contracts import event_schema
from features.value import repeat_purchase_summary
from models.artifact import ModelBundle
from models.clv import (
    BGNBD,
    GammaGamma,
    ModelIdentificationError,
    sample_bgnbd,
    sample_gamma_gamma,
)
from models.clv.customers import (
    DETAIL_COLUMNS,
    VALUE_COLUMNS,
    ValueFit,
    choose_basis,
    churn_probabilities,
    fit_value_models,
    textbook_periods,
    value_table,
)
from models.clv.value import period_discount_rate, probabilistic_clv, textbook_clv

AS_OF = date(2024, 12, 31)


def summary() -> pl.DataFrame:
    """Four customers: a one-time buyer, two repeat buyers, one with a negative mean margin."""
    return pl.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "frequency": [0, 2, 5, 1],
            "recency": [0.0, 100.0, 300.0, 50.0],
            "T": [40.0, 200.0, 330.0, 90.0],
            "monetary_value": [None, 50.0, 80.0, 20.0],
            "margin_value": [None, 10.0, 30.0, -40.0],
        },
        schema_overrides={"frequency": pl.Int64},
    )


def snapshot() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e"],  # e: no order, so not in the table
            "rfm_segment": ["new", "loyal", "champions", "at_risk", None],
            "spend_365d": [30.0, 150.0, 480.0, 40.0, 0.0],
            "margin_365d": [6.0, 365.0, 180.0, -8.0, 0.0],
        }
    )


def fit(margin: bool = True) -> ValueFit:
    return ValueFit(
        bgnbd=BGNBD.from_params(r=0.8, alpha=60.0, a=0.7, b=3.0),
        order_value=GammaGamma.from_params(p=4.0, q=3.0, gamma=20.0),  # mean 4 * 20 / 2 = 40
        margin=GammaGamma.from_params(p=2.0, q=5.0, gamma=24.0) if margin else None,  # mean 12
        basis="margin" if margin else "revenue",
        margin_rate=0.25,
        excluded=1 if margin else 0,
    )


CHURN = pl.DataFrame(
    {
        "customer_id": ["a", "b", "c", "d"],
        "churn_probability": [None, 0.36, 0.1, 0.5],
        "churn_status": ["lapsed", "eligible", "eligible", "eligible"],
    }
)


def test_value_table_columns_by_hand() -> None:
    table = value_table(
        summary(),
        snapshot(),
        fit(),
        horizon_days=365,
        discount_rate=0.1,
        churn=CHURN,
        churn_horizon_days=90,
    )
    assert table.columns == [*VALUE_COLUMNS, *DETAIL_COLUMNS]
    assert table["customer_id"].to_list() == ["a", "b", "c", "d"]
    row = {r["customer_id"]: r for r in table.iter_rows(named=True)}
    model = fit()
    # Gamma-Gamma on margins: (gamma + x m) p / (p x + q - 1); a one-time buyer gets the mean
    assert row["a"]["expected_margin_per_order"] == pytest.approx(2 * 24 / 4)
    assert row["b"]["expected_margin_per_order"] == pytest.approx((24 + 2 * 10) * 2 / (4 + 4))
    # d's mean margin is -40: the same weighted average, w = (q - 1) / (p x + q - 1) = 4 / 6
    assert row["d"]["expected_margin_per_order"] == pytest.approx(4 / 6 * 12 + 2 / 6 * -40)
    # order values: Gamma-Gamma on revenue, population mean 40 for a
    assert row["a"]["expected_order_value"] == pytest.approx(40.0)
    assert row["c"]["expected_order_value"] == pytest.approx((20 + 5 * 80) * 4 / (20 + 2))
    bg = model.bgnbd
    assert row["c"]["p_alive"] == pytest.approx(bg.p_alive(5, 300, 330)[0])
    assert row["c"]["expected_purchases"] == pytest.approx(
        bg.conditional_expected_purchases(365, 5, 300, 330)[0]
    )
    assert row["c"]["expected_days_to_next_order"] == pytest.approx(
        (60 + 330) * (2 ** (1 / 5.8) - 1)
    )
    assert row["b"]["clv"] == pytest.approx(
        probabilistic_clv(bg, 2, 100, 200, 11.0, horizon_days=365, annual_discount_rate=0.1)[0]
    )
    assert row["d"]["clv"] < 0  # a loss-making customer
    # textbook: 12 periods of 365 / 12 days, m = margin_365d / 12, r = (1 - p)^(period / 90)
    periods, days = textbook_periods(365)
    assert (periods, days) == (12, pytest.approx(365 / 12))
    r = (1 - 0.36) ** (days / 90)
    d = 1.1 ** (days / 365.25) - 1
    by_hand = sum(365 / 12 * r**t / (1 + d) ** t for t in range(1, 13))
    assert row["b"]["clv_textbook"] == pytest.approx(by_hand)
    assert row["b"]["clv_textbook"] == pytest.approx(
        textbook_clv(365 / 12, r, period_discount_rate(0.1, days), 12)[0]
    )
    # a lapsed customer has no churn probability: no textbook CLV, nothing at risk
    assert row["a"]["churn_probability"] is None and row["a"]["churn_status"] == "lapsed"
    assert row["a"]["clv_textbook"] is None and row["a"]["equity_at_risk"] is None
    for key in "bcd":
        expected = row[key]["churn_probability"] * row[key]["clv"]
        assert row[key]["equity_at_risk"] == pytest.approx(expected)
    # tiers over four customers: the best one is the top 1%, 5% and 20% alike
    best = table.sort("clv", descending=True)["customer_id"][0]
    assert row[best]["value_tier"] == "top_1pct"
    assert sorted(r["value_tier"] for r in row.values()).count("rest") == 3
    assert row["c"]["rfm_segment"] == "champions" and row["b"]["revenue_365d"] == 150.0


def test_revenue_basis_and_no_churn_model() -> None:
    table = value_table(summary(), snapshot(), fit(margin=False), horizon_days=90, discount_rate=0)
    row = {r["customer_id"]: r for r in table.iter_rows(named=True)}
    # margin per order = expected order value x the margin rate
    assert row["b"]["expected_margin_per_order"] == pytest.approx(
        row["b"]["expected_order_value"] * 0.25
    )
    for column in ("churn_probability", "churn_status", "clv_textbook", "equity_at_risk"):
        assert table[column].null_count() == table.height
    with pytest.raises(ValueError, match="horizon"):
        value_table(summary(), snapshot(), fit(), horizon_days=90, discount_rate=0, churn=CHURN)


def test_shrinkage_of_a_non_positive_mean_is_the_models_own_average() -> None:
    model = GammaGamma.from_params(p=2.0, q=5.0, gamma=24.0)
    positive = model.conditional_expected_value([3], [7.0])[0]
    assert positive == pytest.approx((24 + 21) * 2 / (6 + 4))
    shrunk = model.conditional_expected_value([3, 3], [7.0, -7.0], shrink_nonpositive=True)
    assert shrunk[0] == pytest.approx(positive)
    assert shrunk[1] == pytest.approx(4 / 10 * 12 + 6 / 10 * -7)  # w = (q - 1) / (p x + q - 1)
    with pytest.raises(ValueError, match="> 0 for repeat buyers"):
        model.conditional_expected_value([3], [-7.0])


def _orders(rows: list[tuple[str, int, float, float | None]]) -> pl.DataFrame:
    start = datetime(2023, 1, 1, tzinfo=UTC)
    return pl.DataFrame(
        [
            {
                "customer_id": cid,
                "ts": start + timedelta(days=day),
                "event_type": "order",
                "amount": amount,
                "margin": margin,
            }
            for cid, day, amount, margin in rows
        ],
        schema={
            k: v
            for k, v in event_schema().items()
            if k in ("customer_id", "ts", "event_type", "amount", "margin")
        },
    )


def test_basis_follows_the_margins_the_events_carry() -> None:
    with_margins = summary()
    assert choose_basis(with_margins) == "margin"
    partial = with_margins.with_columns(
        pl.when(pl.col("customer_id") != "b").then(pl.col("margin_value")).alias("margin_value")
    )
    assert choose_basis(partial) == "revenue"
    events = _orders([("x", 0, 10.0, None), ("x", 9, 12.0, None), ("y", 3, 20.0, None)])
    frame = repeat_purchase_summary(events, AS_OF)
    with pytest.raises(ValueError, match="margin_value: 1 repeat buyer"):
        fit_value_models(frame, basis="margin")
    with pytest.raises(ValueError, match="margin rate"):
        fit_value_models(frame, margin_rate=0)


def test_a_revenue_fit_without_a_mean_is_refused() -> None:
    rng = np.random.default_rng(3)
    drawn = sample_bgnbd(rng.uniform(200, 700, 4000), 0.8, 60.0, 0.7, 3.0, rng)
    # order values whose spread across customers has no mean (q < 1)
    values = sample_gamma_gamma(drawn["frequency"], p=4.0, q=0.7, gamma=30.0, rng=rng)
    frame = pl.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(values.size)],
            "frequency": drawn["frequency"].astype(np.int64),
            "recency": drawn["recency"],
            "T": drawn["T"],
            "monetary_value": values,
            "margin_value": values * 0.2,
        }
    ).with_columns(pl.col("monetary_value", "margin_value").fill_nan(None))
    with pytest.raises(ModelIdentificationError, match="no population mean"):
        fit_value_models(frame, basis="revenue")
    with pytest.raises(ModelIdentificationError, match=r"margins: q = 0\.6\d+ <= 1"):
        fit_value_models(frame, basis="margin")


def test_churn_probabilities_only_inside_the_population(tiny_bundle: ModelBundle) -> None:
    frame = pl.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "recency_days": [10.0, 400.0, None],
            "orders_90d": [2.0, 0.0, 0.0],
            "unresolved_complaints": [0.0, 1.0, 0.0],
        }
    )
    churn = churn_probabilities(tiny_bundle, frame)
    assert churn["churn_status"].to_list() == ["eligible", "lapsed", "prospect"]
    assert churn["churn_probability"].is_null().to_list() == [False, True, True]
    expected = tiny_bundle.predict_proba(frame.to_pandas().set_index("customer_id"))[0]
    assert churn["churn_probability"][0] == pytest.approx(expected)
