"""The BG/NBD model of repeat purchasing (Fader, Hardie and Lee 2005), fitted by maximum likelihood.

The story: while alive, a customer buys as a Poisson process with rate ``lambda``; after each
repeat purchase they drop out for good with probability ``p``. Across customers
``lambda ~ Gamma(r, alpha)`` (shape, rate) and ``p ~ Beta(a, b)``. A customer is summarised by
``x`` repeat purchases, the time ``t_x`` of the last one and the time ``T`` observed since the
first purchase (:func:`features.value.repeat_purchase_summary`), all times in one unit.

Likelihood (FHL 2005, eq. 6), with no hypergeometric function::

    L = B(a, b + x) / B(a, b) * G(r + x) alpha^r / (G(r) (alpha + T)^(r + x))
      + [x > 0] B(a + 1, b + x - 1) / B(a, b) * G(r + x) alpha^r / (G(r) (alpha + t_x)^(r + x))

It is evaluated in log space: ``log L = A1 + A2 + A3 + log(1 + exp(D))`` with

* ``A1 = lgamma(r + x) - lgamma(r) + r log(alpha)``,
* ``A2 = lgamma(a + b) + lgamma(b + x) - lgamma(b) - lgamma(a + b + x)``,
* ``A3 = -(r + x) log(alpha + T)``,
* ``D = log(a / (b + x - 1)) + (r + x) log((alpha + T) / (alpha + t_x))`` for ``x > 0``
  (``-inf`` otherwise), the log of the second term over the first,

so no term overflows however many purchases a customer has made (the "#NUM!" problem of Fader
and Hardie's 2013 note). ``A1`` and ``A2`` depend on ``x`` only and are summed over the distinct
values of ``x``; only the ``T`` and ``t_x`` terms are computed per customer. The gradient is
analytic (digamma functions and the weight ``w = expit(D)`` of the second term), and the fit runs
L-BFGS-B on ``log(r, alpha, a, b)``, with times rescaled by their mean so that ``alpha`` starts
near 1 whatever the unit (the log-likelihood is reported in the caller's unit).

Predictions (FHL 2005, eqs. 9, 10 and their appendix):

* ``P(alive | x, t_x, T) = 1 / (1 + [x > 0] exp(D))``;
* ``E[Y(t) | x, t_x, T] = P(alive) (a + b + x - 1) / (a - 1)
  [1 - ((alpha + T) / (alpha + T + t))^(r + x) 2F1(r + x, b + x; a + b + x - 1; z)]`` with
  ``z = t / (alpha + T + t)``. Euler's transformation turns the bracket into
  ``1 - (1 - z)^(a - 1) 2F1(a + b - 1 - r, a - 1; a + b + x - 1; z)``, whose series has one
  small upper parameter and stays accurate for customers with hundreds of purchases, where the
  textbook form overflows (checked against 40-digit ``mpmath`` in the tests);
* ``P(no purchase in t | x, t_x, T) = 1 - P(alive) + P(alive) (1 - z)^(r + x)``
  (an alive customer's next purchase time is Lomax: the posterior rate is
  ``Gamma(r + x, alpha + T)``);
* the median time to the next purchase given alive: ``(alpha + T) (2^(1 / (r + x)) - 1)``.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy.special import digamma, expit, gammaln, hyp2f1

from models.clv._mle import (
    FloatArray,
    ModelIdentificationError,
    ValueModel,
    as_array,
    check,
    maximize,
    weights_or_ones,
)

__all__ = ["BGNBD", "sample_bgnbd"]

PARAMS: Final = ("r", "alpha", "a", "b")
_NEAR_ONE: Final = 1e-7
_SERIES_TERMS: Final = 100_000


class BGNBD(ValueModel):
    """BG/NBD model of repeat purchases, scikit-learn style.

    Parameters
    ----------
    max_iterations : int, default 1000
        Iteration limit of the optimiser.

    Attributes
    ----------
    r_, alpha_, a_, b_ : float
        Fitted parameters (``alpha`` in the time unit of the data).
    log_likelihood_ : float
        Maximised log-likelihood, summed over customers (weighted).
    n_customers_ : float
        Customers fitted (sum of the weights).
    n_repeat_buyers_ : float
        Customers with at least one repeat purchase.
    n_iterations_ : int
        Optimiser iterations.
    """

    NAME = "BG/NBD"
    PARAMS = PARAMS
    r_: float
    alpha_: float
    a_: float
    b_: float

    @classmethod
    def from_params(cls, r: float, alpha: float, a: float, b: float) -> BGNBD:
        """Return a model with known parameters (from a paper, or a fit logged earlier).

        Parameters
        ----------
        r, alpha, a, b : float
            Positive parameters.

        Returns
        -------
        BGNBD
            A model ready to predict; ``log_likelihood_`` is not set.

        Raises
        ------
        ValueError
            If a parameter is not a positive finite number.
        """
        return cls._from_values([r, alpha, a, b])

    def fit(
        self,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,  # noqa: N803 (the papers' name)
        weights: npt.ArrayLike | None = None,
    ) -> BGNBD:
        """Fit ``(r, alpha, a, b)`` by maximum likelihood.

        Parameters
        ----------
        frequency : array_like
            Repeat purchases ``x`` (whole numbers >= 0).
        recency : array_like
            Time of the last purchase since the first, ``t_x`` (0 when ``x = 0``).
        T : array_like
            Time observed since the first purchase (>= ``recency``).
        weights : array_like, optional
            How many customers each row stands for (rows of identical summaries collapsed).

        Returns
        -------
        BGNBD
            ``self``, fitted.

        Raises
        ------
        ValueError
            If the summaries are impossible (negative, ``recency > T``, a fractional frequency,
            a recency without repeat purchases), naming the field and rows.
        ModelIdentificationError
            If the data cannot identify the model (no customer with a repeat purchase, or a
            parameter running off to 0 or infinity).
        """
        x, tx, t_obs = _summaries(frequency, recency, T, same_length=True)
        w = weights_or_ones(weights, x.size)
        repeat_weight = float(w[x > 0].sum())
        if repeat_weight == 0:
            raise ModelIdentificationError(
                "BG/NBD: no customer has a repeat purchase, so purchase rates and dropout "
                "cannot be estimated; use a longer history (an earlier first order) or more "
                "customers"
            )
        total = float(w.sum())
        scale = float(np.average(t_obs, weights=w)) or 1.0
        objective = _Objective(x, tx / scale, t_obs / scale, w / total)
        rate = float(np.average(x, weights=w) / np.average(t_obs / scale, weights=w))
        start = np.log([1.0, 1.0 / rate, 1.0, 1.0])
        theta, mean_ll, iterations = maximize(
            "BG/NBD", objective, start, PARAMS, max_iterations=self.max_iterations
        )
        r, alpha, a, b = np.exp(theta)
        self._set_params([r, alpha * scale, a, b])
        # log-likelihood in the caller's unit: each purchase time density scales by 1 / scale
        self.log_likelihood_ = mean_ll * total - float(np.sum(w * x)) * np.log(scale)
        self.n_customers_ = total
        self.n_repeat_buyers_ = repeat_weight
        self.n_iterations_ = iterations
        return self

    def log_likelihood(
        self,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,  # noqa: N803
    ) -> FloatArray:
        """Return each customer's log-likelihood under the model's parameters.

        Parameters
        ----------
        frequency, recency, T : array_like
            Customer summaries, as in :meth:`fit`.

        Returns
        -------
        numpy.ndarray
            One log-likelihood per customer.
        """
        x, tx, t_obs = _summaries(frequency, recency, T)
        r, alpha, a, b = self._params()
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
        d = _log_ratio(r, alpha, a, b, x, tx, t_obs)
        return np.asarray(a1 + a2 - (r + x) * np.log(alpha + t_obs) + np.logaddexp(0.0, d))

    def p_alive(
        self,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,  # noqa: N803
    ) -> FloatArray:
        """Return the probability that each customer is still alive at ``T``.

        Parameters
        ----------
        frequency, recency, T : array_like
            Customer summaries.

        Returns
        -------
        numpy.ndarray
            ``1 / (1 + [x > 0] a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x))``.
        """
        x, tx, t_obs = _summaries(frequency, recency, T)
        r, alpha, a, b = self._params()
        return np.asarray(expit(-_log_ratio(r, alpha, a, b, x, tx, t_obs)))

    def expected_purchases(self, t: npt.ArrayLike) -> FloatArray:
        """Return the expected purchases of a new customer in ``(0, t]`` (FHL 2005, eq. 9).

        Parameters
        ----------
        t : array_like
            Lengths of time (>= 0).

        Returns
        -------
        numpy.ndarray
            ``E[X(t)]``, repeat purchases after a first purchase at time 0.
        """
        span = as_array(t, "t")
        zeros = np.zeros_like(span)
        return self.conditional_expected_purchases(span, zeros, zeros, zeros)

    def conditional_expected_purchases(
        self,
        t: npt.ArrayLike,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,  # noqa: N803
    ) -> FloatArray:
        """Return each customer's expected purchases in the next ``t`` (FHL 2005, eq. 10).

        Parameters
        ----------
        t : array_like
            Length of the future period (scalar, or one per customer), in the data's unit.
        frequency, recency, T : array_like
            Customer summaries.

        Returns
        -------
        numpy.ndarray
            ``E[Y(t) | x, t_x, T]``.

        Notes
        -----
        At ``a = 1`` exactly the closed form is 0/0; ``a`` within 1e-7 of 1 is evaluated at
        ``1 + 1e-7`` (a relative change below 1e-6 in the result). Where ``x = 0`` and
        ``a + b = 1`` the head ``a + b + x - 1`` is 0 and the hypergeometric series has a pole
        (``c = 0``): their product is taken at its limit,
        ``lim c 2F1(p, q; c; z) = p q z 2F1(p + 1, q + 1; 2; z)``.
        """
        span, x, t_obs, alive = self._ahead(t, frequency, recency, T)
        r, alpha, a, b = self._params()
        if abs(a - 1.0) < _NEAR_ONE:
            a = 1.0 + _NEAR_ONE
        z = span / (alpha + t_obs + span)
        c = np.asarray(a + b + x - 1.0, dtype=np.float64)
        p, q = a + b - 1.0 - r, a - 1.0
        c, z = np.broadcast_arrays(c, z)
        pole = c == 0.0  # x = 0 and a + b = 1: the head (a + b + x - 1) is 0, the series a pole
        scaled = np.empty_like(z)  # (a + b + x - 1) x the bracket
        keep = ~pole
        with np.errstate(all="ignore"):
            scaled[keep] = c[keep] * (
                1.0 - np.exp(q * np.log1p(-z[keep])) * _hyp2f1(p, q, c[keep], z[keep])
            )
        lost = keep & ~np.isfinite(scaled)
        if np.any(lost):
            # a and b so large (a near-degenerate dropout mix) that (1 - z)^(a - 1) underflows
            # while its 2F1 overflows: the printed form's terms stay moderate there
            xl, zl = np.broadcast_to(x, z.shape)[lost], z[lost]
            scaled[lost] = c[lost] * (
                1.0 - np.exp((r + xl) * np.log1p(-zl)) * _hyp2f1(r + xl, b + xl, c[lost], zl)
            )
        if np.any(pole):
            # lim_{c -> 0} c 2F1(p, q; c; z) = p q z 2F1(p + 1, q + 1; 2; z) (DLMF 15.2.2-3),
            # while c times the bracket's 1 vanishes
            zp = z[pole]
            limit = p * q * zp * _hyp2f1(p + 1.0, q + 1.0, np.full_like(zp, 2.0), zp)
            scaled[pole] = -np.exp(q * np.log1p(-zp)) * limit
        return np.asarray(alive * scaled / (a - 1.0))

    def probability_no_purchase(
        self,
        t: npt.ArrayLike,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,  # noqa: N803
    ) -> FloatArray:
        """Return each customer's probability of making no purchase in the next ``t``.

        Parameters
        ----------
        t : array_like
            Length of the future period, in the data's unit.
        frequency, recency, T : array_like
            Customer summaries.

        Returns
        -------
        numpy.ndarray
            ``1 - P(alive) + P(alive) ((alpha + T) / (alpha + T + t))^(r + x)``.
        """
        span, x, t_obs, alive = self._ahead(t, frequency, recency, T)
        r, alpha, _, _ = self._params()
        quiet = np.exp(-(r + x) * np.log1p(span / (alpha + t_obs)))
        return np.asarray(1.0 - alive + alive * quiet)

    def _ahead(
        self,
        t: npt.ArrayLike,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,  # noqa: N803
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Return the checked ``t``, ``x`` and ``T`` and ``P(alive)`` for a look ``t`` ahead."""
        span = as_array(t, "t")
        check(span >= 0, "t must be >= 0")
        x, tx, t_obs = _summaries(frequency, recency, T)
        return span, x, t_obs, self.p_alive(x, tx, t_obs)

    def median_time_to_next_purchase(
        self,
        frequency: npt.ArrayLike,
        T: npt.ArrayLike,  # noqa: N803
    ) -> FloatArray:
        """Return the median time from ``T`` to each customer's next purchase, given alive.

        Parameters
        ----------
        frequency, T : array_like
            Repeat purchases and time observed.

        Returns
        -------
        numpy.ndarray
            ``(alpha + T) (2^(1 / (r + x)) - 1)`` in the data's unit.
        """
        x = as_array(frequency, "frequency")
        t_obs = as_array(T, "T")
        r, alpha, _, _ = self._params()
        return np.asarray((alpha + t_obs) * np.expm1(np.log(2.0) / (r + x)))


