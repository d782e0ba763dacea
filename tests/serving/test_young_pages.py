"""The reviewer pages of a young store: value without models, churn-less values, the menu.

Customer value needs no churn model, so ``/ui/value`` and its exports show the store's value table
while no model is loaded (they answered the 503 "Nothing to serve yet" page), saying what is
missing and what to run; a value table without churn probabilities says that equity at risk needs
them instead of showing an equity at risk of 0; with nothing loaded the menu leads to every
task's model page, which says what to run (it listed no model page at all). A customer's page
shows the customer's value and history while no model is loaded (it was the 503), saying there are
no scores yet and what to run, and the value and plan pages link to it (the plan only for the
customers of the served value table).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
import yaml
from fastapi.testclient import TestClient
from mlflow.exceptions import MlflowException

from features.store import Store
from models import registry
from models.offers import parse_offers
from models.planning import keep_plan, plan_from_store
from models.tasks import task_names
from serving.app import create_app
from serving.ui.pages import MISSING_HTML
from tests.pipelines.test_target_cli import DAY, OFFERS, _values
from tests.serving.conftest import (
    NO_MODEL,
    STORE_KEY,
    StaticSource,
    headers,
    make_settings,
    tiny_events,
    wait_failed_once,
    wait_ready,
)
from tests.serving.test_value_api import AS_OF, _audit, store_values, value_frame


def _churnless(home: Path) -> None:
    """A value table as ``guanxi value`` writes it before any churn model is promoted."""
    frame = value_frame().with_columns(
        pl.lit(None, pl.Float64).alias("churn_probability"),
        pl.lit(None, pl.Float64).alias("equity_at_risk"),
        pl.lit(None, pl.String).alias("churn_status"),
    )
    Store(home, STORE_KEY.encode()).write_values(
        frame, AS_OF, horizon_days=365, discount_rate=0.1, basis="revenue", fit={}
    )


@contextlib.contextmanager
def churnless_app(tmp_path: Path, source: StaticSource, loaded: bool) -> Iterator[TestClient]:
    """An app over a value table without churn probabilities (:func:`_churnless`), its models
    loaded, or with none to load and its first load failed."""
    home = tmp_path / "home"
    _churnless(home)
    with _served(home, source, loaded) as client:
        yield client


@contextlib.contextmanager
def _served(home: Path, source: StaticSource, loaded: bool) -> Iterator[TestClient]:
    """An app over ``home``, its models loaded, or with none to load and its first load failed."""
    if not loaded:
        source.failure = NO_MODEL
    with TestClient(create_app(make_settings(home), source)) as client:
        if loaded:
            wait_ready(client)
        else:
            wait_failed_once(client)
        yield client


def test_the_value_page_needs_no_model(unloaded: TestClient) -> None:
    home = unloaded.app.state.settings.home  # type: ignore[attr-defined]
    store_values(home)
    page = unloaded.get("/ui/value", headers=headers("reviewer"))
    assert page.status_code == 200, page.text
    assert 'id="equity"' in page.text and 'id="table-rfm_segment"' in page.text
    # what is missing, and what to run, never the log's paths
    assert 'id="no-models"' in page.text and "guanxi promote" in page.text
    assert "/srv/x" not in page.text
    # the top customers lead to their pages, which show their value without a model
    assert 'href="/ui/customers/c001"' in page.text
    # the menu leads to every model page, which says what to run
    for task in task_names():
        assert f'href="/ui/models/{task}"' in page.text
    export = unloaded.get("/ui/value/segments/champions.csv", headers=headers("reviewer"))
    assert export.status_code == 200 and "c000" in export.text


def test_the_value_page_without_models_or_values_says_both(unloaded: TestClient) -> None:
    page = unloaded.get("/ui/value", headers=headers("reviewer"))
    assert page.status_code == 200, page.text
    assert 'id="no-values"' in page.text and "guanxi value" in page.text
    assert 'id="no-models"' in page.text and "guanxi train" in page.text
    export = unloaded.get("/ui/value/segments/champions.csv", headers=headers("reviewer"))
    assert export.status_code == 404


def test_a_model_page_whose_registry_is_down_logs_that_no_model_is_served_yet(
    unloaded: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An exploratory test's L2: the log said "registry not read for the churn model page
    (request ...), the served model shown" while nothing was served, nor shown."""
    caplog.set_level(logging.INFO, logger="serving.lifecycle")

    def down(task: str) -> list[registry.VersionInfo]:
        raise MlflowException("registry down")

    monkeypatch.setattr(registry, "list_versions", down)
    page = unloaded.get("/ui/models/churn", headers=headers("reviewer"))
    assert "The MLflow registry could not be read" in page.text
    assert "showing the served model only" not in page.text
    request_id = re.search(r"request id ([0-9a-f]{32})", page.text)
    assert request_id is not None
    said = [r.getMessage() for r in caplog.records if "registry not read" in r.getMessage()]
    assert said == [
        f"registry not read for the churn model page (request {request_id[1]}), no model "
        "served yet: MlflowException: registry down"
    ]


