"""Recency, frequency, monetary value and purchase rhythm, from ``order`` events.

Scores
------
``r_score``, ``f_score`` and ``m_score`` rank the customers who have at least one order in the
snapshot, on ``recency_days`` (fewer days is better), ``orders_total`` and ``spend_total``
(rounded to cents, so spends equal to the cent tie whatever amounts they add up from). With ``n``
such customers and ``rank`` a customer's 1-based rank from worst to best, tied customers sharing
the mean of their ranks (mid-rank),

    score = 1 + floor(5 * (rank - 1/2) / n)

(computed in integers as ``1 + (5 * (2 * rank - 1)) // (2 * n)``). Without ties this gives each
fifth of the customers one score; ties share a score and sit in the middle of their block (the many
one-order customers score 3 when they are 80% of all); a lone customer scores 3. The rule reads
only values, so row order does not matter. Customers without orders get null scores.

Segments
--------
``rfm_segment`` names the (``r_score``, ``f_score``) cell, following the usual RFM grid:

==================  =======  =======
segment             r_score  f_score
==================  =======  =======
champions           5        4-5
loyal               3-4      4-5
potential_loyalist  4-5      2-3
new                 5        1
promising           4        1
need_attention      3        3
about_to_sleep      3        1-2
at_risk             1-2      3-4
cant_lose           1-2      5
hibernating         2        1-2
lost                1        1-2
==================  =======  =======

Rhythm
------
Gaps are counted between distinct order days: ``gap_mean_days`` needs two order days,
``gap_std_days`` (sample standard deviation) three. ``overdue_ratio`` is
``recency_days / gap_mean_days``. The trends compare the last 90 days ``a`` with the 90 days
before ``b`` as ``(a - b) / (a + b)``: -1 (stopped), 0 (steady, or nothing in either period),
+1 (new activity).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import polars as pl

from features.contracts import RFM_WINDOWS
from features.window import AGE, ID, exact_sum, fixed, fixed_point, load, rate, within

__all__ = [
    "RFM_SCORES",
    "RFM_SEGMENTS",
    "SEGMENT_NAMES",
    "order_features",
    "rfm_segment",
    "score",
    "score_counts",
    "scores_among",
    "segment_name",
]

RFM_SEGMENTS: Final[tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]] = (
    ("champions", (5,), (4, 5)),
    ("loyal", (3, 4), (4, 5)),
    ("potential_loyalist", (4, 5), (2, 3)),
    ("new", (5,), (1,)),
    ("promising", (4,), (1,)),
    ("need_attention", (3,), (3,)),
    ("about_to_sleep", (3,), (1, 2)),
    ("at_risk", (1, 2), (3, 4)),
    ("cant_lose", (1, 2), (5,)),
    ("hibernating", (2,), (1, 2)),
    ("lost", (1,), (1, 2)),
)
"""(segment, r_scores, f_scores): each of the 25 score pairs falls in exactly one segment."""

SEGMENT_NAMES: Final[dict[str, str]] = {
    "champions": "champions",
    "loyal": "loyal",
    "potential_loyalist": "potential loyalists",
    "new": "new",
    "promising": "promising",
    "need_attention": "need attention",
    "about_to_sleep": "about to sleep",
    "at_risk": "at risk",
    "cant_lose": "can't lose",
    "hibernating": "hibernating",
    "lost": "lost",
}
"""How people read each segment (the values of ``rfm_segment`` are identifiers)."""


def segment_name(segment: str) -> str:
    """Name a segment for people, e.g. ``"cant_lose"`` -> ``"can't lose"``.

    Parameters
    ----------
    segment : str
        A value of ``rfm_segment``.

    Returns
    -------
    str
        Its name in :data:`SEGMENT_NAMES`; any other value with ``_`` read as a space.
    """
    return SEGMENT_NAMES.get(segment, segment.replace("_", " "))


RFM_SCORES: Final[dict[str, tuple[pl.Expr, bool]]] = {
    "r_score": (pl.col("recency_days"), False),
    "f_score": (pl.col("orders_total"), True),
    # rounded to cents, so spends equal to the cent tie whatever amounts they add up from
    "m_score": (pl.col("spend_total").round(2), True),
}
"""Score column -> (the measure it ranks, whether higher is better), over customers with orders."""


def _quintile(twice_rank: pl.Expr, n: pl.Expr) -> pl.Expr:
    """``1 + floor(5 * (rank - 1/2) / n)`` in integers, from twice the (mid-)rank."""
    return 1 + (5 * (twice_rank.cast(pl.Int64) - 1)) // (2 * n)


def score(measure: pl.Expr, *, higher_is_better: bool = True) -> pl.Expr:
    """Return the 1-5 quintile score of a measure over the rows of the frame (mid-rank rule).

    Parameters
    ----------
    measure : polars.Expr
        A non-null numeric expression, one value per customer.
    higher_is_better : bool
        Whether larger values earn higher scores.

    Returns
    -------
    polars.Expr
        ``1 + floor(5 * (rank - 1/2) / n)`` as ``Int64``, ``rank`` the mid-rank from worst
        (1) to best (``n``), ``n`` the number of rows.
    """
    twice_rank = (2 * measure.rank("average", descending=not higher_is_better)).round()
    return _quintile(twice_rank, pl.len().cast(pl.Int64))


def score_counts(counts: pl.DataFrame, *, higher_is_better: bool = True) -> pl.DataFrame:
    """Score each distinct value of a measure from how many rows hold it, as :func:`score` does.

    A row's mid-rank is the number of rows worse than it plus ``(ties + 1) / 2``, so the score of
    every row depends only on its value's count and the counts of worse values. This lets an
    engine that holds the rows in many pieces (the Spark engine) count values per piece, add
    the counts up and score all rows at once, without gathering the rows.

    Parameters
    ----------
    counts : polars.DataFrame
        ``value`` (distinct, non-null) and ``count`` (rows holding it, positive).
    higher_is_better : bool
        Whether larger values earn higher scores.

    Returns
    -------
    polars.DataFrame
        ``value`` and ``score`` (``Int64``), one row per distinct value: the score
        :func:`score` gives every row holding that value among all the counted rows.
    """
    count = pl.col("count").cast(pl.Int64)
    worse = count.cum_sum() - count
    return counts.sort("value", descending=not higher_is_better).select(
        "value", _quintile(2 * worse + count + 1, count.sum()).alias("score")
    )


def scores_among(rows: pl.DataFrame, population: pl.DataFrame) -> pl.DataFrame:
    """Score a few snapshot rows' RFM as if they were ranked with a population's customers.

    A snapshot built from one customer's events ranks that customer among itself (every score
    3); scored among the loaded snapshot's customers instead, it gets the scores it has there.

    Parameters
    ----------
    rows : polars.DataFrame
        Snapshot rows (``customer_id`` and the measures of :data:`RFM_SCORES`).
    population : polars.DataFrame
        The snapshot they are placed in; its rows of the same customers are left out.

    Returns
    -------
    polars.DataFrame
        ``rows`` with ``r_score``, ``f_score``, ``m_score`` and ``rfm_segment`` computed over
        the customers with orders of ``population`` plus ``rows`` (null for a row without orders).
    """
    others = population.join(rows.select("customer_id"), on="customer_id", how="anti")
    scored = rows
    for name, (measure, higher_is_better) in RFM_SCORES.items():
        values = pl.concat(
            [
                frame.filter(pl.col("orders_total") > 0).select(measure.alias("value"))
                for frame in (others, rows)
            ]
        )
        table = score_counts(
            values.group_by("value").agg(pl.len().alias("count")),
            higher_is_better=higher_is_better,
        )
        lookup = dict(table.iter_rows())
        scored = scored.with_columns(
            pl.when(pl.col("orders_total") > 0)
            .then(measure.replace_strict(lookup, default=None, return_dtype=pl.Int64))
            .cast(rows.schema[name])
            .alias(name)
        )
    return scored.with_columns(
        rfm_segment(pl.col("r_score"), pl.col("f_score")).alias("rfm_segment")
    )


def rfm_segment(r_score: pl.Expr, f_score: pl.Expr) -> pl.Expr:
    """Return the segment name of each (r, f) score pair, as in :data:`RFM_SEGMENTS`.

    Parameters
    ----------
    r_score, f_score : polars.Expr
        Integer scores 1-5 (null gives null).

    Returns
    -------
    polars.Expr
        String expression.
    """
    cells = {10 * r + f: name for name, rs, fs in RFM_SEGMENTS for r in rs for f in fs}
    return (10 * r_score + f_score).replace_strict(cells, default=None, return_dtype=pl.String)


def _trend(last: pl.Expr, before: pl.Expr) -> pl.Expr:
    """``(last - before) / (last + before)``, 0 when both are 0."""
    return pl.when(last + before > 0).then((last - before) / (last + before)).otherwise(0.0)


def _gaps(orders: pl.LazyFrame) -> pl.LazyFrame:
    """Mean and standard deviation of the gaps between a customer's distinct order days."""
    same_customer = pl.col(ID) == pl.col(ID).shift()
    return (
        orders.select(ID, AGE)
        .unique()
        .sort(ID, AGE)
        .with_columns(pl.when(same_customer).then(pl.col(AGE).diff()).alias("_gap"))
        .group_by(ID)
        .agg(
            pl.col("_gap").mean().alias("gap_mean_days"),
            pl.col("_gap").count().cast(pl.Int64).alias("_n"),
            pl.col("_gap").cast(pl.Int64).sum().alias("_sum"),
            (pl.col("_gap").cast(pl.Int64) ** 2).sum().alias("_squares"),
        )
        # the sample standard deviation from whole-number sums, so it is the same in any order
        .select(
            ID,
            "gap_mean_days",
            rate(
                pl.col("_n") * pl.col("_squares") - pl.col("_sum") ** 2,
                pl.col("_n") * (pl.col("_n") - 1),
            )
            .sqrt()
            .alias("gap_std_days"),
        )
    )


