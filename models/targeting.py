"""Budgeted targeting: the expected value of each offer to each customer, the plan, segment ROI.

Everything here is pure (DataFrames and arrays in, DataFrames out); the CLI, the API and the pages
call it.

Customers
---------
The customers frame has one row per customer and the columns of :data:`CUSTOMER_INPUTS` an offers
file needs (a column only some offers read may be absent when no offer reads it), plus one
``propensity_{category}`` column per category a cross-sell offer sells (null where the customer
already owns the category).

Expected value of an offer to a customer
----------------------------------------
With ``r`` the customer's response rate (:meth:`models.offers.Response.rate`), ``c`` the cost per
contact and ``P(churn)`` the churn probability:

==================  ===========================================================
retention           ``P(churn) x r x CLV - c``
service_recovery    ``P(churn) x r x CLV - c`` (the customer is at risk *because* of an open
                    complaint; ``r`` is the share a quick resolution keeps, about 70% in the
                    service literature, far above a retention offer's)
win_back            ``r x CLV - c``
cross_sell          ``propensity x r x expected_margin - c`` (``r`` defaults to 1)
==================  ===========================================================

With an uplift estimate for a (customer, offer) pair (the ``uplift`` frame, e.g. from
:mod:`models.uplift`), the estimate replaces the whole probability factor: an uplift model
predicts the *incremental* probability of the outcome from contact, which is what
``P(churn) x r`` (retention) or ``propensity x r`` (cross-sell) stand for. So the value is
``uplift x CLV - c`` (``uplift x expected_margin - c`` for cross-sell), negative for the
customers whom contact pushes away. When the uplift frame also gives ``response_value``, what one
response is worth to that customer (the registered uplift model's margin of a response,
:class:`models.uplift.ResponseMargin`), that replaces the CLV: ``uplift x response_value - c``.
On the sample campaign the CLV valued a response badly (see :mod:`models.uplift`).

A customer receives an offer only if eligible (:class:`models.offers.Eligibility`) and if every
input its value needs is present.

The plan
--------
:func:`plan_campaign` solves the multiple-choice knapsack of :mod:`models.knapsack`: at most one
offer per customer, total cost within the budget, each channel's capacity, each offer's contact cap
and the campaign's contact cap respected. The plan's rows are :data:`PLAN_COLUMNS`; summaries per
segment and per offer give contacts, investment, expected return (the value before costs), expected
value (after costs), return per unit invested and ROI (``expected value / investment``). The "next
best use of the remaining budget" is the same table for what the budget left over (or, when it is
all spent, a further tenth of it) would buy among the customers not in the plan if the channel
capacities and contact caps did not bind: what extra capacity would be worth.
:attr:`Plan.next_limits` names the limits it goes past, which every output says beside it
(:func:`next_limits_note`). When it buys nothing, :attr:`Plan.next_reason` says why: typically
the budget was not the limit, and every customer with an offer worth its cost is in the plan
already.

A plan that contacts nobody is not an error: :attr:`Plan.reason` says why (nobody eligible, no
positive expected value, a budget below the cheapest worthwhile contact, no capacity).

Segment ROI
-----------
:func:`segment_roi` is the textbook table (per segment: customers, investment, expected return,
return per unit invested; and the total). :func:`compare_allocations` puts the optimiser's
allocation beside two simple ways of spending the same budget under the same capacities:
``even`` (an equal share of the budget per segment, customers in a seeded random order) and
``churn_score`` (customers by descending churn probability; left out when no customer has one,
as it would be the value table's order); both give each customer the offer with the largest
expected value for them, as a campaign manager without the optimiser would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import polars as pl

from features.contracts import MISSING, counted
from features.formatting import money_text
from models.knapsack import Method, Resource, Solution, solve
from models.offers import Offer, OffersFile

__all__ = [
    "BUDGET_TOO_LARGE",
    "CUSTOMER_INPUTS",
    "GROUP_NAMES",
    "MAX_BUDGET",
    "MISSING",
    "MONEY_COLUMNS",
    "NEXT_TRANCHE",
    "NO_BUDGET",
    "NO_CHURN_COMPARISON",
    "NO_GROUP_NAMES",
    "PLAN_COLUMNS",
    "PROPENSITY_PREFIX",
    "SUMMARY_COLUMNS",
    "Allocation",
    "OfferValues",
    "Plan",
    "compare_allocations",
    "in_cents",
    "next_limits_note",
    "offer_values",
    "plan_campaign",
    "plan_resources",
    "segment_roi",
    "summarise",
    "summary_table",
    "targeting_customers",
]

NO_CHURN_COMPARISON: Final = (
    "the same budget spent by churn score alone: not compared, as no customer has a churn "
    "probability"
)
"""Why :func:`compare_allocations` has no ``churn_score`` rows, as ``guanxi target`` prints it
and the plan page says it under its comparison (which showed two rows without a word why)."""

NO_GROUP_NAMES: Final = {"rfm_segment": "unsegmented", "value_tier": "untiered"}
"""How a person reads the group of the customers without an RFM segment or a value tier, on every
page and in every CLI table: the plan and campaign pages said "unsegmented" where the value page
said "none" (its key in URLs and the API, kept) and guanxi value printed "None"."""

CUSTOMER_INPUTS: Final[dict[str, str]] = {
    "customer_id": "customer identifier (required)",
    "segment": f"RFM segment (rfm_segment); null counts as '{NO_GROUP_NAMES['rfm_segment']}'",
    "value_tier": f"value tier by CLV; null counts as '{NO_GROUP_NAMES['value_tier']}'",
    "churn_probability": "calibrated churn probability (retention, service recovery)",
    "clv": "customer lifetime value (retention, win-back, service recovery)",
    "churn_population": "true when the customer is in the churn population (population: churn)",
    "lapsed": "true when the customer has lapsed (population: lapsed)",
    "unresolved_complaints": "open complaints (eligibility unresolved_complaint)",
}
"""Columns of the customers frame and what reads them."""

GROUP_NAMES: Final = {"rfm_segment": "RFM segment", "value_tier": "value tier"}
"""How a person reads the value table's groupings, in the order the CLI and the value page show
them: ``guanxi value`` titled a table "Equity by rfm segment" where the page said "RFM segment"."""

PROPENSITY_PREFIX: Final = "propensity_"
"""``propensity_{category}``: the cross-sell probability of a first purchase of the category."""

PLAN_COLUMNS: Final[tuple[str, ...]] = (
    "customer_id",
    "offer",
    "channel",
    "cost",
    "expected_value",
    "segment",
    "value_tier",
)
SUMMARY_COLUMNS: Final[tuple[str, ...]] = (
    "contacts",
    "investment",
    "expected_return",
    "expected_value",
    "return_per_unit",
    "roi",
)
NEXT_TRANCHE: Final = 0.1
"""Share of the budget the next-best table spends when the whole budget is used."""

MONEY_COLUMNS: Final = ("cost", "expected_value", "investment", "expected_return")
"""The money columns of the plan's rows, summaries and comparison, given rounded to cents by
``guanxi target --out`` and ``POST /v1/targeting`` (:func:`in_cents`); the store keeps them as
computed."""

NO_BUDGET: Final = (
    "buys nothing: the budget is what the campaign may spend, in money units, and must be above 0"
)
"""Why a budget of 0 or less is refused, after the amount (``guanxi target``, ``POST
/v1/targeting``): it contacts nobody, and kept it replaced the day's stored plan."""

