"""The HTTP routes: scores, models, reload, health, readiness and metrics.

Routes are thin: they check the request, look customers up in the current
:class:`~serving.state.ServingState`, and turn its results into response models. Scoring routes are
plain ``def`` functions, so FastAPI runs their CPU work in its thread pool, off the event loop.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Final

import numpy as np
import polars as pl
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from pydantic_core import to_json

from features.contracts import RFM_WINDOWS, WHEN_MISSING, event_schema, feature_info
from features.events import MAX_VALUE_CHARS, EventsValidationError, validate_events
from features.rfm import scores_among
from features.snapshot import build_snapshot
from models.tasks import (
    get_task,
    retention_task,
    task_names,
    task_specs,
)
from models.versions import ModelFilesMissingError
from serving.days import in_the_future
from serving.deps import (
    NOT_LOADED_RETRY_AFTER,
    UNKNOWN_KEY,
    AdminRole,
    Audit,
    CurrentState,
    Holder,
    MetricsDep,
    ScorerRole,
    SettingsDep,
    loaded_state,
    not_loaded,
)
from serving.lifecycle import (
    announce_reload,
    not_served,
    not_served_now,
    pending_reloads,
    reload_state,
)
from serving.metrics import PAGE_SCORES_HELP, PLAN_ROWS_HELP, SCORES_HELP, VALUES_HELP
from serving.middleware import NOT_UTF8, SEND_UNCOMPRESSED, body_too_large, stopping_detail
from serving.presentation import (
    live_scores,
    model_infos,
    score_fragments,
    snapshot_info,
    stored_scores,
)
from serving.schemas import (
    CUSTOMER_ID_PATTERN,
    MAX_REASONS,
    TASKS_PATTERN,
    BatchScoreRequest,
    BatchScoreResponse,
    CustomerResult,
    CustomerScores,
    ErrorResponse,
    Health,
    ModelsResponse,
    Readiness,
    ReloadResponse,
    ScoreRequest,
    TaskScore,
    ValidationErrorResponse,
    out_of_range,
    range_reason,
)
from serving.state import ServingState

__all__ = [
    "CUSTOMER_ID_DOC",
    "ERRORS",
    "EXAMPLE_AS_OF",
    "EXAMPLE_TASK",
    "EXAMPLE_VALUE_VERSION",
    "GIVEN_TWICE",
    "LONE_SURROGATE",
    "MODEL_FREE_ERRORS",
    "REQUEST_ID_HEADER",
    "STOPPING",
    "TOO_DEEP",
    "TOO_MANY_DIGITS",
    "WHITESPACE_ID",
    "CheckedQuery",
    "CustomerIdPath",
    "JSONRequest",
    "JSONRoute",
    "KeysGivenOnce",
    "KeysOnce",
    "Location",
    "checked_query",
    "deepest",
    "error_answer",
    "feature_names",
    "head_answer",
    "health_router",
    "invalid_parameter",
    "lone_surrogate",
    "request_example",
    "router",
    "success_example",
    "too_many_digits",
    "whitespace_hint",
]

logger = logging.getLogger(__name__)


REQUEST_ID_HEADER: Final = {
    "X-Request-ID": {
        "description": (
            "The request's id, also in the server's log: quote it when reporting. A client's "
            "own X-Request-ID is kept when it is 1 to 128 ASCII letters, digits, '.', '_', ':' "
            "or '-', sent once; otherwise the server makes one."
        ),
        "schema": {"type": "string"},
    }
}
"""The header every answer carries (:class:`serving.middleware.RequestMetricsMiddleware`)."""


def error_answer(
    description: str,
    example: object,
    model: type = ErrorResponse,
    retry_after: bool = False,
) -> dict[str, Any]:
    """Document one error answer of a route: its schema, meaning, example body and headers.

    Parameters
    ----------
    description : str
        What the status means, and what the client does about it.
    example : object
        A body the server answers with that status (a test checks it against ``model``).
    model : type, optional
        The body's response model; default :class:`~serving.schemas.ErrorResponse`.
    retry_after : bool, optional
        Whether the answer carries ``Retry-After`` (seconds to wait), beside ``X-Request-ID``.

    Returns
    -------
    dict
        One value of a FastAPI ``responses`` mapping.
    """
    headers: dict[str, Any] = dict(REQUEST_ID_HEADER)
    if retry_after:
        headers["Retry-After"] = {
            "description": "Seconds to wait before the next request.",
            "schema": {"type": "integer"},
        }
    return {
        "model": model,
        "description": description,
        "content": {"application/json": {"example": example}},
        "headers": headers,
    }


def invalid_parameter(field: str, reason: str) -> dict[int | str, dict[str, Any]]:
    """Document the 422 of a route that takes no body with one of its own parameters.

    :data:`ERRORS`' 422 is a body field's (``body.customer_ids.0``): a route without a body
    that kept it told an integrator it validates one.

    Parameters
    ----------
    field : str
        The parameter as the 422 names it (``query.explain``, ``path.customer_id``).
    reason : str
        Why, word for word the server's answer (a test sends the request and compares).

    Returns
    -------
    dict
        The route's ``responses`` entry for 422.
    """
    return {
        422: error_answer(
            "Invalid path or query parameters (names and reasons).",
            {"detail": [{"field": field, "reason": reason}]},
            ValidationErrorResponse,
        )
    }


ERRORS: dict[int | str, dict[str, Any]] = {
    400: error_answer("The body cannot be read (not UTF-8 JSON).", {"detail": NOT_UTF8}),
    401: error_answer(
        "No API key in X-API-Key (none, or one sent in Authorization, which is not read), an "
        "unknown one, or one sent with whitespace around it (the detail says which).",
        {"detail": UNKNOWN_KEY},
    ),
    403: error_answer(
        "The key's role may not do this.",
        {"detail": "role 'scorer' may not do this; it needs admin"},
    ),
    413: error_answer(
        "Request body over the configured limit.", {"detail": body_too_large(1_048_576)}
    ),
    415: error_answer(
        "A compressed body (Content-Encoding): send it uncompressed.",
        {"detail": SEND_UNCOMPRESSED},
    ),
    422: error_answer(
        "Invalid fields (names and reasons).",
        {
            "detail": [
                {
                    "field": "body.customer_ids.0",
                    "reason": "should be a JSON string, not a number: put it in quotes",
                }
            ]
        },
        ValidationErrorResponse,
    ),
    429: error_answer(
        "Too many failed authentications from this client: wait Retry-After seconds.",
        {"detail": "too many failed attempts from this client; retry in 4 s"},
        retry_after=True,
    ),
    503: error_answer(
        "Models are not loaded yet (retry after Retry-After seconds), a requested task is not "
        "served (its champion's files are gone: put them back, promote another version with its "
        "files (`guanxi promote --task T --version N`) or train again, then reload; the detail "
        "says which), or the server is stopping (retry at once, on another "
        "instance).",
        {"detail": "models are not loaded yet"},
        retry_after=True,  # serving.deps.loaded_state, serving.middleware.stopping_detail
    ),
}
"""The errors the API routes share, documented with their schema and an example.