def _summaries(
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,  # noqa: N803
    *,
    same_length: bool = False,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Check ``(x, t_x, T)`` and broadcast them (or require one value each per customer)."""
    arrays = as_array(frequency, "frequency"), as_array(recency, "recency"), as_array(T, "T")
    sizes = [a.size for a in arrays]
    try:
        if same_length and len(set(sizes)) > 1:
            raise ValueError
        x, tx, t_obs = np.broadcast_arrays(*arrays)
    except ValueError:
        raise ValueError(
            f"frequency, recency and T must have one value per customer, got {sizes} values"
        ) from None
    check((x >= 0) & (x == np.floor(x)), "frequency must be a whole number >= 0")
    check(tx >= 0, "recency must be >= 0")
    check(tx <= t_obs, "recency must be <= T (the last purchase cannot follow the observation end)")
    check((x > 0) | (tx == 0), "recency must be 0 when frequency is 0")
    return x, tx, t_obs


def _hyp2f1(
    p: float | FloatArray, q: float | FloatArray, c: FloatArray, z: FloatArray
) -> FloatArray:
    """``2F1(p, q; c; z)`` by scipy, summing the series where scipy gives no finite value.

    scipy's ``hyp2f1`` returns NaN for some large ``c`` with ``z`` close to 1 (hundreds of
    purchases, a horizon long against ``alpha + T``); there ``c - p - q`` is large and positive,
    so the series converges fast even at ``z = 1``.
    """
    p, q, c, z = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (p, q, c, z)))
    with np.errstate(all="ignore"):
        value = np.array(hyp2f1(p, q, c, z), dtype=np.float64)
    bad = ~np.isfinite(value)
    if np.any(bad):
        pb, qb, cb, zb = p[bad], q[bad], c[bad], z[bad]
        term = np.ones_like(cb)
        total = np.ones_like(cb)
        for n in range(_SERIES_TERMS):
            term = term * (pb + n) * (qb + n) / ((cb + n) * (n + 1.0)) * zb
            total += term
            if np.all(np.abs(term) <= 1e-17 * np.abs(total)):
                break
        value[bad] = total
    return value


def _log_ratio(
    r: float,
    alpha: float,
    a: float,
    b: float,
    x: FloatArray,
    tx: FloatArray,
    t_obs: FloatArray,
) -> FloatArray:
    """``D``: log of the likelihood's second term over its first; ``-inf`` where ``x = 0``."""
    repeat = x > 0
    with np.errstate(divide="ignore"):
        d = (
            np.log(a)
            - np.log(b + np.maximum(x - 1.0, 0.0))
            + (r + x) * (np.log(alpha + t_obs) - np.log(alpha + tx))
        )
    return np.where(repeat, d, -np.inf)


