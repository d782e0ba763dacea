"""Held-out metrics of a classifier and the grade against its baseline rule.

Metrics
-------
``roc_auc`` and ``pr_auc`` (average precision) rank rows by a score; ``brier`` and ``log_loss``
judge probabilities, and so do the two calibration figures of :func:`calibration_error`: ``ece``
(expected calibration error: over :data:`CALIBRATION_BINS` equal-width probability bins, the
row-weighted mean of ``|mean predicted - observed rate|``) and ``max_bin_gap`` (the largest such
gap among the bins of at least :data:`MIN_BIN_ROWS` rows; a bin of 3 rows says nothing, so it is
never the headline). ``top_decile_lift`` is the positive rate among the 10 % highest-scored rows
divided by the overall positive rate. Deciles are formed by rank
(:func:`models.ranking.rank_bins`: highest score first, ties keep row order), so decile sizes
differ by at most one row.

Ranked tasks add ``precision@k`` and ``recall@k`` per customer: a customer's candidate categories
are ranked by score and the top ``k`` kept; precision is hits / k, recall is hits / the customer's
positives, both averaged over the customers with at least one positive; and ``ndcg@3``, the
normalised discounted cumulative gain of the top three (binary relevance, ``1 / log2(rank + 1)``),
averaged over the same customers. A marketer acts on a customer's top one to three categories, so
these, not ROC-AUC over every (customer, category) row, grade a ranked task (:func:`ranked_grade`).

Grade
-----
The calibrated model is graded against the task's first baseline rule on the held-out cutoff (e.g.
"no order in the last X days" for churn, the category-affinity rule "bought A, also bought B" for
cross-sell), in the spirit of Dynamics 365 Customer Insights, which grades churn models against a
"no purchase in X days" rule:

``A``
    ROC-AUC at least :data:`GRADE_A_AUC_GAIN` (0.05) above the baseline's and PR-AUC at least
    :data:`GRADE_A_PR_RATIO` (1.10) times the baseline's.
``B``
    ROC-AUC at least :data:`GRADE_B_AUC_GAIN` (0.01) above the baseline's and PR-AUC no worse.
``C``
    Anything else: the model is not clearly better than the rule; use the rule or get more data.

A ranked task is graded on the ranking its users act on (:func:`ranked_grade`):

``A``
    precision@3, precision@1 and NDCG@3 each at least :data:`GRADE_RANKED_RATIO` (1.10) times
    the rule's.
``B``
    precision@3 at least 1.10 times the rule's.
``C``
    Anything else: the rule ranks a customer's top categories as well; the model is not promoted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from models.ranking import rank_bins

__all__ = [
    "BINARY_METRICS",
    "CALIBRATION_BINS",
    "GRADE_A_AUC_GAIN",
    "GRADE_A_PR_RATIO",
    "GRADE_B_AUC_GAIN",
    "GRADE_RANKED_RATIO",
    "GRADE_RULES",
    "MIN_BIN_ROWS",
    "RANKED_METRICS",
    "Evaluator",
    "binary_evaluation",
    "binary_metrics",
    "calibration_error",
    "grade",
    "ranked_evaluation",
    "ranked_grade",
    "reliability_bins",
    "top_decile_lift",
    "top_k_metrics",
]

GRADE_A_AUC_GAIN: Final = 0.05
GRADE_A_PR_RATIO: Final = 1.10
GRADE_B_AUC_GAIN: Final = 0.01
GRADE_RANKED_RATIO: Final = 1.10

GRADE_RULES: Final[dict[str, str]] = {
    "binary": (
        f"A: ROC-AUC at least {GRADE_A_AUC_GAIN} above the baseline and PR-AUC at least "
        f"{GRADE_A_PR_RATIO:.2f} x the baseline's; B: ROC-AUC at least {GRADE_B_AUC_GAIN} above "
        "the baseline and PR-AUC no worse; C: not clearly better than the baseline."
    ),
    "ranked": (
        f"A: precision@3, precision@1 and NDCG@3 per customer each at least "
        f"{GRADE_RANKED_RATIO:.2f} x the rule's; B: precision@3 at least {GRADE_RANKED_RATIO:.2f} "
        "x the rule's; C: the rule ranks a customer's top categories as well or better, the model "
        "is not promoted (use the rule)."
    ),
}
"""The grade's thresholds in words, per grade function (``binary``: :func:`grade`, ``ranked``:
:func:`ranked_grade`), as the model card prints them."""

CALIBRATION_BINS: Final = 10
"""Equal-width probability bins of the reliability curve and of :func:`calibration_error`."""

MIN_BIN_ROWS: Final = 100
"""Least rows of a bin whose gap may be the headline ``max_bin_gap``."""

BINARY_METRICS: Final[tuple[str, ...]] = (
    "roc_auc",
    "pr_auc",
    "top_decile_lift",
    "brier",
    "log_loss",
    "ece",
    "max_bin_gap",
)
"""Metrics shown for a classifier, in order."""

TOP_K: Final[tuple[int, ...]] = (1, 3)
RANKED_METRICS: Final[tuple[str, ...]] = (
    *(f"{m}@{k}" for k in TOP_K for m in ("precision", "recall")),
    "ndcg@3",
    *BINARY_METRICS,
)
"""Metrics shown for a ranked task: precision and recall at k and NDCG@3 (graded), then the
classifier's (for information)."""

