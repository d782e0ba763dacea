"""Shifted-beta-geometric: the published fits of Fader and Hardie (2007), DERL, cohorts.

Published numbers: Fader and Hardie (2007), "How to Project Customer Retention", Journal of
Interactive Marketing 21(1), 76-90, Table 1 and section 4: 1,000 customers of each cohort, the
share surviving years 1-7 is the calibration data; the sBG fit is alpha = 0.704, beta = 1.182 for
the "regular" cohort and alpha = 0.668, beta = 3.806 for the "high end" cohort.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import approx_fprime
from scipy.special import hyp2f1

from models.clv import ModelIdentificationError, ShiftedBetaGeometric, fit_by_cohort
from models.clv.sbg import _Objective

SURVIVING = {  # customers of 1,000 still subscribed after 0..7 renewals (Table 1)
    "regular": [1000, 631, 468, 382, 326, 289, 262, 241],
    "high_end": [1000, 869, 743, 653, 593, 551, 517, 491],
}
PUBLISHED = {"regular": (0.704, 1.182), "high_end": (0.668, 3.806)}


def cohort(surviving: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(periods, cancelled, weights): lost at each renewal 1..7, then the survivors of year 7."""
    counts = np.asarray(surviving, dtype=float)
    last = len(counts) - 1
    periods = np.r_[np.arange(1, last + 1), last]
    cancelled = np.r_[np.ones(last, bool), False]
    return periods, cancelled, np.r_[-np.diff(counts), counts[-1]]


@pytest.mark.parametrize("name", ["regular", "high_end"])
def test_published_parameters(name: str) -> None:
    model = ShiftedBetaGeometric().fit(*cohort(SURVIVING[name]))
    alpha, beta = PUBLISHED[name]
    assert model.alpha_ == pytest.approx(alpha, rel=0.01)
    assert model.beta_ == pytest.approx(beta, rel=0.01)
    assert model.n_customers_ == 1000
    assert model.heterogeneous_
    # the fit follows the calibration data
    fitted = model.survival(np.arange(1, 8)) * 1000
    np.testing.assert_allclose(fitted, SURVIVING[name][1:], rtol=0.04)


def test_individual_rows_equal_weighted_counts() -> None:
    periods, cancelled, weights = cohort(SURVIVING["high_end"])
    rows = np.repeat(np.arange(periods.size), weights.astype(int))
    one_by_one = ShiftedBetaGeometric().fit(periods[rows], cancelled[rows])
    weighted = ShiftedBetaGeometric().fit(periods, cancelled, weights)
    assert one_by_one.params_ == pytest.approx(weighted.params_, rel=1e-6)
    assert one_by_one.log_likelihood_ == pytest.approx(weighted.log_likelihood_)


def test_probabilities_follow_the_papers_recursion() -> None:
    alpha, beta = 0.668, 3.806
    model = ShiftedBetaGeometric.from_params(alpha, beta)
    # P(T = 1) = alpha / (alpha + beta)
    # P(T = t) = (beta + t - 2) / (alpha + beta + t - 1) P(T = t - 1)
    p = [alpha / (alpha + beta)]
    for t in range(2, 13):
        p.append(p[-1] * (beta + t - 2) / (alpha + beta + t - 1))
    np.testing.assert_allclose(model.churn_probability(np.arange(1, 13)), p)
    np.testing.assert_allclose(model.survival(np.arange(0, 13)), 1 - np.r_[0, np.cumsum(p)])
    survival = model.survival(np.arange(0, 13))
    np.testing.assert_allclose(model.retention_rate(np.arange(1, 13)), survival[1:] / survival[:-1])
    with pytest.raises(ValueError, match="t must be whole numbers >= 1"):
        model.churn_probability([0])


