"""Live performance: earlier scores matched with what customers did once the horizon passed.

A score table kept in the store (:mod:`models.scoring` rows of one model on the snapshot of a day
``c``) predicts an outcome in ``(c, c + horizon]``. Once that window has passed, the task's own
label function gives the outcome of every customer the task scored (:func:`outcomes`, the same
labels training used), and :func:`live_metrics` measures the scores against it:

* the task's held-out metrics (:attr:`models.tasks.TaskSpec.evaluate`: ROC-AUC, PR-AUC,
  top-decile lift, Brier, log loss; precision and recall at ``k`` for a ranked task), so they
  read against the model card's figures of the test cutoff;
* ``precision_top_decile``: the positive rate among the 10 % highest scores (lift's numerator);
* ``ece`` and ``max_bin_gap`` (:func:`models.metrics.calibration_error`, binned as the card's),
  and the bins themselves (:func:`models.metrics.reliability_bins`) for the reliability chart.

For customer value, :func:`purchases_forecast_error` compares a value table's expected purchases
with the purchase days that followed (:func:`models.clv.validation.forecast_accuracy`).
Everything here is pure: frames in, numbers out.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl

from features.value import purchase_counts
from models.clv.validation import forecast_accuracy
from models.customer_rows import refuse_repeated_customers
from models.metrics import calibration_error, reliability_bins
from models.ranking import rank_bins
from models.tasks import TaskSpec

__all__ = [
    "live_metrics",
    "match_outcomes",
    "outcomes",
    "precision_top_decile",
    "purchases_forecast_error",
]


def precision_top_decile(y: np.ndarray, score: np.ndarray) -> float:
    """Return the positive rate among the 10 % highest-scored rows.

    Rows are ranked by :func:`models.ranking.rank_bins` (highest score first).

    Parameters
    ----------
    y : numpy.ndarray
        0/1 outcomes.
    score : numpy.ndarray
        Scores, higher means likelier positive.

    Returns
    -------
    float
        The share of positives in the top decile; NaN without rows.
    """
    yv = np.asarray(y, dtype=np.float64)
    if yv.size == 0:
        return float("nan")
    return float(yv[rank_bins(np.asarray(score, dtype=np.float64), 10) == 1].mean())


def outcomes(
    spec: TaskSpec,
    events: pl.DataFrame,
    snapshot: pl.DataFrame,
    cutoff: date,
    horizon: int,
    *,
    active_days: int,
    categories: list[str],
) -> pl.DataFrame:
    """Label the customers a task scored at a cutoff with what happened in the horizon after.

    Parameters
    ----------
    spec : models.tasks.TaskSpec
        The task.
    events : polars.DataFrame
        Validated events reaching at least to ``cutoff + horizon``.
    snapshot : polars.DataFrame
        The feature snapshot of ``cutoff`` (it decides the task's population).
    cutoff : datetime.date
        The day the scores were computed as of.
    horizon : int
        The model's label window in days.
    active_days : int
        The model's activity window (:meth:`models.tasks.Population.select`).
    categories : list of str
        The model's candidate categories (ranked tasks).

    Returns
    -------
    polars.DataFrame
        The label function's rows: ``customer_id`` (and ``category``) and ``label``.
    """
    population = spec.population.select(snapshot, active_days)
    return spec.labels(events, cutoff, horizon, population, categories)


def match_outcomes(scores: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """Join a score table with the outcomes of its rows.

    Parameters
    ----------
    scores : polars.DataFrame
        Score rows (``customer_id``, ``category`` for a ranked task, ``score``).
    labels : polars.DataFrame
        :func:`outcomes` of the same task, cutoff and horizon.

    Returns
    -------
    polars.DataFrame
        The score rows that have an outcome (customers outside the population have none),
        with ``label``, in score-table order.
    """
    keys = ["customer_id"]
    if "category" in labels.columns:
        keys.append("category")
    return scores.join(labels.select(*keys, "label"), on=keys, how="inner", maintain_order="left")


def live_metrics(spec: TaskSpec, matched: pl.DataFrame) -> dict[str, Any]:
    """Measure matched scores against their outcomes.

    Parameters
    ----------
    spec : models.tasks.TaskSpec
        The task (its ``evaluate`` gives the card's metrics).
    matched : polars.DataFrame
        :func:`match_outcomes` (``score`` is the calibrated probability).

    Returns
    -------
    dict
        ``metrics`` (the task's metrics, ``precision_top_decile``, ``ece``) and ``reliability``
        (:func:`models.metrics.reliability_bins`).
    """
    y = matched["label"].to_numpy().astype(np.int64)
    p = matched["score"].to_numpy().astype(np.float64)
    keys = ["customer_id", "category"] if "category" in matched.columns else ["customer_id"]
    index = matched.select(keys).to_pandas().set_index(keys).index
    metrics = dict(spec.evaluate(y, p, p, index))
    metrics["precision_top_decile"] = precision_top_decile(y, p)
    for key, value in calibration_error(y, p).items():  # ranked tasks' evaluate has them too
        metrics.setdefault(key, value)
    return {"metrics": metrics, "reliability": reliability_bins(y, p)}


def purchases_forecast_error(
    values: pl.DataFrame, events: pl.DataFrame, as_of: date, horizon_days: int
) -> dict[str, float]:
    """Compare a value table's expected purchases with the purchase days that followed.

    Parameters
    ----------
    values : polars.DataFrame
        A value table (``customer_id``, ``expected_purchases``) computed as of ``as_of``.
    events : polars.DataFrame
        Validated events reaching at least to ``as_of + horizon_days``.
    as_of : datetime.date
        The day of the value table.
    horizon_days : int
        The table's horizon.

    Returns
    -------
    dict of str to float
        :class:`models.clv.validation.ForecastAccuracy` as a dict: customers, MAE, correlation,
        forecast and actual totals, aggregate error.

    Raises
    ------
    models.customer_rows.RepeatedCustomersError
        If the table lists a customer on more than one row: each row would count their forecast
        and their purchases again (the message names the day and the customer).
    """
    refuse_repeated_customers(
        values,
        as_of,
        what="expected purchases",
        consequence="the forecast error would count their purchases once a row",
    )
    actual = purchase_counts(events, as_of, as_of + timedelta(days=horizon_days))
    joined = values.select("customer_id", "expected_purchases").join(
        actual, on="customer_id", how="left", maintain_order="left"
    )
    return forecast_accuracy(
        joined["expected_purchases"].to_numpy(),
        joined["purchases"].fill_null(0).to_numpy(),
    ).as_dict()
