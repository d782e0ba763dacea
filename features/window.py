"""Point-in-time event preparation and trailing-window helpers shared by the feature families.

Every family reads events prepared by :func:`prepare_events`: only events on or before the
snapshot day are kept and each row carries its age in whole days, so that "the last N days"
(the days ``(D - N, D]``) is simply ``age_days < N``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl

__all__ = ["AGE", "ID", "prepare_events", "rate", "within"]

ID = "customer_id"
"""The customer key of every frame."""

AGE = "age_days"
"""Days between an event's UTC calendar day and the snapshot day (0 on the snapshot day)."""

_EPOCH = date(1970, 1, 1)


def prepare_events(events: pl.LazyFrame | pl.DataFrame, as_of: date) -> pl.LazyFrame:
    """Keep the events a snapshot as of ``as_of`` may see and add their age in days.

    Parameters
    ----------
    events : polars.LazyFrame or polars.DataFrame
        Validated events (``features.contracts.event_schema()``).
    as_of : datetime.date
        The snapshot day (UTC); events with ``date(ts) <= as_of`` are kept.

    Returns
    -------
    polars.LazyFrame
        The events with ``ts < as_of + 1 day`` and an ``Int32`` column :data:`AGE`.

    Raises
    ------
    TypeError
        If ``as_of`` is a ``datetime`` rather than a calendar day.
    """
    if isinstance(as_of, datetime) or not isinstance(as_of, date):
        raise TypeError(f"as_of must be a datetime.date (a UTC calendar day), got {as_of!r}")
    day_after = datetime.combine(as_of + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    as_of_day = (as_of - _EPOCH).days
    return (
        events.lazy()
        .filter(pl.col("ts") < day_after)
        .with_columns(
            (pl.lit(as_of_day, pl.Int32) - pl.col("ts").dt.date().cast(pl.Int32)).alias(AGE)
        )
    )


def within(days: int) -> pl.Expr:
    """Return whether an event falls in the last ``days`` days, the days ``(D - days, D]``.

    Parameters
    ----------
    days : int
        Window length in days.

    Returns
    -------
    polars.Expr
        Boolean expression on :data:`AGE`.
    """
    return pl.col(AGE) < days


def rate(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """Return ``numerator / denominator``, null where the denominator is not positive.

    Parameters
    ----------
    numerator, denominator : polars.Expr
        Numeric expressions.

    Returns
    -------
    polars.Expr
        Float expression.
    """
    return pl.when(denominator > 0).then(numerator / denominator)
