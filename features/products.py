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
from features.window import exact_sum, fixed, rate

__all__ = [
    "category_names",
    "category_slug",
    "category_slugs",
    "product_aggregations",
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


def product_aggregations(names: dict[str, str], categories: Sequence[str]) -> list[pl.Expr]:
    """Return per-customer aggregations over order events for :func:`product_features`.

    They read a customer's ``order`` events only (with :func:`features.window.fixed_point` of
    ``amount``), so the snapshot adds them to the one ``group_by`` of
    :func:`features.rfm.order_features` instead of grouping the orders by
    customer and category and then again by customer: a category is picked by comparing the raw
    names that sanitise to it, no per-row name lookup.

    Parameters
    ----------
    names : dict of str to str
        :func:`category_names` of the same events.
    categories : sequence of str
        Sanitised categories (:func:`category_slugs`) that get columns.

    Returns
    -------
    list of polars.Expr
        ``_cat_orders_{c}`` (Int64 count) for every category seen or given and
        ``_cat_spend_{c}`` (sum of ``amount``) for each of ``categories``.
    """
    raw: dict[str, list[str]] = {slug: [] for slug in _every_category(names, categories)}
    for name, slug in names.items():
        raw[slug].append(name)

    def picks(slug: str) -> pl.Expr:
        return pl.any_horizontal(pl.col("category") == name for name in raw[slug])

    return [
        *(
            (picks(c).sum() if raw[c] else pl.lit(0)).cast(pl.Int64).alias(f"_cat_orders_{c}")
            for c in raw
        ),
        *(
            (exact_sum(pl.when(picks(c)).then(fixed("amount"))) if raw[c] else pl.lit(0.0))
            .cast(pl.Float64)
            .alias(f"_cat_spend_{c}")
            for c in categories
        ),
    ]


def _every_category(names: dict[str, str], categories: Sequence[str]) -> list[str]:
    """List the given categories, then those seen among the orders (``names``), no repeats."""
    return list(dict.fromkeys([*categories, *sorted(set(names.values()))]))


def product_features(
    per_customer: pl.LazyFrame, names: dict[str, str], categories: Sequence[str]
) -> pl.LazyFrame:
    """Turn the :func:`product_aggregations` of each customer into the product features.

    Parameters
    ----------
    per_customer : polars.LazyFrame
        One row per customer with orders: the :func:`product_aggregations` of the same
        ``names`` and ``categories`` and ``spend_total`` (the sum of the orders' ``amount``,
        uncategorised orders included: the share's denominator).
    names : dict of str to str
        :func:`category_names` of the events.
    categories : sequence of str
        Sanitised categories (:func:`category_slugs`) that get columns; a customer who never
        bought in one gets 0 orders and a share of 0 (null without any spend).

    Returns
    -------
    polars.LazyFrame
        ``per_customer`` with ``categories_distinct`` (how many categories the customer's orders
        fall in), ``cat_{c}_orders`` and ``cat_{c}_share`` for each category ``c``, and without
        the aggregations' own columns.
    """
    every = _every_category(names, categories)
    present = set(names.values())
    seen = [c for c in every if c in present]
    bought = [pl.col(f"_cat_orders_{c}") > 0 for c in seen]
    return per_customer.with_columns(
        (pl.sum_horizontal(bought) if bought else pl.lit(0))
        .cast(pl.Int64)
        .alias("categories_distinct"),
        *(
            expr
            for c in categories
            for expr in (
                pl.col(f"_cat_orders_{c}").alias(_ORDERS.column(c)),
                rate(pl.col(f"_cat_spend_{c}"), pl.col("spend_total")).alias(_SHARE.column(c)),
            )
        ),
    ).drop(*(f"_cat_orders_{c}" for c in every), *(f"_cat_spend_{c}" for c in categories))