MAX_BUDGET: Final = 1e13
"""The largest budget a plan takes, 10,000,000,000,000 money units: a float holds every cent of
an amount only up to 2**53 cents (about 9.0e13), and ``guanxi target --budget 1e30`` printed its
budget as 1,000,000,000,000,000,019,884,624,838,656.00, float noise no campaign means."""

BUDGET_TOO_LARGE: Final = (
    f"is more than a campaign can spend: a budget is at most {MAX_BUDGET:,.0f} money units "
    "(beyond, amounts lose their cents)"
)
"""Why a budget above :data:`MAX_BUDGET` is refused, after the amount (``guanxi target``,
``POST /v1/targeting``)."""

_NO_SEGMENT: Final = NO_GROUP_NAMES["rfm_segment"]
_NO_TIER: Final = NO_GROUP_NAMES["value_tier"]


@dataclass(frozen=True)
class OfferValues:
    """Expected value of every offer to every customer.

    Parameters
    ----------
    customers : polars.DataFrame
        ``customer_id``, ``segment``, ``value_tier``, ``churn_probability`` (null if absent), in
        the input's row order.
    offers : tuple of Offer
        The offers, in file order (the columns of ``value``).
    value : numpy.ndarray
        Shape ``(n, m)``: expected value after cost; NaN where the customer may not receive the
        offer or an input is missing.
    cost : numpy.ndarray
        Shape ``(m,)``: cost per contact.
    """

    customers: pl.DataFrame
    offers: tuple[Offer, ...]
    value: np.ndarray
    cost: np.ndarray

    def long(self) -> pl.DataFrame:
        """Return one row per eligible (customer, offer) pair with its expected value.

        Returns
        -------
        polars.DataFrame
            ``customer_id``, ``offer``, ``channel``, ``cost``, ``expected_value``, ``segment``,
            ``value_tier``.
        """
        rows, cols = np.nonzero(np.isfinite(self.value))
        return _rows(self, rows, cols)


