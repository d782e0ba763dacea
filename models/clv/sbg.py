"""The shifted-beta-geometric (sBG) model of contract renewals (Fader and Hardie 2007).

The story: at each renewal a subscriber cancels with their own probability ``theta``, constant
over time, and ``theta ~ Beta(alpha, beta)`` across subscribers. Their lifetime ``T`` (the renewal
at which they are lost, 1 for a cancel in the first period) then has

* ``P(T = t) = B(alpha + 1, beta + t - 1) / B(alpha, beta)``, ``t = 1, 2, ...``;
* survival ``S(t) = P(T > t) = B(alpha, beta + t) / B(alpha, beta)``;
* retention ``r_t = S(t) / S(t - 1) = (beta + t - 1) / (alpha + beta + t - 1)``, which rises with
  ``t`` as the subscribers likely to cancel leave (the sorting effect the paper is about).

A cohort's data are, per subscriber, the renewal at which they were lost, or the renewals survived
so far (right-censored): ``log L = sum over lost log P(T = t) + sum over active log S(t)``, fitted
on ``log(alpha, beta)`` with its analytic gradient (:func:`features.value.subscription_spells`
gives these per customer).

The discounted expected residual lifetime of a subscriber who has made ``n - 1`` renewals,
standing just before their ``n``-th renewal decision, with a per-period discount rate ``d``, is
(Fader and Hardie 2010, "Customer-Base Valuation in a Contractual Setting", eq. 6)::

    DERL = sum_{t >= n} S(t) / S(n - 1) / (1 + d)^(t - n)
         = (beta + n - 1) / (alpha + beta + n - 1) * 2F1(1, beta + n; alpha + beta + n; 1 / (1 + d))

Multiplied by the margin per period it is the subscriber's residual value. It is summed here
term by term (each term is the last times ``(beta + t) / (alpha + beta + t) / (1 + d)``) until the
tail, bounded by a geometric series, is below 1e-12 of the total.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.special import betaln, digamma

from models.clv._mle import (
    FloatArray,
    ModelIdentificationError,
    ValueModel,
    as_array,
    check,
    maximize,
    weights_or_ones,
)

__all__ = [
    "GEOMETRIC_SIZE",
    "HOMOGENEOUS_SIZE",
    "CohortFits",
    "ShiftedBetaGeometric",
    "fit_by_cohort",
]

PARAMS: Final = ("alpha", "beta")
HOMOGENEOUS_SIZE: Final = 1e4
"""A fit with ``alpha + beta`` above this shows no material heterogeneity in churn: the standard
deviation of the churn probability across subscribers, ``sqrt(theta (1 - theta) / (alpha + beta
+ 1))``, is below half a percentage point."""
GEOMETRIC_SIZE: Final = 1e6
"""``alpha + beta`` of the geometric limit (one churn probability for all) that such a fit is."""
_TAIL: Final = 1e-12


class ShiftedBetaGeometric(ValueModel):
    """Shifted-beta-geometric model of subscription lifetimes, scikit-learn style.

    Parameters
    ----------
    max_iterations : int, default 1000
        Iteration limit of the optimiser.

    Attributes
    ----------
    alpha_, beta_ : float
        Fitted parameters of the Beta distribution of the churn probability.
    log_likelihood_ : float
        Maximised log-likelihood (weighted).
    n_customers_ : float
        Subscribers fitted (sum of the weights).
    heterogeneous_ : bool
        False when the data show no material heterogeneity in churn (the fit runs along
        ``alpha / (alpha + beta)`` fixed towards large ``alpha + beta``, past
        :data:`HOMOGENEOUS_SIZE`, or off the parameter range): the likelihood is flat there and
        the model is the geometric limit, one churn probability ``theta`` for all, estimated as
        cancels over renewal opportunities, with ``alpha + beta`` set to :data:`GEOMETRIC_SIZE`.
    """

    NAME = "sBG"
    PARAMS = PARAMS
    alpha_: float
    beta_: float

    @classmethod
    def from_params(cls, alpha: float, beta: float) -> ShiftedBetaGeometric:
        """Return a model with known parameters.

        Parameters
        ----------
        alpha, beta : float
            Positive parameters.

        Returns
        -------
        ShiftedBetaGeometric
            A model ready to predict.

        Raises
        ------
        ValueError
            If a parameter is not a positive finite number.
        """
        return cls._from_values([alpha, beta])

    def fit(
        self,
        periods: npt.ArrayLike,
        cancelled: npt.ArrayLike,
        weights: npt.ArrayLike | None = None,
    ) -> ShiftedBetaGeometric:
        """Fit ``(alpha, beta)`` by maximum likelihood.

        Parameters
        ----------
        periods : array_like
            Per subscriber: the renewal at which they were lost (>= 1) if ``cancelled``, else
            the renewals survived so far (>= 0).
        cancelled : array_like of bool
            Whether the subscriber has cancelled.
        weights : array_like, optional
            How many subscribers each row stands for (e.g. a cohort's counts per period).

        Returns
        -------
        ShiftedBetaGeometric
            ``self``, fitted.

        Raises
        ------
        ValueError
            If a period is negative or fractional, or a cancelled subscriber has 0 periods.
        ModelIdentificationError
            If nobody has cancelled, or nobody has renewed, so the churn distribution cannot be
            estimated. (Churn without heterogeneity is not an error: see ``heterogeneous_``.)
        """
        t, lost, w = _spells(periods, cancelled, weights)
        renewed = float(np.vdot(w, np.where(lost, t - 1.0, t)))  # renewals observed in all
        if not np.any(lost & (w > 0)) or renewed == 0:
            what = "nobody has cancelled yet" if renewed else "nobody has renewed"
            raise ModelIdentificationError(
                f"sBG: {what}, so the churn probabilities cannot be estimated; wait for more "
                "renewals or pool cohorts"
            )
        # one row per distinct (periods, cancelled), so the fit costs the same for any cohort size
        keys, inverse = np.unique(np.c_[t, lost], axis=0, return_inverse=True)
        counts = np.bincount(inverse.reshape(-1), weights=w)
        total = float(w.sum())
        objective = _Objective(keys[:, 0], keys[:, 1] > 0, counts / total)
        try:
            theta, mean_ll, _ = maximize(
                "sBG", objective, np.zeros(2), PARAMS, max_iterations=self.max_iterations
            )
            homogeneous = float(np.exp(theta).sum()) > HOMOGENEOUS_SIZE
        except ModelIdentificationError:  # both ran off together: the geometric limit
            homogeneous = True
        if homogeneous:
            # geometric MLE: cancels over renewal opportunities, alpha + beta held at the limit
            churn = float(np.vdot(w, lost)) / float(np.vdot(w, t))
            theta = np.log([churn * GEOMETRIC_SIZE, (1.0 - churn) * GEOMETRIC_SIZE])
            mean_ll = objective(theta)[0]
        self._set_params(np.exp(theta).tolist())
        self.log_likelihood_ = mean_ll * total
        self.n_customers_ = total
        self.heterogeneous_ = not homogeneous
        return self

    def churn_probability(self, t: npt.ArrayLike) -> FloatArray:
        """Return ``P(T = t)``, the probability of being lost at renewal ``t`` (>= 1).

        Parameters
        ----------
        t : array_like
            Renewals (whole numbers >= 1).

        Returns
        -------
        numpy.ndarray
            ``B(alpha + 1, beta + t - 1) / B(alpha, beta)``.
        """
        periods = _whole(t, "t", minimum=1)
        alpha, beta = self._params()
        return np.asarray(np.exp(betaln(alpha + 1.0, beta + periods - 1.0) - betaln(alpha, beta)))

    def survival(self, t: npt.ArrayLike) -> FloatArray:
        """Return ``S(t)``, the share of a new cohort still subscribed after ``t`` renewals.

        Parameters
        ----------
        t : array_like
            Renewals (whole numbers >= 0).

        Returns
        -------
        numpy.ndarray
            ``B(alpha, beta + t) / B(alpha, beta)``.
        """
        periods = _whole(t, "t", minimum=0)
        alpha, beta = self._params()
        return np.asarray(np.exp(betaln(alpha, beta + periods) - betaln(alpha, beta)))

    def retention_rate(self, t: npt.ArrayLike) -> FloatArray:
        """Return ``r_t``, the share of subscribers after ``t - 1`` renewals who renew at ``t``.

        Parameters
        ----------
        t : array_like
            Renewals (whole numbers >= 1).

        Returns
        -------
        numpy.ndarray
            ``(beta + t - 1) / (alpha + beta + t - 1)``.
        """
        periods = _whole(t, "t", minimum=1)
        alpha, beta = self._params()
        return np.asarray((beta + periods - 1.0) / (alpha + beta + periods - 1.0))

    def discounted_expected_residual_lifetime(
        self, renewals: npt.ArrayLike, discount_rate: float
    ) -> FloatArray:
        """Return DERL for subscribers who have made ``renewals`` renewals (Fader-Hardie 2010).

        Parameters
        ----------
        renewals : array_like
            Renewals made so far, ``n - 1`` (whole numbers >= 0); 0 for a new subscriber.
        discount_rate : float
            Discount rate per period (> 0): the annual rate converted with
            :func:`models.clv.value.period_discount_rate`.

        Returns
        -------
        numpy.ndarray
            The expected number of further periods paid for, each discounted to the next renewal
            decision; multiply by the margin per period for the residual value.

        Raises
        ------
        ValueError
            If ``discount_rate`` is not positive (without discounting the sum diverges when
            ``alpha <= 1``).
        """
        n_minus_1 = _whole(renewals, "renewals", minimum=0)
        if not discount_rate > 0:
            raise ValueError(f"discount_rate must be > 0 per period, got {discount_rate!r}")
        alpha, beta = self._params()
        z = 1.0 / (1.0 + discount_rate)
        distinct, inverse = np.unique(n_minus_1, return_inverse=True)
        term = (beta + distinct) / (alpha + beta + distinct)  # S(n) / S(n - 1)
        total = term.copy()
        k = distinct + 1.0
        while np.any(term * z / (1.0 - z) > _TAIL * total):
            term = term * (beta + k) / (alpha + beta + k) * z
            total += term
            k += 1.0
        return np.asarray(total[inverse.reshape(n_minus_1.shape)])


def _whole(values: npt.ArrayLike, name: str, minimum: int) -> FloatArray:
    """Check whole numbers >= minimum."""
    array = as_array(values, name)
    check(
        (array >= minimum) & (array == np.floor(array)),
        f"{name} must be whole numbers >= {minimum}",
    )
    return array


def _spells(
    periods: npt.ArrayLike, cancelled: npt.ArrayLike, weights: npt.ArrayLike | None
) -> tuple[FloatArray, npt.NDArray[np.bool_], FloatArray]:
    """Check ``periods``/``cancelled``/``weights``."""
    t = _whole(periods, "periods", minimum=0)
    lost = np.asarray(cancelled, dtype=bool).reshape(-1)
    if lost.size != t.size:
        raise ValueError(f"cancelled has {lost.size} values, periods {t.size}")
    check(~lost | (t >= 1), "periods must be >= 1 for a cancelled subscriber")
    return t, lost, weights_or_ones(weights, t.size)


class _Objective:
    """Mean log-likelihood and gradient in ``log(alpha, beta)`` over distinct spells."""

    def __init__(self, t: FloatArray, lost: npt.NDArray[np.bool_], w: FloatArray) -> None:
        self.t, self.lost, self.w = t, lost, w
        # lost at t: B(alpha + 1, beta + t - 1); active after t: B(alpha, beta + t)
        self.shift_alpha = lost.astype(np.float64)
        self.shift_beta = np.where(lost, t - 1.0, t)

    def __call__(self, theta: FloatArray) -> tuple[float, FloatArray]:
        alpha, beta = np.exp(theta)
        a, b, w = alpha + self.shift_alpha, beta + self.shift_beta, self.w
        ll = float(np.vdot(w, betaln(a, b))) - betaln(alpha, beta)
        psi_ab = digamma(a + b)
        d_alpha = float(np.vdot(w, (digamma(a) - psi_ab))) - (
            digamma(alpha) - digamma(alpha + beta)
        )
        d_beta = float(np.vdot(w, (digamma(b) - psi_ab))) - (digamma(beta) - digamma(alpha + beta))
        return ll, np.array([d_alpha * alpha, d_beta * beta])


@dataclass
class CohortFits:
    """sBG models fitted per cohort, and the cohorts that could not be fitted.

    Attributes
    ----------
    models : dict
        Cohort to fitted :class:`ShiftedBetaGeometric`.
    skipped : dict
        Cohort to the reason it has no model (the :class:`ModelIdentificationError` message).
    """

    models: dict[Hashable, ShiftedBetaGeometric] = field(default_factory=dict)
    skipped: dict[Hashable, str] = field(default_factory=dict)


def fit_by_cohort(
    cohorts: Sequence[Hashable] | npt.ArrayLike,
    periods: npt.ArrayLike,
    cancelled: npt.ArrayLike,
) -> CohortFits:
    """Fit one sBG model per cohort (e.g. per month of subscription).

    Parameters
    ----------
    cohorts : sequence
        Cohort label per subscriber.
    periods, cancelled : array_like
        As in :meth:`ShiftedBetaGeometric.fit`.

    Returns
    -------
    CohortFits
        The fitted cohorts, and those whose data cannot identify the model with the reason
        (a young cohort where nobody has cancelled yet, for instance).
    """
    labels = np.asarray(cohorts, dtype=object).reshape(-1)
    t, lost, _ = _spells(periods, cancelled, None)
    if labels.size != t.size:
        raise ValueError(f"cohorts has {labels.size} values, periods {t.size}")
    fits = CohortFits()
    for label in sorted(set(labels.tolist()), key=str):
        rows = labels == label
        try:
            fits.models[label] = ShiftedBetaGeometric().fit(t[rows], lost[rows])
        except ModelIdentificationError as error:
            fits.skipped[label] = str(error)
    return fits
