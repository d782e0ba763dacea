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

from features.window import AGE, ID, rate, within

__all__ = ["return_aggregations", "service_features"]

_SECONDS_PER_DAY = 86_400.0


def _complaints(events: pl.LazyFrame) -> pl.LazyFrame:
    kind = pl.col("event_type")
    resolutions = (
        events.filter(kind == "complaint_resolved")
        .group_by(ID, "ref_id")
        .agg(pl.col("ts").min().alias("_resolved_ts"))
    )
    open_ = pl.col("_resolved_ts").is_null()
    days_to_resolve = (pl.col("_resolved_ts") - pl.col("ts")).dt.total_microseconds() / (
        1e6 * _SECONDS_PER_DAY
    )
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
            days_to_resolve.clip(lower_bound=0.0).mean().alias("resolution_days_mean"),
            pl.col(AGE).min().alias("days_since_last_complaint"),
        )
    )


def _surveys(events: pl.LazyFrame) -> pl.LazyFrame:
    score = pl.col("score")
    return (
        events.filter(pl.col("event_type") == "survey")
        .group_by(ID)
        .agg(
            score.sort_by("ts", "score").last().alias("survey_last_score"),
            score.mean().alias("survey_mean_score"),
        )
    )


def return_aggregations() -> list[pl.Expr]:
    """Return the return features as per-customer aggregations.

    The expressions read all of a customer's events (each one picks its event types), so the
    snapshot computes them in its one pass over every event.

    Returns
    -------
    list of polars.Expr
        ``returns_365d``, ``return_amount_365d`` (0 without returns) and ``return_rate`` (null
        without order spend), for ``events.group_by(customer_id).agg(...)`` over events from
        :func:`features.window.prepare_events`.
    """
    kind, amount = pl.col("event_type"), pl.col("amount")
    is_return = kind == "return"
    return [
        (is_return & within(365)).sum().cast(pl.Int64).alias("returns_365d"),
        pl.when(is_return & within(365)).then(amount).sum().alias("return_amount_365d"),
        rate(
            pl.when(is_return).then(amount).sum(), pl.when(kind == "order").then(amount).sum()
        ).alias("return_rate"),
    ]


def service_features(events: pl.LazyFrame) -> pl.LazyFrame:
    """Compute the complaint and survey features of customers with complaints or surveys.

    Parameters
    ----------
    events : polars.LazyFrame
        Events from :func:`features.window.prepare_events`.

    Returns
    -------
    polars.LazyFrame
        One row per customer with any of those events; the return features are
        :func:`return_aggregations`.
    """
    return _complaints(events).join(_surveys(events), on=ID, how="full", coalesce=True)