@dataclass(frozen=True)
class Allocation:
    """Who gets which offer, and the summaries of it.

    Parameters
    ----------
    rows : polars.DataFrame
        :data:`PLAN_COLUMNS`, by descending expected value.
    by_segment : polars.DataFrame
        ``segment`` and :data:`SUMMARY_COLUMNS`.
    by_offer : polars.DataFrame
        ``offer``, ``channel`` and :data:`SUMMARY_COLUMNS`.
    budget : float
        The budget this allocation could spend.
    """

    rows: pl.DataFrame
    by_segment: pl.DataFrame
    by_offer: pl.DataFrame
    budget: float


@dataclass(frozen=True)
class Plan:
    """A budgeted plan.

    Parameters
    ----------
    allocation : Allocation
        The plan's rows and summaries.
    next_best : Allocation
        The next best use of the remaining budget (see the module docstring).
    budget : float
        The budget.
    investment : float
        What the plan spends.
    expected_value : float
        Its expected value after costs.
    bound : float
        Upper bound on the best expected value any plan could reach.
    gap : float
        ``(bound - expected_value) / bound``.
    method : str
        ``exact`` or ``lagrangian``.
    reason : str or None
        Why the plan is empty; None when it contacts someone.
    shadow_prices : dict of str to float
        Expected value of one more unit of each resource (``budget``, ``channel:<name>``,
        ``offer:<name>``, ``contacts``) at the margin.
    usage : dict of str to float
        How much of each resource the plan uses.
    next_reason : str or None
        Why the next best use buys nothing (every offer worth its cost is in the plan already,
        or its budget is below the cheapest one left); None when it buys something.
    next_limits : tuple of str
        The channel capacities and contact caps the next best use goes past (with the plan's
        contacts it uses more of them than they hold), as :func:`next_limits_note` names them:
        it lifts them (what more capacity would be worth), so it is not what the plan could
        still buy under them.
    """

    allocation: Allocation
    next_best: Allocation
    budget: float
    investment: float
    expected_value: float
    bound: float
    gap: float
    method: str
    reason: str | None
    shadow_prices: dict[str, float] = field(default_factory=dict)
    usage: dict[str, float] = field(default_factory=dict)
    next_reason: str | None = None
    next_limits: tuple[str, ...] = ()

    @property
    def rows(self) -> pl.DataFrame:
        """The plan's rows (:data:`PLAN_COLUMNS`)."""
        return self.allocation.rows


def _column(customers: pl.DataFrame, name: str, offer: Offer, why: str) -> pl.Series:
    if name not in customers.columns:
        raise ValueError(
            f"offer {offer.name!r} needs the customers column {name!r} ({why}); it is missing"
        )
    return customers[name]


def _rates(offer: Offer, segment: pl.Series, tier: pl.Series) -> np.ndarray:
    """Each customer's response rate: measured, segment, value tier, default."""
    rates = offer.rates
    by_segment = rates.segments | rates.measured
    seg = segment.replace_strict(by_segment, default=None, return_dtype=pl.Float64)
    tie = tier.replace_strict(rates.value_tiers, default=None, return_dtype=pl.Float64)
    return seg.fill_null(tie).fill_null(rates.default).to_numpy()


def _floats(series: pl.Series) -> np.ndarray:
    return series.cast(pl.Float64).to_numpy().astype(np.float64, copy=True)


def _eligible(customers: pl.DataFrame, offer: Offer) -> np.ndarray:
    rule = offer.eligibility
    ok = np.ones(customers.height, dtype=bool)
    if rule.population == "churn":
        col = _column(customers, "churn_population", offer, "population: churn")
        ok &= col.fill_null(False).cast(pl.Boolean).to_numpy()
    elif rule.population == "lapsed":
        col = _column(customers, "lapsed", offer, "population: lapsed")
        ok &= col.fill_null(False).cast(pl.Boolean).to_numpy()
    if rule.unresolved_complaint:
        col = _column(customers, "unresolved_complaints", offer, "unresolved_complaint")
        ok &= _floats(col.fill_null(0)) > 0
    if rule.min_churn_probability is not None:
        col = _column(customers, "churn_probability", offer, "min_churn_probability")
        ok &= _floats(col.fill_null(-1.0)) >= rule.min_churn_probability
    for name, allowed in (("segment", rule.segments), ("value_tier", rule.value_tiers)):
        if allowed is not None:
            col = _column(customers, name, offer, f"eligibility {name}s")
            ok &= col.cast(pl.String).is_in(allowed).fill_null(False).to_numpy()
    return ok


