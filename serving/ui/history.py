"""One customer's recent history, for a reviewer to check reasons against the facts.

The events come from the store: the history written beside the served snapshot (the events it was
built from, sorted by customer, :meth:`features.store.Store.read_history`), so a page reads the
one row group that holds the customer instead of scanning and validating the raw events file.
Only events on or before the snapshot day are shown: they are what the model saw.

:func:`summarize_history` is pure: events in, summary out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import polars as pl

from features.contracts import ACTIVITY_EVENTS, ORDER_EVENTS
from features.store import Store

__all__ = [
    "HISTORY_WINDOWS",
    "CustomerHistory",
    "HistoryUnreadableError",
    "customer_history",
    "summarize_history",
]

HISTORY_WINDOWS = (30, 90, 365)
"""Day windows of the activity counts ("last N days" = days ``(D - N, D]``)."""


class HistoryUnreadableError(Exception):
    """The store holds a history file of the day but cannot read it (truncated, damaged)."""


@dataclass(frozen=True)
class CustomerHistory:
    """A customer's activity as of a day.

    Parameters
    ----------
    as_of : datetime.date
        The snapshot day.
    total_events : int
        Events on or before ``as_of``.
    counts : polars.DataFrame
        One row per event type present: ``event_type``, ``last_30``, ``last_90``, ``last_365``,
        ``total``, ``last_ts``.
    orders : polars.DataFrame
        The newest orders and returns (``ts``, ``event_type``, ``channel``, ``category``,
        ``amount``, ``quantity``, ``ref_id``).
    complaints : polars.DataFrame
        The newest complaints with ``resolved_ts`` (null while open).
    engagement : polars.DataFrame
        The newest engagement events, surveys included (``ts``, ``event_type``, ``channel``,
        ``score``).
    spend : dict of str to float
        Order amount on or before ``as_of``: ``"last_90"``, ``"last_365"`` and ``"total"``.
    open_complaints : int
        Complaints without a resolution on or before ``as_of``.
    first_ts, last_ts : datetime or None
        First and last event.
    """

    as_of: date
    total_events: int
    counts: pl.DataFrame
    orders: pl.DataFrame
    complaints: pl.DataFrame
    engagement: pl.DataFrame
    spend: dict[str, float]
    open_complaints: int
    first_ts: datetime | None
    last_ts: datetime | None


def _within(days: int, as_of: date) -> pl.Expr:
    """Events on the days ``(as_of - days, as_of]``."""
    return pl.col("ts").dt.date() > as_of - timedelta(days=days)


def summarize_history(events: pl.DataFrame, as_of: date, limit: int = 15) -> CustomerHistory:
    """Summarise one customer's validated events as of a day.

    Parameters
    ----------
    events : polars.DataFrame
        The customer's events (contract columns; any order).
    as_of : datetime.date
        The snapshot day; later events are ignored.
    limit : int, default 15
        Rows kept in each of the recent-event tables.

    Returns
    -------
    CustomerHistory
        Counts by event type and window, spend, and the newest orders, complaints and
        engagement events.
    """
    seen = events.filter(pl.col("ts").dt.date() <= as_of).sort("ts", descending=True)
    counts = (
        seen.group_by("event_type")
        .agg(
            *(_within(d, as_of).sum().alias(f"last_{d}") for d in HISTORY_WINDOWS),
            pl.len().alias("total"),
            pl.col("ts").max().alias("last_ts"),
        )
        .sort(["total", "event_type"], descending=[True, False])
    )
    orders = seen.filter(pl.col("event_type").is_in(ORDER_EVENTS))
    spent = orders.filter(pl.col("event_type") == "order")
    spend = {
        "last_90": float(spent.filter(_within(90, as_of))["amount"].sum()),
        "last_365": float(spent.filter(_within(365, as_of))["amount"].sum()),
        "total": float(spent["amount"].sum()),
    }
    resolved = (
        seen.filter(pl.col("event_type") == "complaint_resolved")
        .group_by("ref_id")
        .agg(pl.col("ts").min().alias("resolved_ts"))
    )
    complaints = (
        seen.filter(pl.col("event_type") == "complaint")
        .join(resolved, on="ref_id", how="left")
        .sort("ts", descending=True)
    )
    return CustomerHistory(
        as_of=as_of,
        total_events=seen.height,
        counts=counts,
        orders=orders.select(
            "ts", "event_type", "channel", "category", "amount", "quantity", "ref_id"
        ).head(limit),
        complaints=complaints.select("ts", "channel", "ref_id", "resolved_ts").head(limit),
        engagement=seen.filter(pl.col("event_type").is_in(ACTIVITY_EVENTS))
        .select("ts", "event_type", "channel", "score")
        .head(limit),
        spend=spend,
        open_complaints=int(complaints["resolved_ts"].is_null().sum()),
        first_ts=seen["ts"].min() if seen.height else None,  # type: ignore[arg-type]
        last_ts=seen["ts"].max() if seen.height else None,  # type: ignore[arg-type]
    )


def customer_history(store: Store, as_of: date, customer_id: str) -> CustomerHistory | None:
    """Read and summarise one customer's history from the store.

    Parameters
    ----------
    store : features.store.Store
        The store under ``GUANXI_HOME``.
    as_of : datetime.date
        The served snapshot's day.
    customer_id : str
        The customer.

    Returns
    -------
    CustomerHistory or None
        The summary; None when the store holds no history for the day (a snapshot written
        without its events).

    Raises
    ------
    HistoryUnreadableError
        The day's history file is there but cannot be read; the message names it and why.
    """
    try:
        events = store.read_history(as_of, customer_id)
    except (pl.exceptions.PolarsError, OSError) as exc:
        path = store.history_path(as_of)
        raise HistoryUnreadableError(
            f"the history as of {as_of} cannot be read ({path}): {type(exc).__name__}: {exc}"
        ) from exc
    return None if events is None else summarize_history(events, as_of)
