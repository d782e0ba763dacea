"""The API as a marketing system's integrator meets it: the mistakes such a client makes (a
compressed body, a key that failed too often) get the API's JSON error, in the shape and with
the status the published document gives, and every error the document lists has an example of
its schema."""

from __future__ import annotations

import gzip
import html
import json
import logging
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest
from fastapi import FastAPI, params
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

import serving.schemas
import serving.targeting
from features.events import MAX_VALUE_CHARS
from features.store import Store
from serving.app import NO_ROUTE, NOT_UTF8, create_app, no_route, prefix_twice, slash_detail
from serving.deps import (
    KEY_IN_AUTHORIZATION,
    KEY_WHITESPACE,
    NO_KEY,
    REQUIRED_ROLES,
    UNKNOWN_KEY,
    Backoff,
    refused_key,
    required_key,
)
from serving.middleware import SEND_JSON, SEND_UNCOMPRESSED
from serving.routes import (
    GIVEN_TWICE,
    LONE_SURROGATE,
    MODEL_FREE_ERRORS,
    STOPPING,
    TOO_DEEP,
    TOO_MANY_DIGITS,
    JSONRoute,
    KeysGivenOnce,
    checked_query,
)
from serving.schemas import MAX_REASONS
from serving.settings import Role, Settings
from tests.serving.conftest import (
    KEYS,
    StaticSource,
    headers,
    make_settings,
    wait_failed_once,
    wait_ready,
)
from tests.serving.test_api import _conforms
from tests.serving.test_targeting import DAY, _body, _values
from tests.serving.test_value_api import store_values

OPERATIONS = [
    # (method, path template, a request of it, its body): one of every API operation
    ("GET", "/v1/customers/{customer_id}/scores", "/v1/customers/c001/scores", None),
    ("POST", "/v1/scores", "/v1/scores", {"customer_ids": ["c001"]}),
    ("POST", "/v1/score", "/v1/score", {"features": {"recency_days": 3.0}}),
    ("GET", "/v1/models", "/v1/models", None),
    ("POST", "/v1/admin/reload", "/v1/admin/reload", None),
    ("POST", "/v1/targeting", "/v1/targeting", {"budget": 100, "offers": {}}),
    ("GET", "/v1/customers/{customer_id}/value", "/v1/customers/c001/value", None),
    ("GET", "/v1/segments", "/v1/segments", None),
    ("GET", "/v1/equity", "/v1/equity", None),
    ("GET", "/v1/segments/{name}/customers", "/v1/segments/champions/customers", None),
]
WITH_BODY = [op for op in OPERATIONS if op[3] is not None]
COMPRESSIONS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "GZIP": gzip.compress,  # a coding's name is case-insensitive
}


def _api_operations(client: TestClient) -> set[tuple[str, str]]:
    paths = client.get("/openapi.json").json()["paths"]
    return {
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith("/v1/")
        for method in operations
    }


def test_every_api_operation_is_called_here(client: TestClient) -> None:
    """The cases below call every operation the document publishes (a new one joins them)."""
    assert {(method, path) for method, path, _, _ in OPERATIONS} == _api_operations(client)


@pytest.mark.parametrize(("method", "path", "url", "body"), OPERATIONS)
def test_a_trailing_slash_is_a_404_naming_the_route(
    client: TestClient, method: str, path: str, url: str, body: object
) -> None:
    """serve31: ``POST /v1/scores/`` and ``GET /v1/customers/C1/scores/`` were a bare 307 to the
    address without the slash: many clients do not send a POST's body again on a redirect, and
    the answer said nothing. Every API operation's address with a slash after it is now the
    API's JSON 404 naming the route (its template, no id) and its methods; nothing is run."""
    sent = headers("admin")
    r = client.request(method, f"{url}/", headers=sent, json=body, follow_redirects=False)
    assert r.status_code == 404, r.text
    assert r.headers["content-type"] == "application/json" and r.headers["x-request-id"]
    methods = ["GET", "HEAD"] if method == "GET" else [method]  # a GET's HEAD (serve31b)
    assert r.json() == {"detail": slash_detail(path, methods, trailing=True)}
    assert "c001" not in r.text and "champions" not in r.text


def test_a_trailing_slash_of_a_probe_is_a_404_and_a_page_s_is_redirected(
    client: TestClient,
) -> None:
    """A probe at ``/readyz/`` that counts a 3xx as up read a server still loading as ready (a
    307); it is a 404 naming ``/readyz``. A person's page in a browser is still redirected to
    its address, as before (``/ui`` to ``/ui/``, ``/ui/customers/`` and ``/docs/`` to theirs),
    but a form posted to a page's address with a slash is the pages' 404, not a redirect."""
    for probe in ("/healthz/", "/readyz/", "/metrics/"):
        r = client.get(probe, follow_redirects=False)
        template = probe.rstrip("/")
        assert r.json() == {"detail": slash_detail(template, ["GET", "HEAD"], trailing=True)}
    assert client.head("/readyz/", follow_redirects=False).status_code == 404
    for page, to in [("/ui", "/ui/"), ("/ui/customers/", "/ui/customers"), ("/docs/", "/docs")]:
        for method in ("GET", "HEAD"):
            r = client.request(method, page, follow_redirects=False)
            assert r.status_code == 307 and r.headers["location"].endswith(to), (method, page)
    r = client.post("/ui/login/", data={"key": "x"}, follow_redirects=False)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert client.get("/no/such/", follow_redirects=False).json() == {"detail": NO_ROUTE}


def test_a_form_posted_to_a_page_address_with_a_slash_names_the_page(client: TestClient) -> None:
    """serve31b: ``POST /ui/login/`` was the pages' "There is no reviewer page at this address"
    alone, where the API's address names its route: the pages' 404 names the page and its
    methods too."""
    r = client.post("/ui/login/", data={"key": "x"}, follow_redirects=False)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    said = slash_detail("/ui/login", ["GET", "HEAD", "POST"], trailing=True)
    assert html.escape(said[:1].upper() + said[1:]) in r.text


