"""Task specifications: which rows and columns each model scores.

Three tasks share one feature snapshot (:func:`features.snapshot.build_snapshot`):

``churn``
    One row per customer; the model scores the probability that an active customer places no
    order in the next ``horizon`` days (or cancels).
``repurchase``
    One row per customer; the probability of at least one order in the next ``horizon`` days.
``cross_sell``
    One row per (customer, category) pair for every target category the customer has *not*
    bought yet (``cat_{category}_orders`` is 0 or missing); the probability of a first purchase
    of that category in the next ``horizon`` days.

Model inputs
------------
The customer part of a row is :func:`features.snapshot.model_input_columns`: the registered
features with ``model_input=True``, then the numeric columns the customers table passes through,
in snapshot order (identifiers, ``as_of`` and strings such as ``rfm_segment`` are not inputs).
Cross-sell rows add one indicator column per target category,
``target_{category}`` (1.0 for the row's category, else 0.0); together with the customer's
per-category shares (``cat_{category}_share``) trees learn the affinity between what a customer
bought and the target category.

:func:`model_frame` is what training, batch scoring and serving all call, so the model sees the
same columns everywhere. It never imports :mod:`training`.
"""

from __future__ import annotations

from typing import Final

import pandas as pd
import polars as pl

from features.contracts import CATEGORY_FEATURE_PREFIX, feature_info
from features.snapshot import model_input_columns

__all__ = [
    "BOUGHT_SUFFIX",
    "TARGET_PREFIX",
    "TASKS",
    "model_feature_names",
    "model_frame",
    "snapshot_categories",
]

TASKS: Final[tuple[str, ...]] = ("churn", "repurchase", "cross_sell")

BOUGHT_SUFFIX: Final = "_orders"
"""A customer has bought category ``c`` when ``cat_{c}_orders`` is positive."""

TARGET_PREFIX: Final = "target_"
"""Cross-sell indicator columns are named ``target_{category}``."""


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")


def snapshot_categories(snapshot: pl.DataFrame) -> list[str]:
    """Return the product categories that have a ``cat_{category}_orders`` column, sorted.

    Parameters
    ----------
    snapshot : polars.DataFrame
        A feature snapshot.

    Returns
    -------
    list of str
        Category names.
    """
    found = []
    for column in snapshot.columns:
        if column.startswith(CATEGORY_FEATURE_PREFIX) and column.endswith(BOUGHT_SUFFIX):
            try:
                category = feature_info(column).extra.get("category")
            except KeyError:
                continue
            if category is not None and column == _bought_column(category):
                found.append(category)
    return sorted(found)


def _bought_column(category: str) -> str:
    return f"{CATEGORY_FEATURE_PREFIX}{category}{BOUGHT_SUFFIX}"


def model_feature_names(
    task: str, snapshot: pl.DataFrame, categories: list[str] | None = None
) -> list[str]:
    """Return the model's input columns for a task, in order.

    Parameters
    ----------
    task : str
        One of :data:`TASKS`.
    snapshot : polars.DataFrame
        A feature snapshot (only its columns are read).
    categories : list of str, optional
        Cross-sell target categories; defaults to :func:`snapshot_categories`. Ignored for the
        other tasks.

    Returns
    -------
    list of str
        Customer features (:func:`features.snapshot.model_input_columns`), then for
        ``cross_sell`` one ``target_{category}`` indicator per category.

    Raises
    ------
    ValueError
        If the task is unknown.
    """
    _check_task(task)
    names = model_input_columns(snapshot)
    if task == "cross_sell":
        cats = snapshot_categories(snapshot) if categories is None else categories
        names += [f"{TARGET_PREFIX}{c}" for c in cats]
    return names


def model_frame(
    task: str,
    snapshot: pl.DataFrame,
    feature_names: list[str] | None = None,
    categories: list[str] | None = None,
) -> pd.DataFrame:
    """Turn a snapshot into the model's input rows.

    Parameters
    ----------
    task : str
        One of :data:`TASKS`.
    snapshot : polars.DataFrame
        A feature snapshot with a ``customer_id`` column, one row per customer.
    feature_names : list of str, optional
        Columns to return, in order (a model's ``feature_names``); defaults to
        :func:`model_feature_names`. A feature the snapshot lacks is filled with NaN (the model
        treats it as missing); a ``target_{category}`` column is always computed from the row's
        category (0.0 for categories not in ``categories``). Extra snapshot columns are ignored.
    categories : list of str, optional
        Cross-sell target categories (a model's ``categories``); defaults to
        :func:`snapshot_categories`. A category without a ``cat_{category}_orders`` column in the
        snapshot counts as not bought by anyone.

    Returns
    -------
    pandas.DataFrame
        Float64 columns in ``feature_names`` order. Index ``customer_id`` for ``churn`` and
        ``repurchase`` (snapshot row order); for ``cross_sell`` a ``(customer_id, category)``
        MultiIndex with one row per category the customer has not bought yet (snapshot row order,
        then ``categories`` order).

    Raises
    ------
    ValueError
        If the task is unknown or the snapshot has no ``customer_id`` column.
    """
    _check_task(task)
    if "customer_id" not in snapshot.columns:
        raise ValueError("snapshot has no 'customer_id' column")
    cats = snapshot_categories(snapshot) if categories is None else list(categories)
    names = (
        model_feature_names(task, snapshot, cats) if feature_names is None else list(feature_names)
    )
    target_of = {f"{TARGET_PREFIX}{c}": c for c in cats}
    customer_cols = [
        (pl.col(n) if n in snapshot.columns else pl.lit(None)).cast(pl.Float64).alias(n)
        for n in names
        if not n.startswith(TARGET_PREFIX)
    ]
    if task != "cross_sell":
        frame = snapshot.select("customer_id", *customer_cols)
        return frame.to_pandas().set_index("customer_id")

    bought = [
        pl.col(_bought_column(c)).fill_null(0) > 0
        if _bought_column(c) in snapshot.columns
        else pl.lit(False)
        for c in cats
    ]
    pairs = (
        snapshot.select(
            "customer_id",
            *customer_cols,
            (pl.concat_list(bought) if cats else pl.lit([], pl.List(pl.Boolean))).alias("_bought"),
            pl.lit(cats, dtype=pl.List(pl.String)).alias("category"),
        )
        .explode("_bought", "category")
        .filter(pl.col("category").is_not_null() & ~pl.col("_bought"))
        .with_columns(
            (pl.col("category") == target_of.get(n, "")).cast(pl.Float64).alias(n)
            for n in names
            if n.startswith(TARGET_PREFIX)
        )
        .select("customer_id", "category", *names)
    )
    return pairs.to_pandas().set_index(["customer_id", "category"])
