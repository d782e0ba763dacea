"""Reviewer pages in a real browser: Debian's Chromium driven by Playwright against a real uvicorn
server (the app ``guanxi serve`` runs, on a free loopback port, loading from a SQLite MLflow).

JavaScript is switched off in the browser: the pages must read without it. Screenshots of every
page go to ``test-artifacts/`` (git-ignored). Needs ``/usr/bin/chromium`` (``apt-get install -y
chromium``); Playwright's own browser download is not used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from mlflow.tracking import MlflowClient

from tests.serving.conftest import KEYS, NEEDS_CHROMIUM, NOTHING_PROMOTED, serve_uvicorn, shot
from tests.serving.ui_data import BUSY, UIWorld

pytestmark = [pytest.mark.slow, NEEDS_CHROMIUM]


def _attrs(page: Any, selector: str, *names: str) -> list[list[str | None]]:
    loc = page.locator(selector)
    return [[loc.nth(i).get_attribute(n) for n in names] for i in range(loc.count())]


def test_reviewer_journey_in_chromium(page: Any, server: str, world: UIWorld) -> None:
    # not logged in: the customer page sends the browser to the login form
    page.goto(f"{server}/ui/customers/c001")
    assert "/ui/login" in page.url
    shot(page, "login")
    page.fill("#api_key", KEYS["scorer"])
    page.click("button[type=submit]")
    assert page.locator(".alert").inner_text().startswith("A scorer key may not")
    page.fill("#api_key", KEYS["reviewer"])
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/ui/customers/c001")
    cookie = next(c for c in page.context.cookies() if c["name"] == "guanxi_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert KEYS["reviewer"] not in cookie["value"]
    assert "c001" in page.locator("h1").inner_text()
    shot(page, "customer")

    # every waterfall bar is the API's contribution for that feature
    api = httpx.get(
        f"{server}/v1/customers/c001/scores?explain=8",
        headers={"X-API-Key": KEYS["reviewer"]},
    ).json()
    for task, score in api["scores"].items():
        if score["probability"] is None:
            continue
        bars = _attrs(page, f"#waterfall-{task} rect[data-feature]", "data-feature", "data-points")
        shown = [(f, float(p or "nan")) for f, p in bars if f]
        assert [f for f, _ in shown] == [r["feature"] for r in score["reasons"]]
        for (_, points), reason in zip(shown, score["reasons"], strict=True):
            assert points == pytest.approx(reason["contribution_points"])
        assert page.locator(f"#waterfall-{task} > title").text_content()

    page.goto(f"{server}/ui/customers/{BUSY}")
    assert page.locator("#orders tbody tr").count() > 0
    shot(page, "customer-history")

    page.goto(f"{server}/ui/customers?sort=churn_p&order=desc")
    assert page.locator("#customer-list tbody tr").count() == 50
    shot(page, "customers")
    page.select_option("select[name=band]", "high")
    page.click("form.filters button[type=submit]")
    assert "band=high" in page.url
    shot(page, "customers-high")

    page.goto(f"{server}/ui/")
    assert page.locator("svg#hist-churn").count() == 1
    shot(page, "overview")

    # the model card shows MLflow's metrics for the champion and the challenger
    page.goto(f"{server}/ui/models/churn")
    client = MlflowClient(tracking_uri=world.uri)
    for slot, version in zip(("champion", "challenger"), world.versions["churn"], strict=True):
        metrics = client.get_run(world.run_ids["churn", version]).data.metrics
        cells = _attrs(page, f"td[data-slot={slot}][data-metric]", "data-metric", "data-value")
        assert {k: float(v or "nan") for k, v in cells} == pytest.approx(metrics)
        assert page.locator(f"#card-{slot}").get_attribute("data-version") == version
        assert page.locator(f"svg#gains-{slot}").count() == 1
    shot(page, "model-churn")
    # every metric has a name a reviewer reads ("test rows", not the key "n")
    labels = page.locator("#metrics tbody th").all_inner_texts()
    assert "XGBoost test rows" in labels and not [x for x in labels if "_" in x]
    page.goto(f"{server}/ui/models/cross_sell")
    shot(page, "model-cross_sell")

    page.click("text=Log out")
    page.goto(f"{server}/ui/customers/c001")
    assert "/ui/login" in page.url


@pytest.mark.parametrize(
    ("path", "operation"),
    [("/docs", ".opblock-summary-path"), ("/redoc", "[data-section-id^='operation/']")],
)
def test_api_docs_load_without_the_internet(
    server: str, browser: Any, path: str, operation: str
) -> None:
    """Swagger UI and ReDoc come from this server: every other host is refused, and still
    the page (JavaScript on: both are scripts) lists the API's operations. ReDoc's own logo
    (an image in its footer link) is the one thing it asks elsewhere; it is not needed."""
    refused: list[tuple[str, str]] = []

    def only_this_server(route: Any) -> None:
        if route.request.url.startswith(server):
            route.continue_()
        else:
            refused.append((route.request.resource_type, route.request.url))
            route.abort()

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        context.route("**/*", only_this_server)
        page = context.new_page()
        page.goto(f"{server}{path}")
        page.wait_for_selector(operation, timeout=60_000)
        text = page.locator("body").inner_text()
        assert "/v1/customers/{customer_id}/scores" in text
        assert "/v1/score" in text
        shot(page, f"api{path.replace('/', '-')}")
    finally:
        context.close()
    assert [url for kind, url in refused if kind != "image"] == []


def test_an_empty_store_says_what_to_run(browser: Any, tmp_path: Path) -> None:
    """A first start before anything is trained: the reviewer logs in and every page says
    what is missing and the command that makes it, not "loading" without end."""
    home = tmp_path / "home"
    home.mkdir()
    uri = f"sqlite:///{home / 'mlflow.db'}"
    with serve_uvicorn(home, uri, tmp_path, ready=NOTHING_PROMOTED) as url:
        context = browser.new_context(java_script_enabled=False)
        try:
            page = context.new_page()
            page.goto(f"{url}/ui/login")
            page.fill("#api_key", KEYS["reviewer"])
            page.click("button[type=submit]")
            for path in ("/ui/", "/ui/customers", "/ui/customers/c001"):
                response = page.goto(f"{url}{path}")
                assert response is not None and response.status == 503
                assert page.locator("h1").inner_text() == "Nothing to serve yet"
                text = page.locator("main").inner_text()
                assert "guanxi promote" in text and str(home) not in text
            shot(page, "empty-store")
        finally:
            context.close()
