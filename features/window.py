"""Point-in-time event preparation and trailing-window helpers shared by the feature families.

Every family reads events prepared by :func:`prepare_events`: only events on or before the
snapshot day are kept and each row carries its age in whole days, so that "the last N days"
(the days ``(D - N, D]``) is simply ``age_days < N``.

Float sums and means go through :func:`exact_sum` and :func:`exact_mean`: Polars adds floats
in an order that depends on the engine, the threads and how the rows are chunked, so its
``sum`` and ``mean`` can change in the last bits from one run to the next, and between a
snapshot built in memory, from a scan, in buckets or on Spark. These add in integers
(:func:`fixed_point`) instead, so the same events give the same features bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, timedelta

import polars as pl

__all__ = [
    "AGE",
    "ID",
    "exact_mean",
    "exact_sum",
    "fixed",
    "fixed_point",
    "float_sums",
    "load",
    "prepare_events",
    "rate",
    "split_loads",
    "within",
]

ID = "customer_id"
"""The customer key of every frame."""

AGE = "age_days"
"""Days between an event's UTC calendar day and the snapshot day (0 on the snapshot day)."""

_EPOCH = date(1970, 1, 1)

_FIXED_POINT = 2.0**64
""":func:`exact_sum` adds whole numbers of ``1 / _FIXED_POINT``."""

_FIXED_LIMIT = 2.0**62
"""A :func:`load` this large or larger could overflow :func:`exact_sum`'s integers."""

_FIXED = "_fixed_"
_LOAD = "_load_"
_EXACT: ContextVar[bool] = ContextVar("exact_sums", default=True)
"""Whether :func:`fixed_point` and :func:`exact_sum` add in integers (off in :func:`float_sums`)."""


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


def fixed_point(column: str) -> pl.Expr:
    """Return a float column as whole numbers of ``2**-64``, the rows :func:`exact_sum` adds.

    Every float of magnitude ``2**-12`` or more is such a whole number exactly; smaller ones are
    cut to one (an error below ``5.5e-20``). Computed once per row before a ``group_by``, so
    that the sums of many windows of the same column do not each convert it again.

    Parameters
    ----------
    column : str
        A float column.

    Returns
    -------
    polars.Expr
        ``Int128`` expression named :func:`fixed` of ``column`` (null where the column is null).
    """
    if not _EXACT.get():
        return pl.col(column).alias(_FIXED + column)
    return (pl.col(column) * _FIXED_POINT).cast(pl.Int128, strict=False).alias(_FIXED + column)


def fixed(column: str) -> pl.Expr:
    """Return the column that :func:`fixed_point` makes of ``column``.

    Parameters
    ----------
    column : str
        A float column.

    Returns
    -------
    polars.Expr
        The column, to pass to :func:`exact_sum` (e.g. ``pl.when(...).then(fixed("amount"))``).
    """
    return pl.col(_FIXED + column)


def exact_sum(fixed_values: pl.Expr) -> pl.Expr:
    """Return the sum of floats per group, the same whatever the order of the rows.

    The values, whole numbers of ``2**-64`` (:func:`fixed_point`), are added in 128-bit
    integers, which is exact and so independent of the order, and the total is rounded once
    to a float: the correctly rounded sum, equal to Polars' float ``sum`` but for its last
    bits, and the same whatever the engine, the threads or the chunks. The integers hold
    totals below ``2**63``; :func:`load` finds groups near that (:func:`split_loads`), to
    be built again with :func:`float_sums`.

    Parameters
    ----------
    fixed_values : polars.Expr
        :func:`fixed` of a column, or a ``when``/``then`` of it; nulls are skipped.

    Returns
    -------
    polars.Expr
        ``Float64`` aggregation, 0 for a group without values.
    """
    if not _EXACT.get():
        return fixed_values.sum()
    # dividing by a power of two is exact
    return fixed_values.sum().cast(pl.Float64) / _FIXED_POINT


def exact_mean(fixed_values: pl.Expr) -> pl.Expr:
    """Return the mean of floats per group: :func:`exact_sum` over the count of values.

    Parameters
    ----------
    fixed_values : polars.Expr
        As for :func:`exact_sum`.

    Returns
    -------
    polars.Expr
        ``Float64`` aggregation, null for a group without values.
    """
    return rate(exact_sum(fixed_values), fixed_values.count())


def load(column: str) -> pl.Expr:
    """Return the sum of a float column's absolute values per group, for :func:`split_loads`.

    It bounds every :func:`exact_sum` of the column over the group's rows (all or some).

    Parameters
    ----------
    column : str
        A float column.

    Returns
    -------
    polars.Expr
        ``Float64`` aggregation named ``_load_{column}``.
    """
    return pl.col(column).abs().sum().alias(_LOAD + column)


def split_loads(frame: pl.DataFrame) -> tuple[pl.DataFrame, bool]:
    """Drop the :func:`load` columns and tell whether every sum of the frame was exact.

    Below ``2**62`` (4.6e18, with a margin for the float sum of the load itself) the 128-bit
    integers of :func:`exact_sum` cannot overflow. A frame built under :func:`float_sums` is
    always as good as it gets.

    Parameters
    ----------
    frame : polars.DataFrame
        Aggregated rows with ``_load_*`` columns.

    Returns
    -------
    tuple of (polars.DataFrame, bool)
        ``frame`` without them, and whether no load reaches ``2**62``; if one does, build the
        frame again under :func:`float_sums`.
    """
    loads = [c for c in frame.columns if c.startswith(_LOAD)]
    fits = not _EXACT.get() or all(not (frame[c] >= _FIXED_LIMIT).any() for c in loads)
    return frame.drop(loads), fits


@contextmanager
def float_sums() -> Iterator[None]:
    """Make the expressions built inside add floats as Polars does, for huge amounts.

    :func:`fixed_point` then keeps the floats and :func:`exact_sum` adds them as floats: the
    sums are as before these functions, equal to the exact ones but for their last bits, which
    may change from run to run. For events whose amounts (or margins, or scores) add up to
    ``2**62`` or more for a customer (:func:`split_loads`), which the integers cannot hold.

    Yields
    ------
    None
    """
    token = _EXACT.set(False)
    try:
        yield
    finally:
        _EXACT.reset(token)
