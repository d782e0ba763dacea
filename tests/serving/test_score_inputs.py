"""``POST /v1/score``: features the population cannot be decided without, impossible values.

qa47's M2 (a customer with orders but no ``recency_days`` answered "no order yet, a prospect"),
L5 (``recency_days: -5``, ``r_score: 9`` and an ``as_of`` in the future scored).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from serving.schemas import feature_range
from tests.serving.conftest import headers


def _score(client: TestClient, features: dict[str, float | None], task: str = "churn"):  # type: ignore[no-untyped-def]
    return client.post(
        "/v1/score", headers=headers(), json={"features": features, "tasks": [task], "explain": 3}
    )


def _fields(r) -> dict[str, str]:  # type: ignore[no-untyped-def]
    assert r.status_code == 422, r.text
    return {e["field"]: e["reason"] for e in r.json()["detail"]}


@pytest.mark.parametrize("task", ["churn", "referral"])
def test_order_counts_without_recency_are_a_422_naming_it(client: TestClient, task: str) -> None:
    """M2: ``{"orders_total": 3, "orders_365d": 2}`` was a prospect, "no order yet"."""
    fields = _fields(_score(client, {"orders_total": 3.0, "orders_365d": 2.0}, task))
    assert list(fields) == ["body.features.recency_days"]
    reason = fields["body.features.recency_days"]
    assert "needed" in reason and "prospect" in reason and "lapsed" in reason, reason
    assert "null" in reason  # how to send a customer who never ordered


def test_a_task_scoring_everyone_needs_no_recency(client: TestClient) -> None:
    r = _score(client, {"orders_total": 3.0}, "repurchase")
    assert r.status_code == 200, r.text
    assert "recency_days" in r.json()["scores"]["repurchase"]["missing_inputs"]


def test_null_recency_with_orders_is_a_contradiction(client: TestClient) -> None:
    """M2: ``{"recency_days": null, "orders_total": 5}`` gave the reason "no order yet"."""
    for task in ("churn", "repurchase"):
        for count in ("orders_total", "orders_365d", "cat_garden_orders"):
            fields = _fields(_score(client, {"recency_days": None, count: 5.0}, task))
            assert list(fields) == ["body.features.recency_days"], (task, count)
            assert count in fields["body.features.recency_days"]
    fields = _fields(_score(client, {"recency_days": 4.0, "orders_total": 0.0}, "repurchase"))
    assert list(fields) == ["body.features.recency_days"]
    assert "orders_total" in fields["body.features.recency_days"]


@pytest.mark.parametrize(
    "features",
    [{"recency_days": None}, {"recency_days": None, "orders_total": 0.0}, {"orders_total": 0.0}],
)
def test_a_prospect_sent_as_such_stays_one(
    client: TestClient, features: dict[str, float | None]
) -> None:
    r = _score(client, features)
    assert r.status_code == 200, r.text
    churn = r.json()["scores"]["churn"]
    assert churn["status"] == "prospect" and churn["probability"] is None


def test_recency_and_orders_sent_are_scored(client: TestClient) -> None:
    r = _score(client, {"recency_days": 12.0, "orders_total": 3.0})
    assert r.status_code == 200, r.text
    assert r.json()["scores"]["churn"]["probability"] is not None


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("recency_days", -5.0, "at least 0"),
        ("orders_total", -1.0, "at least 0"),
        ("spend_total", -0.01, "at least 0"),
        ("r_score", 9.0, "from 1 to 5"),
        ("r_score", 0.0, "from 1 to 5"),
        ("email_open_rate_365d", 1.5, "from 0 to 1"),
        ("cat_garden_share", -0.1, "from 0 to 1"),
        ("orders_trend_90d", 2.0, "from -1 to 1"),
        ("survey_mean_score", 11.0, "from 0 to 10"),
        ("is_subscribed", 2.0, "from 0 to 1"),
    ],
)
def test_an_impossible_value_is_a_422_naming_the_field_and_range(
    client: TestClient, name: str, value: float, said: str
) -> None:
    """L5: ``recency_days: -5`` read "-5 days since the last order", ``r_score: 9`` "recency
    score 9 of 5"."""
    features = {"recency_days": 3.0, "orders_total": 2.0, name: value}
    fields = _fields(_score(client, features, "repurchase"))
    assert list(fields) == [f"body.features.{name}"]
    assert said in fields[f"body.features.{name}"]
    assert repr(value) not in fields[f"body.features.{name}"]  # never the value


def test_only_known_bounds_are_checked(client: TestClient) -> None:
    """A margin may be negative (the events contract), an overdue ratio or a return rate may
    pass 1; a free-form customers column has no bound."""
    assert feature_range("margin_total") == (None, None)
    assert feature_range("overdue_ratio") == (0.0, None)
    assert feature_range("return_rate") == (0.0, None)
    assert feature_range("loyalty_points") is None
    assert feature_range("r_score") == (1.0, 5.0)
    features = {"recency_days": 3.0, "orders_total": 2.0, "margin_total": -50.0}
    assert _score(client, features | {"overdue_ratio": 3.0}, "repurchase").status_code == 200


def test_an_as_of_in_the_future_is_refused_as_the_cli_does(client: TestClient) -> None:
    """L5: events with ``as_of`` 2030-01-01 were scored "lapsed"; ``guanxi score`` refuses it."""
    event = {"ts": "2024-06-01T10:00:00Z", "event_type": "order", "amount": 20.0}
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    for as_of in ("2030-01-01", tomorrow):
        r = client.post("/v1/score", headers=headers(), json={"events": [event], "as_of": as_of})
        fields = _fields(r)
        assert list(fields) == ["body.as_of"]
        assert "in the future" in fields["body.as_of"] and as_of not in fields["body.as_of"]
    today = datetime.now(UTC).date().isoformat()
    r = client.post("/v1/score", headers=headers(), json={"events": [event], "as_of": today})
    assert r.status_code == 200, r.text