def test_derl_matches_the_closed_form_and_the_homogeneous_limit() -> None:
    alpha, beta, d = 0.668, 3.806, 0.1
    model = ShiftedBetaGeometric.from_params(alpha, beta)
    renewals = np.array([0, 1, 6, 6, 30])
    closed = [
        (beta + n) / (alpha + beta + n) * hyp2f1(1, beta + n + 1, alpha + beta + n + 1, 1 / (1 + d))
        for n in renewals
    ]
    derl = model.discounted_expected_residual_lifetime(renewals, d)
    np.testing.assert_allclose(derl, closed, rtol=1e-10)
    assert np.all(np.diff(derl[[0, 1, 2, 4]]) > 0)  # survivors are the loyal ones
    # monthly periods at a 10% annual rate: z close to 1, still exact
    monthly = (1.1) ** (1 / 12) - 1
    closed_monthly = (beta / (alpha + beta)) * hyp2f1(
        1, beta + 1, alpha + beta + 1, 1 / (1 + monthly)
    )
    assert model.discounted_expected_residual_lifetime(0, monthly)[0] == pytest.approx(
        closed_monthly, rel=1e-9
    )
    # everyone churning with the same theta: (1 - theta) / (1 - (1 - theta) / (1 + d))
    theta, k = 0.2, 1e7
    homogeneous = ShiftedBetaGeometric.from_params(theta * k, (1 - theta) * k)
    assert homogeneous.discounted_expected_residual_lifetime(3, d)[0] == pytest.approx(
        (1 - theta) / (1 - (1 - theta) / (1 + d)), rel=1e-5
    )
    with pytest.raises(ValueError, match="discount_rate must be > 0"):
        model.discounted_expected_residual_lifetime(0, 0.0)


def test_analytic_gradient_matches_finite_differences() -> None:
    periods, cancelled, weights = cohort(SURVIVING["regular"])
    objective = _Objective(periods, cancelled, weights / weights.sum())
    theta = np.array([-0.4, 0.3])
    numeric = approx_fprime(theta, lambda th: objective(th)[0], 1e-7)
    np.testing.assert_allclose(objective(theta)[1], numeric, rtol=1e-5, atol=1e-8)


def test_cohorts_are_fitted_apart_and_young_ones_are_skipped_with_the_reason() -> None:
    reg, high = cohort(SURVIVING["regular"]), cohort(SURVIVING["high_end"])
    rows = [np.repeat(np.arange(c[0].size), c[2].astype(int)) for c in (reg, high)]
    periods = np.r_[reg[0][rows[0]], high[0][rows[1]], [0, 1, 2]]
    cancelled = np.r_[reg[1][rows[0]], high[1][rows[1]], [False, False, False]]
    labels = ["2019"] * rows[0].size + ["2020"] * rows[1].size + ["2024"] * 3
    fits = fit_by_cohort(labels, periods, cancelled)
    assert fits.models["2019"].alpha_ == pytest.approx(0.704, rel=0.01)
    assert fits.models["2020"].beta_ == pytest.approx(3.806, rel=0.01)
    assert list(fits.skipped) == ["2024"]
    assert "nobody has cancelled yet" in fits.skipped["2024"]


def test_bad_spells_and_unidentifiable_cohorts_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="periods must be >= 1 for a cancelled subscriber"):
        ShiftedBetaGeometric().fit([0, 2], [True, False])
    with pytest.raises(ValueError, match="periods must be whole numbers"):
        ShiftedBetaGeometric().fit([1.5], [True])
    with pytest.raises(ModelIdentificationError, match="nobody has cancelled"):
        ShiftedBetaGeometric().fit([3, 4], [False, False])
    with pytest.raises(ModelIdentificationError, match="nobody has renewed"):
        ShiftedBetaGeometric().fit([1, 1, 0], [True, True, False])


def test_churn_without_heterogeneity_is_the_geometric_limit() -> None:
    # a cohort of 10,000 that loses exactly 20% at each of ten renewals: no heterogeneity at all
    surviving = np.round(10_000 * 0.8 ** np.arange(11)).astype(int).tolist()
    model = ShiftedBetaGeometric().fit(*cohort(surviving))
    assert not model.heterogeneous_
    periods, cancelled, weights = cohort(surviving)
    churn = weights[cancelled].sum() / (weights * periods).sum()  # cancels / renewal opportunities
    assert model.alpha_ / (model.alpha_ + model.beta_) == pytest.approx(churn)
    assert churn == pytest.approx(0.2, abs=1e-3)
    np.testing.assert_allclose(model.retention_rate([1, 5, 50]), 1 - churn, rtol=1e-4)
    assert model.survival(3)[0] == pytest.approx((1 - churn) ** 3, rel=1e-4)
    # a real sample of the same process has some heterogeneity by chance, and says so
    rng = np.random.default_rng(5)
    lifetimes = rng.geometric(0.2, 20_000)
    sampled = ShiftedBetaGeometric().fit(np.minimum(lifetimes, 10), lifetimes <= 10)
    assert sampled.alpha_ / (sampled.alpha_ + sampled.beta_) == pytest.approx(0.2, abs=0.01)