A router lists them all; the published document keeps on each operation those it can answer
(:func:`serving.app.answerable`): a 400, 413 or 415 where it takes a body, a 422 where it takes
parameters or a body, a 403 where a key's role may be too low."""

STOPPING: Final = error_answer(
    "The server is stopping and cancelled the request (retry at once, on another instance); "
    "never because models are not loaded: this route needs none.",
    {"detail": stopping_detail("3f2b8c0e9d6a4f1b8e7c5a2d0b9f4e6c")},
    retry_after=True,  # serving.middleware.stopping_detail
)
"""The 503 of an operation that needs no loaded model (the reload, the value routes, a plan):
only the one of a request still running when the server stops."""

MODEL_FREE_ERRORS: dict[int | str, dict[str, Any]] = {**ERRORS, 503: STOPPING}
"""The errors of a route that answers without models loaded (the value routes)."""


# the document's example answers: a customer of `guanxi demo --customers 1000` and its models
_REASONS = [
    {
        "feature": "email_open_rate_365d",
        "group": "engagement",
        "value": 0.7857,
        "contribution_points": -4.77,
        "contribution_log_odds": -0.2559,
        "sentence": "79% of e-mails opened in the last 365 days: lowers churn risk by 4.8 points",
    },
    {
        "feature": "cat_garden_share",
        "group": "products",
        "value": 0.1725,
        "contribution_points": -2.97,
        "contribution_log_odds": -0.1593,
        "sentence": "17% of spend in garden: lowers churn risk by 3.0 points",
    },
]
# the examples name tasks from their specs (no task name outside models/specs/): the retention
# task's model, and a task its rule serves
EXAMPLE_TASK: Final = (retention_task() or task_specs()[0]).name
"""The task the document's examples score: the retention task (the churn model the value table
reads), named from its spec."""
EXAMPLE_AS_OF: Final = "2025-12-31"
"""The day of the document's examples: the snapshot, value table and plan of ``guanxi demo``."""
EXAMPLE_VALUE_VERSION: Final = f"{EXAMPLE_AS_OF}/5f0c9a7e2b1d4c3e8a6f9b0d7e2c4a1f"
"""The version of the examples' value table (its day and MLflow run): the value routes' answers
and the /metrics example name it (kept here, as serving.value_routes imports this module)."""
_RULED: Final = next((s.name for s in task_specs() if s.rule_backing is not None), EXAMPLE_TASK)
_SCORED = {
    "task": EXAMPLE_TASK,
    "status": "eligible",
    "status_reason": None,
    "probability": 0.3357,
    "decile": 10,
    "band": "low",
    "log_odds": -1.4156,
    "base_log_odds": 0.1303,
    "base_probability": 0.6238,
    "model_name": EXAMPLE_TASK,
    "model_version": "1",
    "model_served_by": "XGBoost",
    "snapshot_date": EXAMPLE_AS_OF,
    "reasons": _REASONS,
    "other_inputs": {
        "inputs": 78,
        "contribution_points": -21.07,
        "contribution_log_odds": -1.1308,
        "sentence": "78 other inputs together: lower churn risk by 21.1 points",
    },
    "missing_inputs": None,
    "groups": None,
    "categories": None,
}
_SNAPSHOT = {
    "as_of": EXAMPLE_AS_OF,
    "feature_set_version": "1",
    "customers": 1000,
    "explained": dict.fromkeys(task_names(), 1.0),
}
_MODEL_INFO = {
    "task": _RULED,
    "model_name": _RULED,
    "version": "1",
    "served_by": "affinity rule",
    "aliases": ["champion", "rule"],
    "reload_pending": False,
    "feature_set_version": "1",
    "features": 80,
    "categories": ["garden", "kitchen", "toys"],
    "metrics": {"xgboost": {"roc_auc": 0.61}, "rule": {"roc_auc": 0.64}},
    "grade": "C",
}
_RELOADED = {"models": [_MODEL_INFO], "snapshot": _SNAPSHOT}
# a task left out of the load (its champion's files gone), as /readyz and its 503 say it
_NOT_SERVED = {
    EXAMPLE_TASK: not_served(
        EXAMPLE_TASK, ModelFilesMissingError(EXAMPLE_TASK, "3", "/srv/guanxi/mlartifacts")
    )
}


def request_example(**examples: object) -> dict[str, Any]:
    """Document example bodies of a route's request, as its ``openapi_extra``.

    Parameters
    ----------
    **examples : object
        Each example body by a name; a test sends each to the server.

    Returns
    -------
    dict
        The operation's ``requestBody`` with the examples.
    """
    named = {name: {"summary": name.replace("_", " "), "value": v} for name, v in examples.items()}
    return {"requestBody": {"content": {"application/json": {"examples": named}}}}


def success_example(
    body: object, media_type: str = "application/json"
) -> dict[int | str, dict[str, Any]]:
    """Document an example body of a route's 200 (its schema is the route's response model).

    The document keeps the example's nulls (:func:`serving.app.create_app` puts back those FastAPI
    drops), so an example shows a field the answer holds as null.

    Parameters
    ----------
    body : object
        A body the route answers with (a test checks it against the route's response model).
    media_type : str, optional
        Its media type; default JSON.

    Returns
    -------
    dict
        The ``200`` entry of a FastAPI ``responses`` mapping (naming ``X-Request-ID`` too).
    """
    return {200: {"content": {media_type: {"example": body}}, "headers": dict(REQUEST_ID_HEADER)}}


CUSTOMER_ID_DOC: Final = (
    "The customer's id, as in the events: any text that is not blank and holds no control "
    "character (tab, line break, NUL, ...), percent-encoded (a / as %2F, a space as %20)."
)
"""The description of a route's ``customer_id`` path parameter."""

CustomerIdPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_VALUE_CHARS,
        pattern=CUSTOMER_ID_PATTERN,
        description=CUSTOMER_ID_DOC,
    ),
]
"""A route's ``customer_id`` path parameter: an id as the events contract and
``POST /v1/scores`` take it (at most :data:`~features.events.MAX_VALUE_CHARS` characters, not
blank, no control characters). The GETs took at most 256, so a customer with a longer id was
scored in a batch but a 422 on its own; and a blank id, or one holding a line break, was a 404
"not found" where the body's is a 422 naming the field."""


