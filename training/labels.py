"""Labels from the events that follow a cutoff: pure Polars, time as a parameter.

For a cutoff day ``c`` and a horizon of ``H`` days the label window is the days ``(c, c + H]``:
an event counts when ``c < date(ts) <= c + H`` (UTC). Events on or before ``c`` only decide who
is in the population (and, for cross-sell, which categories are candidates); they never set a
label.

``churn``
    Population: customers *active* at ``c``, i.e. with an order in the days
    ``(c - active_days, c]``. Label 1 when the customer places no order in the window, or has a
    ``cancel`` event in it (a cancellation is churn even if an order follows).
``repurchase``
    Population: customers known at ``c`` (any event on or before ``c``, or the ``population``
    passed in, e.g. the snapshot's customers). Label 1 when the customer places at least one order
    in the window.
``cross_sell``
    Population: one row per (known customer, category) for every category of ``categories`` the
    customer has not ordered on or before ``c``. Label 1 when the customer's first order of that
    category falls in the window.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from features.products import category_slug
from models.tasks import TASKS

__all__ = [
    "LABEL",
    "churn_labels",
    "cross_sell_labels",
    "known_customers",
    "labels_for",
    "repurchase_labels",
]

LABEL = "label"
"""Name of the label column (Int8, 0 or 1)."""


def _day() -> pl.Expr:
    return pl.col("ts").dt.date()


def _in_window(cutoff: date, horizon: int) -> pl.Expr:
    return (_day() > cutoff) & (_day() <= cutoff + timedelta(days=horizon))


def _check_horizon(horizon: int) -> None:
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
        One column ``customer_id``, sorted.
    """
    return (
        events.lazy()
        .filter(_day() <= cutoff)
        .select("customer_id")
        .unique()
        .sort("customer_id")
        .collect()
    )


def _with_flag(population: pl.DataFrame, flagged: pl.LazyFrame, name: str) -> pl.LazyFrame:
    """Left-join a set of flagged customer ids onto the population as a boolean column."""
    return (
        population.lazy()
        .select("customer_id")
        .unique()
        .join(
            flagged.select("customer_id").unique().with_columns(pl.lit(True).alias(name)),
            on="customer_id",
            how="left",
        )
        .with_columns(pl.col(name).fill_null(False))
    )


