"""A campaign plan from what the store holds: the value table, the snapshot, recorded campaigns.

``guanxi target`` and ``POST /v1/targeting`` both call :func:`plan_from_store`, so the command
line and the API plan the same way:

1. the value table of the day (``guanxi value``) gives each customer's RFM segment, value tier,
   churn probability, churn population and CLV; the snapshot of the day, when the store has it,
   adds open complaints and recency (:func:`models.targeting.targeting_customers`);
2. recorded campaigns (``guanxi campaign record``) replace the offers' rates by the rates they
   measured per segment (:func:`models.campaigns.measured_rates`); outcomes without a
   ``segment`` or ``churn_probability`` column take them from the value table; an offer whose
   uplift model ``guanxi campaign uplift`` registered (:func:`fit_campaign_uplift`,
   :func:`models.registry.register_uplift`) is valued by it, with the day's snapshot, where it
   beat ranking by churn score on the held-out Qini (``uplift x margin of a response - cost``);
   the notes say which offers and why the others kept the rates;
3. cross-sell offers take the propensity of the cross-sell champion from its score table of the
   day (the promoted model, or the affinity rule's rule-backed version when the model does not
   beat the rule, see :mod:`pipelines.promote`), or reach nobody, with the reason in the notes;
4. :func:`models.targeting.plan_campaign` solves the knapsack and
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

from features.contracts import counted, quoted_near
from features.snapshot import model_input_columns
from features.store import PlanInfo, SnapshotNotFoundError, Store, vouched_for
from models.campaigns import (
    BASE_PROBABILITY,
    MIN_MEASURED_CUSTOMERS,
    NO_CAMPAIGN,
    NO_SEGMENT,
    fill_from_values,
    later_note,
    measured_rates,
    not_in_values,
    pooled_campaigns,
)
from models.customer_rows import (
    RepeatedCustomersError,
    refuse_repeated_customers,
    repeated_customers,
)
from models.knapsack import DEFAULT_EXACT_LIMIT, Method
from models.offers import Offer, OffersFile, with_measured_rates
from models.registry import (
    CHAMPION,
    LoadedUplift,
    ModelNotFoundError,
    get_version,
    is_rule_backed,
    load_uplift,
)
from models.specs.cross_sell import SPEC as CROSS_SELL_SPEC
from models.targeting import (
    PROPENSITY_PREFIX,
    OfferValues,
    Plan,
    compare_allocations,
    offer_values,
    plan_campaign,
    targeting_customers,
)
from models.uplift import UpliftBundle, campaign_training_frame, fit_uplift, uplift_frame

__all__ = [
    "CROSS_SELL",
    "MIN_UPLIFT_ARM",
    "NoValuesError",
    "PlanRun",
    "fit_campaign_uplift",
    "keep_plan",
    "method_note",
    "plan_from_store",
    "plan_values",
]

CROSS_SELL: Final = CROSS_SELL_SPEC.name
"""The task whose promoted model gives the cross-sell offers' propensities."""

MIN_UPLIFT_ARM: Final = 200
"""Least treated and least control customers of an offer for an uplift model to be tried."""

_NOT_OFFERED: Final = "recorded campaigns of offers not in this offers file"
"""Said of the recorded offers the plan's offers file lacks, naming them."""

_ONCE_A_ROW: Final = "the plan would offer them (and spend on them) once a row"
"""What a customer on two rows of a table the plan reads would do (RepeatedCustomersError)."""


