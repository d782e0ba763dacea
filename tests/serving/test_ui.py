"""Reviewer pages through the TestClient: login and roles, every page, charts and history."""

from __future__ import annotations

import html
import json
import logging
import math
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Hashable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import mlflow
import numpy as np
import polars as pl
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from starlette.requests import Request

from features.contracts import event_schema, is_feature
from features.store import Store
from models import registry
from models.registry import metric_models, model_title
from models.tasks import task_names
from serving import lifecycle
from serving.app import NO_ROUTE, create_app
from serving.audit import key_fingerprint
from serving.deps import Backoff
from serving.settings import Role
from serving.state import ServedModel
from serving.ui import cards as ui_cards
from serving.ui.cards import training_params
from serving.ui.charts import (
    WaterfallStep,
    bar_chart,
    format_date,
    format_number,
    format_percent,
    format_points,
    format_signed_percent,
    gains_chart,
    histogram,
    reliability_chart,
    waterfall,
)
from serving.ui.history import customer_history, summarize_history
from serving.ui.pages import filters
from serving.ui.session import SESSION_COOKIE, SessionCodec
from tests.serving.conftest import (
    AS_OF,
    AUDIT_KEY,
    KEYS,
    SAME_ORIGIN,
    Released,
    StaticSource,
    headers,
    make_settings,
    names_said_twice,
    rule_bundle,
    wait_failed_once,
    wait_ready,
)
from tests.serving.ui_data import BUSY, UIWorld

PAGES = ["/ui/", "/ui/customers", "/ui/customers/c001", "/ui/models/churn"]


