"""The reviewer value page: customer equity and equity at risk by segment and tier, and checks.

``/ui/value`` shows, for the value table loaded with the state (:mod:`serving.values`), the overall
customer equity and equity at risk, bar charts of both per RFM segment and per value tier with
their data tables (customers, revenue, mean CLV, churn risk, equity, equity at risk), the
numeric validation of the purchase forecast against the naive "same as last period" forecast,
the customers who carry half the equity at risk, and a CSV export per segment
(``/ui/value/segments/{name}.csv``, the rows of ``GET /v1/segments/{name}/customers?format=csv``
for a logged-in reviewer). Without a value table it says how to compute one.

Customer value needs no model: while none is loaded (nothing promoted yet, or the first load still
running) the page and its exports show the store's newest value table, and the page says what is
missing and what to run (:func:`serving.deps.loaded_page_state`'s 503 message), as the value
routes do (:func:`serving.deps.served_values`). Equity at risk needs churn probabilities: a table
computed without them says so and how to get them, instead of showing an equity at risk of
nothing.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from models.clv import VALUE_TIERS
from models.targeting import GROUP_NAMES, NO_GROUP_NAMES
from serving.deps import Holder, PageError, Reviewer, loaded_page_state, served_values
from serving.lifecycle import followed_version
from serving.state import StateHolder
from serving.ui.charts import bar_chart, format_date
from serving.ui.pages import (
    PAGE_METHODS,
    group_name,
    render,
    served_alias,
    shown_churn,
    value_churn,
)
from serving.value_routes import record_values, segment_csv, segment_summary, validation_of
from serving.values import NO_SEGMENT, NO_VALUES, LoadedValues, segment_rows

__all__ = ["FORECAST_NAMES", "page_values", "router"]

router = APIRouter(prefix="/ui", include_in_schema=False)

FORECAST_NAMES = {"bgnbd": "BG/NBD", "naive": "same as last period (naive)"}
"""How the page names the forecasts of the holdout check."""

_GROUPS = tuple(GROUP_NAMES.items())
_CHARTS = (("equity", "Customer equity"), ("equity_at_risk", "Equity at risk"))
_REST: Final = VALUE_TIERS[-1][0]
"""The value tier of everyone below the top tiers, whose export "CSV of the rest customers" read
oddly in a screen reader's list of links."""


def _export_label(by: str, name: str, label: str) -> str:
    """Name a group's CSV export in a screen reader's list of links.

    Parameters
    ----------
    by : str
        The grouping (``rfm_segment`` or ``value_tier``).
    name : str
        The group's key (:data:`serving.values.NO_SEGMENT` for the customers without one).
    label : str
        The grouping as a person reads it (``"RFM segment"``).

    Returns
    -------
    str
        E.g. ``"CSV of the champions customers"``, ``"CSV of the customers with no RFM segment"``
        (not "the none customers"), ``"CSV of the rest of the customers"``.
    """
    if name == NO_SEGMENT:
        return f"CSV of the customers with no {label}"
    if by == "value_tier" and name == _REST:
        return "CSV of the rest of the customers"
    return f"CSV of the {group_name(name)} customers"


def page_values(request: Request, holder: StateHolder) -> tuple[LoadedValues | None, str | None]:
    """Return the value table the pages show, and why no model is loaded (None when one is).

    With a state loaded its value table is shown; without one, the store's newest value table
    (:func:`serving.deps.served_values`), so a reviewer sees the customers' value before any churn
    model is promoted.

    Parameters
    ----------
    request : fastapi.Request
        The request (its app's settings name the store).
    holder : StateHolder
        The app's state holder.

    Returns
    -------
    tuple of (LoadedValues or None, str or None)
        The values (None when there are none to show) and, while no state is loaded, what the
        pages that need models say is missing and what to run.
    """
    try:
        loaded_page_state(holder)
        no_models = None
    except PageError as exc:  # no model loaded: values do not need one
        no_models = exc.message
    return served_values(request, holder), no_models


