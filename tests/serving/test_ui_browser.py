"""Reviewer pages in a real browser: Debian's Chromium driven by Playwright against a real uvicorn
server (the app ``guanxi serve`` runs, on a free loopback port, loading from a SQLite MLflow).

JavaScript is switched off in the browser: the pages must read without it. Screenshots of every
page go to ``test-artifacts/`` (git-ignored). Needs ``/usr/bin/chromium`` (``apt-get install -y
chromium``); Playwright's own browser download is not used.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlflow.tracking import MlflowClient

from tests.processes import listening_port, stop, wait_status
from tests.serving.conftest import AUDIT_KEY, KEYS, SESSION_KEY, STORE_KEY
from tests.serving.ui_data import BUSY, UIWorld, build_ui_world

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="browser tests need Debian's Chromium at /usr/bin/chromium "
        "(apt-get install -y chromium); CI installs it",
    ),
]


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> UIWorld:
    base = tmp_path_factory.getbasetemp() / "ui-world"
    base.mkdir(exist_ok=True)
    return build_ui_world(base)


@contextlib.contextmanager
def _uvicorn(home: Path, uri: str, workdir: Path, ready: str | None = None) -> Iterator[str]:
    """``uvicorn serving.app:create_app_from_env --factory`` on port 0, serving ``home``
    with MLflow at ``uri``, until ``/readyz`` is 200 (or, given ``ready``, answers that
    ``detail``); yield its URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GUANXI_"))}
    env |= {
        "GUANXI_HOME": str(home),
        "GUANXI_API_KEYS": ",".join(f"{key}:{role}" for role, key in KEYS.items()),
        "GUANXI_AUDIT_KEY": AUDIT_KEY,
        "GUANXI_SESSION_KEY": SESSION_KEY,
        "GUANXI_STORE_KEY": STORE_KEY,
        "GUANXI_COOKIE_SECURE": "false",  # plain http on loopback
        "GUANXI_API_DOCS": "true",
        "GUANXI_PRECOMPUTE_REASONS": "false",
        "MLFLOW_TRACKING_URI": uri,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    log = workdir / "server.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "serving.app:create_app_from_env",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-server-header",
        ],
        cwd=workdir,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{listening_port(proc, log)}"
        if ready is None:
            wait_status(f"{url}/readyz", 200, proc, log, attempts=300)
        else:
            for _ in range(600):  # as wait_status: polls 0.2 s apart, bounded by their number
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/readyz", timeout=5).json().get("detail") == ready:
                        break
                time.sleep(0.2)
            else:
                raise AssertionError(f"/readyz never said {ready!r}: {log.read_text()[-2000:]}")
        yield url
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def server(world: UIWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The reviewer pages of the UI world, served by uvicorn, once ready."""
    with _uvicorn(world.home, world.uri, tmp_path_factory.mktemp("ui-server")) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def page(server: str, browser: Any) -> Iterator[Any]:
    """A Chromium page with JavaScript off (the pages must read without it)."""
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1400, "height": 900}
    )
    try:
        yield context.new_page()
    finally:
        context.close()


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"ui-{name}.png"), full_page=True)


def _attrs(page: Any, selector: str, *names: str) -> list[list[str | None]]:
    loc = page.locator(selector)
    return [[loc.nth(i).get_attribute(n) for n in names] for i in range(loc.count())]


def test_reviewer_journey_in_chromium(page: Any, server: str, world: UIWorld) -> None:
    # not logged in: the customer page sends the browser to the login form
    page.goto(f"{server}/ui/customers/c001")
    assert "/ui/login" in page.url
    _shot(page, "login")
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
    _shot(page, "customer")

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
    _shot(page, "customer-history")

    page.goto(f"{server}/ui/customers?sort=churn_p&order=desc")
    assert page.locator("#customer-list tbody tr").count() == 50
    _shot(page, "customers")
    page.select_option("select[name=band]", "high")
    page.click("form.filters button[type=submit]")
    assert "band=high" in page.url
    _shot(page, "customers-high")

    page.goto(f"{server}/ui/")
    assert page.locator("svg#hist-churn").count() == 1
    _shot(page, "overview")

    # the model card shows MLflow's metrics for the champion and the challenger
    page.goto(f"{server}/ui/models/churn")
    client = MlflowClient(tracking_uri=world.uri)
    for slot, version in zip(("champion", "challenger"), world.versions["churn"], strict=True):
        metrics = client.get_run(world.run_ids["churn", version]).data.metrics
        cells = _attrs(page, f"td[data-slot={slot}][data-metric]", "data-metric", "data-value")
        assert {k: float(v or "nan") for k, v in cells} == pytest.approx(metrics)
        assert page.locator(f"#card-{slot}").get_attribute("data-version") == version
        assert page.locator(f"svg#gains-{slot}").count() == 1
    _shot(page, "model-churn")
    # every metric has a name a reviewer reads ("test rows", not the key "n")
    labels = page.locator("#metrics tbody th").all_inner_texts()
    assert "XGBoost test rows" in labels and not [x for x in labels if "_" in x]
    page.goto(f"{server}/ui/models/cross_sell")
    _shot(page, "model-cross_sell")

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
        _shot(page, f"api{path.replace('/', '-')}")
    finally:
        context.close()
    assert [url for kind, url in refused if kind != "image"] == []


def test_an_empty_store_says_what_to_run(browser: Any, tmp_path: Path) -> None:
    """A first start before anything is trained: the reviewer logs in and every page says
    what is missing and the command that makes it, not "loading" without end."""
    home = tmp_path / "home"
    home.mkdir()
    uri = f"sqlite:///{home / 'mlflow.db'}"
    with _uvicorn(home, uri, tmp_path, ready="last load failed; retrying") as url:
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
            _shot(page, "empty-store")
        finally:
            context.close()