class NoValuesError(LookupError):
    """The store has no value table to plan from.

    Parameters
    ----------
    message : str
        What is missing and what to run, for the command line (it may name the store's folder).
    reason : str, optional
        The same without any path of the server, for a client of the API; default ``message``.
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = message if reason is None else reason


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
            run = "run `guanxi value --events PATH --as-of DATE --out PATH` first"
            raise NoValuesError(
                f"the store ({store.value_dir}) holds no value table: {run}",
                f"the store holds no value table: {run}",
            )
        return days[-1]
    if as_of not in days:
        held = ", ".join(d.isoformat() for d in days[-5:]) or "none"
        # was the value command alone, which refuses a day before the first event too
        newest = f", or plan a day it holds (--as-of {days[-1].isoformat()})" if days else ""
        raise NoValuesError(
            f"the store has no value table as of {as_of.isoformat()} (it holds: {held}): "
            f"run `guanxi value --events PATH --as-of {as_of.isoformat()} --out PATH` first "
            f"(events that reach back to that day: one before their first event has no customer "
            f"to value){newest}"
        )
    return as_of


def _read_values(store: Store, day: date) -> pl.DataFrame:
    """Read the value table of ``day`` (listed by :func:`_latest`), checked with the store's key."""
    again = f"guanxi value --events PATH --as-of {day.isoformat()} --out PATH"
    with vouched_for(f"the value table as of {day.isoformat()}", again):
        table = store.read_values(day)
    assert table is not None
    return table


def _campaigns(
    store: Store, offers: OffersFile, values: pl.DataFrame, day: date
) -> tuple[pl.DataFrame | None, list[str], list[str]]:
    """Return the recorded outcomes of this file's offers, segment and churn probability filled.

    Only campaigns whose outcomes were complete on or before ``day`` count (a note names those
    left out); each set of outcomes counts once (:func:`models.campaigns.pooled_campaigns`); a
    row without a segment or churn probability of its own takes the value table's of ``day``
    (:func:`models.campaigns.fill_from_values`). The notes say which campaigns hold the same
    outcomes or share customers, which recorded offers the offers file lacks, and how many
    outcome customers the value table lacks when their rate needs what it would fill (they are
    left out: a win-back or cross-sell rate needs no churn probability, so only a missing
    segment leaves theirs out). The third item names the offers recorded, those whose every
    customer was left out too: their uplift models need no value table.
    """
    outcomes, overlaps, later = pooled_campaigns(store, until=day)  # none known after the day
    left_out = later_note(later, day)
    notes = [left_out] if left_out is not None else []
    notes += [overlap.note for overlap in overlaps]
    if outcomes is None:
        return None, notes, []
    known = {o.name for o in offers.offers}
    others = sorted(set(outcomes["offer"].unique().to_list()) - known)
    if others:  # named: a renamed offer was to be guessed, and was unsaid beside a known one
        notes.append(f"{_NOT_OFFERED} ({', '.join(others)}): the plan measures no rate from them")
    outcomes = outcomes.filter(pl.col("offer").is_in(sorted(known)))
    recorded = sorted(outcomes["offer"].unique().to_list())
    if outcomes.is_empty():
        return outcomes, notes, recorded
    fill = fill_from_values(outcomes, values, day=day)
    # a rate needs its segment, and its offer's base probability when that is the churn
    # probability: the rows needing what the value table lacks are left out. A win-back
    # (or cross-sell) row with its own segment needs no churn probability: it stays
    divided = [o.name for o in offers.offers if BASE_PROBABILITY.get(o.kind) == "churn_probability"]
    needs = {
        "segment": fill.needed("segment"),
        "churn_probability": fill.needed("churn_probability") & outcomes["offer"].is_in(divided),
    }
    absent = ~fill.in_values
    needing = needs["segment"] | needs["churn_probability"]
    kept = fill.outcomes.filter(~(needing & absent))
    what = [c.replace("_", " ") for c, rows in needs.items() if (rows & absent).any()]
    consequence = (
        f"left out of the measured rates, which take their {' and '.join(what)} from it"
        if kept.height
        else "no rate is measured from the recorded campaigns"
    )
    lacking = not_in_values(fill.outcomes, needing & absent, day, " or ".join(what), consequence)
    notes += [lacking] if lacking is not None else []
    return kept, notes, recorded