def test_the_menu_leads_to_the_model_pages_while_nothing_is_loaded(unloaded: TestClient) -> None:
    page = unloaded.get("/ui/", headers=headers("reviewer"))
    assert page.status_code == 503 and "Nothing to serve yet" in page.text
    for task in task_names():
        assert f'href="/ui/models/{task}"' in page.text


@pytest.mark.parametrize("loaded", [True, False])
def test_values_without_churn_probabilities_say_what_equity_at_risk_needs(
    tmp_path: Path, source: StaticSource, loaded: bool
) -> None:
    with churnless_app(tmp_path, source, loaded) as client:
        page = client.get("/ui/value", headers=headers("reviewer"))
    assert page.status_code == 200, page.text
    assert 'id="no-churn"' in page.text and "guanxi value</code> again" in page.text
    assert "computed without a churn model" in page.text
    # no equity at risk of 0.00: it is unknown, and no chart of it is drawn
    assert f'id="equity-at-risk">{MISSING_HTML}<' in page.text
    assert 'id="equity_at_risk-' not in page.text and 'id="equity-rfm_segment"' in page.text
    assert "Nothing is at risk" not in page.text


def test_the_plan_without_models_links_the_customers_of_the_served_values(
    unloaded: TestClient,
) -> None:
    """While no model is loaded a customer's page answers for a customer of the served value
    table: the plan links those of its top customers (it named none as a link since 003fd16, when
    every customer page was the 503), and names the others as plain text (their page, the 404)."""
    store = unloaded.app.state.settings.store()  # type: ignore[attr-defined]
    store.write_values(_values(), DAY, horizon_days=365, discount_rate=0.1, basis="revenue", fit={})
    keep_plan(store, plan_from_store(store, parse_offers(yaml.safe_load(OFFERS)), 3.0))
    page = unloaded.get("/ui/plan", headers=headers("reviewer"))
    assert page.status_code == 200 and 'id="plan-top"' in page.text and "C1" in page.text
    # the plan's own table lacks the served columns (p_alive, ...): no customer page, no link
    assert "/ui/customers/" not in page.text
    # a served value table (the newest) holds C1: its page answers, the plan links it
    served = value_frame().with_columns(pl.Series("customer_id", ["C1", "C2", "C3", "C9"]))
    fitted = {"horizon_days": 365, "discount_rate": 0.1, "basis": "revenue", "fit": {}}
    store.write_values(served, DAY + timedelta(days=1), **fitted)
    page = unloaded.get("/ui/plan", headers=headers("reviewer"))
    assert page.status_code == 200 and 'href="/ui/customers/C1"' in page.text
    assert unloaded.get("/ui/customers/C1", headers=headers("reviewer")).status_code == 200
    # a newer value table without C1 is served: C1 is named, not linked
    store.write_values(served[1:], DAY + timedelta(days=2), **fitted)
    page = unloaded.get("/ui/plan", headers=headers("reviewer"))
    assert page.status_code == 200 and ">C1<" in page.text
    assert 'href="/ui/customers/C1"' not in page.text
    assert unloaded.get("/ui/customers/C1", headers=headers("reviewer")).status_code == 404


def test_a_customer_page_shows_value_and_history_without_a_model(unloaded: TestClient) -> None:
    """It was the 503 "Nothing to serve yet" page though the value table and the history held
    the customer: now the value and the history, no scores, and what to run for them."""
    home = unloaded.app.state.settings.home  # type: ignore[attr-defined]
    store_values(home)
    Store(home).write_history(tiny_events(), AS_OF)
    page = unloaded.get("/ui/customers/c001", headers=headers("reviewer"))
    assert page.status_code == 200, page.text
    assert 'id="no-models"' in page.text and "There are no scores yet" in page.text
    assert "guanxi train" in page.text and "guanxi promote" in page.text
    assert "/srv/x" not in page.text  # the registry's own message stays in the log
    assert 'id="clv">' in page.text and 'id="value-tier">top 20%' in page.text
    assert 'id="activity"' in page.text and 'id="orders"' in page.text  # the history
    assert 'aria-label="Scores"' not in page.text and "Key facts" not in page.text
    assert 'href="/ui/value"' in page.text  # back to the value page, not the 503 list
    # the value shown is audited, as the loaded page and the value routes do
    assert any(a["task"] == "value" and a["score"] == 80.0 for a in _audit(home))


