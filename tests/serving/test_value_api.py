"""The value routes on a hand-made value table: figures by hand, roles, audit lines, CSV export."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

import serving.routes
import serving.ui.value_page
import serving.value_routes
from features.events import MAX_VALUE_CHARS
from features.store import Store
from models.clv.customers import DETAIL_COLUMNS, VALUE_COLUMNS
from serving.app import create_app
from serving.metrics import PAGE_SCORES_HELP, VALUES_HELP
from serving.schemas import CustomerValue
from serving.settings import Settings
from serving.ui.pages import MISSING_HTML
from serving.values import NO_VALUES, NOT_SERVING, SERVED_DETAILS, LoadedValues
from tests.serving.conftest import (
    AS_OF,
    STORE_KEY,
    StaticSource,
    headers,
    make_settings,
    names_said_twice,
    wait_ready,
)

VALIDATION = {
    "cutoff": "2024-03-31",
    "through": "2024-06-30",
    "days": 91,
    "forecasts": {
        "bgnbd": {
            "customers": 4,
            "mae": 0.5,
            "correlation": 0.8,
            "forecast_total": 9.0,
            "actual_total": 10.0,
            "aggregate_error": -0.1,
        },
        "naive": {
            "customers": 4,
            "mae": 1.0,
            "correlation": float("nan"),
            "forecast_total": 12.0,
            "actual_total": 10.0,
            "aggregate_error": 0.2,
        },
    },
}


def value_frame() -> pl.DataFrame:
    """Four customers; c003 is outside the churn population, c002 has no RFM segment."""
    rows = {
        "customer_id": ["c000", "c001", "c002", "c003"],
        "p_alive": [0.9, 0.6, 0.3, 0.95],
        "expected_purchases": [4.0, 2.0, 0.5, 6.0],
        "expected_order_value": [50.0, 40.0, 30.0, 60.0],
        "clv": [200.0, 80.0, 20.0, 300.0],
        "clv_textbook": [180.0, 60.0, 10.0, None],
        "expected_days_to_next_order": [20.0, 45.0, 120.0, 15.0],
        "value_tier": ["top_5pct", "top_20pct", "rest", "top_1pct"],
        "rfm_segment": ["champions", "at_risk", None, "champions"],
        "churn_probability": [0.1, 0.5, 0.8, None],
        "equity_at_risk": [20.0, 40.0, 16.0, None],
        "churn_status": ["eligible", "eligible", "eligible", "lapsed"],
        "expected_margin_per_order": [15.0, 12.0, 9.0, 18.0],  # 30% of the order value
        "frequency": [5, 2, 1, 9],
        "recency": [300.0, 200.0, 20.0, 350.0],
        "T": [360.0, 365.0, 200.0, 360.0],
        "revenue_365d": [500.0, 200.0, 30.0, 900.0],
        "margin_365d": [100.0, 40.0, 6.0, 180.0],
    }
    return pl.DataFrame(rows).with_columns(as_of=pl.lit(AS_OF, pl.Date))


def store_values(home: Path, frame: pl.DataFrame | None = None) -> None:
    """Keep ``frame`` (:func:`value_frame` by default) as the value table of ``AS_OF``, read
    with a churn model."""
    Store(home, STORE_KEY.encode()).write_values(  # signed, as guanxi value with the key does
        value_frame() if frame is None else frame,
        AS_OF,
        horizon_days=365,
        discount_rate=0.1,
        basis="revenue",
        fit={"bgnbd": {"r": 0.5}},
        churn_model={"name": "churn", "version": "1", "horizon_days": 90},
        validation=VALIDATION,
        run_id="run123",
    )


@pytest.fixture
def value_settings(tmp_path: Path) -> Settings:
    settings = make_settings(tmp_path / "home")
    store_values(settings.home)
    return settings


@pytest.fixture
def value_client(value_settings: Settings, source: StaticSource) -> Iterator[TestClient]:
    with TestClient(create_app(value_settings, source)) as c:
        wait_ready(c)
        yield c


def _audit(home: Path) -> list[dict]:
    return [
        json.loads(line)
        for part in sorted((home / "audit").glob("part-*.jsonl"))
        for line in part.read_text().splitlines()
    ]


def _counted(client: TestClient) -> dict[str, Counter[tuple[str, ...]]]:
    """Each counter of /metrics: its samples' label values (sorted by label name) to value."""
    counted: dict[str, Counter[tuple[str, ...]]] = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name.endswith("_total"):
                labels = tuple(v for _, v in sorted(sample.labels.items()))
                counted.setdefault(sample.name, Counter())[labels] = int(sample.value)
    return counted


def test_metrics_count_the_scores_pages_show_and_the_values_served(
    value_client: TestClient, value_settings: Settings
) -> None:
    """Before: the scores a reviewer page showed and every customer value served (API, pages,
    CSV export) were audit lines, but /metrics counted none of them. Now each audit line is
    counted: /metrics holds exactly what the audit log holds, by task and version, the values by
    surface."""
    reviewer = headers("reviewer")
    answers = {
        "api": [
            value_client.get("/v1/customers/c000/value", headers=headers()),
            value_client.get("/v1/segments/champions/customers", headers=headers()),
        ],
        "page": [
            value_client.get("/ui/customers", headers=reviewer),
            value_client.get("/ui/customers/c001", headers=reviewer),
            value_client.get("/ui/value", headers=reviewer),
            value_client.get("/ui/value/segments/champions.csv", headers=reviewer),
        ],
    }
    surface = {}
    for where, sent in answers.items():
        for answer in sent:
            assert answer.status_code == 200, answer.text
            surface[answer.headers["x-request-id"]] = where
    lines = _audit(value_settings.home)
    values = Counter(
        (surface[a["request_id"]], a["model_version"]) for a in lines if a["task"] == "value"
    )
    scores = Counter((a["model_version"], a["task"]) for a in lines if a["task"] != "value")
    assert {where for where, _ in values} == {"api", "page"} and scores
    counted = _counted(value_client)
    assert counted["guanxi_values_served_total"] == values
    assert counted["guanxi_page_scores_shown_total"] == scores
    assert "guanxi_scores_served_total" not in counted  # the API's score routes served none
    text = value_client.get("/metrics").text
    assert f"# HELP guanxi_page_scores_shown_total {PAGE_SCORES_HELP}" in text
    assert f"# HELP guanxi_values_served_total {VALUES_HELP}" in text


