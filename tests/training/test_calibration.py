"""Calibration maps fitted on margins and applied with the artifact's apply_calibration."""

from __future__ import annotations

import numpy as np
import pytest

from models.artifact import apply_calibration, shift_probability
from training.calibration import (
    choose_calibration,
    expected_rate,
    fit_calibration,
    season_shift,
    strict_isotonic,
)


def _data(n: int = 4000, scale: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    margin = rng.normal(size=n) * 2
    y = (rng.random(n) < 1 / (1 + np.exp(-margin / scale))).astype(int)  # over-confident
    return margin, y


def test_sigmoid_recovers_platt_scale() -> None:
    margin, y = _data()
    cal = fit_calibration(margin, y, "sigmoid")
    assert cal["method"] == "sigmoid"
    assert cal["a"] == pytest.approx(0.5, abs=0.08)
    assert cal["b"] == pytest.approx(0.0, abs=0.1)


def test_isotonic_is_monotone_and_in_range() -> None:
    margin, y = _data()
    cal = fit_calibration(margin, y, "isotonic")
    p = apply_calibration(cal, np.sort(margin))
    assert np.all(np.diff(p) >= 0) and p.min() >= 0 and p.max() <= 1
    assert cal["x"] == sorted(cal["x"])


def test_choose_beats_raw_margin() -> None:
    margin, y = _data()
    cal, brier = choose_calibration(margin, y, groups=np.arange(len(y)))
    assert cal["method"] in ("isotonic", "sigmoid")
    assert min(brier["isotonic"], brier["sigmoid"]) < brier["none"]


def test_single_class_is_refused() -> None:
    with pytest.raises(ValueError, match="both"):
        fit_calibration(np.array([0.1, 0.2]), np.array([1, 1]), "sigmoid")
    with pytest.raises(ValueError, match="unknown"):
        fit_calibration(np.array([0.1, 0.2]), np.array([0, 1]), "beta")


def test_expected_rate_moves_the_anchor_by_last_years_change() -> None:
    # churn on the 20k sample: 0.518 at the July validation cutoff; last year 0.523 in July and
    # 0.429 in October, so October is expected at expit(logit .518 + logit .429 - logit .523)
    got = expected_rate(0.518, 0.429, 0.523)
    odds = np.log(0.518 / 0.482) + np.log(0.429 / 0.571) - np.log(0.523 / 0.477)
    assert got == pytest.approx(1 / (1 + np.exp(-odds)))
    assert expected_rate(0.3, 0.2, 0.2) == pytest.approx(0.3)  # no change last year: none now
    assert expected_rate(0.3, 0.0, 0.2) is None and expected_rate(np.nan, 0.2, 0.2) is None


def test_season_shift_moves_the_mean_and_keeps_the_order() -> None:
    p = np.array([0.1, 0.4, 0.7])
    shift = season_shift(p, 0.25)
    moved = apply_calibration({"method": "none", "shift": shift}, np.log(p / (1 - p)))
    assert moved.mean() == pytest.approx(0.25, abs=1e-8)
    assert np.all(np.diff(moved) > 0) and shift < 0
    assert season_shift(np.array([]), 0.3) == 0.0
    # a sigmoid map with a shift is the sigmoid with the shift added to its intercept
    m = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_allclose(
        apply_calibration({"method": "sigmoid", "a": 0.8, "b": 0.1, "shift": -0.4}, m),
        apply_calibration({"method": "sigmoid", "a": 0.8, "b": -0.3}, m),
    )


def test_shift_links_multiply_an_event_rate() -> None:
    rate = np.array([0.1, 0.5, 2.0])  # events expected in the window
    some, none = -np.expm1(-rate), np.exp(-rate)  # P(at least one), P(none)
    np.testing.assert_allclose(shift_probability(some, np.log(2), "cloglog"), -np.expm1(-2 * rate))
    np.testing.assert_allclose(shift_probability(none, np.log(2), "loglog"), np.exp(-2 * rate))
    assert shift_probability(none, 0.0, "loglog") is none
    with pytest.raises(ValueError, match="unknown shift link"):
        shift_probability(none, 1.0, "probit")
    # the season shift solves for the constant on the chosen scale
    d = season_shift(none, 0.2, "loglog")
    assert shift_probability(none, d, "loglog").mean() == pytest.approx(0.2, abs=1e-8)
    assert d > 0  # fewer customers without an order: a higher order rate


def test_strict_isotonic_never_ties_two_margins() -> None:
    """Centred isotonic: strictly increasing over the margins' range and beyond, and as close
    to the observed rates as the plain isotonic map."""
    rng = np.random.default_rng(3)
    margin = rng.random(5000)
    y = (rng.random(5000) < 0.05 + 0.2 * margin).astype(int)
    calibration = strict_isotonic(margin, y)
    assert calibration["method"] == "isotonic"
    assert np.all(np.diff(calibration["x"]) > 0) and np.all(np.diff(calibration["y"]) > 0)
    probe = np.linspace(-0.5, 1.5, 4001)
    assert np.all(np.diff(apply_calibration(calibration, probe)) > 0)
    plain = apply_calibration(fit_calibration(margin, y, "isotonic"), margin)
    strict = apply_calibration(calibration, margin)
    assert abs(np.mean((strict - y) ** 2) - np.mean((plain - y) ** 2)) < 1e-3
    assert strict.mean() == pytest.approx(y.mean(), abs=0.01)
