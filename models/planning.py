"""A campaign plan from what the store holds: the value table, the snapshot, recorded campaigns.

``guanxi target`` and ``POST /v1/targeting`` both call :func:`plan_from_store`, so the command
line and the API plan the same way:

1. the value table of the day (``guanxi value``) gives each customer's RFM segment, value tier,
   churn probability, churn population and CLV; the snapshot of the day, when the store has it,
   adds open complaints and recency (:func:`models.targeting.targeting_customers`);
2. recorded campaigns (``guanxi campaign record``) replace the offers' rates by the rates they
   measured per segment (:func:`models.campaigns.measured_rates`); outcomes without a
   ``segment`` or ``churn_probability`` column take them from the value table; with the day's
   snapshot and at least :data:`MIN_UPLIFT_ARM` treated and control customers of an offer, uplift
   models are fitted on the campaign and, where one beats ranking by churn score on the Qini
   (out of fold), its estimate replaces the rate for that offer (``uplift x CLV - cost``);
3. :func:`models.targeting.plan_campaign` solves the knapsack and
   :func:`models.targeting.compare_allocations` puts the plan beside an even spend and a spend by
   churn score alone.

:func:`keep_plan` stores the plan with its summaries (:meth:`features.store.Store.write_plan`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Final

import numpy as np
import polars as pl

from features.store import PlanInfo, SnapshotNotFoundError, Store
from models.campaigns import measured_rates
from models.knapsack import Method
from models.offers import OffersFile, with_measured_rates
from models.targeting import (
    OfferValues,
    Plan,
    compare_allocations,
    offer_values,
    plan_campaign,
    targeting_customers,
)
from models.uplift import (
    TwoModelUplift,
    UpliftLearner,
    XLearnerUplift,
    best_ranking,
    campaign_training_frame,
    cross_fit,
    evaluate_ranking,
    uplift_frame,
)

__all__ = [
    "LEARNERS",
    "MIN_UPLIFT_ARM",
    "NoValuesError",
    "PlanRun",
    "keep_plan",
    "plan_from_store",
    "plan_values",
]

LEARNERS: Final[dict[str, Callable[[], UpliftLearner]]] = {
    "two_model": TwoModelUplift,
    "x_learner": XLearnerUplift,
}
"""The uplift learners a plan tries on each recorded offer."""

MIN_UPLIFT_ARM: Final = 200
"""Least treated and least control customers of an offer for an uplift model to be tried."""


class NoValuesError(LookupError):
    """The store has no value table to plan from."""


@dataclass(frozen=True)
class PlanRun:
    """A plan and what it was made from.

    Attributes
    ----------
    as_of : datetime.date
        The day of the value table.
    plan : models.targeting.Plan
        The plan.
    values : models.targeting.OfferValues
        Expected value of every offer to every customer.
    offers : models.offers.OffersFile
        The offers as used (with measured rates where a campaign measured them).
    comparison : polars.DataFrame
        :func:`models.targeting.compare_allocations`.
    notes : tuple of str
        What a reader should know (measured rates used, offers nobody can receive).
    uplift : dict or None
        The uplift model used, if any.
    """

    as_of: date
    plan: Plan
    values: OfferValues
    offers: OffersFile
    comparison: pl.DataFrame
    notes: tuple[str, ...] = field(default_factory=tuple)
    uplift: dict[str, Any] | None = None


def _latest(store: Store, as_of: date | None) -> date:
    days = store.list_values()
    if as_of is None:
        if not days:
            raise NoValuesError(
                f"the store ({store.value_dir}) holds no value table: run guanxi value first"
            )
        return days[-1]
    if as_of not in days:
        held = ", ".join(d.isoformat() for d in days[-5:]) or "none"
        raise NoValuesError(
            f"the store has no value table as of {as_of.isoformat()} (it holds: {held}): "
            f"run guanxi value --as-of {as_of.isoformat()} first"
        )
    return as_of


def _campaigns(store: Store, offers: OffersFile, values: pl.DataFrame) -> pl.DataFrame | None:
    """Return the recorded outcomes of this file's offers, segment and churn probability filled."""
    outcomes = store.read_campaigns()
    if outcomes is None:
        return None
    known = {o.name for o in offers.offers}
    outcomes = outcomes.filter(pl.col("offer").is_in(sorted(known)))
    context = values.select(
        pl.col("customer_id").cast(pl.String),
        pl.col("rfm_segment").alias("segment"),
        "churn_probability",
    )
    missing = [c for c in context.columns[1:] if c not in outcomes.columns]
    if missing:
        outcomes = outcomes.join(context.select("customer_id", *missing), on="customer_id")
    return outcomes