def test_the_value_page_and_its_exports_answer_head_without_auditing(
    value_client: TestClient, value_settings: Settings
) -> None:
    """ui30b: a segment's CSV export was a 405 to ``HEAD`` (a link checker saw the value page's
    links broken); it answers as ``GET`` without a body, and neither it nor the value page's
    ``HEAD`` is audited or counted: they show no one."""
    reviewer = headers("reviewer")
    for path in ("/ui/value", "/ui/value/segments/champions.csv"):
        got, head = (
            value_client.get(path, headers=reviewer),
            value_client.head(path, headers=reviewer),
        )
        assert head.status_code == got.status_code == 200 and head.content == b"", path
        assert head.headers["content-type"] == got.headers["content-type"], path
        assert head.headers.get("content-disposition") == got.headers.get("content-disposition")

    def shown() -> tuple[int, Counter[tuple[str, ...]]]:
        served = _counted(value_client).get("guanxi_values_served_total", Counter())
        return len(_audit(value_settings.home)), served

    before = shown()
    assert before[0] and before[1]  # the GETs are audited and counted
    for path in ("/ui/value", "/ui/value/segments/champions.csv"):
        assert value_client.head(path, headers=reviewer).status_code == 200
    assert shown() == before


def test_customer_value_is_the_row_with_the_table_settings(
    value_client: TestClient, value_settings: Settings
) -> None:
    r = value_client.get("/v1/customers/c000/value", headers=headers())
    assert r.status_code == 200, r.text
    body = r.json()
    for column in VALUE_COLUMNS:
        assert column in body
    assert body["clv"] == 200.0 and body["clv_textbook"] == 180.0
    assert body["p_alive"] == 0.9 and body["expected_days_to_next_order"] == 20.0
    assert body["value_tier"] == "top_5pct" and body["equity_at_risk"] == 20.0
    assert body["as_of"] == AS_OF.isoformat() and body["horizon_days"] == 365
    assert body["value_version"] == f"{AS_OF.isoformat()}/run123"
    outside = value_client.get("/v1/customers/c003/value", headers=headers()).json()
    assert outside["churn_probability"] is None and outside["churn_status"] == "lapsed"
    assert outside["equity_at_risk"] is None
    lines = [a for a in _audit(value_settings.home) if a["task"] == "value"]
    assert [(a["model_version"], a["score"]) for a in lines] == [
        (f"{AS_OF.isoformat()}/run123", 200.0),
        (f"{AS_OF.isoformat()}/run123", 300.0),
    ]
    assert all("c000" not in json.dumps(a) for a in lines)  # ids are hashed


def test_an_id_with_whitespace_around_it_says_so_in_its_404(value_client: TestClient) -> None:
    """serve31: ``/v1/customers/c000%20/value`` answered "not in the value table" with no
    hint, though ``c000`` is in it; the id is not trimmed (ids are exact), the 404 says why."""
    as_of = AS_OF.isoformat()
    for sent, where in [("c000%20", "is in"), ("%C2%A0nobody", "is not in")]:
        r = value_client.get(f"/v1/customers/{sent}/value", headers=headers())
        assert r.status_code == 404, r.text
        assert r.json()["detail"] == (
            f"customer not in the value table as of {as_of}: the id has whitespace before or "
            "after it, and ids are matched exactly, never trimmed: without the whitespace, the "
            f"id {where} the value table"
        )


def test_the_value_404_says_whether_the_id_is_in_the_snapshot(
    value_client: TestClient,
) -> None:
    """qa47 L7: an id in no snapshot was told "customers without an order ... have no value"."""
    r = value_client.get("/v1/customers/NOPE/value", headers=headers())
    assert r.status_code == 404
    detail = r.json()["detail"]
    assert "not in the snapshot" in detail and "without an order" not in detail, detail
    r = value_client.get("/v1/customers/c010/value", headers=headers())  # in the snapshot
    assert r.status_code == 404
    detail = r.json()["detail"]
    assert "in the snapshot" in detail and "no order" in detail, detail
    assert "not in the snapshot" not in detail


def test_the_value_table_holds_exactly_its_ids(value_client: TestClient) -> None:
    """The lookup its 404s' whitespace hints ask, reading out no row."""
    values = value_client.app.state.holder.current.values  # type: ignore[attr-defined]
    assert values.holds("c000") and values.row("c000") is not None
    assert not any(values.holds(c) for c in ("c000 ", "\xa0c000", "nobody", ""))


def test_unknown_customer_and_roles(value_client: TestClient) -> None:
    r = value_client.get("/v1/customers/nobody/value", headers=headers())
    assert r.status_code == 404 and "value table as of" in r.json()["detail"]
    assert value_client.get("/v1/customers/c000/value").status_code == 401
    for path in ("/v1/segments", "/v1/equity", "/v1/segments/champions/customers"):
        assert value_client.get(path).status_code == 401
        assert value_client.get(path, headers={"X-API-Key": "wrong-key"}).status_code == 401


def test_an_id_as_long_as_the_contract_takes_has_its_value(
    tmp_path: Path, source: StaticSource
) -> None:
    """serve28c: the GET took ids of at most 256 characters though the events contract takes
    1,000, so a customer with a longer id had a value in the table and a 422 here."""
    longest = "c" * MAX_VALUE_CHARS
    settings = make_settings(tmp_path / "home")
    store_values(
        settings.home, value_frame().with_columns(pl.col("customer_id").replace("c000", longest))
    )
    with TestClient(create_app(settings, source)) as c:
        wait_ready(c)
        r = c.get(f"/v1/customers/{longest}/value", headers=headers())
        assert r.status_code == 200 and r.json()["clv"] == 200.0, r.text
        r = c.get(f"/v1/customers/{longest}c/value", headers=headers())
        assert r.status_code == 422 and r.json()["detail"][0]["field"] == "path.customer_id"


