"""Rule baselines a model has to beat.

``RecencyRule`` (churn, repurchase)
    "No order in the last X days". The rule ranks customers by ``recency_days`` (churn: higher is
    riskier; repurchase: lower is likelier), so its ROC-AUC, PR-AUC and lift do not depend on
    ``X``. ``X`` is the decision threshold and is searched on the training cutoffs: the candidate
    with the best Youden's J (true-positive rate minus false-positive rate) of "recency > X"
    (churn) or "recency <= X" (repurchase) wins. Its
    probabilities, for the Brier score and log loss, are the training positive rates on either side
    of ``X``. A customer who never ordered (missing recency) counts as having the longest recency.
``category_affinity`` (cross-sell, the rule the model is graded against)
    "Customers who bought A also bought B": a (customer, B) pair scores the highest share, among
    all customers who had bought a category A the customer bought, of those who had also bought B
    (all orders up to the cutoff). A customer who bought nothing scores B's popularity.
``category_popularity`` (cross-sell)
    The share of recent buyers (an order in the last ``window_days`` before the cutoff) who ordered
    the category in that window; every (customer, category) pair scores its category's popularity
    at its cutoff.

The cross-sell rules give scores, not probabilities; for the Brier score and log loss their
scores are mapped to probabilities by an isotonic fit on the training cutoffs (in
:mod:`training.train`).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Final, Self

import numpy as np
import pandas as pd
import polars as pl
from sklearn.base import BaseEstimator, ClassifierMixin

from features.products import category_slug

__all__ = [
    "DEFAULT_RECENCY_CANDIDATES",
    "RecencyRule",
    "category_affinity",
    "category_popularity",
]

DEFAULT_RECENCY_CANDIDATES: Final[tuple[int, ...]] = (
    7, 14, 21, 30, 45, 60, 75, 90, 120, 150, 180, 240, 270, 365,
)  # fmt: skip

_RECENCY: Final = "recency_days"


class RecencyRule(ClassifierMixin, BaseEstimator):
    """The "no order in the last X days" rule.

    Parameters
    ----------
    task : {"churn", "repurchase"}, default "churn"
        Direction of the rule: churn flags ``recency > X``, repurchase flags ``recency <= X``.
    candidates : tuple of int, optional
        Values of ``X`` (days) to search; defaults to :data:`DEFAULT_RECENCY_CANDIDATES`.

    Attributes
    ----------
    threshold_days_ : int
        The chosen ``X``.
    youden_j_ : float
        Training Youden's J (TPR - FPR) of the chosen ``X``.
    rates_ : tuple of float
        Training positive rate of rows not flagged and of rows flagged.
    classes_ : numpy.ndarray
        ``[0, 1]``.
    """

    def __init__(self, task: str = "churn", candidates: tuple[int, ...] | None = None) -> None:
        self.task = task
        self.candidates = candidates

    def _recency(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        if _RECENCY not in X.columns:
            raise KeyError(f"the recency rule needs a {_RECENCY!r} column")
        r = X[_RECENCY].to_numpy(dtype=np.float64, na_value=np.nan)
        return np.where(np.isnan(r), np.inf, r)

    def _flag(self, recency: np.ndarray, days: float) -> np.ndarray:
        return recency > days if self.task == "churn" else recency <= days

    def fit(
        self,
        X: pd.DataFrame,  # noqa: N803
        y: np.ndarray,
        sample_weight: np.ndarray | None = None,
    ) -> Self:
        """Search ``X`` (days) for the best weighted Youden's J on the given rows.

        Parameters
        ----------
        X : pandas.DataFrame
            Rows with a ``recency_days`` column.
        y : numpy.ndarray
            0/1 labels.
        sample_weight : numpy.ndarray, optional
            Row weights.

        Returns
        -------
        RecencyRule
            ``self``.

        Raises
        ------
        ValueError
            If the task is neither churn nor repurchase.
        """
        if self.task not in ("churn", "repurchase"):
            raise ValueError(f"the recency rule serves churn and repurchase, not {self.task!r}")
        recency = self._recency(X)
        yb = np.asarray(y).astype(bool)
        w = np.ones(len(yb)) if sample_weight is None else np.asarray(sample_weight, float)
        positives, negatives = max(w[yb].sum(), 1e-12), max(w[~yb].sum(), 1e-12)
        best: tuple[float, int] = (-np.inf, 0)
        for days in self.candidates or DEFAULT_RECENCY_CANDIDATES:
            flag = self._flag(recency, days)
            j = w[flag & yb].sum() / positives - w[flag & ~yb].sum() / negatives
            if j > best[0]:
                best = (j, days)
        self.youden_j_, self.threshold_days_ = float(best[0]), int(best[1])
        flag = self._flag(recency, self.threshold_days_)
        self.rates_ = tuple(
            float(np.average(yb[mask], weights=w[mask])) if w[mask].sum() > 0 else float(yb.mean())
            for mask in (~flag, flag)
        )
        self.classes_ = np.array([0, 1])
        return self

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        """Ranking score: ``recency`` for churn, ``-recency`` for repurchase.

        Parameters
        ----------
        X : pandas.DataFrame
            Rows with a ``recency_days`` column.

        Returns
        -------
        numpy.ndarray
            Scores, higher means likelier positive; never-ordered customers get the extreme.
        """
        recency = self._recency(X)
        finite = recency[np.isfinite(recency)]
        longest = (finite.max() if finite.size else 0.0) + 1.0
        recency = np.where(np.isfinite(recency), recency, longest)
        return recency if self.task == "churn" else -recency

    def predict(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        """Apply the rule with the fitted ``X``.

        Parameters
        ----------
        X : pandas.DataFrame
            Rows with a ``recency_days`` column.

        Returns
        -------
        numpy.ndarray
            1 where the rule flags the row, else 0.
        """
        return self._flag(self._recency(X), self.threshold_days_).astype(np.int64)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        """Training positive rate of the rule's side of ``X``.

        Parameters
        ----------
        X : pandas.DataFrame
            Rows with a ``recency_days`` column.

        Returns
        -------
        numpy.ndarray
            Shape ``(n, 2)``: probability of 0 and of 1.
        """
        p1 = np.where(self.predict(X) == 1, self.rates_[1], self.rates_[0])
        return np.column_stack([1.0 - p1, p1])


def _bought(events: pl.DataFrame, cutoff: date, categories: list[str]) -> pl.LazyFrame:
    """Distinct (customer, sanitised category) pairs ordered on or before the cutoff."""
    return (
        events.lazy()
        .filter((pl.col("event_type") == "order") & (pl.col("ts").dt.date() <= cutoff))
        .select("customer_id", category_slug(pl.col("category")).alias("category"))
        .filter(pl.col("category").is_in(categories))
        .unique()
    )


def category_affinity(events: pl.DataFrame, cutoff: date, categories: list[str]) -> pl.DataFrame:
    """Score every (customer, category) by the best "bought A, also bought B" share.

    Parameters
    ----------
    events : polars.DataFrame
        Validated events; orders on or before ``cutoff`` count.
    cutoff : datetime.date
        The cutoff day.
    categories : list of str
        Sanitised target categories.

    Returns
    -------
    polars.DataFrame
        ``customer_id``, ``category``, ``affinity`` (Float64 in [0, 1]) for every customer with
        at least one order in ``categories`` and every category (0.0 when no category the customer
        bought was ever bought together with it). Customers who bought nothing are absent; score
        them with :func:`category_popularity`.
    """
    bought = _bought(events, cutoff, categories)
    buyers_of = bought.group_by("category").agg(pl.len().alias("_buyers"))
    both = (
        bought.join(bought, on="customer_id", suffix="_b")
        .filter(pl.col("category") != pl.col("category_b"))
        .group_by("category", "category_b")
        .agg(pl.len().alias("_both"))
        .join(buyers_of, on="category")
        .select(
            pl.col("category").alias("_from"),
            pl.col("category_b").alias("category"),
            (pl.col("_both") / pl.col("_buyers")).alias("affinity"),
        )
    )
    customers = bought.select("customer_id").unique()
    grid = customers.join(
        pl.LazyFrame({"category": categories}, schema={"category": pl.String}), how="cross"
    )
    best = (
        bought.rename({"category": "_from"})
        .join(both, on="_from")
        .group_by("customer_id", "category")
        .agg(pl.col("affinity").max())
    )
    return (
        grid.join(best, on=["customer_id", "category"], how="left")
        .with_columns(pl.col("affinity").fill_null(0.0).cast(pl.Float64))
        .sort("customer_id", "category")
        .collect()
    )


def category_popularity(
    events: pl.DataFrame, cutoff: date, categories: list[str], window_days: int = 365
) -> pl.DataFrame:
    """Share of recent buyers who ordered each category.

    Parameters
    ----------
    events : polars.DataFrame
        Validated events.
    cutoff : datetime.date
        The cutoff day ``c``; orders in the days ``(c - window_days, c]`` count.
    categories : list of str
        Sanitised categories to report (a category nobody bought gets 0.0); order categories
        are sanitised with :func:`features.products.category_slug` before counting.
    window_days : int, default 365
        Length of the "recent" window.

    Returns
    -------
    polars.DataFrame
        ``category``, ``popularity`` (Float64 in [0, 1]), in ``categories`` order.
    """
    day = pl.col("ts").dt.date()
    recent = events.lazy().filter(
        (pl.col("event_type") == "order")
        & (day > cutoff - timedelta(days=window_days))
        & (day <= cutoff)
    )
    buyers = recent.select(pl.col("customer_id").n_unique()).collect().item()
    counts = (
        recent.with_columns(category_slug(pl.col("category")).alias("category"))
        .filter(pl.col("category").is_not_null())
        .group_by("category")
        .agg(pl.col("customer_id").n_unique().alias("_n"))
    )
    return (
        pl.LazyFrame({"category": categories}, schema={"category": pl.String})
        .join(counts, on="category", how="left", maintain_order="left")
        .select(
            "category",
            (pl.col("_n").fill_null(0) / max(buyers, 1)).cast(pl.Float64).alias("popularity"),
        )
        .collect()
    )
