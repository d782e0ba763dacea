"""Loyalty: referrals, reviews and the subscription.

``is_subscribed`` is 1 when the customer's latest ``subscribe`` is strictly later than their
latest ``cancel`` (or they never cancelled), else 0.
"""

from __future__ import annotations

import polars as pl

from features.window import exact_mean, fixed, load, within

__all__ = ["loyalty_aggregations"]


def loyalty_aggregations() -> list[pl.Expr]:
    """Return the loyalty features as per-customer aggregations.

    The expressions read all of a customer's events (each one picks its event types), so the
    snapshot computes them in its one pass over every event.

    Returns
    -------
    list of polars.Expr
        Aggregations for ``events.group_by(customer_id).agg(...)`` over events from
        :func:`features.window.prepare_events` with :func:`features.window.fixed_point` of
        ``score``; counts and ``is_subscribed`` are 0 and ``review_mean_rating`` null for a
        customer without such events; last, the :func:`features.window.load` of ``score``.
    """
    kind = pl.col("event_type")
    last_subscribe = pl.when(kind == "subscribe").then(pl.col("ts")).max()
    last_cancel = pl.when(kind == "cancel").then(pl.col("ts")).max()
    subscribed = last_subscribe.is_not_null() & (
        last_cancel.is_null() | (last_subscribe > last_cancel)
    )
    return [
        (kind == "referral").sum().cast(pl.Int64).alias("referrals_total"),
        ((kind == "referral") & within(365)).sum().cast(pl.Int64).alias("referrals_365d"),
        (kind == "review").sum().cast(pl.Int64).alias("reviews_total"),
        exact_mean(pl.when(kind == "review").then(fixed("score"))).alias("review_mean_rating"),
        subscribed.cast(pl.Int64).alias("is_subscribed"),
        (kind == "cancel").sum().cast(pl.Int64).alias("cancels_total"),
        load("score"),
    ]