def _uplift_matrix(
    customers: pl.DataFrame, offers: tuple[Offer, ...], uplift: pl.DataFrame | None
) -> tuple[np.ndarray, np.ndarray]:
    """Shape ``(n, m)`` twice: the uplift and the response value per pair, NaN where none."""
    out = np.full((customers.height, len(offers)), np.nan)
    worth = out.copy()
    if uplift is None:
        return out, worth
    missing = {"customer_id", "offer", "uplift"} - set(uplift.columns)
    if missing:
        raise ValueError(
            f"the uplift frame lacks {counted(len(missing), 'columns')}: "
            f"{', '.join(sorted(missing))}"
        )
    names = [o.name for o in offers]
    unknown = set(uplift["offer"].unique().to_list()) - set(names)
    if unknown:
        raise ValueError(f"the uplift frame names offer {sorted(unknown)[0]!r}, not in the file")
    index = customers.select("customer_id").with_row_index("_row")
    joined = uplift.join(index, on="customer_id", how="inner").with_columns(
        pl.col("offer").replace_strict(names, list(range(len(names)))).alias("_col")
    )
    at = joined["_row"].to_numpy(), joined["_col"].to_numpy()
    out[at] = _floats(joined["uplift"])
    if "response_value" in joined.columns:
        worth[at] = _floats(joined["response_value"])
    return out, worth


def offer_values(
    customers: pl.DataFrame, offers: OffersFile, uplift: pl.DataFrame | None = None
) -> OfferValues:
    """Compute the expected value of every offer to every customer.

    Parameters
    ----------
    customers : polars.DataFrame
        One row per customer (see :data:`CUSTOMER_INPUTS`).
    offers : OffersFile
        The offers.
    uplift : polars.DataFrame, optional
        ``customer_id``, ``offer``, ``uplift``: estimated incremental probability of the outcome
        from contact; it replaces the rate-based probability where given. An optional
        ``response_value`` column (what one response is worth, e.g.
        :meth:`models.uplift.UpliftBundle.predict_margin`) replaces the CLV (or the category's
        expected margin) of those pairs.

    Returns
    -------
    OfferValues
        The values (NaN where not eligible).

    Raises
    ------
    ValueError
        If ``customer_id`` is missing or repeated, or an offer needs a column that is missing.
    """
    if "customer_id" not in customers.columns:
        raise ValueError("the customers frame has no 'customer_id' column")
    if customers["customer_id"].is_duplicated().any():
        dup = customers.filter(pl.col("customer_id").is_duplicated())["customer_id"][0]
        raise ValueError(f"customer {dup!r} appears more than once in the customers frame")
    n = customers.height
    segment = (
        customers["segment"].cast(pl.String)
        if "segment" in customers.columns
        else pl.Series("segment", [None] * n, pl.String)
    )
    tier = (
        customers["value_tier"].cast(pl.String)
        if "value_tier" in customers.columns
        else pl.Series("value_tier", [None] * n, pl.String)
    )
    offer_list = tuple(offers.offers)
    lift, lift_worth = _uplift_matrix(customers, offer_list, uplift)
    value = np.full((n, len(offer_list)), np.nan)
    for j, offer in enumerate(offer_list):
        has_lift = np.isfinite(lift[:, j])
        if offer.kind == "cross_sell":
            assert offer.category is not None and offer.expected_margin is not None
            worth = np.full(n, offer.expected_margin)
            column = f"{PROPENSITY_PREFIX}{offer.category}"
            base = _floats(_column(customers, column, offer, "cross-sell propensity"))
        else:
            worth = _floats(_column(customers, "clv", offer, "customer lifetime value"))
            if offer.kind == "win_back" or has_lift.all():
                base = np.ones(n)
            else:
                base = _floats(_column(customers, "churn_probability", offer, "churn probability"))
        probability = np.where(has_lift, lift[:, j], base * _rates(offer, segment, tier))
        worth = np.where(has_lift & np.isfinite(lift_worth[:, j]), lift_worth[:, j], worth)
        v = probability * worth - offer.cost
        eligible = _eligible(customers, offer)
        if offer.kind == "cross_sell":  # a null propensity: the customer owns the category
            eligible &= np.isfinite(base)
        value[:, j] = np.where(eligible, v, np.nan)
    frame = pl.DataFrame(
        {
            "customer_id": customers["customer_id"].cast(pl.String),
            "segment": segment.fill_null(_NO_SEGMENT),
            "value_tier": tier.fill_null(_NO_TIER),
            "churn_probability": (
                customers["churn_probability"].cast(pl.Float64)
                if "churn_probability" in customers.columns
                else pl.Series([None] * n, dtype=pl.Float64)
            ),
        }
    )
    return OfferValues(
        customers=frame,
        offers=offer_list,
        value=value,
        cost=np.array([o.cost for o in offer_list], dtype=np.float64),
    )


