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
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from models.artifact import apply_calibration

__all__ = ["METHODS", "choose_calibration", "fit_calibration"]

METHODS: Final[tuple[str, ...]] = ("isotonic", "sigmoid")


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
