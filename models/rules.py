"""Baseline rules a model has to beat: fitted on the training cutoffs, scored on the held-out one.

Every rule follows one small interface (:class:`BaselineRule`, scikit-learn's estimator API plus
the events the rows come from), so training fits and scores a task's rules without knowing which
they are. A task's spec names its rules (:attr:`models.tasks.TaskSpec.rules`).

:class:`FeatureThresholdRule`
    "Flag the customers whose feature is above (or at most) X", e.g. "no order in the last X days"
    (``recency_days`` above X flags churn, at most X flags a repurchase). The rule ranks customers
    by the feature, so its ROC-AUC, PR-AUC and lift do not depend on ``X``. ``X`` is the decision
    threshold and is searched on the training cutoffs: the candidate with the best Youden's J
    (true-positive rate minus false-positive rate) wins. Its probabilities, for the Brier score and
    log loss, are the training positive rates on either side of ``X``. A missing value counts as
    ``missing`` (by default larger than any value: a customer who never ordered has the longest
    recency).
:class:`CategoryAffinityRule` (ranked tasks)
    "Customers who bought A also bought B": a (customer, B) row scores the highest share, among
    all customers who had bought a category A the customer bought, of those who had also bought B
    (all orders up to the row's cutoff). A customer who bought nothing scores B's popularity.
:class:`CategoryPopularityRule` (ranked tasks)
    The share of recent buyers (an order in the last ``window_days`` before the cutoff) who
    ordered the category in that window; every (customer, category) row scores its category's
    popularity at its cutoff.

The category rules give scores, not probabilities; for the Brier score and log loss their scores
are mapped to probabilities by an isotonic fit on the training rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any, Final, Literal, Protocol, Self

import numpy as np
import pandas as pd
import polars as pl
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.isotonic import IsotonicRegression

from features.products import category_slug
from models.labels import bought_categories, category_orders, order_categories

__all__ = [
    "DEFAULT_RECENCY_CANDIDATES",
    "POPULARITY_WINDOW_DAYS",
    "BaselineRule",
    "CategoryAffinityRule",
    "CategoryPopularityRule",
    "FeatureThresholdRule",
    "affinity_fallback",
    "category_affinity",
    "category_inputs",
    "category_lift",
    "category_popularity",
]

DEFAULT_RECENCY_CANDIDATES: Final[tuple[int, ...]] = (
    7, 14, 21, 30, 45, 60, 75, 90, 120, 150, 180, 240, 270, 365,
)  # fmt: skip

POPULARITY_WINDOW_DAYS: Final = 365
"""Default "recent" window of the category rules' popularity (:func:`category_popularity`), and
the window of the affinity rule's fallback that :func:`category_inputs` gives the model."""


class BaselineRule(Protocol):
    """What training needs of a baseline rule."""

    def fit(
        self,
        X: pd.DataFrame,  # noqa: N803
        y: np.ndarray,
        sample_weight: np.ndarray | None = None,
        *,
        events: pl.DataFrame | None = None,
    ) -> Self:
        """Fit on model rows (indexed by ``cutoff`` and the task's index) and their labels."""
        ...

    def decision_function(
        self,
        X: pd.DataFrame,  # noqa: N803
        *,
        events: pl.DataFrame | None = None,
    ) -> np.ndarray:
        """Ranking score, higher means likelier positive."""
        ...

    def predict_proba(
        self,
        X: pd.DataFrame,  # noqa: N803
        *,
        events: pl.DataFrame | None = None,
    ) -> np.ndarray:
        """Probability of 0 and of 1, shape ``(n, 2)``."""
        ...

    def describe(self) -> dict[str, Any]:
        """``name`` and the fitted settings, for the model card and the run parameters."""
        ...