@pytest.fixture
def registry_uri(world: UIWorld, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", world.uri)
    mlflow.set_tracking_uri(world.uri)
    mlflow.set_registry_uri(world.uri)
    yield world.uri
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


@pytest.fixture
def ui(world: UIWorld, registry_uri: str, tmp_path: Path) -> Iterator[TestClient]:
    """The real app loading champions from the registry and the snapshot from the store."""
    settings = make_settings(world.home)
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        yield client


def login(client: TestClient, role: str = "reviewer", target: str = "/ui/") -> None:
    r = client.post(
        "/ui/login",
        headers=SAME_ORIGIN,
        data={"api_key": KEYS[role], "next": target},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == target


class Collect(HTMLParser):
    """Collect the attributes of every start tag, with the id of the enclosing <svg>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str], str | None]] = []
        self._svg: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "svg":
            self._svg.append(found.get("id"))
        self.tags.append((tag, found, self._svg[-1] if self._svg else None))

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg" and self._svg:
            self._svg.pop()


def parse(text: str) -> Collect:
    parser = Collect()
    parser.feed(text)
    return parser


# --- access ---------------------------------------------------------------------------------


def test_pages_need_login_or_a_reviewer_key(ui: TestClient) -> None:
    for page in PAGES:
        r = ui.get(page, follow_redirects=False)
        assert r.status_code == 303, page
        assert r.headers["location"].startswith("/ui/login?next=")
        assert ui.get(page, headers={"X-API-Key": "nope"}).status_code == 401
        forbidden = ui.get(page, headers=headers("scorer"))
        assert forbidden.status_code == 403
        assert "scorer" in forbidden.text and "text/html" in forbidden.headers["content-type"]
        for role in ("reviewer", "admin"):
            assert ui.get(page, headers=headers(role)).status_code == 200, (page, role)
    # the login redirect keeps where the reviewer wanted to go
    r = ui.get("/ui/customers/c001?x=1", follow_redirects=False)
    assert r.headers["location"] == "/ui/login?next=%2Fui%2Fcustomers%2Fc001%3Fx%3D1"


def test_login_sets_a_signed_http_only_cookie_without_the_key(ui: TestClient) -> None:
    assert ui.get("/ui/login").status_code == 200
    r = ui.post(
        "/ui/login",
        headers=SAME_ORIGIN,
        data={"api_key": KEYS["reviewer"], "next": "/ui/customers"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/ui/customers"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=lax" in lowered and "path=/ui" in lowered
    assert "secure" not in lowered  # plain HTTP
    assert KEYS["reviewer"] not in cookie
    page = ui.get("/ui/customers")
    assert page.status_code == 200 and "Customers" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    # the session is for the pages only, never for the API
    assert ui.get("/v1/models").status_code == 401


def test_cookie_is_secure_outside_dev(world: UIWorld, registry_uri: str) -> None:
    # GUANXI_COOKIE_SECURE is on by default outside --dev, whatever scheme the request came in
    # on (behind a TLS proxy the service sees plain http)
    settings = make_settings(world.home, cookie_secure=None)
    with TestClient(create_app(settings), base_url="http://testserver") as c:
        r = c.post(
            "/ui/login",
            headers=SAME_ORIGIN,
            data={"api_key": KEYS["admin"]},
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert "secure" in r.headers["set-cookie"].lower()


def test_login_and_logout_work_behind_a_path_prefix(world: UIWorld, registry_uri: str) -> None:
    """Mounted under ``/crm`` (the ASGI ``root_path``), the browser is at ``/crm/ui/...``.

    The client's cookie jar sends a cookie back only under its ``Path``, as a browser does: the
    session cookie was scoped to ``/ui``, so a reviewer behind the prefix logged in and was sent
    to the login form again; and the page asked for was lost on the way (the overview instead).
    """
    with TestClient(create_app(make_settings(world.home)), root_path="/crm") as c:
        wait_ready(c)
        r = c.get("/crm/ui/customers?x=1", follow_redirects=False)
        assert r.headers["location"] == "/crm/ui/login?next=%2Fui%2Fcustomers%3Fx%3D1"
        form = c.get(r.headers["location"])
        assert 'value="/ui/customers?x=1"' in form.text
        assert 'action="/crm/ui/login"' in form.text
        r = c.post(
            "/crm/ui/login",
            headers=SAME_ORIGIN,
            data={"api_key": KEYS["reviewer"], "next": "/ui/customers?x=1"},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == "/crm/ui/customers?x=1"
        page = c.get("/crm/ui/customers", follow_redirects=False)
        assert page.status_code == 200, page.headers.get("location")
        assert "path=/crm/ui;" in r.headers["set-cookie"].lower()
        r = c.post("/crm/ui/logout", headers=SAME_ORIGIN, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/crm/ui/login"
        assert "path=/crm/ui;" in r.headers["set-cookie"].lower()
        assert SESSION_COOKIE not in c.cookies  # the jar dropped it: the same cookie was deleted
        assert c.get("/crm/ui/", follow_redirects=False).status_code == 303


def test_login_refuses_unknown_and_scorer_keys(ui: TestClient) -> None:
    r = ui.post("/ui/login", headers=SAME_ORIGIN, data={"api_key": "wrong"}, follow_redirects=False)
    assert r.status_code == 401 and "not known" in r.text and "set-cookie" not in r.headers
    r = ui.post(
        "/ui/login", headers=SAME_ORIGIN, data={"api_key": KEYS["scorer"]}, follow_redirects=False
    )
    assert r.status_code == 403 and "scorer" in r.text and "set-cookie" not in r.headers
    assert ui.get("/ui/", follow_redirects=False).status_code == 303


def test_a_bad_login_form_is_a_4xx_not_a_500(ui: TestClient) -> None:
    r = ui.post(
        "/ui/login", headers=SAME_ORIGIN, data={"api_key": "k" * 5000}, follow_redirects=False
    )
    # the pages' own error page, naming the form's field and what it takes (not the API's JSON)
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    assert "Cannot accept this form" in r.text
    assert "field &#39;api_key&#39; must have at most 1024 characters" in r.text
    assert "kkkk" not in r.text
    broken = ui.post(
        "/ui/login",
        content=b"--x\r\nnot a part",
        headers={**SAME_ORIGIN, "content-type": "multipart/form-data; boundary=x"},
        follow_redirects=False,
    )
    assert 400 <= broken.status_code < 500
    assert "set-cookie" not in broken.headers
    # more fields than the form has: a 422 naming the extra field, never a 500
    many = {"api_key": KEYS["reviewer"], **{f"f{i}": "x" for i in range(20)}}
    r = ui.post("/ui/login", headers=SAME_ORIGIN, data=many, follow_redirects=False)
    assert r.status_code == 422 and "set-cookie" not in r.headers
    assert "field &#39;f0&#39; is not one this page takes" in r.text
    assert "field &#39;f19&#39; is not one this page takes" in r.text
    r = ui.post("/ui/login", headers=SAME_ORIGIN, data={f"f{i}": "x" for i in range(1001)})
    assert 400 <= r.status_code < 500


def test_login_and_logout_refuse_cross_site_posts(ui: TestClient) -> None:
    for origin in ({}, {"Origin": "https://evil.example"}, {"Referer": "https://evil.example/x"}):
        r = ui.post(
            "/ui/login", headers=origin, data={"api_key": KEYS["reviewer"]}, follow_redirects=False
        )
        assert r.status_code == 403 and "set-cookie" not in r.headers, origin
    r = ui.post(
        "/ui/login",
        headers={"Referer": "http://testserver/ui/login"},
        data={"api_key": KEYS["reviewer"]},
        follow_redirects=False,
    )
    assert r.status_code == 303  # a browser that sends only a Referer of this site
    assert ui.post("/ui/logout", follow_redirects=False).status_code == 403
    assert ui.get("/ui/", follow_redirects=False).status_code == 200  # still logged in


def test_logout_revokes_the_session_server_side(ui: TestClient) -> None:
    login(ui)
    value = ui.cookies[SESSION_COOKIE]
    r = ui.post("/ui/logout", headers=SAME_ORIGIN, follow_redirects=False)
    assert r.status_code == 303
    ui.cookies.set(SESSION_COOKIE, value, path="/ui")  # a copy of the cookie, kept by someone
    assert ui.get("/ui/", follow_redirects=False).status_code == 303


def test_failed_logins_and_401s_back_off_per_client(
    world: UIWorld, registry_uri: str, tmp_path: Path
) -> None:
    settings = make_settings(world.home, auth_free_failures=3, auth_max_backoff_seconds=60)
    with TestClient(create_app(settings)) as c:
        wait_ready(c)
        for _ in range(3):
            r = c.post("/ui/login", headers=SAME_ORIGIN, data={"api_key": "guess"})
            assert r.status_code == 401
        assert c.get("/v1/models", headers={"X-API-Key": "guess"}).status_code == 401
        # past the free failures: every authenticated route waits, a good key included
        r = c.post("/ui/login", headers=SAME_ORIGIN, data={"api_key": KEYS["reviewer"]})
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        r = c.get("/v1/models", headers=headers())
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert c.get("/healthz").status_code == 200  # public routes are not held back


def test_backoff_doubles_up_to_the_most() -> None:
    now = [0.0]
    backoff = Backoff(free=2, most_seconds=5, clock=lambda: now[0])
    one = Request({"type": "http", "client": ("203.0.113.1", 1), "headers": []})
    other = Request({"type": "http", "client": ("203.0.113.2", 1), "headers": []})
    waits = []
    for _ in range(7):
        backoff.failed(one)
        waits.append(backoff.wait(one))
    assert waits == [0, 0, 1, 2, 4, 5, 5]
    assert backoff.wait(other) == 0  # per client
    now[0] = 5.0
    assert backoff.wait(one) == 0
    backoff.succeeded(one)
    backoff.failed(one)
    assert backoff.wait(one) == 0  # a success cleared the count


def _tampered(signature: str) -> str:
    """The signature with its first character changed: a byte of the digest changes whatever it was.

    Changing the last two characters to "AA" left a signature ending in "AA" as it was (1 in 1,024
    sessions), and the trailing character's low two bits are padding that base64 decoding ignores.
    """
    return ("B" if signature[0] == "A" else "A") + signature[1:]


def test_forged_session_and_open_redirect_are_refused(ui: TestClient, world: UIWorld) -> None:
    login(ui)
    value = ui.cookies[SESSION_COOKIE]
    payload, signature = value.rsplit(".", 1)
    other = SessionCodec(
        b"x" * 32, {KEYS["reviewer"]: Role.reviewer}, world.home / "sessions"
    ).issue(KEYS["reviewer"], time.time())
    for forged in (
        f"{payload}.{_tampered(signature)}",  # tampered signature
        f"{other.rsplit('.', 1)[0]}.{signature}",  # another payload under this signature
        other,  # signed with another secret
        "garbage",
    ):
        # the forged cookie alone: beside the login's in the jar, the client (httpx2) sent both
        # and the server read the login's, so the test tested nothing of the forgery
        ui.cookies.clear()
        ui.cookies.set(SESSION_COOKIE, forged, path="/ui")
        assert ui.get("/ui/", follow_redirects=False).status_code == 303
    ui.cookies.clear()  # the login's own cookie, set the same way, still gets in (review45)
    ui.cookies.set(SESSION_COOKIE, value, path="/ui")
    assert ui.get("/ui/", follow_redirects=False).status_code == 200
    for target in (
        "//evil.example/ui/",
        "https://evil.example/ui/",
        "/\\evil.example",
        "/ui/\\evil.example",
        "\\\\evil.example/ui/",
        "/ui",
        " //evil.example",
    ):
        r = ui.post(
            "/ui/login",
            headers=SAME_ORIGIN,
            data={"api_key": KEYS["reviewer"], "next": target},
            follow_redirects=False,
        )
        assert r.headers["location"] == "/ui/", target
        form = ui.get("/ui/login", params={"next": target})
        assert "evil.example" not in form.text, target


def test_logout_ends_the_session(ui: TestClient) -> None:
    login(ui)
    assert ui.get("/ui/", follow_redirects=False).status_code == 200
    r = ui.post("/ui/logout", headers=SAME_ORIGIN, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    assert ui.get("/ui/", follow_redirects=False).status_code == 303


def test_session_codec_expiry_idle_timeout_and_key_rotation(tmp_path: Path) -> None:
    keys = {"k-reviewer": Role.reviewer, "k-scorer": Role.scorer}
    where = tmp_path / "sessions"
    codec = SessionCodec(b"s" * 32, keys, where, max_age=100, idle_seconds=30)
    reviewer = (Role.reviewer, "k-reviewer")  # the role, and the key for the audit log
    value = codec.issue("k-reviewer", now=1000.0)
    assert codec.caller_of(value, now=1029.0) == reviewer
    assert codec.caller_of(value, now=1099.0) is None  # idle for 70 s > 30 s
    value = codec.issue("k-reviewer", now=1000.0)
    for now in (1020.0, 1040.0, 1060.0, 1080.0):  # in use: never idle 30 s
        assert codec.caller_of(value, now=now) == reviewer
    assert codec.caller_of(value, now=1100.0) is None  # expired
    assert codec.caller_of(None, now=1000.0) is None
    # the role follows the configuration: a key removed or demoted loses its sessions
    value = codec.issue("k-reviewer", now=1000.0)
    assert SessionCodec(b"s" * 32, {"other": Role.admin}, where).caller_of(value, 1000.0) is None
    demoted = SessionCodec(b"s" * 32, {"k-reviewer": Role.scorer}, where, max_age=100)
    assert demoted.caller_of(value, now=1000.0) == (Role.scorer, "k-reviewer")
    # another secret (another deployment) does not accept it
    assert SessionCodec(b"t" * 32, keys, where).caller_of(value, now=1000.0) is None
    # revoked: refused by every codec sharing the directory (every worker)
    SessionCodec(b"s" * 32, keys, where).revoke(value)
    assert codec.caller_of(value, now=1000.0) is None


# --- pages ----------------------------------------------------------------------------------


def test_customer_waterfall_matches_the_api(ui: TestClient) -> None:
    login(ui)
    api = ui.get("/v1/customers/c001/scores?explain=8&group=true", headers=headers("reviewer"))
    assert api.status_code == 200
    page = ui.get("/ui/customers/c001")
    assert page.status_code == 200
    tags = parse(page.text).tags
    for task, score in api.json()["scores"].items():
        if score["probability"] is None:
            continue
        bars = [a for t, a, svg in tags if t == "rect" and svg == f"waterfall-{task}"]
        steps = [a for a in bars if a.get("data-feature")]
        assert [a["data-feature"] for a in steps] == [r["feature"] for r in score["reasons"]]
        for bar, reason in zip(steps, score["reasons"], strict=True):
            assert float(bar["data-points"]) == pytest.approx(reason["contribution_points"])
        # base, every step (the rest included) and the total add up
        base, *moves, total = (float(a["data-points"]) for a in bars)
        assert total == pytest.approx(100 * score["probability"])
        assert base + sum(moves) == pytest.approx(total)
        assert f'data-probability="{score["probability"]}"' in page.text
        # reasons grouped by concept, each with its sentence
        for group in score["groups"]:
            for reason in group["reasons"]:
                assert reason["sentence"].rsplit(": ", 1)[0] in page.text
    assert "<title" in page.text and "<desc" in page.text


def test_customer_page_shows_history_segment_and_records_the_audit(
    ui: TestClient, world: UIWorld
) -> None:
    login(ui)
    page = ui.get(f"/ui/customers/{BUSY}")
    assert page.status_code == 200
    row = world.snapshot.filter(pl.col("customer_id") == BUSY).row(0, named=True)
    assert row["rfm_segment"].replace("_", " ") in page.text
    events = pl.read_parquet(world.events).filter(pl.col("customer_id") == BUSY)
    seen = events.filter(pl.col("ts").dt.date() <= AS_OF)
    assert seen.height < events.height  # one event after the snapshot day is left out
    assert f"{seen.height:,} events" in page.text
    assert 'id="orders"' in page.text and 'id="complaints"' in page.text
    assert ">open</span>" in page.text
    # a survey's score as the reasons say it ("last survey score 9 of 10"): it read "9.0"
    engagement = page.text[page.text.index('id="engagement"') :].split("</table>")[0]
    surveys = re.findall(r'<td>survey</td><td>\w+</td><td class="num">([^<]*)</td>', engagement)
    assert surveys and all(re.fullmatch(r"\d+ of 10", s) for s in surveys), surveys
    audit = list((world.home / "audit").glob("*.jsonl"))
    lines = [json.loads(x) for p in audit for x in p.read_text().splitlines()]
    assert any(line["role"] == "reviewer" for line in lines)
    assert all(BUSY not in line.values() for line in lines)  # hashes and macs are hex

    # sec32: the page's lines name the key the reviewer logged in with, as that key's own
    # requests do (they said only "reviewer": which reviewer saw the customer was lost)
    fingerprint = key_fingerprint(AUDIT_KEY.encode(), KEYS["reviewer"])
    by_key = ui.get(f"/ui/customers/{BUSY}", headers=headers("reviewer"))  # the key wins
    mine = {page.headers["X-Request-ID"], by_key.headers["X-Request-ID"]}
    audit = list((world.home / "audit").glob("*.jsonl"))
    lines = [json.loads(x) for p in audit for x in p.read_text().splitlines()]
    assert {line["key_fingerprint"] for line in lines if line["request_id"] in mine} == {
        fingerprint
    }


def test_scroll_boxes_are_named_regions_a_keyboard_reaches(ui: TestClient) -> None:
    """Every wide table's scroll box takes focus and has a name unique on its page, and every
    page opens with a link past the menu (the crawl checks both in Chromium too)."""
    login(ui)
    for path in ("/ui/customers", f"/ui/customers/{BUSY}", "/ui/models/churn"):
        page = ui.get(path)
        assert page.status_code == 200, path
        tags = parse(page.text).tags
        boxes = [
            a
            for tag, a, _ in tags
            if tag == "div" and {"scroll", "table-wrap"} & set(a.get("class", "").split())
        ]
        assert boxes, path
        assert all(a.get("tabindex") == "0" and a.get("role") == "region" for a in boxes), path
        names = [a.get("aria-label", "").strip() for a in boxes]
        assert all(names) and len(set(names)) == len(names), (path, names)
        # ui32b: nor the heading above it, which a screen reader then says twice
        assert not names_said_twice(page.text), path
        first = next(a for tag, a, _ in tags if tag == "a")
        assert first.get("href") == "#main" and first.get("class") == "skip-link", path


def test_unknown_customer_is_a_404_page(ui: TestClient) -> None:
    login(ui)
    r = ui.get("/ui/customers/nobody")
    assert r.status_code == 404 and "Customer not found" in r.text


def test_an_unknown_customer_with_whitespace_around_the_id_says_so(ui: TestClient) -> None:
    """serve31b: ``/ui/customers/c001%20`` was "No customer 'c001 ' in the snapshot" alone, where
    ``GET /v1/customers/c001%20/scores`` says the id has whitespace around it and whether the id
    without it is there: the page says it in the API's words."""
    login(ui)
    api = ui.get("/v1/customers/c001%20/scores", headers=headers()).json()["detail"]
    hint = api.split(": ", 1)[1]
    r = ui.get("/ui/customers/c001%20")
    assert r.status_code == 404 and "Customer not found" in r.text
    assert html.escape(f"{hint[:1].upper()}{hint[1:]}.") in r.text
    assert "the id is in the snapshot" in hint
    assert "whitespace" not in ui.get("/ui/customers/nobody").text


@pytest.mark.parametrize("sent", ["%20", "c001%0A", "%09%C2%A0"])
def test_a_blank_id_or_one_with_a_control_character_is_a_422_page(
    ui: TestClient, sent: str
) -> None:
    """serve30: the customer page said "Customer not found" for an id the API refuses as
    malformed (blank, a line break); it is the pages' 422 naming the address's part, in the
    words of the API's 422."""
    login(ui)
    r = ui.get(f"/ui/customers/{sent}")
    assert r.status_code == 422, r.text
    assert "Customer not found" not in r.text
    assert (
        "The address&#39;s part &#39;customer_id&#39; must be not blank, and no control "
        "characters (tab, line break, NUL, ...)." in r.text
    ), r.text


def test_an_error_page_leads_back_to_the_section_of_its_address(ui: TestClient) -> None:
    """ui30: a 404 or 422 page linked only to the overview; the section its address is under is
    read from the address (never the Referer, which anyone sets), and the overview kept."""
    login(ui)
    evil = {"Referer": "https://evil.example/phish"}
    for path, code, back in [
        ("/ui/customers/nobody", 404, ('/ui/customers">Back to the customer list</a>')),
        ("/ui/customers?page=abc", 422, ('/ui/customers">Back to the customer list</a>')),
        ("/ui/models/churn/extra", 404, ('/ui/models/churn">Back to the Churn model</a>')),
        ("/ui/value/segments/nope.txt", 404, ('/ui/value">Back to the value page</a>')),
        ("/ui/plan/2024", 404, ('/ui/plan">Back to the plan</a>')),
    ]:
        r = ui.get(path, headers=evil)
        assert r.status_code == code, path
        assert f'<a href="{back}' in r.text and ">Back to the overview</a>" in r.text, path
        assert "evil.example" not in r.text, path
    for path in ("/ui/models/nope", "/ui/custmers", "/ui/models"):
        r = ui.get(path)  # no section, or no page's: the overview alone
        assert r.status_code == 404 and r.text.count("Back to") == 1, path
    # behind a proxy's prefix the way back keeps it
    proxied = TestClient(ui.app, root_path="/crm").get("/crm/ui/value/nope")
    assert proxied.status_code == 404, proxied.text
    assert '<a href="/crm/ui/value">Back to the value page</a>' in proxied.text


def test_a_misspelt_task_in_a_model_pages_address_is_named_with_the_task_meant(
    ui: TestClient,
) -> None:
    """heavy36: /ui/models/chrun said "There is no task 'chrun'; tasks: ..." where --task and
    GUANXI_TASKS ask "(is it 'churn'?)"; a task no name is near is said as before."""
    login(ui)
    known = ", ".join(task_names())
    for path, said in [
        ("/ui/models/chrun", f"There is no task 'chrun' (is it 'churn'?); tasks: {known}."),
        ("/ui/models/Churn", f"There is no task 'Churn' (is it 'churn'?); tasks: {known}."),
        ("/ui/models/nope", f"There is no task 'nope'; tasks: {known}."),
    ]:
        r = ui.get(path)
        assert r.status_code == 404, path
        assert said in html.unescape(" ".join(r.text.split())), r.text


def test_a_mistyped_page_address_is_the_pages_error_page_not_json(ui: TestClient) -> None:
    """An address under /ui that no page has answered the API's JSON ``{"detail": "Not Found"}``
    (a 405 likewise): a person in a browser gets the pages' error page with a way back."""
    for who in ("anonymous", "reviewer"):
        if who == "reviewer":
            login(ui)
        r = ui.get("/ui/custmers")
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), who
        assert "<h1>Page not found</h1>" in r.text and ">Back to the overview</a>" in r.text
        # a reviewer keeps the menu and the way out; anyone else is offered the login
        assert ('aria-label="Main"' in r.text) == (who == "reviewer"), who
        assert (">Log in</a>" in r.text) == (who == "anonymous"), who
    wrong = ui.get("/ui/logout")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    assert "This page does not take a GET request." in wrong.text
    # the API and the static files keep their answers
    assert ui.get("/v1/nothing").json() == {"detail": NO_ROUTE}
    assert not ui.get("/ui/static/nothing.css").headers["content-type"].startswith("text/html")


def test_every_page_answers_head_as_get_without_a_body(ui: TestClient) -> None:
    """ui30: ``HEAD`` on a page was a 405 (a link checker saw every page as broken), where
    ``/healthz`` answers it since 68ca62c. It answers as ``GET``, without a body, and shows
    no one: nothing audited or counted as shown."""
    assert ui.head("/ui/customers", follow_redirects=False).status_code == 303  # no session
    login(ui)
    shown = re.compile(r"^guanxi_(page_scores_shown|values_served)_total\{.*$", re.M)
    before = shown.findall(ui.get("/metrics").text)
    for path in [*PAGES, "/ui/plan", "/ui/campaign", "/ui/value", "/ui/drift", "/ui/login"]:
        head = ui.head(path)
        assert head.status_code == 200 and head.content == b"", path
        assert head.headers["content-type"] == "text/html; charset=utf-8", path
        assert head.headers["content-security-policy"], path
    assert shown.findall(ui.get("/metrics").text) == before
    assert ui.head("/ui/customers/nobody").status_code == 404
    wrong = ui.post("/ui/customers", headers=SAME_ORIGIN)
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, HEAD"
    assert ui.get(f"/ui/customers/{BUSY}").status_code == 200  # a GET is audited as before
    assert shown.findall(ui.get("/metrics").text) != before


def test_a_customer_id_with_a_slash_reaches_the_customer_page(ui: TestClient) -> None:
    login(ui)
    r = ui.get("/ui/customers/shop%2F7")
    assert r.status_code == 404 and "No customer &#39;shop/7&#39;" in r.text
    # a line break reaches the page too (unlike a :path parameter), which refuses it (serve30)
    r = ui.get("/ui/customers/a%0Ab")
    assert r.status_code == 422 and "part &#39;customer_id&#39; must be not blank" in r.text


def test_customer_list_filters_sorts_and_pages(ui: TestClient, world: UIWorld) -> None:
    login(ui)
    first = ui.get("/ui/customers")
    assert first.status_code == 200
    assert f"{world.snapshot.height} of {world.snapshot.height} customers" in first.text
    assert "Page 1 of 2" in first.text
    second = ui.get("/ui/customers?page=2")
    assert "Page 2 of 2" in second.text

    def ids(text: str) -> list[str]:
        return [
            a["href"].rsplit("/", 1)[1]
            for t, a, _ in parse(text).tags
            if t == "a" and a.get("href", "").startswith("/ui/customers/")
        ]

    by_id = ids(ui.get("/ui/customers?sort=customer_id&order=asc").text)
    assert by_id == sorted(by_id) and len(by_id) == 50
    segment = world.snapshot.get_column("rfm_segment").drop_nulls().mode()[0]
    expected = world.snapshot.filter(pl.col("rfm_segment") == segment).height
    page = ui.get(f"/ui/customers?segment={segment}")
    assert f"{expected} of {world.snapshot.height}" in page.text
    found = ids(ui.get("/ui/customers?q=C01").text)
    assert found and all("c01" in f for f in found)
    table = ui.app.state.holder.current.tables["churn"]  # type: ignore[attr-defined]
    n_high = int((table.decile[table.top[table.top >= 0]] <= 2).sum())
    high = ui.get("/ui/customers?task=churn&band=high&sort=customer_id").text
    assert f"{n_high} of {world.snapshot.height}" in high
    # unknown sort and task fall back to the defaults
    assert ui.get("/ui/customers?sort=nope&task=nope&order=x").status_code == 200


def test_customer_list_filters_the_customers_without_a_segment(
    ui: TestClient, world: UIWorld
) -> None:
    """The segment filter offers the customers without an RFM segment, keyed "none" as in the
    value page's URLs and named "unsegmented" as on every page: it had no option for them."""
    login(ui)
    unsegmented = world.snapshot.filter(pl.col("rfm_segment").is_null()).height
    assert unsegmented
    page = ui.get("/ui/customers?segment=none")
    assert re.search(r'<option value="none"\s+selected>unsegmented</option>', page.text)
    assert f"{unsegmented} of {world.snapshot.height}" in page.text
    # web33: each of them read "not available" in the RFM segment column, under that filter
    rows = page.text.split("<tbody>", 1)[1].split("</tbody>", 1)[0].split("<tr>")[1:]
    cells = [re.findall(r"<td>([^<]*)</td>", row)[0] for row in rows]
    assert cells and set(cells) == {"unsegmented"}, cells


def test_the_overview_names_the_customers_without_a_segment_as_the_list_does(
    ui: TestClient, world: UIWorld
) -> None:
    """ui33: the overview's segment chart named them "no orders", where the list's filter (which
    the reviewer goes to next), the value, plan and campaign pages say "unsegmented"."""
    login(ui)
    unsegmented = world.snapshot.filter(pl.col("rfm_segment").is_null()).height
    page = ui.get("/ui/").text
    assert f'data-label="unsegmented" data-value="{float(unsegmented)!r}"' in page
    assert "Unsegmented: customers without an order" in page and "no orders" not in page


@pytest.mark.parametrize(
    ("query", "caption"),
    [
        ("", "Customers, sorted by churn probability (descending)"),
        ("?task=cross_sell", "Customers, sorted by cross-sell probability (descending)"),
        ("?sort=recency_days&order=asc", "Customers, sorted by days since order (ascending)"),
        ("?sort=customer_id", "Customers, sorted by customer (ascending)"),
        ("?sort=spend_total", "Customers, sorted by spend (descending)"),
    ],
)
def test_the_customer_lists_caption_names_its_sort_as_its_header_does(
    client: TestClient, query: str, caption: str
) -> None:
    """serve28: the caption a screen reader reads named the sort by its column's key: "sorted
    by churn p", "recency days", "cross sell p". It now says it as the headers do."""
    text = client.get(f"/ui/customers{query}", headers=headers("reviewer")).text
    assert f'<caption class="sr-only">{caption}</caption>' in text


def test_each_band_column_of_the_customer_list_names_its_task(client: TestClient) -> None:
    """ui32: the list's four band columns were each headed "Band", so a screen reader moving along
    a row said "Band, high" with no task; each header reads "Churn Band" and so on (the task's
    name hidden, the column shows "Band" as before)."""
    text = client.get("/ui/customers", headers=headers("reviewer")).text
    header = text.split("<thead>", 1)[1].split("</thead>", 1)[0]
    assert '<span class="sr-only">Churn </span>Band</th>' in header
    assert '<span class="sr-only">Cross-sell </span>Band</th>' in header
    assert header.count('<th scope="col"><span class="sr-only">') == len(task_names())
    assert '<th scope="col">Band</th>' not in header


def test_customers_outside_a_population_have_their_own_filter_not_a_band(
    ui: TestClient, world: UIWorld
) -> None:
    """Never-ordered customers are 'prospect' for churn: counted apart on the overview, their own
    filter in the list, never in a churn band."""
    login(ui)
    prospects = set(
        world.snapshot.filter(pl.col("recency_days").is_null())["customer_id"].to_list()
    )
    assert prospects
    overview = ui.get("/ui/").text
    assert f'data-status="prospect">prospect</span> {len(prospects)} ' in overview
    listed = ui.get("/ui/customers?task=churn&band=prospect&sort=customer_id").text
    assert f"{len(prospects)} of {world.snapshot.height} customers" in listed
    in_bands = 0
    for band in ("high", "medium", "low"):
        page = ui.get(f"/ui/customers?task=churn&band={band}&sort=recency_days&order=desc").text
        in_bands += int(re.search(rf"([\d,]+) of {world.snapshot.height} customers", page)[1])
        shown = {
            a["href"].rsplit("/", 1)[1]
            for t, a, _ in parse(page).tags
            if t == "a" and a.get("href", "").startswith("/ui/customers/")
        }
        assert not shown & prospects, band
    assert in_bands == world.snapshot.height - len(prospects)  # the bands hold the scored only
    one = sorted(prospects)[0]
    page = ui.get(f"/ui/customers/{one}").text
    assert 'data-status="prospect"' in page and "no order yet" in page


def test_a_band_or_status_the_task_has_not_is_said_not_dropped_in_silence(
    ui: TestClient, world: UIWorld
) -> None:
    """The band list is the task's: 'lapsed' kept from churn's list when the task changed to one
    that scores everyone (or a band mistyped in the address) was dropped without a word, and
    the whole list read as the lapsed customers' scores."""
    login(ui)
    everyone = f"{world.snapshot.height:,} of {world.snapshot.height:,} customers"
    page = ui.get("/ui/customers?task=churn&band=lapsd").text
    assert everyone in page and 'id="band-unfiltered"' in page
    assert "Churn has no band or status “lapsd” (its customers not scored are " in page
    assert "so every band is shown." in page
    page = ui.get("/ui/customers?task=churn&band=%3Cb%3E").text
    assert "“&lt;b&gt;”" in page  # the address's text, escaped
    assert 'id="band-unfiltered"' not in ui.get("/ui/customers?task=churn&band=high").text
    assert 'id="band-unfiltered"' not in ui.get("/ui/customers?task=churn").text


def test_a_segment_no_customer_is_in_is_said_not_dropped_in_silence(
    ui: TestClient, world: UIWorld
) -> None:
    """web33: a segment the snapshot holds no customer of (a bookmark from an earlier snapshot, a
    typo in the address) was dropped without a word, as a band was before ui30: the whole list
    read as that segment's customers. It is said, as the band is."""
    login(ui)
    everyone = f"{world.snapshot.height:,} of {world.snapshot.height:,} customers"
    for given, said in [("champion", "champion"), ("%3Cb%3E", "&lt;b&gt;")]:
        page = ui.get(f"/ui/customers?segment={given}").text
        assert everyone in page and 'id="segment-unfiltered"' in page, given
        assert f"in the RFM segment “{said}”, so every segment is shown." in page, given
    present = world.snapshot["rfm_segment"].drop_nulls()[0]
    assert 'id="segment-unfiltered"' not in ui.get(f"/ui/customers?segment={present}").text
    assert 'id="segment-unfiltered"' not in ui.get("/ui/customers?segment=none").text
    assert 'id="segment-unfiltered"' not in ui.get("/ui/customers?segment=").text


def test_overview_shows_models_grades_and_distributions(ui: TestClient) -> None:
    login(ui)
    page = ui.get("/ui/")
    assert page.status_code == 200
    svgs = [a.get("id") for t, a, _ in parse(page.text).tags if t == "svg"]
    assert {"hist-churn", "hist-repurchase", "hist-cross_sell", "segments"} <= set(svgs)
    assert "Grade B" in page.text
    assert 'role="img"' in page.text
    assert 'aria-labelledby="hist-churn-title hist-churn-desc"' in page.text


def test_model_card_metrics_match_mlflow(
    ui: TestClient, world: UIWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("a page view downloaded a bundle")

    monkeypatch.setattr("models.registry.load_model", no_download)
    login(ui)
    page = ui.get("/ui/models/churn")
    assert page.status_code == 200
    champion, challenger = world.versions["churn"]
    cells = [a for t, a, _ in parse(page.text).tags if t == "td" and "data-metric" in a]
    client = MlflowClient()
    for slot, version in (("champion", champion), ("challenger", challenger)):
        metrics = client.get_run(world.run_ids["churn", version]).data.metrics
        shown = {a["data-metric"]: float(a["data-value"]) for a in cells if a["data-slot"] == slot}
        assert shown == pytest.approx(metrics)
        assert f"v{version}" in page.text
    svgs = {a.get("id") for t, a, _ in parse(page.text).tags if t == "svg"}
    for slot in ("champion", "challenger"):
        assert {f"gains-{slot}", f"reliability-{slot}"} <= svgs
    assert "shap-champion" in svgs and "shap-challenger" not in svgs  # served bundle only
    # light35: the chart named an input "days since last order", the drift page and the
    # README's feature table days_since_last_order; it names each by its column now
    shap = page.text.split('id="shap-champion"', 1)[1].split("</table>", 1)[0]
    inputs = re.findall(r'<th scope="row">([^<]+)</th>', shap)
    assert inputs and all(is_feature(name) for name in inputs), inputs
    assert world.run_ids["churn", champion][:12] in page.text
    assert "Grade A" in page.text and "Grade B" in page.text
    # the challenger's change since the previous version (the champion), as MLflow has it
    delta = (
        client.get_run(world.run_ids["churn", challenger]).data.metrics["xgboost_roc_auc"]
        - client.get_run(world.run_ids["churn", champion]).data.metrics["xgboost_roc_auc"]
    )
    assert f"AUC {delta:+.4f}" in page.text
    assert "2 Nov 2023" in page.text  # cutoffs, formatted for people
    assert ui.get("/ui/models/nope").status_code == 404


def test_model_page_opens_on_the_card_with_the_task_headline(ui: TestClient) -> None:
    """The card (grade, the spec's own metrics against the rule, gains) comes before the full
    metrics table; counts read as integers; the change column only where there is a change."""
    from models.tasks import get_task

    login(ui)
    text = ui.get("/ui/models/churn").text
    card, table = text.index('id="card-champion"'), text.index('id="metrics"')
    assert card < text.index('id="headline-champion"') < text.index('id="gains-champion"') < table
    headline = [
        a["data-headline"] for t, a, _ in parse(text).tags if t == "td" and "data-headline" in a
    ]
    recorded = {"roc_auc", "pr_auc", "top_decile_lift", "brier", "log_loss"}  # ui_data
    spec = [m for m in get_task("churn").metrics if m in recorded]
    assert headline == spec * 2  # champion and challenger, in the spec's order
    assert ">3,535<" in text and "3,535.0000" not in text
    # the champion (v1) has no previous version: no empty change column for it
    head = text[table : text.index("</thead>", table)]
    assert head.count("Δ vs v") == 1
    assert "Δ</th>" not in head


def test_model_card_falls_back_to_the_served_model(
    ui: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*args: object) -> None:
        raise MlflowException("registry down")

    monkeypatch.setattr("serving.ui.pages.load_cards", unavailable)
    login(ui)
    page = ui.get("/ui/models/repurchase")
    assert page.status_code == 200
    assert "could not be read" in page.text and 'data-metric="xgboost_roc_auc"' in page.text


def test_model_card_of_a_registry_not_read_claims_no_count_of_versions(
    ui: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registry that could not be read was said to hold "0 registered versions"
    above the served model's card; how many it holds is not known."""

    def unavailable(task: str) -> list[registry.VersionInfo]:
        raise MlflowException("registry down")

    monkeypatch.setattr(registry, "list_versions", unavailable)
    login(ui)
    page = ui.get("/ui/models/churn")
    assert page.status_code == 200, page.text
    text = " ".join(page.text.split())
    assert "The MLflow registry could not be read; showing the served model only" in text
    assert "registered versions not known (the registry could not be read) · serving v" in text
    assert "0 registered versions" not in text
    assert 'data-metric="xgboost_roc_auc"' in text  # the served model's card


def test_model_card_with_nothing_loaded_and_no_registry_says_what_is_not_known(
    tmp_path: Path, source: StaticSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the registry unreachable from the start (nothing loaded), the model page
    said "0 registered versions" and "No champion or challenger is registered for Churn. Train
    one with guanxi train" right under the notice that the registry could not be read. Neither
    is known: it says so, and why nothing is shown."""

    def unavailable(task: str) -> list[registry.VersionInfo]:
        raise MlflowException("registry down")

    monkeypatch.setattr(registry, "list_versions", unavailable)
    source.failure = ConnectionError("registry at http://127.0.0.1:9 unreachable")
    with TestClient(create_app(make_settings(tmp_path / "home"), source)) as client:
        wait_failed_once(client)
        login(client)
        page = client.get("/ui/models/churn")
    assert page.status_code == 200, page.text
    text = " ".join(page.text.split())
    # no served model to show either: the notice does not say it shows one
    assert "The MLflow registry could not be read (request id " in text
    assert "showing the served model only" not in text
    assert "registered versions not known (the registry could not be read)" in text
    assert (
        "The registry could not be read, so the Churn champion and challenger are not known, "
        "and this server serves no Churn model to show in their place." in text
    )
    assert "0 registered versions" not in text
    assert "No champion or challenger is registered" not in text and "guanxi train" not in text
    # the registry's page, answered while the models load (the other pages' 503): it says so
    assert "no model served yet (the models are loading; the last attempt failed)" in text


def test_a_task_left_out_by_guanxi_tasks_is_not_said_loading_while_the_models_load(
    tmp_path: Path, source: StaticSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With GUANXI_TASKS=churn and nothing loaded yet, /ui/models/cross_sell said both "no
    model served yet (the models are loading)" and "not served by this server": no load serves
    it. It says the latter only; the served task's page says the former."""

    def unavailable(task: str) -> list[registry.VersionInfo]:
        raise MlflowException("registry down")

    monkeypatch.setattr(registry, "list_versions", unavailable)
    source.failure = ConnectionError("registry at http://127.0.0.1:9 unreachable")
    settings = make_settings(tmp_path / "home", tasks=("churn",))
    with TestClient(create_app(settings, source)) as client:
        wait_failed_once(client)
        login(client)
        left_out = client.get("/ui/models/cross_sell")
        served = client.get("/ui/models/churn")
    assert left_out.status_code == served.status_code == 200, left_out.text
    left_text, served_text = (" ".join(r.text.split()) for r in (left_out, served))
    assert "cross_sell is not served by this server (GUANXI_TASKS=churn)" in left_text
    assert "no model served yet" not in left_text
    assert "no model served yet (the models are loading; the last attempt failed)" in served_text
    assert "not served by this server" not in served_text


def test_model_card_waits_for_a_hung_registry_no_longer_than_the_timeout(
    ui: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    released: Released,
) -> None:
    """qa44 L5: with the MLflow server hung (SIGSTOP'd) /ui/models/churn answered after 62 s,
    the cards' registry reads bounded by MLflow's client timeout alone (20 s x 3 attempts).
    They are waited for as GET /v1/models waits for ``reload_pending`` (PENDING_TIMEOUT): the
    page then shows the served model under the notice that the registry could not be read,
    while the registry's look is still hung, and the log says why, with the request id."""
    caplog.set_level(logging.INFO, logger="serving.lifecycle")
    monkeypatch.setattr(lifecycle, "PENDING_TIMEOUT", 0.05)
    answered = threading.Event()

    def hung(task: str) -> list[registry.VersionInfo]:
        released.wait(30)  # never hang the test itself
        answered.set()
        raise MlflowException("registry down")

    monkeypatch.setattr(registry, "list_versions", hung)
    login(ui)
    try:
        page = ui.get("/ui/models/churn")
        assert not answered.is_set()  # the page came while the registry's look was hung
    finally:
        released.release()  # the look ends now, its late line logged (not as the test ends)
    assert page.status_code == 200, page.text
    assert "The MLflow registry could not be read; showing the served model only" in page.text
    assert 'data-metric="xgboost_roc_auc"' in page.text  # the served model's card
    said = [r for r in caplog.records if "registry not read" in r.getMessage()]
    request_id = re.search(r"request id ([0-9a-f]{32})", page.text)
    assert request_id is not None
    page_said = (
        f"registry not read for the churn model page (request {request_id[1]}), the served "
        "model shown"
    )
    assert [(r.levelno, r.getMessage()) for r in said] == [
        # as the page's registry failure was before it was waited for
        (logging.WARNING, f"{page_said}: no answer within 0.05 s"),
        (logging.WARNING, f"{page_said}; answered late: MlflowException: registry down"),
    ]


def test_model_card_built_slowly_after_the_registry_answered_says_it_is_being_prepared(
    ui: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Brief serving47 item 1: the page's bound covered building the cards cold too (artifacts,
    global SHAP), so under load it said "The MLflow registry could not be read" while the
    registry had answered at once. The registry's calls alone are the registry's: with them
    answered and the card build slow, the page says it is still being prepared, the log says so
    at INFO, and the look goes on to fill the cards for the next view."""
    caplog.set_level(logging.INFO, logger="serving.lifecycle")
    # the registry double: what the registry answers, read before, answered at once
    versions = registry.list_versions("churn")
    runs = {v.run_id: MlflowClient().get_run(v.run_id) for v in versions if v.run_id}
    tables = {(r, t): registry.read_table(r, t) for r in runs for t in ("gains", "reliability")}
    monkeypatch.setattr(registry, "list_versions", lambda task: versions)
    monkeypatch.setattr(MlflowClient, "get_run", lambda client, run_id: runs[run_id])
    monkeypatch.setattr(registry, "read_table", lambda run_id, table: tables[run_id, table])
    building, release = threading.Event(), threading.Event()
    importance = ui_cards._importance

    def slow(*args: Any) -> list[tuple[str, float]]:  # the served card's global SHAP, cold
        building.set()
        release.wait(30)  # never hang the test itself
        return importance(*args)

    monkeypatch.setattr(ui_cards, "_importance", slow)
    login(ui)
    try:
        page = ui.get("/ui/models/churn")
        assert building.is_set() and not release.is_set()  # the page came while building
    finally:
        release.set()
    assert page.status_code == 200, page.text
    text = " ".join(page.text.split())
    request_id = re.search(r"request id ([0-9a-f]{32})", text)
    assert request_id is not None
    assert "could not be read" not in text
    assert (
        "This page is still being prepared (the registry answered; building the cards goes on); "
        f"showing the served model only: reload it in a moment (request id {request_id[1]})."
    ) in text
    assert "registered versions not known (the page is still being prepared)" in text
    assert 'data-metric="xgboost_roc_auc"' in text  # the served model's card meanwhile
    said = [r for r in caplog.records if "registry" in r.getMessage()]
    assert [(r.levelno, r.getMessage()) for r in said] == [
        (
            logging.INFO,
            f"registry read but not prepared for the churn model page (request {request_id[1]}), "
            f"the served model shown: not done within {lifecycle.PENDING_TIMEOUT:g} s",
        )
    ]
    looks = ui.app.state.ui_cards.looks  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    while len(looks) and time.monotonic() < deadline:  # the look ends, its cards kept
        time.sleep(0.02)
    again = " ".join(ui.get("/ui/models/churn").text.split())
    assert "still being prepared" not in again and "could not be read" not in again
    assert "registered versions not known" not in again


def test_model_card_view_past_the_deadline_of_a_look_still_building_waits_on_it(
    ui: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Review48s M1: a view past the deadline of a look whose registry had answered and whose
    cards were still being built started a look of its own, which built the same card again (a
    second cold global SHAP run beside the first, one more for each view 2 s later, on a machine
    already loaded). Such a look is the one the next view waits on: one look, one build, and
    the next view after it ends shows the cards it built."""
    caplog.set_level(logging.INFO, logger="serving.lifecycle")
    monkeypatch.setattr(lifecycle, "PENDING_TIMEOUT", 1.0)
    # the registry double: what the registry answers, read before, answered at once
    versions = registry.list_versions("churn")
    runs = {v.run_id: MlflowClient().get_run(v.run_id) for v in versions if v.run_id}
    tables = {(r, t): registry.read_table(r, t) for r in runs for t in ("gains", "reliability")}
    monkeypatch.setattr(registry, "list_versions", lambda task: versions)
    monkeypatch.setattr(MlflowClient, "get_run", lambda client, run_id: runs[run_id])
    monkeypatch.setattr(registry, "read_table", lambda run_id, table: tables[run_id, table])
    building, release = threading.Event(), threading.Event()
    builds: list[str] = []
    importance = ui_cards._importance

    def slow(*args: Any) -> list[tuple[str, float]]:  # the served card's global SHAP, cold
        builds.append("churn")
        building.set()
        release.wait(30)  # never hang the test itself
        return importance(*args)

    monkeypatch.setattr(ui_cards, "_importance", slow)
    looks = held_looks(ui)
    login(ui)
    try:
        first = ui.get("/ui/models/churn")
        assert building.is_set() and not release.is_set()  # the page came while building
        looks.past_deadline()  # the next view comes after the look's deadline
        second = ui.get("/ui/models/churn")
        assert not release.is_set()
    finally:
        release.set()
    for page in (first, second):
        assert page.status_code == 200, page.text
        assert "This page is still being prepared" in " ".join(page.text.split())
    assert len(looks.started) == 1  # the second view waited on the look still building
    deadline = time.monotonic() + 30
    while len(looks) and time.monotonic() < deadline:  # the look ends, its cards kept
        time.sleep(0.02)
    assert not len(looks)
    again = " ".join(ui.get("/ui/models/churn").text.split())
    assert "still being prepared" not in again and "could not be read" not in again
    assert builds == ["churn"]  # one cold global SHAP run for the three views
    assert len(looks.started) == 2  # the view after it asks the registry again, cards cached


class HeldLooks(lifecycle.RunningLooks):
    """The model pages' registry looks, each started with a deadline the test moves itself.

    A view joins a look started before it only within that look's deadline: with the deadline
    PENDING_TIMEOUT after the look's start, a view the machine's load delayed past it started a
    look of its own and the test failed. Each look here keeps its deadline 30 s out until the test
    ends it (:meth:`past_deadline`); a view still waits at most PENDING_TIMEOUT on it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.started: list[Any] = []

    def start(self, key: Hashable, look: Callable[[], Any]) -> Any:
        running = super().start(key, look)
        if not any(running is seen for seen in self.started):
            running.started = time.monotonic() + 30 - lifecycle.PENDING_TIMEOUT  # deadline 30 s out
            self.started.append(running)
        return running

    def past_deadline(self) -> None:
        """Put every look started past its deadline: a view now starts a look of its own."""
        for running in self.started:
            running.started = time.monotonic() - lifecycle.PENDING_TIMEOUT - 0.01


def held_looks(client: TestClient) -> HeldLooks:
    """Give the model pages of ``client``'s app looks whose deadline the test moves."""
    looks = HeldLooks()
    client.app.state.ui_cards.looks = looks  # type: ignore[attr-defined]
    return looks


def test_model_card_views_share_one_look_at_a_hung_registry(
    ui: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Review of qa44 L5: each view of /ui/models/<task> started its own registry look, and with
    the registry hung each left a thread (holding a connection and the view's state) for MLflow's
    62 s. Views while a look runs (within its deadline) wait on that look instead: three views
    start one look. Once it ends, late, its failure is logged once, and the next view starts a
    new look."""
    caplog.set_level(logging.INFO, logger="serving.lifecycle")
    monkeypatch.setattr(lifecycle, "PENDING_TIMEOUT", 1.0)
    release, started = threading.Event(), threading.Event()
    calls: list[str] = []

    def hung(task: str) -> list[registry.VersionInfo]:
        calls.append(task)
        started.set()
        release.wait(30)  # never hang the test itself
        raise MlflowException("registry down")

    monkeypatch.setattr(registry, "list_versions", hung)
    held_looks(ui)  # the views join within the look's deadline however slow the machine
    login(ui)
    try:
        pages: list[httpx.Response] = []
        views = [
            threading.Thread(target=lambda: pages.append(ui.get("/ui/models/churn")))
            for _ in range(3)
        ]
        views[0].start()
        assert started.wait(5)
        for view in views[1:]:  # within the first view's look's deadline
            view.start()
        for view in views:
            view.join(10)
        assert len(pages) == 3
        assert calls == ["churn"]  # one look for the three views
    finally:
        release.set()
    assert all("showing the served model only" in page.text for page in pages)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(
        "answered late" in r.getMessage() for r in caplog.records
    ):
        time.sleep(0.01)
    said = [r.getMessage() for r in caplog.records if "registry not read" in r.getMessage()]
    assert len(said) == 4, said  # three views late, the look's own failure once
    assert said[-1].startswith("registry not read for the churn model page (request ")
    assert said[-1].endswith(
        "the served model shown; answered late: MlflowException: registry down"
    )
    page = ui.get("/ui/models/churn")  # the look is over: a view starts another
    assert calls == ["churn", "churn"]
    assert "showing the served model only" in page.text


def test_model_card_view_after_a_hung_look_deadline_asks_the_registry_again(
    ui: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    released: Released,
) -> None:
    """Review of the shared looks: a view arriving after the running look's deadline waited 0 s
    on it and showed the served model only until that look ended (62 s with the registry hung),
    even with the registry answering again. A view within the deadline still waits on the
    running look; one after it starts a look of its own, which reads the registry back."""
    caplog.set_level(logging.INFO, logger="serving.lifecycle")
    monkeypatch.setattr(lifecycle, "PENDING_TIMEOUT", 1.0)
    started = threading.Event()
    calls: list[str] = []
    answering = registry.list_versions

    def first_hangs(task: str) -> list[registry.VersionInfo]:
        calls.append(task)
        if len(calls) > 1:
            return answering(task)
        started.set()
        released.wait(30)  # never hang the test itself
        raise MlflowException("registry down")

    monkeypatch.setattr(registry, "list_versions", first_hangs)
    looks = held_looks(ui)
    login(ui)
    pages: list[httpx.Response] = []
    try:
        first = threading.Thread(target=lambda: pages.append(ui.get("/ui/models/churn")))
        first.start()
        assert started.wait(5)
        shared = ui.get("/ui/models/churn")  # within the running look's deadline
        first.join(10)
        assert calls == ["churn"]  # the two views waited on one look
        assert "showing the served model only" in shared.text
        assert "showing the served model only" in pages[0].text
        looks.past_deadline()
        page = ui.get("/ui/models/churn")  # after its deadline, the look still hung
        assert calls == ["churn", "churn"]  # a look of its own
    finally:
        released.release()  # the look ends now, its late line logged
    assert page.status_code == 200, page.text
    assert "could not be read" not in page.text
    said = [r.getMessage() for r in caplog.records if "no answer within" in r.getMessage()]
    assert len(said) == 2, said  # the two views of the hung look only


def test_model_card_views_of_another_load_do_not_share_its_look(
    ui: TestClient, monkeypatch: pytest.MonkeyPatch, released: Released
) -> None:
    """The looks were shared by (task, the state's loaded_at): a load with the same loaded_at
    (a clock's resolution) shared the look of the load before, whose cards read the state it
    was given. They are shared by the state itself: a view of another load starts its own."""
    monkeypatch.setattr(lifecycle, "PENDING_TIMEOUT", 2.0)
    started = threading.Event()
    calls: list[str] = []
    answering = registry.list_versions

    def first_hangs(task: str) -> list[registry.VersionInfo]:
        calls.append(task)
        if len(calls) > 1:
            return answering(task)
        started.set()
        released.wait(30)  # never hang the test itself
        raise MlflowException("registry down")

    monkeypatch.setattr(registry, "list_versions", first_hangs)
    held_looks(ui)  # the second view comes within the first look's deadline
    login(ui)
    holder = ui.app.state.holder  # type: ignore[attr-defined]
    pages: list[httpx.Response] = []
    first = threading.Thread(target=lambda: pages.append(ui.get("/ui/models/churn")))
    try:
        first.start()
        assert started.wait(5)
        # another load, loaded at the same instant
        holder.swap(replace(holder.current, loaded_at=holder.current.loaded_at))
        page = ui.get("/ui/models/churn")  # well within the running look's deadline
        assert calls == ["churn", "churn"]  # a look of its own
    finally:
        released.release()  # the look ends now, its late line logged
        first.join(10)
    assert not first.is_alive()
    assert page.status_code == 200, page.text
    assert "could not be read" not in page.text
    assert "showing the served model only" in pages[0].text


# --- charts and history (pure) --------------------------------------------------------------


def test_waterfall_svg_is_well_formed_and_accessible() -> None:
    steps = [WaterfallStep("3 complaints <open>", "complaints", 4.0), WaterfallStep("x", "y", -1.5)]
    chart = waterfall(steps, 20.0, 22.5, chart_id="w", title="T & t")
    root = ET.fromstring(str(chart.svg))
    ns = "{http://www.w3.org/2000/svg}"
    assert root.get("role") == "img" and root.get("aria-labelledby") == "w-title w-desc"
    assert root.find(f"{ns}title").text == "T & t"  # type: ignore[union-attr]
    points = [float(r.get("data-points")) for r in root.iter(f"{ns}rect")]  # type: ignore[arg-type]
    assert points == [20.0, 4.0, -1.5, 22.5]
    assert chart.rows[1] == ("3 complaints <open>", "+4.0 pts", "24.0%")
    assert chart.rows[-1] == ("This customer", "+2.5 pts", "22.5%")


def test_chart_descriptions_count_one_in_the_singular() -> None:
    """serve28: the text a screen reader reads of a chart said "1 bars of Investment by
    segment" (a plan buying in one segment), "1 contributions move it" (the one-input rule's
    waterfall on every customer page) and "1 customers; median probability"."""
    bars = bar_chart([("at risk", 1.0)], chart_id="b", title="t", value_label="Investment")
    assert bars.description == "1 bar of Investment; the largest is at risk (1.000)."
    step = [WaterfallStep("bought one", "x", 2.0)]
    one = waterfall(step, 40.0, 42.0, chart_id="w", title="t")
    assert "; 1 contribution moves it to 42.0% (+2.0 pts)." in one.description
    two = waterfall(step * 2, 40.0, 44.0, chart_id="w", title="t")
    assert "; 2 contributions move it to 44.0% (+4.0 pts)." in two.description
    assert histogram(np.array([0.5]), chart_id="h", title="t").description.startswith(
        "1 customer; median"
    )


def test_waterfall_labels_wrap_and_are_never_cut() -> None:
    """A long reason label wraps onto lines that hold every word; hover and table hold it too."""
    long = "an unknown number of unresolved complaints in the last 90 days and then some more words"
    chart = waterfall([WaterfallStep(long, "f", 3.0)], 10.0, 13.0, chart_id="w", title="t")
    root = ET.fromstring(str(chart.svg))
    ns = "{http://www.w3.org/2000/svg}"
    step = next(g for g in root.iter(f"{ns}g") if g.get("class") == "step up")
    spans = [t.text for t in step.iter(f"{ns}tspan")]
    assert len(spans) > 1 and " ".join(spans) == long  # type: ignore[arg-type]
    assert all(len(t) <= 44 for t in spans)  # type: ignore[arg-type]
    assert "…" not in str(chart.svg)
    assert step.find(f"{ns}title").text == long  # type: ignore[union-attr]
    assert chart.rows[1][0] == long
    # the wrapped row is taller: its bar is still inside the drawing
    heights = [float(r.get("y")) for r in root.iter(f"{ns}rect")]  # type: ignore[arg-type]
    assert heights == sorted(heights) and heights[-1] < float(root.get("height"))  # type: ignore[arg-type]


def test_other_charts_are_well_formed_with_tables() -> None:
    charts = [
        bar_chart([("a", 0.5), ("b", 0.25)], chart_id="b", title="B", value_label="v"),
        gains_chart({"xgboost": [(0.1, 0.3), (1.0, 1.0)]}, chart_id="g", title="G"),
        reliability_chart(
            {"xgboost": [(0.1, 0.12, 500), (0.5, 0.4, 300), (0.9, 0.1, 3)]},
            chart_id="r",
            title="R",
        ),
        histogram(np.array([0.01, 0.5, 0.51, np.nan, 0.99]), chart_id="h", title="H", bins=10),
        histogram(np.array([]), chart_id="e", title="E"),
        gains_chart({}, chart_id="g0", title="none"),
    ]
    for chart in charts:
        ET.fromstring(str(chart.svg))
        assert chart.description and all(len(r) == len(chart.columns) for r in chart.rows)
    assert [r[1] for r in charts[3].rows] == ["1", "0", "0", "0", "0", "2", "0", "0", "0", "1"]
    # the histogram's axes both say what they count: probability across, customers up
    axes = [t.text for t in ET.fromstring(str(charts[3].svg)).iter() if t.tag.endswith("text")]
    assert "Probability" in axes and "Customers" in axes
    # the 3-row bin 80 points off is not the headline: the largest among bins of 100+ rows is
    assert "largest gap" in charts[2].description and "10.0 points" in charts[2].description
    # several curves: each its own largest gap (one for them all read as the model's: the demo's
    # churn page said 16.3 points, the curve without the season shift's, beside the model's 0.0457)
    several = reliability_chart(
        {
            "xgboost": [(0.1, 0.12, 500)],
            "xgboost (uncalibrated)": [(0.1, 0.3, 500)],
            "logistic": [(0.5, 0.1, 3)],
        },
        chart_id="s",
        title="S",
        label=model_title,
    )
    assert (
        "rows: XGBoost 2.0 points, XGBoost (uncalibrated) 20.0 points, Logistic no such bin "
        "(points" in several.description
    )
    few = reliability_chart({"xgboost": [(0.9, 0.1, 3)]}, chart_id="f", title="F")
    assert "no bin holds 100 rows" in few.description


def test_line_charts_name_their_series_by_label_and_keep_the_keys() -> None:
    """A line chart's legend, line titles, description and table name each series as ``label``
    says; the SVG keeps the key in ``data-series``, and without a label the key is the name."""
    points = {"xgboost": [(0.1, 0.3), (1.0, 1.0)], "rule_backed": [(0.1, 0.2), (1.0, 1.0)]}
    gains = gains_chart(points, chart_id="g", title="G", label=model_title)
    bins = {k: [(a, b, 500) for a, b in pts] for k, pts in points.items()}
    reliability = reliability_chart(bins, chart_id="r", title="R", label=model_title)
    legend = re.compile(r'font-size="11" fill="#1f2937">([^<]*)</text>')
    for chart in (gains, reliability):
        root = ET.fromstring(str(chart.svg))
        ns = "{http://www.w3.org/2000/svg}"
        lines = [g for g in root.iter(f"{ns}g") if g.get("data-series")]
        assert [g.get("data-series") for g in lines] == ["xgboost", "rule_backed"]
        assert [g.find(f"{ns}title").text for g in lines] == ["XGBoost", "Rule-backed"]  # type: ignore[union-attr]
        assert legend.findall(str(chart.svg)) == ["XGBoost", "Rule-backed"]
        assert "XGBoost, Rule-backed on held-out data" in chart.description
        assert "xgboost" not in chart.description and "rule_backed" not in chart.description
    assert gains.columns == ("Customers contacted", "XGBoost", "Rule-backed")
    assert "by XGBoost score" in gains.description
    assert [r[0] for r in reliability.rows] == ["XGBoost", "XGBoost", "Rule-backed", "Rule-backed"]
    plain = gains_chart(points, chart_id="p", title="P")
    assert legend.findall(str(plain.svg)) == ["xgboost", "rule_backed"]
    # a model's four reliability curves: the legend wraps onto a second line inside the chart
    curves = ("xgboost", "xgboost (no season shift)", "xgboost (uncalibrated)", "logistic")
    four = reliability_chart(
        {k: [(0.1, 0.1, 500)] for k in curves}, chart_id="f", title="F", label=model_title
    )
    root = ET.fromstring(str(four.svg))
    entries = [
        t
        for t in root.iter("{http://www.w3.org/2000/svg}text")
        if t.get("font-size") == "11" and t.get("fill") == "#1f2937"
    ]
    assert [t.text for t in entries] == [model_title(k) for k in curves]
    assert len({t.get("y") for t in entries}) == 2
    width, height = float(root.get("width")), float(root.get("height"))  # type: ignore[arg-type]
    assert all(float(t.get("x")) + 7 * len(t.text) <= width for t in entries)  # type: ignore[arg-type]
    assert all(float(t.get("y")) < height for t in entries)  # type: ignore[arg-type]
    assert height > float(ET.fromstring(str(reliability.svg)).get("height"))  # type: ignore[arg-type]


def test_every_recorded_metric_is_named_for_people(ui: TestClient) -> None:
    """The metrics table says "calibration error (ECE)" and "test rows", not ``ece`` and
    ``n``: every metric training records has a name without underscores or a bare key."""
    from models.metrics import RANKED_METRICS
    from serving.ui.pages import _metric_name

    for key in (*RANKED_METRICS, "n", "positive_rate"):
        name = _metric_name(("xgboost", key)).removeprefix("XGBoost ")
        assert "_" not in name and (name != key or "@" in key), key  # precision@1 reads
    assert _metric_name(("rule", "ece"), "churn") == "Recency rule calibration error (ECE)"
    # metrics read back from MLflow carry their keys: named as the run's own names are
    assert _metric_name(("xgboost", "ndcg_at_3")) == "XGBoost NDCG@3"
    assert _metric_name(("xgboost", "precision_at_3")) == "XGBoost precision@3"
    login(ui)
    text = ui.get("/ui/models/churn").text
    assert ">XGBoost test rows<" in text and ">XGBoost n<" not in text  # ui_data records n


def test_segments_and_tiers_are_named_for_people() -> None:
    """The value page said "cant lose" and "top 1pct" where the overview says "can't lose"."""
    from models.clv import VALUE_TIERS
    from serving.ui.pages import group_name

    assert [group_name(t) for t, _ in VALUE_TIERS] == ["top 1%", "top 5%", "top 20%", "rest"]
    assert group_name("cant_lose") == "can't lose"
    assert group_name("potential_loyalist") == "potential loyalists"
    assert group_name("none") == "none"


def test_models_are_named_for_people_by_one_mapping() -> None:
    """The metrics table, the page's charts and training's figures name a model alike."""
    assert [model_title(k) for k in ("xgboost", "rule_backed", "logistic", "rule")] == [
        "XGBoost",
        "Rule-backed",
        "Logistic",
        "Rule",
    ]
    assert model_title("popularity") == "Popularity"
    assert model_title("xgboost (uncalibrated)") == "XGBoost (uncalibrated)"


def test_a_tasks_graded_rule_is_named_as_its_spec_names_it() -> None:
    """Legends and metrics tables say which rule: ``Recency rule``, not ``Rule``; the keys stay."""
    assert {task: model_title("rule", task) for task in task_names()} == {
        "churn": "Recency rule",
        "repurchase": "Recency rule",
        "cross_sell": "Affinity rule",
        "referral": "Referrals rule",
    }
    assert model_title("rule (uncalibrated)", "churn") == "Recency rule (uncalibrated)"
    assert model_title("popularity", "cross_sell") == "Popularity"
    assert model_title("xgboost", "churn") == "XGBoost"
    assert model_title("rule", "no_such_task") == "Rule"  # a removed task's card
    assert "rule" in metric_models() and "recency_rule" not in metric_models()


def test_display_helpers_live_beside_missing() -> None:
    """The CLI's percentages come from features.formatting, and the pages write MISSING itself.

    ``guanxi target`` imported ``format_percent`` from the web layer (serving.ui.charts), and
    the charts and the templates wrote the missing mark as a literal in thirty places.
    """
    import ast

    import pipelines.target
    import serving.ui.charts
    from features import contracts, formatting

    assert pipelines.target.format_percent is formatting.format_percent
    assert serving.ui.charts.format_percent is formatting.format_percent
    ui = Path(serving.ui.charts.__file__).parent
    for source in sorted(ui.glob("*.py")):
        literals = [
            node.lineno
            for node in ast.walk(ast.parse(source.read_text(encoding="utf-8")))
            if isinstance(node, ast.Constant) and node.value == contracts.MISSING
        ]
        assert not literals, f"{source.name} lines {literals}: use features.contracts.MISSING"
    for template in sorted((ui / "templates").glob("*.html")):
        text = re.sub(r"{#.*?#}", "", template.read_text(encoding="utf-8"), flags=re.S)
        # a dash as the value of a cell, an expression or a span (prose may still use one)
        marks = re.findall(r"'—'|[>}]\s*—\s*[<{]", text)
        assert not marks, f"{template.name} writes {marks}: use {{{{ MISSING }}}}"


def test_the_missing_mark_is_named_for_a_screen_reader() -> None:
    """ui31b: a screen reader read the mark of a figure a page has not got as "em dash" (the
    customer page's "not scored" tile, a table's cell without a figure); the mark printed alone
    is now hidden from it beside a visually hidden "not available", and is kept inside a longer
    text or an attribute (one ``finalize``, not thirty template edits)."""
    from serving.ui.pages import MISSING_HTML, environment

    page = environment().from_string(
        "<td>{{ MISSING }}</td><td>{{ none|pct }}</td><td>{{ none|money }}</td>"
        '<td title="{{ MISSING ~ " lapsed" }}">{{ 0.5|pct }}</td>'
    )
    assert page.render() == (f"<td>{MISSING_HTML}</td>" * 3 + '<td title="— lapsed">50.0%</td>')
    assert MISSING_HTML == (
        '<span aria-hidden="true">—</span><span class="sr-only">not available</span>'
    )


def test_formatting_for_people() -> None:
    assert format_percent(0.1234) == "12.3%" and format_percent(None) == "—"
    assert format_percent(math.nan) == "—"
    # a probability is never certain: one rounding to 0.0% or 100.0% says it is beyond them
    assert format_percent(0.0004) == "<0.1%" and format_percent(0.0004, 0) == "<1%"
    assert format_percent(0.9996) == ">99.9%" and format_percent(0.996, 0) == ">99%"
    assert format_percent(0.0) == "0.0%" and format_percent(1.0) == "100.0%"  # shares can be
    assert format_percent(0.0006) == "0.1%" and format_percent(0.9994) == "99.9%"
    assert format_points(4.06) == "+4.1 pts" and format_points(-0.04) == "0.0 pts"
    assert format_points(-2.25) == "−2.2 pts"
    assert format_signed_percent(-0.084) == "−8.4%" and format_signed_percent(0.2) == "+20.0%"
    assert format_signed_percent(-0.0004) == "0.0%" and format_signed_percent(None) == "—"
    assert format_points(None) == format_points(math.nan) == format_signed_percent(math.inf) == "—"
    # a number that rounds to zero has no sign: the demo's survey score -0.0 read "−0.0"
    assert format_number(-0.0, 1) == "0.0" and format_number(-0.04, 1) == "0.0"
    assert format_number(-0.4) == "0" and format_number(-1234.56, 1) == "−1,234.6"
    score = filters()["score"]  # an event's, as a reason says it
    assert score(9.0, "survey") == "9 of 10" and score(4.5, "review") == "4.5 of 5"
    assert score(None, "visit") == "" and score(math.nan, "survey") == ""
    assert format_date(date(2024, 6, 30)) == "30 Jun 2024"
    assert format_date("2024-01-05") == "5 Jan 2024"
    # a time with a zone says it is UTC's (a plan "made 4 Dec 2026 14:53" read as local time)
    assert format_date(datetime(2024, 1, 5, 9, 30, tzinfo=UTC)) == "5 Jan 2024 09:30 UTC"
    assert format_date("2024-01-05T17:30:00+08:00") == "5 Jan 2024 09:30 UTC"
    assert format_date(datetime(2024, 1, 5, 9, 30)) == "5 Jan 2024 09:30"  # no zone: as given


def test_a_negative_value_in_a_reason_has_the_pages_minus_sign() -> None:
    """heavy35: a reason's value kept the API's hyphen-minus on the customer page and in its
    waterfall ("order trend -0.50 (...)") beside its points in minus signs ("−4.1 pts"); the
    pages write every negative figure with features.formatting.MINUS, hyphens in words kept."""
    from serving.schemas import Reason, TaskScore
    from serving.ui.pages import _task_view, environment

    said = "order trend -0.50 (last 90 days against the 90 before): lowers churn risk by 4.1 points"
    shown = "order trend −0.50 (last 90 days against the 90 before)"
    reason = filters()["reason"]
    assert reason(said) == shown
    assert reason("-12.50 gross margin in total: raises churn risk by 1.0 points") == (
        "−12.50 gross margin in total"
    )
    kept = "3 e-mails opened in the last 30-60 days (-.5, 1-2)"
    assert reason(f"{kept}: raises churn risk by 1.0 points") == kept.replace("-.5", "−.5")
    minus = environment().from_string("{{ '%+.4f'|format(x)|minus }}")
    assert minus.render(x=-0.0123) == "−0.0123" and minus.render(x=0.0123) == "+0.0123"
    score = TaskScore.model_construct(
        probability=0.3,
        base_probability=0.341,
        other_inputs=None,
        reasons=[
            Reason.model_construct(
                feature="orders_trend_90d", contribution_points=-4.1, sentence=said
            )
        ],
    )
    view = _task_view("churn", score)
    assert view.chart is not None and view.chart.rows[1][0] == shown, view.chart.rows


def test_a_card_read_from_its_run_shows_the_train_cutoffs_as_days() -> None:
    """A challenger's card is read from its run, whose ``cutoffs.train`` training logged as
    Python writes a list: the demo's cross-sell v2 card read "[datetime.date(2024, 11, 6), ...]"."""
    run = {
        "cutoffs.train": "[datetime.date(2024, 11, 6), datetime.date(2024, 12, 6)]",
        "cutoffs.test": "2025-10-02",
        "as_of": "2025-12-31",
    }
    params = training_params(None, run)
    assert params["cutoffs"] == {
        "train": [date(2024, 11, 6), date(2024, 12, 6)],
        "test": "2025-10-02",
    }
    assert params["as_of"] == "2025-12-31"
    cut = training_params(None, {"cutoffs.train": "[datetime.date(2024, 11, 6), datetime.da..."})
    assert cut["cutoffs"]["train"] == [date(2024, 11, 6), "…"]  # logged cut: said so
    assert training_params(None, {"cutoffs.train": "weekly"})["cutoffs"]["train"] == "weekly"


def _events(rows: list[tuple[str, str, float | None, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "customer_id": "a",
                "ts": datetime.fromisoformat(ts).replace(tzinfo=UTC),
                "event_type": kind,
                "amount": amount,
                "ref_id": ref,
            }
            for ts, kind, amount, ref in rows
        ],
        schema={k: v for k, v in event_schema().items()},
    )


def test_summarize_history_windows_complaints_and_spend() -> None:
    as_of = date(2024, 6, 30)
    events = _events(
        [
            ("2024-06-30 23:59", "order", 10.0, "o1"),  # day D: in every window
            ("2024-06-01 00:00", "order", 20.0, "o2"),  # 29 days before: last 30
            ("2024-05-31 12:00", "order", 40.0, "o3"),  # 30 days before: not last 30
            ("2023-07-01 00:00", "order", 80.0, "o4"),  # 365 days before: not last 365
            ("2024-06-10 00:00", "complaint", None, "t1"),
            ("2024-06-12 00:00", "complaint_resolved", None, "t1"),
            ("2024-06-20 00:00", "complaint", None, "t2"),
            ("2024-07-01 00:00", "complaint_resolved", None, "t2"),  # after D: t2 still open
            ("2024-06-15 00:00", "visit", None, None),
        ]
    )
    h = summarize_history(events, as_of, limit=2)
    counts = {r["event_type"]: r for r in h.counts.iter_rows(named=True)}
    assert (counts["order"]["last_30"], counts["order"]["last_365"]) == (2, 3)
    assert counts["order"]["total"] == 4 and counts["order"]["last_90"] == 3
    assert h.spend == {"last_90": 70.0, "last_365": 70.0, "total": 150.0}
    assert h.open_complaints == 1 and h.total_events == 8
    assert h.orders["ref_id"].to_list() == ["o1", "o2"]  # newest first, limited
    assert h.complaints["ref_id"].to_list() == ["t2", "t1"]
    assert h.complaints["resolved_ts"].is_null().to_list() == [True, False]
    assert h.engagement["event_type"].to_list() == ["visit"]


def test_history_is_read_from_the_store_one_customer_at_a_time(tmp_path: Path) -> None:
    rows = [
        ("b", "2024-06-01 00:00", "order", 1.0, "o1"),
        ("a", "2024-06-01 10:00", "order", 12.5, "o2"),
        ("a", "2024-06-29 00:00", "visit", None, None),
        ("a", "2024-07-02 00:00", "visit", None, None),  # after the snapshot day
    ]
    events = pl.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "ts": [datetime.fromisoformat(r[1]).replace(tzinfo=UTC) for r in rows],
            "event_type": [r[2] for r in rows],
            "amount": [r[3] for r in rows],
            "ref_id": [r[4] for r in rows],
        }
    )
    events = events.with_columns(
        pl.lit(None, dtype).alias(name)
        for name, dtype in event_schema().items()
        if name not in events.columns
    ).select(list(event_schema()))
    store = Store(tmp_path)
    assert customer_history(store, date(2024, 6, 30), "a") is None  # no history stored
    store.write_history(events, date(2024, 6, 30))
    assert store.read_history(date(2024, 6, 30), "a")["event_type"].to_list() == ["order", "visit"]
    history = customer_history(store, date(2024, 6, 30), "a")
    assert history is not None and history.total_events == 2
    assert history.spend["total"] == 12.5
    assert store.read_history(date(2024, 6, 30), "zz").height == 0
    written = pl.read_parquet(store.history_path(date(2024, 6, 30)))
    assert written["customer_id"].to_list() == ["a", "a", "b"]  # sorted, later events left out


def _rule_served(source: StaticSource, snapshot: pl.DataFrame, home: Path, version: str) -> FastAPI:
    """An app serving cross-sell by its rule-backed version ``version`` (the champion)."""
    models = dict(source.models)
    models["cross_sell"] = ServedModel(rule_bundle(snapshot), "cross_sell", version, ("champion",))
    return create_app(make_settings(home), replace(source, models=models))


def test_pages_name_the_rule_backed_version_the_affinity_rule(
    source: StaticSource, snapshot: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cross-sell served by its rule-backed version: the overview and the model page say
    "affinity rule", never XGBoost, and the model page says why it is served."""

    def unavailable(*args: object) -> None:
        raise MlflowException("registry down")

    monkeypatch.setattr("serving.ui.pages.load_cards", unavailable)  # the served card only
    app = _rule_served(source, snapshot, tmp_path / "home", "7")
    with TestClient(app) as client:
        wait_ready(client)
        login(client)
        overview = client.get("/ui/").text
        assert 'data-served-by="affinity rule"' in overview
        assert 'data-served-by="XGBoost"' in overview  # the other tasks
        page = client.get("/ui/models/cross_sell")
        assert page.status_code == 200
        text = " ".join(page.text.split())
        # the version is the affinity rule; XGBoost is named only as the model trained beside it,
        # which is not this version: its row is not in the table
        assert 'Champion · v7 · <span data-served-by="affinity rule">affinity rule</span>' in text
        assert "Not a trained model: the affinity rule itself" in text
        assert 'data-metric="rule_backed_roc_auc"' in text
        assert "XGBoost ROC-AUC" not in text and 'data-metric="xgboost_roc_auc"' not in text
        assert text.count("XGBoost") == 1
        assert (
            "v7 is the affinity rule: its column shows the rule-backed row and the baselines, not "
            "the XGBoost model trained in the same run (model grade C), which was not promoted."
            in text
        )


def test_a_customer_page_of_a_one_input_rule_counts_no_other_inputs(
    source: StaticSource, snapshot: pl.DataFrame, tmp_path: Path
) -> None:
    """serve28: cross-sell served by its rule-backed version (one input, every reason shown)
    read "the 0 other inputs together add 0.0 pts" on every customer's page; the clause is now
    left out when no input is left over."""
    app = _rule_served(source, snapshot, tmp_path / "home", "7")
    with TestClient(app) as client:
        wait_ready(client)
        login(client)
        text = client.get("/ui/customers/c001").text
    rule = text[text.index('id="task-cross_sell"') : text.index('id="task-referral"')]
    assert "Contributions in probability points to purchase likelihood.</p>" in rule
    assert "other inputs" not in rule
    churn = text[text.index('id="task-churn"') : text.index('id="task-repurchase"')]
    assert re.search(r"; the \d+ other inputs together add [+−]\d", churn)


def test_one_other_input_is_counted_in_the_singular(
    ui: TestClient, world: UIWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model with one input beyond the reasons shown read "the 1 other inputs together add"
    (the API's remainder line says "1 other input")."""
    from serving.ui import pages

    shown = pages._task_view
    monkeypatch.setattr(pages, "_task_view", lambda *args: replace(shown(*args), others=1))
    login(ui)
    text = " ".join(ui.get(f"/ui/customers/{world.snapshot['customer_id'][0]}").text.split())
    assert re.search(r"; the 1 other input adds [+−]\d", text)
    assert "1 other inputs" not in text


def test_the_templates_count_with_the_noun_a_number_takes() -> None:
    """A count before its noun goes through ``counted`` ("1 customer"), never ``num`` and a
    plural: the overview, value, list and campaign pages wrote "{{ n|num }} customers", "1
    customers" for a campaign of one or a value table with one churn probability."""
    from serving.ui.pages import HERE

    found = [
        f"{path.name}: {m[0]}"
        for path in sorted((HERE / "templates").glob("*.html"))
        for m in re.finditer(r"\|num(?:\(\d\))? \}\} ?[a-z]+s\b", path.read_text())
    ]
    assert found == []


def test_the_rule_backed_versions_metrics_are_its_own_and_the_baselines(
    source: StaticSource, snapshot: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Champion the affinity rule (v8), challenger the XGBoost model of the same run (v7), so
    both carry the run's metrics: the champion's column of the full table has the rule-backed
    row and the baselines, not the XGBoost model's; the challenger's has every row. Its
    previous-version change is its own metric's; the rest of the page stays."""
    from models.tasks import get_task
    from serving.ui.cards import ModelCards, VersionCard

    run = {
        "xgboost": {"roc_auc": 0.79, "precision@3": 0.251},
        "rule_backed": {"roc_auc": 0.77, "precision@3": 0.248},
        "logistic": {"roc_auc": 0.75, "precision@3": 0.230},
        "rule": {"roc_auc": 0.76, "precision@3": 0.248},
        "popularity": {"roc_auc": 0.70, "precision@3": 0.190},
    }
    before = {"xgboost": {"roc_auc": 0.05}, "rule_backed": {"roc_auc": 0.01}}
    base = VersionCard(
        task="cross_sell",
        version="7",
        aliases=("challenger",),
        created=None,
        run_id="r" * 32,
        run_url=None,
        metrics=run,
        metric_source="run",
        grade="C",
        feature_set_version="x",
        previous="6",
        deltas=before,
        previous_served_by="affinity rule",
        previous_auc_change=0.05,
    )
    rule = replace(
        base, version="8", aliases=("champion", "rule"), served_by="affinity rule",
        model_grade="C", previous="7", previous_served_by="XGBoost", previous_auc_change=-0.02,
    )  # fmt: skip
    cards = ModelCards("cross_sell", rule, base, 8)
    monkeypatch.setattr("serving.ui.pages.load_cards", lambda *args: cards)
    app = _rule_served(source, snapshot, tmp_path / "home", "8")
    with TestClient(app) as client:
        wait_ready(client)
        login(client)
        page = client.get("/ui/models/cross_sell")
    assert page.status_code == 200
    text = " ".join(page.text.split())
    cells = {
        (a["data-slot"], a["data-metric"]): a.get("data-value")
        for t, a, _ in parse(page.text).tags
        if t == "td" and "data-metric" in a
    }
    for model in ("rule_backed", "logistic", "rule", "popularity"):
        for slot in ("champion", "challenger"):
            assert cells[slot, f"{model}_roc_auc"] == str(run[model]["roc_auc"]), (slot, model)
    assert cells["challenger", "xgboost_roc_auc"] == "0.79"
    assert cells["champion", "xgboost_roc_auc"] is None  # not this version's
    assert cells["champion", "rule_backed_precision_at_3"] == "0.248"
    assert "Champion v8 (affinity rule)</th>" in text and "Challenger v7</th>" in text
    assert "not the XGBoost model trained in the same run (model grade C), which was not" in text
    # each version's change since the previous is its own row's against the previous one's own
    # (the rule-backed v8's against v7's XGBoost), naming a rule-backed previous version
    champion = text[text.index('id="card-champion"') : text.index('id="card-challenger"')]
    challenger = text[text.index('id="card-challenger"') : text.index('id="metrics"')]
    assert "v7: AUC −0.0200" in champion and "v6 (affinity rule): AUC +0.0500" in challenger
    # the headline (the version against the task's baselines) and the card's other parts stay
    headline = text[text.index('id="headline-champion"') : text.index('id="headline-challenger"')]
    assert "Rule-backed" in headline and ">Affinity rule</th>" in headline
    assert [m for m in get_task("cross_sell").metrics if f'data-headline="{m}"' in headline] == [
        "precision@3",
        "roc_auc",
    ]
    assert "Not a trained model: the affinity rule itself" in champion


def test_a_version_after_a_rule_backed_one_is_compared_with_what_it_served(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The demo's cross-sell v2 (XGBoost) follows v1, the affinity rule of the same run: its
    card read "Previous version v1: AUC +0.0000" and every row's change +0, the run's XGBoost
    row against itself, though v1 never served that model. Its change is now its own ROC-AUC
    against v1's own (the rule-backed row), and the rows v1 had no part in have no change."""
    from types import SimpleNamespace

    from models.registry import BACKING_KEY, RULE_BACKING, VersionInfo
    from serving.ui.cards import _build

    metrics = {"xgboost_roc_auc": 0.7782, "rule_backed_roc_auc": 0.6718, "rule_roc_auc": 0.6719}
    # one run, so one held-out day and definition (qa49 M3: compared only then)
    params = {"cutoffs.test": "2024-10-31", "horizon": "90", "active_days": "365"}
    run = SimpleNamespace(
        info=SimpleNamespace(experiment_id="0", run_id="r" * 32),
        data=SimpleNamespace(metrics=metrics, tags={}, params=params),
    )
    client = SimpleNamespace(get_run=lambda run_id: run)
    monkeypatch.setattr("serving.ui.cards.registry.read_table", lambda *args: [])
    tags = {BACKING_KEY: RULE_BACKING, "backing_name": "affinity rule"}
    rule = VersionInfo("cross_sell", "1", ("champion", "rule"), "r" * 32, 0, tags)
    model = VersionInfo("cross_sell", "2", ("challenger",), "r" * 32, 0, {})
    card = _build(client, "sqlite:///x.db", model, rule, None)  # type: ignore[arg-type]
    assert card.previous_served_by == "affinity rule"
    assert card.previous_auc_change == pytest.approx(0.7782 - 0.6718)
    assert "xgboost" not in card.deltas and card.deltas["rule_backed"] == {"roc_auc": 0.0}
    # the other way: the rule-backed version after the model is its row against the model's
    back = _build(client, "sqlite:///x.db", replace(rule, version="3"), model, None)  # type: ignore[arg-type]
    assert back.previous_served_by == "XGBoost"
    assert back.previous_auc_change == pytest.approx(0.6718 - 0.7782)
    assert back.deltas["xgboost"] == {"roc_auc": 0.0}  # v2's own row: the page's view drops it


def test_the_rule_backed_versions_charts_are_its_own_curves(
    source: StaticSource, snapshot: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Champion the affinity rule (v8), challenger the XGBoost model of the same run (v7): the
    champion's gains chart draws its own curve and the baselines, its reliability chart its own
    curve with its bin sizes; the challenger's charts stay the model's. A rule-backed version of
    a run from before its curves were recorded says so instead of drawing XGBoost's."""
    from serving.ui.cards import ModelCards, VersionCard

    gains = {
        name: [(0.1, share), (1.0, 1.0)]
        for name, share in (
            ("xgboost", 0.31),
            ("rule_backed", 0.29),
            ("logistic", 0.27),
            ("rule", 0.29),
            ("popularity", 0.2),
        )
    }
    reliability = {
        name: [(0.1, observed, 600), (0.4, 0.43, 150)]
        for name, observed in (
            ("xgboost", 0.12),
            ("xgboost (no season shift)", 0.15),
            ("xgboost (uncalibrated)", 0.2),
            ("rule_backed", 0.11),
            ("logistic", 0.13),
        )
    }
    model = VersionCard(
        task="cross_sell",
        version="7",
        aliases=("challenger",),
        created=None,
        run_id="r" * 32,
        run_url=None,
        # as read back from MLflow (nest_metrics): keys, ndcg_at_3 for ndcg@3
        metrics={"rule_backed": {"roc_auc": 0.77, "ndcg_at_3": 0.5}, "rule": {"roc_auc": 0.76}},
        metric_source="run",
        grade="C",
        feature_set_version="x",
        gains=gains,
        reliability=reliability,
    )
    rule = replace(
        model, version="8", aliases=("champion", "rule"), served_by="affinity rule",
        model_grade="C",
    )  # fmt: skip
    old = replace(
        rule,
        gains={k: v for k, v in gains.items() if k != "rule_backed"},
        reliability={k: v for k, v in reliability.items() if k != "rule_backed"},
    )
    shown = {"cards": ModelCards("cross_sell", rule, model, 8)}
    monkeypatch.setattr("serving.ui.pages.load_cards", lambda *args: shown["cards"])
    app = _rule_served(source, snapshot, tmp_path / "home", "8")
    with TestClient(app) as client:
        wait_ready(client)
        login(client)
        page = client.get("/ui/models/cross_sell")
        shown["cards"] = ModelCards("cross_sell", old, model, 8)
        before = client.get("/ui/models/cross_sell")
    assert page.status_code == before.status_code == 200

    def series(text: str) -> dict[str | None, list[str]]:
        out: dict[str | None, list[str]] = {}
        for tag, attrs, svg in parse(text).tags:
            if tag == "g" and "data-series" in attrs:
                out.setdefault(svg, []).append(attrs["data-series"])
        return out

    drawn = series(page.text)
    assert drawn["gains-champion"] == ["rule_backed", "rule", "popularity"]
    assert drawn["reliability-champion"] == ["rule_backed"]
    assert drawn["gains-challenger"] == ["xgboost", "logistic", "rule", "popularity"]
    assert drawn["reliability-challenger"] == [
        "xgboost",
        "xgboost (no season shift)",
        "xgboost (uncalibrated)",
        "logistic",
    ]

    # the legends name the curves as the metrics table names the models; the keys stay above
    def legend(text: str, chart_id: str) -> list[str]:
        svg = text[
            text.index(f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{chart_id}"') :
        ]
        return re.findall(
            r'font-size="11" fill="#1f2937">([^<]*)</text>', svg[: svg.index("</svg>")]
        )

    assert legend(page.text, "gains-champion") == ["Rule-backed", "Affinity rule", "Popularity"]
    assert legend(page.text, "reliability-champion") == ["Rule-backed"]
    assert legend(page.text, "gains-challenger") == [
        "XGBoost",
        "Logistic",
        "Affinity rule",
        "Popularity",
    ]
    assert legend(page.text, "reliability-challenger") == [
        "XGBoost",
        "XGBoost (no season shift)",
        "XGBoost (uncalibrated)",
        "Logistic",
    ]
    assert '<th scope="row">Rule-backed ROC-AUC</th>' in page.text
    assert '<th scope="row">Affinity rule ROC-AUC</th>' in page.text
    assert '<th scope="row">Rule-backed NDCG@3</th>' in page.text  # was 'ndcg at 3'
    assert "Rule ROC-AUC" not in page.text and ">Rule<" not in page.text
    text = " ".join(page.text.split())
    champion = text[text.index('id="card-champion"') : text.index('id="card-challenger"')]
    reliability_table = champion[champion.index('id="reliability-champion"') :]
    # its own bins with their rows, as the model's chart has them
    assert '<th scope="col">Curve</th>' in reliability_table
    assert '<th scope="row">Rule-backed</th><td class="num">10.0%</td>' in reliability_table
    assert '<td class="num">600</td>' in reliability_table
    assert "xgboost" not in champion and "data-unrecorded" not in text
    # a run from before: no curve of this version, and not XGBoost's under its name
    drawn = series(before.text)
    assert drawn["gains-champion"] == ["rule", "popularity"]
    assert "reliability-champion" not in drawn
    assert drawn["gains-challenger"] == ["xgboost", "logistic", "rule", "popularity"]
    text = " ".join(before.text.split())
    champion = text[text.index('id="card-champion"') : text.index('id="card-challenger"')]
    assert "xgboost" not in champion
    assert (
        '<p class="muted small" data-unrecorded="gains">The run recorded no gains curve of this '
        "version (it was trained before a rule-backed version's curves were recorded); the chart "
        "shows the run's baselines only.</p>" in champion
    )
    assert 'data-unrecorded="reliability">The run recorded no reliability curve' in champion


def test_the_model_page_says_a_champion_came_from_a_rollback(
    source: StaticSource, snapshot: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rollback29: the model page could not tell a rollback from a promotion. The champion's
    card says "rolled back to vN by X on DATE: reason"; the challenger's says nothing of it.
    review53 L4: a version trained on events a few days short says so on its card, where it is
    promoted or not; one without the warning says nothing."""
    from serving.ui.cards import ModelCards, VersionCard

    warning = "the events end on 2026-11-27, 3 days before --as-of 2026-11-30"
    base = VersionCard(
        task="cross_sell",
        version="7",
        aliases=("challenger",),
        created=None,
        run_id="r" * 32,
        run_url=None,
        metrics={"rule_backed": {"roc_auc": 0.77}},
        metric_source="run",
        grade="C",
        feature_set_version="x",
        events_warning=warning,
    )
    said = "rolled back to v8 by ana on 2026-12-04: v9 drifted"
    rolled = replace(
        base,
        version="8",
        aliases=("champion", "rule"),
        served_by="affinity rule",
        rollback=said,
        events_warning=None,
    )
    monkeypatch.setattr(
        "serving.ui.pages.load_cards", lambda *args: ModelCards("cross_sell", rolled, base, 9)
    )
    app = _rule_served(source, snapshot, tmp_path / "home", "8")
    with TestClient(app) as client:
        wait_ready(client)
        login(client)
        page = client.get("/ui/models/cross_sell")
    assert page.status_code == 200
    text = " ".join(page.text.split())
    champion = text[text.index('id="card-champion"') : text.index('id="card-challenger"')]
    challenger = text[text.index('id="card-challenger"') : text.index('id="metrics"')]
    assert f"<dd data-rollback>{said}</dd>" in champion
    assert "data-rollback" not in challenger
    assert f"Trained on events short of the training day: {warning}." in challenger
    assert "data-events-warning" not in champion


def test_the_model_page_compares_only_versions_measured_alike(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """qa49 M3: the change columns compared versions measured on different held-out days or
    under another task definition (horizon, activity window), different rows. Churn champion
    v3 (31 Oct 2024, 90 days) follows v2 measured on 31 Jul 2024; challenger v4 (60 days)
    follows v3: no change is shown, each column and card says why; measured alike, they are."""
    from serving.ui.cards import ModelCards, VersionCard

    metrics = {"xgboost": {"roc_auc": 0.75, "brier": 0.18}, "rule": {"roc_auc": 0.66}}
    october = {"horizon": 90, "active_days": 365, "cutoffs": {"test": "2024-10-31"}}
    champion = VersionCard(
        task="churn",
        version="3",
        aliases=("champion",),
        created=None,
        run_id="r" * 32,
        run_url=None,
        metrics=metrics,
        metric_source="run",
        grade="B",
        feature_set_version="x",
        params=october,
        previous="2",
        previous_served_by="XGBoost",
        previous_note="measured on 31 Jul 2024, this one on 31 Oct 2024: not comparable",
    )
    challenger = replace(
        champion,
        version="4",
        aliases=("challenger",),
        metrics={"xgboost": {"roc_auc": 0.78, "brier": 0.17}, "rule": {"roc_auc": 0.66}},
        params={**october, "horizon": 60},
        previous="3",
        previous_note="another definition: 90-day horizon then, 60 now",
    )
    shown = {"cards": ModelCards("churn", champion, challenger, 4)}
    monkeypatch.setattr("serving.ui.pages.load_cards", lambda *args: shown["cards"])
    login(client)
    page = client.get("/ui/models/churn")
    assert page.status_code == 200
    text = " ".join(page.text.split())
    card = text[text.index('id="card-champion"') : text.index('id="card-challenger"')]
    other = text[text.index('id="card-challenger"') : text.index('id="metrics"')]
    assert (
        "v2: <span data-not-compared>measured on 31 Jul 2024, this one on 31 Oct 2024: not "
        "comparable</span></dd>" in card
    )
    assert "v3: <span data-not-compared>another definition: 90-day horizon then, 60 now<" in other
    table = text[text.index('id="metrics"') :]
    head = table[: table.index("</thead>")]
    said = re.findall(r"data-not-compared>([^<]+)<", head)
    assert [html.unescape(note) for note in said] == [
        "measured on 31 Jul 2024, this one on 31 Oct 2024: not comparable",
        "another definition: 90-day horizon then, 60 now",
        "another definition: the champion's horizon 90 days, the challenger's 60",
    ]
    assert head.count("Δ vs v") == 2 and "Challenger − champion" in head
    changes = re.findall(r'<td class="num delta">([^<]*)</td>', table)
    assert len(changes) == 3 * 3 and set(changes) == {""}  # three rows, no change in any
    # measured alike: the same columns show the changes, and say nothing of the kind
    shown["cards"] = ModelCards(
        "churn",
        replace(champion, previous_note=None, deltas={"xgboost": {"roc_auc": 0.02}}),
        replace(challenger, params=october, previous_note=None),
        4,
    )
    table = " ".join(client.get("/ui/models/churn").text.split())
    table = table[table.index('id="metrics"') :]
    assert "data-not-compared" not in table
    changes = re.findall(r'<td class="num delta">([^<]*)</td>', table)
    assert "+0.0200" in changes and "+0.0300" in changes and "−0.0100" in changes
    assert table[: table.index("</thead>")].count("Δ vs v") == 1  # v4 kept no change: none
    # a version that records no held-out day: "not recorded", no change
    shown["cards"] = ModelCards("churn", replace(champion, params={}), challenger, 4)
    table = " ".join(client.get("/ui/models/churn").text.split())
    assert (
        "data-not-compared>not recorded: the champion records no held-out day, horizon or "
        "activity window<" in table
    )


def test_the_overview_says_its_aliases_are_as_loaded(
    tmp_path: Path, source: StaticSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a promotion without a reload the overview still labelled the served version
    "@champion" (the aliases as at load) with nothing saying so, where the model page says an
    admin reload will switch. The overview reads no registry: it says the aliases are as loaded
    and where to look whether a reload is pending."""

    def no_registry(*args: object, **kwargs: object) -> None:
        raise AssertionError("the overview asked the registry")

    monkeypatch.setattr(registry, "get_version", no_registry)
    monkeypatch.setattr(registry, "list_versions", no_registry)
    with TestClient(create_app(make_settings(tmp_path / "home"), source)) as client:
        wait_ready(client)
        login(client)
        page = client.get("/ui/")
    assert page.status_code == 200, page.text
    text = " ".join(page.text.split())
    assert (
        'v1 <span class="pill">@champion</span> <span class="muted small" data-as-loaded>(as '
        'loaded; <a href="/ui/models/churn">the Churn model page</a> says whether a reload is '
        "pending)</span>" in text
    )
