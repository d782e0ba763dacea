"""Reviewer pages of the campaign loop: the plan (``/ui/plan``) and the campaigns.

Both read the store, not the loaded models: the plan ``guanxi target`` kept (its rows and the
summaries in its metadata) and the campaigns ``guanxi campaign record`` kept, with the value
table of the plan's day (else the latest, as ``guanxi campaign report`` takes it; the page says
which) for each customer's segment and churn probability, the segments of the one plan the
campaigns were drawn from first when it holds every customer without one.

* The plan page shows the budget, what the plan spends and expects back, ROI, the allocation by
  segment and by offer (bar charts with their data tables), the next best use of the remaining
  budget (or why it buys nothing, as ``guanxi target`` says), the comparison with an even spend
  and with churn score alone, and the customers with the most expected value.
* The campaign page shows, per offer, the Qini curve of ranking the campaign's customers by churn
  score (incremental responders among the top k, against random targeting), the treated and control
  response rates, and per offer and segment the realised ROI beside the ROI the stored plan
  expected of that offer in that segment.

Every value reaches the page through Jinja2's autoescaping or :func:`markupsafe.escape` in the
charts.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import Any, Final, NamedTuple

import numpy as np
import polars as pl
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import escape

from features.store import CampaignInfo, PlanInfo, Store, TamperedTableError, UnsignedTableError
from models.campaigns import (
    ALL_SEGMENTS,
    FILLED_FROM_VALUES,
    UNSEGMENTED,
    DrawnCosts,
    DrawnPlans,
    Overlap,
    RefusedValues,
    campaign_report,
    drawn_costs,
    drawn_plans,
    expected_plan_note,
    expected_roi,
    margin_missing,
    pool_campaigns,
    recorded_campaigns,
    segment_campaigns,
    small_cells_note,
    stored_plan_offers,
    unmeasured,
    unpriced_offers,
    with_campaign_names,
)
from models.customer_rows import RepeatedCustomersError
from models.offers import OffersFile
from models.targeting import NO_CHURN_COMPARISON, next_limits_note
from models.uplift import qini
from serving.deps import Holder, Reviewer, SettingsDep, served_values
from serving.state import StateHolder
from serving.ui.charts import (
    _GRID,
    _MUTED,
    _SERIES,
    Chart,
    _nice_ticks,
    _svg,
    _text,
    bar_chart,
    format_date,
    format_number,
)
from serving.ui.pages import PAGE_METHODS, group_name, render, sentence

__all__ = ["TOP_CUSTOMERS", "qini_chart", "router"]

logger = logging.getLogger(__name__)

TOP_CUSTOMERS: Final = 20
"""Customers with the most expected value listed on the plan page."""

router = APIRouter(prefix="/ui", include_in_schema=False)


def qini_chart(
    series: dict[str, tuple[np.ndarray, np.ndarray]], *, chart_id: str, title: str
) -> Chart:
    """Qini curves: incremental responders among the top k customers of each ranking.

    Parameters
    ----------
    series : dict of str to (numpy.ndarray, numpy.ndarray)
        Per ranking, customers targeted and incremental responders (:func:`models.uplift.qini`).
    chart_id : str
        Unique id of the chart in the page.
    title : str
        Chart title.

    Returns
    -------
    Chart
        The chart (with the random-targeting line dashed) and its data table at each tenth.
    """
    width, height, left, right, top, bottom = 520, 320, 60, 16, 14, 70
    pw, ph = width - left - right, height - top - bottom
    n = max((float(x[-1]) for x, _ in series.values()), default=1.0) or 1.0
    values = np.concatenate([y for _, y in series.values()] or [np.zeros(1)])
    lo, hi = min(0.0, float(values.min())), max(1.0, float(values.max()))
    ticks = _nice_ticks(lo, hi)
    lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])

    def px(v: float) -> float:
        return left + v / n * pw

    def py(v: float) -> float:
        return top + (hi - v) / (hi - lo) * ph

    parts = [
        f'<line x1="{left}" y1="{py(t):.1f}" x2="{left + pw}" y2="{py(t):.1f}" stroke="{_GRID}"/>'
        + _text(left - 6, py(t) + 4, format_number(t), size=11, fill=_MUTED, text_anchor="end")
        for t in ticks
    ]
    parts += [  # how many customers: the axis had its name and no number
        _text(px(t), top + ph + 16, format_number(t), size=11, fill=_MUTED, text_anchor="middle")
        for t in _nice_ticks(0.0, n, 4)
    ]
    parts.append(
        _text(left + pw / 2, top + ph + 36, "customers targeted, best first", text_anchor="middle")
    )
    parts.append(  # the axis said nothing of what it counts
        _text(
            14,
            top + ph / 2,
            "incremental responders",
            text_anchor="middle",
            transform=f"rotate(-90 14 {top + ph / 2:.1f})",
        )
    )
    rows: list[tuple[str, ...]] = []
    shares = [i / 10 for i in range(1, 11)]
    for (name, (x, y)), color in zip(series.items(), _SERIES, strict=False):
        end = float(y[-1])
        parts.append(
            f'<line x1="{px(0):.1f}" y1="{py(0):.1f}" x2="{px(n):.1f}" y2="{py(end):.1f}" '
            f'stroke="{_MUTED}" stroke-dasharray="4 4"><title>random targeting</title></line>'
        )
        # every step-th point and the last: a thinned curve without its end stopped short of
        # the random line's (the demo's customers without a churn probability, tied last)
        keep = np.unique(np.r_[np.arange(0, len(x), max(1, len(x) // 200)), len(x) - 1])
        points = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in zip(x[keep], y[keep], strict=True))
        parts.append(
            f'<g class="series"><title>{escape(name)}</title><polyline points="{points}" '
            f'fill="none" stroke="{color}" stroke-width="2"/></g>'
        )
        for share in shares:
            k = int(np.searchsorted(x, share * float(x[-1])))
            k = min(k, len(x) - 1)
            rows.append((name, f"{share:.0%}", format_number(float(y[k]), 1)))
    legend = " and ".join(series) or "no ranking"
    description = (
        f"Qini curve of {legend}: incremental responders among the top customers; the dashed "
        "line is random targeting."
    )
    return Chart(
        svg=_svg(chart_id, width, height, title, description, "".join(parts)),
        title=title,
        description=description,
        columns=("Ranking", "Share targeted", "Incremental responders"),
        rows=tuple(rows),
    )


class _LatestPlan(NamedTuple):
    """The latest plan as the pages use it: all None but ``refused`` when it is not shown."""

    info: PlanInfo | None
    """Its metadata, from the same checked read as its rows."""
    rows: pl.DataFrame | None
    """Its rows."""
    offers: OffersFile | None
    """The offers its rows agree with (:func:`models.campaigns.stored_plan_offers`)."""
    refused: date | None
    """The day of a plan the store's key does not vouch for (not shown), else None."""