def _rows(values: OfferValues, rows: np.ndarray, cols: np.ndarray) -> pl.DataFrame:
    offers = values.offers
    frame = values.customers[rows].select(
        "customer_id",
        pl.Series("offer", [offers[j].name for j in cols], pl.String),
        pl.Series("channel", [offers[j].channel for j in cols], pl.String),
        pl.Series("cost", values.cost[cols], pl.Float64),
        pl.Series("expected_value", values.value[rows, cols], pl.Float64),
        "segment",
        "value_tier",
    )
    return frame.sort(["expected_value", "customer_id"], descending=[True, False])


def summarise(rows: pl.DataFrame, by: str | list[str]) -> pl.DataFrame:
    """Sum plan rows into contacts, investment, expected return and ROI per group.

    Parameters
    ----------
    rows : polars.DataFrame
        Plan rows (:data:`PLAN_COLUMNS`).
    by : str or list of str
        Grouping column(s), e.g. ``"segment"`` or ``["offer", "channel"]``.

    Returns
    -------
    polars.DataFrame
        The group columns, then :data:`SUMMARY_COLUMNS`, by descending expected value.
        ``expected_return`` is the value before costs, ``return_per_unit`` is expected return per
        unit invested and ``roi`` is expected value per unit invested (null when nothing is spent).
    """
    keys = [by] if isinstance(by, str) else list(by)
    return (
        rows.group_by(keys)
        .agg(
            contacts=pl.len(),
            investment=pl.col("cost").sum(),
            expected_value=pl.col("expected_value").sum(),
        )
        .with_columns(
            pl.col("contacts").cast(pl.Int64),
            expected_return=pl.col("expected_value") + pl.col("investment"),
        )
        .with_columns(
            return_per_unit=pl.when(pl.col("investment") > 0).then(
                pl.col("expected_return") / pl.col("investment")
            ),
            roi=pl.when(pl.col("investment") > 0).then(
                pl.col("expected_value") / pl.col("investment")
            ),
        )
        .select(*keys, *SUMMARY_COLUMNS)
        .sort(["expected_value", *keys], descending=[True, *([False] * len(keys))])
    )


def _allocation(values: OfferValues, choice: np.ndarray, budget: float) -> Allocation:
    rows = np.flatnonzero(choice >= 0)
    frame = _rows(values, rows, choice[rows])
    return Allocation(
        rows=frame,
        by_segment=summarise(frame, "segment"),
        by_offer=summarise(frame, ["offer", "channel"]),
        budget=budget,
    )


def plan_resources(values: OfferValues, offers: OffersFile, budget: float) -> list[Resource]:
    """Return the knapsack's shared limits: budget, channel capacities, contact caps.

    Parameters
    ----------
    values : OfferValues
        The values (their offers fix the columns).
    offers : OffersFile
        Channel capacities and contact caps.
    budget : float
        The budget.

    Returns
    -------
    list of Resource
        ``budget``, then ``channel:<name>``, ``offer:<name>`` and ``contacts`` where limited.
    """
    m = len(values.offers)
    out = [Resource("budget", budget, values.cost)]
    for name, channel in offers.channels.items():
        if channel.capacity is not None:
            usage = np.array([float(o.channel == name) for o in values.offers])
            out.append(Resource(f"channel:{name}", float(channel.capacity), usage))
    for j, offer in enumerate(values.offers):
        if offer.max_contacts is not None:
            out.append(Resource(f"offer:{offer.name}", float(offer.max_contacts), np.eye(m)[j]))
    if offers.max_contacts is not None:
        out.append(Resource("contacts", float(offers.max_contacts), np.ones(m)))
    return out


def _empty_reason(values: OfferValues, resources: list[Resource], budget: float) -> str:
    eligible = np.isfinite(values.value)
    if not eligible.any():
        counts = ", ".join(f"{o.name} 0" for o in values.offers)
        return (
            f"no customer is eligible for any offer (eligible customers per offer: {counts}; "
            f"{counted(values.customers.height, 'customers')} given)"
        )
    positive = eligible & (np.nan_to_num(values.value, nan=-np.inf) > 0)
    if not positive.any():
        best = float(np.nanmax(values.value))
        return (
            "no eligible customer has a positive expected value for any offer "
            f"(the best is {best:.2f}): the offers cost more than they are expected to return"
        )
    cheapest = float(values.cost[positive.any(axis=0)].min())
    if budget < cheapest:
        return (
            f"the budget of {money_text(budget)} buys nothing: the cheapest contact with a "
            f"positive expected value costs {money_text(cheapest)}"
        )
    closed = [
        r.name
        for r in resources
        if r.name != "budget" and r.capacity < 1 and (r.usage[positive.any(axis=0)] > 0).any()
    ]
    return "the capacities and contact caps allow no worthwhile contact" + (
        f" ({', '.join(closed)} at 0)" if closed else ""
    )


