"""A campaign plan from what the store holds: the value table, the snapshot, recorded campaigns.

``guanxi target`` and ``POST /v1/targeting`` both call :func:`plan_from_store`, so the command
line and the API plan the same way:

1. the value table of the day (``guanxi value``) gives each customer's RFM segment, value tier,
   churn probability, churn population and CLV; the snapshot of the day, when the store has it,
   adds open complaints and recency (:func:`models.targeting.targeting_customers`);
2. recorded campaigns (``guanxi campaign record``) replace the offers' rates by the rates they
   measured per segment (:func:`models.campaigns.measured_rates`); outcomes without a
   ``segment`` or ``churn_probability`` column take them from the value table;
3. :func:`models.targeting.plan_campaign` solves the knapsack and
   :func:`models.targeting.compare_allocations` puts the plan beside an even spend and a spend by
   churn score alone.

:func:`keep_plan` stores the plan with its summaries (:meth:`features.store.Store.write_plan`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

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

__all__ = ["NoValuesError", "PlanRun", "keep_plan", "plan_from_store", "plan_values"]


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


def _measured(
    store: Store, offers: OffersFile, values: pl.DataFrame
) -> tuple[OffersFile, list[str]]:
    """Offers with the rates recorded campaigns measured, and notes saying which."""
    outcomes = store.read_campaigns()
    if outcomes is None:
        return offers, []
    known = {o.name for o in offers.offers}
    outcomes = outcomes.filter(pl.col("offer").is_in(sorted(known)))
    if outcomes.is_empty():
        return offers, ["the recorded campaigns are of offers not in this offers file"]
    context = values.select(
        pl.col("customer_id").cast(pl.String),
        pl.col("rfm_segment").alias("segment"),
        "churn_probability",
    )
    missing = [c for c in context.columns[1:] if c not in outcomes.columns]
    if missing:
        outcomes = outcomes.join(context.select("customer_id", *missing), on="customer_id")
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


def plan_values(
    store: Store, offers: OffersFile, as_of: date | None = None
) -> tuple[date, OfferValues, OffersFile, list[str]]:
    """Compute every offer's expected value to every customer from the store.

    Parameters
    ----------
    store : features.store.Store
        The store.
    offers : models.offers.OffersFile
        The offers.
    as_of : datetime.date, optional
        Day of the value table; the latest when omitted.

    Returns
    -------
    tuple
        The day, the values, the offers as used, and notes.

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
    used, measured = _measured(store, offers, table)
    notes += measured
    customers = targeting_customers(table, snapshot)
    for offer in used.offers:
        if offer.category is not None:  # a cross-sell offer
            notes.append(
                f"{offer.name}: no cross-sell propensities for {offer.category!r} are read yet, "
                "so nobody is eligible"
            )
            customers = customers.with_columns(
                pl.lit(None, pl.Float64).alias(f"propensity_{offer.category}")
            )
    return day, offer_values(customers, used), used, notes


def plan_from_store(
    store: Store,
    offers: OffersFile,
    budget: float,
    as_of: date | None = None,
    method: Method = "auto",
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
    day, values, used, notes = plan_values(store, offers, as_of)
    for j, offer in enumerate(values.offers):
        if not np.isfinite(values.value[:, j]).any():
            notes.append(f"{offer.name}: no customer is eligible")
    plan = plan_campaign(values, used, budget, method=method)
    comparison = compare_allocations(values, used, plan)
    return PlanRun(day, plan, values, used, comparison, tuple(notes))


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