def test_a_trailing_slash_behind_a_proxy_names_the_route_with_its_prefix(app: FastAPI) -> None:
    """serve31b: served under ``/crm`` (``--root-path``), ``POST /crm/v1/scores/`` named
    ``/v1/scores``, an address the client cannot reach through the proxy; it names
    ``/crm/v1/scores``."""
    with TestClient(app, root_path="/crm") as proxied:
        r = proxied.post("/crm/v1/scores/", headers=headers(), json={"customer_ids": ["c001"]})
        assert r.status_code == 404, r.text
        assert r.json() == {"detail": slash_detail("/crm/v1/scores", ["POST"], trailing=True)}
        r = proxied.post("/crm/ui/login/", data={"key": "x"}, follow_redirects=False)
        assert "/crm/ui/login (GET, HEAD, POST)" in r.text


def test_an_address_with_the_prefix_twice_says_the_proxy_must_strip_it(app: FastAPI) -> None:
    """web32b: served under ``/crm`` (``--root-path``) behind a proxy that passes the prefix on,
    every request reached ``/crm/crm/...`` (uvicorn puts the prefix before each path) and was
    the 404 saying the API is under /v1/, which the client had asked for; it says the proxy
    must strip the prefix. A mistyped address under the prefix is still the plain 404, which
    names the addresses under the prefix (web33: it named /v1/, unreachable through the proxy)."""
    with TestClient(app, root_path="/crm") as proxied:
        for path in ("/crm/crm/v1/models", "/crm/crm/ui/login", "/crm/crm"):
            r = proxied.get(path, headers=headers(), follow_redirects=False)
            assert r.status_code == 404 and r.json() == {"detail": prefix_twice("/crm")}, path
        assert "must strip /crm before passing a request on" in prefix_twice("/crm")
        for path in ("/crm/v2/models", "/crm/"):
            r = proxied.get(path, headers=headers())
            assert r.status_code == 404 and r.json() == {"detail": no_route("/crm")}, path
        assert "under /crm/v1/, its health at /crm/healthz and /crm/readyz, the reviewer " in (
            no_route("/crm")
        )
        assert proxied.get("/crm/healthz").status_code == 200


@pytest.mark.parametrize("coding", sorted(COMPRESSIONS))
@pytest.mark.parametrize(("method", "path", "url", "body"), WITH_BODY)
def test_a_compressed_body_is_a_415_saying_to_send_it_uncompressed(
    client: TestClient, coding: str, method: str, path: str, url: str, body: object
) -> None:
    """Before: a gzip body was a 400 "There was an error parsing the body" (FastAPI read the
    compressed bytes as text), which no status of the document told apart from a broken
    client; now a 415, documented, naming the header and what to send."""
    sent = {**headers("admin"), "Content-Type": "application/json", "Content-Encoding": coding}
    content = COMPRESSIONS[coding](json.dumps(body).encode())
    r = client.request(method, url, headers=sent, content=content)
    assert r.status_code == 415, r.text
    assert r.json() == {"detail": SEND_UNCOMPRESSED}
    assert r.headers["x-request-id"]
    _conforms(client, method, path, r)


def test_an_identity_coding_is_no_compression(client: TestClient) -> None:
    sent = {**headers(), "Content-Encoding": "identity"}
    r = client.post("/v1/scores", headers=sent, json={"customer_ids": ["c001"], "explain": 0})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("method", "path", "url", "body"), WITH_BODY)
def test_a_body_that_is_not_utf8_says_so_and_what_to_send(
    client: TestClient, method: str, path: str, url: str, body: object
) -> None:
    """Before: ids exported as Latin-1 (``José``) gave a 400 "There was an error parsing the
    body"; now the 400 says the body is not UTF-8 and what to send, never quoting it."""
    sent = {**headers("admin"), "Content-Type": "application/json"}
    content = json.dumps({"customer_ids": ["José"]}, ensure_ascii=False).encode("latin-1")
    r = client.request(method, url, headers=sent, content=content)
    assert r.status_code == 400, r.text
    assert r.json() == {"detail": NOT_UTF8}
    assert "Jos" not in r.text
    _conforms(client, method, path, r)


@pytest.mark.parametrize(("method", "path", "url", "body"), WITH_BODY)
@pytest.mark.parametrize(
    ("escape", "at"),
    [("\\ud800", 0), ("x\\udc00", 1), ("\\ude00\\ud83d", 0), ("\\ud83d\\ud83d\\ude00", 0)],
)
def test_a_json_string_with_half_a_surrogate_pair_is_a_422(
    client: TestClient, method: str, path: str, url: str, body: object, escape: str, at: int
) -> None:
    """serve28: JSON may escape half of a UTF-16 surrogate pair (``"\\ud800"``), which is no
    character: an id or a feature name holding one was taken, then the answer could not be
    encoded, a 500. Now it is the body's 422, saying where, never quoting it."""
    key = next(iter(body))  # type: ignore[call-overload]
    content = f'{{"{key}": ["{escape}"]}}'
    sent = {**headers("admin"), "Content-Type": "application/json"}
    r = client.request(method, url, headers=sent, content=content.encode())
    assert r.status_code == 422, r.text
    where = len(key) + 7 + at  # the lone half's escape, after '{"key": ["'
    reason = f"not valid JSON ({LONE_SURROGATE} at character {where}): {SEND_JSON}"
    assert r.json()["detail"] == [{"field": "body", "reason": reason}]
    # it read "(a \\uD800-\\uDFFF escape without its other half, which is no character at
    # character 18)"
    assert f"\\uDFFF without its pair, at character {where})" in reason
    _conforms(client, method, path, r)


def test_escaped_pairs_and_backslashes_stay_what_they_are(client: TestClient) -> None:
    """A pair escaped as two halves is one character; an escaped backslash before ``ud800`` is
    text, not an escape."""
    sent = {**headers(), "Content-Type": "application/json"}
    content = b'{"customer_ids": ["\\ud83d\\ude00", "\\\\ud800", "\\\\\\ud83d\\ude00"]}'
    r = client.post("/v1/scores", headers=sent, content=content)
    assert r.status_code == 200, r.text
    ids = [row["customer_id"] for row in r.json()["results"]]
    assert ids == ["\U0001f600", "\\ud800", "\\\U0001f600"]