def _measured(offers: OffersFile, outcomes: pl.DataFrame | None) -> tuple[OffersFile, list[str]]:
    """Offers with the rates recorded campaigns measured, and notes saying which."""
    if outcomes is None or outcomes.is_empty():  # _campaigns said why it is empty
        return offers, []
    rates = measured_rates(outcomes, offers)
    notes = [
        f"{name}: measured rates for {counted(len(by), 'segments')} from recorded campaigns"
        for name, by in sorted(rates.items())
    ]
    # their rate would apply to nobody: a plan's customers all have a segment (measured_rates)
    unsegmented = (
        outcomes.filter(pl.col("segment").fill_null(NO_SEGMENT) == NO_SEGMENT)
        .group_by("offer")
        .len()
        .sort("offer")
    )
    notes += [
        f"{name}: {counted(n, 'campaign customers')} without an RFM segment (no order yet when "
        "segmented) measure no rate: every customer a plan reaches has a segment; they "
        "count in guanxi campaign report's rows over all segments"
        for name, n in unsegmented.iter_rows()
    ]
    # the note said "too small" of a campaign of hundreds whose outcomes had no churn probability
    unbased = _unbased(offers, outcomes)
    baseless = [(name, column) for name, column, n, of in unbased if n == of]
    why = {"churn_probability": " (a value table fitted without a churn champion has none)"}
    notes += [
        f"{name}: no rate from its recorded campaigns: their outcomes have no {column} to divide "
        f"the incremental response by{why.get(column, '')}"
        for name, column in baseless
    ]
    # measured_rates leaves them out of the incremental response as well as of its divisor; the
    # value table fills a churn probability (_campaigns), never a propensity
    source = {"churn_probability": "neither their outcomes nor the value table give one"}
    notes += [
        f"{name}: {counted(n, 'campaign customers')} of {of:,} have no {column} "
        f"({source.get(column, 'their outcomes give none')}): left out of its measured rates, "
        f"of both the incremental response and the mean {column} it is divided by"
        for name, column, n, of in unbased
        if n < of
    ]
    if not rates and not baseless and unsegmented["len"].sum() < outcomes.height:
        notes.append(  # was "(30 treated and 30 control)", not saying of what, nor the rates
            "recorded campaigns too small to measure a rate: no offer's segment has "
            f"{MIN_MEASURED_CUSTOMERS} treated and {MIN_MEASURED_CUSTOMERS} control customers; "
            "the plan uses the offers file's rates (guanxi campaign report names the small "
            "segments)"
        )
    return (with_measured_rates(offers, rates) if rates else offers), notes


def _unbased(offers: OffersFile, outcomes: pl.DataFrame) -> list[tuple[str, str, int, int]]:
    """List the offers with outcomes lacking the base probability of their rate.

    Each with its column, the rows lacking it and the offer's rows.
    """
    found = []
    for offer in offers.offers:
        column = BASE_PROBABILITY.get(offer.kind)
        rows = outcomes.filter(pl.col("offer") == offer.name)
        if column is None or rows.is_empty():
            continue
        n = rows[column].null_count() if column in rows.columns else rows.height
        if n:
            found.append((offer.name, column, n, rows.height))
    return found