def plan_campaign(
    values: OfferValues,
    offers: OffersFile,
    budget: float,
    method: Method = "auto",
    next_budget: float | None = None,
) -> Plan:
    """Choose at most one offer per customer to maximise expected value within the budget.

    Parameters
    ----------
    values : OfferValues
        From :func:`offer_values`.
    offers : OffersFile
        The offers file (channel capacities and contact caps).
    budget : float
        Total the campaign may spend (>= 0).
    method : {"auto", "exact", "lagrangian"}, default "auto"
        How to solve the knapsack (:func:`models.knapsack.solve`).
    next_budget : float, optional
        Budget of the next-best table; defaults to the budget left over, or to
        :data:`NEXT_TRANCHE` of the budget when nothing worthwhile is left to buy with it.

    Returns
    -------
    Plan
        The plan, its summaries, the next best use of the remaining budget, the optimality gap
        and, when it contacts nobody, the reason.

    Raises
    ------
    ValueError
        If the budget is negative or not a number.
    """
    if not budget >= 0 or not np.isfinite(budget):
        raise ValueError(f"budget must be a non-negative number, got {budget}")
    resources = plan_resources(values, offers, budget)
    solution: Solution = solve(values.value, resources, method=method)
    allocation = _allocation(values, solution.choice, budget)
    investment = float(allocation.rows["cost"].sum())
    reason = None if allocation.rows.height else _empty_reason(values, resources, budget)

    left = np.where(solution.choice[:, None] >= 0, np.nan, values.value)
    positive = np.nan_to_num(left, nan=-np.inf) > 0
    remaining = budget - investment
    if next_budget is None:
        fits = positive.any() and remaining >= float(values.cost[positive.any(axis=0)].min())
        next_budget = remaining if fits else NEXT_TRANCHE * budget
    following = solve(left, [Resource("budget", next_budget, values.cost)], method=method)
    next_best = _allocation(values, following.choice, next_budget)
    return Plan(
        allocation=allocation,
        next_best=next_best,
        budget=budget,
        investment=investment,
        expected_value=solution.objective,
        bound=solution.bound,
        gap=solution.gap,
        method=solution.method,
        reason=reason,
        shadow_prices=solution.shadow_prices,
        usage=solution.usage,
        next_reason=None
        if next_best.rows.height
        else _next_reason(values, positive, remaining, next_budget),
        next_limits=_lifted(resources, solution.usage, following.choice),
    )


def _lifted(
    resources: list[Resource], planned: Mapping[str, float], following: np.ndarray
) -> tuple[str, ...]:
    """Name the capacities and contact caps the next best use goes past, the plan's usage with it.

    ``planned`` is the plan's usage per limit (:attr:`models.knapsack.Solution.usage`, which
    :meth:`models.knapsack.Resource.used` computed), ``following`` the next best use's choice.

    The next best use is bought with the budget alone: a limit it would not exceed (one the plan
    leaves room in, or one no offer it buys uses) is not lifted, and not named.
    """
    names = []
    for resource in resources[1:]:  # the budget first (plan_resources)
        if planned[resource.name] + resource.used(following) <= resource.capacity:
            continue
        kind, _, name = resource.name.partition(":")
        limit = f"{resource.capacity:,.0f}"
        names.append(
            f"the {name} channel's capacity ({limit})"
            if kind == "channel"
            else f"the contact cap of offer {name!r} ({limit})"
            if kind == "offer"
            else f"the campaign's contact cap ({limit})"
        )
    return tuple(names)


def next_limits_note(limits: Sequence[str]) -> str | None:
    """Say that the next best use lifts the limits it goes past, if it goes past any.

    Parameters
    ----------
    limits : sequence of str
        :attr:`Plan.next_limits`.

    Returns
    -------
    str or None
        E.g. ``"the next best use goes past the campaign's contact cap (10): it is what its
        budget would buy were that limit lifted (what more capacity would be worth), not what
        the plan can still buy"``; None when it goes past none. The plan's outputs headed it
        "the next best use of the remaining budget" alone, so a plan held by a cap of 0
        contacts showed 739 contacts beside "contacts at 0" (qa45 #2).
    """
    if not limits:
        return None
    one = len(limits) == 1
    past = ", ".join(limits[:-1]) + f" and {limits[-1]}" if not one else limits[0]
    return (
        f"the next best use goes past {past}: it is what its budget would buy were "
        f"{'that limit' if one else 'those limits'} lifted (what more capacity would be worth), "
        "not what the plan can still buy"
    )


def _next_reason(
    values: OfferValues, positive: np.ndarray, remaining: float, next_budget: float
) -> str:
    """Say why the next best use buys nothing: nothing worth its cost is left, or it is dearer."""
    left = f"the {money_text(remaining)} left over" if remaining > 0 else "a further budget"
    if not positive.any():
        return (
            "every customer with an offer worth its cost is in the plan already: "
            f"{left} would buy nothing worthwhile"
        )
    cheapest = float(values.cost[positive.any(axis=0)].min())
    customers = int(positive.any(axis=1).sum())
    return (
        f"its budget of {money_text(next_budget)} buys none of the offers worth their cost left to "
        f"{counted(customers, 'customers')}: the cheapest costs {money_text(cheapest)}"
    )