def test_a_surrogate_encoded_in_utf8_is_not_utf8(client: TestClient) -> None:
    """serve28: the UTF-8 bytes of half a surrogate pair (which UTF-8 cannot hold) were read as
    that half (json.loads reads bytes with surrogatepass), then the answer could not be encoded,
    a 500; they are the 400 of a body that is not UTF-8."""
    sent = {**headers(), "Content-Type": "application/json"}
    r = client.post("/v1/scores", headers=sent, content=b'{"customer_ids": ["\xed\xa0\x80"]}')
    assert r.status_code == 400, r.text
    assert r.json() == {"detail": NOT_UTF8}


@pytest.mark.parametrize(("method", "path", "url", "body"), WITH_BODY)
def test_json_nested_too_deeply_is_a_422_saying_where(
    client: TestClient, method: str, path: str, url: str, body: object
) -> None:
    """serve28: arrays nested deeper than Python's parser reads were FastAPI's 400 "There was an
    error parsing the body", saying neither what nor where; now the body's 422 says both."""
    key = next(iter(body))  # type: ignore[call-overload]
    content = f'{{"{key}": "[{{", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    sent = {**headers("admin"), "Content-Type": "application/json"}
    r = client.request(method, url, headers=sent, content=content.encode())
    assert r.status_code == 422, r.text
    where = len(key) + 16 + 100_000 - 1  # the last '[': brackets in the string do not count
    reason = f"not valid JSON ({TOO_DEEP} at character {where}): {SEND_JSON}"
    assert r.json()["detail"] == [{"field": "body", "reason": reason}]
    _conforms(client, method, path, r)


@pytest.mark.parametrize(("method", "path", "url", "body"), WITH_BODY)
def test_a_key_given_twice_is_a_422_naming_it_on_every_body(
    client: TestClient, method: str, path: str, url: str, body: dict[str, object]
) -> None:
    """serve30: only the plan refused a key given twice in one object; every other body kept
    the last of ``{"customer_ids": ["a"], "customer_ids": ["b"]}`` without a word, scoring ids
    the client did not mean. Every body refuses it, naming the field, after the key's check."""
    key, value = next(iter(body.items()))
    given = json.dumps(value)
    content = f'{{"{key}": {given}, "{key}": {given}}}'.encode()
    sent = {"Content-Type": "application/json"}
    assert client.request(method, url, headers=sent, content=content).status_code == 401
    r = client.request(method, url, headers={**sent, **headers("admin")}, content=content)
    assert r.status_code == 422, r.text
    reason = f"{key!r} is given twice in one object; {GIVEN_TWICE}"
    assert r.json()["detail"] == [{"field": f"body.{key}", "reason": reason}]
    _conforms(client, method, path, r)


def test_a_key_given_twice_deep_in_a_body_is_named_where_it_is(client: TestClient) -> None:
    """A repeat inside a nested object is named by its path (an event's index, a feature's
    name); each object's repeats once, in the body's order; the same key in two objects is none."""
    twice = f"is given twice in one object; {GIVEN_TWICE}"
    sent = {**headers(), "Content-Type": "application/json"}
    event = '{"ts": "2025-12-20T10:00:00Z", "event_type": "visit", "channel": "web"}'
    repeated = '{"ts": "2025-12-20T10:00:00Z", "event_type": "order", "amount": 1, "amount": 9, '
    repeated += '"channel": "web", "amount": 5, "channel": "app"}'
    content = f'{{"events": [{event}, {repeated}], "customer_id": "c001"}}'
    r = client.post("/v1/score", headers=sent, content=content.encode())
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == [
        {"field": "body.events.1.amount", "reason": f"'amount' {twice}"},
        {"field": "body.events.1.channel", "reason": f"'channel' {twice}"},
    ]
    content = '{"features": {"recency_days": 3, "recency_days": 300}, "explain": 0}'
    r = client.post("/v1/score", headers=sent, content=content.encode())
    assert r.json()["detail"] == [
        {"field": "body.features.recency_days", "reason": f"'recency_days' {twice}"}
    ]
    content = f'{{"events": [{event}, {event}], "customer_id": "c001", "explain": 0}}'
    r = client.post("/v1/score", headers=sent, content=content.encode())
    assert r.status_code == 200, r.text  # the same keys in two objects: no repeat


def test_every_route_with_a_body_refuses_a_key_given_twice(client: TestClient) -> None:
    """A route that reads a JSON body (a form is none) reads it with :class:`JSONRoute`'s
    request and lists a :class:`KeysGivenOnce` after its key's check: a new one cannot keep a
    repeat unseen."""
    routes = {
        (method, context.path_format): context.original_route
        for context in iter_route_contexts(client.app.routes)  # type: ignore[attr-defined]
        if isinstance(context.original_route, APIRoute)
        and context.original_route.body_field is not None
        and not isinstance(context.original_route.body_field.field_info, params.Form)
        for method in context.original_route.methods
    }
    assert set(routes) == {(method, path) for method, path, _, _ in WITH_BODY}
    for route in routes.values():
        assert isinstance(route, JSONRoute), route.path
        calls = [d.call for d in route.dependant.dependencies]
        checks = [i for i, call in enumerate(calls) if isinstance(call, KeysGivenOnce)]
        roles = [i for i, call in enumerate(calls) if call in REQUIRED_ROLES]
        assert len(checks) == 1 and roles and roles[0] < checks[0], route.path


@pytest.mark.parametrize(("method", "path", "url", "body"), WITH_BODY)
def test_a_whole_number_of_too_many_digits_is_a_422_saying_where(
    client: TestClient, method: str, path: str, url: str, body: object
) -> None:
    """serve30: an integer of more than 4,300 digits (more than Python's int() reads) was
    FastAPI's 400 "There was an error parsing the body": not the document's 400 (not UTF-8),
    saying neither what nor where. Now the body's 422 says both; digits in a string, a fraction
    or an exponent are no such integer."""
    key = next(iter(body))  # type: ignore[call-overload]
    many = "9" * (sys.get_int_max_str_digits() + 1)
    content = f'{{"{key}": ["{many}", 1.{many}, 1e5], "x": -{many}}}'
    sent = {**headers("admin"), "Content-Type": "application/json"}
    r = client.request(method, url, headers=sent, content=content.encode())
    assert r.status_code == 422, r.text
    where = content.index(f"-{many}")
    reason = f"not valid JSON ({TOO_MANY_DIGITS} at character {where}): {SEND_JSON}"
    assert r.json()["detail"] == [{"field": "body", "reason": reason}]
    _conforms(client, method, path, r)


