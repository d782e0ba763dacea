"""Security promises of the scoring service (see SECURITY.md).

* Every route answers 401 without a key (and with an unknown key) and 403 to a key whose role is
  too low, except the short allowlist :data:`PUBLIC`; a new route without auth fails the test.
* No error response carries a request body value, a feature value or a stack trace.
* The audit log holds no raw customer id.
* Loading and serving a registered model never unpickles anything.
"""

from __future__ import annotations

import _pickle
import json
import pickle
import re
from typing import Any

import cloudpickle
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from serving.app import create_app
from serving.settings import Role
from tests.serving.conftest import AUDIT_KEY, KEYS, Registry, make_settings, wait_ready

PUBLIC = frozenset(
    {
        "/healthz",  # liveness probe: says "ok", nothing else
        "/readyz",  # readiness probe: ready or not, and a generic reason
        "/metrics",  # Prometheus scrape: counts and latencies per route template, no customer data
        "/openapi.json",  # the API's shape, no data
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/favicon.ico",  # the service's icon
        "/ui/login",  # the reviewer pages' sign-in form
        "/ui/logout",  # clears the session cookie, shows nothing
    }
)
"""Routes served without a key; static file mounts are public too."""

LOGIN = "/ui/login"
"""Reviewer pages send a browser without a key or session here (303) instead of a bare 401."""

MARKER = "zq-marker-7731"
FEATURE_VALUE = 424242.4242
UNKNOWN_KEY = {"X-API-Key": "not-a-configured-key-0123"}


def _key(role: Role) -> dict[str, str]:
    return {"X-API-Key": KEYS[role.name]}


def _routes(app: FastAPI) -> list[tuple[str, str, str]]:
    """Every (method, path template, url to call) of the app that is not public."""
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, Mount) and isinstance(route.app, StaticFiles):
            continue
        assert context.path is not None and context.methods, f"unexpected route {route!r}"
        if context.path in PUBLIC:
            continue
        url = re.sub(r"\{[^}]+\}", "c001", context.path)
        for method in sorted(context.methods - {"HEAD", "OPTIONS"}):
            found.append((method, context.path, url))
    return found


def unprotected(app: FastAPI, client: TestClient) -> list[str]:
    """Routes outside :data:`PUBLIC` that do not refuse callers without the right key.

    Each route must answer 401 without a key and with an unknown key; the roles below the lowest
    role it admits must get 403, and the admin key must be admitted.
    """
    problems = []
    for method, path, url in _routes(app):

        def call(headers: dict[str, str], method: str = method, url: str = url) -> int:
            body: dict[str, str] | None = {} if method in {"POST", "PUT", "PATCH"} else None
            r = client.request(method, url, headers=headers, follow_redirects=False, json=body)
            login = r.status_code == 303 and r.headers["location"].startswith(LOGIN)
            return 401 if login and url.startswith("/ui/") else r.status_code

        codes = {"none": call({}), "unknown": call(UNKNOWN_KEY)}
        codes |= {role.name: call(_key(role)) for role in Role}
        admitted = [role for role in Role if codes[role.name] not in (401, 403)]
        expected_refused = [role.name for role in Role if not admitted or role < admitted[0]]
        if (
            codes["none"] != 401
            or codes["unknown"] != 401
            or Role.admin not in admitted
            or any(codes[name] != 403 for name in expected_refused)
            or admitted != [role for role in Role if role >= admitted[0]]
        ):
            problems.append(f"{method} {path}: {codes}")
    return problems


def test_every_route_needs_a_key_of_the_right_role(app: FastAPI, client: TestClient) -> None:
    assert len(_routes(app)) >= 5
    assert unprotected(app, client) == []
    # spelled out for the one admin-only route
    for role in (Role.scorer, Role.reviewer):
        assert client.post("/v1/admin/reload", headers=_key(role)).status_code == 403


def test_a_new_route_without_auth_fails_the_walk(app: FastAPI, client: TestClient) -> None:
    @app.get("/v1/leak")
    def leak() -> dict[str, str]:
        return {"customer": "c001"}

    assert unprotected(app, client) == ["GET /v1/leak: " + str(dict.fromkeys(
        ["none", "unknown", "scorer", "reviewer", "admin"], 200))]  # fmt: skip