def segment_roi(rows: pl.DataFrame) -> pl.DataFrame:
    """Return the textbook segment ROI table of an allocation.

    Parameters
    ----------
    rows : polars.DataFrame
        Plan rows (:data:`PLAN_COLUMNS`).

    Returns
    -------
    polars.DataFrame
        ``segment``, ``customers``, ``investment``, ``expected_return``, ``return_per_unit``, one
        row per segment by descending return per unit, then a ``total`` row.
    """
    per = (
        summarise(rows, "segment")
        .select(
            "segment",
            customers=pl.col("contacts"),
            investment="investment",
            expected_return="expected_return",
        )
        .with_columns(
            return_per_unit=pl.when(pl.col("investment") > 0).then(
                pl.col("expected_return") / pl.col("investment")
            )
        )
        .sort(["return_per_unit", "segment"], descending=[True, False], nulls_last=True)
    )
    total = per.select(
        pl.lit("total").alias("segment"),
        pl.col("customers").sum(),
        pl.col("investment").sum(),
        pl.col("expected_return").sum(),
    ).with_columns(
        return_per_unit=pl.when(pl.col("investment") > 0).then(
            pl.col("expected_return") / pl.col("investment")
        )
    )
    return pl.concat([per, total.cast(per.schema)])


def _greedy(
    values: OfferValues,
    order: np.ndarray,
    resources: list[Resource],
    group_budget: Mapping[str, float] | None = None,
) -> np.ndarray:
    """Contact customers in ``order`` with their best offer while it fits."""
    n, m = values.value.shape
    best = np.argmax(np.nan_to_num(values.value, nan=-np.inf), axis=1)
    has = np.isfinite(values.value).any(axis=1)
    usage = np.stack([np.broadcast_to(r.usage, (m,)) for r in resources])  # (K, m)
    left = np.array([r.capacity for r in resources], dtype=np.float64)
    segments = values.customers["segment"].to_list()
    spend = dict(group_budget) if group_budget is not None else None
    cost = values.cost
    choice = np.full(n, -1, dtype=np.int64)
    for i in order.tolist():
        if not has[i]:
            continue
        j = int(best[i])
        need = usage[:, j]
        if (need > left + 1e-9).any():
            continue
        if spend is not None:
            if cost[j] > spend[segments[i]] + 1e-9:
                continue
            spend[segments[i]] -= cost[j]
        left -= need
        choice[i] = j
    return choice


def compare_allocations(
    values: OfferValues, offers: OffersFile, plan: Plan, seed: int = 0
) -> pl.DataFrame:
    """Compare the plan's segment ROI with spending the same budget evenly or by churn score.

    Parameters
    ----------
    values : OfferValues
        The values the plan was made from.
    offers : OffersFile
        The offers file (capacities and caps apply to every allocation).
    plan : Plan
        The optimiser's plan.
    seed : int, default 0
        Seed of the random customer order within segments for ``even``.

    Returns
    -------
    polars.DataFrame
        ``allocation`` (``optimiser``, ``even``, ``churn_score``) then the columns of
        :func:`segment_roi`, each allocation's segments followed by its total. Without a churn
        probability for any customer there is no ``churn_score``: it was the customers in the
        value table's order, printed and shown as a spend "by churn score alone".
    """
    resources = plan_resources(values, offers, plan.budget)
    n = values.value.shape[0]
    eligible = np.isfinite(values.value).any(axis=1)
    segments = sorted(set(values.customers["segment"].filter(pl.Series(eligible)).to_list()))
    share = plan.budget / len(segments) if segments else 0.0
    even = _greedy(
        values,
        np.random.default_rng(seed).permutation(n),
        resources,
        {s: share for s in values.customers["segment"].unique().to_list()},
    )
    allocations = [("optimiser", plan.rows), ("even", _allocation(values, even, plan.budget).rows)]
    if values.customers["churn_probability"].is_not_null().any():
        churn = values.customers["churn_probability"].fill_null(-1.0).to_numpy()
        by_churn = _greedy(values, np.argsort(-churn, kind="stable"), resources)
        allocations.append(("churn_score", _allocation(values, by_churn, plan.budget).rows))
    parts = []
    for name, rows in allocations:
        parts.append(segment_roi(rows).select(pl.lit(name).alias("allocation"), pl.all()))
    return pl.concat(parts)