def test_a_client_held_back_gets_the_documented_429_on_every_operation(client: TestClient) -> None:
    """Before: after failed keys every API operation answered 429 with Retry-After, but the
    document listed no 429, so a client generated from it had no case for the wait."""
    # the backoff's clock stands still: the wait never runs out while the operations are called
    client.app.state.backoff = Backoff(free=0, most_seconds=60, clock=lambda: 0.0)  # type: ignore[attr-defined]
    assert client.get("/v1/models", headers={"X-API-Key": "a guess"}).status_code == 401
    for method, path, url, body in OPERATIONS:
        r = client.request(method, url, headers=headers("admin"), json=body)
        assert r.status_code == 429, (url, r.text)
        assert int(r.headers["retry-after"]) >= 1
        _conforms(client, method, path, r)


def test_every_documented_error_has_an_example_of_its_schema(client: TestClient) -> None:
    """Before: no response of the document had an example or named a header; now every error
    of every API operation has an example, valid against the response model the document
    names, and names X-Request-ID (and the 429 its Retry-After)."""
    document = client.get("/openapi.json").json()
    for method, path in sorted(_api_operations(client)):
        responses = document["paths"][path][method.lower()]["responses"]
        for code, answer in responses.items():
            if code.startswith("2"):
                continue
            content = answer["content"]["application/json"]
            assert "example" in content, (method, path, code)
            model = getattr(serving.schemas, content["schema"]["$ref"].rsplit("/", 1)[-1])
            model.model_validate(content["example"])
            # every answer carries its request id (the middleware's): the document says so
            assert "X-Request-ID" in answer["headers"], (method, path, code)
        # the backoff's 429 and the not-loaded (or stopping) 503 say when to ask again
        for code in {"429", "503"} & set(responses):
            assert "Retry-After" in responses[code]["headers"], (method, path, code)
    assert "Retry-After" in document["paths"]["/readyz"]["get"]["responses"]["503"]["headers"]


ASKED = {
    # (method, path template): (a request of it a loaded server answers, its body)
    ("GET", "/healthz"): ("/healthz", None),
    ("GET", "/readyz"): ("/readyz", None),
    ("GET", "/metrics"): ("/metrics", None),
    **{(m, path): (url, body) for m, path, url, body in OPERATIONS if path != "/v1/targeting"},
    ("POST", "/v1/targeting"): ("/v1/targeting", _body()),
}
"""Every operation of the document with a valid request (a plan's with offers the server takes)."""

ABSENT = {
    **ASKED,
    ("GET", "/v1/customers/{customer_id}/scores"): ("/v1/customers/nobody/scores", None),
    ("POST", "/v1/scores"): ("/v1/scores", {"customer_ids": ["nobody"]}),
    ("POST", "/v1/score"): ("/v1/score", {"customer_id": "nobody", "features": {}}),
    ("GET", "/v1/customers/{customer_id}/value"): ("/v1/customers/nobody/value", None),
    ("GET", "/v1/segments/{name}/customers"): ("/v1/segments/nosuch/customers", None),
}
"""Each operation asking for what the server has not: a customer or a segment (no value table)."""

JUNK = "?explain=-1&format=xml&tasks=%3B"
TOO_LONG = "c" * (MAX_VALUE_CHARS + 1)
"""A customer id longer than the events contract takes."""
INVALID = {
    **{op: (url + JUNK, body) for op, (url, body) in ASKED.items()},  # no parameter: ignored
    ("GET", "/v1/customers/{customer_id}/scores"): ("/v1/customers/c001/scores?explain=-1", None),
    ("POST", "/v1/scores"): ("/v1/scores", {"customer_ids": "c001"}),
    ("POST", "/v1/score"): ("/v1/score", {"customer_id": "c001"}),
    ("POST", "/v1/targeting"): ("/v1/targeting", _body(budget=-1)),
    ("GET", "/v1/customers/{customer_id}/value"): (f"/v1/customers/{TOO_LONG}/value", None),
    ("GET", "/v1/segments/{name}/customers"): ("/v1/segments/champions/customers?format=xml", None),
}
"""Each operation with an invalid parameter or body, where it has any (else query junk)."""


def _provoke(
    client: TestClient, code: int, request: tuple[str, str], settings: Settings
) -> httpx2.Response:
    """Send an operation the request that makes its server answer ``code`` if it can (to one
    that takes no body, the body errors' request: it must be answered as without a body)."""
    method = request[0]
    url, body = (ABSENT if code == 404 else INVALID if code == 422 else ASKED)[request]
    key = headers("scorer" if code == 403 else "admin")
    if code == 401:
        return client.request(method, url, json=body)
    if code == 400:  # ids exported as Latin-1 (an operation without a body ignores one)
        latin1 = json.dumps({"customer_ids": ["José"]}, ensure_ascii=False)
        sent = {**key, "Content-Type": "application/json"}
        return client.request(method, url, headers=sent, content=latin1.encode("latin-1"))
    if code == 415:  # an operation without a body ignores one, compressed or not
        sent = {**key, "Content-Encoding": "gzip", "Content-Type": "application/json"}
        return client.request(method, url, headers=sent, content=gzip.compress(b"{}"))
    if code == 413:  # before: a GET with a body over the limit was a 413 it does not list
        content = b"x" * (settings.max_body_bytes + 1)
        return client.request(method, url, headers=key, content=content)
    return client.request(method, url, headers=key, json=body)


ERROR_CODES = [400, 401, 403, 404, 409, 413, 415, 422, 429, 503]
"""Every error status the document lists (a new one needs its provocation in :func:`_provoke`)."""


def _listed(document: dict[str, object]) -> dict[tuple[str, str], dict[int, dict[str, object]]]:
    paths: dict[str, dict[str, dict[str, dict[str, dict[str, object]]]]] = document["paths"]  # type: ignore[assignment]
    return {
        (method.upper(), path): {
            int(code): answer
            for code, answer in operation["responses"].items()
            if not code.startswith("2")
        }
        for path, operations in paths.items()
        for method, operation in operations.items()
    }


