"""The value feature family: BG/NBD's P(alive) and expected purchases as model inputs.

The hybrid of the probabilistic and the machine-learned models: at a snapshot day (a training
cutoff, or the day served), BG/NBD is fitted on the purchase summaries of the events up to that
day only (:func:`features.value.repeat_purchase_summary`), and each customer's

* ``p_alive``: the probability of still being an active buyer, and
* ``expected_purchases_90d``: the purchases expected in the next 90 days

join the snapshot. They are registered in :mod:`features.contracts` (group ``value``, with
``fitted=True``: :func:`features.snapshot.build_snapshot` cannot compute them, since the model is
fitted over all customers of the day and :mod:`features` imports no model). A task's model reads
them only when its spec says so (:attr:`models.tasks.TaskSpec.value_inputs`), where they measurably
help on held-out data.

A customer without an order up to the day has neither (null, which the models treat as missing).
When the day's summaries cannot identify BG/NBD (no repeat buyer yet), every customer gets nulls
and the fitted parameters are None.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Final

import polars as pl

from features.value import repeat_purchase_summary
from models.clv._mle import ModelIdentificationError
from models.clv.bgnbd import BGNBD

__all__ = ["VALUE_FEATURES", "WINDOW_DAYS", "add_value_features", "value_features"]

logger = logging.getLogger(__name__)

WINDOW_DAYS: Final = 90
"""Days ahead that ``expected_purchases_90d`` covers."""

VALUE_FEATURES: Final = ("p_alive", f"expected_purchases_{WINDOW_DAYS}d")
"""The snapshot columns of the family, as registered."""


def value_features(
    events: pl.LazyFrame | pl.DataFrame,
    as_of: date,
) -> tuple[pl.DataFrame, dict[str, float] | None]:
    """Compute the value features of every customer with an order up to a day.

    Parameters
    ----------
    events : polars.LazyFrame or polars.DataFrame
        Validated events; only orders dated on or before ``as_of`` are read.
    as_of : datetime.date
        The day (a training cutoff, or the snapshot day).

    Returns
    -------
    features : polars.DataFrame
        ``customer_id`` and :data:`VALUE_FEATURES` (Float64), sorted by ``customer_id``.
    params : dict or None
        The fitted BG/NBD parameters (in days); None (and null features) when they cannot be
        identified.
    """
    summary = repeat_purchase_summary(events, as_of)
    x, tx, t = summary["frequency"], summary["recency"], summary["T"]
    model: BGNBD | None
    try:
        model = BGNBD().fit(x, tx, t) if summary.height else None
    except ModelIdentificationError as error:
        logger.warning("no value features as of %s: %s", as_of, error)
        model = None
    if model is None:
        nulls = [pl.lit(None, pl.Float64).alias(name) for name in VALUE_FEATURES]
        return summary.select("customer_id", *nulls), None
    alive, ahead = VALUE_FEATURES
    frame = summary.select("customer_id").with_columns(
        pl.Series(alive, model.p_alive(x, tx, t), dtype=pl.Float64),
        pl.Series(
            ahead, model.conditional_expected_purchases(WINDOW_DAYS, x, tx, t), dtype=pl.Float64
        ),
    )
    return frame, model.params_


def add_value_features(
    snapshot: pl.DataFrame,
    events: pl.LazyFrame | pl.DataFrame,
    as_of: date,
) -> tuple[pl.DataFrame, dict[str, float] | None]:
    """Join the value features onto a snapshot of the same day.

    Parameters
    ----------
    snapshot : polars.DataFrame
        A feature snapshot as of ``as_of`` (any value features it holds are replaced).
    events : polars.LazyFrame or polars.DataFrame
        The validated events it was built from.
    as_of : datetime.date
        The snapshot day.

    Returns
    -------
    snapshot : polars.DataFrame
        The snapshot, rows in the same order, with :data:`VALUE_FEATURES` last (null for
        customers without an order).
    params : dict or None
        The BG/NBD parameters used, None when they cannot be identified.
    """
    features, used = value_features(events, as_of)
    kept = snapshot.drop(VALUE_FEATURES, strict=False)
    return kept.join(features, on="customer_id", how="left", maintain_order="left"), used