def test_a_customer_page_without_a_model_says_what_it_lacks(unloaded: TestClient) -> None:
    home = unloaded.app.state.settings.home  # type: ignore[attr-defined]
    page = unloaded.get("/ui/customers/c001", headers=headers("reviewer"))
    # nothing to show without a value table: the pages' 503, saying what to run
    assert page.status_code == 503 and "Nothing to serve yet" in page.text
    assert "guanxi train" in page.text
    store_values(home)
    page = unloaded.get("/ui/customers/c001", headers=headers("reviewer"))
    assert page.status_code == 200, page.text
    assert 'id="clv">' in page.text and "build that day&#39;s snapshot" in page.text
    assert "guanxi features build --events PATH --as-of 2024-06-30" in page.text
    # in neither the value table nor the history: not found, naming the table's day
    page = unloaded.get("/ui/customers/nobody", headers=headers("reviewer"))
    assert page.status_code == 404 and "in the value table as of" in page.text
    # a customer without an order has no value, but a history
    Store(home).write_history(tiny_events(), AS_OF)
    page = unloaded.get("/ui/customers/c050", headers=headers("reviewer"))
    assert page.status_code == 200, page.text
    assert "No value: the customer has no order up to" in page.text and 'id="activity"' in page.text


def test_a_customer_page_counts_one_event_and_one_day_in_the_singular(
    unloaded: TestClient,
) -> None:
    """serve28: a customer with one event read "1 events from ..." (a one-time buyer's page) and
    a next order due in about a day "in 1 days"."""
    home = unloaded.app.state.settings.home  # type: ignore[attr-defined]
    frame = value_frame().with_columns(
        pl.when(pl.col("customer_id") == "c000")
        .then(1.2)
        .otherwise(pl.col("expected_days_to_next_order"))
        .alias("expected_days_to_next_order")
    )
    store_values(home, frame)
    events = tiny_events()
    one = events.filter(pl.col("customer_id") == "c000").head(1)
    Store(home).write_history(
        pl.concat([one, events.filter(pl.col("customer_id") != "c000")]), AS_OF
    )
    text = unloaded.get("/ui/customers/c000", headers=headers("reviewer")).text
    assert "1 event from" in text and "1 events" not in text
    assert "in 1 day (median" in text and "1 days" not in text
    text = unloaded.get("/ui/customers/c001", headers=headers("reviewer")).text
    assert re.search(r"\d+ events from", text) and "in 45 days (median" in text


@pytest.mark.parametrize(("rate", "shown"), [(0.075, "7.5%"), (0.125, "12.5%"), (0.1, "10%")])
def test_the_value_pages_show_the_discount_rate_as_chosen(
    unloaded: TestClient, rate: float, shown: str
) -> None:
    """serve28: the rate read to a whole percent: values discounted at 7.5% a year said "7%",
    at 12.5% "12%" (the API answered 0.075 and 0.125)."""
    home = unloaded.app.state.settings.home  # type: ignore[attr-defined]
    Store(home, STORE_KEY.encode()).write_values(
        value_frame(), AS_OF, horizon_days=365, discount_rate=rate, basis="revenue", fit={}
    )
    for url in ("/ui/value", "/ui/customers/c001"):
        text = unloaded.get(url, headers=headers("reviewer")).text
        assert f"365 days at {shown} a year" in text, url


@pytest.mark.parametrize("loaded", [True, False])
def test_a_customer_page_says_its_history_cannot_be_read(
    tmp_path: Path, source: StaticSource, loaded: bool
) -> None:
    """serve28: a history file the store holds but cannot read (truncated, damaged) made every
    customer page a 500, scores and value included. The page now shows them and says the
    history cannot be read, what to run, and the request id the log names the file with."""
    home = tmp_path / "home"
    store_values(home)
    Store(home).write_history(tiny_events(), AS_OF)
    Store(home).history_path(AS_OF).write_bytes(b"")
    with _served(home, source, loaded) as client:
        page = client.get("/ui/customers/c001", headers=headers("reviewer"))
    assert page.status_code == 200, page.text
    assert 'id="clv">' in page.text and ('aria-label="Scores"' in page.text) is loaded
    assert "history as of 30 Jun 2024 cannot be read" in page.text
    assert "guanxi features build --events PATH --as-of 2024-06-30" in page.text
    assert page.headers["x-request-id"] in page.text
    assert 'id="activity"' not in page.text
