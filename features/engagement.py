"""Engagement: visits, e-mail, SMS and calls, and how many channels a customer uses.

Rates are per message sent in the same window and capped at 1 (an open in the window can answer
an e-mail sent before it); they are null when nothing was sent. ``days_since_last_engagement``
counts the customer's own actions: visits, e-mail opens and clicks, SMS replies and calls.
``channels_used_365d`` counts the distinct non-null ``channel`` values over all event types in
the last 365 days.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from features.window import AGE, ID, rate, within

__all__ = ["ENGAGEMENT_ACTIONS", "ENGAGEMENT_EVENTS", "channels_used", "engagement_features"]

ENGAGEMENT_ACTIONS: Final[tuple[str, ...]] = (
    "visit",
    "email_open",
    "email_click",
    "sms_reply",
    "call",
)
"""Event types that count as the customer engaging (for ``days_since_last_engagement``)."""

ENGAGEMENT_EVENTS: Final[tuple[str, ...]] = (*ENGAGEMENT_ACTIONS, "email_sent", "sms_sent")
"""Event types the engagement features read."""


def channels_used(days: int) -> pl.Expr:
    """Return the number of distinct non-null channels of a customer's events in a window.

    Parameters
    ----------
    days : int
        Window length in days.

    Returns
    -------
    polars.Expr
        ``Int64`` aggregation over all of a customer's events; the snapshot evaluates it in its
        pass over every event, which it makes anyway to find the customers.
    """
    return pl.col("channel").filter(within(days)).drop_nulls().n_unique().cast(pl.Int64)


def engagement_features(events: pl.LazyFrame) -> pl.LazyFrame:
    """Compute the engagement features, but ``channels_used_365d``, of customers who have any.

    Parameters
    ----------
    events : polars.LazyFrame
        Events from :func:`features.window.prepare_events`.

    Returns
    -------
    polars.LazyFrame
        One row per customer with a visit, e-mail, SMS or call event.
    """
    kind = pl.col("event_type")

    def count(event_type: str, days: int, channel: str | None = None) -> pl.Expr:
        hit = (kind == event_type) & within(days)
        if channel is not None:
            hit = hit & (pl.col("channel") == channel)
        return hit.sum().cast(pl.Int64)

    def capped_rate(event_type: str, sent_type: str, days: int) -> pl.Expr:
        return rate(count(event_type, days), count(sent_type, days)).clip(upper_bound=1.0)

    return (
        events.filter(kind.is_in(ENGAGEMENT_EVENTS))
        .group_by(ID)
        .agg(
            *(count("visit", n).alias(f"visits_{n}d") for n in (30, 90, 365)),
            *(count("visit", 90, ch).alias(f"visits_{ch}_90d") for ch in ("web", "app", "store")),
            count("email_sent", 90).alias("emails_sent_90d"),
            capped_rate("email_open", "email_sent", 90).alias("email_open_rate_90d"),
            capped_rate("email_click", "email_sent", 90).alias("email_click_rate_90d"),
            capped_rate("email_open", "email_sent", 365).alias("email_open_rate_365d"),
            count("sms_sent", 90).alias("sms_sent_90d"),
            capped_rate("sms_reply", "sms_sent", 90).alias("sms_reply_rate_90d"),
            count("call", 90).alias("calls_90d"),
            pl.col(AGE)
            .filter(kind.is_in(ENGAGEMENT_ACTIONS))
            .min()
            .alias("days_since_last_engagement"),
        )
    )