def _latest_plan(store: Store) -> _LatestPlan:
    """Read the latest plan, its metadata and rows from one checked read, listing the plans once."""
    days = store.list_plans()
    if not days:
        return _LatestPlan(None, None, None, None)
    try:
        read = store.read_plan_with_info(days[-1])  # rows and metadata of the same checked bytes
        rows, info = read if read is not None else (None, None)
        offers = stored_plan_offers(info, rows) if info is not None and rows is not None else None
    except (UnsignedTableError, TamperedTableError) as exc:  # not shown: not what was signed
        logger.warning("not showing the plan as of %s: %s", days[-1], exc)
        return _LatestPlan(None, None, None, days[-1])
    return _LatestPlan(info, rows, offers, None)


def _bars(
    rows: Sequence[dict[str, Any]],
    key: str,
    value: str,
    chart_id: str,
    title: str,
    name: Callable[[str], str],
) -> Chart:
    items = [(name(str(r[key])), float(r[value] or 0.0)) for r in rows]
    return bar_chart(items, chart_id=chart_id, title=title, value_label=title, digits=2)


def _tranche(info: PlanInfo) -> dict[str, float] | None:
    """Return the next best use's budget and what was left, when it is a further tenth.

    The page headed the next best use "of the remaining budget" under a plan that spent all of
    it (the demo's), without saying what it spends; ``guanxi target`` says it in its title. A
    plan kept before its next best use's budget was kept says nothing.
    """
    budget = next(iter(info.summaries.get("next_best_budget", [])), {}).get("budget")
    left = info.budget - info.investment
    if budget is None or math.isclose(budget, left, abs_tol=0.005):
        return None
    return {"budget": float(budget), "left": max(left, 0.0)}