Evaluator = Callable[[np.ndarray, np.ndarray, np.ndarray | None, pd.Index], dict[str, float]]
"""``evaluate(y, score, proba, index)``: held-out metrics of one model on rows with ``index``."""

_EPS: Final = 1e-15


def top_decile_lift(y: np.ndarray, score: np.ndarray) -> float:
    """Positive rate of the top 10 % of rows by score over the overall positive rate.

    Parameters
    ----------
    y : numpy.ndarray
        0/1 labels.
    score : numpy.ndarray
        Scores, higher means likelier positive.

    Returns
    -------
    float
        The lift; NaN when there are no positives.
    """
    yv = np.asarray(y, dtype=np.float64)
    if yv.size == 0 or yv.sum() == 0:
        return float("nan")
    top = rank_bins(score, 10) == 1
    return float(yv[top].mean() / yv.mean())


def calibration_error(
    y: np.ndarray,
    proba: np.ndarray,
    n_bins: int = CALIBRATION_BINS,
    min_rows: int = MIN_BIN_ROWS,
) -> dict[str, float]:
    """Measure the expected calibration error and the largest gap among populated bins.

    Bins are equal-width on [0, 1] with edges ``linspace(0, 1, n_bins + 1)``; a probability on
    an inner edge falls in the lower bin (as :func:`sklearn.calibration.calibration_curve`).

    Parameters
    ----------
    y : numpy.ndarray
        0/1 labels.
    proba : numpy.ndarray
        Predicted probabilities.
    n_bins : int, default 10
        Number of bins.
    min_rows : int, default 100
        Least rows of a bin that counts for ``max_bin_gap``.

    Returns
    -------
    dict of str to float
        ``ece``: sum over bins of ``rows / n * |mean predicted - observed rate|`` (NaN without
        rows); ``max_bin_gap``: the largest ``|mean predicted - observed rate|`` among bins of at
        least ``min_rows`` rows (NaN when no bin has that many).
    """
    p = np.clip(np.asarray(proba, dtype=np.float64), 0.0, 1.0)
    if len(p) == 0:
        return {"ece": float("nan"), "max_bin_gap": float("nan")}
    bins = reliability_bins(y, p, n_bins)
    rows = np.array([n for *_, n in bins], dtype=np.float64)
    gap = np.array([abs(predicted - observed) for predicted, observed, _ in bins])
    populated = rows >= min_rows
    return {
        "ece": float(np.sum(rows * gap) / len(p)),
        "max_bin_gap": float(gap[populated].max()) if populated.any() else float("nan"),
    }


