"""The value page and the customer page's value panel in Chromium (JavaScript off).

The reviewer pages' server (:func:`tests.serving.conftest.server`) is started for this module; a
hand-made value table (:func:`tests.serving.test_value_api.value_frame`) is put in its store and
loaded with ``POST /v1/admin/reload``, and taken away again at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from features.store import Store
from tests.serving.conftest import AS_OF, KEYS, shot
from tests.serving.test_ui_browser import pytestmark  # noqa: F401 - slow, needs Chromium
from tests.serving.test_value_api import store_values
from tests.serving.ui_data import UIWorld


@pytest.fixture(scope="module")
def valued(server: str, world: UIWorld) -> Iterator[str]:
    """The server with a value table loaded; afterwards without it again."""
    admin = {"X-API-Key": KEYS["admin"]}
    store_values(world.home)
    try:
        assert httpx.post(f"{server}/v1/admin/reload", headers=admin, timeout=60).status_code == 200
        yield server
    finally:
        Store(world.home).value_path(AS_OF).unlink()
        httpx.post(f"{server}/v1/admin/reload", headers=admin, timeout=60)


def test_value_pages_in_chromium(page: Any, valued: str) -> None:
    page.goto(f"{valued}/ui/login")
    page.fill("input[name=api_key]", KEYS["reviewer"])
    page.click("button[type=submit]")
    page.goto(f"{valued}/ui/customers/c000")
    panel = page.locator("#value")
    assert panel.is_visible()
    assert page.locator("#clv").inner_text() == "200.00"
    assert page.locator("#p-alive").inner_text() == "90.0%"
    assert page.locator("#value-tier").inner_text() == "top 5%"
    shot(page, "customer-value")
    page.locator("nav a", has_text="Value").click()
    assert page.url.endswith("/ui/value")
    assert page.locator("#equity").inner_text() == "600.00"
    assert page.locator("#equity-at-risk").inner_text() == "76.00"
    for by in ("rfm_segment", "value_tier"):
        assert page.locator(f"#table-{by} tbody tr").count() >= 3
        assert page.locator(f"#by-{by} svg").count() == 2  # equity and equity at risk charts
    assert page.locator("#validation tr[data-forecast]").count() == 2
    # tiers and segments read as names ("top 1%", "can't lose"), the keys stay in data-segment
    tiers = page.locator("#table-value_tier tbody th").all_inner_texts()
    assert "top 1%" in tiers and not [t for t in tiers if "_" in t or "pct" in t]
    shot(page, "value")
    with page.expect_download() as download:
        page.locator('#table-rfm_segment tr[data-segment="champions"] a', has_text="CSV").click()
    text = download.value.path().read_text()
    assert text.splitlines()[0].startswith("customer_id,p_alive,expected_purchases")
    assert [line.split(",")[0] for line in text.splitlines()[1:]] == ["c003", "c000"]