WHITESPACE_ID: Final = "ids are matched exactly, never trimmed"
"""Why an id with whitespace before or after it is not found as the id without it."""


def whitespace_hint(customer_id: str, where: str, found: Callable[[str], bool]) -> str | None:
    """Say that an id not found has whitespace around it, and whether it is found without.

    An id copied with a space (``"C1 "``) answered "not found" with no hint, though the
    customer may be there as ``"C1"``; the server never trims an id (ids are exact: one may
    hold the space), so it says so instead.

    Parameters
    ----------
    customer_id : str
        The id that was not found.
    where : str
        What it was looked up in (``"the snapshot"``).
    found : callable
        Says whether an id is in it.

    Returns
    -------
    str or None
        The hint, None when the id has no whitespace before or after it.
    """
    trimmed = customer_id.strip()
    if trimmed == customer_id or not trimmed:
        return None
    without = "is in" if found(trimmed) else "is not in"
    return (
        f"the id has whitespace before or after it, and {WHITESPACE_ID}: without the "
        f"whitespace, the id {without} {where}"
    )


LONE_SURROGATE: Final = "a lone surrogate escape, \\uD800 to \\uDFFF without its pair,"
"""Why a JSON body holding half of a UTF-16 surrogate pair is refused (:class:`JSONRequest`):
the 422 reads "not valid JSON (a lone surrogate escape, \\uD800 to \\uDFFF without its pair, at
character 18): ..." (it read "... which is no character at character 18")."""

_SURROGATE_ESCAPES: Final = re.compile(
    r"\\u(d[89ab][0-9a-f]{2})(\\ud[c-f][0-9a-f]{2})?|\\u(d[c-f][0-9a-f]{2})|\\\\", re.IGNORECASE
)
"""A high surrogate's escape with its low half or without, a low one alone, or an escaped
backslash (consumed, so the ``u`` after it is not read as an escape)."""


def lone_surrogate(text: str) -> int | None:
    r"""Return where the first escape of half a surrogate pair starts in valid JSON text.

    Parameters
    ----------
    text : str
        JSON text that :func:`json.loads` reads.

    Returns
    -------
    int or None
        The offset of the escape's backslash; None when every ``\uD800``-``\uDFFF`` escape
        is one of a high and low pair.
    """
    if "\\u" not in text:
        return None
    for match in _SURROGATE_ESCAPES.finditer(text):
        if (match[1] and not match[2]) or match[3]:
            return match.start()
    return None


TOO_DEEP: Final = "arrays and objects nested too deeply to read"
"""Why a JSON body nested deeper than :func:`json.loads` reads is refused (:class:`JSONRequest`):
it was FastAPI's 400 "There was an error parsing the body", saying neither what nor where."""

_JSON_TOKENS: Final = re.compile(r'"(?:[^"\\]|\\.)*"|[\[{]|[\]}]')
"""A JSON string (skipped whole: brackets in it are text), an opening or a closing bracket."""


def deepest(text: str) -> int:
    """Return where JSON text is first nested deepest: the offset of that opening bracket.

    Parameters
    ----------
    text : str
        JSON text (its strings' brackets are not counted).

    Returns
    -------
    int
        The offset; 0 for text without brackets.
    """
    depth = most = where = 0
    for token in _JSON_TOKENS.finditer(text):
        if token[0] in "[{":
            depth += 1
            if depth > most:
                most, where = depth, token.start()
        elif token[0] in "]}":
            depth -= 1
    return where


TOO_MANY_DIGITS: Final = "a whole number of more digits than can be read"
"""Why a JSON body holding an integer longer than Python converts is refused (:class:`JSONRequest`;
:func:`sys.get_int_max_str_digits`, 4,300 digits): it was FastAPI's 400 "There was an error
parsing the body", which is not the document's 400 (not UTF-8) and says neither what nor where."""

_JSON_NUMBERS: Final = re.compile(r'"(?:[^"\\]|\\.)*"|-?(\d+)(\.\d+)?([eE][-+]?\d+)?')
"""A JSON string (skipped whole: digits in it are text) or a number, its integer digits apart."""


def too_many_digits(text: str) -> int:
    """Return where the first integer of JSON text longer than Python converts starts.

    Parameters
    ----------
    text : str
        JSON text.

    Returns
    -------
    int
        The offset of the integer (of its sign, if any); 0 when there is none.
    """
    most = sys.get_int_max_str_digits()
    for token in _JSON_NUMBERS.finditer(text):
        digits, fraction, exponent = token.groups()
        if most and digits and fraction is None and exponent is None and len(digits) > most:
            return token.start()
    return 0


GIVEN_TWICE: Final = "only one can hold, so the request is refused rather than one kept unseen"
"""What a key given twice in one object of a JSON body leads to (the offers file's words)."""

Location = tuple[str | int, ...]
"""Where a value is in a JSON document: the keys and indexes leading to it."""


def _locate(
    document: object, repeats: dict[int, tuple[object, list[str]]]
) -> list[tuple[Location, str]]:
    """Return where each object of ``repeats`` (by ``id``) is in the document, with its keys.

    In the document's order; not recursive, as the document may be nested as deeply as
    :func:`json.loads` reads. An object that a repeat of its parent's key dropped is not in the
    document (its parent's repeat is).
    """
    found: list[tuple[Location, str]] = []
    pending: list[tuple[Location, object]] = [((), document)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, dict):
            if id(value) in repeats:
                found += [(path, key) for key in repeats[id(value)][1]]
            pending += reversed([((*path, key), item) for key, item in value.items()])
        elif isinstance(value, list):
            pending += reversed([((*path, i), item) for i, item in enumerate(value)])
    return found