def _marked_requests() -> list[tuple[str, str, dict[str, Any]]]:
    """Requests that fail, each carrying :data:`MARKER` or :data:`FEATURE_VALUE`."""
    event = {"ts": "2024-03-01T10:00:00", "event_type": "order", "amount": 10.0, "channel": "web"}
    scores = "/v1/customers/c001/scores"
    return [
        ("GET", f"/v1/customers/{MARKER}/scores", {}),
        ("GET", scores, {"params": {"tasks": MARKER}}),
        ("GET", scores, {"params": {"explain": MARKER}}),
        ("POST", "/v1/scores", {"json": {"customer_ids": [MARKER], "tasks": [MARKER]}}),
        ("POST", "/v1/scores", {"json": {"customer_ids": MARKER}}),
        ("POST", "/v1/scores", {"json": {"customer_ids": [MARKER] * 1001}}),
        ("POST", "/v1/score", {"json": {"features": {"recency_days": MARKER}}}),
        ("POST", "/v1/score", {"json": {"features": {"recency_days": FEATURE_VALUE, "x": 1}}}),
        (
            "POST",
            "/v1/score",
            {"json": {"features": {"orders_total": FEATURE_VALUE}, "explain": MARKER}},
        ),
        ("POST", "/v1/score", {"json": {"customer_id": MARKER, "features": {}, "events": [event]}}),
        ("POST", "/v1/score", {"json": {"events": [{**event, "event_type": MARKER}]}}),
        ("POST", "/v1/score", {"json": {"events": [{**event, "channel": MARKER}]}}),
        ("POST", "/v1/score", {"json": {"events": [{**event, "amount": -FEATURE_VALUE}]}}),
        ("POST", "/v1/score", {"json": {"events": [{**event, "category": MARKER * 100}]}}),
        ("POST", "/v1/score", {"json": {"events": [{**event, "ts": f"2099-01-01 {MARKER}"}]}}),
        ("POST", "/v1/score", {"json": {"events": [{**event, "ts": "2099-01-01T00:00:00"}]}}),
        ("POST", "/v1/score", {"json": {"events": [event], "as_of": "2020-01-01", "x": MARKER}}),
        ("POST", "/v1/score", {"content": f'{{"customer_id": "{MARKER}", "features": {{'}),
        ("POST", "/v1/score", {"content": MARKER.encode() + b"\xff\xfe"}),
        ("POST", "/v1/scores", {"content": b'{"customer_ids": ["' + MARKER.encode() * 100_000}),
        ("POST", "/v1/admin/reload", {"json": {"customer_id": MARKER}}),
        ("GET", "/ui/customers", {"params": {"page": MARKER, "sort": MARKER}}),
        # a wrong key is never shown back (the form keeps only its same-site ``next`` path)
        ("POST", "/ui/login", {"content": f"api_key={MARKER}&next=/ui/"}),
    ]


def _leaks(text: str) -> list[str]:
    found = [s for s in (MARKER, str(FEATURE_VALUE), "Traceback", 'File "') if s in text]
    return found + (["path"] if re.search(r"/(work|tmp|home|usr)/", text) else [])


def test_errors_echo_no_body_value_feature_value_or_traceback(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = set()
    for headers in ({}, _key(Role.scorer), _key(Role.reviewer), _key(Role.admin)):
        for method, url, kwargs in _marked_requests():
            sent = {**headers, "Content-Type": "application/json", "Origin": "http://testserver"}
            r = client.request(method, url, headers=sent, follow_redirects=False, **kwargs)
            seen.add(r.status_code)
            if r.status_code >= 300:
                assert _leaks(r.text) == [], (method, url, r.status_code, r.text)
            else:  # only an admin's reload succeeds: it ignores the body
                assert (url, headers) == ("/v1/admin/reload", _key(Role.admin)), r.text
    assert seen >= {400, 401, 403, 404, 413, 422}


def test_a_500_echoes_nothing(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"failed on {MARKER} with value {FEATURE_VALUE} in /work/x.py")

    monkeypatch.setattr("serving.routes.live_scores", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        wait_ready(client)
        body = {"customer_id": MARKER, "features": {"recency_days": FEATURE_VALUE}}
        r = client.post("/v1/score", headers=_key(Role.scorer), json=body)
    assert r.status_code == 500
    assert _leaks(r.text) == []


def test_audit_log_holds_no_raw_customer_id(client: TestClient, settings: Any) -> None:
    event = {"ts": "2024-03-01T10:00:00", "event_type": "order", "amount": 10.0}
    adhoc = [f"person-{MARKER}-{i}" for i in range(3)]
    known = ["c001", "c002", "c017"]
    scorer = _key(Role.scorer)
    for cid in known:
        assert client.get(f"/v1/customers/{cid}/scores", headers=scorer).status_code == 200
    r = client.post("/v1/scores", headers=_key(Role.reviewer), json={"customer_ids": known})
    assert r.status_code == 200
    r = client.post("/v1/score", headers=scorer, json={"customer_id": adhoc[0], "events": [event]})
    assert r.status_code == 200, r.text
    features = {"recency_days": 3.0, "orders_total": 2.0}
    r = client.post(
        "/v1/score", headers=scorer, json={"customer_id": adhoc[1], "features": features}
    )
    assert r.status_code == 200, r.text

    text = "".join(p.read_text() for p in (settings.home / "audit").glob("*"))  # parts, heads
    parts = "".join(p.read_text() for p in (settings.home / "audit").glob("part-*.jsonl"))
    lines = [json.loads(line) for line in parts.splitlines()]
    assert len(lines) >= 3 * 3 + 3 * 3 + 2 * 3
    assert MARKER not in text and "person" not in text
    for line in lines:
        assert re.fullmatch(r"[0-9a-f]{64}", line["customer_hash"])
        assert not {str(v) for v in line.values()} & {*known, *adhoc}
    assert AUDIT_KEY not in text


def test_model_loading_never_unpickles(
    registry_env: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def refuse(name: str) -> Any:
        def refused(*args: object, **kwargs: object) -> None:
            calls.append(name)
            raise AssertionError(f"{name} called while loading a model")

        return refused

    for module in (pickle, _pickle, cloudpickle):
        for name in ("load", "loads", "Unpickler"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, refuse(f"{module.__name__}.{name}"))
    with pytest.raises(AssertionError):  # the trap is armed
        pickle.loads(pickle.dumps(1))
    calls.clear()
    app = create_app(make_settings(registry_env.home))
    with TestClient(app) as client:
        wait_ready(client)
        r = client.get("/v1/customers/c001/scores", headers=_key(Role.scorer))
        assert r.status_code == 200
        assert r.json()["scores"]["churn"]["model_version"] == registry_env.champion["churn"]
    assert calls == []
