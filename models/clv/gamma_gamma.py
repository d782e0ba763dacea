"""The Gamma-Gamma model of average purchase value (Fader, Hardie and Lee 2005, "RFM and CLV").

The story: a customer's purchase values are ``Gamma(p, nu)`` (shape, rate) around their own mean
``p / nu``, and ``nu ~ Gamma(q, gamma)`` across customers. Only repeat purchases are read: a
customer with ``x >= 1`` repeat purchases of mean value ``m`` contributes (Fader and Hardie 2013,
"The Gamma-Gamma Model of Monetary Value")::

    log L = lgamma(p x + q) - lgamma(p x) - lgamma(q) + q log(gamma) + p x log(x)
          + (p x - 1) log(m) - (p x + q) log(gamma + x m)

maximised on ``log(p, q, gamma)`` with its analytic gradient, values rescaled by their mean so
``gamma`` starts near 1 whatever the currency (the log-likelihood is reported in the caller's
unit). The expected mean value of a customer's future purchases is

    E[Z | x, m] = (gamma + x m) p / (p x + q - 1)

a weighted average of the population mean ``p gamma / (q - 1)`` and the customer's own ``m``.

The model assumes that purchase values do not depend on purchase frequency. :meth:`GammaGamma.
fit` does not assume it: it reports the Pearson correlation between ``x`` and ``m`` among the
repeat buyers as ``spend_frequency_correlation_`` (Fader, Hardie and Lee find 0.11 on CDNOW and
call that independent enough), for the caller to show.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.special import digamma, gammaln

from features.contracts import counted
from models.clv._mle import (
    FloatArray,
    ModelIdentificationError,
    ValueModel,
    as_array,
    check,
    maximize,
    weights_or_ones,
)

__all__ = ["GammaGamma", "sample_gamma_gamma"]

PARAMS: Final = ("p", "q", "gamma")


class GammaGamma(ValueModel):
    """Gamma-Gamma model of average purchase value, scikit-learn style.

    Parameters
    ----------
    max_iterations : int, default 1000
        Iteration limit of the optimiser.

    Attributes
    ----------
    p_, q_, gamma_ : float
        Fitted parameters (``gamma`` in the currency of the data).
    log_likelihood_ : float
        Maximised log-likelihood over the repeat buyers (weighted).
    n_customers_ : float
        Repeat buyers fitted (sum of their weights).
    spend_frequency_correlation_ : float
        Pearson correlation of repeat purchases and mean purchase value among the repeat buyers
        (weighted); NaN when either does not vary.
    """

    NAME = "Gamma-Gamma"
    PARAMS = PARAMS
    p_: float
    q_: float
    gamma_: float

    @classmethod
    def from_params(cls, p: float, q: float, gamma: float) -> GammaGamma:
        """Return a model with known parameters.

        Parameters
        ----------
        p, q, gamma : float
            Positive parameters.

        Returns
        -------
        GammaGamma
            A model ready to predict.

        Raises
        ------
        ValueError
            If a parameter is not a positive finite number.
        """
        return cls._from_values([p, q, gamma])

    def fit(
        self,
        frequency: npt.ArrayLike,
        monetary_value: npt.ArrayLike,
        weights: npt.ArrayLike | None = None,
    ) -> GammaGamma:
        """Fit ``(p, q, gamma)`` by maximum likelihood on the customers with repeat purchases.

        Parameters
        ----------
        frequency : array_like
            Repeat purchases ``x``; rows with ``x = 0`` are ignored (their ``monetary_value`` may
            be NaN).
        monetary_value : array_like
            Mean value ``m`` of each customer's repeat purchases (> 0 where ``x > 0``).
        weights : array_like, optional
            How many customers each row stands for.

        Returns
        -------
        GammaGamma
            ``self``, fitted.

        Raises
        ------
        ValueError
            If a repeat buyer's value is missing or not positive (negative margins, refunds),
            naming the rows.
        ModelIdentificationError
            If fewer than two repeat buyers remain, or the values do not vary enough to
            identify the parameters.
        """
        x, m, w = _repeat_buyers(frequency, monetary_value, weights)
        if x.size < 2 or m.min() == m.max():
            raise ModelIdentificationError(
                "Gamma-Gamma: at least two repeat buyers with different mean purchase values "
                f"are needed, found {counted(x.size, 'repeat buyers')} and "
                f"{counted(np.unique(m[:2]).size, 'values')}; "
                "use a longer history"
            )
        total = float(w.sum())
        scale = float(np.average(m, weights=w))
        start = np.log([1.0, 2.0, 1.0])  # population mean p gamma / (q - 1) = 1 = mean of m
        theta, mean_ll, _ = maximize(
            "Gamma-Gamma",
            _Objective(x, m / scale, w / total),
            start,
            PARAMS,
            max_iterations=self.max_iterations,
        )
        p, q, gamma = np.exp(theta)
        self._set_params([p, q, gamma * scale])
        self.log_likelihood_ = mean_ll * total - total * np.log(scale)  # density of m per unit
        self.n_customers_ = total
        self.spend_frequency_correlation_ = _weighted_correlation(x, m, w)
        return self

    def log_likelihood(self, frequency: npt.ArrayLike, monetary_value: npt.ArrayLike) -> FloatArray:
        """Return each repeat buyer's log-likelihood under the model's parameters.

        Parameters
        ----------
        frequency, monetary_value : array_like
            Repeat purchases (>= 1) and their mean value (> 0).

        Returns
        -------
        numpy.ndarray
            One log-likelihood per customer.
        """
        x, m, _ = _repeat_buyers(frequency, monetary_value, None, keep_all=True)
        p, q, gamma = self._params()
        px = p * x
        return np.asarray(
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * np.log(gamma)
            + px * np.log(x)
            + (px - 1.0) * np.log(m)
            - (px + q) * np.log(gamma + x * m)
        )

    @property
    def mean_value_(self) -> float:
        """The population mean purchase value ``p gamma / (q - 1)`` (infinite when ``q <= 1``)."""
        p, q, gamma = self._params()
        return p * gamma / (q - 1.0) if q > 1.0 else float("inf")

    def conditional_expected_value(
        self,
        frequency: npt.ArrayLike,
        monetary_value: npt.ArrayLike,
        *,
        shrink_nonpositive: bool = False,
    ) -> FloatArray:
        """Return the expected mean value of each customer's future purchases.

        Parameters
        ----------
        frequency : array_like
            Repeat purchases ``x`` (whole numbers >= 0).
        monetary_value : array_like
            Mean value of the repeat purchases; ignored (may be NaN) where ``x = 0``.
        shrink_nonpositive : bool, default False
            Also value repeat buyers whose mean is 0 or negative (loss-making margins): the
            expectation ``(gamma + x m) p / (p x + q - 1)`` is the weighted average
            ``w p gamma / (q - 1) + (1 - w) m`` with ``w = (q - 1) / (p x + q - 1)``, and they
            get the same weighted average. The likelihood cannot read such a customer, so the fit
            leaves them out; this only values them. By default they are an error.

        Returns
        -------
        numpy.ndarray
            ``(gamma + x m) p / (p x + q - 1)``; the population mean where ``x = 0``.

        Raises
        ------
        ValueError
            If a customer without repeat purchases needs the population mean and ``q <= 1``
            (the fitted value distribution has no mean), or a repeat buyer's value is not
            positive (not finite, with ``shrink_nonpositive``).
        """
        x = as_array(frequency, "frequency")
        m = np.asarray(monetary_value, dtype=np.float64)
        x, m = np.broadcast_arrays(x, m)
        check((x >= 0) & (x == np.floor(x)), "frequency must be a whole number >= 0")
        repeat = x > 0
        if shrink_nonpositive:
            check(~repeat | np.isfinite(m), "monetary_value must be a number for repeat buyers")
        else:
            check(
                ~repeat | (np.isfinite(m) & (m > 0)), "monetary_value must be > 0 for repeat buyers"
            )
        p, q, gamma = self._params()
        denominator = p * x + q - 1.0
        if np.any(denominator <= 0):
            raise ValueError(
                f"Gamma-Gamma with q = {q:.3g} <= 1 has no population mean: customers without "
                "repeat purchases have no expected value"
            )
        own = np.where(repeat, m, 0.0)
        return np.asarray((gamma + x * own) * p / denominator)


def _repeat_buyers(
    frequency: npt.ArrayLike,
    monetary_value: npt.ArrayLike,
    weights: npt.ArrayLike | None,
    *,
    keep_all: bool = False,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Check the inputs and keep the rows with ``x > 0`` (all rows, which must be, if keep_all)."""
    x = as_array(frequency, "frequency")
    m = np.asarray(monetary_value, dtype=np.float64).reshape(-1)
    if m.size != x.size:
        raise ValueError(f"monetary_value has {m.size} values, frequency {x.size}")
    w = weights_or_ones(weights, x.size)
    check((x >= 0) & (x == np.floor(x)), "frequency must be a whole number >= 0")
    if keep_all:
        check(x > 0, "frequency must be >= 1 (the model reads repeat buyers only)")
    keep = (x > 0) & (w > 0)
    check(
        ~keep | (np.isfinite(m) & (m > 0)),
        "monetary_value must be a number > 0 for every repeat buyer (filter out customers "
        "with a negative or zero mean margin before fitting)",
    )
    return x[keep], m[keep], w[keep]