def _measured(offers: OffersFile, outcomes: pl.DataFrame | None) -> tuple[OffersFile, list[str]]:
    """Offers with the rates recorded campaigns measured, and notes saying which."""
    if outcomes is None:
        return offers, []
    if outcomes.is_empty():
        return offers, ["the recorded campaigns are of offers not in this offers file"]
    rates = measured_rates(outcomes, offers)
    if not rates:
        return offers, [
            "recorded campaigns too small to measure a rate (30 treated and 30 control)"
        ]
    notes = [
        f"{name}: measured rates for {len(by)} segment(s) from recorded campaigns"
        for name, by in sorted(rates.items())
    ]
    return with_measured_rates(offers, rates), notes


def _uplift(
    outcomes: pl.DataFrame | None, snapshot: pl.DataFrame | None, customers: pl.DataFrame
) -> tuple[pl.DataFrame | None, dict[str, Any], list[str]]:
    """Fit uplift per recorded offer; keep it where it beats the churn score on the Qini.

    The campaign's customers are described by the snapshot of the plan's day (the campaign is
    taken to have been planned on it). Each learner is judged on out-of-fold predictions
    (:func:`models.uplift.cross_fit`); the winner, refitted on every row, predicts the uplift of
    every customer of the plan.
    """
    if outcomes is None or outcomes.is_empty() or snapshot is None:
        return None, {}, []
    frames, chosen, notes = [], {}, []
    for offer in sorted(outcomes["offer"].unique().to_list()):
        rows = outcomes.filter(pl.col("offer") == offer)
        held_out = int(rows["control"].sum())
        if min(held_out, rows.height - held_out) < MIN_UPLIFT_ARM:
            notes.append(
                f"{offer}: fewer than {MIN_UPLIFT_ARM} treated or control customers, no uplift"
            )
            continue
        try:
            ids, x, t, y = campaign_training_frame(snapshot, rows, offer)
        except ValueError as error:  # none of its customers is in the snapshot
            notes.append(f"{offer}: no uplift, {error}")
            continue
        churn = ids["churn_probability"].fill_null(0.0).to_numpy()
        oof = {name: cross_fit(learner, x, t, y) for name, learner in LEARNERS.items()}
        table = evaluate_ranking(y, t, oof | {"churn_score": churn})
        best = best_ranking(table)
        figures = {name: round(float(table.loc[name, "qini"]), 4) for name in table.index}
        if best is None:
            notes.append(
                f"{offer}: uplift does not beat the churn score on the Qini ({figures}); "
                "the plan uses rates"
            )
            continue
        model = LEARNERS[best]().fit(x, t, y)
        lift = model.predict(uplift_frame(snapshot, customers.select("customer_id")))
        frames.append(
            customers.select("customer_id", offer=pl.lit(offer), uplift=pl.Series(lift)).filter(
                pl.Series(np.isfinite(lift))
            )
        )
        chosen[offer] = {"learner": best, "qini": figures, "rows": ids.height}
        notes.append(
            f"{offer}: uplift ({best}) beats the churn score on the Qini ({figures}); "
            "the plan uses it"
        )
    return (pl.concat(frames) if frames else None), chosen, notes


