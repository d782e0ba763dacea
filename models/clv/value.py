"""Customer lifetime value two ways: probabilistic (BG/NBD x margin) and the textbook formula.

Discounting
-----------
Discount rates are annual. An amount received ``days`` days from now is worth
``(1 + d) ** (-days / 365.25)`` today, and a period of ``period_days`` days has the rate
``(1 + d) ** (period_days / 365.25) - 1`` (:func:`period_discount_rate`).

Probabilistic CLV
-----------------
The horizon of ``horizon_days`` days is cut into steps of ``step_days`` (the last one shorter when
the horizon is not a multiple). The purchases expected in step ``k``, ``E[Y(t_k)] - E[Y(t_{k-1})]``
from :meth:`models.clv.BGNBD.conditional_expected_purchases`, earn the customer's expected margin
per purchase and are discounted from the end of the step::

    CLV = margin * sum_k (E[Y(t_k)] - E[Y(t_{k-1})]) * (1 + d) ** (-t_k / 365.25)

The margin per purchase is the Gamma-Gamma expectation on margins, or on order values times a
margin rate (the caller's choice).

Textbook CLV
------------
``CLV = sum_{t=1..T} m_t r^t / (1 + d)^t`` with a margin ``m_t`` per period, a retention rate
``r`` per period and a discount rate ``d`` per period: the customer pays ``m_t`` at the end of
period ``t`` if still retained. A churn model's calibrated probability ``p`` of churning within
``horizon_days`` gives the per-period retention ``(1 - p) ** (period_days / horizon_days)``
(:func:`retention_per_period`), assuming a constant hazard over the horizon.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from models.clv._mle import FloatArray, as_array, check
from models.clv.bgnbd import BGNBD

__all__ = [
    "DAYS_PER_YEAR",
    "discount_factor",
    "period_discount_rate",
    "probabilistic_clv",
    "retention_per_period",
    "textbook_clv",
]

DAYS_PER_YEAR: Final = 365.25
"""Days in a year, for turning annual discount rates into daily or per-period ones."""


def _annual(rate: float) -> float:
    if not np.isfinite(rate) or rate <= -1:
        raise ValueError(f"the annual discount rate must be a number > -1, got {rate!r}")
    return float(rate)


def discount_factor(days: npt.ArrayLike, annual_rate: float) -> FloatArray:
    """Return the present value of 1 received ``days`` days from now.

    Parameters
    ----------
    days : array_like
        Days ahead (>= 0).
    annual_rate : float
        Annual discount rate (0.10 for 10%).

    Returns
    -------
    numpy.ndarray
        ``(1 + annual_rate) ** (-days / 365.25)``.
    """
    ahead = as_array(days, "days")
    return np.asarray((1.0 + _annual(annual_rate)) ** (-ahead / DAYS_PER_YEAR))


def period_discount_rate(annual_rate: float, period_days: float) -> float:
    """Return the discount rate of one period of ``period_days`` days.

    Parameters
    ----------
    annual_rate : float
        Annual discount rate.
    period_days : float
        Period length in days (> 0).

    Returns
    -------
    float
        ``(1 + annual_rate) ** (period_days / 365.25) - 1``.
    """
    if not period_days > 0:
        raise ValueError(f"period_days must be > 0, got {period_days!r}")
    return float((1.0 + _annual(annual_rate)) ** (period_days / DAYS_PER_YEAR) - 1.0)


def retention_per_period(
    churn_probability: npt.ArrayLike, horizon_days: float, period_days: float
) -> FloatArray:
    """Turn a probability of churning within a horizon into a retention rate per period.

    Parameters
    ----------
    churn_probability : array_like
        Calibrated probability of churning within ``horizon_days`` (0 to 1).
    horizon_days : float
        The churn model's horizon in days.
    period_days : float
        The CLV period in days.

    Returns
    -------
    numpy.ndarray
        ``(1 - p) ** (period_days / horizon_days)``: the retention per period under a constant
        hazard that gives ``1 - p`` over the horizon.
    """
    p = as_array(churn_probability, "churn_probability")
    check((p >= 0) & (p <= 1), "churn_probability must be between 0 and 1")
    if not (horizon_days > 0 and period_days > 0):
        raise ValueError("horizon_days and period_days must be > 0")
    return np.asarray((1.0 - p) ** (period_days / horizon_days))


def textbook_clv(
    margin: npt.ArrayLike,
    retention: npt.ArrayLike,
    discount_rate: float,
    periods: int,
) -> FloatArray:
    """Return ``sum_{t=1..T} m_t r^t / (1 + d)^t`` per customer.

    Parameters
    ----------
    margin : array_like
        Margin per period: a scalar, one value per customer (the same every period), or an
        array of shape ``(customers, periods)`` with ``m_t`` per period.
    retention : array_like
        Retention rate per period ``r`` (0 to 1), a scalar or one per customer.
    discount_rate : float
        Discount rate per period ``d`` (see :func:`period_discount_rate`).
    periods : int
        Number of periods ``T`` (>= 1).

    Returns
    -------
    numpy.ndarray
        One CLV per customer.
    """
    if isinstance(periods, bool) or not isinstance(periods, int) or periods < 1:
        raise ValueError(f"periods must be a whole number >= 1, got {periods!r}")
    r = as_array(retention, "retention")
    check((r >= 0) & (r <= 1), "retention must be between 0 and 1")
    m = np.asarray(margin, dtype=np.float64)
    if m.ndim == 2 and m.shape[1] != periods:
        raise ValueError(f"margin has {m.shape[1]} periods per customer, expected {periods}")
    if not np.all(np.isfinite(m)):
        raise ValueError("margin is missing or not finite")
    t = np.arange(1, periods + 1, dtype=np.float64)
    weights = (r[:, None] / (1.0 + _annual(discount_rate))) ** t  # (customers or 1, T)
    per_period = m if m.ndim == 2 else m.reshape(-1, 1) * np.ones(periods)
    return np.asarray(np.sum(per_period * weights, axis=1))


def probabilistic_clv(
    model: BGNBD,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,  # noqa: N803
    margin_per_purchase: npt.ArrayLike,
    *,
    horizon_days: float,
    annual_discount_rate: float,
    time_unit_days: float = 1.0,
    step_days: float = 30.0,
) -> FloatArray:
    """Return each customer's discounted expected margin over the horizon (BG/NBD x margin).

    Parameters
    ----------
    model : BGNBD
        A fitted BG/NBD model.
    frequency, recency, T : array_like
        Customer summaries, in the model's time unit.
    margin_per_purchase : array_like
        Expected margin of each future purchase (scalar or one per customer).
    horizon_days : float
        Horizon in days (> 0).
    annual_discount_rate : float
        Annual discount rate.
    time_unit_days : float, default 1.0
        Days per unit of the summaries (7 for weeks).
    step_days : float, default 30.0
        Days per discounting step.

    Returns
    -------
    numpy.ndarray
        One CLV per customer.
    """
    if not (horizon_days > 0 and step_days > 0 and time_unit_days > 0):
        raise ValueError("horizon_days, step_days and time_unit_days must be > 0")
    margin = np.asarray(margin_per_purchase, dtype=np.float64)
    ends = np.minimum(
        np.arange(1, int(np.ceil(horizon_days / step_days)) + 1) * step_days, horizon_days
    )
    factors = discount_factor(ends, annual_discount_rate)
    total: FloatArray | float = 0.0
    before: FloatArray | float = 0.0
    for end, factor in zip(ends, factors, strict=True):
        upto = model.conditional_expected_purchases(end / time_unit_days, frequency, recency, T)
        total = total + (upto - before) * factor
        before = upto
    return np.asarray(margin * total)