def targeting_customers(
    values: pl.DataFrame,
    snapshot: pl.DataFrame | None = None,
    propensities: Mapping[str, pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """Build the customers frame of :func:`offer_values` from a value table and a snapshot.

    Parameters
    ----------
    values : polars.DataFrame
        A customer value table (:func:`models.clv.customers.value_table`): ``customer_id``,
        ``rfm_segment``, ``value_tier``, ``churn_probability``, ``churn_status``, ``clv``; one
        row a customer (:func:`models.planning.plan_values` refuses a table that is not).
    snapshot : polars.DataFrame, optional
        The feature snapshot of the same day: ``unresolved_complaints`` and, for customers
        without a churn status, ``recency_days`` (lapsed after 365 days without an order).
    propensities : mapping of str to polars.DataFrame, optional
        Per product category, ``customer_id`` and ``score`` (the cross-sell probability); missing
        categories leave their cross-sell offers without eligible customers.

    Returns
    -------
    polars.DataFrame
        :data:`CUSTOMER_INPUTS` columns, one row per customer of the value table.
    """
    status = pl.col("churn_status") if "churn_status" in values.columns else pl.lit(None)
    frame = values.select(
        pl.col("customer_id").cast(pl.String),
        segment=pl.col("rfm_segment").cast(pl.String),
        value_tier=pl.col("value_tier").cast(pl.String),
        churn_probability=pl.col("churn_probability").cast(pl.Float64),
        clv=pl.col("clv").cast(pl.Float64),
        _status=status.cast(pl.String),
    )
    if snapshot is not None:
        extra = [c for c in ("unresolved_complaints", "recency_days") if c in snapshot.columns]
        frame = frame.join(
            snapshot.select(pl.col("customer_id").cast(pl.String), *extra),
            on="customer_id",
            how="left",
        )
    recency = pl.col("recency_days") if "recency_days" in frame.columns else pl.lit(None)
    frame = frame.with_columns(
        churn_population=pl.col("_status") == "eligible",
        lapsed=pl.when(pl.col("_status").is_not_null())
        .then(pl.col("_status") == "lapsed")
        .otherwise(recency >= 365)
        .fill_null(False),
    ).drop("_status", "recency_days", strict=False)
    if "unresolved_complaints" in frame.columns:
        frame = frame.with_columns(pl.col("unresolved_complaints").fill_null(0))
    for category, scores in (propensities or {}).items():
        frame = frame.join(
            scores.select(
                pl.col("customer_id").cast(pl.String),
                pl.col("score").cast(pl.Float64).alias(f"{PROPENSITY_PREFIX}{category}"),
            ),
            on="customer_id",
            how="left",
        )
    return frame


def in_cents(frame: pl.DataFrame) -> pl.DataFrame:
    """Round the money columns a frame has to cents; the other columns are left as they are.

    Parameters
    ----------
    frame : polars.DataFrame
        Plan rows, a summary or a comparison.

    Returns
    -------
    polars.DataFrame
        ``frame`` with its :data:`MONEY_COLUMNS` rounded to 2 decimals (ratios as computed).
    """
    return frame.with_columns(
        pl.col(name).round(2) for name in MONEY_COLUMNS if name in frame.columns
    )


def summary_table(plan: Plan) -> pl.DataFrame:
    """Stack a plan's summaries into one table for a file or a database.

    Parameters
    ----------
    plan : Plan
        The plan.

    Returns
    -------
    polars.DataFrame
        ``table`` (``segment``, ``offer``, ``next_best_segment``, ``next_best_offer``,
        ``next_best_limit``), ``group`` (the segment or offer), ``channel`` (offers only), then
        :data:`SUMMARY_COLUMNS`. A ``next_best_limit`` row names in ``group`` a capacity or
        contact cap the next best use goes past (:attr:`Plan.next_limits`), its figures empty:
        the file kept the next best use's rows without saying they were bought with those
        limits lifted (review45 L5).
    """
    parts = []
    for prefix, allocation in (("", plan.allocation), ("next_best_", plan.next_best)):
        parts.append(
            allocation.by_segment.select(
                pl.lit(f"{prefix}segment").alias("table"),
                pl.col("segment").alias("group"),
                pl.lit(None, pl.String).alias("channel"),
                *SUMMARY_COLUMNS,
            )
        )
        parts.append(
            allocation.by_offer.select(
                pl.lit(f"{prefix}offer").alias("table"),
                pl.col("offer").alias("group"),
                "channel",
                *SUMMARY_COLUMNS,
            )
        )
    schema = parts[0].schema
    limits = pl.DataFrame({"group": list(plan.next_limits)}, schema={"group": pl.String})
    parts.append(
        limits.select(
            pl.lit("next_best_limit").alias("table"),
            "group",
            *(pl.lit(None).alias(name) for name in ("channel", *SUMMARY_COLUMNS)),
        )
    )
    return pl.concat([p.cast(schema) for p in parts])
