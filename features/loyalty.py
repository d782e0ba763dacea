"""Loyalty: referrals, reviews and the subscription.

``is_subscribed`` is 1 when the customer's latest ``subscribe`` is strictly later than their
latest ``cancel`` (or they never cancelled), else 0.
"""

from __future__ import annotations

import polars as pl

from features.window import ID, within

__all__ = ["loyalty_features"]


def loyalty_features(events: pl.LazyFrame) -> pl.LazyFrame:
    """Compute the loyalty features of customers with referrals, reviews or subscription events.

    Parameters
    ----------
    events : polars.LazyFrame
        Events from :func:`features.window.prepare_events`.

    Returns
    -------
    polars.LazyFrame
        One row per customer with any of those events.
    """
    kind = pl.col("event_type")
    last_subscribe = pl.col("ts").filter(kind == "subscribe").max()
    last_cancel = pl.col("ts").filter(kind == "cancel").max()
    subscribed = last_subscribe.is_not_null() & (
        last_cancel.is_null() | (last_subscribe > last_cancel)
    )
    return (
        events.filter(kind.is_in(("referral", "review", "subscribe", "cancel")))
        .group_by(ID)
        .agg(
            (kind == "referral").sum().cast(pl.Int64).alias("referrals_total"),
            ((kind == "referral") & within(365)).sum().cast(pl.Int64).alias("referrals_365d"),
            (kind == "review").sum().cast(pl.Int64).alias("reviews_total"),
            pl.col("score").filter(kind == "review").mean().alias("review_mean_rating"),
            subscribed.cast(pl.Int64).alias("is_subscribed"),
            (kind == "cancel").sum().cast(pl.Int64).alias("cancels_total"),
        )
    )