def reliability_bins(
    y: np.ndarray, proba: np.ndarray, n_bins: int = CALIBRATION_BINS
) -> list[tuple[float, float, int]]:
    """Reliability bins: mean predicted probability, observed rate and rows per non-empty bin.

    Bins are equal-width on [0, 1] with edges ``linspace(0, 1, n_bins + 1)``; a probability on
    an inner edge falls in the lower bin (as :func:`sklearn.calibration.calibration_curve`), a
    probability of exactly 1 in the last.

    Parameters
    ----------
    y : numpy.ndarray
        0/1 labels.
    proba : numpy.ndarray
        Predicted probabilities (clipped to [0, 1]).
    n_bins : int, default 10
        Number of bins.

    Returns
    -------
    list of (float, float, int)
        ``(mean_predicted, observed_rate, rows)`` per bin that holds a row, lowest bin first.
    """
    p = np.clip(np.asarray(proba, dtype=np.float64), 0.0, 1.0)
    yv = np.asarray(y, dtype=np.float64)
    which = np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], p)
    rows = np.bincount(which, minlength=n_bins)
    predicted = np.bincount(which, weights=p, minlength=n_bins)
    observed = np.bincount(which, weights=yv, minlength=n_bins)
    return [
        (float(predicted[b] / rows[b]), float(observed[b] / rows[b]), int(rows[b]))
        for b in range(n_bins)
        if rows[b]
    ]


def binary_metrics(
    y: np.ndarray, score: np.ndarray, proba: np.ndarray | None = None
) -> dict[str, float]:
    """Ranking and probability metrics of one model on one set of rows.

    Parameters
    ----------
    y : numpy.ndarray
        0/1 labels.
    score : numpy.ndarray
        Ranking score (a probability or any monotone score, e.g. recency for the rule).
    proba : numpy.ndarray, optional
        Probabilities for ``brier`` and ``log_loss``; defaults to ``score``.

    Returns
    -------
    dict of str to float
        ``n``, ``positive_rate``, ``roc_auc``, ``pr_auc``, ``top_decile_lift``, ``brier``,
        ``log_loss``, ``ece`` and ``max_bin_gap`` (:func:`calibration_error` of the
        probabilities; ranking metrics are NaN when only one class is present).
    """
    yv = np.asarray(y, dtype=np.int64)
    s = np.asarray(score, dtype=np.float64)
    p = np.clip(np.asarray(s if proba is None else proba, dtype=np.float64), _EPS, 1 - _EPS)
    both = 0 < yv.sum() < len(yv)
    return {
        "n": float(len(yv)),
        "positive_rate": float(yv.mean()) if len(yv) else float("nan"),
        "roc_auc": float(roc_auc_score(yv, s)) if both else float("nan"),
        "pr_auc": float(average_precision_score(yv, s)) if both else float("nan"),
        "top_decile_lift": top_decile_lift(yv, s),
        "brier": float(brier_score_loss(yv, p)),
        "log_loss": float(log_loss(yv, p, labels=[0, 1])),
    } | calibration_error(yv, p)


def top_k_metrics(
    customer_ids: np.ndarray, y: np.ndarray, score: np.ndarray, ks: tuple[int, ...] = TOP_K
) -> dict[str, float]:
    """Per-customer precision@k and recall@k of a ranking of candidate categories.

    Parameters
    ----------
    customer_ids : numpy.ndarray
        The customer of each (customer, category) row.
    y : numpy.ndarray
        0/1 labels of the rows.
    score : numpy.ndarray
        Scores of the rows; each customer's rows are ranked by it (ties keep row order).
    ks : tuple of int, default (1, 3)
        Cut-offs.

    Returns
    -------
    dict of str to float
        ``precision@k`` and ``recall@k`` per ``k``, then ``ndcg@3``, averaged over customers with
        at least one positive row (NaN when there are none).
    """
    frame = pd.DataFrame(
        {"c": np.asarray(customer_ids), "y": np.asarray(y, dtype=np.float64), "s": score}
    )
    frame = frame[frame.groupby("c")["y"].transform("sum") > 0]
    out: dict[str, float] = {}
    if frame.empty:
        return {f"{m}@{k}": float("nan") for k in ks for m in ("precision", "recall")} | {
            "ndcg@3": float("nan")
        }
    frame = frame.iloc[np.argsort(-frame["s"].to_numpy(dtype=np.float64), kind="stable")]
    rank = frame.groupby("c", sort=False).cumcount() + 1
    positives = frame.groupby("c")["y"].sum()
    for k in ks:
        hits = frame[rank <= k].groupby("c")["y"].sum().reindex(positives.index, fill_value=0)
        out[f"precision@{k}"] = float((hits / k).mean())
        out[f"recall@{k}"] = float((hits / positives).mean())
    top = (rank <= 3).to_numpy()
    gain = pd.Series(frame["y"].to_numpy()[top] / np.log2(rank.to_numpy()[top] + 1))
    dcg = gain.groupby(frame["c"].to_numpy()[top]).sum().reindex(positives.index, fill_value=0.0)
    discount = np.cumsum(1 / np.log2(np.arange(2, 5)))  # ideal DCG of 1, 2, 3 positives
    ideal = discount[np.minimum(positives.to_numpy(dtype=np.int64), 3) - 1]
    out["ndcg@3"] = float((dcg.to_numpy() / ideal).mean())
    return out