class JSONRequest(Request):
    r"""A request whose JSON body must be Unicode text, each object giving a key once.

    JSON may escape half of a UTF-16 surrogate pair (``"\ud800"``), which :func:`json.loads`
    takes into a ``str`` that no UTF-8 can encode: an id holding one was taken, and the answer
    that names it failed to encode, a 500. Such a body is refused as JSON that cannot be read
    (the body's 422, saying where); so is the UTF-8 encoding of a surrogate, which
    :func:`json.loads` lets pass for bytes (a 400, not UTF-8).

    JSON readers keep the last of two ``"customer_id"`` keys of one object without a word: the
    keys given twice are noted as the body is read (:attr:`repeated_keys`), in the same one
    parse, and :class:`KeysGivenOnce` refuses them after the key's check.
    """

    repeated_keys: Sequence[tuple[Location, str]] = ()
    """Each key the JSON body gives twice in one object, with where that object is (read by
    :meth:`json`; none before, or for a body not read as JSON)."""

    async def json(self) -> Any:
        """Parse the body as JSON (cached), refusing half a surrogate pair.

        Raises
        ------
        json.JSONDecodeError
            Not JSON, :data:`TOO_DEEP`, :data:`TOO_MANY_DIGITS` or :data:`LONE_SURROGATE`
            (FastAPI answers it as the body's 422).
        UnicodeDecodeError
            Not text in the encoding its first bytes give (:func:`json.detect_encoding`:
            UTF-8, or UTF-16 or UTF-32 as :func:`json.loads` reads them); FastAPI answers it
            as the 400 :data:`serving.middleware.NOT_UTF8`.
        """
        if not hasattr(self, "_json"):
            raw = await self.body()
            text = raw.decode(json.detect_encoding(raw))
            # each object holding a repeat, by id, kept alive so that no later object takes its id
            repeats: dict[int, tuple[object, list[str]]] = {}

            def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
                built = dict(pairs)
                if len(built) < len(pairs):  # rare: the keys given twice, in the body's order
                    counts = Counter(key for key, _ in pairs)
                    twice = [key for key in built if counts[key] > 1]
                    repeats[id(built)] = (built, twice)
                return built

            try:
                value = json.loads(text, object_pairs_hook=unique)
            except RecursionError:
                raise json.JSONDecodeError(TOO_DEEP, text, deepest(text)) from None
            except json.JSONDecodeError:
                raise
            except ValueError:  # an integer longer than int() reads: no position of its own
                raise json.JSONDecodeError(TOO_MANY_DIGITS, text, too_many_digits(text)) from None
            where = lone_surrogate(text)
            if where is not None:
                raise json.JSONDecodeError(LONE_SURROGATE, text, where)
            self.repeated_keys = _locate(value, repeats) if repeats else []
            self._json = value
        return self._json


class KeysGivenOnce:
    """A dependency refusing a JSON body that gives a key twice in one object: a 422 per key.

    Each names the key's field (``body.customer_ids``) and says it is given twice; a route lists
    it after its key's check (the key first, then the request). Its keys were noted as the body
    was read (:attr:`JSONRequest.repeated_keys`).

    Parameters
    ----------
    where : callable, optional
        Says more of where a repeat is, from the location of its object and the body: the
        words go in brackets after "given twice in one object" (the plan's offer and field).
    """

    def __init__(self, where: Callable[[Location, Any], str] | None = None) -> None:
        self._where = where

    async def __call__(self, request: Request) -> None:
        """Raise the 422 when the body gave a key twice in one object.

        Raises
        ------
        fastapi.exceptions.RequestValidationError
            Naming each key given twice (``body`` and its location) and why it is refused.
        """
        found = getattr(request, "repeated_keys", [])
        if not found:
            return
        body = await request.json()
        errors = []
        for path, key in found:
            said = self._where(path, body) if self._where else ""
            where = f" ({said})" if said else ""
            errors.append(
                {
                    "loc": ("body", *path, key),
                    "msg": f"{key!r} is given twice in one object{where}; {GIVEN_TWICE}",
                    "type": "value_error",
                }
            )
        raise RequestValidationError(errors)


KeysOnce = Annotated[None, Depends(KeysGivenOnce())]
"""A route's check that its JSON body gives each key once in an object (after its key's)."""


async def checked_query(request: Request) -> None:
    """Refuse a query parameter given twice, or one the operation does not take: a 422 each.

    ``?tasks=churn&tasks=repurchase`` (how many HTTP clients send a list) scored only the last
    task without a word, as a JSON key given twice kept the last (:class:`KeysGivenOnce`); and
    a misspelt parameter (``?limt=10``, ``?fromat=csv``) was ignored, so a segment's every
    customer came back, as JSON, where a body's unknown field is a 422. An operation that takes
    no query parameter still ignores any (it has nothing to misread). A route lists it after
    its key's check, as :data:`CheckedQuery`.

    Raises
    ------
    fastapi.exceptions.RequestValidationError
        Naming each parameter (``query.tasks``) and why it is refused.
    """
    if not request.query_params:
        return
    route = request.scope.get("route")
    params = route.dependant.query_params if isinstance(route, APIRoute) else []
    taken = [param.alias for param in params]
    if not taken:
        return
    counts = Counter(name for name, _ in request.query_params.multi_items())
    errors = [
        {
            "loc": ("query", name),
            "msg": f"{name!r} is given twice in the query; {GIVEN_TWICE}"
            if name in taken
            else f"not a parameter of this operation, which takes {', '.join(taken)}",
            "type": "value_error",
        }
        for name, count in counts.items()
        if count > 1 or name not in taken
    ]
    if errors:
        raise RequestValidationError(errors)


CheckedQuery = Annotated[None, Depends(checked_query)]
"""A route's check that its query names only its parameters, each once (after its key's)."""


class JSONRoute(APIRoute):
    """An API route whose body is read by :class:`JSONRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler so that it reads the request as a :class:`JSONRequest`."""
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            return await handler(JSONRequest(request.scope, request.receive))

        return checked


router = APIRouter(prefix="/v1", responses=ERRORS, route_class=JSONRoute)
health_router = APIRouter()


def _invalid(field: str, reason: str) -> RequestValidationError:
    """Build a 422 for one field, in the same shape as pydantic's own errors."""
    return RequestValidationError(
        [{"loc": tuple(field.split(".")), "msg": reason, "type": "value_error"}]
    )


def _not_served(task: str, exc: ModelFilesMissingError) -> HTTPException:
    """Build the 503 of a task left out of the load because its champion's files are gone.

    Its detail (:func:`serving.lifecycle.not_served`) names the task, version and what to do
    (put the files back, promote another version by number or train again, then reload), not
    the folder.
    """
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        not_served(task, exc),
        headers={"Retry-After": str(NOT_LOADED_RETRY_AFTER)},
    )


def _tasks(state: ServingState, requested: Sequence[str] | None, field: str) -> list[str]:
    """Return the tasks to score: the requested ones (each must be loaded), or every loaded task.

    A requested task left out of the load because its champion's files are gone is a 503
    naming its version (:func:`_not_served`); the other tasks serve. A task that is neither
    loaded nor left out (a typo) is a 422 first, whatever else the request names.
    """
    if not requested:
        return list(state.tables)
    unknown = [t for t in requested if t not in state.tables and t not in state.gone]
    if unknown:
        raise _invalid(field, f"not a loaded task; loaded tasks are {', '.join(state.tables)}")
    for task in requested:
        if task in state.gone:
            raise _not_served(task, state.gone[task])
    return list(dict.fromkeys(requested))