class FeatureThresholdRule(ClassifierMixin, BaseEstimator):
    """Flag rows whose feature is above (or at most) a threshold searched on the training rows.

    Parameters
    ----------
    feature : str, default "recency_days"
        The model input the rule reads.
    direction : {"above", "at_most"}, default "above"
        ``"above"`` flags ``feature > X`` (higher ranks likelier), ``"at_most"`` flags
        ``feature <= X`` (lower ranks likelier).
    candidates : tuple of float, optional
        Values of ``X`` to search; defaults to :data:`DEFAULT_RECENCY_CANDIDATES`.
    missing : float, default inf
        Value a missing feature counts as.
    name : str, default "no order in the last X days"
        The rule in words, for the model card.
    setting : str, default "threshold_days"
        Name of the threshold in :meth:`describe`.

    Attributes
    ----------
    threshold_ : float
        The chosen ``X``.
    youden_j_ : float
        Training Youden's J (TPR - FPR) of the chosen ``X``.
    rates_ : tuple of float
        Training positive rate of rows not flagged and of rows flagged.
    classes_ : numpy.ndarray
        ``[0, 1]``.
    """

    def __init__(
        self,
        feature: str = "recency_days",
        direction: Literal["above", "at_most"] = "above",
        candidates: tuple[float, ...] | None = None,
        missing: float = np.inf,
        name: str = "no order in the last X days",
        setting: str = "threshold_days",
    ) -> None:
        self.feature = feature
        self.direction = direction
        self.candidates = candidates
        self.missing = missing
        self.name = name
        self.setting = setting

    def _values(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        if self.feature not in X.columns:
            raise KeyError(f"the rule {self.name!r} needs a {self.feature!r} column")
        v = X[self.feature].to_numpy(dtype=np.float64, na_value=np.nan)
        return np.where(np.isnan(v), self.missing, v)

    def _flag(self, values: np.ndarray, threshold: float) -> np.ndarray:
        return values > threshold if self.direction == "above" else values <= threshold

    def fit(
        self,
        X: pd.DataFrame,  # noqa: N803
        y: np.ndarray,
        sample_weight: np.ndarray | None = None,
        *,
        events: pl.DataFrame | None = None,
    ) -> Self:
        """Search ``X`` for the best weighted Youden's J on the given rows.

        Parameters
        ----------
        X : pandas.DataFrame
            Rows with the rule's feature column.
        y : numpy.ndarray
            0/1 labels.
        sample_weight : numpy.ndarray, optional
            Row weights.
        events : polars.DataFrame, optional
            Not used (the rule reads only the rows).

        Returns
        -------
        FeatureThresholdRule
            ``self``.

        Raises
        ------
        ValueError
            If ``direction`` is unknown.
        """
        if self.direction not in ("above", "at_most"):
            raise ValueError(f"direction must be 'above' or 'at_most', not {self.direction!r}")
        values = self._values(X)
        yb = np.asarray(y).astype(bool)
        w = np.ones(len(yb)) if sample_weight is None else np.asarray(sample_weight, float)
        positives, negatives = max(w[yb].sum(), 1e-12), max(w[~yb].sum(), 1e-12)
        best: tuple[float, float] = (-np.inf, 0.0)
        for threshold in self.candidates or DEFAULT_RECENCY_CANDIDATES:
            flag = self._flag(values, threshold)
            j = w[flag & yb].sum() / positives - w[flag & ~yb].sum() / negatives
            if j > best[0]:
                best = (j, threshold)
        self.youden_j_, self.threshold_ = float(best[0]), best[1]
        flag = self._flag(values, self.threshold_)
        self.rates_ = tuple(
            float(np.average(yb[mask], weights=w[mask])) if w[mask].sum() > 0 else float(yb.mean())
            for mask in (~flag, flag)
        )
        self.classes_ = np.array([0, 1])
        return self

    def decision_function(
        self,
        X: pd.DataFrame,  # noqa: N803
        *,
        events: pl.DataFrame | None = None,
    ) -> np.ndarray:
        """Ranking score: the feature (``"above"``) or its negation (``"at_most"``).

        Parameters
        ----------
        X : pandas.DataFrame
            Rows with the rule's feature column.
        events : polars.DataFrame, optional
            Not used.

        Returns
        -------
        numpy.ndarray
            Scores, higher means likelier positive; an infinite ``missing`` becomes one beyond
            the largest (or smallest) finite value.
        """
        values = self._values(X)
        finite = values[np.isfinite(values)]
        high = (finite.max() if finite.size else 0.0) + 1.0
        low = (finite.min() if finite.size else 0.0) - 1.0
        values = np.where(np.isposinf(values), high, np.where(np.isneginf(values), low, values))
        return values if self.direction == "above" else -values

    def predict(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        """Apply the rule with the fitted ``X``.

        Parameters
        ----------
        X : pandas.DataFrame
            Rows with the rule's feature column.

        Returns
        -------
        numpy.ndarray
            1 where the rule flags the row, else 0.
        """
        return self._flag(self._values(X), self.threshold_).astype(np.int64)

    def predict_proba(
        self,
        X: pd.DataFrame,  # noqa: N803
        *,
        events: pl.DataFrame | None = None,
    ) -> np.ndarray:
        """Training positive rate of the rule's side of ``X``.

        Parameters
        ----------
        X : pandas.DataFrame
            Rows with the rule's feature column.
        events : polars.DataFrame, optional
            Not used.

        Returns
        -------
        numpy.ndarray
            Shape ``(n, 2)``: probability of 0 and of 1.
        """
        p1 = np.where(self.predict(X) == 1, self.rates_[1], self.rates_[0])
        return np.column_stack([1.0 - p1, p1])

    def describe(self) -> dict[str, Any]:
        """Describe the fitted rule.

        Returns
        -------
        dict
            ``name``, the threshold under ``setting`` (an int when whole) and
            ``train_youden_j``.
        """
        threshold = self.threshold_
        whole = float(threshold).is_integer()
        return {
            "name": self.name,
            self.setting: int(threshold) if whole else float(threshold),
            "train_youden_j": round(self.youden_j_, 4),
        }


def _bought_with(bought: pl.LazyFrame) -> pl.LazyFrame:
    """Count the customers who bought each ordered pair of categories.

    ``category``, ``category_b``, ``_both`` (customers who bought both) and ``_buyers``
    (customers who bought ``category``).
    """
    buyers_of = bought.group_by("category").agg(pl.len().alias("_buyers"))
    return (
        bought.join(bought, on="customer_id", suffix="_b")
        .filter(pl.col("category") != pl.col("category_b"))
        .group_by("category", "category_b")
        .agg(pl.len().alias("_both"))
        .join(buyers_of, on="category")
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
    bought = bought_categories(events, cutoff, categories)
    both = _bought_with(bought).select(
        pl.col("category").alias("_from"),
        pl.col("category_b").alias("category"),
        (pl.col("_both") / pl.col("_buyers")).alias("affinity"),
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


def category_lift(
    events: pl.DataFrame, cutoff: date, categories: list[str]
) -> dict[str, dict[str, float]]:
    """How much more often the buyers of one category have bought another, as a ratio.

    Parameters
    ----------
    events : polars.DataFrame
        Validated events; orders on or before ``cutoff`` count.
    cutoff : datetime.date
        The cutoff day.
    categories : list of str
        Sanitised categories.

    Returns
    -------
    dict
        ``lift[b][a]`` = (share of the buyers of ``b`` who bought ``a``) / (share of all buyers
        who bought ``a``), for every pair bought together at least once; e.g. ``3.0``: buyers of
        shoes bought apparel three times as often as buyers in general. Buyers are the customers
        with an order in ``categories``.
    """
    bought = bought_categories(events, cutoff, categories)
    buyers = bought.select(pl.col("customer_id").n_unique()).collect().item()
    if buyers == 0:
        return {}
    share = bought.group_by("category").agg((pl.len() / buyers).alias("_share"))
    pairs = (
        _bought_with(bought)
        .join(share.rename({"category": "category_b"}), on="category_b")
        .select(
            "category",
            "category_b",
            (pl.col("_both") / pl.col("_buyers") / pl.col("_share")).alias("lift"),
        )
        .sort("category", "category_b")
        .collect()
    )
    lift: dict[str, dict[str, float]] = {}
    for b, a, value in pairs.iter_rows():
        lift.setdefault(b, {})[a] = float(value)
    return lift


def category_inputs(
    events: pl.DataFrame,
    cutoff: date,
    categories: list[str],
    horizon: int,
    window_days: int = POPULARITY_WINDOW_DAYS,
) -> dict[str, Any]:
    """Statistics of each category at a cutoff that a ranked model reads beside the customer.

    A model row is a (customer, candidate category); these say what is known of the candidate
    itself over all customers up to the cutoff, so the model gets the affinity rule's own score
    and more as inputs (:func:`models.tasks.model_frame` turns them into the row's
    :data:`models.tasks.CANDIDATE_INPUTS`). Training computes them at every cutoff from the
    events up to it; the model carries those of its training day for scoring.

    Parameters
    ----------
    events : polars.DataFrame
        Validated events; orders on or before ``cutoff`` count.
    cutoff : datetime.date
        The cutoff day ``c``.
    categories : list of str
        Sanitised categories.
    horizon : int
        The label window ``H`` in days (for the season).
    window_days : int, default :data:`POPULARITY_WINDOW_DAYS`
        The affinity rule's popularity window (:class:`CategoryAffinityRule`), for
        ``recent_popularity``; training passes the task's
        :attr:`models.tasks.TaskSpec.popularity_window_days`, the window its spec builds the
        rule with.

    Returns
    -------
    dict
        ``popularity``: category to the share of buyers (customers with an order in
        ``categories``) who bought it, over all time; ``recent_popularity``: category to the
        affinity rule's score for a customer who bought nothing, :func:`category_popularity`
        over the last ``window_days`` days (read it with :func:`affinity_fallback`);
        ``co_bought``: ``a`` to ``b`` to the share of ``a``'s buyers who bought ``b`` (pairs
        bought together at least once); ``season``: category to its share of category orders
        in last year's days ``(c - 364, c - 364 + H]`` over its share in the year
        ``(c - 364, c]`` (1.0 when either is unknown), i.e. how much more the category sells in
        the season the label window covers.
    """
    bought = bought_categories(events, cutoff, categories)
    buyers = bought.select(pl.col("customer_id").n_unique()).collect().item()
    counts = dict(bought.group_by("category").agg(pl.len()).collect().iter_rows())
    pairs = _bought_with(bought).collect()
    co_bought: dict[str, dict[str, float]] = {}
    for a, b, both, of_a in pairs.select("category", "category_b", "_both", "_buyers").iter_rows():
        co_bought.setdefault(a, {})[b] = both / of_a
    year_start = cutoff - timedelta(days=364)
    day = pl.col("ts").dt.date()
    orders = category_orders(events, categories).filter((day > year_start) & (day <= cutoff))
    shares = (
        orders.group_by("category")
        .agg(
            pl.len().alias("_year"),
            (day <= year_start + timedelta(days=horizon)).sum().alias("_season"),
        )
        .with_columns(
            (pl.col("_season") / pl.col("_season").sum())
            / (pl.col("_year") / pl.col("_year").sum())
        )
        .collect()
    )
    found = {
        k: float(v)
        for k, v in shares.select("category", "_season").iter_rows()
        if v is not None and np.isfinite(v)
    }
    recent = category_popularity(events, cutoff, categories, window_days)
    return {
        "popularity": {k: counts.get(k, 0) / max(buyers, 1) for k in categories},
        "recent_popularity": {k: float(v) for k, v in recent.iter_rows()},
        "co_bought": co_bought,
        "season": {k: found.get(k, 1.0) for k in categories},
    }


def affinity_fallback(stats: Mapping[str, Any]) -> dict[str, float]:
    """Give the affinity rule's score of each category for a customer who bought nothing.

    Parameters
    ----------
    stats : mapping
        :func:`category_inputs` of a cutoff (a ranked model's ``metadata["category_inputs"]``).

    Returns
    -------
    dict
        Category to ``recent_popularity``, the rule's own fallback. Statistics saved before that
        key existed give ``popularity`` (over all time), the fallback their models were trained
        and scored with, so such a model scores as before.
    """
    fallback: dict[str, float] = stats.get("recent_popularity", stats.get("popularity", {}))
    return fallback


def category_popularity(
    events: pl.DataFrame,
    cutoff: date,
    categories: list[str],
    window_days: int = POPULARITY_WINDOW_DAYS,
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
    window_days : int, default :data:`POPULARITY_WINDOW_DAYS`
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


def _category_scores(events: pl.DataFrame, X: pd.DataFrame, window_days: int) -> pd.DataFrame:  # noqa: N803
    """Affinity and popularity of every (cutoff, customer, category) row of ``X``, in order.

    Every category ordered in ``events`` counts as a category a customer may have bought. A
    customer who bought nothing before the cutoff has no affinity; it gets the popularity.
    """
    rows = pl.from_pandas(X.index.to_frame(index=False)).with_row_index("_row")
    categories = order_categories(events)
    parts = [
        rows.filter(pl.col("cutoff") == cutoff)
        .join(
            category_affinity(events, cutoff, categories),
            on=["customer_id", "category"],
            how="left",
        )
        .join(
            category_popularity(events, cutoff, categories, window_days),
            on="category",
            how="left",
        )
        for cutoff in rows.get_column("cutoff").unique().sort().to_list()
    ]
    scores = (
        pl.concat(parts)
        .sort("_row")
        .select(pl.col("affinity").fill_null(pl.col("popularity")), "popularity")
    )
    return scores.to_pandas()


class _CategoryRule(ClassifierMixin, BaseEstimator):
    """A ranking rule over (cutoff, customer, category) rows, made a classifier by isotonic fit."""

    _column: str = ""

    def __init__(self, window_days: int = POPULARITY_WINDOW_DAYS) -> None:
        self.window_days = window_days

    def _score(self, X: pd.DataFrame, events: pl.DataFrame | None) -> np.ndarray:  # noqa: N803
        if events is None:
            raise ValueError(f"{type(self).__name__} scores rows from the events; pass events=")
        return _category_scores(events, X, self.window_days)[self._column].to_numpy()

    def fit(
        self,
        X: pd.DataFrame,  # noqa: N803
        y: np.ndarray,
        sample_weight: np.ndarray | None = None,
        *,
        events: pl.DataFrame | None = None,
    ) -> Self:
        """Map the rule's scores on the training rows to probabilities (isotonic fit).

        Parameters
        ----------
        X : pandas.DataFrame
            Rows indexed by ``cutoff``, ``customer_id`` and ``category``.
        y : numpy.ndarray
            0/1 labels.
        sample_weight : numpy.ndarray, optional
            Row weights.
        events : polars.DataFrame
            The events the rows were built from.

        Returns
        -------
        Self
            ``self``.
        """
        self.to_proba_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
            self._score(X, events), np.asarray(y), sample_weight=sample_weight
        )
        self.classes_ = np.array([0, 1])
        return self

    def decision_function(
        self,
        X: pd.DataFrame,  # noqa: N803
        *,
        events: pl.DataFrame | None = None,
    ) -> np.ndarray:
        """Score each row by the rule (see the module docstring).

        Parameters
        ----------
        X : pandas.DataFrame
            Rows indexed by ``cutoff``, ``customer_id`` and ``category``.
        events : polars.DataFrame
            The events the rows were built from.

        Returns
        -------
        numpy.ndarray
            Scores in [0, 1].
        """
        return self._score(X, events)

    def predict_proba(
        self,
        X: pd.DataFrame,  # noqa: N803
        *,
        events: pl.DataFrame | None = None,
    ) -> np.ndarray:
        """Probabilities of the rows' scores under the fitted isotonic map.

        Parameters
        ----------
        X : pandas.DataFrame
            Rows indexed by ``cutoff``, ``customer_id`` and ``category``.
        events : polars.DataFrame
            The events the rows were built from.

        Returns
        -------
        numpy.ndarray
            Shape ``(n, 2)``: probability of 0 and of 1.
        """
        p1 = np.asarray(self.to_proba_.predict(self._score(X, events)), dtype=np.float64)
        return np.column_stack([1.0 - p1, p1])


class CategoryAffinityRule(_CategoryRule):
    """The rule "bought A, also bought B"; who bought nothing gets the category popularity.

    Parameters
    ----------
    window_days : int, default :data:`POPULARITY_WINDOW_DAYS`
        The popularity window of the fallback.
    """

    _column = "affinity"

    def describe(self) -> dict[str, Any]:
        """Describe the rule.

        Returns
        -------
        dict
            ``name`` and ``popularity_window_days``.
        """
        return {
            "name": "bought A, also bought B (category affinity)",
            "popularity_window_days": self.window_days,
        }


class CategoryPopularityRule(_CategoryRule):
    """The category's share of recent buyers.

    Parameters
    ----------
    window_days : int, default :data:`POPULARITY_WINDOW_DAYS`
        The "recent" window.
    """

    _column = "popularity"

    def describe(self) -> dict[str, Any]:
        """Describe the rule.

        Returns
        -------
        dict
            ``name`` and ``window_days``.
        """
        return {"name": "category popularity", "window_days": self.window_days}