def binary_evaluation(
    y: np.ndarray, score: np.ndarray, proba: np.ndarray | None, index: pd.Index
) -> dict[str, float]:
    """Held-out metrics of a binary task (:func:`binary_metrics`; ``index`` is not needed).

    Parameters
    ----------
    y : numpy.ndarray
        0/1 labels.
    score : numpy.ndarray
        Ranking scores.
    proba : numpy.ndarray or None
        Probabilities (None: ``score`` is one).
    index : pandas.Index
        The rows' index.

    Returns
    -------
    dict of str to float
        :func:`binary_metrics`.
    """
    return binary_metrics(y, score, proba)


def ranked_evaluation(
    y: np.ndarray, score: np.ndarray, proba: np.ndarray | None, index: pd.Index
) -> dict[str, float]:
    """Held-out metrics of a ranked task: :func:`binary_metrics` and :func:`top_k_metrics`.

    Parameters
    ----------
    y : numpy.ndarray
        0/1 labels.
    score : numpy.ndarray
        Ranking scores.
    proba : numpy.ndarray or None
        Probabilities (None: ``score`` is one).
    index : pandas.Index
        The rows' index, with a ``customer_id`` level (candidates are ranked per customer).

    Returns
    -------
    dict of str to float
        ``precision@k``, ``recall@k`` and ``ndcg@3``, then the binary metrics.
    """
    customers = index.get_level_values("customer_id").to_numpy()
    return top_k_metrics(customers, y, score) | binary_metrics(y, score, proba)


def grade(model: Mapping[str, float], baseline: Mapping[str, float]) -> str:
    """Grade a model against its rule baseline (thresholds in the module docstring).

    Parameters
    ----------
    model : mapping
        The model's held-out metrics (``roc_auc``, ``pr_auc``).
    baseline : mapping
        The baseline's held-out metrics on the same rows.

    Returns
    -------
    str
        ``"A"``, ``"B"`` or ``"C"``.
    """
    auc_gain = model["roc_auc"] - baseline["roc_auc"]
    pr_model, pr_base = model["pr_auc"], baseline["pr_auc"]
    if auc_gain >= GRADE_A_AUC_GAIN and pr_model >= GRADE_A_PR_RATIO * pr_base:
        return "A"
    if auc_gain >= GRADE_B_AUC_GAIN and pr_model >= pr_base:
        return "B"
    return "C"


def ranked_grade(model: Mapping[str, float], baseline: Mapping[str, float]) -> str:
    """Grade a ranked task's model against its rule on per-customer top-k metrics.

    Parameters
    ----------
    model : mapping
        The model's held-out metrics (``precision@1``, ``precision@3``, ``ndcg@3``).
    baseline : mapping
        The rule's held-out metrics on the same rows.

    Returns
    -------
    str
        ``"A"``, ``"B"`` or ``"C"`` (thresholds in the module docstring).
    """

    def beats(metric: str) -> bool:
        return bool(model[metric] >= GRADE_RANKED_RATIO * baseline[metric])

    if beats("precision@3") and beats("precision@1") and beats("ndcg@3"):
        return "A"
    if beats("precision@3"):
        return "B"
    return "C"