def _served(
    results: Sequence[tuple[str, dict[str, TaskScore]]],
) -> list[tuple[str, str, str, float]]:
    """List the (customer id, task, model version, probability) of every score served."""
    return [
        (customer_id, task, s.model_version, s.probability)
        for customer_id, scores in results
        for task, s in scores.items()
        if s.probability is not None
    ]


def _record(
    request: Request,
    audit: Audit,
    metrics: MetricsDep,
    served: list[tuple[str, str, str, float]],
) -> None:
    """Write the audit lines and count the scores served."""
    audit.record(
        request.state.request_id,
        request.state.role.name,
        served,
        key_fingerprint=request.state.key_fingerprint,
    )
    counts: dict[tuple[str, str], int] = {}
    for _, task, version, _ in served:
        counts[task, version] = counts.get((task, version), 0) + 1
    for (task, version), count in counts.items():
        metrics.observe_scores(task, version, count)


def head_answer(
    media_type: str = "application/json", headers: dict[str, str] | None = None
) -> Response:
    """Answer a ``HEAD`` request as its ``GET`` up to the body, without building the body.

    A ``GET`` operation's ``HEAD`` (``@router.head``) is checked as the ``GET`` is (the key,
    the query, the path, what is not found), then answered with this instead of the body the
    server would drop: no one is scored, no value is read out, nothing is audited or counted.

    Parameters
    ----------
    media_type : str, default "application/json"
        The ``GET`` answer's ``Content-Type``.
    headers : dict of str to str, optional
        The ``GET`` answer's other headers (a CSV's ``Content-Disposition``).

    Returns
    -------
    fastapi.responses.Response
        A 200 without a body and without ``Content-Length``, which only the body would say
        (RFC 9110, 9.3.2).
    """
    head = Response(media_type=media_type, headers=headers)
    del head.headers["content-length"]
    return head