def test_segments_by_hand_and_each_list_sums_to_the_whole(value_client: TestClient) -> None:
    body = value_client.get("/v1/segments", headers=headers()).json()
    overall = body["overall"]
    assert overall["customers"] == 4 and overall["scored"] == 3
    assert overall["equity"] == 600.0 and overall["equity_at_risk"] == pytest.approx(76.0)
    assert overall["revenue"] == 1630.0 and overall["mean_clv"] == 150.0
    segments = {s["name"]: s for s in body["rfm_segments"]}
    assert list(segments) == ["champions", "at_risk", "none"]  # by equity, largest first
    champions = segments["champions"]
    assert champions["customers"] == 2 and champions["equity"] == 500.0
    assert champions["equity_at_risk"] == 20.0 and champions["mean_churn_probability"] == 0.1
    assert champions["revenue"] == 1400.0 and champions["equity_share"] == pytest.approx(5 / 6)
    assert champions["risk_share"] == pytest.approx(20 / 500)
    assert segments["none"]["equity"] == 20.0
    tiers = {t["name"]: t["equity"] for t in body["value_tiers"]}
    assert tiers == {"top_1pct": 300.0, "top_5pct": 200.0, "top_20pct": 80.0, "rest": 20.0}
    for groups in ("rfm_segments", "value_tiers"):
        for field in ("customers", "equity", "equity_at_risk", "revenue"):
            assert sum(g[field] for g in body[groups]) == pytest.approx(overall[field])


def test_equity_with_validation_and_who_carries_the_risk(
    value_client: TestClient, value_settings: Settings
) -> None:
    body = value_client.get("/v1/equity", headers=headers()).json()
    assert body["overall"]["equity"] == 600.0 and body["basis"] == "revenue"
    assert body["churn_model"] == {"name": "churn", "version": "1", "horizon_days": 90}
    validation = body["validation"]
    assert validation["forecasts"]["bgnbd"]["mae"] == 0.5
    assert validation["forecasts"]["naive"]["correlation"] is None  # NaN is null in JSON
    # 76 at risk: c001 carries 40 (52.6%), so it alone covers half
    top = body["top_at_risk"]
    assert [t["customer_id"] for t in top] == ["c001"]
    assert top[0]["cumulative_share"] == pytest.approx(40 / 76)
    assert any(a["task"] == "value" and a["score"] == 80.0 for a in _audit(value_settings.home))


def test_segment_customers_as_json_and_csv(value_client: TestClient) -> None:
    body = value_client.get("/v1/segments/champions/customers", headers=headers()).json()
    assert body["kind"] == "rfm_segment" and body["count"] == 2
    assert [c["customer_id"] for c in body["customers"]] == ["c003", "c000"]  # by CLV
    # before: churn_status and expected_margin_per_order were null for every customer
    assert [(c["churn_status"], c["expected_margin_per_order"]) for c in body["customers"]] == [
        ("lapsed", 18.0),
        ("eligible", 15.0),
    ]
    single = value_client.get("/v1/customers/c003/value", headers=headers()).json()
    assert body["customers"][0] == single  # a segment's customer is the customer's answer
    tier = value_client.get("/v1/segments/rest/customers", headers=headers()).json()
    assert tier["kind"] == "value_tier" and [c["customer_id"] for c in tier["customers"]] == [
        "c002"
    ]
    r = value_client.get("/v1/segments/champions/customers?format=csv", headers=headers())
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    # the first version's columns in their order, then (before: left out) what the JSON carries,
    # then the churn model the table read and its horizon (test_value_churn_model)
    assert list(rows[0]) == [
        *VALUE_COLUMNS,
        "as_of",
        "churn_status",
        "expected_margin_per_order",
        "churn_model_version",
        "churn_horizon_days",
    ]
    assert [(row["customer_id"], float(row["clv"])) for row in rows] == [
        ("c003", 300.0),
        ("c000", 200.0),
    ]
    assert [(row["churn_status"], row["expected_margin_per_order"]) for row in rows] == [
        ("lapsed", "18.0"),
        ("eligible", "15.0"),
    ]
    assert rows[0]["churn_probability"] == ""  # outside the churn population
    none = value_client.get("/v1/segments/none/customers?format=csv", headers=headers())
    assert [row["customer_id"] for row in csv.DictReader(io.StringIO(none.text))] == ["c002"]
    missing = value_client.get("/v1/segments/nope/customers", headers=headers())
    assert missing.status_code == 404 and "champions" in missing.json()["detail"]
    bad = value_client.get("/v1/segments/champions/customers?format=xml", headers=headers())
    assert bad.status_code == 422


def test_segment_customers_page_with_limit_and_offset(
    value_client: TestClient, value_settings: Settings
) -> None:
    """serve28b: the JSON answer built every customer of a segment at once, with no way to ask
    for fewer. ``limit`` and ``offset`` take a page in the answer's order (CLV, then id), as
    JSON or CSV; ``count`` stays the segment's size, and only the customers answered are
    audited. Without them the answer is what it was (test_segment_customers_as_json_and_csv)."""
    url = "/v1/segments/champions/customers"
    pages = {
        "?limit=1": ["c003"],
        "?limit=1&offset=1": ["c000"],
        "?offset=1": ["c000"],
        "?limit=5": ["c003", "c000"],
        "?offset=2": [],
        f"?offset={10**20}&limit={10**20}": [],  # past what polars takes: no 500
        f"?limit={10**20}": ["c003", "c000"],
    }
    for query, ids in pages.items():
        r = value_client.get(url + query, headers=headers())
        assert r.status_code == 200, r.text
        body = r.json()
        assert [c["customer_id"] for c in body["customers"]] == ids, query
        assert body["count"] == 2, query
        csv_rows = value_client.get(f"{url}{query}&format=csv", headers=headers()).text
        assert [row["customer_id"] for row in csv.DictReader(io.StringIO(csv_rows))] == ids
    served = Counter(line["request_id"] for line in _audit(value_settings.home))
    assert sorted(served.values()) == [
        1,
        1,
        1,
        1,
        1,
        1,
        2,
        2,
        2,
        2,
    ]  # per request: what it answered
    for query in ("?limit=0", "?offset=-1", "?limit=x"):
        assert value_client.get(url + query, headers=headers()).status_code == 422, query


