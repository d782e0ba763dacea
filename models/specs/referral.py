"""Referral: the chance that an active customer refers someone in the horizon.

Referring is the secondary behaviour of loyal customers. Population: customers with an order in
the days ``(c - active_days, c]`` (:data:`models.tasks.ACTIVE_BUYERS`), the same as churn's.
Label 1 when the customer has at least one ``referral`` event in the window ``(c, c + H]``.

The baseline is past referrals, "more than X referrals so far" (``referrals_total`` above X, X
searched on the training cutoffs): on the sample data (``guanxi data sample --customers 5000
--seed 42``, 90-day horizon, held-out cutoff 2025-10-02, 3,535 active customers, 131 referrers)
it ranked best of the simple rules tried: ROC-AUC 0.588 and PR-AUC 0.053, against 0.571 / 0.050
for referrals in the last 365 days, 0.574 / 0.044 for recency of the last order, 0.571 / 0.042
for the mean survey score and 0.564 / 0.051 for orders in the last 365 days.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import polars as pl

from models.labels import window_labels
from models.rules import FeatureThresholdRule
from models.tasks import ACTIVE_BUYERS, Baseline, TaskSpec

__all__ = ["SPEC", "referral_labels"]


def referral_labels(
    events: pl.DataFrame,
    cutoff: date,
    horizon: int,
    population: pl.DataFrame,
    categories: Sequence[str] = (),
) -> pl.DataFrame:
    """Referral labels: at least one ``referral`` event in the window.

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
        ``customer_id``, ``label`` (Int8: 1 = referred someone in the window), sorted by
        ``customer_id``.
    """
    return window_labels(
        events, cutoff, horizon, population, pl.col("referred"), referred=("referral",)
    )


SPEC = TaskSpec(
    name="referral",
    title="Referral",
    kind="binary",
    order=40,
    labels=referral_labels,
    population=ACTIVE_BUYERS,
    rules=(
        Baseline(
            "rule",
            FeatureThresholdRule(
                "referrals_total",
                "above",
                candidates=(0, 1, 2, 3, 5),
                missing=0.0,
                name="more than X referrals so far",
                setting="threshold_referrals",
            ),
            "Referrals rule",
        ),
    ),
    outcome="referral likelihood",
    purpose=(
        "Ranks customers who ordered in the last {active_days} days by the probability that they "
        "refer someone in the next {horizon} days, to choose whom to invite to a referral "
        "programme."
    ),
)