@router.head("/customers/{customer_id:customer}/scores", include_in_schema=False)
@router.get(
    "/customers/{customer_id:customer}/scores",
    response_model=CustomerScores,
    responses={
        **success_example({"customer_id": "C0002", "scores": {EXAMPLE_TASK: _SCORED}}),
        404: error_answer(
            "Customer not in the snapshot (the detail says when the id has whitespace before or "
            "after it, and whether the id without it is).",
            {"detail": "customer not in the snapshot as of 2025-12-31"},
        ),
        **invalid_parameter(
            "query.explain", f"Input should be less than or equal to {MAX_REASONS}"
        ),
    },
    summary="Scores and reasons of one customer of the loaded snapshot",
)
def customer_scores(
    _role: ScorerRole,
    _query: CheckedQuery,  # after the key's check
    request: Request,
    holder: Holder,
    audit: Audit,
    metrics: MetricsDep,
    customer_id: CustomerIdPath,
    tasks: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=TASKS_PATTERN,
            description="Comma-separated task names; default all.",
        ),
    ] = None,
    explain: Annotated[int, Query(ge=0, le=MAX_REASONS, description="Reasons per task.")] = 5,
    group: Annotated[bool, Query(description="Group reasons by business concept.")] = False,
) -> Response:
    """Return a customer's probability, decile, band, model and reasons per task.

    ``HEAD`` answers as ``GET`` (the key's, the query's and the id's errors, the 200's
    headers) without scoring, auditing or counting anyone: it sends no scores.
    """
    state = loaded_state(holder)  # after the query's checks: a bad one is a 422 even then
    requested = [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None
    names = _tasks(state, requested, "query.tasks")
    positions = state.positions([customer_id])
    if positions[0] < 0:
        detail = f"customer not in the snapshot as of {state.snapshot.as_of}"
        hint = whitespace_hint(customer_id, "the snapshot", state.holds)
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{detail}: {hint}" if hint else detail)
    if request.method == "HEAD":  # answered up to its body: no one scored, audited or counted
        return head_answer()
    position = int(positions[0])
    fragments = score_fragments(state, position, names, explain, group)
    served = []
    for task in names:
        table = state.tables[task]
        row = int(table.top[position])
        if row >= 0:
            served.append((customer_id, task, table.model.version, float(table.proba[row])))
    _record(request, audit, metrics, served)
    scores = b",".join(to_json(task) + b":" + f for task, f in zip(names, fragments, strict=True))
    body = b'{"customer_id":' + to_json(customer_id) + b',"scores":{' + scores + b"}}"
    return Response(body, media_type="application/json")  # the CustomerScores of the fragments


@router.post(
    "/scores",
    response_model=BatchScoreResponse,
    responses=success_example(
        {
            "results": [
                {"customer_id": "C0002", "status": "ok", "scores": {EXAMPLE_TASK: _SCORED}},
                {"customer_id": "C9999", "status": "unknown", "scores": {}},
            ],
            "unknown": 1,
            "hint": None,  # or why ids are unknown: whitespace around them
        }
    ),
    openapi_extra=request_example(
        two_customers={"customer_ids": ["C0002", "C9999"], "tasks": [EXAMPLE_TASK], "explain": 2}
    ),
    summary="Scores of up to 1,000 customers; unknown ids are reported per id",
)
def batch_scores(
    _role: ScorerRole,
    _keys: KeysOnce,  # after the key's check
    request: Request,
    body: BatchScoreRequest,
    settings: SettingsDep,
    holder: Holder,
    audit: Audit,
    metrics: MetricsDep,
) -> BatchScoreResponse:
    """Return scores for each requested id, in request order."""
    if len(body.customer_ids) > settings.max_batch:
        raise _invalid("body.customer_ids", f"at most {settings.max_batch} ids per request")
    state = loaded_state(holder)  # after the body's checks; the tasks' need what is loaded
    names = _tasks(state, body.tasks, "body.tasks")
    positions = state.positions(body.customer_ids)
    known = np.flatnonzero(positions >= 0)
    scored = stored_scores(state, positions[known], names, body.explain, body.group)
    by_slot = dict(zip(known.tolist(), scored, strict=True))
    results = [
        CustomerResult(customer_id=cid, status="ok", scores=by_slot[i])
        if i in by_slot
        else CustomerResult(customer_id=cid, status="unknown")
        for i, cid in enumerate(body.customer_ids)
    ]
    _record(
        request,
        audit,
        metrics,
        _served([(r.customer_id, r.scores) for r in results if r.status == "ok"]),
    )
    unknown = len(body.customer_ids) - len(known)
    return BatchScoreResponse(
        results=results, unknown=unknown, hint=_batch_hint(state, body.customer_ids, positions)
    )


def _batch_hint(state: ServingState, ids: list[str], positions: np.ndarray) -> str | None:
    """Say how many unknown ids of a batch have whitespace around them, and the first's result.

    None when none has (the answer's ``hint``); the ids are not repeated (their results are).
    One such id is said in :func:`whitespace_hint`'s words, as its GET's 404 says it, after its
    result's index; several are counted.
    """
    spaced = [i for i in np.flatnonzero(positions < 0).tolist() if ids[i].strip() != ids[i]]
    if not spaced:
        return None
    if len(spaced) == 1:  # was its own rewording of whitespace_hint's sentence
        hint = whitespace_hint(ids[spaced[0]], "the snapshot", state.holds)
        return f"result {spaced[0]}: {hint}" if hint is not None else None
    found = int((state.positions([ids[i].strip() for i in spaced]) >= 0).sum())
    return (
        f"{len(spaced)} unknown ids have whitespace before or after them (the first: result "
        f"{spaced[0]}), and {WHITESPACE_ID}: without the whitespace, {found} of them "
        f"{'is' if found == 1 else 'are'} in the snapshot"
    )


@router.post(
    "/score",
    response_model=CustomerScores,
    responses=success_example(
        {
            "customer_id": "C0002",
            "scores": {
                EXAMPLE_TASK: {
                    **_SCORED,
                    "snapshot_date": None,  # a live score
                    "missing_inputs": ["complaints_total", "visits_web_90d"],
                }
            },
        }
    ),
    openapi_extra=request_example(
        from_features={
            "customer_id": "C0002",
            "features": {"recency_days": 12.0, "email_open_rate_365d": 0.7857},
            "tasks": [EXAMPLE_TASK],
            "explain": 2,
        },
        from_events={
            "customer_id": "C0002",
            "events": [
                {
                    "ts": "2025-12-20T10:15:00Z",
                    "event_type": "order",
                    "channel": "web",
                    "amount": 64.5,
                    "quantity": 2,
                    "ref_id": "O-1001",
                },
                {"ts": "2025-12-28T08:02:00Z", "event_type": "visit", "channel": "web"},
            ],
            "as_of": EXAMPLE_AS_OF,
            "tasks": [EXAMPLE_TASK],
            "explain": 2,
        },
    ),
    summary="Score one customer from features or raw events in the body",
)
def score_one(
    _role: ScorerRole,
    _keys: KeysOnce,  # after the key's check
    request: Request,
    body: ScoreRequest,
    holder: Holder,
    audit: Audit,
    metrics: MetricsDep,
) -> CustomerScores:
    """Score features (snapshot columns) or raw events of one customer through the pipeline."""
    state = loaded_state(holder)  # after the body's checks; its tasks and features need it
    names = _tasks(state, body.tasks, "body.tasks")
    if body.features is not None:
        frame = _features_frame(state, body.customer_id, body.features, names)
    else:
        frame = _events_frame(state, body)
    sent = None if body.features is None else set(body.features)
    scores = live_scores(state, frame, names, body.explain, body.group, sent)
    _record(request, audit, metrics, _served([(body.customer_id, scores)]))
    return CustomerScores(customer_id=body.customer_id, scores=scores)


def feature_names(state: ServingState) -> set[str]:
    """Return the feature names ``POST /v1/score`` takes: the state's snapshot columns and inputs.

    A name is known if it is a column of the loaded snapshot (not its keys ``customer_id`` and
    ``as_of``) or an input of any loaded model, whichever tasks a request asks for.

    Parameters
    ----------
    state : ServingState
        The served state.

    Returns
    -------
    set of str
        The names.
    """
    known = set(state.snapshot.frame.columns) - {"customer_id", "as_of"}
    for table in state.tables.values():
        known.update(table.model.bundle.feature_names)
    return known


_RECENCY: Final = "recency_days"
"""The days since the last order: null exactly when the customer has no order."""

_ORDER_COUNTS: Final = ("orders_total", *(f"orders_{n}d" for n in RFM_WINDOWS))
"""Order counts beside the per-category ``cat_{category}_orders`` (:func:`_order_count`)."""


def _order_count(name: str) -> bool:
    """Return whether a feature counts orders: above 0 only for a customer with an order."""
    if name in _ORDER_COUNTS:
        return True
    try:
        return feature_info(name).extra.get("template") == "cat_{category}_orders"
    except KeyError:
        return False


def _value_problems(features: dict[str, float | None]) -> dict[str, str]:
    """Find the impossible values among features sent, by name: out of range, or contradicting.

    A value outside what the feature can take (:func:`serving.schemas.feature_range`), and a
    ``recency_days`` that contradicts the order counts: null (no order yet) beside a count above
    0, or a number beside ``orders_total`` 0.
    """
    problems = {
        name: reason
        for name, value in features.items()
        if out_of_range(name, value) and (reason := range_reason(name)) is not None
    }
    if _RECENCY in problems or _RECENCY not in features:
        return problems
    if features[_RECENCY] is None:
        counted = [n for n, v in features.items() if _order_count(n) and v is not None and v > 0]
        if counted:
            problems[_RECENCY] = (
                f"null ({WHEN_MISSING[_RECENCY]}) contradicts {', '.join(counted)} above 0: send "
                "the days since the last order"
            )
    elif features.get("orders_total") == 0:
        problems[_RECENCY] = (
            "given with orders_total 0: a customer without an order has no days since the last "
            "order; send null"
        )
    return problems


def _population_problems(
    state: ServingState, tasks: Sequence[str], features: dict[str, float | None]
) -> dict[str, str]:
    """Find the columns a task's population reads that were not sent, by name, and why.

    A column not sent counts as missing: :func:`models.tasks.population_status` read a customer
    without ``recency_days`` as one without an order, a prospect, though the order counts said
    otherwise. ``orders_total`` 0 says it: no order, so no days since the last one.
    """
    needed: dict[str, list[str]] = {}
    for task in tasks:
        population = get_task(task).population
        status_of = population.status(state.tables[task].active_days)
        for column in dict.fromkeys(status_of.meta.root_names()):
            if column not in features and not (
                column == _RECENCY and features.get("orders_total") == 0
            ):
                needed.setdefault(column, []).append(task)
    problems = {}
    for column, by in needed.items():
        population = get_task(by[0]).population
        who = population.description.format(active_days=state.tables[by[0]].active_days)
        others = " or ".join(name for name, _ in population.outside)
        null = f"; send null when {WHEN_MISSING[column]}" if column in WHEN_MISSING else ""
        problems[column] = (
            f"needed by {' and '.join(by)} to tell whom it scores ({who}) from a customer it "
            f"does not ({others}){null}"
        )
    return problems


def _features_frame(
    state: ServingState,
    customer_id: str,
    features: dict[str, float | None],
    tasks: Sequence[str],
) -> pl.DataFrame:
    """Build a one-row snapshot from named feature values for the tasks to score.

    Unknown names are a 422, and so are impossible values (:func:`_value_problems`) and the
    columns the tasks' populations read that were not sent (:func:`_population_problems`), each
    naming its feature.
    """
    known = feature_names(state)
    unknown = sorted(name for name in features if name not in known)
    if unknown:
        raise RequestValidationError(
            [
                {"loc": ("body", "features", name), "msg": "unknown feature", "type": "value_error"}
                for name in unknown
            ]
        )
    problems = _population_problems(state, tasks, features) | _value_problems(features)
    if problems:
        raise RequestValidationError(
            [
                {"loc": ("body", "features", name), "msg": reason, "type": "value_error"}
                for name, reason in sorted(problems.items())
            ]
        )
    return pl.DataFrame(
        {"customer_id": [customer_id], **{k: [v] for k, v in features.items()}},
        schema={"customer_id": pl.String, **dict.fromkeys(features, pl.Float64)},
    )


def _problem_reason(message: str) -> str:
    """Return a validation message without the offending values it quotes."""
    return re.split(r" \(e\.g\. |: (?=['\"\d-])", message)[0]


def _events_frame(state: ServingState, body: ScoreRequest) -> pl.DataFrame:
    """Validate the body's events against the contract and build their one-row snapshot.

    An ``as_of`` after today is a 422 in ``guanxi score``'s words (:mod:`serving.days`): its
    events are not in yet, so every customer read as lapsed.
    """
    future = in_the_future(body.as_of) if body.as_of is not None else None
    if future is not None:
        raise _invalid("body.as_of", future)
    events = body.events or []
    records = [
        {
            **e.model_dump(),
            "customer_id": body.customer_id,
            "ts": e.ts.astimezone(UTC) if e.ts.tzinfo else e.ts.replace(tzinfo=UTC),
        }
        for e in events
    ]
    raw = pl.DataFrame(records, schema=event_schema())
    try:
        loaded = validate_events(raw, now=datetime.now(UTC), file="body.events")
    except EventsValidationError as exc:
        raise RequestValidationError(
            [
                {
                    "loc": ("body", "events", row - 1, problem.column or "")
                    if problem.rows
                    else ("body", "events"),
                    "msg": _problem_reason(problem.message),
                    "type": "value_error",
                }
                for problem in exc.errors
                for row in problem.rows or (0,)
            ]
        ) from None
    as_of = body.as_of or max(r["ts"] for r in records).date()
    # the snapshot's and the models' categories, computed once per load (ServingState.categories)
    frame = build_snapshot(loaded.frame, None, as_of, categories=list(state.categories))
    if frame.height == 0:
        raise _invalid("body.as_of", "no event on or before as_of")
    return scores_among(frame, state.snapshot.frame)  # RFM scores among the loaded customers


@router.head("/models", include_in_schema=False)
@router.get(
    "/models",
    response_model=ModelsResponse,
    responses=success_example(
        {**_RELOADED, "loaded_at": "2025-12-31T06:00:00Z", "not_served": _NOT_SERVED}
    ),
    summary="Loaded models and snapshot",
)
async def models(_role: ScorerRole, request: Request, state: CurrentState) -> ModelsResponse:
    """Return the loaded models, their versions, metrics and grade, and the snapshot.

    ``not_served`` names the tasks left out of the load and why (as ``/readyz`` does); each
    model's ``reload_pending`` says whether the registry has moved the alias the server follows
    since the load (one look at the registry per request, at most
    :data:`~serving.lifecycle.PENDING_TIMEOUT` seconds; null when it cannot be read).
    """
    pending = await pending_reloads(request.app, state)
    return ModelsResponse(
        models=model_infos(state, pending),
        snapshot=snapshot_info(state),
        loaded_at=state.loaded_at,
        not_served=not_served_now(state),
    )


@router.post(
    "/admin/reload",
    response_model=ReloadResponse,
    responses={
        **success_example(
            {
                "reloaded": True,
                **_RELOADED,
                "generation": None,  # one worker
                "workers_loaded": 1,
                "workers_failed": 0,
                "workers_waiting": 0,
                "not_served": _NOT_SERVED,
            }
        ),
        503: STOPPING,  # a failed load is the 409, loaded models or not
        409: error_answer(
            "Load failed; the old models keep serving (the detail says 'no models are serving "
            "yet' when none was ever loaded).",
            {
                "detail": "reload failed, the previous models keep serving; the reason is in "
                "the server log (request id 3f2b8c0e9d6a4f1b8e7c5a2d0b9f4e6c)"
            },
        ),
    },
    summary="Load the current champions and newest snapshot and swap them in",
)
async def reload(_role: AdminRole, request: Request, holder: Holder) -> ReloadResponse:
    """Reload; on failure the previous models keep serving and the server log says why.

    The 409 says which: "the previous models keep serving", or "no models are serving yet" when
    nothing was ever loaded (a registry unreachable from the start).

    With several workers this one loads first; the others load once it has written the new
    reload generation, and the answer comes when they all have (or ``GUANXI_RELOAD_WAIT_SECONDS``
    has passed), counting the workers that serve the new state.
    """
    error = await reload_state(request.app)
    state = holder.current
    workers = await announce_reload(request.app) if error is None else None
    if error is not None or state is None:
        # the reason names files, versions and servers: it goes to the log, not to the client
        logger.warning("request %s: reload failed: %s", request.state.request_id, error)
        # nothing loaded yet (a registry unreachable from the start): there is nothing to keep
        kept = "no models are serving yet" if state is None else "the previous models keep serving"
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"reload failed, {kept}; the reason is in the server log "
            f"(request id {request.state.request_id})",
        )
    fresh = dict.fromkeys(state.tables, False)  # just loaded from the alias: nothing pending
    if workers is None:
        return ReloadResponse(
            models=model_infos(state, fresh),
            snapshot=snapshot_info(state),
            not_served=not_served_now(state),
        )
    if workers.failed or workers.waiting:
        logger.warning(
            "request %s: reload generation %d: %d workers failed to load, %d still loading",
            request.state.request_id,
            workers.generation,
            workers.failed,
            workers.waiting,
        )
    return ReloadResponse(
        models=model_infos(state, fresh),
        snapshot=snapshot_info(state),
        generation=workers.generation,
        workers_loaded=workers.loaded,
        workers_failed=workers.failed,
        workers_waiting=workers.waiting,
        not_served=not_served_now(state),
    )


