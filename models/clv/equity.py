"""Value tiers, customer equity and equity at risk, on a table of per-customer values.

* **Value tier**: customers ranked by CLV, highest first. A customer's tier is set by the share of
  customers with a strictly higher CLV: under 1% ``top_1pct``, under 5% ``top_5pct``, under 20%
  ``top_20pct``, else ``rest``. Without ties the tiers hold ``ceil(0.01 n)``, ``ceil(0.05 n)``
  and ``ceil(0.20 n)`` customers cumulatively; tied customers share the better tier. Customers
  without a CLV get no tier and do not count in ``n``.
* **Customer equity**: the sum of CLV, overall or per group (RFM segment, value tier).
* **Equity at risk**: ``P(churn) x CLV`` per customer, summed; a customer without a churn
  probability adds nothing to it (and is counted in ``customers`` but not in ``scored``).
"""

from __future__ import annotations

from typing import Final

import polars as pl

__all__ = [
    "EQUITY_GROUPS",
    "VALUE_TIERS",
    "customer_equity",
    "equity_at_risk",
    "equity_tables",
    "top_equity_at_risk",
    "value_tier",
]

VALUE_TIERS: Final[tuple[tuple[str, float], ...]] = (
    ("top_1pct", 0.01),
    ("top_5pct", 0.05),
    ("top_20pct", 0.20),
    ("rest", 1.0),
)
"""(tier, share of customers with a higher CLV below which a customer is in it), best first."""

EQUITY_GROUPS: Final[tuple[str, ...]] = ("rfm_segment", "value_tier")
"""The columns customer equity is broken down by, beside the overall figure."""


def value_tier(clv: pl.Expr) -> pl.Expr:
    """Return each customer's value tier from their CLV, over the rows of the frame.

    Parameters
    ----------
    clv : polars.Expr
        CLV per customer (nulls get a null tier).

    Returns
    -------
    polars.Expr
        String expression named ``value_tier``: one of the names in :data:`VALUE_TIERS`.
    """
    above = (clv.rank("min", descending=True) - 1) / clv.count()
    *better, (rest, _) = VALUE_TIERS
    tier: pl.Expr = pl.lit(rest)
    for name, share in reversed(better):  # the best tier is tested first, so it wraps last
        tier = pl.when(above < share).then(pl.lit(name)).otherwise(tier)
    return pl.when(clv.is_not_null()).then(tier).alias("value_tier")


def equity_at_risk(churn_probability: pl.Expr, clv: pl.Expr) -> pl.Expr:
    """Return ``P(churn) x CLV`` per customer.

    Parameters
    ----------
    churn_probability, clv : polars.Expr
        Calibrated churn probability and CLV.

    Returns
    -------
    polars.Expr
        Float expression (null where either is null).
    """
    return churn_probability * clv


def customer_equity(
    values: pl.DataFrame,
    by: str | None = None,
    *,
    clv: str = "clv",
    churn_probability: str = "churn_probability",
) -> pl.DataFrame:
    """Sum CLV and equity at risk, overall or per group.

    Parameters
    ----------
    values : polars.DataFrame
        One row per customer with the ``clv`` and ``churn_probability`` columns (and ``by``).
    by : str, optional
        Column to group by (``rfm_segment``, ``value_tier``); None for one overall row.
    clv, churn_probability : str
        Column names.

    Returns
    -------
    polars.DataFrame
        ``by`` (when given, sorted by equity, largest first), ``customers``, ``scored``
        (customers with a churn probability), ``equity``, ``equity_share`` (of the overall
        equity), ``equity_at_risk``, ``risk_share`` (equity at risk / equity of the group) and
        ``mean_churn_probability``.
    """
    risk = equity_at_risk(pl.col(churn_probability), pl.col(clv))
    aggregations = (
        pl.len().alias("customers"),
        pl.col(churn_probability).count().alias("scored"),
        pl.col(clv).sum().alias("equity"),
        risk.sum().alias("equity_at_risk"),
        pl.col(churn_probability).mean().alias("mean_churn_probability"),
    )
    grouped = (
        values.select(aggregations)
        if by is None
        else values.group_by(by).agg(aggregations).sort("equity", by, descending=[True, False])
    )
    overall = values[clv].sum()
    return grouped.with_columns(
        (pl.col("equity") / overall if overall else pl.lit(None, pl.Float64)).alias("equity_share"),
        pl.when(pl.col("equity") != 0)
        .then(pl.col("equity_at_risk") / pl.col("equity"))
        .alias("risk_share"),
    ).select(
        *([by] if by else []),
        "customers",
        "scored",
        "equity",
        "equity_share",
        "equity_at_risk",
        "risk_share",
        "mean_churn_probability",
    )


def equity_tables(
    values: pl.DataFrame, *, revenue: str = "revenue_365d"
) -> dict[str, pl.DataFrame]:
    """Return customer equity overall and per group of :data:`EQUITY_GROUPS`, with revenue.

    Parameters
    ----------
    values : polars.DataFrame
        A value table (:mod:`models.clv.customers`): ``clv``, ``churn_probability``, the group
        columns and ``revenue``.
    revenue : str, default "revenue_365d"
        Column of each customer's trailing revenue.

    Returns
    -------
    dict of str to polars.DataFrame
        ``overall`` (one row) and one table per group column, each the :func:`customer_equity`
        columns plus ``revenue`` (summed) and ``mean_clv``; a group whose key is null (no RFM
        segment, no CLV so no tier) is a row with a null key, so every group table sums to the
        overall figures.
    """
    extra = (pl.col(revenue).sum().alias("revenue"), pl.col("clv").mean().alias("mean_clv"))
    tables = {
        "overall": pl.concat([customer_equity(values), values.select(extra)], how="horizontal")
    }
    for by in EQUITY_GROUPS:
        tables[by] = customer_equity(values, by).join(
            values.group_by(by).agg(extra),
            on=by,
            how="left",
            nulls_equal=True,
            maintain_order="left",
        )
    return tables


def top_equity_at_risk(
    values: pl.DataFrame,
    share: float = 0.5,
    *,
    clv: str = "clv",
    churn_probability: str = "churn_probability",
) -> pl.DataFrame:
    """Return the fewest customers who together carry ``share`` of the equity at risk.

    Parameters
    ----------
    values : polars.DataFrame
        One row per customer with ``customer_id``, ``clv`` and ``churn_probability``.
    share : float, default 0.5
        Share of the total equity at risk to cover (0 to 1).
    clv, churn_probability : str
        Column names.

    Returns
    -------
    polars.DataFrame
        The input rows with ``equity_at_risk`` and ``cumulative_share`` added, largest equity at
        risk first (ties by ``customer_id``), down to the first row whose cumulative share
        reaches ``share``; empty when nothing is at risk.
    """
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share!r}")
    ranked = (
        values.with_columns(
            equity_at_risk(pl.col(churn_probability), pl.col(clv)).alias("equity_at_risk")
        )
        .filter(pl.col("equity_at_risk") > 0)
        .sort(["equity_at_risk", "customer_id"], descending=[True, False])
    )
    total = ranked["equity_at_risk"].sum()
    if not total:
        return ranked.with_columns(pl.lit(None, pl.Float64).alias("cumulative_share"))
    ranked = ranked.with_columns(
        (pl.col("equity_at_risk").cum_sum() / total).alias("cumulative_share")
    )
    before = ranked["cumulative_share"].shift(1, fill_value=0.0)
    return ranked.filter(before < share - 1e-12)