class _Objective:
    """Mean log-likelihood and its gradient in ``log(r, alpha, a, b)``, weights summing to 1."""

    def __init__(self, x: FloatArray, tx: FloatArray, t_obs: FloatArray, w: FloatArray) -> None:
        self.values, inverse = np.unique(x, return_inverse=True)
        self.value_weights = np.bincount(inverse, weights=w)  # weight of each distinct x
        self.x, self.tx, self.t_obs, self.w = x, tx, t_obs, w
        self.repeat = x > 0
        self.b_offset = np.maximum(x - 1.0, 0.0)

    def __call__(self, theta: FloatArray) -> tuple[float, FloatArray]:
        r, alpha, a, b = np.exp(theta)
        u, wu = self.values, self.value_weights
        x, w = self.x, self.w
        # terms in x only, over the distinct x
        ll = float(
            np.vdot(
                wu,
                (
                    gammaln(r + u)
                    - gammaln(r)
                    + r * np.log(alpha)
                    + gammaln(a + b)
                    + gammaln(b + u)
                    - gammaln(b)
                    - gammaln(a + b + u)
                ),
            )
        )
        psi_abu = digamma(a + b + u)
        d_r = float(np.vdot(wu, (digamma(r + u) - digamma(r) + np.log(alpha))))
        d_a = float(np.vdot(wu, (digamma(a + b) - psi_abu)))
        d_b = float(np.vdot(wu, (digamma(a + b) + digamma(b + u) - digamma(b) - psi_abu)))
        # terms in T and t_x, per customer
        log_at = np.log(alpha + self.t_obs)
        log_atx = np.log(alpha + self.tx)
        rx = r + x
        b_x = b + self.b_offset
        d = np.where(self.repeat, np.log(a) - np.log(b_x) + rx * (log_at - log_atx), -np.inf)
        second = expit(d)  # weight of the likelihood's second term
        ll += float(np.vdot(w, (np.logaddexp(0.0, d) - rx * log_at)))
        d_r += float(np.vdot(w, (second * (log_at - log_atx) - log_at)))
        inv_at = 1.0 / (alpha + self.t_obs)
        d_alpha = r / alpha - float(
            np.vdot(w, (rx * ((1.0 - second) * inv_at + second / (alpha + self.tx))))
        )
        d_a += float(np.vdot(w, second)) / a
        d_b -= float(np.vdot(w, (second / b_x)))
        return ll, np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b])


