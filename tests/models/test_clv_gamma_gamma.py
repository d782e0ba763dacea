"""Gamma-Gamma: the published CDNOW fit, the reported spend-frequency correlation, the gradient.

Published numbers: Fader, Hardie and Lee (2005), "RFM and CLV: Using Iso-Value Curves for
Customer Base Analysis", Journal of Marketing Research 42(4), 415-430, and Fader and Hardie
(2013), "The Gamma-Gamma Model of Monetary Value": on the 946 CDNOW repeat buyers of the
calibration period p = 6.25, q = 3.74, gamma = 15.44; the correlation between the number of
repeat purchases and their mean value is 0.11.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from features.value import repeat_purchase_summary
from models.clv import GammaGamma, ModelIdentificationError, sample_gamma_gamma
from models.clv.gamma_gamma import _Objective
from tests.cdnow import CALIBRATION_END, cdnow_events

PUBLISHED = {"p": 6.25, "q": 3.74, "gamma": 15.44}


@pytest.fixture(scope="module")
def cdnow() -> dict[str, np.ndarray]:
    summary = repeat_purchase_summary(cdnow_events(), CALIBRATION_END, time_unit_days=7)
    return {c: summary[c].to_numpy() for c in ("frequency", "monetary_value")}


def test_cdnow_parameters_match_the_paper_and_correlation_is_reported(
    cdnow: dict[str, np.ndarray],
) -> None:
    model = GammaGamma().fit(cdnow["frequency"], cdnow["monetary_value"])
    for name, value in PUBLISHED.items():
        assert model.params_[name] == pytest.approx(value, rel=0.01), name
    assert model.n_customers_ == 946  # customers without repeat purchases are left out
    assert model.spend_frequency_correlation_ == pytest.approx(0.11, abs=0.005)
    repeat = cdnow["frequency"] > 0
    per_customer = model.log_likelihood(cdnow["frequency"][repeat], cdnow["monetary_value"][repeat])
    assert per_customer.sum() == pytest.approx(model.log_likelihood_)


def test_conditional_expected_value_by_hand() -> None:
    model = GammaGamma.from_params(**PUBLISHED)
    p, q, gamma = 6.25, 3.74, 15.44
    expected = model.conditional_expected_value([0, 2, 10], [np.nan, 22.345, 50.0])
    np.testing.assert_allclose(
        expected,
        [
            p * gamma / (q - 1),  # no repeat purchase: the population mean
            (gamma + 2 * 22.345) * p / (2 * p + q - 1),
            (gamma + 10 * 50.0) * p / (10 * p + q - 1),  # more purchases: closer to their own
        ],
    )
    assert model.mean_value_ == pytest.approx(p * gamma / (q - 1))
    heavy = GammaGamma.from_params(2.0, 0.8, 10.0)
    assert heavy.mean_value_ == float("inf")
    with pytest.raises(ValueError, match="no population mean"):
        heavy.conditional_expected_value([0, 3], [np.nan, 5.0])


@pytest.mark.parametrize("theta", [np.log([6.25, 3.74, 0.5]), np.array([0.3, -0.2, 1.1])])
def test_analytic_gradient_matches_finite_differences(
    cdnow: dict[str, np.ndarray], theta: np.ndarray
) -> None:
    repeat = cdnow["frequency"] > 0
    x, m = cdnow["frequency"][repeat], cdnow["monetary_value"][repeat]
    objective = _Objective(x, m / m.mean(), np.full(x.size, 1 / x.size))
    numeric = approx_fprime(theta, lambda th: objective(th)[0], 1e-7)
    np.testing.assert_allclose(objective(theta)[1], numeric, rtol=1e-4, atol=1e-7)


def test_recovers_the_parameters_it_simulated() -> None:
    rng = np.random.default_rng(3)
    frequency = rng.integers(1, 12, 30_000).astype(float)
    values = sample_gamma_gamma(frequency, 4.0, 3.0, 20.0, rng)
    model = GammaGamma().fit(frequency, values)
    for name, value in {"p": 4.0, "q": 3.0, "gamma": 20.0}.items():
        assert model.params_[name] == pytest.approx(value, rel=0.1), name
    assert abs(model.spend_frequency_correlation_) < 0.05  # independent by construction
    assert np.isnan(sample_gamma_gamma([0.0], 4.0, 3.0, 20.0, rng)).all()


def test_bad_values_and_too_few_buyers_are_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"monetary_value must be a number > 0.*row 1"):
        GammaGamma().fit([1, 2, 0], [10.0, -3.0, np.nan])
    with pytest.raises(ModelIdentificationError, match="at least two repeat buyers"):
        GammaGamma().fit([0, 3, 0], [np.nan, 12.0, np.nan])
    with pytest.raises(ModelIdentificationError, match="at least two repeat buyers"):
        GammaGamma().fit([1, 3, 2], [12.0, 12.0, 12.0])
    with pytest.raises(RuntimeError, match="not fitted"):
        GammaGamma().conditional_expected_value([1], [2.0])