@router.api_route("/value", methods=PAGE_METHODS, response_class=HTMLResponse)
def value_page(request: Request, _role: Reviewer, holder: Holder) -> HTMLResponse:
    """Show equity and equity at risk by segment and tier, the forecast check and the top risks."""
    values, no_models = page_values(request, holder)
    if values is None:
        return render(
            request, "value.html", {"values": None, "message": NO_VALUES, "no_models": no_models}
        )
    at_risk = values.churn_missing is None
    overall = segment_summary(values.equity["overall"].row(0, named=True), "all", at_risk)
    # equity at risk is churn probability x CLV: without any probability it is not zero but unknown
    drawn = _CHARTS if at_risk else _CHARTS[:1]
    groups: list[dict[str, Any]] = []
    for by, label in _GROUPS:
        # nor is it zero in a group where nobody has a probability (only lapsed customers, say):
        # its 0.00 read as "no risk". The page shows it as not measured and draws no bar; the
        # API keeps the 0 its clients sum (with the group's ``scored``, 0, saying so)
        rows = [
            segment_summary(r, str(r[by]), at_risk and r["scored"] > 0)
            for r in values.equity[by].iter_rows(named=True)
        ]
        # the customers without a segment are "unsegmented", as the plan and campaign pages
        # name them; "none" stays their key (the export's URL, the API)
        names = {
            r.name: NO_GROUP_NAMES[by] if r.name == NO_SEGMENT else group_name(r.name) for r in rows
        }
        charts = [
            bar_chart(
                [
                    (names[r.name], max(shown, 0.0))
                    for r in rows
                    if (shown := getattr(r, field)) is not None
                ],
                chart_id=f"{field}-{by}",
                title=f"{title} by {label}",
                value_label=title,
                digits=0,
            )
            for field, title in drawn
        ]
        exports = {r.name: _export_label(by, r.name, label) for r in rows}
        groups.append(
            {
                "by": by,
                "label": label,
                "rows": rows,
                "names": names,
                "charts": charts,
                "exports": exports,
            }
        )
    top = values.top_at_risk(limit=25)
    record_values(request, request.app.state.audit, values, top.to_dicts(), "page")  # not HEAD's
    # the served churn model, when it is not the one the table read (promoted since: qa49 M1)
    state = holder.current
    shown = None if state is None else shown_churn(state)
    churn = value_churn(
        values, shown, served_alias(request), partial(followed_version, request.app)
    )
    return render(
        request,
        "value.html",
        {
            "values": values,
            "info": values.info,
            "overall": overall,
            "groups": groups,
            "validation": validation_of(values),
            "forecast_names": FORECAST_NAMES,
            "top": top.to_dicts(),
            "no_models": no_models,
            "value_churn": churn,
        },
    )


@router.api_route("/value/segments/{name}.csv", methods=PAGE_METHODS)
def segment_export(request: Request, _role: Reviewer, holder: Holder, name: str) -> Response:
    """Download a segment's or tier's customers as CSV from the page (session login).

    ``HEAD`` (a link checker's) answers with the CSV's headers, reading out no customer.
    """
    values, _ = page_values(request, holder)
    if values is None:  # it said "No segment or tier ... is loaded", as though the table lacked it
        raise PageError(404, "No value table", NO_VALUES)  # as the value page says it
    kind = values.segment_kind(name)
    if kind is None:
        raise PageError(
            404,
            "No such segment",
            f"No segment or tier {name!r} in the value table as of {format_date(values.as_of)}; "
            f"known: {', '.join(values.segments())}.",
        )
    if request.method == "HEAD":
        return segment_csv(values, name, None)
    rows = segment_rows(values, kind, name)
    served = rows.select("customer_id", "clv").to_dicts()
    record_values(request, request.app.state.audit, values, served, "page")
    return segment_csv(values, name, rows)