def test_a_table_without_the_details_serves_them_as_null(
    tmp_path: Path, source: StaticSource
) -> None:
    """A table whose rows lack the detail columns (written before them) answers them as null."""
    settings = make_settings(tmp_path / "home")
    store_values(settings.home, value_frame().drop("churn_status", "expected_margin_per_order"))
    with TestClient(create_app(settings, source)) as c:
        wait_ready(c)
        r = c.get("/v1/segments/champions/customers", headers=headers())
        exported = c.get("/v1/segments/champions/customers?format=csv", headers=headers())
    assert r.status_code == 200, r.text
    customers = r.json()["customers"]
    assert [c["customer_id"] for c in customers] == ["c003", "c000"]
    assert all(
        c["churn_status"] is None and c["expected_margin_per_order"] is None for c in customers
    )
    # the same columns, the details empty (the churn model's version is the table's)
    head, *lines = exported.text.splitlines()
    assert head == ",".join(
        [
            *VALUE_COLUMNS,
            "as_of",
            "churn_status",
            "expected_margin_per_order",
            "churn_model_version",
            "churn_horizon_days",
        ]
    )
    assert lines and all(line.endswith(",,1,90") for line in lines)


def test_without_a_value_table_the_scores_serve_and_value_says_how(client: TestClient) -> None:
    assert client.get("/v1/customers/c000/scores", headers=headers()).status_code == 200
    for path in ("/v1/customers/c000/value", "/v1/segments", "/v1/equity"):
        r = client.get(path, headers=headers())
        assert r.status_code == 404 and "guanxi value" in r.json()["detail"]


def test_a_damaged_value_table_leaves_the_scores_serving(
    tmp_path: Path, source: StaticSource
) -> None:
    settings = make_settings(tmp_path / "home")
    store_values(settings.home)
    Store(settings.home).value_path(AS_OF).write_bytes(b"not parquet")
    with TestClient(create_app(settings, source)) as c:
        wait_ready(c)
        assert c.get("/v1/customers/c000/scores", headers=headers()).status_code == 200
        assert c.get("/v1/segments", headers=headers()).status_code == 404


def test_a_value_table_written_without_the_key_is_named_in_the_log_and_the_answer(
    tmp_path: Path, source: StaticSource, caplog: pytest.LogCaptureFixture
) -> None:
    # `guanxi value` run without GUANXI_STORE_KEY (as the README's value command shows) wrote an
    # unsigned table; the server said "no customer value table in the store", which was untrue
    settings = make_settings(tmp_path / "home")
    Store(settings.home).write_values(
        value_frame(),
        AS_OF,
        horizon_days=365,
        discount_rate=0.1,
        basis="revenue",
        fit={"bgnbd": {"r": 0.5}},
        churn_model={"name": "churn", "version": "1", "horizon_days": 90},
        validation=VALIDATION,
        run_id="run123",
    )
    with (
        caplog.at_level(logging.WARNING, logger="serving.values"),
        TestClient(create_app(settings, source)) as c,
    ):
        wait_ready(c)
        r = c.get("/v1/segments", headers=headers())
    assert r.status_code == 404 and "GUANXI_STORE_KEY" in r.json()["detail"]
    # before: "with the server's GUANXI_STORE_KEY (or `guanxi demo`)", as if the demo needed none
    detail = r.json()["detail"]
    assert detail.index("guanxi demo") < detail.rindex("GUANXI_STORE_KEY"), detail
    # written again with the key, it is served at the next request (before: after a reload)
    assert "GUANXI_HOME" in detail and "without a reload" in detail
    logged = " ".join(m.getMessage() for m in caplog.records if m.name == "serving.values")
    assert f"value table as of {AS_OF} is not signed" in logged and "guanxi value" in logged


@pytest.mark.parametrize("store", ["empty", "unsigned", "damaged"])
def test_the_404_says_what_the_log_tells_of_a_refused_table_or_none(
    tmp_path: Path, source: StaticSource, caplog: pytest.LogCaptureFixture, store: str
) -> None:
    """Before: the 404 said "the store has none, or none signed with this server's
    GUANXI_STORE_KEY (the server's log says which)", but of an empty store the log says nothing.
    It now names the line the log holds for a refused table (unsigned or unreadable, with its
    day), and says that without one the store has none: true of each case."""
    settings = make_settings(tmp_path / "home")
    if store == "unsigned":  # as `guanxi value` writes it without GUANXI_STORE_KEY
        Store(settings.home).write_values(
            value_frame(), AS_OF, horizon_days=365, discount_rate=0.1, basis="revenue", fit={}
        )
    elif store == "damaged":
        store_values(settings.home)
        Store(settings.home).value_path(AS_OF).write_bytes(b"not parquet")
    with (
        caplog.at_level(logging.WARNING, logger="serving.values"),
        TestClient(create_app(settings, source)) as c,
    ):
        wait_ready(c)
        r = c.get("/v1/segments", headers=headers())
    assert r.status_code == 404 and r.json() == {"detail": NO_VALUES}, r.text
    assert f"a '{NOT_SERVING}' line of the server's log" in NO_VALUES
    assert "without one the store has none" in NO_VALUES
    said = [m.getMessage() for m in caplog.records if m.getMessage().startswith(NOT_SERVING)]
    if store == "empty":
        assert said == []
    else:
        assert said and all(f"value table as of {AS_OF}" in m for m in said), said


def test_a_value_table_listing_a_customer_twice_is_not_served(
    tmp_path: Path, source: StaticSource, caplog: pytest.LogCaptureFixture
) -> None:
    """dups28: the loaded table indexed its customer ids taking them to be unique: one listing
    c000 on two rows was served, a lookup of c000 was a 500 (the index gave a mask, not a
    position) and the equity counted c000 twice. It is refused as it loads, as an unsigned one
    is: one log line naming its day and the customer, the routes and the value page say no table
    is served and why it can be; written again, it is served at the next request."""
    settings = make_settings(tmp_path / "home")
    store_values(settings.home, pl.concat([value_frame(), value_frame().head(1)]))
    with (
        caplog.at_level(logging.WARNING, logger="serving.values"),
        TestClient(create_app(settings, source)) as c,
    ):
        wait_ready(c)
        for url in ("/v1/customers/c000/value", "/v1/customers/c001/value", "/v1/equity"):
            r = c.get(url, headers=headers())
            assert r.status_code == 404 and r.json() == {"detail": NO_VALUES}, (url, r.text)
        assert "listing a customer on more than one row" in NO_VALUES
        for url in ("/ui/value", "/ui/customers/c000"):  # it said "no table is loaded: run..."
            page = " ".join(c.get(url, headers=headers("reviewer")).text.split())
            assert "listing a customer on more than one row" in page, url
        said = [m.getMessage() for m in caplog.records if m.getMessage().startswith(NOT_SERVING)]
        assert said == [
            f"{NOT_SERVING}: the value table as of {AS_OF} lists customer 'c000' on more than "
            "one row: which row's values are theirs is not known, and the equity by segment and "
            "tier would count them once a row; write it again (guanxi value --events PATH "
            f"--as-of {AS_OF} --out PATH); written again, it is served from the next request on"
        ]
        store_values(settings.home)
        assert c.get("/v1/customers/c000/value", headers=headers()).json()["clv"] == 200.0