def test_the_document_lists_only_error_statuses_the_test_provokes(client: TestClient) -> None:
    listed = _listed(client.get("/openapi.json").json())
    assert set(listed) == set(ASKED)
    assert {code for errors in listed.values() for code in errors} <= set(ERROR_CODES)


@pytest.mark.parametrize("code", ERROR_CODES)
def test_each_operation_lists_exactly_the_errors_it_can_answer(
    tmp_path: Path, source: StaticSource, code: int
) -> None:
    """Before: every API operation listed every error of the API: a GET without body or
    parameters a 400 "not UTF-8 JSON", a 413, a 415 and a 422, the scorers' operations a 403
    (no key's role is below a scorer's), the reload a 503 "models are not loaded yet" (its
    failed load is a 409). A client generated from the document handled errors that never come.

    The document is walked: for each operation the request that would make it answer ``code``
    is sent, for real, to a test app in the state that answers it (a held-back client for the
    429, no loaded model for the 503, a failing reload and an unsigned value table for the
    409), and the operation gets ``code`` exactly when it lists it: one that takes no body is
    sent the body errors' bodies too (over the limit, compressed, not UTF-8) and answers as
    without them (before, a GET with a body over the limit was a 413 it did not list, and the
    test sent it none). One is checked by a structural rule instead, as no request provokes it
    on a test client: the 503 of :data:`serving.routes.STOPPING`, which the middleware answers
    to any request cancelled as the server stops (tested in test_supervisor.py): every
    operation that needs a key lists a 503, this one where it answers no not-loaded 503."""
    settings = make_settings(tmp_path / "home", max_body_bytes=4096)
    if code == 503:
        source.failure = ConnectionError("registry unreachable")
    with TestClient(create_app(settings, source)) as client:
        if code == 503:
            wait_failed_once(client)
        else:
            wait_ready(client)
        if code == 429:  # the clock stands still: the wait never runs out
            client.app.state.backoff = Backoff(free=0, most_seconds=60, clock=lambda: 0.0)  # type: ignore[attr-defined]
            assert client.get("/v1/models", headers={"X-API-Key": "a guess"}).status_code == 401
        if code == 409:  # a reload that fails; a value table written without GUANXI_STORE_KEY
            source.failure = ConnectionError("registry unreachable")
            Store(settings.home).write_values(
                _values(), DAY, horizon_days=365, discount_rate=0.1, basis="revenue", fit={}
            )
        document = client.get("/openapi.json").json()
        for (method, path), errors in sorted(_listed(document).items()):
            operation = document["paths"][path][method.lower()]
            answer = _provoke(client, code, (method, path), settings)
            got = answer.status_code
            keyed = any(operation.get("description", "").endswith(required_key(r)) for r in Role)
            if code == 503 and keyed:  # one the server cancels as it stops: either 503 says so
                assert 503 in errors, (method, path)
            if code == 503 and errors.get(503, {}).get("description") == STOPPING["description"]:
                assert got != 503, (method, path, answer.text)  # it needs no loaded model
                assert keyed, (method, path)
                continue
            assert (got == code) == (code in errors), (method, path, got, answer.text)
            if got == code:
                _conforms(client, method, path, answer)


def test_the_plan_route_lists_the_errors_of_a_route_without_models() -> None:
    """One definition of them (:data:`serving.routes.MODEL_FREE_ERRORS`): the targeting router
    filtered its own copy of ERRORS, without a 503, which :mod:`serving.app` then filled in (it
    no longer does: every router lists its 503)."""
    responses = serving.targeting.targeting_router.responses
    assert responses[503] is STOPPING
    assert all(responses[code] is answer for code, answer in MODEL_FREE_ERRORS.items())