def fit_campaign_uplift(
    store: Store, as_of: date | None = None, progress: Callable[[str], None] | None = None
) -> tuple[date, list[UpliftBundle], list[str]]:
    """Fit an uplift model per recorded offer (:func:`models.uplift.fit_uplift`).

    The campaign's customers are described by the snapshot of ``as_of`` (the campaign is taken
    to have been planned on it) and ranked against their churn probability in that day's value
    table. An offer needs :data:`MIN_UPLIFT_ARM` treated and control customers in the snapshot.
    Only the campaigns whose outcomes were complete on or before that day are fitted on (the
    plans of the day use the models); a note names the others.

    Parameters
    ----------
    store : features.store.Store
        The store: recorded campaigns, the value table and the snapshot of the day.
    as_of : datetime.date, optional
        Day of the value table and snapshot; the latest value table when omitted.
    progress : callable, optional
        Receives a line as each offer's fit starts (the fit is minutes at scale).

    Returns
    -------
    tuple
        The day, one bundle per offer fitted, and notes on the offers that were not and on the
        campaign customers the snapshot lacks (left out) or the value table (ranked last by
        churn score).

    Raises
    ------
    NoValuesError
        If the store has no value table for the day.
    LookupError
        If no campaign is recorded, none was complete on or before the day (the message names
        them), or the store has no snapshot of the day.
    features.store.UnsignedTableError, features.store.TamperedTableError
        With a key: the value table or a recorded campaign is not vouched for by it (the
        message names which, and the command that writes it again).
    models.customer_rows.RepeatedCustomersError
        If the value table, or the snapshot, lists a campaign customer on more than one row.
    """
    # the campaigns first: on a store without one, "no value table" sent the user to guanxi
    # value, and then to this same refusal (guanxi campaign report says it first too)
    if not store.list_campaigns():
        raise LookupError(NO_CAMPAIGN)
    day = _latest(store, as_of)
    # each set of outcomes once, and only those complete by the day: the plans of the day use
    # the models, and a campaign of a later day was not known then
    outcomes, _, later = pooled_campaigns(store, until=day)
    left_out = later_note(later, day)
    if outcomes is None:  # every one later (a listed campaign removed since is "none recorded")
        raise LookupError(left_out or NO_CAMPAIGN)
    values = _read_values(store, day)
    snapshot = store.read_snapshot(day)  # SnapshotNotFoundError is a LookupError
    repeated = _repeated_in(  # the fit's inputs would outnumber its outcomes
        outcomes["customer_id"],
        day,
        "the fit would pair outcomes with other customers' inputs",
        [_snapshot_table(snapshot, day, "features")],
    )
    if repeated is not None:
        raise repeated
    bundles, notes = [], [left_out] if left_out is not None else []
    # a row without a churn probability takes the value table's; those it lacks were ranked last
    # unsaid, and rows of a campaign without the column pooled with one with it were never filled
    fill = fill_from_values(outcomes, values, ("churn_probability",), day=day)
    last = "no churn probability: ranked last by the churn score the models are judged against"
    lacking = fill.not_in_values(day, {"churn_probability": last})
    notes += [lacking] if lacking is not None else []
    outcomes = fill.outcomes
    if "margin" not in outcomes.columns:
        raise LookupError("the recorded campaigns have no margin column: the worth is unknown")
    for offer in sorted(outcomes["offer"].unique().to_list()):
        recorded = outcomes.filter(pl.col("offer") == offer)
        rows = recorded.join(snapshot.select("customer_id"), on="customer_id", how="semi")
        out = recorded.height - rows.height
        if out:  # left out of the fit without a word
            notes.append(
                f"{offer}: {counted(out, 'campaign customers')} of {recorded.height:,} "
                f"{'is' if out == 1 else 'are'} not in the snapshot of {day} (no features to "
                "describe them): left out of the fit"
            )
        held_out = int(rows["control"].sum())
        if min(held_out, rows.height - held_out) < MIN_UPLIFT_ARM:
            notes.append(
                f"{offer}: fewer than {MIN_UPLIFT_ARM} treated or control customers in the "
                f"snapshot of {day}, no uplift model"
            )
            continue
        ids, x, t, y = campaign_training_frame(snapshot, rows, offer)
        if ids["churn_probability"].is_null().all():  # "beats the churn score" said nothing
            notes.append(
                f"{offer}: its campaign customers have no churn probability in the value table "
                f"as of {day} (fitted without a churn champion): the churn-score ranking it is "
                "judged against is flat (Qini 0), so beating it says only that the model ranks "
                "better than no ranking; promote a churn model, run guanxi value again and fit "
                "again"
            )
        if progress is not None:
            progress(
                f"{offer}: fitting the two-model and X-learner uplift on {rows.height:,} "
                f"campaign customers ({held_out:,} control), five-fold cross-fitting"
            )
        bundle, _ = fit_uplift(
            offer,
            x,
            t,
            y,
            ids["margin"].fill_null(0.0).to_numpy(),
            ids["churn_probability"].fill_null(0.0).to_numpy(),
            model_input_columns(snapshot),
        )
        bundles.append(bundle)
    return day, bundles, notes