def churn_labels(
    events: pl.DataFrame,
    cutoff: date,
    horizon: int,
    active_days: int = 365,
    population: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Churn labels for customers active at the cutoff.

    Parameters
    ----------
    events : polars.DataFrame
        Validated events.
    cutoff : datetime.date
        The cutoff day ``c``.
    horizon : int
        Label window length ``H`` in days: ``(c, c + H]``.
    active_days : int, default 365
        A customer is active with an order in the days ``(c - active_days, c]``.
    population : polars.DataFrame, optional
        Customers to label (``customer_id`` column); defaults to the customers active at ``c``.

    Returns
    -------
    polars.DataFrame
        ``customer_id``, ``label`` (Int8: 1 = no order in the window or a ``cancel`` in it), sorted
        by ``customer_id``.
    """
    _check_horizon(horizon)
    lazy = events.lazy()
    if population is None:
        since = cutoff - timedelta(days=active_days)
        population = (
            lazy.filter((pl.col("event_type") == "order") & (_day() > since) & (_day() <= cutoff))
            .select("customer_id")
            .unique()
            .collect()
        )
    window = lazy.filter(_in_window(cutoff, horizon))
    ordered = window.filter(pl.col("event_type") == "order")
    cancelled = window.filter(pl.col("event_type") == "cancel")
    return (
        _with_flag(population, ordered, "_ordered")
        .join(_with_flag(population, cancelled, "_cancelled"), on="customer_id", how="left")
        .select(
            "customer_id",
            (~pl.col("_ordered") | pl.col("_cancelled")).cast(pl.Int8).alias(LABEL),
        )
        .sort("customer_id")
        .collect()
    )


def repurchase_labels(
    events: pl.DataFrame,
    cutoff: date,
    horizon: int,
    population: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Repurchase labels for customers known at the cutoff.

    Parameters
    ----------
    events : polars.DataFrame
        Validated events.
    cutoff : datetime.date
        The cutoff day ``c``.
    horizon : int
        Label window length ``H`` in days: ``(c, c + H]``.
    population : polars.DataFrame, optional
        Customers to label (``customer_id`` column); defaults to :func:`known_customers`.

    Returns
    -------
    polars.DataFrame
        ``customer_id``, ``label`` (Int8: 1 = at least one order in the window), sorted by
        ``customer_id``.
    """
    _check_horizon(horizon)
    if population is None:
        population = known_customers(events, cutoff)
    ordered = events.lazy().filter(_in_window(cutoff, horizon) & (pl.col("event_type") == "order"))
    return (
        _with_flag(population, ordered, "_ordered")
        .select("customer_id", pl.col("_ordered").cast(pl.Int8).alias(LABEL))
        .sort("customer_id")
        .collect()
    )


def cross_sell_labels(
    events: pl.DataFrame,
    cutoff: date,
    horizon: int,
    categories: list[str],
    population: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Cross-sell labels: first purchase of a not-yet-bought category in the window.

    Parameters
    ----------
    events : polars.DataFrame
        Validated events; ``order`` categories are sanitised like the snapshot's columns
        (:func:`features.products.category_slug`) and rows with a null ``category`` are ignored.
    cutoff : datetime.date
        The cutoff day ``c``.
    horizon : int
        Label window length ``H`` in days: ``(c, c + H]``.
    categories : list of str
        Target categories (sanitised names).
    population : polars.DataFrame, optional
        Customers to label (``customer_id`` column); defaults to :func:`known_customers`.

    Returns
    -------
    polars.DataFrame
        ``customer_id``, ``category``, ``label`` (Int8), one row per customer and category the
        customer had not ordered by ``c``, sorted by ``customer_id`` then ``category``.
    """
    _check_horizon(horizon)
    if population is None:
        population = known_customers(events, cutoff)
    orders = (
        events.lazy()
        .filter(pl.col("event_type") == "order")
        .with_columns(category_slug(pl.col("category")).alias("category"))
        .filter(pl.col("category").is_in(categories))
    )
    bought_before = orders.filter(_day() <= cutoff).select("customer_id", "category").unique()
    bought_in = (
        orders.filter(_in_window(cutoff, horizon))
        .select("customer_id", "category")
        .unique()
        .with_columns(pl.lit(1, dtype=pl.Int8).alias(LABEL))
    )
    candidates = (
        population.lazy()
        .select("customer_id")
        .unique()
        .join(pl.LazyFrame({"category": categories}, schema={"category": pl.String}), how="cross")
        .join(bought_before, on=["customer_id", "category"], how="anti")
    )
    return (
        candidates.join(bought_in, on=["customer_id", "category"], how="left")
        .with_columns(pl.col(LABEL).fill_null(0))
        .sort("customer_id", "category")
        .collect()
    )


def labels_for(
    task: str,
    events: pl.DataFrame,
    cutoff: date,
    horizon: int,
    *,
    population: pl.DataFrame | None = None,
    categories: list[str] | None = None,
    active_days: int = 365,
) -> pl.DataFrame:
    """Labels of one task at one cutoff (dispatches to the task's function).

    Parameters
    ----------
    task : str
        ``"churn"``, ``"repurchase"`` or ``"cross_sell"``.
    events : polars.DataFrame
        Validated events.
    cutoff : datetime.date
        The cutoff day.
    horizon : int
        Label window length in days.
    population : polars.DataFrame, optional
        Candidate customers (``customer_id``). For churn they are further restricted to customers
        active at the cutoff.
    categories : list of str, optional
        Cross-sell target categories (required for ``cross_sell``).
    active_days : int, default 365
        Activity window of the churn population.

    Returns
    -------
    polars.DataFrame
        The task's labels (see the task functions).

    Raises
    ------
    ValueError
        If the task is unknown or cross-sell categories are missing.
    """
    if task == "churn":
        labels = churn_labels(events, cutoff, horizon, active_days=active_days)
        if population is not None:
            labels = labels.join(population.select("customer_id"), on="customer_id", how="semi")
        return labels
    if task == "repurchase":
        return repurchase_labels(events, cutoff, horizon, population=population)
    if task == "cross_sell":
        if categories is None:
            raise ValueError("cross_sell labels need the list of target categories")
        return cross_sell_labels(events, cutoff, horizon, categories, population=population)
    raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