def test_a_refused_value_table_is_logged_once_per_write(
    tmp_path: Path, source: StaticSource, caplog: pytest.LogCaptureFixture
) -> None:
    """tidy27: since fce8d91 a state loaded without a value table serves one written later; but
    a table the load refused was read, and refused in the log, again at the first value request:
    two lines of one write. The load reads it through the app's NewestValues: one line per write,
    a reload of the same write adds none, a write signed since is served."""
    settings = make_settings(tmp_path / "home")
    Store(settings.home).write_values(  # as `guanxi value` writes it without GUANXI_STORE_KEY
        value_frame(), AS_OF, horizon_days=365, discount_rate=0.1, basis="revenue", fit={}
    )
    with (
        caplog.at_level(logging.WARNING, logger="serving.values"),
        TestClient(create_app(settings, source)) as c,
    ):
        wait_ready(c)
        for _ in range(2):
            assert c.get("/v1/segments", headers=headers()).status_code == 404
        assert c.post("/v1/admin/reload", headers=headers("admin")).status_code == 200
        assert c.get("/v1/customers/c000/value", headers=headers()).status_code == 404
        said = [m.getMessage() for m in caplog.records if m.getMessage().startswith(NOT_SERVING)]
        assert len(said) == 1 and f"value table as of {AS_OF} is not signed" in said[0], said
        store_values(settings.home)  # written again with the key: served, nothing refused
        assert c.get("/v1/segments", headers=headers()).status_code == 200
    assert len([m for m in caplog.records if m.getMessage().startswith(NOT_SERVING)]) == 1


def test_a_table_written_after_a_load_without_one_is_served_without_a_reload(
    client: TestClient,
) -> None:
    """Before: a state loaded without a value table answered 404 until POST /v1/admin/reload,
    and the 404 said to reload. A table written since is served at the next request, as while no
    model is loaded, and the 404 says so; of two, the snapshot's day's, as a load picks it."""
    home = client.app.state.settings.home  # type: ignore[attr-defined]
    r = client.get("/v1/customers/c000/value", headers=headers())
    assert r.status_code == 404 and r.json() == {"detail": NO_VALUES}
    assert "served from the next request on, without a reload" in NO_VALUES
    later = AS_OF + timedelta(days=1)
    Store(home, STORE_KEY.encode()).write_values(
        value_frame().with_columns(pl.col("clv") * 3, as_of=pl.lit(later, pl.Date)),
        later,
        horizon_days=365,
        discount_rate=0.1,
        basis="revenue",
        fit={},
    )
    r = client.get("/v1/customers/c000/value", headers=headers())
    assert r.status_code == 200 and r.json()["clv"] == 600.0, r.text
    store_values(home)  # the snapshot's day: preferred to the newer day, as a load prefers it
    assert client.get("/v1/segments", headers=headers()).json()["as_of"] == AS_OF.isoformat()
    page = client.get("/ui/customers/c000", headers=headers("reviewer")).text
    assert 'id="clv">200.00' in page.split('id="value"', 1)[1]
    assert 'id="equity">600.00' in client.get("/ui/value", headers=headers("reviewer")).text
    assert client.post("/v1/admin/reload", headers=headers("admin")).status_code == 200
    state = client.app.state.holder.current  # type: ignore[attr-defined]
    assert state.values is not None and state.values.as_of == AS_OF
    assert client.get("/v1/segments", headers=headers()).json()["as_of"] == AS_OF.isoformat()
    assert client.app.state.newest_values._values is None  # type: ignore[attr-defined]


def test_detail_columns_are_in_the_frame() -> None:
    assert set(DETAIL_COLUMNS) <= set(value_frame().columns)


def test_every_detail_a_customer_answer_names_is_served() -> None:
    """The value answer's fields from the detail columns are those segment customers carry."""
    assert set(CustomerValue.model_fields) & set(DETAIL_COLUMNS) == set(SERVED_DETAILS)


def test_customer_page_shows_value_beside_the_scores(
    value_client: TestClient, value_settings: Settings
) -> None:
    page = value_client.get("/ui/customers/c000", headers=headers("reviewer"))
    assert page.status_code == 200, page.text
    panel = page.text.split('id="value"', 1)[1].split("</section>", 1)[0]
    assert 'id="clv">200.00' in panel and 'id="clv-textbook">180.00' in panel
    assert 'id="p-alive">90.0%' in panel and "in 20 days" in panel
    assert 'id="value-tier">top 5%' in panel
    assert page.text.index('id="value"') < page.text.index('class="customer-layout"')
    lapsed = value_client.get("/ui/customers/c003", headers=headers("reviewer")).text
    assert f"{MISSING_HTML} lapsed" in lapsed  # no textbook CLV outside the churn population
    # nor equity at risk, whose bare dash beside the textbook CLV's "— lapsed" said not why
    risk = lapsed.split('id="equity-at-risk">', 1)[1].split("</dd>", 1)[0]
    assert risk == f'<span class="muted">{MISSING_HTML} lapsed</span>'
    assert any(a["task"] == "value" and a["score"] == 200.0 for a in _audit(value_settings.home))