@router.api_route("/plan", methods=PAGE_METHODS, response_class=HTMLResponse)
def plan_page(
    request: Request, _role: Reviewer, settings: SettingsDep, holder: Holder
) -> HTMLResponse:
    """Show the latest plan: budget, allocation, expected return, ROI, the best customers.

    The best customers link to their pages; while no model is loaded only those of the served
    value table do (:func:`serving.deps.served_values`): their page shows their value and history,
    another's would be the 404.
    """
    store = settings.store()
    info, rows, _, refused = _latest_plan(store)  # checked against its signed manifest
    if info is None or rows is None:
        # a plan kept without this server's store key (or changed since) is there, not shown
        return render(request, "plan.html", {"active": "plan", "plan": None, "refused": refused})
    summaries = info.summaries
    by_segment = summaries.get("by_segment", [])
    by_offer = summaries.get("by_offer", [])
    totals = [r for r in summaries.get("comparison", []) if r["segment"] == "total"]
    expected_return = info.expected_value + info.investment
    top = rows.head(TOP_CUSTOMERS).to_dicts()
    return render(
        request,
        "plan.html",
        {
            "active": "plan",
            "plan": info,
            "expected_return": expected_return,
            "roi": info.expected_value / info.investment if info.investment else None,
            "by_segment": by_segment,
            "by_offer": by_offer,
            "segment_chart": _bars(
                by_segment,
                "segment",
                "investment",
                "plan-segments-chart",  # the table is "plan-segments": an id is one element's
                "Investment by segment",
                group_name,  # "can't lose", as the other pages name it
            ),
            "offer_chart": _bars(
                by_offer,
                "offer",
                "expected_return",
                "plan-offers-chart",
                "Expected return by offer",
                str,  # "retention_email", as the tables, the campaign page and the offers file say
            ),
            "totals": totals,
            # the comparison's rows without "churn score" said nothing of why (the CLI says it)
            "no_churn_comparison": None
            if any(r["allocation"] == "churn_score" for r in totals)
            else sentence(NO_CHURN_COMPARISON),
            "next_by_segment": summaries.get("next_best_by_segment", []),
            "next_by_offer": summaries.get("next_best_by_offer", []),
            "next_reason": next(iter(summaries.get("next_reason", [])), {}).get("reason"),
            "next_tranche": _tranche(info),
            "next_limits": next_limits_note([r["limit"] for r in summaries.get("next_limits", [])]),
            "top": top,
            "valued": _valued(request, holder, [r["customer_id"] for r in top]),
        },
    )


def _valued(request: Request, holder: StateHolder, customers: list[str]) -> set[str]:
    """Return those of ``customers`` the served value table holds, while no model is loaded.

    Their customer page answers without a model (the value and history); with a model loaded the
    page links every customer, so none is needed (empty).
    """
    if holder.current is not None:
        return set()
    values = served_values(request, holder)
    return {c for c in customers if values is not None and values.holds(c)}


