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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from models.clv._mle import as_array

__all__ = ["ForecastAccuracy", "compare_forecasts", "forecast_accuracy"]


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
