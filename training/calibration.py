"""Calibration of booster margins on held-out time.

The booster is fitted on the training cutoffs; its margins on the *validation cutoff* (a later
cutoff the booster never trained on, see :mod:`training.datasets`) are mapped to probabilities
by one of two methods:

``isotonic``
    :class:`sklearn.isotonic.IsotonicRegression` on the margin, exported as its step points
    (``x``, ``y``) and applied with ``np.interp`` (flat beyond the ends).
``sigmoid``
    Platt scaling on the margin: ``1 / (1 + exp(-(a * margin + b)))``, ``a`` and ``b`` from an
    unpenalised logistic regression.

The method is chosen by 2-fold cross-fitting *within* the validation cutoff: the validation rows
are split into two folds by customer (all of a customer's rows fall in the same fold), each
method is fitted on one fold and scored by Brier on the other, and the method with the lower mean
Brier is then refitted on the whole validation cutoff. The result is the calibration dict of
:class:`models.artifact.ModelBundle`, applied by :func:`models.artifact.apply_calibration`.

The season correction
---------------------
A map fitted on one cutoff is right for that cutoff's season only. The positive rate moves with
the month the label window covers: on the 20k sample, churn (90 days) is 0.52 at a July cutoff and
0.42 at an October one, whose window holds the November-December season, and repurchase moves the
other way (0.40 against 0.49); a map fitted in July then over-states churn in October by about 10
points. The booster's inputs describe each customer's past, not the calendar ahead, so the shift
is a change of prior and is corrected as one (:func:`season_shift`): the rate expected at a target
cutoff ``c`` is the rate at the anchor cutoff ``a`` (the latest with known labels: the validation
cutoff when evaluating the test cutoff, the test cutoff for the model that ships) moved by last
year's change between the same two dates (:func:`expected_rate`),
``logit(rate_c) = logit(rate_a) + logit(rate(c - 364)) - logit(rate(a - 364))``,
and a constant is added to every row's probability on the task's link scale
(:attr:`models.tasks.TaskSpec.season_link`) so that their mean is that rate: log-odds by default;
for churn, whose label is the *absence* of orders, ``log(-log p)``, i.e. the season multiplies
every customer's order rate (a constant on the log-odds over-corrected the customers most likely
to churn, who order little in any season: a bin 5.5 points off at 20k). Only labels
whose window ends before ``c`` are read. Without a year of labelled history
before the anchor there is no correction (shift 0), and the model card says so.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit, logit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from models.artifact import apply_calibration, shift_probability

__all__ = [
    "METHODS",
    "SEASON_DAYS",
    "choose_calibration",
    "expected_rate",
    "fit_calibration",
    "season_shift",
    "strict_isotonic",
]

METHODS: Final[tuple[str, ...]] = ("isotonic", "sigmoid")

SEASON_DAYS: Final = 364
"""Days back to the same season last year (52 weeks: the same weekday)."""


def fit_calibration(
    margin: np.ndarray, y: np.ndarray, method: str, sample_weight: np.ndarray | None = None
) -> dict[str, Any]:
    """Fit one calibration map from margins to probabilities.

    Parameters
    ----------
    margin : numpy.ndarray
        Booster margins (log-odds) of held-out rows.
    y : numpy.ndarray
        Their 0/1 labels.
    method : {"isotonic", "sigmoid"}
        Calibration method.
    sample_weight : numpy.ndarray, optional
        Row weights (e.g. for rows from a negative sample).

    Returns
    -------
    dict
        ``{"method": "isotonic", "x": [...], "y": [...]}`` or
        ``{"method": "sigmoid", "a": a, "b": b}``.

    Raises
    ------
    ValueError
        If the method is unknown or ``y`` holds a single class.
    """
    m = np.asarray(margin, dtype=np.float64)
    yv = np.asarray(y, dtype=np.int64)
    if len(np.unique(yv)) < 2:
        raise ValueError("calibration needs both positive and negative held-out rows")
    if method == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
            m, yv, sample_weight=sample_weight
        )
        return {
            "method": "isotonic",
            "x": iso.X_thresholds_.tolist(),
            "y": iso.y_thresholds_.tolist(),
        }
    if method == "sigmoid":
        platt = LogisticRegression(C=np.inf).fit(m.reshape(-1, 1), yv, sample_weight=sample_weight)
        return {"method": "sigmoid", "a": float(platt.coef_[0, 0]), "b": float(platt.intercept_[0])}
    raise ValueError(f"unknown calibration method {method!r}; expected one of {METHODS}")


def strict_isotonic(
    margin: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
) -> dict[str, Any]:
    """Fit an isotonic map whose steps are joined at their centres: strictly increasing.

    :class:`sklearn.isotonic.IsotonicRegression` pools the margins into blocks of one rate each;
    the map interpolates between each block's centre (the mean of its first and last margin) at
    that rate, and beyond the first and last centres down to ``min(margin) - 1`` and up to
    ``max(margin) + 1`` by a slope of 0.1% of the end rates (rates kept within [1e-6, 1 - 1e-6]
    for that), so two different margins get different probabilities: the map never ties what the
    margin orders (a rule-backed version ranks as its rule,
    :func:`training.train.fit_rule_booster`). Exported as the ``isotonic`` method (``x``,
    ``y``), applied with ``np.interp``.

    Parameters
    ----------
    margin : numpy.ndarray
        Margins of held-out rows.
    y : numpy.ndarray
        Their 0/1 labels.
    sample_weight : numpy.ndarray, optional
        Row weights.

    Returns
    -------
    dict
        ``{"method": "isotonic", "x": [...], "y": [...]}`` with ``x`` and ``y`` strictly
        increasing.

    Raises
    ------
    ValueError
        If ``y`` holds a single class.
    """
    m = np.asarray(margin, dtype=np.float64)
    fitted = fit_calibration(m, y, "isotonic", sample_weight)
    xs, ys = np.asarray(fitted["x"]), np.asarray(fitted["y"])
    block = np.concatenate([[0], np.cumsum(np.diff(ys) != 0)])
    n = int(block[-1]) + 1
    centres = np.array([xs[block == b].mean() for b in range(n)])
    # a rate of exactly 0 or 1 at an end would leave no room below or above it
    rates = np.clip([ys[block == b][0] for b in range(n)], 1e-6, 1 - 1e-6)
    lo, hi = float(m.min()) - 1.0, float(m.max()) + 1.0
    x_out = np.concatenate([[lo], centres, [hi]])
    y_out = np.concatenate([[rates[0] * (1 - 1e-3)], rates, [rates[-1] + (1 - rates[-1]) * 1e-3]])
    keep = np.concatenate([[True], np.diff(x_out) > 0])
    return {"method": "isotonic", "x": x_out[keep].tolist(), "y": y_out[keep].tolist()}


def choose_calibration(
    margin: np.ndarray, y: np.ndarray, groups: np.ndarray
) -> tuple[dict[str, Any], dict[str, float]]:
    """Pick isotonic or sigmoid by cross-fitted Brier and refit it on all rows.

    Parameters
    ----------
    margin : numpy.ndarray
        Booster margins of the validation rows.
    y : numpy.ndarray
        Their 0/1 labels.
    groups : numpy.ndarray
        The customer of each row; fold = rank of the customer id modulo 2.

    Returns
    -------
    calibration : dict
        The chosen method refitted on all rows (see :func:`fit_calibration`).
    brier : dict of str to float
        Cross-fitted Brier score per method, plus ``"none"`` (the raw logistic of the margin).
    """
    m = np.asarray(margin, dtype=np.float64)
    yv = np.asarray(y, dtype=np.int64)
    _, codes = np.unique(np.asarray(groups), return_inverse=True)
    fold = codes % 2
    brier: dict[str, float] = {}
    for method in METHODS:
        errors = []
        for k in (0, 1):
            fit, held = fold != k, fold == k
            if len(np.unique(yv[fit])) < 2 or not held.any():
                errors.append(np.inf)
                continue
            cal = fit_calibration(m[fit], yv[fit], method)
            errors.append(float(np.mean((apply_calibration(cal, m[held]) - yv[held]) ** 2)))
        brier[method] = float(np.mean(errors))
    brier["none"] = float(np.mean((apply_calibration({"method": "none"}, m) - yv) ** 2))
    best = min(METHODS, key=lambda name: brier[name])
    return fit_calibration(m, yv, best), brier


def expected_rate(anchor: float, year_ago_target: float, year_ago_anchor: float) -> float | None:
    """Positive rate expected at a target cutoff from an anchor's and last year's rates.

    Parameters
    ----------
    anchor : float
        Positive rate at the anchor cutoff ``a`` (labels known).
    year_ago_target, year_ago_anchor : float
        Positive rates at ``c - 364`` and ``a - 364`` days.

    Returns
    -------
    float or None
        ``expit(logit(anchor) + logit(year_ago_target) - logit(year_ago_anchor))``; None when a
        rate is 0, 1 or NaN (nothing to move).
    """
    rates = np.array([anchor, year_ago_target, year_ago_anchor], dtype=np.float64)
    if not np.all((rates > 0) & (rates < 1)):
        return None
    odds = logit(rates)
    return float(expit(odds[0] + odds[1] - odds[2]))


def season_shift(proba: np.ndarray, rate: float, link: str = "logit") -> float:
    """Constant on the link scale that moves the mean of ``proba`` to ``rate`` (a prior shift).

    Parameters
    ----------
    proba : numpy.ndarray
        Calibrated probabilities of every row at the target cutoff.
    rate : float
        The positive rate expected there (:func:`expected_rate`), in (0, 1).
    link : {"logit", "cloglog", "loglog"}, default "logit"
        The scale (:func:`models.artifact.shift_probability`; the task's ``season_link``).

    Returns
    -------
    float
        ``d`` with ``mean(shift_probability(proba, d, link)) == rate`` (within 1e-9); 0 without
        rows.
    """
    p = np.clip(np.asarray(proba, dtype=np.float64), 1e-9, 1 - 1e-9)
    if p.size == 0:
        return 0.0

    def gap(d: float) -> float:
        return float(np.mean(shift_probability(p, d, link))) - rate

    return float(brentq(gap, -20.0, 20.0, xtol=1e-9))
