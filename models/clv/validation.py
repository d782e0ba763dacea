"""Numeric checks of purchase forecasts against what customers then did, not plots.

On a time split (summaries as of a cutoff, purchases counted in the horizon after it), each
forecast of purchases per customer is compared with the actual count by

* ``mae``: the mean absolute error per customer;
* ``correlation``: the Pearson correlation of forecast and actual across customers;
* ``aggregate_error``: ``sum(forecast) / sum(actual) - 1``, the error of the total a planner
  would use (+0.10 is a 10% over-forecast).

:func:`compare_forecasts` scores several forecasts of the same customers at once: the BG/NBD
conditional expectation and the naive "same as last period" baseline (the purchases in the
equally long window before the cutoff, :func:`features.value.purchase_counts`), for instance.
:func:`holdout_check` does the whole time split from events: BG/NBD fitted on the events up to
the cutoff, its forecast and the naive one against the purchases after it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from features.value import purchase_counts, repeat_purchase_summary
from models.clv._mle import as_array
from models.clv.bgnbd import BGNBD

__all__ = [
    "ForecastAccuracy",
    "HoldoutCheck",
    "compare_forecasts",
    "forecast_accuracy",
    "holdout_check",
]


@dataclass(frozen=True)
class ForecastAccuracy:
    """How well a forecast of purchases per customer matched the actual purchases.

    Attributes
    ----------
    customers : int
        Customers compared.
    mae : float
        Mean absolute error per customer.
    correlation : float
        Pearson correlation of forecast and actual (NaN when either is constant).
    forecast_total, actual_total : float
        Summed forecast and actual purchases.
    aggregate_error : float
        ``forecast_total / actual_total - 1`` (NaN when nobody purchased).
    """

    customers: int
    mae: float
    correlation: float
    forecast_total: float
    actual_total: float
    aggregate_error: float

    def as_dict(self) -> dict[str, float]:
        """Return the figures as a plain dict (for JSON and MLflow metrics).

        Returns
        -------
        dict of str to float
            Field name to value.
        """
        return {k: float(v) for k, v in asdict(self).items()}


def forecast_accuracy(forecast: npt.ArrayLike, actual: npt.ArrayLike) -> ForecastAccuracy:
    """Compare a per-customer forecast with the actual purchases.

    Parameters
    ----------
    forecast : array_like
        Forecast purchases per customer.
    actual : array_like
        Actual purchases of the same customers, in the same order (0 for none).

    Returns
    -------
    ForecastAccuracy
        The figures described in the module docstring.

    Raises
    ------
    ValueError
        If the arrays differ in length, are empty, or hold missing values.
    """
    f = as_array(forecast, "forecast")
    a = as_array(actual, "actual", f.size)
    if f.size == 0:
        raise ValueError("no customers to compare")
    spread = f.std() * a.std()
    correlation = float(np.mean((f - f.mean()) * (a - a.mean())) / spread) if spread else np.nan
    total_f, total_a = float(f.sum()), float(a.sum())
    return ForecastAccuracy(
        customers=int(f.size),
        mae=float(np.mean(np.abs(f - a))),
        correlation=correlation,
        forecast_total=total_f,
        actual_total=total_a,
        aggregate_error=total_f / total_a - 1.0 if total_a else float("nan"),
    )


def compare_forecasts(
    actual: npt.ArrayLike, **forecasts: npt.ArrayLike
) -> dict[str, ForecastAccuracy]:
    """Score several forecasts of the same customers against the actual purchases.

    Parameters
    ----------
    actual : array_like
        Actual purchases per customer.
    **forecasts : array_like
        Forecasts by name, e.g. ``bgnbd=...``, ``naive=...``.

    Returns
    -------
    dict of str to ForecastAccuracy
        One entry per forecast, in the order given.
    """
    return {name: forecast_accuracy(values, actual) for name, values in forecasts.items()}


@dataclass(frozen=True)
class HoldoutCheck:
    """BG/NBD and the naive forecast against the purchases after a cutoff.

    Attributes
    ----------
    cutoff : datetime.date
        The last day the model saw.
    through : datetime.date
        The last day of the holdout ``(cutoff, through]``.
    model : BGNBD
        BG/NBD fitted on the summaries as of the cutoff.
    accuracy : dict of str to ForecastAccuracy
        ``bgnbd`` and ``naive`` (purchases in the equally long window before the cutoff).
    """

    cutoff: date
    through: date
    model: BGNBD
    accuracy: dict[str, ForecastAccuracy]

    def as_dict(self) -> dict[str, Any]:
        """Return the check as plain data (for JSON, MLflow and the API).

        Returns
        -------
        dict
            ``cutoff``, ``through`` (ISO days), ``days`` and ``forecasts`` (name to the figures).
        """
        return {
            "cutoff": self.cutoff.isoformat(),
            "through": self.through.isoformat(),
            "days": (self.through - self.cutoff).days,
            "forecasts": {name: a.as_dict() for name, a in self.accuracy.items()},
        }


def holdout_check(
    events: pl.LazyFrame | pl.DataFrame,
    cutoff: date,
    through: date,
    *,
    time_unit_days: float = 1.0,
) -> HoldoutCheck:
    """Fit BG/NBD as of a cutoff and compare its forecast with what customers then did.

    Parameters
    ----------
    events : polars.LazyFrame or polars.DataFrame
        Validated events reaching at least to ``through``.
    cutoff : datetime.date
        The calibration end: the model sees the orders up to it.
    through : datetime.date
        The holdout's last day; the window is ``(cutoff, through]``.
    time_unit_days : float, default 1.0
        Time unit of the fit (7 for weeks).

    Returns
    -------
    HoldoutCheck
        The fitted model and the accuracy of BG/NBD's conditional expectation and of the naive
        "same as last period" forecast (the purchase days in ``(cutoff - w, cutoff]`` for a
        window of ``w`` days), over the customers with an order by the cutoff.

    Raises
    ------
    ValueError
        If ``through`` is not after ``cutoff``.
    models.clv.ModelIdentificationError
        If BG/NBD cannot be fitted on the summaries as of the cutoff.
    """
    if through <= cutoff:
        raise ValueError(f"the holdout ends ({through}) on or before its cutoff ({cutoff})")
    days = (through - cutoff).days
    summary = repeat_purchase_summary(events, cutoff, time_unit_days=time_unit_days)
    model = BGNBD().fit(summary["frequency"], summary["recency"], summary["T"])
    customers = summary.select("customer_id")

    def counts(after: date, last: date) -> npt.NDArray[np.float64]:
        window = customers.join(purchase_counts(events, after, last), on="customer_id", how="left")
        return window["purchases"].fill_null(0).to_numpy().astype(np.float64)

    forecast = model.conditional_expected_purchases(
        days / time_unit_days, summary["frequency"], summary["recency"], summary["T"]
    )
    accuracy = compare_forecasts(
        counts(cutoff, through),
        bgnbd=forecast,
        naive=counts(cutoff - timedelta(days=days), cutoff),
    )
    return HoldoutCheck(cutoff=cutoff, through=through, model=model, accuracy=accuracy)
