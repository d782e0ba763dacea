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

from features.contracts import CHANNELS
from features.window import AGE, rate, within

__all__ = ["ENGAGEMENT_ACTIONS", "ENGAGEMENT_EVENTS", "channels_used", "engagement_aggregations"]

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

    Each channel sets one bit (its position in :data:`~features.contracts.CHANNELS`); the bits
    of a customer's events are OR-ed and counted, which is much cheaper than a distinct count
    of strings. Validated events carry only contract channels.

    Parameters
    ----------
    days : int
        Window length in days.

    Returns
    -------
    polars.Expr
        ``Int64`` aggregation over all of a customer's events (0 without channels).
    """
    bit = pl.lit(2, pl.UInt16).pow(pl.col("channel").cast(pl.Enum(CHANNELS)).to_physical())
    ored = pl.when(within(days)).then(bit).bitwise_or()
    return ored.bitwise_count_ones().fill_null(0).cast(pl.Int64)


def engagement_aggregations() -> list[pl.Expr]:
    """Return the engagement features, but ``channels_used_365d``, as per-customer aggregations.

    The expressions read all of a customer's events (each one picks its event types), so the
    snapshot computes them in the one pass over every event that it makes anyway.

    Returns
    -------
    list of polars.Expr
        Aggregations for ``events.group_by(customer_id).agg(...)`` over events from
        :func:`features.window.prepare_events`; counts are 0 and rates and
        ``days_since_last_engagement`` null for a customer without such events.
    """
    kind = pl.col("event_type")

    def count(event_type: str, days: int, channel: str | None = None) -> pl.Expr:
        hit = (kind == event_type) & within(days)
        if channel is not None:
            hit = hit & (pl.col("channel") == channel)
        return hit.sum().cast(pl.Int64)

    def capped_rate(event_type: str, sent_type: str, days: int) -> pl.Expr:
        return rate(count(event_type, days), count(sent_type, days)).clip(upper_bound=1.0)

    return [
        *(count("visit", n).alias(f"visits_{n}d") for n in (30, 90, 365)),
        *(count("visit", 90, ch).alias(f"visits_{ch}_90d") for ch in ("web", "app", "store")),
        count("email_sent", 90).alias("emails_sent_90d"),
        capped_rate("email_open", "email_sent", 90).alias("email_open_rate_90d"),
        capped_rate("email_click", "email_sent", 90).alias("email_click_rate_90d"),
        capped_rate("email_open", "email_sent", 365).alias("email_open_rate_365d"),
        count("sms_sent", 90).alias("sms_sent_90d"),
        capped_rate("sms_reply", "sms_sent", 90).alias("sms_reply_rate_90d"),
        count("call", 90).alias("calls_90d"),
        # OR of equalities: is_in hashes every string and cost ten comparisons' time
        pl.when(pl.any_horizontal(kind == action for action in ENGAGEMENT_ACTIONS))
        .then(pl.col(AGE))
        .min()
        .alias("days_since_last_engagement"),
    ]