def plan_values(
    store: Store, offers: OffersFile, as_of: date | None = None, uplift: bool = True
) -> tuple[date, OfferValues, OffersFile, list[str], dict[str, Any]]:
    """Compute every offer's expected value to every customer from the store.

    Parameters
    ----------
    store : features.store.Store
        The store.
    offers : models.offers.OffersFile
        The offers.
    as_of : datetime.date, optional
        Day of the value table; the latest when omitted.
    uplift : bool, default True
        Fit uplift models on the recorded campaigns and use them where they beat the churn score.

    Returns
    -------
    tuple
        The day, the values, the offers as used, notes, and per offer the uplift model used.

    Raises
    ------
    NoValuesError
        If the store has no value table for the day.
    """
    day = _latest(store, as_of)
    table = store.read_values(day)
    assert table is not None
    try:
        snapshot: pl.DataFrame | None = store.read_snapshot(day)
    except SnapshotNotFoundError:
        snapshot = None
    notes = [] if snapshot is not None else [f"no snapshot of {day} in the store: no complaints"]
    outcomes = _campaigns(store, offers, table)
    used, measured = _measured(offers, outcomes)
    notes += measured
    customers = targeting_customers(table, snapshot)
    lift, chosen, said = _uplift(outcomes, snapshot, customers) if uplift else (None, {}, [])
    notes += said
    for offer in used.offers:
        if offer.category is not None:  # a cross-sell offer
            notes.append(
                f"{offer.name}: no cross-sell propensities for {offer.category!r} are read yet, "
                "so nobody is eligible"
            )
            customers = customers.with_columns(
                pl.lit(None, pl.Float64).alias(f"propensity_{offer.category}")
            )
    return day, offer_values(customers, used, uplift=lift), used, notes, chosen


def plan_from_store(
    store: Store,
    offers: OffersFile,
    budget: float,
    as_of: date | None = None,
    method: Method = "auto",
    uplift: bool = True,
) -> PlanRun:
    """Plan a campaign from the store's value table of a day.

    Parameters
    ----------
    store : features.store.Store
        The store.
    offers : models.offers.OffersFile
        The offers.
    budget : float
        The budget (>= 0).
    as_of : datetime.date, optional
        Day of the value table; the latest when omitted.
    method : {"auto", "exact", "lagrangian"}, default "auto"
        The knapsack's method.
    uplift : bool, default True
        Fit uplift on the recorded campaigns (see :func:`plan_values`).

    Returns
    -------
    PlanRun
        The plan, the values, the comparison and notes.

    Raises
    ------
    NoValuesError
        If the store has no value table for the day.
    ValueError
        If the budget is negative.
    """
    day, values, used, notes, chosen = plan_values(store, offers, as_of, uplift)
    for j, offer in enumerate(values.offers):
        if not np.isfinite(values.value[:, j]).any():
            notes.append(f"{offer.name}: no customer is eligible")
    plan = plan_campaign(values, used, budget, method=method)
    comparison = compare_allocations(values, used, plan)
    return PlanRun(day, plan, values, used, comparison, tuple(notes), chosen or None)


def keep_plan(store: Store, run: PlanRun) -> PlanInfo:
    """Store a plan's rows with its summaries and the offers it was made with.

    Parameters
    ----------
    store : features.store.Store
        The store.
    run : PlanRun
        The plan.

    Returns
    -------
    features.store.PlanInfo
        What was written.
    """
    plan = run.plan
    info = PlanInfo(
        as_of=run.as_of,
        rows=plan.rows.height,
        budget=plan.budget,
        investment=plan.investment,
        expected_value=plan.expected_value,
        gap=plan.gap,
        method=plan.method,
        reason=plan.reason,
        offers=run.offers.model_dump(mode="json"),
        summaries={
            "by_segment": plan.allocation.by_segment.to_dicts(),
            "by_offer": plan.allocation.by_offer.to_dicts(),
            "next_best_by_segment": plan.next_best.by_segment.to_dicts(),
            "next_best_by_offer": plan.next_best.by_offer.to_dicts(),
            "comparison": run.comparison.to_dicts(),
        },
        uplift=run.uplift,
        created=datetime.now(UTC).isoformat(),
        path=store.plan_path(run.as_of),
    )
    return store.write_plan(plan.rows, info)