def _weighted_correlation(x: FloatArray, m: FloatArray, w: FloatArray) -> float:
    """Weighted Pearson correlation; NaN when either variable is constant."""
    dx, dm = x - np.average(x, weights=w), m - np.average(m, weights=w)
    covariance = np.average(dx * dm, weights=w)
    spread = np.sqrt(np.average(dx * dx, weights=w) * np.average(dm * dm, weights=w))
    return float(covariance / spread) if spread > 0 else float("nan")


class _Objective:
    """Mean log-likelihood and gradient in ``log(p, q, gamma)``, weights summing to 1.

    The gamma-function terms depend on ``x`` only and are summed over its distinct values; the
    ``log(m)`` terms are summed once; per customer, each evaluation needs ``log(gamma + x m)``.
    """

    def __init__(self, x: FloatArray, m: FloatArray, w: FloatArray) -> None:
        self.values, inverse = np.unique(x, return_inverse=True)
        self.value_weights = np.bincount(inverse.reshape(-1), weights=w)
        self.x, self.xm, self.w = x, x * m, w
        log_m = np.log(m)
        self.sum_log_m, self.sum_x_log_m = float(np.vdot(w, log_m)), float(np.vdot(w, (x * log_m)))

    def __call__(self, theta: FloatArray) -> tuple[float, FloatArray]:
        p, q, gamma = np.exp(theta)
        u, wu, x, w = self.values, self.value_weights, self.x, self.w
        pu = p * u
        psi_puq = digamma(pu + q)
        log_spent = np.log(gamma + self.xm)
        wx_log_spent, w_log_spent = float(np.vdot((w * x), log_spent)), float(np.vdot(w, log_spent))
        ll = (
            float(np.vdot(wu, (gammaln(pu + q) - gammaln(pu) + pu * np.log(u))))
            - gammaln(q)
            + q * np.log(gamma)
            + p * self.sum_x_log_m
            - self.sum_log_m
            - p * wx_log_spent
            - q * w_log_spent
        )
        d_p = float(np.vdot(wu, (u * (psi_puq - digamma(pu) + np.log(u))))) + self.sum_x_log_m
        d_p -= wx_log_spent
        d_q = float(np.vdot(wu, psi_puq)) - digamma(q) + np.log(gamma) - w_log_spent
        d_gamma = q / gamma - float(np.vdot(w, ((p * x + q) / (gamma + self.xm))))
        return ll, np.array([d_p * p, d_q * q, d_gamma * gamma])


def sample_gamma_gamma(
    frequency: npt.ArrayLike, p: float, q: float, gamma: float, rng: np.random.Generator
) -> FloatArray:
    """Draw each customer's mean repeat-purchase value from the Gamma-Gamma process.

    Parameters
    ----------
    frequency : array_like
        Repeat purchases per customer.
    p, q, gamma : float
        Model parameters.
    rng : numpy.random.Generator
        Random source.

    Returns
    -------
    numpy.ndarray
        Mean value of the ``x`` repeat purchases (a ``Gamma(p x, nu)`` total over ``x``, with
        ``nu ~ Gamma(q, gamma)``); NaN where ``x = 0``.
    """
    x = as_array(frequency, "frequency")
    nu = rng.gamma(q, 1.0 / gamma, x.size)
    repeat = x > 0
    values = np.full(x.size, np.nan)
    values[repeat] = rng.gamma(p * x[repeat], 1.0 / nu[repeat]) / x[repeat]
    return values