@health_router.head("/healthz", response_model=Health, include_in_schema=False)
@health_router.get(
    "/healthz",
    response_model=Health,
    responses=success_example({"status": "ok"}),
    summary="Liveness",
)
async def healthz() -> Health:
    """Answer while the process is alive; ``HEAD`` answers the same without a body.

    Uptime monitors and load balancers that probe with ``HEAD`` got a 405 and saw the service
    as down. ``HEAD`` stays out of the OpenAPI document's operations, as Starlette's implicit
    ``HEAD`` of a ``GET`` route would.
    """
    return Health()


@health_router.head("/readyz", response_model=Readiness, include_in_schema=False)
@health_router.get(
    "/readyz",
    response_model=Readiness,
    responses={
        **success_example({"ready": True, "detail": None}),
        503: error_answer(
            "Not loaded or not warmed up yet: ask again after Retry-After seconds. The detail "
            "says why: loading, what is missing and what to run (nothing promoted or built "
            "yet, as the API's 503 says), the last load failed, or warming up the explainer.",
            {"ready": False, "detail": "loading"},
            Readiness,
            retry_after=True,
        ),
    },
    summary="Readiness: models and snapshot loaded, explainer warmed up",
)
async def readyz(holder: Holder) -> Readiness | JSONResponse:
    """Answer 200 once models and snapshot are loaded and the explainer is warm, 503 before.

    The 503 carries ``Retry-After`` (:data:`~serving.deps.NOT_LOADED_RETRY_AFTER`), as the API's.
    Before anything is promoted or built, its detail is the API's 503's, which says what is
    missing and what to run (:func:`~serving.deps.not_loaded`): "last load failed; retrying"
    told an operator of an empty store of a failure that did not happen. After a load that did
    fail it is the API's 503's too, "last load failed; retrying" and why in one line (the API
    said "not loaded yet" alone meanwhile); the reason's paths and servers go to the server log
    only. ``HEAD`` answers as ``GET`` without a body, as :func:`healthz`'s.
    """
    if holder.current is not None and holder.explainer_warm:
        gone = holder.current.gone  # the other tasks serve: ready, saying which task does not
        return Readiness(
            ready=True,
            detail=" ".join(not_served(t, e) for t, e in gone.items()) or None,
        )
    if holder.current is None and (holder.missing or holder.last_error is not None):
        detail = not_loaded(holder)  # what is missing, or the last load failed and why
    elif holder.current is None:
        detail = "loading"
    else:
        detail = "warming up the explainer"
    return JSONResponse(
        Readiness(ready=False, detail=detail).model_dump(),
        status_code=503,
        headers={"Retry-After": str(NOT_LOADED_RETRY_AFTER)},
    )


