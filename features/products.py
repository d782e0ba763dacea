"""Products: how many categories a customer buys and, per category, orders and spend share.

Category names become column names, so they are sanitised: accents are dropped (Unicode NFKD,
combining marks removed), letters lowered, every run of characters outside ``[a-z0-9]`` becomes
one ``_``, leading and trailing ``_`` are stripped, and a name left empty becomes ``"other"``
(``"Home & Garden"`` -> ``home_garden``, ``"Crème Brûlée"`` -> ``creme_brulee``). Raw names
that sanitise alike are one category. Orders without a category count in the spend (the share's
denominator) but in no category.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

import polars as pl

from features.contracts import FEATURES
from features.window import ID, rate

__all__ = [
    "category_names",
    "category_orders",
    "category_slug",
    "category_slugs",
    "product_features",
]

_ORDERS: Final = FEATURES["cat_{category}_orders"]
_SHARE: Final = FEATURES["cat_{category}_share"]


def category_slug(name: pl.Expr) -> pl.Expr:
    """Sanitise category names to ``[a-z0-9_]`` (see the module docstring).

    Parameters
    ----------
    name : polars.Expr
        String expression; nulls stay null.

    Returns
    -------
    polars.Expr
        The sanitised names.
    """
    slug = (
        name.str.normalize("NFKD")
        .str.replace_all(r"\p{M}+", "")
        .str.to_lowercase()
        .str.replace_all(r"[^a-z0-9]+", "_")
        .str.strip_chars("_")
    )
    return pl.when(slug == "").then(pl.lit("other")).otherwise(slug)


def category_slugs(names: Iterable[str]) -> list[str]:
    """Sanitise category names, dropping repeats and keeping the first-seen order.

    Parameters
    ----------
    names : iterable of str
        Raw or already sanitised category names.

    Returns
    -------
    list of str
        The distinct sanitised names.
    """
    slugs = pl.Series("category", list(names), dtype=pl.String).to_frame()
    return (
        slugs.select(category_slug(pl.col("category")).unique(maintain_order=True))
        .to_series()
        .to_list()
    )


def category_names(events: pl.LazyFrame) -> dict[str, str]:
    """Return the sanitised name of each raw category name of the orders among the events.

    Parameters
    ----------
    events : polars.LazyFrame
        Events from :func:`features.window.prepare_events`.

    Returns
    -------
    dict of str to str
        Raw name to sanitised name (:func:`category_slug`); orders without a category are left
        out. ``sorted(set(names.values()))`` are the categories seen.
    """
    raw = (
        events.filter(pl.col("event_type") == "order")
        .select(pl.col("category").drop_nulls().unique())
        .collect()
        .with_columns(category_slug(pl.col("category")).alias("slug"))
    )
    return dict(zip(raw["category"].to_list(), raw["slug"].to_list(), strict=True))


def category_orders(events: pl.LazyFrame, names: dict[str, str]) -> pl.LazyFrame:
    """Aggregate orders per customer and sanitised category (null for orders without one).

    Parameters
    ----------
    events : polars.LazyFrame
        Events from :func:`features.window.prepare_events`.
    names : dict of str to str
        :func:`category_names` of the same events.

    Returns
    -------
    polars.LazyFrame
        ``customer_id``, ``category``, ``orders`` (count), ``spend`` (sum of ``amount``).
    """
    slug = pl.col("category").replace_strict(names, default=None, return_dtype=pl.String)
    return (
        events.filter(pl.col("event_type") == "order")
        .group_by(ID, slug)
        .agg(pl.len().cast(pl.Int64).alias("orders"), pl.col("amount").sum().alias("spend"))
    )


def product_features(per_category: pl.LazyFrame, categories: Sequence[str]) -> pl.LazyFrame:
    """Turn per-category order totals into one row per customer.

    Parameters
    ----------
    per_category : polars.LazyFrame
        The output of :func:`category_orders`.
    categories : sequence of str
        Sanitised categories (:func:`category_slugs`) that get columns; a customer who never
        bought in one gets 0 orders and a share of 0 (null without any spend).

    Returns
    -------
    polars.LazyFrame
        ``customer_id``, ``categories_distinct``, then ``cat_{c}_orders`` and ``cat_{c}_share``
        for each category ``c``; one row per customer with orders.
    """
    category = pl.col("category")
    per_customer = per_category.group_by(ID).agg(
        # one row per customer and category, so the non-null rows are the distinct categories
        category.count().cast(pl.Int64).alias("categories_distinct"),
        pl.col("spend").sum().alias("_spend"),
        *(
            pl.when(category == c).then(pl.col("orders")).sum().alias(f"_orders_{c}")
            for c in categories
        ),
        *(
            pl.when(category == c).then(pl.col("spend")).sum().alias(f"_spend_{c}")
            for c in categories
        ),
    )
    return per_customer.select(
        ID,
        "categories_distinct",
        *(
            expr
            for c in categories
            for expr in (
                pl.col(f"_orders_{c}").alias(_ORDERS.column(c)),
                rate(pl.col(f"_spend_{c}"), pl.col("_spend")).alias(_SHARE.column(c)),
            )
        ),
    )
