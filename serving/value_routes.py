"""The value routes: a customer's value, equity by segment and tier, and segments to export.

Like the score routes they need a ``scorer`` key, answer with pydantic models and write an audit
line per customer value served (task ``value``, the table's version, the customer's CLV). They
read the value table loaded with the state (:mod:`serving.values`); without one they answer 404
saying how to compute it.

Customer value needs no model: while none is loaded they answer from the store's newest value
table (:func:`serving.deps.served_values`), as ``/ui/value`` does, never the "models are not loaded
yet" 503. What needs churn probabilities says so when the table holds none (computed before any
churn model): equity at risk, its share and the customers carrying it are null, ``churn_missing``
says why and what to run, and each customer's ``churn_status`` is ``no_churn_model``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from typing import Annotated, Any, Final, Literal

import polars as pl
from fastapi import APIRouter, HTTPException, Path, Query, Request, status
from fastapi.responses import Response, StreamingResponse
from pydantic import BeforeValidator

from features.events import MAX_VALUE_CHARS
from serving.audit import AuditLog
from serving.deps import Audit, Holder, ScorerRole, served_values
from serving.metrics import Metrics
from serving.routes import (
    EXAMPLE_AS_OF,
    EXAMPLE_TASK,
    EXAMPLE_VALUE_VERSION,
    MODEL_FREE_ERRORS,
    REQUEST_ID_HEADER,
    CheckedQuery,
    CustomerIdPath,
    error_answer,
    head_answer,
    invalid_parameter,
    success_example,
    whitespace_hint,
)
from serving.schemas import (
    AtRiskCustomer,
    CustomerValue,
    EquityResponse,
    SegmentCustomers,
    SegmentsResponse,
    SegmentSummary,
    ValueValidation,
)
from serving.state import StateHolder
from serving.values import (
    EXPORT_COLUMNS,
    NO_VALUES,
    LoadedValues,
    segment_rows,
)

__all__ = [
    "VALUE_TASK",
    "customer_value",
    "record_values",
    "router",
    "segment_csv",
    "segment_summary",
    "validation_of",
    "wants_csv",
]

VALUE_TASK: Final = "value"
"""The ``task`` of the audit lines of values served."""


def _not_found(description: str) -> dict[int | str, dict[str, Any]]:
    """Document a route's 404: no value table loaded (its example), or what else it says."""
    return {404: error_answer(description, {"detail": NO_VALUES})}


_CSV_ROWS: Final = 1000

# the document's example answers: a customer of `guanxi demo --customers 1000` and its value table
_TABLE = {
    "as_of": EXAMPLE_AS_OF,
    "horizon_days": 365,
    "discount_rate": 0.1,
    "value_version": EXAMPLE_VALUE_VERSION,
}
_VALUE = {
    "customer_id": "C0002",
    "as_of": EXAMPLE_AS_OF,
    "p_alive": 0.8731,
    "expected_purchases": 3.12,
    "expected_order_value": 64.5,
    "expected_margin_per_order": 19.35,
    "clv": 57.1,
    "clv_textbook": 49.2,
    "expected_days_to_next_order": 74.0,
    "value_tier": "top_20pct",
    "rfm_segment": "loyal",
    "churn_probability": 0.3357,
    "churn_status": "eligible",
    "equity_at_risk": 19.17,
    **{k: v for k, v in _TABLE.items() if k != "as_of"},
    "churn_model_version": "1",
    "churn_horizon_days": 90,
}
_OVERALL = {
    "name": "all",
    "customers": 1000,
    "scored": 912,
    "revenue": 412_380.0,
    "mean_clv": 38.6,
    "equity": 38_600.0,
    "equity_share": 1.0,
    "mean_churn_probability": 0.4412,
    "equity_at_risk": 14_206.0,
    "risk_share": 0.368,
}
_LOYAL = {
    "name": "loyal",
    "customers": 164,
    "scored": 164,
    "revenue": 121_040.0,
    "mean_clv": 71.3,
    "equity": 11_693.2,
    "equity_share": 0.3029,
    "mean_churn_probability": 0.2875,
    "equity_at_risk": 3_141.5,
    "risk_share": 0.2687,
}
_TOP = {
    "name": "top_1pct",
    "customers": 10,
    "scored": 10,
    "revenue": 31_870.0,
    "mean_clv": 402.5,
    "equity": 4_025.0,
    "equity_share": 0.1043,
    "mean_churn_probability": 0.1935,
    "equity_at_risk": 741.9,
    "risk_share": 0.1843,
}
_CSV = (
    ",".join(EXPORT_COLUMNS)
    + "\n"
    + ",".join(str(_VALUE[column]) for column in EXPORT_COLUMNS)
    + "\n"
)