def test_a_customer_without_a_tier_is_untiered_as_on_the_value_page(
    tmp_path: Path, source: StaticSource
) -> None:
    """light35: a customer whose CLV is not known has no value tier; the customer page's "Value
    tier" read "—" where the value page's tier table names the same customers "untiered"."""
    settings = make_settings(tmp_path / "home")
    no_clv = pl.col("customer_id") == "c001"
    frame = value_frame().with_columns(
        clv=pl.when(no_clv).then(None).otherwise(pl.col("clv")),
        value_tier=pl.when(no_clv).then(None).otherwise(pl.col("value_tier")),
        equity_at_risk=pl.when(no_clv).then(None).otherwise(pl.col("equity_at_risk")),
    )
    store_values(settings.home, frame)
    with TestClient(create_app(settings, source)) as client:
        wait_ready(client)
        page = client.get("/ui/customers/c001", headers=headers("reviewer"))
        assert page.status_code == 200, page.text
        assert 'id="value-tier">untiered</dd>' in page.text
        # its equity at risk, churn probability x CLV, read "— eligible", the churn status
        risk = page.text.split('id="equity-at-risk">', 1)[1].split("</dd>", 1)[0]
        assert risk == f'<span class="muted">{MISSING_HTML} no CLV</span>'
        page = client.get("/ui/value", headers=headers("reviewer")).text
        tiers = page.split('id="table-value_tier"', 1)[1].split("</table>", 1)[0]
        assert '<tr data-segment="none"><th scope="row">untiered</th>' in tiers
        # light36: "What these figures mean" listed the top 1%, 5%, 20% and the rest, not this row
        terms = page.split('id="terms"', 1)[1].split("</details>", 1)[0]
        assert "the rest; a customer without a CLV is untiered." in terms
        served = client.get("/ui/customers/c000", headers=headers("reviewer")).text
        assert 'id="value-tier">top 5%</dd>' in served


def test_a_next_order_too_far_off_to_say_is_not_in_dash_days(
    tmp_path: Path, source: StaticSource
) -> None:
    """light36: BG/NBD's median days to the next order overflows for a customer whose purchase
    rate is all but nil (the API gives null); the customer page read "in — days (median, if
    still a buyer)". It says the mark and why, as the rows beside it do."""
    settings = make_settings(tmp_path / "home")
    far = pl.col("customer_id") == "c001"
    frame = value_frame().with_columns(
        expected_days_to_next_order=pl.when(far)
        .then(float("inf"))
        .otherwise(pl.col("expected_days_to_next_order"))
    )
    store_values(settings.home, frame)
    with TestClient(create_app(settings, source)) as client:
        wait_ready(client)
        page = client.get("/ui/customers/c001", headers=headers("reviewer"))
        assert page.status_code == 200, page.text
        said = page.text.split('id="next-order">', 1)[1].split("</dd>", 1)[0]
        assert said == f'<span class="muted">{MISSING_HTML} too far off to say</span>'
        answer = client.get("/v1/customers/c001/value", headers=headers()).json()
        assert answer["expected_days_to_next_order"] is None
        served = client.get("/ui/customers/c000", headers=headers("reviewer")).text
        assert 'id="next-order">in 20 days (median, if still a buyer)</dd>' in served


def test_a_next_order_beyond_the_value_horizon_is_not_given_in_days(
    tmp_path: Path, source: StaticSource
) -> None:
    """review37 (L8): BG/NBD's median days to the next order is finite but absurd for a one-time
    buyer with a small fitted r (about 5 x 10^8 days), and the page read "in 502,000,000 days
    (median, if still a buyer)". A median past the value horizon says so instead; one inside it
    and one on it are still given in days."""
    settings = make_settings(tmp_path / "home")
    days = {"c000": 365.0, "c001": 502_000_000.0, "c002": 366.0}
    frame = value_frame().with_columns(
        expected_days_to_next_order=pl.col("customer_id").replace_strict(
            days, default=pl.col("expected_days_to_next_order")
        )
    )
    store_values(settings.home, frame)
    with TestClient(create_app(settings, source)) as client:
        wait_ready(client)
        for customer, said in (
            ("c000", "in 365 days (median, if still a buyer)"),
            ("c001", "beyond the 365-day value horizon (median, if still a buyer)"),
            ("c002", "beyond the 365-day value horizon (median, if still a buyer)"),
            ("c003", "in 15 days (median, if still a buyer)"),
        ):
            page = client.get(f"/ui/customers/{customer}", headers=headers("reviewer")).text
            assert f'id="next-order">{said}</dd>' in page, customer
        answer = client.get("/v1/customers/c001/value", headers=headers()).json()
        assert answer["expected_days_to_next_order"] == 502_000_000.0  # the API keeps the figure


def test_value_page_shows_equity_by_segment_and_tier_and_the_check(
    value_client: TestClient,
) -> None:
    page = value_client.get("/ui/value", headers=headers("reviewer"))
    assert page.status_code == 200, page.text
    text = page.text
    assert 'id="equity">600.00' in text and 'id="equity-at-risk">76.00' in text
    for by in ("rfm_segment", "value_tier"):
        assert f'id="table-{by}"' in text
        assert f'id="equity-{by}"' in text and f'id="equity_at_risk-{by}"' in text  # charts
    assert 'data-segment="champions"' in text and 'data-segment="top_1pct"' in text
    # ui32: the first column of the segment table was headed "Rfm segment" (Jinja's capitalize
    # lowers the rest) under the heading "By RFM segment"
    assert '<th scope="col">RFM segment</th>' in text and "Rfm" not in text
    assert '<th scope="col">Value tier</th>' in text
    assert "/ui/value/segments/champions.csv" in text
    # each export link says whose customers it exports: fifteen links named "CSV" alone read
    # the same in a screen reader's list of links
    assert (
        '/ui/value/segments/top_1pct.csv" aria-label="CSV of the top 1% customers">CSV</a>' in text
    )
    # ui32: and the lowest tier's "CSV of the rest customers"
    assert 'segments/rest.csv" aria-label="CSV of the rest of the customers">' in text
    # the customers without a segment's read "CSV of the none customers"
    assert 'segments/none.csv" aria-label="CSV of the customers with no RFM segment">' in text
    # ui31b: and its row and bar said "none" where the plan and campaign pages say "unsegmented"
    none_row = text.split('data-segment="none">', 1)[1].split("</tr>", 1)[0]
    assert none_row.startswith('<th scope="row">unsegmented</th>')
    assert "<title>none" not in text and ">none<" not in text
    export = value_client.get("/ui/value/segments/top_1pct.csv", headers=headers("reviewer"))
    assert export.status_code == 200 and export.text.splitlines()[1].startswith("c003,")
    assert (
        value_client.get("/ui/value/segments/nope.csv", headers=headers("reviewer")).status_code
        == 404
    )
    assert 'data-forecast="bgnbd"' in text and 'data-forecast="naive"' in text
    # the aggregate error keeps its sign, as guanxi value prints it: "10.0%" and "20.0%" read
    # alike though one forecast fell short and the other went over
    check = text.split('id="validation"', 1)[1].split("</section>", 1)[0]
    assert '<td class="num">−10.0%</td>' in check and '<td class="num">+20.0%</td>' in check
    assert "c001" in text.split('id="top-at-risk"', 1)[1]
    # ui32b: the validation table's box was named as its section, so a screen reader said it twice
    assert not names_said_twice(text)
    assert value_client.get("/ui/value", headers=headers()).status_code == 403  # scorer


