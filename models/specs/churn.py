"""Churn: the chance that an active customer places no order in the horizon (or cancels).

Population: customers *active* at the cutoff ``c``, i.e. with an order in the days
``(c - active_days, c]`` (:data:`models.tasks.ACTIVE_BUYERS`). Label 1 when the customer places no
order in the window ``(c, c + H]``, or has a ``cancel`` event in it (a cancellation is churn even
if an order follows). Graded against "no order in the last X days" (``recency_days`` above X).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import polars as pl

from models.labels import window_labels
from models.rules import FeatureThresholdRule
from models.tasks import ACTIVE_BUYERS, Baseline, TaskSpec

__all__ = ["SPEC", "churn_labels"]


def churn_labels(
    events: pl.DataFrame,
    cutoff: date,
    horizon: int,
    population: pl.DataFrame,
    categories: Sequence[str] = (),
) -> pl.DataFrame:
    """Churn labels: no order in the window, or a ``cancel`` in it.

    Parameters
    ----------
    events : polars.DataFrame
        Validated events.
    cutoff : datetime.date
        The cutoff day ``c``.
    horizon : int
        Label window length ``H`` in days: ``(c, c + H]``.
    population : polars.DataFrame
        Customers to label (``customer_id``): the active ones.
    categories : sequence of str, optional
        Not used.

    Returns
    -------
    polars.DataFrame
        ``customer_id``, ``label`` (Int8: 1 = no order in the window or a ``cancel`` in it), sorted
        by ``customer_id``.
    """
    return window_labels(
        events,
        cutoff,
        horizon,
        population,
        ~pl.col("ordered") | pl.col("cancelled"),
        ordered=("order",),
        cancelled=("cancel",),
    )


SPEC = TaskSpec(
    name="churn",
    title="Churn",
    kind="binary",
    order=10,
    labels=churn_labels,
    population=ACTIVE_BUYERS,
    rules=(Baseline("rule", FeatureThresholdRule("recency_days", "above"), "Recency rule"),),
    outcome="churn risk",
    retention_risk=True,
    season_link="loglog",
    purpose=(
        "Ranks customers who ordered in the last {active_days} days by the probability that they "
        "place no order (or cancel) in the next {horizon} days, to target retention offers."
    ),
)