router = APIRouter(prefix="/v1", responses=MODEL_FREE_ERRORS, tags=["value"])


def _finite(value: Any) -> Any:
    """Return a number as is, or None for NaN and infinities (JSON has neither)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _values(request: Request, holder: Holder) -> LoadedValues:
    """Return the served value table, or raise a 404 saying how to compute one."""
    values = served_values(request, holder)
    if values is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NO_VALUES)
    return values


def _why_no_value(holder: StateHolder, values: LoadedValues, customer_id: str) -> str:
    """Say why a customer has no row of the value table, as far as the served snapshot tells.

    With the snapshot of the table's day loaded, its index says (O(1)) whether the id is in it at
    all, or is a customer without an order up to that day; without it (nothing loaded, or the
    table of another day served) only what the table leaves out can be said.

    Parameters
    ----------
    holder : serving.state.StateHolder
        The app's holder (its current state, if any).
    values : LoadedValues
        The value table served.
    customer_id : str
        The id asked for.

    Returns
    -------
    str
        The parenthesis after "customer not in the value table as of <day>".
    """
    state = holder.current
    if state is None or state.snapshot.as_of != values.as_of:
        return "(customers without an order up to that day have no value)"
    if state.holds(customer_id):
        return "(in the snapshot of that day, with no order up to it: no value)"
    return "(not in the snapshot of that day either: no such customer then)"


def customer_value(values: LoadedValues, row: dict[str, Any]) -> CustomerValue:
    """Build a customer's value answer from a value table row.

    Parameters
    ----------
    values : LoadedValues
        The loaded table (its horizon, discount rate and version).
    row : dict
        The customer's row.

    Returns
    -------
    CustomerValue
        The response model (a row without ``churn_status`` is served
        :attr:`serving.values.LoadedValues.churn_status_default`:
        :data:`~serving.values.NO_CHURN_MODEL` when the table was computed without a churn
        model), naming the churn model the table read and its horizon
        (:attr:`serving.values.LoadedValues.churn_model_version` and
        :attr:`~serving.values.LoadedValues.churn_horizon_days`, as the segment CSV export says
        them; null without one).
    """
    info = values.info
    fields = {k: _finite(row.get(k)) for k in CustomerValue.model_fields if k in row}
    if fields.get("churn_status") is None:
        fields["churn_status"] = values.churn_status_default
    churn = {
        "churn_model_version": values.churn_model_version,
        "churn_horizon_days": values.churn_horizon_days,
    }
    return CustomerValue(
        **{**fields, "as_of": values.as_of, **churn},
        horizon_days=info.horizon_days,
        discount_rate=info.discount_rate,
        value_version=info.version,
    )


def segment_summary(row: dict[str, Any], name: str, at_risk: bool = True) -> SegmentSummary:
    """Build a segment's equity answer from an :func:`models.clv.equity_tables` row.

    Parameters
    ----------
    row : dict
        The group's row.
    name : str
        The segment's name (``all`` for the overall row).
    at_risk : bool, default True
        Whether the table holds churn probabilities (:attr:`LoadedValues.churn_missing` is None):
        without any, equity at risk and its share are unknown (null), not 0.

    Returns
    -------
    SegmentSummary
        The response model (sums of nothing are 0).
    """
    clean = {k: _finite(v) for k, v in row.items()}
    for total in ("revenue", "equity", "equity_at_risk"):
        clean[total] = clean.get(total) or 0.0
    if not at_risk:
        clean["equity_at_risk"] = clean["risk_share"] = None
    fields = {k: clean.get(k) for k in SegmentSummary.model_fields if k != "name"}
    return SegmentSummary.model_validate({**fields, "name": name})


def record_values(
    request: Request,
    audit: AuditLog,
    values: LoadedValues,
    rows: list[dict[str, Any]],
    surface: str = "api",
) -> None:
    """Write one audit line per customer value served (CLV as the score, when there is one).

    Each line is counted in ``/metrics`` too (``guanxi_values_served_total``, by the table's
    version and ``surface``).

    Parameters
    ----------
    request : fastapi.Request
        The request (its id, the caller's role and the app's metrics).
    audit : serving.audit.AuditLog
        The audit log.
    values : LoadedValues
        The loaded table (its version).
    rows : list of dict
        The rows served (``customer_id``, ``clv``).
    surface : {"api", "page"}, default "api"
        Served by the value routes or by a reviewer page
        (:data:`serving.metrics.SURFACES`).

    Notes
    -----
    A ``HEAD`` request's answer is sent without its body: it serves no one, so nothing is
    audited or counted.
    """
    if request.method == "HEAD":
        return
    served = [
        (str(r["customer_id"]), VALUE_TASK, values.info.version, float(r["clv"]))
        for r in rows
        if _finite(r.get("clv")) is not None
    ]
    audit.record(
        request.state.request_id,
        request.state.role.name,
        served,
        key_fingerprint=request.state.key_fingerprint,
    )
    metrics: Metrics = request.app.state.metrics
    metrics.observe_values(values.info.version, surface, len(served))


@router.head(
    "/customers/{customer_id:customer}/value", response_model=None, include_in_schema=False
)
@router.get(
    "/customers/{customer_id:customer}/value",
    response_model=CustomerValue,
    responses={
        **success_example(_VALUE),
        **_not_found(
            "No value table in the store (run guanxi value), or the customer is not in it (the "
            "detail says when the id has whitespace before or after it)."
        ),
        **invalid_parameter(
            "path.customer_id", f"String should have at most {MAX_VALUE_CHARS} characters"
        ),
    },
    summary="One customer's value: P(alive), expected purchases, CLV two ways, tier, risk",
)
def get_customer_value(
    _role: ScorerRole,
    request: Request,
    holder: Holder,
    audit: Audit,
    customer_id: CustomerIdPath,
) -> CustomerValue | Response:
    """Return a customer's row of the loaded value table (``HEAD``: :func:`head_answer`'s)."""
    values = _values(request, holder)  # after the path's checks
    row = values.row(customer_id)
    if row is None:
        hint = whitespace_hint(customer_id, "the value table", values.holds)
        why = f": {hint}" if hint else f" {_why_no_value(holder, values, customer_id)}"
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"customer not in the value table as of {values.as_of}{why}"
        )
    if request.method == "HEAD":
        return head_answer()
    record_values(request, audit, values, [row])
    return customer_value(values, row)


@router.head("/segments", response_model=None, include_in_schema=False)
@router.get(
    "/segments",
    response_model=SegmentsResponse,
    responses={
        **success_example(
            {
                **_TABLE,
                "overall": _OVERALL,
                "rfm_segments": [_LOYAL],
                "value_tiers": [_TOP],
                "churn_missing": None,
            }
        ),
        **_not_found("No value table in the store: run guanxi value."),
    },
    summary="Customers, revenue, CLV, churn risk, equity and equity at risk per segment and tier",
)
def segments(_role: ScorerRole, request: Request, holder: Holder) -> SegmentsResponse | Response:
    """Return customer equity per RFM segment and per value tier, with the overall figures.

    ``HEAD`` answers with :func:`serving.routes.head_answer`, building none of them.
    """
    values = _values(request, holder)
    if request.method == "HEAD":
        return head_answer()
    info = values.info
    missing = values.churn_missing
    groups = {
        by: [
            segment_summary(r, str(r[by]), missing is None)
            for r in values.equity[by].iter_rows(named=True)
        ]
        for by in ("rfm_segment", "value_tier")
    }
    return SegmentsResponse(
        as_of=values.as_of,
        horizon_days=info.horizon_days,
        discount_rate=info.discount_rate,
        value_version=info.version,
        overall=segment_summary(
            values.equity["overall"].row(0, named=True), "all", missing is None
        ),
        rfm_segments=groups["rfm_segment"],
        value_tiers=groups["value_tier"],
        churn_missing=missing,
    )


def validation_of(values: LoadedValues) -> ValueValidation | None:
    """Return the stored holdout check as a response model (None without one).

    Parameters
    ----------
    values : LoadedValues
        The loaded table.

    Returns
    -------
    ValueValidation or None
        The check with NaN figures as null.
    """
    check = values.info.validation
    if not check:
        return None
    forecasts = {
        name: {k: _finite(v) for k, v in figures.items()}
        for name, figures in check["forecasts"].items()
    }
    return ValueValidation.model_validate({**check, "forecasts": forecasts})


@router.head("/equity", response_model=None, include_in_schema=False)
@router.get(
    "/equity",
    response_model=EquityResponse,
    responses={
        **success_example(
            {
                **_TABLE,
                "basis": "margin",
                "overall": _OVERALL,
                "churn_model": {"name": EXAMPLE_TASK, "version": "1", "horizon_days": 90},
                "validation": {
                    "cutoff": "2025-09-30",
                    "through": EXAMPLE_AS_OF,
                    "days": 92,
                    "forecasts": {
                        "bgnbd": {
                            "customers": 1000,
                            "mae": 0.71,
                            "correlation": 0.64,
                            "forecast_total": 842.3,
                            "actual_total": 815.0,
                            "aggregate_error": 0.0335,
                        },
                        "naive": {
                            "customers": 1000,
                            "mae": 0.93,
                            "correlation": 0.52,
                            "forecast_total": 902.0,
                            "actual_total": 815.0,
                            "aggregate_error": 0.1067,
                        },
                    },
                },
                "top_at_risk": [
                    {
                        "customer_id": "C0417",
                        "clv": 512.4,
                        "churn_probability": 0.6121,
                        "equity_at_risk": 313.6,
                        "cumulative_share": 0.0221,
                    }
                ],
                "churn_missing": None,
            }
        ),
        **_not_found("No value table in the store: run guanxi value."),
    },
    summary="Customer equity, equity at risk, the forecast check and who carries the risk",
)
def equity(
    _role: ScorerRole, request: Request, holder: Holder, audit: Audit
) -> EquityResponse | Response:
    """Return the overall equity, the holdout check and the customers carrying half the risk.

    ``HEAD`` answers with :func:`serving.routes.head_answer`, reading out no customer.
    """
    values = _values(request, holder)
    if request.method == "HEAD":
        return head_answer()
    info = values.info
    missing = values.churn_missing
    rows = values.top_at_risk().to_dicts()
    record_values(request, audit, values, rows)
    return EquityResponse(
        as_of=values.as_of,
        horizon_days=info.horizon_days,
        discount_rate=info.discount_rate,
        basis=info.basis,
        value_version=info.version,
        overall=segment_summary(
            values.equity["overall"].row(0, named=True), "all", missing is None
        ),
        churn_model=info.churn_model,
        validation=validation_of(values),
        top_at_risk=None
        if missing
        else [AtRiskCustomer(**{k: r[k] for k in AtRiskCustomer.model_fields}) for r in rows],
        churn_missing=missing,
    )


def _csv_chunks(frame: pl.DataFrame) -> Iterator[str]:
    """Yield the header, then the rows in chunks of :data:`_CSV_ROWS`, as CSV text."""
    header = io.StringIO()
    csv.writer(header).writerow(frame.columns)
    yield header.getvalue()
    for start in range(0, frame.height, _CSV_ROWS):
        yield frame.slice(start, _CSV_ROWS).write_csv(include_header=False)


def wants_csv(accept: str | None) -> bool:
    """Say whether an ``Accept`` header prefers ``text/csv`` to ``application/json``.

    Each is given the quality of the most specific range naming it (``text/csv``, then
    ``text/*``, then ``*/*``; none is 0). JSON, the default, wins a tie: a browser's
    ``text/html,...,*/*;q=0.8`` and ``*/*`` get JSON, ``text/csv`` alone CSV.

    Parameters
    ----------
    accept : str or None
        The header, as sent.

    Returns
    -------
    bool
        True when CSV is preferred.
    """
    ranges: dict[str, float] = {}
    for part in (accept or "").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media:
            ranges[media.lower()] = quality

    def quality_of(media: str) -> float:
        kind = media.split("/")[0]
        for named in (media, f"{kind}/*", "*/*"):
            if named in ranges:
                return ranges[named]
        return 0.0

    return quality_of("text/csv") > quality_of("application/json")


def segment_csv(values: LoadedValues, name: str, rows: pl.DataFrame | None) -> Response:
    """Stream a segment's rows as a CSV attachment.

    Parameters
    ----------
    values : LoadedValues
        The loaded table (its day names the file).
    name : str
        The segment or tier.
    rows : polars.DataFrame or None
        :func:`serving.values.segment_rows`; None for a ``HEAD`` request, answered with the
        same headers and no body (:func:`serving.routes.head_answer`).

    Returns
    -------
    fastapi.responses.Response
        ``text/csv``, the header then chunks of rows (:data:`serving.values.EXPORT_COLUMNS`),
        ``guanxi-<name>-<day>.csv``: a :class:`~fastapi.responses.StreamingResponse`.
    """
    filename = f"guanxi-{name}-{values.as_of.isoformat()}.csv"
    media_type, headers = (
        "text/csv; charset=utf-8",
        {"Content-Disposition": f'attachment; filename="{filename}"'},
    )
    if rows is None:
        return head_answer(media_type, headers)
    return StreamingResponse(
        _csv_chunks(rows.select(EXPORT_COLUMNS)), media_type=media_type, headers=headers
    )


_VARY_ACCEPT: Final = {
    "Vary": {
        "description": "Accept, when no format is given: the answer is chosen by the Accept "
        "header, so a cache keeps one per Accept.",
        "schema": {"type": "string"},
    }
}
"""The header of an answer chosen by ``Accept`` (:func:`segment_customers`)."""


@router.head("/segments/{name}/customers", response_model=None, include_in_schema=False)
@router.get(
    "/segments/{name}/customers",
    response_model=SegmentCustomers,
    responses={
        **_not_found(
            "No value table in the store (run guanxi value), or no such segment or tier (the "
            "detail lists the known ones)."
        ),
        **invalid_parameter("query.format", "Input should be 'json' or 'csv'"),
        200: {
            "description": "The customers (JSON), or with format=csv (or, without format, Accept: "
            "text/csv) a CSV stream.",
            "headers": {**REQUEST_ID_HEADER, **_VARY_ACCEPT},
            "content": {
                "application/json": {
                    "example": {
                        "segment": "loyal",
                        "kind": "rfm_segment",
                        "as_of": EXAMPLE_AS_OF,
                        "value_version": _TABLE["value_version"],
                        "count": 1,
                        "customers": [_VALUE],
                    }
                },
                "text/csv": {"schema": {"type": "string"}, "example": _CSV},
            },
        },
    },
    summary="The customers of an RFM segment or value tier, as JSON or a CSV stream",
)
def segment_customers(
    _role: ScorerRole,
    _query: CheckedQuery,  # after the key's check
    request: Request,
    response: Response,
    holder: Holder,
    audit: Audit,
    name: Annotated[str, Path(min_length=1, max_length=64)],
    format: Annotated[
        Literal["json", "csv"],
        BeforeValidator(lambda given: given.lower() if isinstance(given, str) else given),
        Query(
            description="json (default) or csv, in any case (CSV). Without it, an Accept header "
            "preferring text/csv to application/json answers CSV."
        ),
    ] = "json",
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            description="At most this many customers (default: all of them). With offset, pages "
            "through a large segment; count stays the segment's size.",
        ),
    ] = None,
    offset: Annotated[
        int, Query(ge=0, description="Skip this many customers first (default 0).")
    ] = 0,
) -> SegmentCustomers | Response:
    """Return (or stream as CSV) a segment's or tier's customers, highest CLV first.

    ``limit`` and ``offset`` take a page of them in that order (by CLV, then id: a page stays
    the same for one value table): the JSON answer built every customer of a segment in memory
    at once, with no way to ask for fewer. Without them the answer is all of them, as before;
    ``count`` is the segment's size either way, and only the customers answered are audited.

    ``format`` is read in any case (``CSV`` was a 422); without it an ``Accept: text/csv``
    (:func:`wants_csv`) answers CSV, as an integrator's HTTP client asks for it (it was JSON),
    and the answer says ``Vary: Accept`` (without it a cache could give one client's CSV to
    another asking for JSON). ``HEAD`` answers with the headers of the one chosen, reading out
    no customer.
    """
    values = _values(request, holder)  # after the path's and query's checks
    kind = values.segment_kind(name)
    if kind is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no segment or tier {name!r}; known: {', '.join(values.segments())}",
        )
    vary = {} if "format" in request.query_params else {"Vary": "Accept"}
    if vary and wants_csv(request.headers.get("accept")):
        format = "csv"  # the Accept header's choice; ?format= is the documented way and wins
    if request.method == "HEAD":
        answer = segment_csv(values, name, None) if format == "csv" else head_answer()
    else:
        every = segment_rows(values, kind, name)
        # clamped: polars takes no offset or length beyond a C long (a larger one would be a 500)
        start = min(offset, every.height)
        rows = every.slice(start, None if limit is None else min(limit, every.height))
        record_values(request, audit, values, rows.select("customer_id", "clv").to_dicts())
        if format != "csv":
            response.headers.update(vary)
            return SegmentCustomers(
                segment=name,
                kind=kind,  # type: ignore[arg-type]
                as_of=values.as_of,
                value_version=values.info.version,
                count=every.height,
                customers=[customer_value(values, r) for r in rows.iter_rows(named=True)],
            )
        answer = segment_csv(values, name, rows)
    answer.headers.update(vary)
    return answer
