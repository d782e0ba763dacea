"""Service: complaints and their resolution, surveys and returns.

A complaint is resolved when the same customer has a ``complaint_resolved`` event with the same
``ref_id`` on or before the snapshot day; a complaint without a ``ref_id`` can never be matched
and counts as unresolved. ``resolution_days_mean`` averages, over resolved complaints, the time
from the complaint to the first resolution of its ticket, in days (fractional, at least 0).
``survey_last_score`` is the score of the latest survey (on equal timestamps, the higher score).
``return_rate`` is the lifetime returned amount over the lifetime order spend (null without
spend).
"""

from __future__ import annotations

import polars as pl

from features.window import AGE, ID, exact_mean, exact_sum, fixed, fixed_point, load, rate, within

__all__ = ["return_aggregations", "return_rate", "service_features"]

_MICROSECONDS_PER_DAY = 86_400_000_000.0

_RETURNED = "_returned_total"


def _complaints(events: pl.LazyFrame) -> pl.LazyFrame:
    kind = pl.col("event_type")
    resolutions = (
        events.filter(kind == "complaint_resolved")
        .group_by(ID, "ref_id")
        .agg(pl.col("ts").min().alias("_resolved_ts"))
    )
    open_ = pl.col("_resolved_ts").is_null()
    # whole microseconds, added exactly; one division per customer, by a column: Polars divides
    # a column by a number through its reciprocal, so per row days could differ by engine
    to_resolve = (pl.col("_resolved_ts") - pl.col("ts")).dt.total_microseconds().clip(lower_bound=0)
    return (
        events.filter(kind == "complaint")
        .select(ID, "ref_id", "ts", AGE)
        .join(resolutions, on=[ID, "ref_id"], how="left")
        .group_by(ID)
        .agg(
            *(within(n).sum().cast(pl.Int64).alias(f"complaints_{n}d") for n in (90, 365)),
            pl.len().cast(pl.Int64).alias("complaints_total"),
            open_.sum().cast(pl.Int64).alias("unresolved_complaints"),
            (open_ & within(90)).sum().cast(pl.Int64).alias("unresolved_complaints_90d"),
            rate(to_resolve.sum(), to_resolve.count() * _MICROSECONDS_PER_DAY).alias(
                "resolution_days_mean"
            ),
            pl.col(AGE).min().alias("days_since_last_complaint"),
        )
    )


def _surveys(events: pl.LazyFrame) -> pl.LazyFrame:
    score = pl.col("score")
    return (
        events.filter(pl.col("event_type") == "survey")
        .with_columns(fixed_point("score"))
        .group_by(ID)
        .agg(
            score.sort_by("ts", "score").last().alias("survey_last_score"),
            exact_mean(fixed("score")).alias("survey_mean_score"),
            load("score"),
        )
    )


def return_aggregations() -> list[pl.Expr]:
    """Return the return features as per-customer aggregations.

    The expressions read all of a customer's events (each one picks its event types), so the
    snapshot computes them in its one pass over every event.

    Returns
    -------
    list of polars.Expr
        ``returns_365d``, ``return_amount_365d`` (0 without returns), the lifetime returned
        amount that :func:`return_rate` reads and the :func:`features.window.load` of
        ``amount``, for ``events.group_by(customer_id).agg(...)`` over events from
        :func:`features.window.prepare_events` with :func:`features.window.fixed_point` of
        ``amount``.
    """
    is_return, amount = pl.col("event_type") == "return", fixed("amount")
    return [
        (is_return & within(365)).sum().cast(pl.Int64).alias("returns_365d"),
        exact_sum(pl.when(is_return & within(365)).then(amount)).alias("return_amount_365d"),
        exact_sum(pl.when(is_return).then(amount)).alias(_RETURNED),
        load("amount"),
    ]


def return_rate() -> pl.Expr:
    """Return ``return_rate``: the lifetime returned amount over the lifetime order spend.

    It reads :func:`return_aggregations`' returned amount beside ``spend_total``
    (:func:`features.rfm.order_features`), the same sum of the orders' ``amount``, so the
    events' one pass does not add the order amounts a second time.

    Returns
    -------
    polars.Expr
        Float expression, null without order spend.
    """
    return rate(pl.col(_RETURNED), pl.col("spend_total")).alias("return_rate")


def service_features(events: pl.LazyFrame) -> pl.LazyFrame:
    """Compute the complaint and survey features of customers with complaints or surveys.

    Parameters
    ----------
    events : polars.LazyFrame
        Events from :func:`features.window.prepare_events`.

    Returns
    -------
    polars.LazyFrame
        One row per customer with any of those events, with the
        :func:`features.window.load` of the surveys' ``score``; the return features are
        :func:`return_aggregations`.
    """
    return _complaints(events).join(_surveys(events), on=ID, how="full", coalesce=True)
