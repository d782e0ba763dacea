"""API fuzzing with schemathesis: every operation, the reviewer pages too, every role.

Schemathesis reads the app's own OpenAPI document, plus the reviewer pages (``/ui``, left out of
the published document; their form bodies included) in a document built here for the test only,
and generates requests from it: positive data that fits the schema, negative data that does not.
They are sent in-process to the ASGI app with the lifespan running. Every response goes through all
of schemathesis' default checks (:data:`CHECKS`): no 5xx; status code, content type, headers and
body as the document declares; negative data rejected, positive data accepted; authentication never
ignored (a 2xx with a key is asked again without it and with a wrong one).

Seeds. The default run and CI fuzz with fixed seeds (:data:`SEEDS`), one test per seed, its id the
seed: the same code gets the same requests and the same verdict, so a failure is the code's and
not the luck of a draw. ``GUANXI_FUZZ_SEED`` picks the seeds instead: ``random`` draws a new one
(exploration, to run now and then; a seed that finds a defect goes into :data:`SEEDS` with its
fix), a number replays one, commas separate several. Each run prints its seed, and a failure names
it with the ``GUANXI_FUZZ_SEED=<seed>`` that replays it. A seed replays the same requests with the
same schemathesis and Hypothesis versions (``pyproject.toml`` sets lower bounds only).
"""

from __future__ import annotations

import copy
import os
import random
import warnings
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS as REGISTERED
from schemathesis.checks import load_all_checks
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from models.artifact import MAX_INPUT
from serving.routes import feature_names
from serving.schemas import feature_range
from serving.ui.session import SESSION_COOKIE
from tests.serving.conftest import KEYS, SAME_ORIGIN, until

ROLES: dict[str, dict[str, str]] = {
    "none": {},
    "unknown": {"X-API-Key": "not-a-configured-key-0123"},
    **{role: {"X-API-Key": key, **SAME_ORIGIN} for role, key in KEYS.items()},
}
# examples per (operation, role, mode): full for the keys that reach the handlers
EXAMPLES = {"scorer": 110, "reviewer": 40, "admin": 60, "none": 8, "unknown": 8}
QUICK = {"scorer": 3, "reviewer": 3, "admin": 2, "none": 1, "unknown": 1}
MIN_REQUESTS = 3000
SEED_VARIABLE = "GUANXI_FUZZ_SEED"
SEEDS = {
    # the full run of stop 27's CI found ab01fb9's defect with 3940246552 (customer_id "\x85")
    "quick": (3940246552,),
    "full": (3940246552,),
}
"""The fixed seeds of each mode, run when ``GUANXI_FUZZ_SEED`` is not set."""
REQUIRED_CHECKS = {
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
    "ignored_auth",
}
PUBLIC_PAGES = {"/ui/login", "/ui/logout"}
"""Pages anyone may reach: the sign-in form and sign-out."""
PAGE = {"text/html": {"schema": {"type": "string"}}}
_PAGE_ANSWERS = {
    "200": "The page.",
    "303": "To the login form (no session), or to the page asked for after a login.",
    "401": "Unknown API key, or a wrong key typed into the login form.",
    "403": "A role too low, or a form posted from another site.",
    "404": "No such customer, task or segment.",
    "429": "Too many failed attempts from this client.",
    "503": "Models are loading.",
}
_PAGE_INVALID = "A parameter or form field that is not valid: the page names it and what it takes."