def order_features(events: pl.LazyFrame, extra: Sequence[pl.Expr] = ()) -> pl.LazyFrame:
    """Compute the RFM and purchase-rhythm features of customers with orders.

    Parameters
    ----------
    events : polars.LazyFrame
        Events from :func:`features.window.prepare_events`.
    extra : sequence of polars.Expr, optional
        Further aggregations over each customer's orders, computed in the same ``group_by``
        (the snapshot's :func:`features.products.product_aggregations`); the orders carry
        :func:`features.window.fixed_point` of ``amount`` and ``margin`` for them.

    Returns
    -------
    polars.LazyFrame
        One row per customer with at least one order (and the ``extra`` columns, and the
        :func:`features.window.load` of ``amount`` and ``margin`` for
        :func:`features.window.split_loads`);
        ``tenure_days`` is left to the snapshot, which also sees the other events and the
        signup date.
    """
    amount, margin = fixed("amount"), fixed("margin")
    orders = events.filter(pl.col("event_type") == "order").with_columns(
        fixed_point("amount"), fixed_point("margin")
    )
    per_customer = (
        orders.group_by(ID)
        .agg(
            pl.col(AGE).min().alias("recency_days"),
            *(within(n).sum().cast(pl.Int64).alias(f"orders_{n}d") for n in RFM_WINDOWS),
            pl.len().cast(pl.Int64).alias("orders_total"),
            *(exact_sum(pl.when(within(n)).then(amount)).alias(f"spend_{n}d") for n in RFM_WINDOWS),
            exact_sum(amount).alias("spend_total"),
            exact_sum(margin).alias("margin_total"),
            exact_sum(pl.when(within(365)).then(margin)).alias("margin_365d"),
            load("amount"),
            load("margin"),
            *extra,
        )
        .join(_gaps(orders), on=ID, how="left")
    )
    orders_90, orders_180 = pl.col("orders_90d"), pl.col("orders_180d")
    spend_90, spend_180 = pl.col("spend_90d"), pl.col("spend_180d")
    return per_customer.with_columns(
        rate(pl.col("spend_total"), pl.col("orders_total")).alias("avg_order_value"),
        *(
            score(measure, higher_is_better=higher).alias(name)
            for name, (measure, higher) in RFM_SCORES.items()
        ),
        rate(pl.col("recency_days"), pl.col("gap_mean_days")).alias("overdue_ratio"),
        _trend(orders_90, orders_180 - orders_90).alias("orders_trend_90d"),
        _trend(spend_90, spend_180 - spend_90).alias("spend_trend_90d"),
    ).with_columns(rfm_segment(pl.col("r_score"), pl.col("f_score")).alias("rfm_segment"))
