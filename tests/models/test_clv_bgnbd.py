"""BG/NBD: the published CDNOW fit, the analytic gradient, stable predictions, clear failures.

Published numbers: Fader, Hardie and Lee (2005), "'Counting Your Customers' the Easy Way: An
Alternative to the Pareto/NBD Model", Marketing Science 24(2), 275-284: on the CDNOW 1/10 sample
(2,357 customers, calibration to 1997-09-30, weeks) r = 0.243, alpha = 4.414, a = 0.793,
b = 2.426, log-likelihood -9582.4; for x = 2, t_x = 30.43, T = 38.86 the expected purchases in the
next 39 weeks are 1.226.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy.optimize import approx_fprime

from features.value import repeat_purchase_summary
from models.clv import BGNBD, ModelIdentificationError, sample_bgnbd
from models.clv.bgnbd import _Objective
from tests.cdnow import CALIBRATION_END, cdnow_events

PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


@pytest.fixture(scope="module")
def cdnow() -> dict[str, np.ndarray]:
    summary = repeat_purchase_summary(cdnow_events(), CALIBRATION_END, time_unit_days=7)
    return {c: summary[c].to_numpy() for c in ("frequency", "recency", "T")}


@pytest.fixture(scope="module")
def fitted(cdnow: dict[str, np.ndarray]) -> BGNBD:
    return BGNBD().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])


def test_cdnow_parameters_and_log_likelihood_match_the_paper(fitted: BGNBD) -> None:
    for name, value in PUBLISHED.items():
        assert fitted.params_[name] == pytest.approx(value, rel=0.01), name
    assert fitted.log_likelihood_ == pytest.approx(-9582.4, rel=0.01)
    assert fitted.log_likelihood_ == pytest.approx(-9582.4, abs=0.05)  # to the printed digit
    assert fitted.n_customers_ == 2357
    assert fitted.n_repeat_buyers_ == 946


def test_cdnow_conditional_expectation_matches_the_paper(fitted: BGNBD) -> None:
    expected = fitted.conditional_expected_purchases(39, 2, 30.43, 38.86)
    assert expected[0] == pytest.approx(1.226, rel=0.01)
    published = BGNBD.from_params(**PUBLISHED)
    assert published.conditional_expected_purchases(39, 2, 30.43, 38.86)[0] == pytest.approx(
        1.226, abs=5e-4
    )


def test_log_likelihood_is_the_sum_of_customer_terms_and_unit_free(
    fitted: BGNBD, cdnow: dict[str, np.ndarray]
) -> None:
    x, tx, t = cdnow["frequency"], cdnow["recency"], cdnow["T"]
    assert fitted.log_likelihood(x, tx, t).sum() == pytest.approx(fitted.log_likelihood_)
    in_days = BGNBD().fit(x, tx * 7, t * 7)
    assert in_days.alpha_ == pytest.approx(fitted.alpha_ * 7, rel=1e-5)
    for name in ("r", "a", "b"):
        assert in_days.params_[name] == pytest.approx(fitted.params_[name], rel=1e-5)
    # each purchase's density is per day instead of per week: log 7 per repeat purchase
    assert in_days.log_likelihood_ == pytest.approx(fitted.log_likelihood_ - x.sum() * np.log(7))


def test_weights_equal_repeated_rows(cdnow: dict[str, np.ndarray]) -> None:
    x, tx, t = cdnow["frequency"], cdnow["recency"], cdnow["T"]
    doubled = BGNBD().fit(np.r_[x, x[:500]], np.r_[tx, tx[:500]], np.r_[t, t[:500]])
    weights = np.r_[np.full(500, 2.0), np.ones(x.size - 500)]
    weighted = BGNBD().fit(x, tx, t, weights=weights)
    for name, value in doubled.params_.items():
        assert weighted.params_[name] == pytest.approx(value, rel=1e-5)
    assert weighted.log_likelihood_ == pytest.approx(doubled.log_likelihood_)


@pytest.mark.parametrize(
    "theta", [np.log([0.243, 0.5, 0.793, 2.426]), np.array([1.0, -2.0, 0.3, -0.7])]
)
def test_analytic_gradient_matches_finite_differences(
    cdnow: dict[str, np.ndarray], theta: np.ndarray
) -> None:
    x, tx, t = cdnow["frequency"], cdnow["recency"], cdnow["T"]
    objective = _Objective(x, tx / t.mean(), t / t.mean(), np.full(x.size, 1 / x.size))
    analytic = objective(theta)[1]
    numeric = approx_fprime(theta, lambda th: objective(th)[0], 1e-7)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-7)
    # and the objective is the mean of the per-customer log-likelihoods (times rescaled)
    r, alpha, a, b = np.exp(theta)
    model = BGNBD.from_params(r, alpha, a, b)
    per_customer = model.log_likelihood(x, tx / t.mean(), t / t.mean())
    assert objective(theta)[0] == pytest.approx(per_customer.mean())


def _exact_expectation(
    r: float, alpha: float, a: float, b: float, x: int, tx: float, t_obs: float, t: float
) -> float:
    """FHL 2005 eq. 10 as printed, in 40-digit arithmetic."""
    mpmath.mp.dps = 40
    r_, al, a_, b_ = (mpmath.mpf(v) for v in (r, alpha, a, b))
    z = mpmath.mpf(t) / (al + t_obs + t)
    c = a_ + b_ + x - 1
    head = c / (a_ - 1)
    if c == 0:  # x = 0, a + b = 1: lim c 2F1(A, B; c; z) = A B z 2F1(A + 1, B + 1; 2; z)
        head = 1 / (a_ - 1)
        limit = (r_ + x) * (b_ + x) * z * mpmath.hyp2f1(r_ + x + 1, b_ + x + 1, 2, z)
        bracket = -(((al + t_obs) / (al + t_obs + t)) ** (r_ + x)) * limit
    else:
        bracket = 1 - ((al + t_obs) / (al + t_obs + t)) ** (r_ + x) * mpmath.hyp2f1(
            r_ + x, b_ + x, c, z
        )
    odds = (a_ / (b_ + x - 1)) * ((al + t_obs) / (al + tx)) ** (r_ + x) if x > 0 else 0
    return float(head * bracket / (1 + odds))


@settings(max_examples=60, deadline=None)
@given(
    r=st.floats(0.02, 20),
    alpha=st.floats(0.1, 500),
    a=st.floats(0.05, 8).filter(lambda v: abs(v - 1) > 1e-3),
    b=st.floats(0.1, 30),
    x=st.sampled_from([0, 1, 2, 7, 40, 300, 1000]),  # 1000 with z near 1: scipy gives NaN
    t_obs=st.floats(1, 1000),
    share=st.floats(0.01, 1),
    t=st.floats(0.1, 3000),
)
# x = 0 with a + b = 1: the head a + b + x - 1 is 0 and 2F1(...; 0; z) a pole (was NaN)
@example(r=1.0, alpha=1.0, a=0.5, b=0.5, x=0, t_obs=1.0, share=1.0, t=1.0)
# a and b huge (fitted at a sample cutoff): (1 - z)^(a - 1) underflows, its 2F1 overflows (was NaN)
@example(r=2.52, alpha=240.24, a=78925.44, b=7265169.47, x=3, t_obs=400.0, share=0.8, t=90.0)
@example(r=2.52, alpha=240.24, a=78925.44, b=7265169.47, x=0, t_obs=30.0, share=1.0, t=90.0)
def test_conditional_expectation_is_accurate_where_the_textbook_form_overflows(
    r: float, alpha: float, a: float, b: float, x: int, t_obs: float, share: float, t: float
) -> None:
    tx = t_obs * share if x > 0 else 0.0
    model = BGNBD.from_params(r, alpha, a, b)
    ours = model.conditional_expected_purchases(t, x, tx, t_obs)[0]
    exact = _exact_expectation(r, alpha, a, b, x, tx, t_obs, t)
    assert ours == pytest.approx(exact, rel=1e-6, abs=1e-9)


def test_predictions_by_hand() -> None:
    model = BGNBD.from_params(r=0.5, alpha=2.0, a=1.5, b=3.0)
    # P(alive): 1 for x = 0; 1 / (1 + a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x))
    odds = 1.5 / (3 + 2 - 1) * ((2 + 10) / (2 + 4)) ** (0.5 + 2)
    np.testing.assert_allclose(model.p_alive([0, 2], [0, 4], [10, 10]), [1.0, 1 / (1 + odds)])
    # no purchase in t: 1 - P(alive) + P(alive) ((alpha + T) / (alpha + T + t))^(r + x)
    alive = 1 / (1 + odds)
    quiet = (12 / 17) ** 2.5
    assert model.probability_no_purchase(5, 2, 4, 10)[0] == pytest.approx(1 - alive + alive * quiet)
    assert model.probability_no_purchase(0, 2, 4, 10)[0] == pytest.approx(1.0)
    # median time to next purchase given alive: (alpha + T)(2^(1 / (r + x)) - 1)
    assert model.median_time_to_next_purchase(2, 10)[0] == pytest.approx(12 * (2 ** (1 / 2.5) - 1))
    # nothing is expected in no time; a new customer's expectation is eq. 9
    assert model.conditional_expected_purchases(0, 2, 4, 10)[0] == 0.0
    head = (1.5 + 3 - 1) / (1.5 - 1)
    eq9 = head * (1 - (2 / 12) ** 0.5 * float(mpmath.hyp2f1(0.5, 3, 3.5, 10 / 12)))
    assert model.expected_purchases(10)[0] == pytest.approx(eq9, rel=1e-9)


def test_a_plus_b_equal_to_one_is_the_limit_for_new_customers() -> None:
    # x = 0, a + b = 1 exactly: the limit, continuous with a + b on either side of 1
    at = BGNBD.from_params(1.0, 1.0, 0.5, 0.5).conditional_expected_purchases(1.0, 0, 0.0, 1.0)
    assert np.isfinite(at[0])
    for b in (0.5 - 1e-9, 0.5 + 1e-9):
        near = BGNBD.from_params(1.0, 1.0, 0.5, b).conditional_expected_purchases(1.0, 0, 0.0, 1.0)
        assert at[0] == pytest.approx(near[0], rel=1e-7)


def test_a_equal_to_one_is_the_limit() -> None:
    near = [BGNBD.from_params(0.5, 2.0, a, 3.0) for a in (1 - 1e-5, 1.0, 1 + 1e-5)]
    values = [m.conditional_expected_purchases(20, 3, 8, 10)[0] for m in near]
    assert np.isfinite(values).all()
    assert values[1] == pytest.approx(values[0], rel=1e-4)
    assert values[1] == pytest.approx(values[2], rel=1e-4)


def test_recovers_the_parameters_it_simulated() -> None:
    rng = np.random.default_rng(7)
    truth = {"r": 0.8, "alpha": 30.0, "a": 0.6, "b": 3.0}
    drawn = sample_bgnbd(rng.uniform(100, 700, 40_000), rng=rng, **truth)
    model = BGNBD().fit(drawn["frequency"], drawn["recency"], drawn["T"])
    for name, value in truth.items():
        assert model.params_[name] == pytest.approx(value, rel=0.15), name
    # the fit is a maximum: the true parameters explain the data no better
    true_ll = BGNBD.from_params(**truth).log_likelihood(
        drawn["frequency"], drawn["recency"], drawn["T"]
    )
    assert model.log_likelihood_ >= true_ll.sum()


def test_simulated_summaries_are_valid() -> None:
    drawn = sample_bgnbd(np.full(1000, 52.0), 0.5, 5.0, 0.7, 2.0, np.random.default_rng(1))
    x, tx, t = drawn["frequency"], drawn["recency"], drawn["T"]
    assert (x >= 0).all() and (tx >= 0).all() and (tx <= t).all()
    assert ((x > 0) | (tx == 0)).all()
    BGNBD.from_params(0.5, 5.0, 0.7, 2.0).log_likelihood(x, tx, t)  # accepted


def test_no_repeat_buyer_is_a_clear_error() -> None:
    with pytest.raises(ModelIdentificationError, match="no customer has a repeat purchase"):
        BGNBD().fit([0, 0, 0], [0, 0, 0], [10, 20, 30])


def test_nobody_dropping_out_cannot_identify_the_dropout() -> None:
    # everybody bought on the last day of a long steady history: no sign of dropout at all
    x = np.tile([5.0, 10.0, 20.0], 50)
    with pytest.raises(ModelIdentificationError, match="cannot identify"):
        BGNBD().fit(x, np.full(x.size, 100.0), np.full(x.size, 100.0))


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "message"),
    [
        ([1, -1], [2, 0], [5, 5], "frequency must be a whole number"),
        ([1.5], [2], [5], "frequency must be a whole number"),
        ([1], [6], [5], "recency must be <= T"),
        ([0], [3], [5], "recency must be 0 when frequency is 0"),
        ([1, 1], [2, np.nan], [5, 5], r"recency is missing or not finite at row 1"),
        ([1], [2], [5, 6], "one value per customer"),
    ],
)
def test_impossible_summaries_name_the_field(
    frequency: list[float],
    recency: list[float],
    T: list[float],  # noqa: N803
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        BGNBD().fit(frequency, recency, T)


def test_unfitted_model_says_so() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        BGNBD().p_alive(1, 1, 2)
    with pytest.raises(ValueError, match="must be > 0"):
        BGNBD.from_params(0.2, -1, 1, 1)