def _uplift(
    recorded: list[str],
    snapshot: pl.DataFrame | None,
    customers: pl.DataFrame,
    load: Callable[[str], LoadedUplift],
    day: date,
) -> tuple[pl.DataFrame | None, dict[str, Any], list[str]]:
    """Use each recorded offer's registered uplift model where it beats the churn score.

    ``load`` returns the offer's registered model (:func:`models.registry.load_uplift`); an offer
    without one, whose model ranked below the churn score on the held-out Qini, or whose model
    was fitted as of a day after the plan's ``day`` (on campaigns the plan could not know), is
    valued by rates, and the note says which.
    """
    if not recorded or snapshot is None:
        return None, {}, []
    frames, chosen, notes = [], {}, []
    for offer in recorded:
        try:
            loaded = load(offer)
        except ModelNotFoundError as error:
            notes.append(f"{offer}: {error}; the plan uses rates")
            continue
        bundle = loaded.bundle
        figures = {name: round(m["qini"], 4) for name, m in bundle.metrics.items()}
        qini = ", ".join(f"{name} {value:.4f}" for name, value in figures.items())
        which = f"{bundle.learner}, {loaded.name} version {loaded.version}"
        if loaded.as_of is not None and loaded.as_of > day:  # learnt from campaigns after it
            notes.append(
                f"{offer}: uplift ({which}) was fitted as of {loaded.as_of}, after the plan's day "
                f"{day}, on campaigns a plan of that day could not know; the plan uses rates "
                f"(guanxi campaign uplift --as-of {day} fits one of that day)"
            )
            continue
        if not bundle.beats_churn_score:
            notes.append(
                f"{offer}: uplift ({which}) does not beat the churn score on the held-out Qini "
                f"({qini}); the plan uses rates"
            )
            continue
        x = uplift_frame(snapshot, customers.select("customer_id"))
        if x.shape[1] != len(bundle.feature_names) or model_input_columns(snapshot) != list(
            bundle.feature_names
        ):
            notes.append(  # was "the uplift model's inputs differ from the snapshot's; rates"
                f"{offer}: uplift ({which}) was fitted on other inputs than the snapshot of {day} "
                "holds (another feature set); the plan uses rates (guanxi campaign uplift "
                f"--as-of {day} fits one on them)"
            )
            continue
        lift, worth = bundle.predict_uplift(x), bundle.predict_margin(x)
        keep = np.isfinite(lift) & np.isfinite(worth)
        frames.append(
            customers.select(
                "customer_id",
                offer=pl.lit(offer),
                uplift=pl.Series(lift),
                response_value=pl.Series(worth),
            ).filter(pl.Series(keep))
        )
        chosen[offer] = {
            "learner": bundle.learner,
            "qini": figures,
            "rows": bundle.metadata.get("rows"),
            "model": loaded.name,
            "version": loaded.version,
        }
        notes.append(
            f"{offer}: uplift ({which}) beats the churn score on the held-out Qini "
            f"({qini}); the plan values it by uplift x margin of a response - cost"
        )
    return (pl.concat(frames) if frames else None), chosen, notes