_LATENCY = "guanxi_request_latency_seconds"
_SCORES_ROUTE = 'route="/v1/customers/{customer_id}/scores"'
_BUCKETS = {
    "0.001": 0, "0.0025": 112, "0.005": 1380, "0.01": 1497, "0.025": 1516, "0.05": 1519,
    "0.1": 1520, "0.25": 1520, "0.5": 1520, "1.0": 1520, "2.5": 1520, "5.0": 1520, "+Inf": 1520,
}  # fmt: skip
_METRICS = "".join(
    [
        "# HELP guanxi_requests_total HTTP requests by route template, method and status code.\n",
        "# TYPE guanxi_requests_total counter\n",
        f'guanxi_requests_total{{method="GET",{_SCORES_ROUTE},status="200"}} 1520.0\n',
        f'guanxi_requests_total{{method="GET",{_SCORES_ROUTE},status="404"}} 3.0\n',
        f"# HELP {_LATENCY} HTTP request latency by route template.\n",
        f"# TYPE {_LATENCY} histogram\n",
        *(
            f'{_LATENCY}_bucket{{le="{le}",{_SCORES_ROUTE}}} {count}.0\n'
            for le, count in _BUCKETS.items()
        ),
        f"{_LATENCY}_count{{{_SCORES_ROUTE}}} 1520.0\n",
        f"{_LATENCY}_sum{{{_SCORES_ROUTE}}} 6.384\n",
        f"# HELP guanxi_scores_served_total {SCORES_HELP}\n",
        "# TYPE guanxi_scores_served_total counter\n",
        f'guanxi_scores_served_total{{model_version="1",task="{EXAMPLE_TASK}"}} 1520.0\n',
        f"# HELP guanxi_page_scores_shown_total {PAGE_SCORES_HELP}\n",
        "# TYPE guanxi_page_scores_shown_total counter\n",
        f'guanxi_page_scores_shown_total{{model_version="1",task="{EXAMPLE_TASK}"}} 150.0\n',
        f"# HELP guanxi_values_served_total {VALUES_HELP}\n",
        "# TYPE guanxi_values_served_total counter\n",
        *(
            f'guanxi_values_served_total{{surface="{surface}",value_version='
            f'"{EXAMPLE_VALUE_VERSION}"}} {count}.0\n'
            for surface, count in (("api", 40), ("page", 26))
        ),
        f"# HELP guanxi_plan_rows_served_total {PLAN_ROWS_HELP}\n",
        "# TYPE guanxi_plan_rows_served_total counter\n",
        f'guanxi_plan_rows_served_total{{as_of="{EXAMPLE_AS_OF}"}} 100.0\n',
        "# HELP guanxi_requests_in_progress HTTP requests being answered (summed over live "
        "workers).\n",
        "# TYPE guanxi_requests_in_progress gauge\n",
        "guanxi_requests_in_progress 1.0\n",
    ]
)


@health_router.head(
    "/metrics", response_model=str, response_class=PlainTextResponse, include_in_schema=False
)
@health_router.get(
    "/metrics",
    response_model=str,
    response_class=PlainTextResponse,
    responses=success_example(_METRICS, "text/plain"),
    summary="Prometheus metrics",
)
async def metrics_endpoint(metrics: MetricsDep) -> PlainTextResponse:
    """Return request counts, latencies and scores served, in the Prometheus text format.

    ``HEAD`` answers the same without a body, as :func:`healthz`'s, for a monitor that checks
    the endpoint is up (a 405 read as down).
    """
    return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")