def _with_values(
    store: Store,
    outcomes: pl.DataFrame,
    campaigns: Mapping[str, pl.DataFrame],
    overlaps: Sequence[Overlap],
    reported: Sequence[CampaignInfo],
    drawn: DrawnPlans,
    plan_day: date | None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Give outcome rows without a segment or churn probability of their own the plan's or table's.

    Each row takes its own first (:func:`models.campaigns.fill_from_values`): a campaign without
    either column pooled with one with them was all unsegmented here, and the Qini curves ranked
    every row by the value table's churn probability, not the one the campaign recorded. The rows of
    the one plan the campaigns were drawn from, which key its expected ROI, give the segments when
    it holds every row without one (contacted and control alike). The table is the one ``guanxi
    campaign report`` takes, that of the day :meth:`DrawnPlans.segmenting
    <models.campaigns.DrawnPlans.segmenting>` gives (the latest plan's, ``plan_day``, shown or
    refused, or the one plan's), with how to say it, else the latest
    (:func:`models.campaigns.outcome_values`); the page filled nothing when the plan's day had
    none. Campaigns drawn from plans of several days, all used, are each filled by their own plan,
    by the report's helper (:func:`models.campaigns.segment_campaigns`; before, they all took
    the latest plan's day). No table is read when every row has its own (a refused one was said to
    leave the segments unknown). The context says which table was used, why and for how many
    rows (``values_used``, a note a plan), the outcome customers it lacks (``lacking``), the days
    of the tables the store's key does not vouch for (``refused_values``) or listing a campaign
    customer on more than one row (``repeated_values``).
    """
    if all(c in outcomes.columns and not outcomes[c].null_count() for c in FILLED_FROM_VALUES):
        return outcomes, {}  # every row has its own: no table is used, nor said to be refused
    segmented = segment_campaigns(
        store, campaigns, overlaps, reported, drawn, plan_day, write=format_date
    )
    used: list[str] = []
    lacking: list[str] = []
    refused: dict[str, list[date]] = {"refused_values": [], "repeated_values": []}
    qini_last = "ranked last by churn score in the Qini curves (no churn probability)"
    for part in segmented.parts:
        read = part.read
        if read is None:  # no value table
            continue
        if isinstance(read, RefusedValues):  # no segments and no churn from it
            logger.warning(
                "not using the value table as of %s on the campaign page: %s", read.day, read.error
            )
            repeated = isinstance(read.error, RepeatedCustomersError)
            refused["repeated_values" if repeated else "refused_values"].append(read.day)
            continue
        used.append(read.said())
        said = read.not_in_values({"segment": UNSEGMENTED, "churn_probability": qini_last})
        if said is not None:
            lacking.append(said)
    context: dict[str, Any] = {key: days for key, days in refused.items() if days}
    if used:
        context |= {"values_used": "; ".join(used), "lacking": "; ".join(lacking) or None}
    return segmented.outcomes, context


def _no_qini(rows: pl.DataFrame, churn: pl.Series | None) -> str | None:
    """Say why an offer's outcome rows draw no Qini curve, None when they draw one.

    The curve ranks the rows by churn probability and counts the contacted responders less the
    control's: it needs churn probabilities, contacted and control customers, responders and
    not. The page answered 500 when an offer had no control, no responder or only responders
    (scikit-uplift refuses an outcome or a treatment of one value), which ``guanxi campaign
    record`` keeps, with a note for the control.
    """
    if churn is None or churn.is_null().all():
        return "No churn probabilities for these customers: no Qini curve."
    if rows["control"].null_count() or rows["responded"].null_count():  # a file kept unchecked
        return "Some of this offer's rows have no control or responded value: no Qini curve."
    control = rows["control"].sum()
    if control in (0, rows.height):
        arm = "held out as control" if control == 0 else "contacted"
        return (
            f"No customer of this offer was {arm}: no Qini curve, which compares the contacted "
            "customers' responses with the control's."
        )
    responded = rows["responded"].sum()
    if responded in (0, rows.height):
        who = "Every customer" if responded else "No customer"
        return (
            f"{who} of this offer responded: no Qini curve, which needs customers who responded "
            "and customers who did not."
        )
    return None


def _campaign_context(store: Store) -> dict[str, Any]:
    try:
        campaigns = recorded_campaigns(store)
    except (UnsignedTableError, TamperedTableError) as exc:  # none reported: not what was signed
        logger.warning("not showing the campaigns: %s", exc)
        try:
            listed = store.list_campaigns()
        except TamperedTableError:  # the refused one is a file whose metadata cannot be read
            # damaged, not unsigned: the page said "not signed ... or it changed since" of it
            return {"campaigns": [], "refused_campaign": exc.what, "damaged_campaign": True}
        return {"campaigns": listed, "refused_campaign": exc.what}
    outcomes, overlaps = pool_campaigns(campaigns)  # one file recorded twice counts once
    if outcomes is None:
        return {"campaigns": []}
    # checked: a plan the key does not vouch for, or whose offers its rows deny, prices nothing
    info, planned_rows, offers, refused_plan = _latest_plan(store)
    listed = store.list_campaigns()
    reported = [c for c in listed if c.name in campaigns]
    # the plans the campaigns were drawn from, when they say: the latest plan's ROI read as
    # theirs whichever they came from; read first, as the outcomes are segmented by that plan
    drawn = drawn_plans(reported, store.read_plan_with_info, format_date)  # days as the page's
    if drawn.refused is not None:
        logger.warning("not using the plan a campaign was drawn from: %s", drawn.refused)
    plan_day = info.as_of if info is not None else refused_plan
    outcomes, filled = _with_values(store, outcomes, campaigns, overlaps, reported, drawn, plan_day)
    # outcomes with revenue and no margin (a campaign recorded without the column) are not
    # valued: guanxi campaign report refuses them without --margin-rate, and the page has no
    # rate (at 1.0 it called their revenue a margin); the rows counting them show no margin
    unvalued = [name for name, frame in campaigns.items() if margin_missing(frame)]
    # an offer is priced at what its campaigns paid, from the plans they were drawn from (each
    # campaign's contacts at its own plan's cost when those differ), else by the latest plan;
    # one none prices has no cost or ROI
    latest = f"the latest stored plan, as of {format_date(info.as_of)}" if info else ""
    drawn_cost = (
        drawn_costs(campaigns, reported, drawn, offers, latest, format_date, overlaps=overlaps)
        if offers is not None and info is not None
        else DrawnCosts({}, None)
    )
    report = campaign_report(
        with_campaign_names(outcomes, campaigns, overlaps),
        offers,
        leave_unvalued=True,
        leave_unpriced=True,
        costs=drawn_cost.costs,
        paid=drawn_cost.paid,
    )
    expected = expected_roi(drawn.rows if drawn.rows is not None else planned_rows)
    charts = []
    for offer in sorted(outcomes["offer"].unique().to_list()):
        rows = outcomes.filter(pl.col("offer") == offer)
        series = {}
        churn = rows.get_column("churn_probability", default=None)
        no_qini = _no_qini(rows, churn)
        if no_qini is None and churn is not None:  # churn is None: _no_qini says so
            x, y = qini(
                rows["responded"].cast(pl.Int64).to_numpy(),
                churn.fill_null(0.0).to_numpy(),
                (~rows["control"]).cast(pl.Int64).to_numpy(),
            )
            series["churn score"] = (x, y)
        all_row = report.filter((pl.col("offer") == offer) & (pl.col("segment") == ALL_SEGMENTS))
        rates = all_row.row(0, named=True) if all_row.height else {}
        charts.append(
            {
                "offer": offer,
                "qini": qini_chart(series, chart_id=f"qini-{offer}", title=f"{offer}: Qini curve")
                if series
                else None,
                "no_qini": no_qini,
                "rates": bar_chart(
                    [  # an arm nobody was in has no rate: drawn at 0.0% it read as measured
                        (arm, float(rate))
                        for arm, rate in (
                            ("treated", rates.get("response")),
                            ("control", rates.get("control_response")),
                        )
                        if rate is not None
                    ],
                    chart_id=f"rates-{offer}",
                    title=f"{offer}: response, treated and control",
                    value_label="Response rate",
                    percent=True,
                ),
            }
        )
    # qa50-1: a row short of customers (or of a group) says so in its cells, not as firm figures
    table = [
        {**r, "expected_roi": expected.get((r["offer"], r["segment"])), "unmeasured": unmeasured(r)}
        for r in report.to_dicts()
    ]
    return {
        "campaigns": listed,
        "drawn": drawn.said(format_date) if drawn.rows is not None else None,
        # the expected ROI said "the stored plan's", not which: the latest, made after the
        # campaign perhaps, from the rates it measured (guanxi campaign report names its day)
        "plan_day": info.as_of if info is not None else None,
        "plan_note": (
            expected_plan_note(info, reported, drawn.unused, format_date)
            if info is not None and drawn.rows is None
            else None
        ),
        "refused_plan": refused_plan,
        "overlaps": [overlap.note for overlap in overlaps],
        "unvalued": ", ".join(repr(name) for name in unvalued),
        "unpriced": (
            unpriced_offers(
                campaigns,
                offers,
                latest,
                drawn_cost.priced,
                drawn_cost.declined,
                drawn_cost.planned,
            )
            if offers is not None and info is not None
            else None
        ),
        "drawn_priced": drawn_cost.note,
        **filled,
        "charts": charts,
        "segments": [r for r in table if r["segment"] != ALL_SEGMENTS],
        "overall": [r for r in table if r["segment"] == ALL_SEGMENTS],
        # guanxi campaign report's note of them, its segments named as the table names them
        "small": small_cells_note(table, group_name),
        "priced": offers is not None,
        "planned": info is not None,
    }


@router.api_route("/campaign", methods=PAGE_METHODS, response_class=HTMLResponse)
def campaign_page(request: Request, _role: Reviewer, settings: SettingsDep) -> HTMLResponse:
    """Show the recorded campaigns: Qini curves, control vs treated, realised vs expected ROI."""
    return render(
        request, "campaign.html", {"active": "campaign", **_campaign_context(settings.store())}
    )