def _with_pages(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document plus the reviewer pages' operations (form bodies included).

    Read once the app is ready: ``POST /v1/score``'s feature names are the loaded snapshot's
    columns and models' inputs, which the published document can only describe in words.

    Each method of a page is its own route here, so its own operation (``GET`` and ``HEAD`` had
    one ``operationId``, and FastAPI warned of each page's duplicate in every run). The pages
    answer HTML with the codes of ``_PAGE_ANSWERS``, an invalid request included (their own 422
    page, not the API's JSON). They admit a key in ``X-API-Key`` or
    the session cookie; the sign-in and sign-out pages admit anyone.
    """
    spec = copy.deepcopy(app.openapi())
    # the feature names this deployment knows: its snapshot's columns and its models' inputs
    known = feature_names(app.state.holder.current)
    features = spec["components"]["schemas"]["ScoreRequest"]["properties"]["features"]
    for branch in features["anyOf"]:
        if branch.get("type") == "object":
            branch["propertyNames"] = {"enum": sorted(known)}
            # and the values each can take (recency_days at least 0, an RFM score 1 to 5)
            branch["properties"] = {
                name: {
                    "anyOf": [
                        {
                            "type": "number",
                            "minimum": -MAX_INPUT if low is None else low,
                            "maximum": MAX_INPUT if high is None else high,
                        },
                        {"type": "null"},
                    ]
                }
                for name in sorted(known)
                if (bounds := feature_range(name)) is not None
                for low, high in [bounds]
            }
    pages = FastAPI()  # the pages' routes again, this time in a document
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and (context.path or "").startswith("/ui"):
            for method in sorted(route.methods):  # a route a method: each its own operationId
                pages.add_api_route(
                    context.path or route.path,
                    route.endpoint,
                    methods=[method],
                    response_class=route.response_class,
                    include_in_schema=True,
                )
    extra = pages.openapi()
    for path, operations in extra["paths"].items():
        for operation in operations.values():
            answers: dict[str, Any] = {
                code: {"description": description, "content": PAGE}
                for code, description in _PAGE_ANSWERS.items()
            }
            answers["303"] = {"description": _PAGE_ANSWERS["303"]}  # a Location, no body
            if operation.get("parameters") or operation.get("requestBody"):
                answers["422"] = {"description": _PAGE_INVALID, "content": PAGE}
            operation["responses"] = answers
            operation["security"] = (
                [] if path in PUBLIC_PAGES else [{"APIKeyHeader": []}, {"SessionCookie": []}]
            )
        spec["paths"][path] = operations
    components = spec.setdefault("components", {})
    for name, component in extra.get("components", {}).get("schemas", {}).items():
        components.setdefault("schemas", {}).setdefault(name, component)
    components.setdefault("securitySchemes", {})["SessionCookie"] = {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
    }
    return spec


def _events_in_time(case: schemathesis.Case) -> schemathesis.Case:
    """Keep a generated ``POST /v1/score`` within the three time rules a JSON schema cannot say.

    No event after the current time (a later one is moved back to it), an ``as_of`` on or
    after the first event's day (an earlier one is moved up to it), and none after today (a
    later one is moved back to today). The rest of a positive case is as generated.
    """
    now = datetime.now(UTC)
    events = case.body.get("events") if isinstance(case.body, dict) else None
    days = []
    for event in events if isinstance(events, list) else []:
        if isinstance(event, dict) and isinstance(event.get("ts"), str):
            try:
                ts = datetime.fromisoformat(event["ts"])
                ts = (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).astimezone(UTC)
            except (ValueError, OverflowError):
                continue
            if ts > now:
                event["ts"], ts = now.isoformat(), now
            days.append(ts.date())
    as_of = case.body.get("as_of") if isinstance(case.body, dict) else None
    if days and isinstance(as_of, str) and date.fromisoformat(as_of) < min(days):
        case.body["as_of"] = min(days).isoformat()
    try:
        later = isinstance(as_of, str) and date.fromisoformat(case.body["as_of"]) > now.date()
    except ValueError:  # not a day: the server's 422 to give
        later = False
    if later:
        case.body["as_of"] = now.date().isoformat()
    return case


def _sent_to_login(response: Any, headers: dict[str, str]) -> bool:
    """Whether a request without credentials was sent to the login form (a page's 401)."""
    (location,) = response.headers.get("location") or [""]  # schemathesis: lists of values
    return not headers and response.status_code == 303 and location.startswith("/ui/login?")


def _offers_refused(operation: schemathesis.APIOperation, response: Any) -> bool:
    """Whether ``POST /v1/targeting`` refused the offers file, and only it (a 422 on its rules).

    The offers file's rules across fields (which kinds need a response, a category or a margin;
    names, channels and segments that must exist) are :func:`models.offers.parse_offers`'s; the
    document gives the field as a free JSON object, so a generated one is mostly refused.
    """
    if operation.label != "POST /v1/targeting" or response.status_code != 422:
        return False
    fields = {problem["field"] for problem in response.json()["detail"]}
    return bool(fields) and all(field.startswith("body.offers") for field in fields)


def _population_refused(operation: schemathesis.APIOperation, response: Any) -> bool:
    """Whether ``POST /v1/score`` refused the features for ``recency_days``, and only it.

    A task scoring active customers (churn, referral) needs it unless ``orders_total`` is 0, and
    a null one (no order yet) contradicts an order count above 0: rules across the features
    and the tasks that the document says in words only (a 422 naming the field).
    """
    if operation.label != "POST /v1/score" or response.status_code != 422:
        return False
    fields = {problem["field"] for problem in response.json()["detail"]}
    return fields == {"body.features.recency_days"}


def _checks(schema: schemathesis.BaseSchema) -> list[str]:
    """The names of the checks schemathesis runs on every response by default."""
    load_all_checks()
    config = schema.config.checks_config_for()
    return [
        check.__name__
        for check in REGISTERED.get_all()
        if config.get_by_name(name=check.__name__).enabled
    ]


def _fuzz(
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    headers: dict[str, str],
    examples: int,
    sent: Counter[int],
    run_seed: int,
) -> None:
    """Send up to ``examples`` generated requests to one operation and check every response."""
    strategy = operation.as_strategy(generation_mode=mode)
    if mode is GenerationMode.POSITIVE:
        strategy = strategy.map(_events_in_time)

    @seed(run_seed)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        response = case.call(headers=headers)
        sent[response.status_code] += 1
        excluded = []
        if mode is GenerationMode.NEGATIVE and _sent_to_login(response, headers):
            # pages check the caller before the parameters: the redirect is the 401
            excluded.append(negative_data_rejection)
        if mode is GenerationMode.POSITIVE and (
            _offers_refused(operation, response) or _population_refused(operation, response)
        ):
            excluded.append(positive_data_acceptance)
        case.validate_response(response, headers=headers, excluded_checks=excluded)

    try:
        run()
    except Unsatisfiable:
        # no input of the operation can be made invalid (no parameters, no body)
        if mode is GenerationMode.POSITIVE:
            raise


def _seeds(mode: str) -> list[int]:
    """The seeds to fuzz with: ``GUANXI_FUZZ_SEED``'s when set, else the mode's :data:`SEEDS`.

    ``GUANXI_FUZZ_SEED`` holds seeds separated by commas, each a number or ``random`` (a new
    one, drawn when the tests are collected).
    """
    given = [part.strip() for part in os.environ.get(SEED_VARIABLE, "").split(",") if part.strip()]
    if not given:
        return list(SEEDS[mode])
    return [random.SystemRandom().randrange(2**32) if s == "random" else int(s) for s in given]


def _announce(run_seed: int) -> int:
    """Print the run's seed and how to replay it; return it."""
    print(f"\nschemathesis seed {run_seed} ({SEED_VARIABLE}={run_seed} replays it)")
    return run_seed


def _fuzz_all(app: FastAPI, examples: dict[str, int], run_seed: int) -> Counter[int]:
    """Fuzz every operation (pages included) as every role, valid and invalid data.

    Returns
    -------
    Counter
        The requests sent, by status code.
    """
    ready = schemathesis.openapi.from_dict(app.openapi())
    ready.app = app
    until(
        lambda: ready["/readyz"]["GET"].Case().call().status_code == 200,
        "the app did not become ready",
    )
    schema = schemathesis.openapi.from_dict(_with_pages(app))
    schema.app = app
    checks = _checks(schema)
    assert set(checks) >= REQUIRED_CHECKS, checks

    sent: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    paths = {op.path for op in operations}
    assert paths >= {"/v1/scores", "/v1/score", "/healthz", "/ui/login", "/ui/customers"}
    for operation in operations:
        for role, headers in ROLES.items():
            for mode in GenerationMode:
                try:
                    _fuzz(operation, mode, headers, examples[role], sent, run_seed)
                except (Exception, BaseExceptionGroup) as exc:
                    raise AssertionError(
                        f"{operation.label} as {role}, {mode.value} data, failed with seed "
                        f"{run_seed}: {SEED_VARIABLE}={run_seed} replays it"
                    ) from exc
    print(
        f"fuzzed {sum(sent.values())} requests over {len(operations)} operations with checks "
        f"{', '.join(checks)}; status codes {dict(sorted(sent.items()))}"
    )
    assert not any(code >= 500 for code in sent)
    return sent


def test_each_operation_has_its_own_id(app: FastAPI, client: TestClient) -> None:
    """No two operations share an ``operationId``, in the published document or the fuzzed one.

    A client generated from a document names one function after each ``operationId``. The fuzzed
    document gave a page's ``GET`` and ``HEAD`` one, and FastAPI's "Duplicate Operation ID"
    warnings (ten a run) buried any other warning of the default run.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a document built with no warning at all
        documents = {"published": app.openapi(), "fuzzed": _with_pages(app)}  # app is client's
    for name, document in documents.items():
        ids = Counter(
            operation["operationId"]
            for operations in document["paths"].values()
            for operation in operations.values()
        )
        assert ids and max(ids.values()) == 1, (name, [i for i, n in ids.items() if n > 1])


@pytest.mark.parametrize("run_seed", _seeds("quick"))
def test_fuzz_quick(app: FastAPI, run_seed: int) -> None:
    """A few requests per operation, role and mode: the default run's look at every operation."""
    sent = _fuzz_all(app, QUICK, _announce(run_seed))
    assert sum(sent.values()) > 0


@pytest.mark.slow
@pytest.mark.parametrize("run_seed", _seeds("full"))
def test_fuzz_every_operation_and_role(app: FastAPI, run_seed: int) -> None:
    """At least 3,000 requests, no 5xx, every default check passing."""
    sent = _fuzz_all(app, EXAMPLES, _announce(run_seed))
    assert sum(sent.values()) >= MIN_REQUESTS