def _cross_sell(
    store: Store, day: date, offers: OffersFile
) -> tuple[dict[str, pl.DataFrame], list[str]]:
    """Propensities of the cross-sell champion, from its stored score table of the day.

    Only ``cross_sell@champion`` counts: a model that did not pass the promotion gate does not
    beat the affinity rule, so its probabilities are not used; the champion is then the
    rule-backed version (the affinity rule's own ranking, calibrated), which the notes name.
    Without a champion the cross-sell offers reach nobody, with the reason in the notes.
    """
    wanted = sorted({o.category for o in offers.offers if o.category is not None})
    if not wanted:
        return {}, []
    offers_text = ", ".join(o.name for o in offers.offers if o.category is not None)
    champion = get_version(CROSS_SELL, CHAMPION)
    if champion is None:
        return {}, [
            f"{offers_text}: no promoted cross-sell model ({CROSS_SELL}@{CHAMPION}; a model that "
            "does not beat the category-affinity rule is not promoted, and `guanxi promote` then "
            "serves the rule's version, which `guanxi train` registers), so the cross-sell offers "
            "reach nobody"
        ]
    version = str(champion.version)
    scores = store.read_scores(CROSS_SELL, day, version)
    if scores is None:
        return {}, [
            f"{offers_text}: no scores of {CROSS_SELL}@{CHAMPION} (version {version}) as of "
            f"{day} in the store (guanxi score --tasks {CROSS_SELL} --as-of {day}), so the "
            "cross-sell offers reach nobody"
        ]
    scored = scores.filter(pl.col("score").is_not_null())
    found = {
        category: scored.filter(pl.col("category") == category).select("customer_id", "score")
        for category in wanted
    }
    served = (
        f" (the {(champion.tags or {}).get('backing_name') or 'rule'}: the model does not beat it)"
        if is_rule_backed(champion)
        else ""
    )
    scored_categories = sorted(scores["category"].drop_nulls().unique().to_list())
    notes = [
        f"{category}: propensity of {CROSS_SELL} version {version}{served} "
        f"({counted(frame.height, 'customers')} who never bought it)"
        if category in scored_categories
        else _unscored(category, offers, scored_categories, day)
        for category, frame in found.items()
    ]
    return found, notes


def _unscored(category: str, offers: OffersFile, scored: list[str], day: date) -> str:
    """Say that no cross-sell score has an offer's category (misspelt?) and whom it reaches.

    A misspelt ``category`` read "accesories: propensity of cross_sell version 1 (0 customers
    who never bought it)", as if every customer had bought it already.
    """
    names = ", ".join(o.name for o in offers.offers if o.category == category)
    said = quoted_near(category, scored)  # with the scored one it may be meant for, as --task
    return (
        f"{names}: no {CROSS_SELL} score of {day} has the category {said}; the categories "
        f"scored are {', '.join(scored) or 'none'}: it reaches nobody"
    )


