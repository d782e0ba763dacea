"""A malformed request gets the 422 naming its field before it learns that nothing is loaded,
and a reviewer page says it in HTML, not the API's JSON.

The order is the key (401, 403), then the request (422), then what is loaded (503); a check that
depends on what is loaded (a task that is not served) comes after the 503.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from features.events import MAX_VALUE_CHARS
from serving.app import create_app
from serving.deps import NOT_LOADED_RETRY_AFTER, get_state, page_state
from tests.serving.conftest import StaticSource, headers, make_settings, wait_failed_once

NOT_LOADED = {
    "detail": "models are not loaded yet: last load failed; retrying (the model registry could "
    "not be read: ConnectionError; the reason is in the server log)"
}
"""The 503 of every valid API call once the first load failed (as /readyz says it)."""
TOO_LONG = "c" * (MAX_VALUE_CHARS + 1)
"""A customer id longer than the events contract takes."""

MALFORMED = [
    # (method, url, body, the field the 422 names)
    ("GET", "/v1/customers/c001/scores?explain=abc", None, "query.explain"),
    ("GET", "/v1/customers/c001/scores?explain=99", None, "query.explain"),
    ("GET", "/v1/customers/c001/scores?tasks=churn;drop", None, "query.tasks"),
    ("GET", "/v1/customers/c001/scores?group=maybe", None, "query.group"),
    ("GET", f"/v1/customers/{TOO_LONG}/scores", None, "path.customer_id"),
    ("GET", "/v1/customers/%20/scores", None, "path.customer_id"),  # blank
    ("POST", "/v1/scores", {"customer_ids": "c001"}, "body.customer_ids"),
    ("POST", "/v1/scores", {"customer_ids": ["c001"], "explain": -1}, "body.explain"),
    ("POST", "/v1/scores", {"customer_ids": ["c001"] * 6}, "body.customer_ids"),  # max_batch 5
    ("POST", "/v1/score", {"features": {"recency_days": 3}, "as_of": "2025-13-01"}, "body.as_of"),
    ("POST", "/v1/score", {"customer_id": "c001"}, "body"),  # neither features nor events
    ("GET", f"/v1/customers/{TOO_LONG}/value", None, "path.customer_id"),
    ("GET", "/v1/customers/c001%0A/value", None, "path.customer_id"),  # a line break
    ("GET", "/v1/segments/champions/customers?format=xml", None, "query.format"),
]


@pytest.fixture
def empty(tmp_path: Path, source: StaticSource) -> Iterator[TestClient]:
    """An app whose loads fail: nothing is served, every valid API call is a 503."""
    source.failure = ConnectionError("registry unreachable")
    app = create_app(make_settings(tmp_path / "h", max_batch=5), source)
    with TestClient(app) as client:
        wait_failed_once(client)  # the 503 says the failure from then on
        yield client


@pytest.mark.parametrize(("method", "url", "body", "field"), MALFORMED)
def test_a_malformed_api_request_is_a_422_while_nothing_is_loaded(
    empty: TestClient, method: str, url: str, body: object, field: str
) -> None:
    r = empty.request(method, url, json=body, headers=headers())
    assert r.status_code == 422, r.text
    assert field in {d["field"] for d in r.json()["detail"]}, r.text
    # the key still comes first: without one it is the 401, malformed or not
    assert empty.request(method, url, json=body).status_code == 401


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", "/v1/customers/c001/scores?explain=2&tasks=churn", None),
        ("POST", "/v1/scores", {"customer_ids": ["c001"]}),
        ("POST", "/v1/score", {"customer_id": "c001", "features": {"no_such_feature": 1}}),
        ("GET", "/v1/models", None),
    ],  # the value routes need no model: tests/serving/test_young_values.py
)
def test_a_valid_api_request_still_gets_the_same_503(
    empty: TestClient, method: str, url: str, body: object
) -> None:
    r = empty.request(method, url, json=body, headers=headers())
    assert r.status_code == 503, r.text
    assert r.json() == NOT_LOADED
    # before: no Retry-After, so a client polling a loading server had no idea when to ask again
    assert r.headers["retry-after"] == str(NOT_LOADED_RETRY_AFTER)
    assert r.headers["x-request-id"]


def test_readyz_and_the_pages_say_when_to_ask_again_while_nothing_is_loaded(
    empty: TestClient,
) -> None:
    ready = empty.get("/readyz")
    assert ready.status_code == 503 and ready.json()["ready"] is False
    assert ready.headers["retry-after"] == str(NOT_LOADED_RETRY_AFTER)
    assert ready.headers["x-request-id"]
    # a load balancer probing with HEAD sees the same 503 and when to ask again (it was a 405)
    head = empty.head("/readyz")
    assert head.status_code == 503 and head.content == b""
    assert head.headers["retry-after"] == str(NOT_LOADED_RETRY_AFTER)
    page = empty.get("/ui/", headers=headers("reviewer"))
    assert page.status_code == 503 and "Models are loading" in page.text
    assert page.headers["retry-after"] == str(NOT_LOADED_RETRY_AFTER)
    # the README tells integrators the value
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert f"503 with `Retry-After: {NOT_LOADED_RETRY_AFTER}`" in readme


def test_malformed_requests_are_still_422s_once_loaded(client: TestClient) -> None:
    for method, url, body, field in MALFORMED[:5]:
        r = client.request(method, url, json=body, headers=headers())
        assert r.status_code == 422 and field in r.text, (url, r.text)


def _can_be_invalid(route: APIRoute) -> bool:
    """Whether a request to the route can fail its own checks (a plain text path part cannot)."""
    dependant = route.dependant
    checked_path = [
        p
        for p in dependant.path_params
        if p.field_info.annotation is not str or p.field_info.metadata
    ]
    return bool(dependant.query_params or dependant.body_params or checked_path)


def test_no_route_with_request_parameters_takes_the_state_as_a_dependency(
    app: FastAPI,
) -> None:
    """FastAPI runs dependencies before it checks a route's own parameters: a route that took
    the state as one would answer a malformed request 503 while nothing is loaded."""
    checked = 0
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        calls = {d.call for d in route.dependant.dependencies}
        if calls & {get_state, page_state}:
            checked += 1
            assert not _can_be_invalid(route), context.path
    # the routes without parameters keep the dependency: the overview and GET /v1/models (the
    # customer page, a third until 81c2db9, answers from the store while nothing is loaded)
    assert checked >= 2


# --- the reviewer pages -------------------------------------------------------------------------


def test_a_bad_page_parameter_is_the_pages_own_422_page(client: TestClient) -> None:
    r = client.get("/ui/customers?page=abc", headers=headers("reviewer"))
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("text/html")
    assert "Content-Security-Policy" in r.headers and r.headers["Cache-Control"] == "no-store"
    assert "Cannot show this page" in r.text
    assert "parameter &#39;page&#39; must be a whole number" in r.text
    assert "abc" not in r.text  # the value sent is never shown back
    assert ">Back to the overview</a>" in r.text
    assert client.get("/ui/customers?page=2", headers=headers("reviewer")).status_code == 200


def test_a_bad_page_parameter_is_a_422_page_while_nothing_is_loaded(empty: TestClient) -> None:
    r = empty.get("/ui/customers?page=abc", headers=headers("reviewer"))
    assert r.status_code == 422 and "must be a whole number" in r.text
    page = empty.get("/ui/customers?page=2", headers=headers("reviewer"))
    assert page.status_code == 503 and "Models are loading" in page.text


def test_a_page_checks_the_caller_before_the_parameters(client: TestClient) -> None:
    r = client.get("/ui/customers?page=abc", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login?")
    scorer = client.get("/ui/customers?page=abc", headers=headers("scorer"))
    assert scorer.status_code == 403 and "text/html" in scorer.headers["content-type"]


def test_the_api_keeps_its_json_422(client: TestClient) -> None:
    r = client.get("/v1/customers/c001/scores?explain=abc", headers=headers())
    assert r.status_code == 422 and r.headers["content-type"] == "application/json"
    assert r.json()["detail"][0]["field"] == "query.explain"