def test_the_value_page_says_what_its_figures_mean(value_client: TestClient) -> None:
    """The page named CLV, customer equity, equity at risk and churn risk without a word of what
    they are, nor over which horizon and at which rate: a CRM analyst had to find the README."""
    text = value_client.get("/ui/value", headers=headers("reviewer")).text
    terms = text.split('<details class="card chart-data" id="terms">', 1)[1].split("</details>")[0]
    defined = set(re.findall(r"<dt>([^<]+)</dt>", terms))
    assert {"CLV", "Customer equity", "Equity at risk", "Churn risk", "Value tier"} <= defined
    # the table's own settings: 365 days at 10% a year on revenue, a churn model of 90 days
    assert "next 365 days" in terms and "10% a year" in terms
    assert "revenue times the margin rate" in terms and "within 90 days" in terms


def test_a_group_nobody_in_which_has_a_churn_probability_shows_its_risk_as_not_measured(
    value_client: TestClient,
) -> None:
    """serve28b: the top 1% tier holds only c003, lapsed (no churn probability); the page showed
    its equity at risk as 0.00 and 0.0% and drew a bar of 0, which read as "no risk". The page
    shows it as not measured (and draws no bar); the API keeps the 0 its clients sum, its
    ``scored`` 0 saying so (the field's description says it too)."""
    text = value_client.get("/ui/value", headers=headers("reviewer")).text
    row = re.search(r'<tr data-segment="top_1pct">(.*?)</tr>', text)
    assert row is not None
    cells = re.findall(r'<td class="num">(.*?)</td>', row.group(1))
    assert cells[-2:] == [MISSING_HTML, MISSING_HTML]  # equity at risk, its share of the equity
    chart = text.split('id="equity_at_risk-value_tier"', 1)[1].split("</figure>", 1)[0]
    assert "top 1%" not in chart and 'data-label="top 5%"' in chart
    top = re.search(r'<tr data-segment="top_5pct">(.*?)</tr>', text)
    assert (
        top is not None and re.findall(r'<td class="num">(.*?)</td>', top.group(1))[-2] == "20.00"
    )
    body = value_client.get("/v1/segments", headers=headers()).json()
    tier = next(t for t in body["value_tiers"] if t["name"] == "top_1pct")
    assert (tier["scored"], tier["equity_at_risk"], tier["risk_share"]) == (0, 0.0, 0.0)


def test_pages_without_a_value_table_say_how_to_get_one(client: TestClient) -> None:
    value = client.get("/ui/value", headers=headers("reviewer"))
    assert value.status_code == 200 and "guanxi value" in value.text
    customer = client.get("/ui/customers/c000", headers=headers("reviewer"))
    assert customer.status_code == 200 and "no customer value table is served" in customer.text


def test_a_valued_customer_outside_the_snapshot_has_a_page_not_a_404(
    tmp_path: Path, source: StaticSource
) -> None:
    """serve28: a value table of a later day than the served snapshot holds customers the
    snapshot does not (a first order since); the value page linked them, and their page was the
    404 "No customer ... in the snapshot". It now shows their value, saying why no score."""
    home = tmp_path / "home"
    day = AS_OF + timedelta(days=31)
    frame = value_frame().with_columns(
        customer_id=pl.when(pl.col("customer_id") == "c001")
        .then(pl.lit("c999"))
        .otherwise(pl.col("customer_id")),
        as_of=pl.lit(day, pl.Date),
    )
    Store(home, STORE_KEY.encode()).write_values(
        frame, day, horizon_days=365, discount_rate=0.1, basis="revenue", fit={}
    )
    with TestClient(create_app(make_settings(home), source)) as client:
        wait_ready(client)
        value = client.get("/ui/value", headers=headers("reviewer")).text
        assert 'href="/ui/customers/c999"' in value  # the most equity at risk
        page = client.get("/ui/customers/c999", headers=headers("reviewer"))
        assert page.status_code == 200, page.text
        assert 'id="clv">80.00' in page.text and 'aria-label="Scores"' not in page.text
        note = page.text.split('id="not-in-snapshot">', 1)[1].split("</p>", 1)[0]
        assert "not in the snapshot as of 30 Jun 2024 the models score" in note
        assert "31 Jul 2024" in note
        # a customer in neither is still not found
        assert client.get("/ui/customers/c998", headers=headers("reviewer")).status_code == 404


def test_a_segment_export_without_a_value_table_says_what_to_run(client: TestClient) -> None:
    """serve28: it said "No segment or tier 'champions' is loaded", as though the table lacked
    the segment; it now says no value table is served and what to run."""
    page = client.get("/ui/value/segments/champions.csv", headers=headers("reviewer"))
    assert page.status_code == 404
    assert "no customer value table is served" in page.text and "guanxi value" in page.text


def test_an_unknown_segment_export_names_the_known_ones(value_client: TestClient) -> None:
    """serve28: it said "No segment or tier 'nope' is loaded"; it now names the table's day and
    the names there are, as the API's 404 does."""
    page = value_client.get("/ui/value/segments/nope.csv", headers=headers("reviewer"))
    assert page.status_code == 404
    assert "No segment or tier &#39;nope&#39; in the value table as of 30 Jun 2024" in page.text
    assert "known: champions, at_risk, none, top_1pct, top_5pct, top_20pct, rest" in page.text


