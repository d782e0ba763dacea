"""Profile features from the optional customers table.

``is_business`` and ``is_channel_partner`` are 0/1 from ``customer_type`` (0 when unknown);
``signup_tenure_days`` counts the days from the signup day to the snapshot day (null when the
signup is unknown or after the snapshot day); ``region`` is kept as text for people, not models.
Further columns of the table pass through unchanged: numeric and boolean ones are model inputs
(see :func:`features.snapshot.passthrough_columns`), others are kept for display.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from features.contracts import CUSTOMER_COLUMNS, FEATURES, is_feature
from features.window import ID

__all__ = ["profile_features"]

_KNOWN = {c.name: c.dtype for c in CUSTOMER_COLUMNS}


def _signup_day(customers: pl.DataFrame) -> pl.Expr:
    dtype = customers.schema["signup_ts"]
    if isinstance(dtype, pl.Datetime):
        return pl.col("signup_ts").dt.date()
    if isinstance(dtype, pl.Date | pl.Null):
        return pl.col("signup_ts").cast(pl.Date)
    raise TypeError(f"customers: column 'signup_ts' must be a datetime or date, got {dtype}")


def _check(customers: pl.DataFrame) -> None:
    if ID not in customers.columns:
        raise ValueError(f"customers: required column {ID!r} is missing")
    repeated = customers.filter(pl.col(ID).is_duplicated())[ID].unique().sort()
    if len(repeated):
        shown = ", ".join(repeated.head(5).to_list())
        raise ValueError(f"customers: {len(repeated)} customer_id values repeat, e.g. {shown}")
    clashes = [c for c in customers.columns if c not in _KNOWN and (c == "as_of" or is_feature(c))]
    if clashes:
        raise ValueError(f"customers: columns {clashes} clash with snapshot columns; rename them")


def profile_features(customers: pl.DataFrame | pl.LazyFrame | None, as_of: date) -> pl.DataFrame:
    """Compute the profile features and pass the table's further columns through.

    Parameters
    ----------
    customers : polars.DataFrame or polars.LazyFrame, optional
        One row per customer: ``customer_id`` and any of ``signup_ts``, ``customer_type``,
        ``region``, plus further columns. ``None`` gives an empty frame.
    as_of : datetime.date
        The snapshot day.

    Returns
    -------
    polars.DataFrame
        ``customer_id``, the profile features (registry group ``"profile"``), then the further
        columns in table order.

    Raises
    ------
    ValueError
        If ``customer_id`` is missing or repeats, or a further column clashes with a snapshot
        column.
    TypeError
        If ``signup_ts`` is neither a datetime nor a date.
    """
    if customers is None:
        customers = pl.DataFrame(schema={ID: pl.String()})
    table = customers.lazy().collect()
    _check(table)
    table = table.with_columns(
        pl.lit(None, dtype).alias(name) for name, dtype in _KNOWN.items() if name not in table
    )
    extras = [c for c in table.columns if c not in _KNOWN]
    kind = pl.col("customer_type")
    tenure = (pl.lit(as_of) - _signup_day(table)).dt.total_days()
    return table.select(
        pl.col(ID).cast(pl.String),
        (kind == "business").fill_null(False).cast(pl.Int64).alias("is_business"),
        (kind == "channel_partner").fill_null(False).cast(pl.Int64).alias("is_channel_partner"),
        pl.when(tenure >= 0).then(tenure).cast(pl.Int64).alias("signup_tenure_days"),
        pl.col("region").cast(pl.String),
        *extras,
    ).select(ID, *(n for n, f in FEATURES.items() if f.group == "profile"), *extras)
