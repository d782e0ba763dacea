"""The value feature family: BG/NBD fitted on the events up to the day only, joined per customer."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from features.contracts import event_schema, feature_info
from features.value import repeat_purchase_summary
from models.clv import BGNBD
from models.clv.family import VALUE_FEATURES, WINDOW_DAYS, add_value_features, value_features
from models.tasks import VALUE_GROUP, get_task, model_feature_names

START = datetime(2023, 1, 1, tzinfo=UTC)
AS_OF = date(2023, 12, 31)


def _orders(days: dict[str, list[int]]) -> pl.DataFrame:
    """Orders of 20 each on the given days after 2023-01-01, per customer."""
    schema = {
        k: v
        for k, v in event_schema().items()
        if k in ("customer_id", "ts", "event_type", "amount", "margin")
    }
    rows = [
        {
            "customer_id": c,
            "ts": START + timedelta(days=d),
            "event_type": "order",
            "amount": 20.0,
            "margin": 5.0,
        }
        for c, ds in days.items()
        for d in ds
    ]
    return pl.DataFrame(rows, schema=schema)


def _simulated(customers: int, seed: int) -> dict[str, list[int]]:
    """Order days of BG/NBD buyers: gamma purchase rates, beta dropout after each purchase."""
    rng = np.random.default_rng(seed)
    days: dict[str, list[int]] = {}
    for i in range(customers):
        rate, drop = rng.gamma(0.8, 1 / 20), rng.beta(0.8, 3.0)
        day = float(rng.uniform(0, 300))
        history = [int(day)]
        while rng.random() > drop:
            day += rng.exponential(1 / rate)
            history.append(int(day))
        days[f"c{i:03d}"] = history
    return days


def test_features_are_bgnbd_fitted_on_the_day_and_registered() -> None:
    events = _orders(_simulated(300, 1))
    frame, params = value_features(events, AS_OF)
    summary = repeat_purchase_summary(events, AS_OF)
    model = BGNBD().fit(summary["frequency"], summary["recency"], summary["T"])
    assert params == pytest.approx(model.params_)
    x, tx, t = summary["frequency"], summary["recency"], summary["T"]
    assert frame["customer_id"].to_list() == summary["customer_id"].to_list()
    np.testing.assert_allclose(frame["p_alive"].to_numpy(), model.p_alive(x, tx, t))
    np.testing.assert_allclose(
        frame[f"expected_purchases_{WINDOW_DAYS}d"].to_numpy(),
        model.conditional_expected_purchases(WINDOW_DAYS, x, tx, t),
    )
    for name in VALUE_FEATURES:
        assert feature_info(name).group == VALUE_GROUP
        assert feature_info(name).fitted


def test_events_after_the_day_change_nothing() -> None:
    history = _simulated(300, 1)
    before, params = value_features(_orders(history), AS_OF)
    assert params is not None
    later = {k: [*v, 400, 420] for k, v in history.items()} | {"z": [370, 390]}
    after, _ = value_features(_orders(later), AS_OF)
    assert after.equals(before)


def test_no_repeat_buyer_gives_nulls_not_an_error() -> None:
    frame, params = value_features(_orders({"a": [1], "b": [3]}), AS_OF)
    assert params is None
    assert frame.height == 2
    assert frame.select(pl.all().exclude("customer_id").null_count()).row(0) == (2, 2)


def test_added_to_a_snapshot_in_its_row_order_with_nulls_for_non_buyers() -> None:
    events = _orders(_simulated(300, 1))
    snapshot = pl.DataFrame({"customer_id": ["c007", "nobody", "c001"], "orders_total": [3, 0, 6]})
    joined, params = add_value_features(snapshot, events, AS_OF)
    assert params is not None
    assert joined.columns == ["customer_id", "orders_total", *VALUE_FEATURES]
    assert joined["customer_id"].to_list() == ["c007", "nobody", "c001"]
    assert joined.row(1)[2:] == (None, None)
    assert joined.row(0)[2] is not None
    again, _ = add_value_features(joined, events, AS_OF)
    assert again.equals(joined)


def test_a_model_reads_the_family_only_where_asked() -> None:
    snapshot = pl.DataFrame(
        {
            "customer_id": ["a"],
            "recency_days": [3],
            "p_alive": [0.5],
            "expected_purchases_90d": [1.0],
        }
    )
    default = model_feature_names("churn", snapshot)
    assert get_task("churn").value_inputs is ("p_alive" in default)
    assert "p_alive" not in model_feature_names("churn", snapshot, value_inputs=False)
    assert {"p_alive", "expected_purchases_90d"} <= set(
        model_feature_names("churn", snapshot, value_inputs=True)
    )