GET_OPERATIONS = [
    "/v1/customers/c001/scores",
    "/v1/models",
    "/v1/customers/c000/value",
    "/v1/segments",
    "/v1/equity",
    "/v1/segments/champions/customers",
    "/v1/segments/champions/customers?format=csv",
]


def test_each_get_operation_answers_head_scoring_and_auditing_no_one(
    value_client: TestClient, value_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """serve31b: ``HEAD /v1/models`` and every other GET operation's HEAD were a 405 while GET
    answered, so a link checker or monitor saw the API broken. HEAD answers as GET without a
    body and serves no one: nothing is scored, audited or counted. Its errors are GET's."""
    before = _counted(value_client)

    def no_scoring(*_: object) -> None:
        raise AssertionError("a HEAD made scores")

    monkeypatch.setattr(serving.routes, "score_fragments", no_scoring)
    for url in GET_OPERATIONS:
        r = value_client.head(url, headers=headers())
        assert r.status_code == 200 and r.content == b"", url
        assert r.headers["content-type"].split(";")[0] in ("application/json", "text/csv"), url
        assert r.headers["x-request-id"], url
    assert value_client.head("/v1/customers/nobody/scores", headers=headers()).status_code == 404
    assert value_client.head("/v1/customers/nobody/value", headers=headers()).status_code == 404
    assert value_client.head("/v1/models").status_code == 401
    assert (
        value_client.head(
            "/v1/segments/champions/customers?format=xml", headers=headers()
        ).status_code
        == 422
    )
    assert _audit(value_settings.home) == []
    after = _counted(value_client)
    for counter in ("guanxi_scores_served_total", "guanxi_values_served_total"):
        assert after.get(counter) == before.get(counter), counter
    monkeypatch.undo()
    for url in GET_OPERATIONS:  # GET still answers, and is audited
        assert value_client.get(url, headers=headers()).status_code == 200, url
    assert _audit(value_settings.home)


def test_head_of_a_value_route_builds_no_body(
    value_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """web32: each value route's ``HEAD`` built the JSON or CSV answer (a whole segment's rows,
    the customers carrying the risk) that the server then dropped. It is answered as ``GET`` up
    to the body, its headers the same but ``Content-Length``, without reading any row out."""
    heads = {}
    for url, accept in [
        *((url, "*/*") for url in GET_OPERATIONS if not url.endswith(("/scores", "/models"))),
        ("/v1/segments/champions/customers", "text/csv"),
        ("/ui/value/segments/champions.csv", "*/*"),  # the value page's export
    ]:
        got = value_client.get(url, headers={**headers("reviewer"), "Accept": accept})
        assert got.status_code == 200, url
        heads[url, accept] = {
            k: v for k, v in got.headers.items() if k not in ("content-length", "x-request-id")
        }

    def no_body(*_: object, **__: object) -> None:
        raise AssertionError("a HEAD built its body")

    for module, name in [
        (serving.value_routes, "customer_value"),
        (serving.value_routes, "segment_summary"),
        (serving.value_routes, "segment_rows"),
        (serving.ui.value_page, "segment_rows"),
        (serving.value_routes, "validation_of"),
    ]:
        monkeypatch.setattr(module, name, no_body)
    monkeypatch.setattr(LoadedValues, "top_at_risk", no_body)
    for (url, accept), want in heads.items():
        r = value_client.head(url, headers={**headers("reviewer"), "Accept": accept})
        assert r.status_code == 200 and r.content == b"", url
        assert "content-length" not in r.headers, url  # only the body would say it
        said = {k: v for k, v in r.headers.items() if k != "x-request-id"}
        assert said == want, (url, accept)


def test_a_segment_chosen_by_accept_says_vary_accept(value_client: TestClient) -> None:
    """web32: ``/v1/segments/{name}/customers`` picks CSV or JSON by ``Accept`` (without
    ``?format=``) but did not say ``Vary: Accept``, so a cache between could give the CSV
    stored for one client to another asking for JSON. Every answer chosen so says it, HEAD's
    too, and the document declares it; an address naming its ``format`` depends on no header."""
    url = "/v1/segments/champions/customers"
    for method in ("GET", "HEAD"):
        for accept in ("text/csv", "application/json", "*/*"):
            r = value_client.request(method, url, headers={**headers(), "Accept": accept})
            assert r.status_code == 200 and r.headers.get("vary") == "Accept", (method, accept)
        for query in ("?format=csv", "?format=json"):
            r = value_client.request(method, url + query, headers=headers())
            assert r.status_code == 200 and "vary" not in r.headers, (method, query)
    document = value_client.app.openapi()  # type: ignore[attr-defined]
    answer = document["paths"][url.replace("champions", "{name}")]["get"]["responses"]["200"]
    assert "Vary" in answer["headers"]


def test_a_segment_s_csv_is_chosen_by_accept_or_by_format_in_any_case(
    value_client: TestClient,
) -> None:
    """serve31b: ``Accept: text/csv`` answered JSON (only ``?format=csv`` gave CSV) and
    ``?format=CSV`` was a 422. An integrator's client asking for CSV by content negotiation
    gets it; ``?format=`` stays the documented way and wins over Accept."""
    url = "/v1/segments/champions/customers"
    csv_answer = value_client.get(f"{url}?format=csv", headers=headers())
    for query, accept, kind in [
        ("", "text/csv", "text/csv"),
        ("", "text/csv;q=0.9, application/json;q=0.5", "text/csv"),
        ("", "application/json, text/csv", "application/json"),  # a tie: JSON, the default
        ("", "text/html,application/xhtml+xml,*/*;q=0.8", "application/json"),  # a browser
        ("", "*/*", "application/json"),
        ("?format=CSV", "application/json", "text/csv"),
        ("?format=Json", "text/csv", "application/json"),  # ?format= wins
    ]:
        r = value_client.get(f"{url}{query}", headers={**headers(), "Accept": accept})
        assert r.status_code == 200, (query, accept, r.text)
        assert r.headers["content-type"].split(";")[0] == kind, (query, accept)
        if kind == "text/csv":
            assert r.text == csv_answer.text
    r = value_client.get(f"{url}?format=xml", headers=headers())
    assert r.status_code == 422 and "query.format" in r.text