def plan_values(
    store: Store,
    offers: OffersFile,
    as_of: date | None = None,
    uplift: bool = True,
    load: Callable[[str], LoadedUplift] = load_uplift,
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
        Use the registered uplift models of the recorded offers where they beat the churn score.
    load : callable, default :func:`models.registry.load_uplift`
        Loads an offer's registered uplift model (MLflow tracking configured by the caller).

    Returns
    -------
    tuple
        The day, the values, the offers as used, notes, and per offer the uplift model used.

    Raises
    ------
    NoValuesError
        If the store has no value table for the day.
    features.store.UnsignedTableError, features.store.TamperedTableError
        With a key: the value table or a recorded campaign is not vouched for by it (the
        message names which, and the command that writes it again).
    models.customer_rows.RepeatedCustomersError
        If the value table lists a customer on more than one row, or the snapshot or a
        cross-sell score table one of its customers: the plan would offer them once a row.
    """
    day = _latest(store, as_of)
    table = _read_values(store, day)
    refuse_repeated_customers(
        table,
        day,
        what="segment, value tier, churn probability and CLV",
        consequence=_ONCE_A_ROW,
    )
    try:
        snapshot: pl.DataFrame | None = store.read_snapshot(day)
    except SnapshotNotFoundError:
        snapshot = None
    complaints = [o.name for o in offers.offers if o.eligibility.unresolved_complaint]
    notes = []
    if snapshot is None:
        verb = "reaches" if len(complaints) == 1 else "reach"
        reach = f", so {', '.join(complaints)} {verb} nobody" if complaints else ""
        notes.append(
            f"no snapshot of {day} in the store (guanxi features build --as-of {day}): no "
            f"complaints{reach}"
        )
    outcomes, pooled, recorded = _campaigns(store, offers, table, day)
    used, measured = _measured(offers, outcomes)
    notes += pooled + measured
    propensities, said = _cross_sell(store, day, used)
    notes += said
    customers = targeting_customers(table, snapshot, propensities)
    if customers.height != table.height:  # a joined table repeated a customer: the check is free
        score = f"score it again (guanxi score --tasks {CROSS_SELL} --as-of {day})"
        tables = [
            _snapshot_table(snapshot, day, "unresolved complaints and recency"),
            *(
                (f"the {CROSS_SELL} score table (category {category!r})", frame, "scores", score)
                for category, frame in sorted(propensities.items())
            ),
        ]
        repeated = _repeated_in(table["customer_id"], day, _ONCE_A_ROW, tables)
        assert repeated is not None  # only a key on two rows adds rows to a left join
        raise repeated
    if snapshot is None:  # no complaints known, as the note says (not a missing column)
        customers = customers.with_columns(unresolved_complaints=pl.lit(0, pl.Int64))
    for offer in used.offers:
        column = f"{PROPENSITY_PREFIX}{offer.category}"
        if offer.category is not None and column not in customers.columns:
            customers = customers.with_columns(pl.lit(None, pl.Float64).alias(column))
    lift, chosen, said = (
        _uplift(recorded, snapshot, customers, load, day) if uplift else (None, {}, [])
    )
    notes += said
    values = offer_values(customers, used, uplift=lift)
    for j, offer in enumerate(values.offers):
        # one note a cause: a cross-sell offer without propensities has _cross_sell's, an offer
        # for complaints without a snapshot the note above
        said_already = (offer.category is not None and offer.category not in propensities) or (
            snapshot is None and offer.name in complaints
        )
        if not said_already and not np.isfinite(values.value[:, j]).any():
            notes.append(_nobody(offer, values))
    return day, values, used, notes, chosen


def _repeated_in(
    customers: pl.Series,
    day: date,
    consequence: str,
    tables: list[tuple[str, pl.DataFrame | None, str, str]],
) -> RepeatedCustomersError | None:
    """Name the first table listing one of ``customers`` on more than one row, else None.

    The snapshot and the cross-sell scores are joined to the value table (or the outcomes) by
    ``customer_id``, so each such row repeats the customer: :func:`models.targeting.offer_values`
    refused the plan's customers frame, and an uplift fit's inputs outnumbered its outcomes,
    naming no table. ``guanxi features build`` and ``guanxi score`` write one row a customer (and
    category); a store without a key reads any file at their paths.

    Parameters
    ----------
    customers : polars.Series
        The customers joined to (a repeat of anyone else changes nothing).
    day : datetime.date
        The tables' day.
    consequence : str
        What each repeated row would do (:func:`models.customer_rows.repeated_customers`).
    tables : list of tuple
        Each table's name, its rows (None: not read), what its rows give, and what makes it
        again.
    """
    wanted = customers.cast(pl.String).implode()
    for name, frame, what, again in tables:
        if frame is None:
            continue
        ids = frame["customer_id"].cast(pl.String)
        repeated = ids.filter(ids.is_duplicated() & ids.is_in(wanted)).unique(maintain_order=True)
        if repeated.len():
            return repeated_customers(
                repeated, day, what=what, consequence=consequence, table=name, again=again
            )
    return None


def _snapshot_table(
    snapshot: pl.DataFrame | None, day: date, what: str
) -> tuple[str, pl.DataFrame | None, str, str]:
    """Describe the day's snapshot for :func:`_repeated_in`, with the command that builds it."""
    return ("the snapshot", snapshot, what, f"build it again (guanxi features build --as-of {day})")


def _nobody(offer: Offer, values: OfferValues) -> str:
    """Say that no customer is eligible for ``offer``, and why when the value table shows it."""
    customers = values.customers  # no rows at all is said by the plan's reason, not as unscored
    unscored = 0 < customers.height == customers["churn_probability"].null_count()
    if offer.category is None and offer.kind != "win_back" and unscored:  # read P(churn)
        return (
            f"{offer.name}: no customer is eligible: the value table has no churn probabilities "
            "(no churn champion when `guanxi value` ran)"
        )
    return f"{offer.name}: no customer is eligible"


def plan_from_store(
    store: Store,
    offers: OffersFile,
    budget: float,
    as_of: date | None = None,
    method: Method = "auto",
    uplift: bool = True,
    load: Callable[[str], LoadedUplift] = load_uplift,
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
        Use the registered uplift models (see :func:`plan_values`).
    load : callable, default :func:`models.registry.load_uplift`
        Loads an offer's registered uplift model (``POST /v1/targeting`` passes its cache of
        loaded versions).

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
    features.store.UnsignedTableError, features.store.TamperedTableError
        With a key: the value table or a recorded campaign is not vouched for by it
        (:func:`plan_values`).
    models.customer_rows.RepeatedCustomersError
        If the value table lists a customer on more than one row (:func:`plan_values`).
    """
    day, values, used, notes, chosen = plan_values(store, offers, as_of, uplift, load)
    plan = plan_campaign(values, used, budget, method=method)
    comparison = compare_allocations(values, used, plan)
    return PlanRun(day, plan, values, used, comparison, tuple(notes), chosen or None)


def method_note(run: PlanRun, method: Method = "auto") -> str | None:
    """Say why a plan of ``--method auto`` was not solved by HiGHS, when it was not.

    qa50: a 21-contact plan was solved by the Lagrangian method while the README said "HiGHS
    exactly when small": ``auto`` counts candidate (customer, offer) pairs, not contacts, and a
    recorded campaign's measured rates can make more pairs worth a contact. The note states the
    rule; it does not count the pairs, which :func:`models.knapsack.solve` alone decides.

    Parameters
    ----------
    run : PlanRun
        The plan (:func:`plan_from_store`).
    method : {"auto", "exact", "lagrangian"}, default "auto"
        The method asked for.

    Returns
    -------
    str or None
        ``"solved by the Lagrangian method: --method auto takes HiGHS only up to 10,000
        candidate (customer, offer) pairs ..."`` when ``auto`` ended with the Lagrangian
        method; None when the plan was solved by HiGHS, or by the method asked for.
    """
    if method != "auto" or run.plan.method != "lagrangian":
        return None
    return (
        f"solved by the Lagrangian method: --method auto takes HiGHS only up to "
        f"{DEFAULT_EXACT_LIMIT:,} candidate (customer, offer) pairs (a pair with a positive "
        "expected value that fits the budget, capacities and caps on its own), not contacts, and "
        "keeps the Lagrangian plan when HiGHS stops at its time limit or finds none better; "
        "--method exact solves it with HiGHS"
    )


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
            # why the next best use buys nothing (its tables empty), for the plan page
            "next_reason": [{"reason": plan.next_reason}] if plan.next_reason else [],
            # what the next best use spends: the budget left over, or a further tenth of it when
            # that buys no contact (the plan page says which)
            "next_best_budget": [{"budget": plan.next_best.budget}],
            # the capacities and caps the next best use goes past, which it lifts (qa45 #2)
            "next_limits": [{"limit": limit} for limit in plan.next_limits],
            "comparison": run.comparison.to_dicts(),
            # which offers an uplift model valued and why the others were not, cross-sell's source
            "notes": [{"note": note} for note in run.notes],
        },
        uplift=run.uplift,
        created=datetime.now(UTC).isoformat(),
        path=store.plan_path(run.as_of),
    )
    return store.write_plan(plan.rows, info)
