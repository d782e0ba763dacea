"""Held-out evaluation: metrics, gains by decile, reliability, top-k and the model grade.

Metrics
-------
``roc_auc`` and ``pr_auc`` (average precision) rank rows by a score; ``brier`` and ``log_loss``
judge probabilities. ``top_decile_lift`` is the positive rate among the 10 % highest-scored rows
divided by the overall positive rate. Deciles are formed by rank (highest score first, ties keep
row order), so decile sizes differ by at most one row.

Cross-sell adds ``precision@k`` and ``recall@k`` per customer: a customer's candidate categories
are ranked by score and the top ``k`` kept; precision is hits / k, recall is hits / the customer's
positives, both averaged over the customers with at least one positive.

Grade
-----
The calibrated model is graded against the task's rule baseline (churn, repurchase: "no order in
the last X days"; cross-sell: the category-affinity rule "bought A, also bought B", with category
popularity reported beside it) on the held-out cutoff, in the spirit of
Dynamics 365 Customer Insights, which grades churn models against a "no purchase in X days" rule:

``A``
    ROC-AUC at least :data:`GRADE_A_AUC_GAIN` (0.05) above the baseline's and PR-AUC at least
    :data:`GRADE_A_PR_RATIO` (1.10) times the baseline's.
``B``
    ROC-AUC at least :data:`GRADE_B_AUC_GAIN` (0.01) above the baseline's and PR-AUC no worse.
``C``
    Anything else: the model is not clearly better than the rule; use the rule or get more data.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

__all__ = [
    "GRADE_A_AUC_GAIN",
    "GRADE_A_PR_RATIO",
    "GRADE_B_AUC_GAIN",
    "binary_metrics",
    "gains_table",
    "grade",
    "reliability_curve",
    "top_decile_lift",
    "top_k_metrics",
]

GRADE_A_AUC_GAIN: Final = 0.05
GRADE_A_PR_RATIO: Final = 1.10
GRADE_B_AUC_GAIN: Final = 0.01

_EPS: Final = 1e-15


def _deciles(score: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin 1 holds the highest scores; bins are equal-sized by rank (ties keep row order)."""
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")
    bins = np.empty(len(order), dtype=np.int64)
    bins[order] = np.arange(len(order)) * n_bins // max(len(order), 1) + 1
    return bins


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
    top = _deciles(score, 10) == 1
    return float(yv[top].mean() / yv.mean())


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
        ``log_loss`` (ranking metrics are NaN when only one class is present).
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
    }


def gains_table(y: np.ndarray, score: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Cumulative gains and lift by score decile.

    Parameters
    ----------
    y : numpy.ndarray
        0/1 labels.
    score : numpy.ndarray
        Scores, higher means likelier positive.
    n_bins : int, default 10
        Number of equal-sized rank bins.

    Returns
    -------
    pandas.DataFrame
        One row per bin (1 = highest scores): ``decile``, ``rows``, ``positives``, ``rate``,
        ``lift`` (rate / overall rate), ``cum_rows_share``, ``cum_positives_share`` (the gain) and
        ``cum_lift``.
    """
    yv = np.asarray(y, dtype=np.float64)
    frame = pd.DataFrame({"decile": _deciles(score, n_bins), "y": yv})
    table = (
        frame.groupby("decile", sort=True)
        .agg(rows=("y", "size"), positives=("y", "sum"))
        .reindex(range(1, n_bins + 1), fill_value=0)
        .reset_index()
    )
    total_rows, total_pos = max(len(yv), 1), yv.sum()
    overall = total_pos / total_rows if total_pos > 0 else np.nan
    table["rate"] = table["positives"] / table["rows"].where(table["rows"] > 0)
    table["lift"] = table["rate"] / overall
    table["cum_rows_share"] = table["rows"].cumsum() / total_rows
    table["cum_positives_share"] = table["positives"].cumsum() / (total_pos or np.nan)
    table["cum_lift"] = table["cum_positives_share"] / table["cum_rows_share"]
    return table


def reliability_curve(y: np.ndarray, proba: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Observed positive rate against mean predicted probability in equal-width bins.

    Parameters
    ----------
    y : numpy.ndarray
        0/1 labels.
    proba : numpy.ndarray
        Predicted probabilities in [0, 1].
    n_bins : int, default 10
        Number of bins of width ``1 / n_bins``; empty bins are left out.

    Returns
    -------
    pandas.DataFrame
        ``bin_lower``, ``bin_upper``, ``rows``, ``mean_predicted``, ``observed_rate``.
    """
    p = np.clip(np.asarray(proba, dtype=np.float64), 0.0, 1.0)
    bins = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    frame = pd.DataFrame({"bin": bins, "p": p, "y": np.asarray(y, dtype=np.float64)})
    table = (
        frame.groupby("bin", sort=True)
        .agg(rows=("y", "size"), mean_predicted=("p", "mean"), observed_rate=("y", "mean"))
        .reset_index()
    )
    table.insert(1, "bin_lower", table["bin"] / n_bins)
    table.insert(2, "bin_upper", (table["bin"] + 1) / n_bins)
    return table.drop(columns="bin")


def top_k_metrics(
    customer_ids: np.ndarray, y: np.ndarray, score: np.ndarray, ks: tuple[int, ...] = (1, 3)
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
        ``precision@k`` and ``recall@k`` per ``k``, averaged over customers with at least one
        positive row (NaN when there are none).
    """
    frame = pd.DataFrame(
        {"c": np.asarray(customer_ids), "y": np.asarray(y, dtype=np.float64), "s": score}
    )
    frame = frame[frame.groupby("c")["y"].transform("sum") > 0]
    out: dict[str, float] = {}
    if frame.empty:
        return {f"{m}@{k}": float("nan") for k in ks for m in ("precision", "recall")}
    frame = frame.iloc[np.argsort(-frame["s"].to_numpy(dtype=np.float64), kind="stable")]
    rank = frame.groupby("c", sort=False).cumcount() + 1
    positives = frame.groupby("c")["y"].sum()
    for k in ks:
        hits = frame[rank <= k].groupby("c")["y"].sum().reindex(positives.index, fill_value=0)
        out[f"precision@{k}"] = float((hits / k).mean())
        out[f"recall@{k}"] = float((hits / positives).mean())
    return out


def grade(model: dict[str, float], baseline: dict[str, float]) -> str:
    """Grade a model against its rule baseline (thresholds in the module docstring).

    Parameters
    ----------
    model : dict
        The model's held-out metrics (``roc_auc``, ``pr_auc``).
    baseline : dict
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
