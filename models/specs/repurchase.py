"""Repurchase: the chance that a customer orders at least once in the horizon.

Population: every customer known at the cutoff (an event on or before it). Label 1 when the
customer places at least one order in the window ``(c, c + H]``. Graded against the recency rule "no
order in the last X days", which flags ``recency_days`` at most X and ranks by fewer days.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import polars as pl

from models.labels import window_labels
from models.rules import FeatureThresholdRule
from models.tasks import Baseline, TaskSpec

__all__ = ["SPEC", "repurchase_labels"]


def repurchase_labels(
    events: pl.DataFrame,
    cutoff: date,
    horizon: int,
    population: pl.DataFrame,
    categories: Sequence[str] = (),
) -> pl.DataFrame:
    """Repurchase labels: at least one order in the window.

    Parameters
    ----------
    events : polars.DataFrame
        Validated events.
    cutoff : datetime.date
        The cutoff day ``c``.
    horizon : int
        Label window length ``H`` in days: ``(c, c + H]``.
    population : polars.DataFrame
        Customers to label (``customer_id``).
    categories : sequence of str, optional
        Not used.

    Returns
    -------
    polars.DataFrame
        ``customer_id``, ``label`` (Int8: 1 = at least one order in the window), sorted by
        ``customer_id``.
    """
    return window_labels(events, cutoff, horizon, population, pl.col("ordered"), ordered=("order",))


SPEC = TaskSpec(
    name="repurchase",
    title="Repurchase",
    kind="binary",
    order=20,
    labels=repurchase_labels,
    rules=(Baseline("rule", FeatureThresholdRule("recency_days", "at_most"), "Recency rule"),),
    outcome="repurchase likelihood",
    purpose=(
        "Ranks customers by the probability that they order at least once in the next {horizon} "
        "days, to time reminders and offers."
    ),
)
