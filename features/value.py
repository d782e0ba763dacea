"""Point-in-time inputs of the probabilistic value models: purchase summaries and subscriptions.

Everything here is pure: events in, one row per customer out, time as a parameter (``as_of``,
window bounds); only events with ``date(ts) <= as_of`` are read (:func:`features.window.
prepare_events`), so later events change nothing.

Repeat-transaction summaries
----------------------------
:func:`repeat_purchase_summary` follows the convention of Fader, Hardie and Lee (2005) that the
BG/NBD and Gamma-Gamma models are written in: a *purchase* is a day with at least one ``order``
event (several orders on one day are one purchase, their amounts added), the first purchase
starts the customer's history and is not counted, and the models see

* ``frequency`` ``x``: the number of repeat purchases, distinct order days minus one;
* ``recency`` ``t_x``: the time from the first to the last order day (0 when ``x = 0``);
* ``T``: the time from the first order day to ``as_of``;
* ``monetary_value``: the mean value of the repeat purchases (a purchase's value is the sum of the
  amounts of that day's orders); null when ``x = 0``, since the Gamma-Gamma model reads repeat
  purchases only;
* ``margin_value``: the same mean over the repeat purchases whose margin is known (every order of
  that day carries a ``margin``); null when there is none.

The amounts and margins are added in integers (:func:`features.window.exact_sum`), a day's and
then the repeat days', so the means are the same bit for bit in any row order, on any engine or
in buckets (Spark); when a customer's amounts (or margins) add up to ``2**62`` or more in
absolute value (:func:`features.window.split_loads`), near the limit of those integers, the
summary adds floats instead (:func:`features.window.float_sums`). That is checked before the
summary, on one sum of every order's ``|amount|`` and ``|margin|`` (customer by customer only when
it reaches ``2**61``), rather than from a load column per order day.

Times are in units of ``time_unit_days`` days (1 for days, 7 for the weeks of the CDNOW
examples), counted between UTC calendar days: a customer whose first order was on 1997-01-01 and
last on 1997-08-02 has ``recency`` 213 days or 30.43 weeks, and ``T`` 272 days (38.86 weeks) as of
1997-09-30.

Subscriptions
-------------
:func:`subscription_spells` reads ``subscribe`` and ``cancel`` events for the contractual model
(shifted-beta-geometric by cohort): each customer's first observed subscription, its contract
periods of ``period_days`` days counted from the subscription day, and whether it was cancelled by
``as_of``. A customer whose subscription began before the data (a ``cancel`` without an earlier
``subscribe``) is left out, since the start of that spell is unknown.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from features.window import (
    AGE,
    ID,
    exact_mean,
    fixed,
    fixed_point,
    float_sums,
    load,
    prepare_events,
    split_loads,
)

__all__ = ["order_events", "purchase_counts", "repeat_purchase_summary", "subscription_spells"]

_DAY_VALUE = "_day_amount"
_DAY_MARGIN = "_day_margin"
_ORDER_COLUMNS = (ID, "ts", "event_type", "amount", "margin")
_SUMMED = ("amount", "margin")
_TOTAL_LIMIT = 2.0**61
"""Below this sum over every order, no customer's can reach :func:`features.window.split_loads`'
``2**62``, even with the rounding of the float sums (relative ``n * 2**-53`` for ``n`` orders)."""


def order_events(events: pl.LazyFrame | pl.DataFrame, through: date) -> pl.DataFrame:
    """Collect the ``order`` events up to a day, with only the columns the summaries read.

    :func:`repeat_purchase_summary` and :func:`purchase_counts` read nothing else, and give the
    same result on this frame as on ``events`` for any day up to ``through``. Read once, it
    spares a scan of staged events (:class:`features.events.Staged`) per summary and count:
    ``guanxi value`` makes four (the summaries as of the day and as of the holdout cutoff, and
    the holdout's two purchase counts), and the orders are about a tenth of the events.

    Parameters
    ----------
    events : polars.LazyFrame or polars.DataFrame
        Validated events (``features.contracts.event_schema()``).
    through : datetime.date
        The last day (UTC) whose orders are kept.

    Returns
    -------
    polars.DataFrame
        The ``order`` events with ``date(ts) <= through``, in the order of ``events``, and the
        columns ``customer_id``, ``ts``, ``event_type``, ``amount`` and ``margin``.
    """
    return (
        prepare_events(events, through)
        .filter(pl.col("event_type") == "order")
        .select(_ORDER_COLUMNS)
        .collect()
    )


def _purchase_days(orders: pl.LazyFrame) -> pl.LazyFrame:
    """One row per customer and order day: its age, its total amount and its margin if known.

    The totals stay whole numbers of ``2**-64`` (:func:`features.window.fixed_point`), so that the
    means over the days add them exactly too.
    """
    return (
        orders.with_columns(fixed_point("amount"), fixed_point("margin"))
        .group_by(ID, AGE)
        .agg(
            fixed("amount").sum().alias(_DAY_VALUE),
            pl.when(pl.col("margin").null_count() == 0)
            .then(fixed("margin").sum())
            .alias(_DAY_MARGIN),
        )
    )


def _sums_fit(orders: pl.LazyFrame) -> bool:
    """Whether every customer's ``|amount|`` and ``|margin|`` add up below ``2**62``.

    The same test as :func:`features.window.split_loads` on each customer's
    :func:`features.window.load`, but made on one sum over all the orders first: below
    :data:`_TOTAL_LIMIT` no customer's can reach the limit, and no column per order day is kept
    for it (about 0.3 GB of the summary's peak at 1M customers). Only a larger (or NaN) total is
    looked at customer by customer.
    """
    loads = [load(c) for c in _SUMMED]
    total = orders.select(loads).collect().row(0)
    if all(value < _TOTAL_LIMIT for value in total):  # False for NaN: checked below
        return True
    return split_loads(orders.group_by(ID).agg(loads).collect())[1]


def repeat_purchase_summary(
    events: pl.LazyFrame | pl.DataFrame, as_of: date, *, time_unit_days: float = 1.0
) -> pl.DataFrame:
    """Summarise each customer's purchases as of a day, as the BG/NBD and Gamma-Gamma models read.

    Parameters
    ----------
    events : polars.LazyFrame or polars.DataFrame
        Validated events (``features.contracts.event_schema()``); only ``order`` events with
        ``date(ts) <= as_of`` are read.
    as_of : datetime.date
        The day the summary is taken (UTC); it ends the observation period.
    time_unit_days : float, default 1.0
        Length of the time unit of ``recency`` and ``T`` in days (7 for weeks).

    Returns
    -------
    polars.DataFrame
        One row per customer with at least one order on or before ``as_of``, sorted by
        ``customer_id``: ``customer_id``, ``frequency`` (Int64), ``recency``, ``T``,
        ``monetary_value`` and ``margin_value`` (Float64), as described in the module docstring.

    Raises
    ------
    TypeError
        If ``as_of`` is not a ``datetime.date``.
    ValueError
        If ``time_unit_days`` is not positive.
    """
    if not time_unit_days > 0:
        raise ValueError(f"time_unit_days must be positive, got {time_unit_days!r}")
    orders = prepare_events(events, as_of).filter(pl.col("event_type") == "order")
    if _sums_fit(orders):
        return _summary(orders, time_unit_days)
    with float_sums():  # a customer's amounts near the limit of the exact sums' integers
        return _summary(orders, time_unit_days)


def _summary(orders: pl.LazyFrame, time_unit_days: float) -> pl.DataFrame:
    """Summarise the orders as of a day, as :func:`repeat_purchase_summary` returns them."""
    repeat = pl.col(AGE) < pl.col(AGE).max().over(ID)  # every order day but the first
    return (
        # the first day's values nulled row by row, so that the means (nulls skipped) take the
        # repeat purchases: a filter inside the aggregation ran group by group, 3.4 s of CPU of
        # the 1M sample's 4.5 s
        _purchase_days(orders)
        .with_columns(pl.when(repeat).then(pl.col(_DAY_VALUE, _DAY_MARGIN)))
        .group_by(ID)
        .agg(
            (pl.len() - 1).cast(pl.Int64).alias("frequency"),
            ((pl.col(AGE).max() - pl.col(AGE).min()) / time_unit_days).alias("recency"),
            (pl.col(AGE).max() / time_unit_days).alias("T"),
            exact_mean(pl.col(_DAY_VALUE)).alias("monetary_value"),
            exact_mean(pl.col(_DAY_MARGIN)).alias("margin_value"),
        )
        .with_columns(pl.col("recency", "T").cast(pl.Float64))
        .sort(ID)
        .collect()
    )


def purchase_counts(
    events: pl.LazyFrame | pl.DataFrame, after: date, through: date
) -> pl.DataFrame:
    """Count each customer's purchases (distinct order days) in the days ``(after, through]``.

    This is the actual side of a holdout check (the days after a calibration cutoff) and the
    naive "same as last period" forecast (the same number of days before the cutoff).

    Parameters
    ----------
    events : polars.LazyFrame or polars.DataFrame
        Validated events; only ``order`` events with ``after < date(ts) <= through`` count.
    after, through : datetime.date
        The window's bounds (UTC days): it starts the day after ``after`` and ends on ``through``.

    Returns
    -------
    polars.DataFrame
        ``customer_id`` and ``purchases`` (Int64) for each customer with at least one order day
        in the window, sorted by ``customer_id``; customers without one are absent (0).

    Raises
    ------
    ValueError
        If ``through`` is before ``after``.
    """
    if through < after:
        raise ValueError(f"the window ends ({through}) before it starts (after {after})")
    window = (through - after).days
    return (
        prepare_events(events, through)
        .filter((pl.col("event_type") == "order") & (pl.col(AGE) < window))
        .group_by(ID)
        .agg(pl.col(AGE).n_unique().cast(pl.Int64).alias("purchases"))
        .sort(ID)
        .collect()
    )


def subscription_spells(
    events: pl.LazyFrame | pl.DataFrame,
    as_of: date,
    *,
    period_days: int = 30,
    cohort_every: str = "1mo",
) -> pl.DataFrame:
    """Each customer's first observed subscription as of a day, in contract periods.

    Period ``k`` of a subscription that started on day ``s`` covers the days
    ``[s + (k - 1) * period_days, s + k * period_days)``; renewal ``k`` falls on the first day
    after it. A subscription cancelled on day ``c`` was lost at renewal
    ``floor((c - s) / period_days) + 1`` (so a cancel in the first period gives 1); one still
    running on ``as_of`` has survived ``floor((as_of - s) / period_days)`` renewals.

    Parameters
    ----------
    events : polars.LazyFrame or polars.DataFrame
        Validated events; ``subscribe`` and ``cancel`` events with ``date(ts) <= as_of`` are read.
    as_of : datetime.date
        The day the spells are observed (UTC).
    period_days : int, default 30
        Length of a contract period in days.
    cohort_every : str, default "1mo"
        Width of a cohort as a Polars duration (``"1mo"``, ``"1q"``, ``"1y"``, ``"7d"``): the
        cohort is the subscription day truncated to it.

    Returns
    -------
    polars.DataFrame
        One row per customer with a ``subscribe`` event on or before ``as_of``, sorted by
        ``customer_id``: ``customer_id``, ``subscribed_on`` (Date), ``cohort`` (Date),
        ``cancelled`` (Boolean: a ``cancel`` on or after the subscription day, up to ``as_of``),
        ``periods`` (Int64: the renewal at which it was lost when cancelled, else the renewals
        survived).

    Raises
    ------
    ValueError
        If ``period_days`` is not a positive integer.
    """
    if isinstance(period_days, bool) or not isinstance(period_days, int) or period_days < 1:
        raise ValueError(f"period_days must be a positive integer, got {period_days!r}")
    seen = prepare_events(events, as_of)
    starts = (
        seen.filter(pl.col("event_type") == "subscribe")
        .group_by(ID)
        .agg(pl.col(AGE).max().alias("_start_age"), pl.col("ts").min().alias("_start_ts"))
    )
    cancels = (
        seen.filter(pl.col("event_type") == "cancel")
        .join(starts, on=ID)
        .filter(pl.col("ts") >= pl.col("_start_ts"))
        .group_by(ID)
        .agg(pl.col(AGE).max().alias("_cancel_age"))
    )
    cancelled = pl.col("_cancel_age").is_not_null()
    lived = pl.col("_start_age") - pl.col("_cancel_age").fill_null(0)
    subscribed_on = pl.lit(as_of, pl.Date) - pl.duration(days=pl.col("_start_age"))
    return (
        starts.join(cancels, on=ID, how="left")
        .select(
            ID,
            subscribed_on.alias("subscribed_on"),
            subscribed_on.dt.truncate(cohort_every).alias("cohort"),
            cancelled.alias("cancelled"),
            (lived // period_days + cancelled.cast(pl.Int64)).cast(pl.Int64).alias("periods"),
        )
        .sort(ID)
        .collect()
    )
