"""What label functions share: the label window, per-customer window flags, bought categories.

Pure Polars, time as a parameter. For a cutoff day ``c`` and a horizon of ``H`` days the label
window is the days ``(c, c + H]``: an event counts when ``c < date(ts) <= c + H`` (UTC). Events on
or before ``c`` only decide who is in the population (the task's
:class:`~models.tasks.Population`, applied to the snapshot as of ``c``) and, for a ranked task,
which categories are candidates; they never set a label.

Each task's own label function lives with its spec in :mod:`models.specs`; most are one call of
:func:`window_labels`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Final

import polars as pl

from features.products import category_slug

__all__ = [
    "HORIZON_DAYS",
    "LABEL",
    "bought_categories",
    "category_orders",
    "check_horizon",
    "in_window",
    "known_customers",
    "order_categories",
    "window_labels",
]

LABEL: Final = "label"
"""Name of the label column (Int8, 0 or 1)."""

HORIZON_DAYS: Final = 90
"""The label window ``guanxi train``, ``cycle`` and ``demo`` default to, in days."""


def _day() -> pl.Expr:
    return pl.col("ts").dt.date()


def in_window(cutoff: date, horizon: int) -> pl.Expr:
    """Return whether an event falls in the label window ``(cutoff, cutoff + horizon]``.

    Parameters
    ----------
    cutoff : datetime.date
        The cutoff day ``c``.
    horizon : int
        Window length ``H`` in days.

    Returns
    -------
    polars.Expr
        Boolean expression on ``ts`` (its UTC calendar day).
    """
    return (_day() > cutoff) & (_day() <= cutoff + timedelta(days=horizon))


def check_horizon(horizon: int) -> None:
    """Refuse a label window shorter than one day.

    Parameters
    ----------
    horizon : int
        Window length in days.

    Raises
    ------
    ValueError
        If ``horizon < 1``.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1 day, got {horizon}")


def known_customers(events: pl.DataFrame, cutoff: date) -> pl.DataFrame:
    """Return the customers with at least one event on or before the cutoff.

    Parameters
    ----------
    events : polars.DataFrame
        Validated events.
    cutoff : datetime.date
        The cutoff day.

    Returns
    -------
    polars.DataFrame
        One column ``customer_id``, sorted (the customers of the snapshot as of ``cutoff``).
    """
    return (
        events.lazy()
        .filter(_day() <= cutoff)
        .select("customer_id")
        .unique()
        .sort("customer_id")
        .collect()
    )


def window_labels(
    events: pl.DataFrame,
    cutoff: date,
    horizon: int,
    population: pl.DataFrame,
    label: pl.Expr,
    **flags: Sequence[str],
) -> pl.DataFrame:
    """Label every customer of a population from what they did in the label window.

    Parameters
    ----------
    events : polars.DataFrame
        Validated events.
    cutoff : datetime.date
        The cutoff day ``c``.
    horizon : int
        Window length ``H`` in days: ``(c, c + H]``.
    population : polars.DataFrame
        The customers to label (``customer_id``).
    label : polars.Expr
        Boolean expression on the flags, true for a positive label.
    **flags : sequence of str
        Flag name to event types: the flag is true when the customer has at least one event of
        these types in the window (e.g. ``ordered=("order",)``).

    Returns
    -------
    polars.DataFrame
        ``customer_id``, ``label`` (Int8), one row per distinct customer of ``population``,
        sorted by ``customer_id``.

    Raises
    ------
    ValueError
        If ``horizon < 1``.
    """
    check_horizon(horizon)
    types = sorted({t for names in flags.values() for t in names})
    seen = (
        events.lazy()
        .filter(in_window(cutoff, horizon) & pl.col("event_type").is_in(types))
        .group_by("customer_id")
        .agg(pl.col("event_type").is_in(list(names)).any().alias(f) for f, names in flags.items())
    )
    return (
        population.lazy()
        .select("customer_id")
        .unique()
        .join(seen, on="customer_id", how="left")
        .with_columns(pl.col(list(flags)).fill_null(False))
        .select("customer_id", label.cast(pl.Int8).alias(LABEL))
        .sort("customer_id")
        .collect()
    )


def category_orders(events: pl.DataFrame, categories: Sequence[str]) -> pl.LazyFrame:
    """Return the orders of the given categories, with categories sanitised like the snapshot's.

    Parameters
    ----------
    events : polars.DataFrame
        Validated events; order categories are sanitised with
        :func:`features.products.category_slug` and orders without a category are left out.
    categories : sequence of str
        Sanitised categories to keep.

    Returns
    -------
    polars.LazyFrame
        The ``order`` events of those categories, ``category`` sanitised.
    """
    return (
        events.lazy()
        .filter(pl.col("event_type") == "order")
        .with_columns(category_slug(pl.col("category")).alias("category"))
        .filter(pl.col("category").is_in(list(categories)))
    )


def bought_categories(
    events: pl.DataFrame, cutoff: date, categories: Sequence[str]
) -> pl.LazyFrame:
    """Return the distinct (customer, category) pairs ordered on or before the cutoff.

    Parameters
    ----------
    events : polars.DataFrame
        Validated events.
    cutoff : datetime.date
        The cutoff day.
    categories : sequence of str
        Sanitised categories to consider.

    Returns
    -------
    polars.LazyFrame
        ``customer_id``, ``category``, distinct.
    """
    return (
        category_orders(events, categories)
        .filter(_day() <= cutoff)
        .select("customer_id", "category")
        .unique()
    )


def order_categories(events: pl.DataFrame) -> list[str]:
    """Return the sanitised categories of the orders, sorted.

    Parameters
    ----------
    events : polars.DataFrame
        Validated events.

    Returns
    -------
    list of str
        Distinct non-null categories of ``order`` events, sanitised like the snapshot's
        ``cat_{category}_*`` columns (:func:`features.products.category_slug`).
    """
    return sorted(
        events.filter(pl.col("event_type") == "order")
        .select(category_slug(pl.col("category")).drop_nulls().unique())
        .to_series()
        .to_list()
    )