def sample_bgnbd(
    T: npt.ArrayLike,  # noqa: N803
    r: float,
    alpha: float,
    a: float,
    b: float,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """Draw customer summaries from the BG/NBD generative process.

    Parameters
    ----------
    T : array_like
        Time observed since each customer's first purchase (one per customer).
    r, alpha, a, b : float
        Model parameters.
    rng : numpy.random.Generator
        Random source.

    Returns
    -------
    dict
        ``frequency``, ``recency`` and ``T`` arrays, and the drawn ``rate`` and ``dropout``.

    Notes
    -----
    With ``N ~ Poisson(lambda T)`` arrivals the customer would make in ``(0, T]`` if never
    dropping out and ``D ~ Geometric(p)`` the purchase after which they drop out, ``x = min(N, D)``
    and the ``x``-th of ``N`` uniform arrival times is ``T Beta(x, N - x + 1)``.
    """
    t_obs = as_array(T, "T")
    check(t_obs >= 0, "T must be >= 0")
    n = t_obs.size
    rate = rng.gamma(r, 1.0 / alpha, n)
    dropout = np.clip(rng.beta(a, b, n), 1e-12, 1.0)
    arrivals = rng.poisson(rate * t_obs)
    x = np.minimum(arrivals, rng.geometric(dropout))
    repeat = x > 0
    tx = np.zeros(n)
    tx[repeat] = t_obs[repeat] * rng.beta(x[repeat], arrivals[repeat] - x[repeat] + 1)
    return {
        "frequency": x.astype(np.float64),
        "recency": tx,
        "T": t_obs,
        "rate": rate,
        "dropout": dropout,
    }
