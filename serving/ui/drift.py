"""The drift report as a reviewer page (``/ui/drift``) and as a self-contained HTML file.

Both show the report ``guanxi drift`` keeps in the store (:mod:`pipelines.drift`): feature drift
per reference snapshot, score drift per task, live performance of earlier scores against the
model card, and the forecast error of earlier value tables. The page and the file render the
same template body (``drift_body.html``) from the same view (:func:`drift_view`), so they cannot
disagree; the file inlines the stylesheet and is written with Jinja2's autoescape on, so a
feature or task name never becomes markup.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from features.store import Store
from models.drift import drifted_first
from serving.deps import Reviewer
from serving.ui.charts import Chart, bar_chart, format_date, reliability_chart
from serving.ui.pages import HERE, PAGE_METHODS, environment, filters, render

__all__ = ["TOP_FEATURES", "UNREADABLE", "drift_page", "drift_view", "render_report", "router"]

TOP_FEATURES: Final = 20
"""Features drawn per reference in the PSI chart (the table lists them all)."""

router = APIRouter(prefix="/ui", include_in_schema=False)

logger = logging.getLogger(__name__)

UNREADABLE: Final = (
    "The drift report as of {day} cannot be read (the server's log says why, request id "
    "{request_id}): run `guanxi drift` (or `guanxi cycle`) again to keep a new one."
)
"""What the page says of a stored record that is not a JSON object (truncated, emptied): it
was a 500."""


def drift_view(report: dict[str, Any]) -> dict[str, Any]:
    """Turn a stored report into what the template shows: the report and its charts.

    Parameters
    ----------
    report : dict
        A report of :func:`pipelines.drift.drift_report` (as kept in the store).

    Returns
    -------
    dict
        ``report``, ``feature_charts`` (PSI bars per reference, drifted and highest first),
        ``feature_rows`` (each reference's rows in that order, for its table:
        :func:`models.drift.drifted_first`), ``score_chart`` (PSI per task, or None) and
        ``reliability`` (one chart per live performance entry).
    """
    task_title = filters()["task_title"]  # as the tables and the other pages name a task
    as_of = format_date(report["as_of"])
    feature_charts: list[Chart] = []
    feature_rows: list[list[Mapping[str, Any]]] = []
    for i, group in enumerate(report.get("features", [])):
        rows = drifted_first(group["rows"])  # the table in the chart's order
        feature_rows.append(rows)
        feature_charts.append(
            bar_chart(
                [(r["column"], float(r["psi"])) for r in rows[:TOP_FEATURES]],
                chart_id=f"psi-{i}",
                title=f"PSI per feature, {format_date(group['reference'])} to {as_of}",
                value_label="PSI",
            )
        )
    scores = report.get("scores", [])
    score_chart = (
        bar_chart(
            [(task_title(r["column"]), float(r["psi"])) for r in scores],
            chart_id="score-psi",
            # it read "tested-on snapshot to ..."; worded as the feature sections and the CLI say it
            title=f"Score PSI per task, from the snapshot each champion was tested on to {as_of}",
            value_label="PSI",
        )
        if scores
        else None
    )
    reliability = [
        reliability_chart(
            {
                f"{task_title(p['task'])} scored {format_date(p['as_of'])}": [
                    tuple(b) for b in p["reliability"]
                ]
            },
            chart_id=f"live-{i}",
            title=f"{task_title(p['task'])}: live reliability of the scores of "
            f"{format_date(p['as_of'])}",
        )
        for i, p in enumerate(report.get("performance", []))
    ]
    return {
        "report": report,
        "feature_charts": feature_charts,
        "feature_rows": feature_rows,
        "score_chart": score_chart,
        "reliability": reliability,
    }


def render_report(report: dict[str, Any]) -> str:
    """Render a report as one self-contained HTML page (stylesheet inlined, values escaped).

    Parameters
    ----------
    report : dict
        A report of :func:`pipelines.drift.drift_report`.

    Returns
    -------
    str
        The page.
    """
    env = environment()
    css = (HERE / "static" / "guanxi.css").read_text(encoding="utf-8")
    return env.get_template("drift_report.html").render(css=css, **drift_view(report))


@router.api_route("/drift", methods=PAGE_METHODS, response_class=HTMLResponse)
def drift_page(request: Request, _role: Reviewer) -> HTMLResponse:
    """Show the newest drift and live-performance report kept in the store."""
    store = Store(request.app.state.settings.home)
    days = store.list_records("drift")
    if not days:
        return render(request, "drift.html", {"report": None})
    try:
        report = store.read_record("drift", days[-1])
        if report is not None and not isinstance(report, dict):
            raise ValueError(f"a JSON {type(report).__name__}, not an object")
    except (ValueError, OSError) as exc:  # json's errors are ValueErrors
        request_id = request.state.request_id
        path = store.record_path("drift", days[-1])
        logger.warning("request %s: the drift report %s cannot be read: %s", request_id, path, exc)
        unreadable = UNREADABLE.format(day=format_date(days[-1]), request_id=request_id)
        return render(request, "drift.html", {"report": None, "unreadable": unreadable})
    context = drift_view(report) if report is not None else {"report": None}
    return render(request, "drift.html", context)
