"""Script and HTML injection: customer ids, category names and free-text attributes carrying
payloads come out escaped on every reviewer page and in every chart (inline SVG)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import polars as pl
import pytest
from fastapi.testclient import TestClient

from features.contracts import FEATURE_SET_VERSION
from features.snapshot import build_snapshot
from features.store import Store
from serving.app import create_app
from serving.state import LoadedSnapshot, ServedModel
from tests.serving.conftest import (
    AS_OF,
    CATEGORIES,
    KEYS,
    SAME_ORIGIN,
    StaticSource,
    make_settings,
    tiny_events,
    wait_ready,
)
from tests.serving.ui_data import busy_events

ID_PAYLOAD = "<img src=x onerror=alert('id')>\"'&"  # ids hold no "/": a path segment
BUSY_PAYLOAD = '"><b onmouseover=alert(1)>x'
CATEGORY_PAYLOAD = "<svg onload=alert(2)></svg>"
TEXT_PAYLOAD = '"><script>alert(3)</script>'
RAW = ("<script>alert(", "<img src=x onerror", "<b onmouseover", "<svg onload=alert")
"""What must never appear unescaped in a page."""
ESCAPED = ("&lt;img src=x onerror", "&lt;b onmouseover", "&lt;svg onload=", "&lt;script&gt;alert(")
"""Each payload as it must show: escaped."""


@pytest.fixture(scope="module")
def injected(
    tmp_path_factory: pytest.TempPathFactory, served: dict[str, ServedModel]
) -> Iterator[TestClient]:
    """The app over a snapshot and history whose ids, categories and text fields carry payloads."""
    home = tmp_path_factory.mktemp("injection") / "home"
    quiet = tiny_events().with_columns(
        pl.when(pl.col("customer_id") == "c001")
        .then(pl.lit(ID_PAYLOAD))
        .otherwise(pl.col("customer_id"))
        .alias("customer_id")
    )
    busy = busy_events(BUSY_PAYLOAD, n=120).with_columns(
        pl.when(pl.col("category").is_not_null() & (pl.int_range(pl.len()) % 2 == 0))
        .then(pl.lit(CATEGORY_PAYLOAD))
        .otherwise(pl.col("category"))
        .alias("category"),
        (pl.lit(TEXT_PAYLOAD) + pl.int_range(pl.len()).cast(pl.String)).alias("ref_id"),
    )
    events = pl.concat([quiet, busy]).sort("ts")
    seen = events.filter(pl.col("ts").dt.date() <= AS_OF)
    snapshot = build_snapshot(seen, None, AS_OF, categories=CATEGORIES)
    Store(home).write_snapshot(snapshot, AS_OF, history=events)
    source = StaticSource(
        models=dict(served),
        snapshot=LoadedSnapshot(AS_OF, FEATURE_SET_VERSION, snapshot),
    )
    with TestClient(create_app(make_settings(home), source)) as client:
        wait_ready(client)
        r = client.post("/ui/login", headers=SAME_ORIGIN, data={"api_key": KEYS["reviewer"]})
        assert r.status_code == 200, r.text
        yield client


def _pages() -> list[str]:
    tasks = ("churn", "repurchase", "cross_sell")
    return [
        "/ui/",
        "/ui/customers",
        *(f"/ui/customers?task={t}&sort={t}_p&order=desc" for t in tasks),
        f"/ui/customers?q={quote(ID_PAYLOAD)}",
        f"/ui/customers?q={quote(BUSY_PAYLOAD)}&segment={quote(TEXT_PAYLOAD)}",
        f"/ui/customers/{quote(ID_PAYLOAD, safe='')}",
        f"/ui/customers/{quote(BUSY_PAYLOAD, safe='')}",
        f"/ui/customers/{quote('<img src=x onerror=alert(9)>nobody', safe='')}",  # a 404 page
        f"/ui/login?next={quote('/ui/' + TEXT_PAYLOAD)}",
    ]


def test_payloads_come_out_escaped_on_every_page_and_chart(injected: TestClient) -> None:
    seen_escaped = set()
    for path in _pages():
        r = injected.get(path)
        assert r.status_code in (200, 404), (path, r.status_code)
        assert r.headers["content-type"].startswith("text/html"), path
        found = [raw for raw in RAW if raw in r.text]
        assert found == [], (path, found)
        for escaped in ESCAPED:
            if escaped in r.text:
                seen_escaped.add(escaped)
    # the payloads did reach the pages (escaped): ids, history categories and text fields
    assert seen_escaped == set(ESCAPED)
    customer = injected.get(f"/ui/customers/{quote(BUSY_PAYLOAD, safe='')}")
    assert customer.status_code == 200 and "<svg" in customer.text  # charts were drawn
    listing = injected.get("/ui/customers?sort=customer_id&order=asc")
    assert "&lt;img src=x onerror" in listing.text  # the list shows the id, escaped


def test_payload_ids_stay_out_of_links_and_attributes_unescaped(injected: TestClient) -> None:
    page = injected.get("/ui/customers?sort=customer_id&order=asc")
    # a link to the payload customer carries it percent-encoded, never as markup
    assert "%3Cimg%20src%3Dx" in page.text or "%3Cimg+src%3Dx" in page.text
    assert 'href="/ui/customers/<' not in page.text
