"""The reviewer pages and their rendering: overview, customer list, customer, model cards.

Pages are for keys of the ``reviewer`` role or higher (:func:`serving.deps.reviewer_role`). A
reviewer logs in at ``/ui/login`` (:mod:`serving.ui.login`) with an API key and keeps a signed,
HTTP-only, SameSite session cookie (see :mod:`serving.ui.session`); tools may send ``X-API-Key``
instead. Without either, a page redirects to the login form; an
unknown key is a 401 and a ``scorer`` key a 403. Pages need no JavaScript, every chart has a text
alternative, and responses carry a strict Content-Security-Policy and ``Cache-Control: no-store``
(they show customer data).

Routes are plain ``def`` functions where they compute (scores, explanations, the history, the
registry), so FastAPI runs them in its thread pool, off the event loop.

- ``/ui/``: the loaded models, their grades and score distributions.
- ``/ui/customers``: a searchable, sortable, paginated customer list.
- ``/ui/customers/{id}``: scores, the customer's value (CLV two ways, P(alive), expected next
  order, value tier), waterfalls, grouped reasons, RFM segment and recent history; while no
  model is loaded, the value and history alone, saying there are no scores yet and what to run.
- ``/ui/models/{task}``: champion and challenger model cards side by side.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import partial
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlencode

import numpy as np
import polars as pl
from cachetools import LRUCache
from fastapi import APIRouter, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from mlflow.exceptions import MlflowException

from features.contracts import MISSING, SCORE_RANGES, quoted_near
from features.formatting import minus_signs, money_text
from features.rfm import segment_name
from features.store import Store
from models import registry
from models.aliases import shown_aliases
from models.artifact import MODEL_METRICS, RULE_BACKED
from models.drift import format_measure
from models.metrics import MIN_BIN_ROWS
from models.ranking import BANDS
from models.registry import ModelNotFoundError
from models.targeting import NO_GROUP_NAMES
from models.tasks import (
    ELIGIBLE,
    NO_CANDIDATES,
    get_task,
    retention_task,
    task_names,
    task_specs,
)
from serving.deps import (
    Holder,
    LoginRequiredError,
    PageError,
    PageState,
    Reviewer,
    app_path,
    base_path,
    loaded_page_state,
    reviewer_role,
    served_values,
)
from serving.lifecycle import Preparing, followed_version, not_served_now, read_in_time
from serving.metrics import Metrics
from serving.middleware import SECURITY_HEADERS
from serving.presentation import stored_scores
from serving.routes import CustomerIdPath, whitespace_hint
from serving.schemas import PATTERN_REASONS, TaskScore
from serving.settings import Role, Settings
from serving.state import ServingState, StateHolder
from serving.ui.cards import (
    ModelCards,
    VersionCard,
    comparison_note,
    load_cards,
    measured_on,
    numeric_metrics,
    training_params,
)
from serving.ui.charts import (
    Chart,
    WaterfallStep,
    bar_chart,
    format_count,
    format_date,
    format_number,
    format_percent,
    format_points,
    format_rate,
    format_signed_percent,
    gains_chart,
    histogram,
    reliability_chart,
    waterfall,
)
from serving.ui.history import CustomerHistory, HistoryUnreadableError, customer_history
from serving.value_routes import VALUE_TASK
from serving.values import NO_SEGMENT, NO_VALUES, LoadedValues

__all__ = [
    "HERE",
    "MISSING_HTML",
    "PAGE_METHODS",
    "PAGE_SIZE",
    "WATERFALL_REASONS",
    "ValueChurn",
    "customer_churn",
    "environment",
    "error_page",
    "filters",
    "group_name",
    "http_error_page",
    "invalid_page",
    "is_page",
    "login_redirect",
    "render",
    "router",
    "sentence",
    "served_alias",
    "shown_churn",
    "value_churn",
    "value_command",
]

logger = logging.getLogger(__name__)

PAGE_METHODS: Final = ["GET", "HEAD"]
"""A page's methods: ``HEAD`` answers as ``GET`` without a body (a link checker's, a monitor's);
one route, so a ``GET`` is matched and answered as before. It was a 405."""
PAGE_SIZE: Final = 50
"""Customers per page of the customer list."""
_NO_HISTORY: Final = (
    "The store holds no history for the served snapshot: build the snapshot from the events "
    "with `guanxi features build` to show it here."
)
_NO_VALUE_HISTORY: Final = (
    "The store holds no history as of {day}, the value table's day: build that day's snapshot "
    "from the events with `guanxi features build --events PATH --as-of {iso}` to show it here."
)
_UNREADABLE_HISTORY: Final = (
    "The store's history as of {day} cannot be read (the server's log names the file and why, "
    "request id {request_id}): build that day's snapshot again from the events with "
    "`guanxi features build --events PATH --as-of {iso}` to show it here."
)
WATERFALL_REASONS: Final = 8
"""Contributions drawn per waterfall; the rest form one "other features" bar."""

HERE: Final = Path(__file__).parent
"""The package directory, which holds ``templates/`` and ``static/``."""
_GROUP_TITLES: Final = {
    "rfm": "Recency, frequency & spend",
    "engagement": "Engagement",
    "service": "Service",
    "loyalty": "Loyalty",
    "products": "Products",
    "profile": "Profile",
    "value": "Value",
    "other": "Other",
}
_SECURITY_HEADERS: Final = {
    **SECURITY_HEADERS,
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
}
_FACTS: Final = (
    ("Days since last order", "recency_days", "number"),
    ("Orders in total", "orders_total", "number"),
    ("Spend in total", "spend_total", "money"),
    ("Orders, last 90 days", "orders_90d", "number"),
    ("Customer for (days)", "tenure_days", "number"),
    ("Unresolved complaints", "unresolved_complaints", "number"),
    ("E-mail open rate, 90 days", "email_open_rate_90d", "percent"),
)

router = APIRouter(prefix="/ui", include_in_schema=False)


MISSING_HTML: Final = Markup(
    f'<span aria-hidden="true">{MISSING}</span><span class="sr-only">not available</span>'
)
""":data:`features.contracts.MISSING` as a page writes it: a screen reader read the bare mark as
"em dash" (a tile's "not scored", a table's cell without a figure); it now reads "not available",
and a sighted reader sees the mark as before."""


def _name_missing(value: Any) -> Any:
    """Give the missing mark, printed alone (``{{ MISSING }}``, ``{{ x|pct }}`` of None), a name.

    The environment's ``finalize``: every ``{{ }}`` that prints exactly :data:`MISSING` prints
    :data:`MISSING_HTML`; a mark inside a longer text (a chart's SVG, an attribute) is kept.
    """
    return MISSING_HTML if isinstance(value, str) and value == MISSING else value


def environment() -> Environment:
    """Return the Jinja2 environment of the reviewer pages and the drift report's file.

    Autoescaped, with :func:`filters`, the ``MISSING`` global and the missing mark named for a
    screen reader (:data:`MISSING_HTML`).

    Returns
    -------
    jinja2.Environment
        The environment, loading ``serving/ui/templates``.
    """
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        finalize=_name_missing,
    )
    env.filters.update(filters())
    # the mark of a figure a page has not got, as the CLI prints it: {{ MISSING }}
    env.globals["MISSING"] = MISSING
    return env


def filters() -> dict[str, Any]:
    """Return the Jinja2 filters the templates use (numbers, dates, names for people).

    Returns
    -------
    dict of str to callable
        Filter name to function.
    """
    return {
        "pct": format_percent,
        "signed_pct": format_signed_percent,  # an error over or under: +8.4%, −8.4%
        "rate": format_rate,  # a rate chosen by someone (a discount rate): 7.5%, 10%
        "points": format_points,
        # a difference of rates (0.2) in percentage points (+20.0 pts)
        "rate_points": lambda v: format_points(None if v is None else 100 * v),
        "num": format_number,
        # a drift measure: an infinite W / sd (a constant reference that moved) read "—" here
        "measure": format_measure,
        "score": _score_text,  # an event's score as the reasons say it: {{ 7.0|score("survey") }}
        "counted": format_count,  # a number and its noun: {{ n|counted("event") }} -> "1 event"
        # in cents, or with the digits an amount short of half a cent needs (a budget of 0.001
        # showed as 0.00, none), as guanxi target prints it since 725b242
        "money": lambda v: (
            format_number(v) if v is None or not np.isfinite(v) else minus_signs(money_text(v))
        ),
        "minus": minus_signs,  # a signed figure written in the template: +0.0123, −0.0123
        "reason": _reason_text,
        "day": format_date,
        "quote": lambda v: quote(str(v), safe=""),
        "task_title": _task_title,
        "group_title": lambda g: _GROUP_TITLES.get(str(g), str(g).replace("_", " ").title()),
        "label": lambda s: str(s).replace("_", " "),
        "status": _status_title,
        # a customer without an RFM segment is "unsegmented", as the list's filter names them
        # (their cell read "not available" under the filter "unsegmented")
        "segment": lambda s: segment_name(s) if s else NO_GROUP_NAMES["rfm_segment"],
        # a customer without a value tier (no CLV) is "untiered", as the value page's tier table
        # names them (the customer page's "Value tier" read "—")
        "tier": lambda t: group_name(t) if t else NO_GROUP_NAMES["value_tier"],
        "group_name": group_name,
        "metric_name": _metric_name,
        "metric": _metric_value,
        "change": _metric_change,
        "metric_key": lambda pair: registry.metric_key(*pair),
        # a promoted challenger as `guanxi models` says it: "champion (was challenger)", not
        # "@challenger @champion"
        "aliases": shown_aliases,
    }


def group_name(name: str) -> str:
    """Name an RFM segment or a value tier for people.

    Parameters
    ----------
    name : str
        A value of ``rfm_segment`` or ``value_tier`` (:data:`models.clv.VALUE_TIERS`).

    Returns
    -------
    str
        E.g. ``"cant_lose"`` -> ``"can't lose"`` (:func:`features.rfm.segment_name`),
        ``"top_5pct"`` -> ``"top 5%"``; any other name with ``_`` read as a space.
    """
    tier = re.fullmatch(r"top_(\d+)pct", name)
    return f"top {tier.group(1)}%" if tier else segment_name(name)


def _reason_text(sentence: str) -> str:
    """Show a reason without its effect, which the page shows as its points beside it.

    Parameters
    ----------
    sentence : str
        The API's sentence, e.g. ``"order trend -0.50 (last 90 days against the 90 before):
        raises churn risk by 4.1 points"``.

    Returns
    -------
    str
        ``"order trend −0.50 (last 90 days against the 90 before)"``: a negative value with
        the minus sign of the points beside it (:func:`features.formatting.minus_signs`), where it
        read ``-0.50`` next to ``−4.1 pts``.
    """
    return minus_signs(sentence.rsplit(": ", 1)[0])


def _score_text(score: float | None, event_type: str) -> str:
    """Show an event's score as the reasons do: ``"1 of 10"`` (a survey), ``"4.5 of 5"`` (a review).

    The scale is :data:`features.contracts.SCORE_RANGES`; the table showed ``"1.0"`` where the
    reason said "last survey score 1 of 10". No score is empty; another event's is the number.
    """
    if score is None or not math.isfinite(score):
        return ""
    text = format_number(score, 0 if float(score).is_integer() else 1)
    scale = SCORE_RANGES.get(event_type)
    return f"{text} of {scale[1]:g}" if scale is not None else text


def _status_title(status: str) -> str:
    """Name a status for people: ``lapsed``, ``prospect``; nothing left to rank: ``all bought``."""
    return "all bought" if status == NO_CANDIDATES else str(status).replace("_", " ")


def _task_title(task: str) -> str:
    """Name a task for people by its spec's title; an unknown name is shown as given."""
    titles = {spec.name: spec.title for spec in task_specs()}
    return titles.get(str(task), str(task))


def _metric_name(pair: tuple[str, str], task: str | None = None) -> str:
    """Name a model's metric for people: ``("xgboost", "roc_auc")`` -> ``XGBoost ROC-AUC``.

    A baseline is named as ``task``'s spec titles it: ``("rule", "roc_auc")`` of churn ->
    ``Recency rule ROC-AUC``.
    """
    model, name = pair
    return f"{registry.model_title(model, task)} {registry.metric_title(name)}"


def _metric_value(value: float | None) -> str:
    """Format a metric: a whole number (a count of rows) as an integer, any other to 4 decimals."""
    if value is None:
        return MISSING
    return format_number(value, 0 if float(value).is_integer() else 4)


def _metric_change(value: float | None) -> str:
    """Format a metric's change with its sign (empty when there is nothing to compare)."""
    if value is None:
        return ""
    return ("+" if value >= 0 else "") + _metric_value(value)


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    """Render a page with the common context and the security headers.

    Parameters
    ----------
    request : fastapi.Request
        The request.
    name : str
        Template file under ``templates/``.
    context : dict
        The page's own values (the common ones: base path, role, the loaded tasks, or every
        task while nothing is loaded, the snapshot, and the tasks the load left out with why,
        shown as a banner: qa43 M3).
    status_code : int, default 200
        HTTP status.

    Returns
    -------
    fastapi.responses.HTMLResponse
        The page, with the Content-Security-Policy and ``no-store`` headers.
    """
    templates: Jinja2Templates = request.app.state.ui_templates
    holder: StateHolder = request.app.state.holder
    state = holder.current
    base = base_path(request)
    common = {
        "base": base,
        "role": getattr(request.state, "role", None),
        # with nothing loaded the menu leads to every task's model page, which says what to run
        "tasks": list(state.tables) if state is not None else task_names(),
        "snapshot": state.snapshot if state is not None else None,
        # each task the load left out and why (/readyz's sentence): a banner on every page
        "not_served": not_served_now(state) if state is not None else {},
    }
    response = templates.TemplateResponse(
        request, name, {**common, **context}, status_code=status_code
    )
    response.headers.update(_SECURITY_HEADERS)
    return response


async def login_redirect(request: Request, exc: Exception) -> Response:
    """Send a browser without a session to the login form, back to the page it asked for."""
    target = exc.target if isinstance(exc, LoginRequiredError) else "/ui/"
    base = base_path(request)
    return RedirectResponse(
        f"{base}/ui/login?{urlencode({'next': target})}", status.HTTP_303_SEE_OTHER
    )


async def error_page(request: Request, exc: Exception) -> Response:
    """Show a :class:`~serving.deps.PageError` as an HTML page with its status code."""
    if not isinstance(exc, PageError):  # pragma: no cover - registered for PageError only
        raise exc
    headers = {"WWW-Authenticate": "APIKey"} if exc.status_code == 401 else {}
    headers |= exc.headers
    response = _error(request, exc.title, exc.message, exc.status_code)
    response.headers.update(headers)
    return response


_SECTIONS: Final = {
    "customers": "the customer list",
    "value": "the value page",
    "plan": "the plan",
    "campaign": "the campaigns",
    "drift": "the drift report",
}
"""The menu's pages an address under them leads back to, and how the way back names each."""
_WRONG_ADDRESS: Final = frozenset({404, 405, 422})
"""Statuses of an address (or form) that is wrong where its section is not."""


def _way_back(request: Request, code: int) -> tuple[str, str] | None:
    """Return the address and name of the menu page the failed address is under, if any.

    Read from the request's own path, never its ``Referer`` (a header anyone sets): an unknown
    customer at ``/ui/customers/C9`` leads back to the customer list, ``/ui/models/churn/x`` to
    the churn model. None when the status is not a wrong address's (a 503 there is everywhere),
    the address is the overview's or no section's, or it is that page's own address as sent.
    """
    if code not in _WRONG_ADDRESS:
        return None
    root = base_path(request)
    parts = app_path(request).split("/")[2:]  # after /ui/
    if parts and parts[0] in _SECTIONS:
        path, name = f"/ui/{parts[0]}", _SECTIONS[parts[0]]
    elif len(parts) > 1 and parts[0] == "models" and parts[1] in task_names():
        path, name = f"/ui/models/{parts[1]}", f"the {_task_title(parts[1])} model"
    else:
        return None
    here = request.scope.get("path", "") == f"{root}{path}" and not request.url.query
    return None if here else (f"{root}{path}", name)


def _error(request: Request, title: str, message: str, code: int) -> HTMLResponse:
    """Render the pages' error page: its title and message, and the ways back."""
    context = {"title": title, "message": message, "back": _way_back(request, code)}
    return render(request, "error.html", context, code)


def _shown(request: Request, role: Role, served: list[tuple[str, str, str, float]]) -> None:
    """Audit what a page shows and count it in ``/metrics``, as the API's answers are.

    Scores count in ``guanxi_page_scores_shown_total`` by task and model version, customer
    values (task :data:`serving.value_routes.VALUE_TASK`) in ``guanxi_values_served_total``
    with ``surface="page"``: one per audit line (before, a page's were audited, not counted).

    Parameters
    ----------
    request : fastapi.Request
        The page's request (its id, the app's audit log and metrics).
    role : Role
        The reviewer's role.
    served : list of (customer_id, task, model_version, score)
        What the page shows, as the audit log records it; a ``HEAD`` request's page is sent
        without its body, so it shows nothing and nothing is audited or counted.
    """
    if request.method == "HEAD":
        return
    request.app.state.audit.record(
        request.state.request_id,
        role.name,
        served,
        key_fingerprint=request.state.key_fingerprint,
    )
    metrics: Metrics = request.app.state.metrics
    for (task, version), count in Counter((t, v) for _, t, v, _ in served).items():
        if task == VALUE_TASK:
            metrics.observe_values(version, "page", count)
        else:
            metrics.observe_page_scores(task, version, count)


def is_page(request: Request) -> bool:
    """Say whether a request went to a reviewer page (an address under ``/ui``), not the API.

    Parameters
    ----------
    request : fastapi.Request
        A request: its route's path when it matched one, else its own path (a page mistyped).

    Returns
    -------
    bool
        True for the pages (login included) and for any other address under ``/ui`` but the
        static files'.
    """
    route = request.scope.get("route")
    path = str(getattr(route, "path", "")) if route is not None else app_path(request)
    return (path == "/ui" or path.startswith("/ui/")) and not path.startswith("/ui/static")


async def http_error_page(request: Request, exc: Exception) -> Response:
    """Answer an HTTP error at a page's address with the pages' error page, not the API's JSON.

    A mistyped or stale address under ``/ui`` (404) and a method a page does not take (405, its
    ``Allow`` header kept) are read by a person in a browser, who gets a way back, and the menu
    when their session is valid (:func:`serving.deps.reviewer_role` with the cookie only).

    Parameters
    ----------
    request : fastapi.Request
        The request to an address under ``/ui`` (:func:`is_page`).
    exc : Exception
        The :class:`starlette.exceptions.HTTPException`.

    Returns
    -------
    fastapi.responses.Response
        The HTML page with the error's status and headers.
    """
    code = int(getattr(exc, "status_code", status.HTTP_500_INTERNAL_SERVER_ERROR))
    if code == status.HTTP_404_NOT_FOUND:
        title, message = "Page not found", "There is no reviewer page at this address."
    elif code == status.HTTP_405_METHOD_NOT_ALLOWED:
        title = "Cannot do this here"
        message = f"This page does not take a {request.method} request."
    else:
        title, message = HTTPStatus(code).phrase, str(getattr(exc, "detail", ""))
    if getattr(request.state, "role", None) is None:  # no page's check ran: a session's menu
        with contextlib.suppress(LoginRequiredError, PageError):
            await reviewer_role(request, None)
    response = _error(request, title, message, code)
    response.headers.update(getattr(exc, "headers", None) or {})
    return response


_WHERE: Final = {
    "query": "the address's parameter",
    "path": "the address's part",
    "body": "the form's field",
    "header": "the header",
    "cookie": "the cookie",
}
_DAY_FORM: Final = "a date in the form YYYY-MM-DD, e.g. 2025-01-31"


def _page_reason(error: dict[str, Any]) -> str:
    """Say what a parameter accepts, for a person, from one of pydantic's validation errors."""
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "must be a whole number, e.g. 1"
    if kind in ("float_parsing", "float_type", "finite_number"):
        return "must be a number"
    if kind in ("bool_parsing", "bool_type"):
        return "must be true or false"
    if kind.startswith(("date_", "datetime_")):
        return f"must be {_DAY_FORM}"
    if kind in ("literal_error", "enum"):
        return f"must be one of {ctx.get('expected', 'the listed values')}"
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "greater_than": ("more than", "gt"),
        "less_than_equal": ("at most", "le"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return f"must be {words} {ctx.get(key)}"
    if kind == "string_too_long":
        return f"must have at most {ctx.get('max_length')} characters"
    if kind == "string_too_short":
        return f"must have at least {ctx.get('min_length')} characters"
    if kind == "string_pattern_mismatch" and ctx.get("pattern") in PATTERN_REASONS:
        return f"must be {PATTERN_REASONS[ctx['pattern']]}"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not one this page takes"
    return str(error.get("msg", "is not valid")).removeprefix("Value error, ")


async def invalid_page(request: Request, exc: Exception) -> Response:
    """Answer an invalid request to a page with the pages' own error page, status 422.

    A person in a browser reads which parameter (or form field) is wrong and what it accepts,
    never the value sent, as the API's JSON 422 says it for a program (:mod:`serving.app`).

    Parameters
    ----------
    request : fastapi.Request
        The request to a page.
    exc : Exception
        The :class:`~fastapi.exceptions.RequestValidationError`.

    Returns
    -------
    fastapi.responses.Response
        The HTML page, status 422.
    """
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    problems = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        where = _WHERE.get(loc[0], "the request") if loc else "the request"
        name = ".".join(loc[1:])
        problems.append(f"{where} '{name}' {_page_reason(error)}" if name else where)
    said = "; ".join(dict.fromkeys(problems)) or "the request is not valid"
    title = "Cannot accept this form" if request.method == "POST" else "Cannot show this page"
    message = f"{said[0].upper()}{said[1:]}."
    return _error(request, title, message, status.HTTP_422_UNPROCESSABLE_CONTENT)


# --- the customer table shared by the overview and the list ------------------------------------


def _customer_table(request: Request, state: ServingState) -> pl.DataFrame:
    """One row per snapshot customer: id, RFM, and each task's probability, decile and band.

    Built once per state and kept in the app's cache (``app.state.ui_tables``, the current state
    only), so the overview and the list pages share it until a reload swaps the state.
    """
    cache: LRUCache[ServingState, pl.DataFrame] = request.app.state.ui_tables
    lock: threading.Lock = request.app.state.ui_lock
    with lock:
        found = cache.get(state)
    if found is not None:
        return found
    frame = state.snapshot.frame
    keep = [
        c
        for c in ("customer_id", "rfm_segment", "recency_days", "orders_total", "spend_total")
        if c in frame.columns
    ]
    table = frame.select(keep)
    for task, t in state.tables.items():
        has = t.top >= 0
        rows = np.where(has, t.top, 0)
        decile = np.where(has, t.decile[rows], 0)
        band = state.band(decile)
        table = table.with_columns(
            pl.Series(f"{task}_p", np.where(has, t.proba[rows], np.nan)).fill_nan(None),
            pl.Series(f"{task}_decile", decile).replace(0, None),
            pl.Series(f"{task}_band", band).set(pl.Series(~has), None),
            pl.Series(f"{task}_status", t.status.astype(str), dtype=pl.String),
        )
    with lock:
        cache[state] = table
    return table


@dataclass(frozen=True)
class _Band:
    name: str
    count: int
    share: float


def _bands(table: pl.DataFrame, task: str) -> list[_Band]:
    """Count the scored customers by band (shares of the scored customers)."""
    counts = dict(table.get_column(f"{task}_band").value_counts().iter_rows())
    total = max(sum(v for k, v in counts.items() if k is not None), 1)
    return [_Band(b, counts.get(b, 0), counts.get(b, 0) / total) for b in BANDS]


def _statuses(table: pl.DataFrame, task: str) -> list[_Band]:
    """Count the customers a task does not score by status (shares of every customer)."""
    counts = table.get_column(f"{task}_status").value_counts(sort=True)
    return [
        _Band(str(name), int(n), int(n) / max(table.height, 1))
        for name, n in counts.iter_rows()
        if name != ELIGIBLE
    ]


@router.api_route("/", methods=PAGE_METHODS, response_class=HTMLResponse)
def overview(request: Request, _role: Reviewer, state: PageState) -> HTMLResponse:
    """Show the loaded models, their grades and their score distributions."""
    table = _customer_table(request, state)
    models = []
    for task, t in state.tables.items():
        bundle = t.model.bundle
        metrics = bundle.metadata.get("metrics") or {}
        scores = table.get_column(f"{task}_p").drop_nulls().to_numpy()
        population = get_task(task).population
        models.append(
            {
                "task": task,
                "population": population.description.format(active_days=t.active_days),
                "scored": int((t.top >= 0).sum()),
                "statuses": _statuses(table, task),
                "version": t.model.version,
                "aliases": t.model.aliases,
                "grade": bundle.metadata.get("grade"),
                "auc": metrics.get(bundle.metrics_key, {}).get("roc_auc"),
                "served_by": bundle.served_by,
                "rule_backed": bundle.rule_backed,
                "rule_auc": metrics.get("rule", {}).get("roc_auc"),
                "features": len(bundle.feature_names),
                "explained": t.explained_share,
                "bands": _bands(table, task),
                "histogram": histogram(
                    scores,
                    chart_id=f"hist-{task}",
                    title=f"{_task_title(task)}: distribution of customer scores",
                ),
            }
        )
    segments: list[tuple[str, float]] = []
    unsegmented = 0
    if "rfm_segment" in table.columns:
        # the customers without a segment (no order yet) are "unsegmented" as on every page
        # and in the list's filter (the chart said "no orders", the filter had no such choice)
        column = table.get_column("rfm_segment")
        unsegmented = column.null_count()
        counts = column.fill_null(NO_GROUP_NAMES["rfm_segment"]).value_counts(sort=True)
        segments = [(segment_name(str(k)), float(v)) for k, v in counts.iter_rows()]
    segment_chart = bar_chart(
        segments,
        chart_id="segments",
        title="Customers by RFM segment",
        value_label="Customers",
        digits=0,
    )
    return render(
        request,
        "overview.html",
        {
            "models": models,
            "customers": table.height,
            "segment_chart": segment_chart,
            "without_segment": unsegmented,
        },
    )


_SORTS: Final = {
    "customer_id": "customer",
    "rfm_segment": "RFM segment",
    "recency_days": "days since order",
    "orders_total": "orders",
    "spend_total": "spend",
}
"""The customer list's sortable snapshot columns, named as their headers name them (the list's
caption says the sort: it said "recency days"); a task's probability column ``<task>_p`` is
"<task title> probability"."""


@router.api_route("/customers", methods=PAGE_METHODS, response_class=HTMLResponse)
def customers(
    request: Request,
    role: Reviewer,
    holder: Holder,
    q: str = "",
    segment: str = "",
    task: str = "",
    band: str = "",
    sort: str = "",
    order: str = "",
    page: int = 1,
) -> HTMLResponse:
    """Search (customer id contains ``q``), filter by segment and band, sort and paginate."""
    state = loaded_page_state(holder)  # after the parameters' checks (a bad page is a 422)
    table = _customer_table(request, state)
    task = task if task in state.tables else next(iter(state.tables))
    sortable = [c for c in _SORTS if c in table.columns] + [f"{t}_p" for t in state.tables]
    sort = sort if sort in sortable else f"{task}_p"
    order = order if order in ("asc", "desc") else ("asc" if sort == "customer_id" else "desc")
    # the customers without a segment are a choice too, keyed "none" as in the value page's URLs
    # and CSVs and named "unsegmented" as on every page (the filter had no way to list them)
    segments: dict[str, str] = {}
    if "rfm_segment" in table.columns:
        found = table.get_column("rfm_segment").unique()
        segments = {s: segment_name(s) for s in sorted(found.drop_nulls().to_list())}
        if found.null_count():
            segments[NO_SEGMENT] = NO_GROUP_NAMES["rfm_segment"]
    view = table
    q = q.strip()[:100]
    if q:
        view = view.filter(
            pl.col("customer_id").str.to_lowercase().str.contains(q.lower(), literal=True)
        )
    # a segment no customer is in, said rather than dropped in silence (a bookmark kept from an
    # earlier snapshot, a typo in the address), as a band the task has not is
    no_segment = ""
    if segment in segments:
        key = pl.col("rfm_segment")
        view = view.filter(key.is_null() if segment == NO_SEGMENT else key == segment)
    elif segment:
        wanted = segment.strip()[:40]
        no_segment = NO_GROUP_NAMES["rfm_segment"] if wanted == NO_SEGMENT else wanted
        segment = ""
    statuses = [b.name for b in _statuses(table, task)]
    unfiltered = ""  # a band or status the task has not, said rather than dropped in silence
    if band in BANDS:
        view = view.filter(pl.col(f"{task}_band") == band)
    elif band in statuses:
        view = view.filter(pl.col(f"{task}_status") == band)
    else:
        unfiltered, band = band.strip()[:40], ""
    view = view.sort(sort, descending=order == "desc", nulls_last=True, maintain_order=True)
    pages = max(1, -(-view.height // PAGE_SIZE))
    page = min(max(page, 1), pages)
    rows = view.slice((page - 1) * PAGE_SIZE, PAGE_SIZE).to_dicts()
    _shown(  # the page shows these scores: they are served
        request,
        role,
        [
            (row["customer_id"], t, table_.model.version, row[f"{t}_p"])
            for row in rows
            for t, table_ in state.tables.items()
            if row.get(f"{t}_p") is not None
        ],
    )
    query = {"q": q, "segment": segment, "task": task, "band": band, "sort": sort, "order": order}

    def link(**changes: object) -> str:
        params = {k: v for k, v in {**query, **changes}.items() if v not in ("", None)}
        return f"{base_path(request)}/ui/customers?{urlencode(params)}"

    def sort_link(column: str) -> str:
        flip = "asc" if (sort == column and order == "desc") else "desc"
        if sort != column:
            flip = "asc" if column in ("customer_id", "rfm_segment") else "desc"
        return link(sort=column, order=flip, page=1)

    return render(
        request,
        "customers.html",
        {
            "rows": rows,
            "total": view.height,
            "all": table.height,
            "page": page,
            "pages": pages,
            "query": query,
            "sorted_by": _SORTS.get(sort)
            or f"{_task_title(sort.removesuffix('_p')).lower()} probability",
            "segments": segments,
            "bands": BANDS,
            "statuses": statuses,
            "unfiltered": unfiltered,
            "no_segment": no_segment,
            "columns": table.columns,
            "link": link,
            "sort_link": sort_link,
            "page_size": PAGE_SIZE,
        },
    )


# --- one customer ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ValueChurn:
    """What a page says of the churn model a value table read (qa49 M1).

    The textbook CLV and the equity at risk of a value table are of the churn probabilities it
    read when ``guanxi value`` computed it; a churn model promoted since scores the customer with
    another version, shown beside them. The page names the table's model and, when the churn
    score it shows is of another (or the table read none), says so and what to do.

    Attributes
    ----------
    table : str or None
        The table's churn model as the pages name a model (``"churn v1"``); None when the table
        was computed without one.
    horizon_days : int or None
        Its horizon (None without one).
    served : str or None
        The model of the churn score shown, named the same way, when it is not the table's;
        None when it is, or when no churn score is shown.
    reload_only : bool
        The registry's alias the server follows points at the table's churn model now (the
        table, served at once without a reload, was computed after a promotion the server has
        not loaded yet): a reload (``POST /v1/admin/reload``) serves that version, nothing is to
        be computed again. A table of a version no longer followed (a champion rolled back,
        qa43 M1) is computed again instead: reloading never serves it.
    command : str
        What computes the table's day again with the served churn model and the table's other
        settings (horizon, discount rate, basis, and the served alias when not the champion).
    reload_unknown : bool
        The table's is another version of the served model and the registry could not be read
        (down, slow, or not a registry): the page gives both remedies in one sentence.
    alias : str
        The alias the server follows (``champion``), as that sentence names it.
    """

    table: str | None
    horizon_days: int | None
    served: str | None
    reload_only: bool
    command: str
    reload_unknown: bool = False
    alias: str = registry.CHAMPION


def value_command(values: LoadedValues, alias: str = registry.CHAMPION) -> str:
    """Return the ``guanxi value`` command that computes a value table's day again.

    Parameters
    ----------
    values : LoadedValues
        The table: its day, horizon, discount rate and basis (and margin rate on the revenue
        basis, when its fit records one) are repeated.
    alias : str, default "champion"
        The registry alias the server loads (``Settings.model_alias``): named (``--alias``) when
        not the champion, so that the table reads the churn model the server serves.

    Returns
    -------
    str
        The command, with ``PATH`` where the events and the output go.
    """
    info = values.info
    parts = [
        f"guanxi value --events PATH --as-of {info.as_of.isoformat()}",
        f"--horizon-days {info.horizon_days} --discount-rate {info.discount_rate!r}",
        f"--value-basis {info.basis}",
    ]
    rate = info.fit.get("margin_rate")
    if info.basis == "revenue" and rate is not None:
        parts.append(f"--margin-rate {float(rate)!r}")
    if alias != registry.CHAMPION:
        parts.append(f"--alias {alias}")
    return " ".join([*parts, "--out PATH"])


def served_alias(request: Request) -> str:
    """Return the registry alias the server loads (``Settings.model_alias``).

    Parameters
    ----------
    request : fastapi.Request
        The request (its app's settings).

    Returns
    -------
    str
        The alias, ``champion`` unless configured otherwise.
    """
    settings: Settings = request.app.state.settings
    return settings.model_alias


def value_churn(
    values: LoadedValues,
    shown: tuple[str, str] | None,
    alias: str = registry.CHAMPION,
    followed: Callable[[str], tuple[bool, str | None]] | None = None,
) -> ValueChurn:
    """Compare the churn model a value table read with the one whose churn score a page shows.

    Parameters
    ----------
    values : LoadedValues
        The value table shown (its info records its churn model: name, version, horizon).
    shown : tuple of (str, str) or None
        The name and version of the model of the churn score the page shows (the served model of
        :func:`models.tasks.retention_task`, or the customer's churn score's version); None when
        it shows none (no model loaded, the customer is not scored for churn, or has no CLV).
    alias : str, default "champion"
        The registry alias the server loads, for the command (:func:`value_command`).
    followed : callable, optional
        Reads the version ``alias`` points at in the registry now for a task, as (known,
        version) (:func:`serving.lifecycle.followed_version`); called only when the table's is
        another version of the served model. Without it, that version is not known.

    Returns
    -------
    ValueChurn
        ``served`` set when the churn score shown is of another model or version than the
        table's, or the table read none; ``reload_only`` when the table's is another version of
        the same model and the registry's alias points at it now; ``reload_unknown`` when that
        could not be read.
    """
    model = values.info.churn_model
    # the version and horizon as the value answers and the segment CSV read them
    table_version = values.churn_model_version
    table = None if model is None else f"{model['name']} v{table_version}"
    served = None if shown is None else f"{shown[0]} v{shown[1]}"
    reload_only = reload_unknown = False
    if (
        model is not None
        and shown is not None
        and model["name"] == shown[0]
        and table_version != shown[1]
    ):
        known, version = (False, None) if followed is None else followed(shown[0])
        reload_only = known and version == table_version
        reload_unknown = not known
    return ValueChurn(
        table=table,
        horizon_days=values.churn_horizon_days,
        served=served if served != table else None,
        reload_only=reload_only,
        command=value_command(values, alias),
        reload_unknown=reload_unknown,
        alias=alias,
    )


@dataclass(frozen=True)
class _TaskView:
    task: str
    score: TaskScore
    base: float | None
    chart: Chart | None
    others: int
    rest: float


def _task_view(task: str, score: TaskScore) -> _TaskView:
    """Build one task's waterfall: base probability, top contributions, the rest, the score.

    The numbers are the API's: the reasons' points and the remainder line sum to the change from
    ``base_probability`` to ``probability``.
    """
    if score.probability is None or score.base_probability is None:
        return _TaskView(task, score, None, None, 0, 0.0)
    steps = [
        WaterfallStep(_reason_text(r.sentence), r.feature, r.contribution_points)
        for r in score.reasons
    ]
    rest = score.other_inputs
    if rest is not None and rest.inputs > 0:
        steps.append(WaterfallStep(rest.sentence.split(": ", 1)[0], "", rest.contribution_points))
    title = f"{_task_title(task)}: what moves this customer's probability"
    chart = waterfall(
        steps,
        100 * score.base_probability,
        100 * score.probability,
        chart_id=f"waterfall-{task}",
        title=title,
    )
    others, points = (rest.inputs, rest.contribution_points) if rest is not None else (0, 0.0)
    return _TaskView(task, score, score.base_probability, chart, others, points)


def _history(
    request: Request, day: date, customer_id: str, missing: str
) -> tuple[CustomerHistory | None, str | None]:
    """Read a customer's history of ``day`` from the store; else what the page says instead.

    ``missing`` when the store holds no history of the day; when it holds one it cannot read
    (:class:`serving.ui.history.HistoryUnreadableError`, logged with the file and why), that it
    cannot, with the request id: the rest of the page is shown (it was a 500).
    """
    settings: Settings = request.app.state.settings
    try:
        history = customer_history(Store(settings.home), day, customer_id)
    except HistoryUnreadableError as exc:
        logger.warning("request %s: %s", request.state.request_id, exc)
        unreadable = _UNREADABLE_HISTORY.format(
            day=format_date(day), iso=day.isoformat(), request_id=request.state.request_id
        )
        return None, unreadable
    return history, None if history is not None else missing


def sentence(phrase: str) -> str:
    """Make a phrase of the API's or the CLI's (lowercase, no full stop) a sentence of a page's.

    Parameters
    ----------
    phrase : str
        E.g. ``"the route is /v1/scores (POST), without the slash"``.

    Returns
    -------
    str
        The phrase with a capital first letter and a full stop.
    """
    return f"{phrase[:1].upper()}{phrase[1:]}."


def _sentence(hint: str | None) -> str:
    """Make an API's hint (:func:`serving.routes.whitespace_hint`) a sentence after a page's.

    Parameters
    ----------
    hint : str or None
        The hint, lowercase and without a full stop; None for no hint.

    Returns
    -------
    str
        ``" The hint."``, or ``""`` without one.
    """
    return f" {sentence(hint)}" if hint else ""


def _unscored_customer(
    request: Request,
    role: Reviewer,
    values: LoadedValues,
    customer_id: str,
    *,
    no_models: str | None = None,
    outside: date | None = None,
) -> HTMLResponse:
    """Show a customer's value and history without scores.

    While no model is loaded (``no_models`` says what is missing and what to run), or for a
    customer of the value table that the served snapshot, of day ``outside``, does not hold (a
    table of a later day holds the customers who ordered since: the value page links them, and
    their page was the 404). The value table is the one the value page shows
    (:func:`serving.deps.served_values`, read once per write of it); the history is the store's
    of the table's day, as a loaded page reads its snapshot day's. A customer in neither is not
    found.
    """
    value = values.row(customer_id)
    missing = _NO_VALUE_HISTORY.format(day=format_date(values.as_of), iso=values.as_of)
    history, note = _history(request, values.as_of, customer_id, missing)
    if value is None and (history is None or not history.total_events):
        raise PageError(
            404,
            "Customer not found",
            f"No customer {customer_id!r} in the value table as of {format_date(values.as_of)}"
            + (" or in the history of that day." if history is not None else ".")
            + _sentence(whitespace_hint(customer_id, "the value table", values.holds)),
        )
    if value is not None and value["clv"] is not None:
        _shown(request, role, [(customer_id, VALUE_TASK, values.info.version, float(value["clv"]))])
    return render(
        request,
        "customer.html",
        {
            "customer_id": customer_id,
            "row": None,
            "facts": [],
            "views": [],
            "no_models": no_models,
            "outside": outside,
            "history_day": values.as_of,
            "history": history,
            "history_note": note,
            "value": value,
            "value_info": values.info,
            "value_churn": value_churn(values, None),  # no churn score shown
        },
    )


def shown_churn(state: ServingState) -> tuple[str, str] | None:
    """Return the name and version of the served model of the retention task.

    Parameters
    ----------
    state : serving.state.ServingState
        The loaded state.

    Returns
    -------
    tuple of (str, str) or None
        None when no task declares retention risk or none of its model is loaded.
    """
    spec = retention_task()
    table = None if spec is None else state.tables.get(spec.name)
    return None if table is None else (table.model.name, table.model.version)


def customer_churn(
    state: ServingState, scores: dict[str, TaskScore], value: dict[str, Any] | None
) -> tuple[str, str] | None:
    """Return the name and version of the churn score a customer page shows beside the value.

    Parameters
    ----------
    state : serving.state.ServingState
        The loaded state.
    scores : dict of str to TaskScore
        The customer's scores by task.
    value : dict or None
        The customer's row of the value table.

    Returns
    -------
    tuple of (str, str) or None
        The served retention model's name and the version of the customer's churn score; None
        when the customer has no churn probability (lapsed, prospect) or no CLV: then there is
        nothing to tell apart.
    """
    spec = retention_task()
    score = None if spec is None else scores.get(spec.name)
    served = shown_churn(state)
    if score is None or score.probability is None or served is None:
        return None
    if value is None or value.get("clv") is None:
        return None
    return served[0], score.model_version


@router.api_route(
    "/customers/{customer_id:customer}", methods=PAGE_METHODS, response_class=HTMLResponse
)
def customer(
    request: Request, role: Reviewer, holder: Holder, customer_id: CustomerIdPath
) -> HTMLResponse:
    """Show a customer's scores, waterfalls and grouped reasons beside their history.

    An id the API refuses (blank, a control character, too long) is the pages' 422 naming it,
    as ``GET /v1/customers/{id}/scores`` answers it, not a 404 "Customer not found".

    While no model is loaded the customer's value and history are shown, saying there are no
    scores yet and what to run (:func:`_unscored_customer`); without a value table either, the
    503 page of the pages that need models. A customer the served snapshot lacks but the served
    value table holds (a table of a later day) is shown the same way, saying why no score.
    """
    try:
        state = loaded_page_state(holder)
    except PageError as exc:  # no model loaded: value and history need none
        values = served_values(request, holder)
        if values is None:
            raise
        return _unscored_customer(request, role, values, customer_id, no_models=exc.message)
    position = state.positions([customer_id])
    if position[0] < 0:
        values = served_values(request, holder)
        if values is not None and values.holds(customer_id):  # a later day's table
            return _unscored_customer(
                request, role, values, customer_id, outside=state.snapshot.as_of
            )
        hint = whitespace_hint(customer_id, "the snapshot", state.holds)
        raise PageError(
            404,
            "Customer not found",
            f"No customer {customer_id!r} in the snapshot as of "
            f"{format_date(state.snapshot.as_of)}.{_sentence(hint)}",
        )
    scores = stored_scores(state, position, list(state.tables), WATERFALL_REASONS, group=True)[0]
    values = served_values(request, holder)  # the state's, or one written since it loaded
    value = values.row(customer_id) if values is not None else None
    served = [
        (customer_id, task, s.model_version, s.probability)
        for task, s in scores.items()
        if s.probability is not None
    ]
    if value is not None and value["clv"] is not None and values is not None:
        served.append((customer_id, VALUE_TASK, values.info.version, float(value["clv"])))
    _shown(request, role, served)
    row = state.snapshot.frame.row(int(position[0]), named=True)
    facts = [(label, row.get(column), kind) for label, column, kind in _FACTS if column in row]
    history, note = _history(request, state.snapshot.as_of, customer_id, _NO_HISTORY)
    return render(
        request,
        "customer.html",
        {
            "customer_id": customer_id,
            "row": row,
            "facts": facts,
            "views": [_task_view(task, s) for task, s in scores.items()],
            "outcomes": {spec.name: spec.outcome for spec in task_specs()},
            "history_day": state.snapshot.as_of,
            "history": history,
            "history_note": note,
            "value": value,
            "value_info": values.info if values is not None else None,
            "value_churn": None
            if values is None
            else value_churn(
                values,
                customer_churn(state, scores, value),
                served_alias(request),
                partial(followed_version, request.app),
            ),
            "no_values": NO_VALUES,  # shown without a table: none, or refused (the value page's)
        },
    )


# --- model cards --------------------------------------------------------------------------


def _served_card(state: ServingState, task: str) -> VersionCard:
    """Build a card from the served model's own metadata (when the registry is unreadable)."""
    model = state.tables[task].model
    meta = model.bundle.metadata
    return VersionCard(
        task=task,
        version=model.version,
        aliases=model.aliases,
        created=None,
        run_id=None,
        run_url=None,
        metrics=numeric_metrics(meta.get("metrics") or {}),
        metric_source="metadata",
        grade=None if meta.get("grade") is None else str(meta["grade"]),
        feature_set_version=model.bundle.feature_set_version,
        params=training_params(model.bundle, {}),
        served_by=model.bundle.served_by,
        model_grade=meta.get("model_grade"),
    )


@dataclass(frozen=True)
class _VersionView:
    """What a version's column of the model page shows of its training run's records.

    ``metrics`` and ``deltas`` are nested like :attr:`VersionCard.metrics`; ``gains`` and
    ``reliability`` like :attr:`VersionCard.gains` and :attr:`VersionCard.reliability`;
    ``unrecorded``: the charts (``"gains"``, ``"reliability"``) whose run recorded curves, but
    none of this version (a rule-backed version of a run from before they were recorded).
    """

    metrics: dict[str, dict[str, float]]
    deltas: dict[str, dict[str, float]]
    gains: dict[str, list[tuple[float, float]]]
    reliability: dict[str, list[tuple[float, float, int]]]
    unrecorded: tuple[str, ...]


def _version_view(card: VersionCard) -> _VersionView:
    """Say which of its run's records a version's column of the model page shows.

    A rule-backed version shares its training run with the XGBoost model trained beside it,
    which is not this version (it is a version of its own): its column shows the rule-backed
    row and the baselines without the model's metrics, its gains chart its own curve
    (``rule_backed``) and the task's baselines, its reliability chart its own curve only. A
    model's column shows everything the run recorded but the rule-backed version's curves.

    Parameters
    ----------
    card : VersionCard
        The version.

    Returns
    -------
    _VersionView
        The metrics, changes and chart series the column shows, and the charts whose run
        recorded no curve of this version.
    """
    if not card.rule_backed:
        return _VersionView(
            card.metrics,
            card.deltas,
            {k: v for k, v in card.gains.items() if k != RULE_BACKED},
            {k: v for k, v in card.reliability.items() if k != RULE_BACKED},
            (),
        )
    kept = (RULE_BACKED, *(b.key for b in get_task(card.task).rules))
    recorded = (("gains", card.gains), ("reliability", card.reliability))
    return _VersionView(
        {k: v for k, v in card.metrics.items() if k != MODEL_METRICS},
        {k: v for k, v in card.deltas.items() if k != MODEL_METRICS},
        {k: v for k, v in card.gains.items() if k in kept},
        {k: v for k, v in card.reliability.items() if k == RULE_BACKED},
        tuple(chart for chart, series in recorded if series and RULE_BACKED not in series),
    )


def _card_charts(card: VersionCard, slot: str, view: _VersionView) -> dict[str, Chart | None]:
    name = f"{_task_title(card.task)} v{card.version}"
    return {
        "gains": gains_chart(
            view.gains,
            chart_id=f"gains-{slot}",
            title=f"{name}: cumulative gains",
            label=partial(registry.model_title, task=card.task),
        )
        if view.gains
        else None,
        "reliability": reliability_chart(
            view.reliability,
            chart_id=f"reliability-{slot}",
            title=f"{name}: reliability",
            label=partial(registry.model_title, task=card.task),
        )
        if view.reliability
        else None,
        # each input by its column, as the drift page, the reasons' `feature` and the README's
        # feature table name it: "days since last order" here was days_since_last_order there
        "importance": bar_chart(
            card.importance,
            chart_id=f"shap-{slot}",
            title=f"{name}: global SHAP importance",
            value_label="Mean |SHAP| (log-odds)",
        )
        if card.importance
        else None,
    }


@router.api_route("/models/{task}", methods=PAGE_METHODS, response_class=HTMLResponse)
def model_card(request: Request, _role: Reviewer, task: str) -> HTMLResponse:
    """Champion and challenger of a task side by side, as recorded in MLflow."""
    known = task_names()
    if task not in known:  # a misspelt one is named with the task meant, as --task names it
        raise PageError(
            404,
            "Unknown task",
            f"There is no task {quoted_near(task, known)}; tasks: {', '.join(known)}.",
        )
    holder: StateHolder = request.app.state.holder
    state = holder.current
    notice = None
    # waited for as reload_pending is (qa44 L5: a hung registry held the page 62 s, MLflow's
    # client timeout); a late or failed look is logged with the request id the notice gives
    # the log said "the served model shown" with none served (nor shown)
    if state is not None and task in state.tables:
        instead = "the served model shown"
    else:
        instead = "no model served yet" if state is None else f"no {task} model served"
    try:
        found = read_in_time(
            partial(load_cards, task, state, request.app.state.ui_cards),
            f"for the {task} model page (request {request.state.request_id}), {instead}",
            errors=(MlflowException, ModelNotFoundError, OSError),
            level=logging.WARNING,
            # one look per task and load at a time: views while it runs wait on it (a hung
            # registry left a thread per view, each holding a connection and its view's state)
            looks=request.app.state.ui_cards.looks,
            # the state itself (ServingState compares by identity): two loads may share a
            # loaded_at
            key=(task, state),
            # the cards built cold (artifacts, global SHAP) under load are our own time: said as
            # still being prepared, not as a registry that could not be read
            staged=True,
        )
        preparing = False
    except Preparing:
        found, preparing = None, True
    if found is not None:
        cards = found
    else:
        served = _served_card(state, task) if state is not None and task in state.tables else None
        # "showing the served model only" only when there is one (it was said above none);
        # how many versions the registry holds is not known (None), not 0
        only = "; showing the served model only" if served is not None else ""
        notice = (
            f"This page is still being prepared (the registry answered; building the cards "
            f"goes on){only}: reload it in a moment (request id {request.state.request_id})."
            if preparing
            else f"The MLflow registry could not be read{only} (request id "
            f"{request.state.request_id}; the reason is in the server log)."
        )
        cards = ModelCards(task, served, None, None)
    served_version = state.tables[task].model.version if state and task in state.tables else None
    settings: Settings = request.app.state.settings
    tasks = settings.tasks
    slots = [("champion", cards.champion), ("challenger", cards.challenger)]
    shown = [(slot, card) for slot, card in slots if card is not None]
    columns: list[dict[str, Any]] = []
    for slot, card in shown:
        view = _version_view(card)
        columns.append(
            {
                "slot": slot,
                "card": card,
                "charts": _card_charts(card, slot, view),
                "unrecorded": view.unrecorded,
                "metrics": view.metrics,
                "deltas": view.deltas,
            }
        )
    # the challenger against the champion only measured alike (qa49 M3), as a version against
    # its previous one (VersionCard.previous_note)
    between = (
        comparison_note(
            measured_on(cards.champion.params),
            measured_on(cards.challenger.params),
            window=get_task(task).population.uses_active_days,
            names=("champion", "challenger"),
        )
        if cards.champion is not None and cards.challenger is not None
        else None
    )
    metric_keys = list(
        dict.fromkeys(
            (model, name)
            for column in columns
            for model, values in column["metrics"].items()
            for name in values
        )
    )
    return render(
        request,
        "model.html",
        {
            "task": task,
            "cards": cards,
            "columns": columns,
            "between": between,
            "notice": notice,
            "preparing": preparing,
            "served_version": served_version,
            # the registry's page answers while the models load (the pages needing a model are
            # a 503); a task GUANXI_TASKS leaves out is not loading: it says that instead
            "not_loaded": _not_loaded(holder) if state is None and task in tasks else None,
            # a task left out of the load (its champion's files are gone, qa43 M3): not served
            "gone_version": state.gone[task].version if state and task in state.gone else None,
            # a task GUANXI_TASKS leaves out, reached by URL (qa44 L4): said in the header
            "tasks_setting": ",".join(tasks) if task not in tasks else None,
            "comparison": sorted(metric_keys, key=lambda pair: _metric_order(pair, task)),
            "headline": _headline(task),
            "baselines": [b.key for b in get_task(task).rules],
            "min_bin_rows": MIN_BIN_ROWS,
        },
    )


def _not_loaded(holder: StateHolder) -> str:
    """Say, in a model page's header, that no model is served yet and why (nothing loaded).

    The page reads the registry and answers while the models load, where the other pages are
    the 503 "Models are loading" (:func:`serving.deps.loaded_page_state`): its header says so,
    in those pages' words.
    """
    if holder.missing:  # nothing promoted or built yet: the other pages say what to run
        return "no model served yet (nothing to serve yet: the other pages say what to run first)"
    failed = "; the last attempt failed" * bool(holder.last_error)
    return f"no model served yet (the models are loading{failed})"


def _headline(task: str) -> list[str]:
    """Return a task's own metrics in its spec's order, each by its name and its MLflow key.

    A card's metrics read back from its run carry MLflow's keys (``precision_at_3``,
    :func:`models.registry.metric_name`), those of a model's metadata their names
    (``precision@3``): matching the names only left cross-sell's graded metrics out of its
    headline (qa49).

    Parameters
    ----------
    task : str
        The task.

    Returns
    -------
    list of str
        ``precision@1``, ``precision_at_1``, ...; a name MLflow keeps as it is once.
    """
    metrics = get_task(task).metrics
    return list(dict.fromkeys(n for m in metrics for n in (m, registry.metric_name(m))))


def _metric_order(pair: tuple[str, str], task: str) -> tuple[int, int, str]:
    """Order the full metrics table: by model, then the task's own metrics in its spec's order."""
    model, name = pair
    models = registry.metric_models()
    headline = _headline(task)
    return (
        models.index(model) if model in models else len(models),
        headline.index(name) if name in headline else len(headline),
        name,
    )