EXAMPLED = [
    ("GET", "/v1/customers/{customer_id}/scores"),
    ("POST", "/v1/scores"),
    ("POST", "/v1/score"),
    ("GET", "/v1/models"),
    ("POST", "/v1/admin/reload"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("POST", "/v1/targeting"),
    ("GET", "/v1/customers/{customer_id}/value"),
    ("GET", "/v1/segments"),
    ("GET", "/v1/equity"),
    ("GET", "/v1/segments/{name}/customers"),
]
"""The operations whose JSON success has an example in the document: every API operation's."""


def test_every_api_operation_has_a_success_example(client: TestClient) -> None:
    """Before: the value routes and ``POST /v1/targeting`` had none (api24's note)."""
    assert _api_operations(client) <= set(EXAMPLED)


@pytest.mark.parametrize(("method", "path"), EXAMPLED)
def test_a_success_has_an_example_of_its_schema(client: TestClient, method: str, path: str) -> None:
    """Before: no answer of the document had an example; every operation's success now has
    one, valid against the response model (its nulls kept)."""
    document = client.get("/openapi.json").json()
    content = document["paths"][path][method.lower()]["responses"]["200"]["content"]
    example = content["application/json"]["example"]
    name = content["application/json"]["schema"]["$ref"].rsplit("/")[-1]
    model = getattr(serving.schemas, name, None) or getattr(serving.targeting, name)
    model.model_validate(example, strict=False)
    # every field of the model is in the example, as in every answer (nulls included)
    assert set(example) == set(model.model_fields), (path, set(model.model_fields) ^ set(example))


PARAMETERS_ONLY = {
    # (a GET that takes parameters and no body): a request its 422 example answers
    "/v1/customers/{customer_id}/scores": f"/v1/customers/c001/scores?explain={MAX_REASONS + 1}",
    "/v1/customers/{customer_id}/value": f"/v1/customers/{TOO_LONG}/value",
    "/v1/segments/{name}/customers": "/v1/segments/loyal/customers?format=xlsx",
}


ID_PATHS = ["/v1/customers/{customer_id}/scores", "/v1/customers/{customer_id}/value"]
"""The GETs taking a customer id in the path."""


@pytest.mark.parametrize("path", ID_PATHS)
@pytest.mark.parametrize("sent", ["%20", "%09", "%C2%A0%E3%80%80", "c001%0A", "c%00d", "c%7F"])
def test_a_blank_id_or_one_with_a_control_character_is_a_422_in_the_path_too(
    client: TestClient, path: str, sent: str
) -> None:
    """serve30: the GETs answered a blank id, or one holding a line break, with the 404 "not
    in the snapshot", as if it were an id looked up; it is a malformed request, which the
    bodies' ids already refuse with a 422 naming the field (the same rule and words)."""
    url = path.replace("{customer_id}", sent)
    r = client.get(url, headers=headers())
    assert r.status_code == 422, r.text
    reason = f"should be {serving.schemas.PATTERN_REASONS[serving.schemas.CUSTOMER_ID_PATTERN]}"
    assert r.json() == {"detail": [{"field": "path.customer_id", "reason": reason}]}
    _conforms(client, "GET", path, r)
    assert client.get(url).status_code == 401  # the key first


@pytest.mark.parametrize("path", ID_PATHS)
def test_an_id_with_inner_spaces_or_any_script_is_looked_up(client: TestClient, path: str) -> None:
    """Spaces inside an id, a ``/`` and non-Latin text are an id's own: looked up, not refused."""
    for sent in ["c%20001", "%E6%97%A5%E6%9C%AC", "a%2Fb", "%20c001"]:
        r = client.get(path.replace("{customer_id}", sent), headers=headers())
        assert r.status_code == 404, (sent, r.text)


@pytest.mark.parametrize(
    ("path", "query", "twice"),
    [
        ("/v1/customers/c001/scores", "tasks=churn&explain=0&tasks=repurchase", ["tasks"]),
        (
            "/v1/customers/c001/scores",
            "explain=1&group=true&explain=1&group=false",
            ["explain", "group"],
        ),
        ("/v1/segments/champions/customers", "limit=1&offset=0&limit=500", ["limit"]),
    ],
)
def test_a_query_parameter_given_twice_is_a_422_naming_it(
    client: TestClient, path: str, query: str, twice: list[str]
) -> None:
    """serve30: ``?tasks=churn&tasks=repurchase``, how many HTTP clients send a list, scored
    only repurchase without a word (the last of the two, as a JSON key given twice was). Each
    parameter given twice is a 422 naming it, after the key's check."""
    r = client.get(f"{path}?{query}", headers=headers())
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == [
        {"field": f"query.{name}", "reason": f"{name!r} is given twice in the query; {GIVEN_TWICE}"}
        for name in twice
    ]
    assert client.get(f"{path}?{query}").status_code == 401  # the key first


@pytest.mark.parametrize(
    ("path", "query", "unknown", "takes"),
    [
        (
            "/v1/customers/c001/scores",
            "explian=0&task=churn",
            ["explian", "task"],
            "tasks, explain, group",
        ),
        (
            "/v1/segments/champions/customers",
            "limt=10&fromat=csv&x=1&x=2",
            ["limt", "fromat", "x"],
            "format, limit, offset",
        ),
    ],
)
def test_a_query_parameter_the_operation_does_not_take_is_a_422_naming_it(
    client: TestClient, path: str, query: str, unknown: list[str], takes: str
) -> None:
    """serve30: a misspelt parameter was ignored: ``?limt=10`` answered the segment's every
    customer, ``?fromat=csv`` JSON, ``?explian=0`` five reasons, where a body's unknown field
    is a 422. Each is a 422 naming it and what the operation takes."""
    r = client.get(f"{path}?{query}", headers=headers())
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == [
        {
            "field": f"query.{name}",
            "reason": f"not a parameter of this operation, which takes {takes}",
        }
        for name in unknown
    ]
    _conforms(
        client, "GET", path.replace("c001", "{customer_id}").replace("champions", "{name}"), r
    )
    assert client.get(f"{path}?{query}").status_code == 401  # the key first


def test_an_operation_without_query_parameters_still_ignores_any(client: TestClient) -> None:
    """It has nothing to misread, and lists no 422 for its query (a cache-buster stays harmless)."""
    assert client.get("/v1/models?_=1&_=2", headers=headers()).status_code == 200
    r = client.get("/v1/customers/c001/value?_=1", headers=headers())
    assert r.status_code == 404, r.text  # no value table: the query is not what is refused


def test_every_route_with_query_parameters_checks_its_query(client: TestClient) -> None:
    """A route taking query parameters lists :data:`CheckedQuery` after its key's check."""
    routes = [
        context.original_route
        for context in iter_route_contexts(client.app.routes)  # type: ignore[attr-defined]
        if isinstance(context.original_route, APIRoute)
        and context.original_route.dependant.query_params
        and context.path_format.startswith("/v1/")
    ]
    assert len({route.endpoint for route in routes}) == 2  # GET's and HEAD's (serve31b)
    for route in routes:
        calls = [d.call for d in route.dependant.dependencies]
        roles = [i for i, call in enumerate(calls) if call in REQUIRED_ROLES]
        assert calls.count(checked_query) == 1, route.path
        assert roles and roles[0] < calls.index(checked_query), route.path


def test_each_operation_without_a_body_that_lists_a_422_is_checked_here(
    client: TestClient,
) -> None:
    """A new one joins :data:`PARAMETERS_ONLY`, so its 422 example is checked as the others."""
    paths = client.get("/openapi.json").json()["paths"]
    listed = {
        path
        for path, operations in paths.items()
        for operation in operations.values()
        if "422" in operation["responses"] and "requestBody" not in operation
    }
    assert listed == set(PARAMETERS_ONLY)


@pytest.mark.parametrize(("path", "url"), sorted(PARAMETERS_ONLY.items()))
def test_a_422_example_names_a_parameter_as_a_real_answer_does(
    client: TestClient, path: str, url: str
) -> None:
    """Before: the GETs, which take no body, gave as their 422 the shared example of a body
    field (``body.customer_ids.0``): ``GET /v1/customers/{customer_id}/scores`` until 5cf4abe,
    the value routes until now, so an integrator read that they validate a body. Each now
    gives one of its own parameters, word for word what the server answers for it."""
    paths = client.get("/openapi.json").json()["paths"]
    answer = paths[path]["get"]["responses"]["422"]
    example = answer["content"]["application/json"]["example"]
    real = client.get(url, headers=headers())
    assert real.status_code == 422 and real.json() == example, real.text
    assert "parameters" in answer["description"]


def test_the_document_reads_true_to_an_integrator(client: TestClient) -> None:
    """Before: a success named no X-Request-ID (every answer carries it); /v1/segments and
    /v1/equity documented their 404 as "or no such customer", though they take none, and a
    segment's customers did not say an unknown segment is a 404; the customer_id path part did
    not say how to send an id with a / in it."""
    paths = client.get("/openapi.json").json()["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert "X-Request-ID" in operation["responses"]["200"]["headers"], (method, path)
            answer = client.request(method.upper(), path.replace("{", "").replace("}", ""))
            assert answer.headers["x-request-id"]  # whatever the status: every answer has it
    for path in ("/v1/segments", "/v1/equity"):
        assert "customer" not in paths[path]["get"]["responses"]["404"]["description"]
    segment = paths["/v1/segments/{name}/customers"]["get"]["responses"]["404"]
    assert "no such segment or tier" in segment["description"]
    for path in ("/v1/customers/{customer_id}/scores", "/v1/customers/{customer_id}/value"):
        (customer_id,) = [p for p in paths[path]["get"]["parameters"] if p["in"] == "path"]
        assert "%2F" in customer_id["description"], path


@pytest.mark.parametrize(("method", "path", "url", "body"), OPERATIONS)
def test_each_operation_says_which_keys_it_admits(
    client: TestClient, method: str, path: str, url: str, body: object
) -> None:
    """Before: the document named the X-API-Key header but not which roles an operation admits
    (POST /v1/targeting a reviewer's, the reload an admin's), which only a 403 then told."""
    operation = client.get("/openapi.json").json()["paths"][path][method.lower()]
    said = [role for role in Role if operation["description"].endswith(required_key(role))]
    assert len(said) == 1, operation["description"]
    for role in Role:  # what it says is what it does
        r = client.request(method, url, json=body, headers=headers(role.name))
        assert (r.status_code == 403) == (role < said[0]), (role, r.status_code, r.text)


REQUESTED = [("POST", "/v1/scores"), ("POST", "/v1/score"), ("POST", "/v1/targeting")]
"""The operations whose request body has examples in the document: every one that takes a body."""


@pytest.mark.parametrize(("method", "path"), REQUESTED)
def test_each_request_example_is_a_request_the_server_takes(
    client: TestClient, settings: Settings, method: str, path: str
) -> None:
    """Before: no request body had an example, so a client's author wrote the offers file as
    JSON and the events of a live score from the schemas alone; each example now is valid, and
    the server answers it (a plan with the demo's day needs that day's value table: its 404)."""
    operation = client.get("/openapi.json").json()["paths"][path][method.lower()]
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    assert examples
    for name, example in examples.items():
        r = client.request(method, path, json=example["value"], headers=headers("admin"))
        expected = 404 if path == "/v1/targeting" else 200
        assert r.status_code == expected, (name, r.text)
        if expected == 404:
            assert "no value table" in r.json()["detail"], r.text


def test_every_operation_with_a_body_has_request_examples(client: TestClient) -> None:
    assert {(m, p) for m, p, _, body in OPERATIONS if body is not None} == set(REQUESTED)


def test_the_segment_csv_example_has_the_columns_of_the_export(
    tmp_path: Path, source: StaticSource
) -> None:
    """The CSV export's example (before: no example, no schema) has the header it streams."""
    settings = make_settings(tmp_path / "home")
    store_values(settings.home)
    with TestClient(create_app(settings, source)) as client:
        wait_ready(client)
        paths = client.get("/openapi.json").json()["paths"]
        real = client.get("/v1/segments/champions/customers?format=csv", headers=headers())
    csv_doc = paths["/v1/segments/{name}/customers"]["get"]["responses"]["200"]["content"]
    example = csv_doc["text/csv"]["example"]
    assert real.status_code == 200, real.text
    assert example.splitlines()[0] == real.text.splitlines()[0]
    assert len(example.splitlines()[1].split(",")) == len(real.text.splitlines()[1].split(","))


def test_the_metrics_example_is_prometheus_text_of_the_real_metrics(client: TestClient) -> None:
    """Before: /metrics had no example; now its text parses, and names the metrics, labels and
    latency buckets a real answer has (a page's scores, the values and the plan rows served
    included)."""
    assert client.get("/v1/customers/c001/scores?explain=1", headers=headers()).status_code == 200
    assert client.get("/ui/customers", headers=headers("reviewer")).status_code == 200
    store_values(client.app.state.settings.home)  # type: ignore[attr-defined]
    assert client.post("/v1/admin/reload", headers=headers("admin")).status_code == 200
    assert client.get("/v1/customers/c000/value", headers=headers()).status_code == 200
    assert client.get("/ui/value", headers=headers("reviewer")).status_code == 200
    client.app.state.settings.store().write_values(  # type: ignore[attr-defined]
        _values(), DAY, horizon_days=365, discount_rate=0.1, basis="revenue", fit={}
    )
    planned = client.post("/v1/targeting", json=_body(as_of=str(DAY)), headers=headers("reviewer"))
    assert planned.status_code == 200, planned.text
    document = client.get("/openapi.json").json()
    content = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    example = content["text/plain"]["example"]

    def families(text: str) -> dict[str, tuple[set[str], set[str]]]:
        return {
            f.name: (
                {label for s in f.samples for label in s.labels},
                {s.labels["le"] for s in f.samples if "le" in s.labels},
            )
            for f in text_string_to_metric_families(text)
        }

    documented, real = families(example), families(client.get("/metrics").text)
    assert documented and all(documented[name] == real[name] for name in documented), documented


def test_an_example_keeps_the_fields_an_answer_holds_as_null(client: TestClient) -> None:
    """Before: FastAPI dropped every null of the document, so the scores example lacked the
    ``status_reason``, ``missing_inputs``, ``groups`` and ``categories`` every answer holds (as
    null), and the readiness example its ``detail``: a client took them for absent."""
    paths = client.get("/openapi.json").json()["paths"]
    scores = paths["/v1/customers/{customer_id}/scores"]["get"]["responses"]["200"]
    (score,) = scores["content"]["application/json"]["example"]["scores"].values()
    real = client.get("/v1/customers/c001/scores?explain=2", headers=headers()).json()
    (answered,) = list(real["scores"].values())[:1]
    assert set(score) == set(answered)
    assert score["status_reason"] is None and score["groups"] is None
    ready = paths["/readyz"]["get"]["responses"]["200"]["content"]["application/json"]["example"]
    assert ready == {"ready": True, "detail": None}


def test_a_plan_without_a_value_table_names_no_folder_of_the_server(
    client: TestClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: ``POST /v1/targeting`` on a store without value tables answered 404 "the store
    (/the/server's/home/values) holds no value table: ..." to any reviewer key; the API keeps
    paths of the server in its log. Now the 404 says what to run, and the log names the folder."""
    with caplog.at_level(logging.INFO, logger="serving.targeting"):
        r = client.post("/v1/targeting", json=_body(), headers=headers("reviewer"))
    assert r.status_code == 404, r.text
    assert r.json()["detail"].startswith("the store holds no value table: run `guanxi value")
    assert str(settings.home) not in r.text
    assert str(settings.store().value_dir) in caplog.text
    _conforms(client, "POST", "/v1/targeting", r)


PASTED = ["{} ", "{}\t", "{}\xa0", "{}\u2003"]
"""A key as a copy-paste brings it: a space or tab after it (uvicorn's httptools keeps trailing
ones; it strips leading ones, as h11 strips both), a no-break or em space after it (sent in
UTF-8, as curl sends what was pasted; no server strips them). The test client refuses a header
with leading whitespace: those are below, in the form the server hands them over."""


def _key(pasted: str, key: str) -> dict[str, bytes]:
    """The header as UTF-8 bytes (the test client takes no str that is not ASCII)."""
    return {"X-API-Key": pasted.format(key).encode()}


@pytest.mark.parametrize("pasted", PASTED)
def test_a_key_with_whitespace_around_it_is_a_401_that_says_so(
    client: TestClient, pasted: str
) -> None:
    """Before: a bare 401 "missing or unknown API key", so the integrator compared the key
    character by character; now the detail names the whitespace, and only that: a wrong key
    with whitespace gets the very same answer, and neither answer quotes the key."""
    good = client.get("/v1/models", headers=_key(pasted, KEYS["scorer"]))
    wrong = client.get("/v1/models", headers=_key(pasted, "a guess"))
    for r in (good, wrong):
        assert r.status_code == 401, r.text
        assert r.json() == {"detail": KEY_WHITESPACE}
        assert r.headers["www-authenticate"] == "APIKey"
        assert KEYS["scorer"] not in r.text and "guess" not in r.text
        _conforms(client, "GET", "/v1/models", r)
    unknown = client.get("/v1/models", headers={"X-API-Key": "a guess"})
    assert unknown.json() == {"detail": UNKNOWN_KEY}  # without whitespace: as before
    page = client.get("/ui/", headers=_key(pasted, KEYS["reviewer"]))
    assert page.status_code == 401 and "whitespace before or after it" in page.text
    assert KEYS["reviewer"] not in page.text


def test_a_key_with_whitespace_around_it_counts_toward_the_backoff(client: TestClient) -> None:
    """It is not the key: each try is a failed authentication, so pasting keys with whitespace
    around them cannot probe the configured keys faster than guessing does."""
    client.app.state.backoff = Backoff(free=2, most_seconds=60, clock=lambda: 0.0)  # type: ignore[attr-defined]
    for _ in range(3):
        r = client.get("/v1/models", headers=_key("{} ", KEYS["scorer"]))
        assert r.status_code == 401 and r.json() == {"detail": KEY_WHITESPACE}
    held = client.get("/v1/models", headers=headers())  # the good key, sent alone
    assert held.status_code == 429 and int(held.headers["retry-after"]) >= 1


@pytest.mark.parametrize(
    "presented",
    [
        " key",  # a leading space (servers strip it; an ASGI server that does not)
        "\tkey",
        "\xa0key",  # a no-break space sent in Latin-1
        "\xc2\xa0key",  # ... in UTF-8, as the server hands its bytes over (Latin-1)
        "key\xe2\x80\x83",  # an em space after it, in UTF-8
        "   ",
    ],
)
def test_whitespace_before_or_after_a_key_is_named_however_it_was_sent(presented: str) -> None:
    assert refused_key(presented) == KEY_WHITESPACE


@pytest.mark.parametrize("presented", ["key", "a guess", "k\xe9y", "\xc3"])
def test_a_key_without_surrounding_whitespace_is_merely_unknown(presented: str | None) -> None:
    """A space inside a key is the key's, and bytes that are not UTF-8 are read as sent."""
    assert refused_key(presented) == refused_key(presented, authorization=True) == UNKNOWN_KEY


def test_no_key_is_a_401_saying_so_and_where_the_key_goes(client: TestClient) -> None:
    """serve31: no X-API-Key, or the key sent as ``Authorization: Bearer <key>`` (as many HTTP
    clients send a token), answered "missing or unknown API key in X-API-Key", so the
    integrator checked a key that was never read. Now the 401 says there is no key, and that
    the Authorization header is not read, never quoting it; each still counts as a failure."""
    for sent, detail in [
        ({}, NO_KEY),
        ({"X-API-Key": ""}, NO_KEY),
        ({"Authorization": f"Bearer {KEYS['scorer']}"}, KEY_IN_AUTHORIZATION),
        ({"Authorization": KEYS["scorer"]}, KEY_IN_AUTHORIZATION),
    ]:
        r = client.post("/v1/scores", headers=sent, json={"customer_ids": ["c001"]})
        assert r.status_code == 401 and r.json() == {"detail": detail}, r.text
        assert r.headers["www-authenticate"] == "APIKey" and KEYS["scorer"] not in r.text
        _conforms(client, "POST", "/v1/scores", r)
    sent = {"Authorization": "Bearer x", "X-API-Key": "a guess"}
    assert client.get("/v1/models", headers=sent).json() == {"detail": UNKNOWN_KEY}
