"""The reviewer value page: customer equity and equity at risk by segment and tier, and checks.

``/ui/value`` shows, for the value table loaded with the state (:mod:`serving.values`), the overall
customer equity and equity at risk, bar charts of both per RFM segment and per value tier with
their data tables (customers, revenue, mean CLV, churn risk, equity, equity at risk), the
numeric validation of the purchase forecast against the naive "same as last period" forecast,
the customers who carry half the equity at risk, and a CSV export per segment
(``/ui/value/segments/{name}.csv``, the rows of ``GET /v1/segments/{name}/customers?format=csv``
for a logged-in reviewer). Without a value table it says how to compute one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from serving.deps import PageError, PageState, Reviewer
from serving.ui.charts import bar_chart
from serving.ui.pages import group_name, render
from serving.value_routes import record_values, segment_csv, segment_summary, validation_of
from serving.values import NO_VALUES, segment_rows

__all__ = ["FORECAST_NAMES", "router"]

router = APIRouter(prefix="/ui", include_in_schema=False)

FORECAST_NAMES = {"bgnbd": "BG/NBD", "naive": "same as last period (naive)"}
"""How the page names the forecasts of the holdout check."""

_GROUPS = (("rfm_segment", "RFM segment"), ("value_tier", "value tier"))


@router.get("/value", response_class=HTMLResponse)
def value_page(request: Request, _role: Reviewer, state: PageState) -> HTMLResponse:
    """Show equity and equity at risk by segment and tier, the forecast check and the top risks."""
    values = state.values
    if values is None:
        return render(request, "value.html", {"values": None, "message": NO_VALUES})
    groups: list[dict[str, Any]] = []
    for by, label in _GROUPS:
        rows = [segment_summary(r, str(r[by])) for r in values.equity[by].iter_rows(named=True)]
        charts = [
            bar_chart(
                [(group_name(r.name), max(getattr(r, field), 0.0)) for r in rows],
                chart_id=f"{field}-{by}",
                title=f"{title} by {label}",
                value_label=title,
                digits=0,
            )
            for field, title in (
                ("equity", "Customer equity"),
                ("equity_at_risk", "Equity at risk"),
            )
        ]
        groups.append({"by": by, "label": label, "rows": rows, "charts": charts})
    top = values.top_at_risk(limit=25)
    record_values(request, request.app.state.audit, values, top.to_dicts())
    return render(
        request,
        "value.html",
        {
            "values": values,
            "info": values.info,
            "overall": segment_summary(values.equity["overall"].row(0, named=True), "all"),
            "groups": groups,
            "validation": validation_of(values),
            "forecast_names": FORECAST_NAMES,
            "top": top.to_dicts(),
        },
    )


@router.get("/value/segments/{name}.csv")
def segment_export(
    request: Request, _role: Reviewer, state: PageState, name: str
) -> StreamingResponse:
    """Download a segment's or tier's customers as CSV from the page (session login)."""
    values = state.values
    kind = values.segment_kind(name) if values is not None else None
    if values is None or kind is None:
        raise PageError(404, "No such segment", f"No segment or tier {name!r} is loaded.")
    rows = segment_rows(values, kind, name)
    record_values(
        request, request.app.state.audit, values, rows.select("customer_id", "clv").to_dicts()
    )
    return segment_csv(values, name, rows)
