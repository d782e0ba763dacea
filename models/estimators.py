"""Estimator factories: the logistic-regression baseline and XGBoost's training parameters.

The logistic baseline is :class:`LogisticBaseline` (median imputation with missing-value
indicators, standard scaling, logistic regression), so its preprocessing travels with it. XGBoost
is trained through :func:`xgboost.train` with the parameters built by
:func:`xgb_params`: an objective of :data:`OBJECTIVES` (binary logistic by default), ``hist``
trees, a fixed seed and thread count.

Objectives
----------
``binary:logistic``
    Log loss over every row; the margin is a log-odds. Early stopping watches ``logloss``.
``rank:ndcg``, ``rank:pairwise``
    Learning to rank (LambdaMART), rows grouped by query: for a ranked task a query is one
    customer at one cutoff (its candidate categories). The margin is a ranking score, not a
    log-odds: a probability comes only from a calibration fitted on held-out rows
    (:mod:`training.calibration`). Early stopping watches ``ndcg@3`` (higher is better).
"""

from __future__ import annotations

from typing import Any, Final, Self

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

__all__ = [
    "BINARY_OBJECTIVE",
    "BOOSTER_BASE_PARAMS",
    "DESIGN_ROWS",
    "EVAL_METRIC",
    "OBJECTIVES",
    "RANKING_EVAL_METRIC",
    "LogisticBaseline",
    "eval_metric",
    "is_ranking",
    "xgb_params",
]

BINARY_OBJECTIVE: Final = "binary:logistic"
"""The default objective: log loss over every row."""

OBJECTIVES: Final[tuple[str, ...]] = (BINARY_OBJECTIVE, "rank:ndcg", "rank:pairwise")
"""Objectives a classifier may be trained with (see the module docstring)."""

EVAL_METRIC: Final = "logloss"
"""Metric XGBoost reports per boosting round under the binary objective; early stopping and
pruning watch it (lower is better)."""

RANKING_EVAL_METRIC: Final = "ndcg@3"
"""Metric reported per boosting round under a ranking objective (higher is better)."""

BOOSTER_BASE_PARAMS: Final[dict[str, Any]] = {
    "objective": BINARY_OBJECTIVE,
    "eval_metric": EVAL_METRIC,
    "tree_method": "hist",
    "verbosity": 0,
}


def is_ranking(objective: str) -> bool:
    """Tell whether an objective learns to rank rows grouped by query.

    Parameters
    ----------
    objective : str
        An XGBoost objective.

    Returns
    -------
    bool
        True for ``rank:*`` objectives (their rows need a ``qid`` and their margin is a score).
    """
    return objective.startswith("rank:")


def eval_metric(objective: str) -> tuple[str, bool]:
    """Return the metric early stopping watches under an objective, and whether higher is better.

    Parameters
    ----------
    objective : str
        One of :data:`OBJECTIVES`.

    Returns
    -------
    tuple of (str, bool)
        ``("logloss", False)`` or, for a ranking objective, ``("ndcg@3", True)``.

    Raises
    ------
    ValueError
        If the objective is not one of :data:`OBJECTIVES`.
    """
    if objective not in OBJECTIVES:
        known = ", ".join(OBJECTIVES)
        raise ValueError(f"unknown objective {objective!r}; expected one of {known}")
    return (RANKING_EVAL_METRIC, True) if is_ranking(objective) else (EVAL_METRIC, False)


DESIGN_ROWS: Final = 16_384
"""Rows of the input read at a time while :meth:`LogisticBaseline.design` fills its matrix."""


class LogisticBaseline:
    """The logistic-regression baseline: median imputation, missing indicators, scaling, L2 logit.

    Its fitted coefficients and probabilities are those of the scikit-learn pipeline
    ``SimpleImputer(strategy="median", add_indicator=True) -> StandardScaler(copy=False) ->
    LogisticRegression(C=C, max_iter=1000, random_state=seed)``, with less memory: the fit
    builds the regression's float64 design matrix once, in one allocation filled a block of rows
    at a time (:meth:`design`), and scales it in place. On a million rows the pipeline held about
    4.4 times its input beside it: ``SimpleImputer.fit`` takes ``numpy.ma.median`` of the whole
    matrix (a sorted copy with its argsort and masks; no imputer setting avoids it) and its
    ``transform`` a copy of the input plus the stacked copy with the indicators. Here the
    medians are taken a column at a time.

    Parameters
    ----------
    seed : int, default 0
        ``random_state`` of the regression.
    C : float, default 1.0
        Inverse L2 regularisation strength.

    Attributes
    ----------
    medians_ : numpy.ndarray
        Median of each input column's present values; NaN for a column missing on every row,
        which the design leaves out (as ``SimpleImputer`` drops it).
    indicated_ : numpy.ndarray
        Input columns missing somewhere in the fit rows; each has a 0/1 indicator column.
    scaler_ : sklearn.preprocessing.StandardScaler
        Standard scaling of the design's columns (fitted on the design, applied in place).
    logistic_ : sklearn.linear_model.LogisticRegression
        The regression on the scaled design.
    """

    def __init__(self, seed: int = 0, C: float = 1.0) -> None:  # noqa: N803
        self.medians_ = np.empty(0)
        self.indicated_ = np.empty(0, dtype=np.intp)
        self.scaler_ = StandardScaler(copy=False)
        self.logistic_ = LogisticRegression(C=C, max_iter=1000, random_state=seed)

    def design(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:  # noqa: N803
        """Return the unscaled design matrix of some rows: imputed columns, then indicators.

        Parameters
        ----------
        X : pandas.DataFrame or numpy.ndarray
            Rows with the fit's columns, in order; NaN is a missing value.

        Returns
        -------
        numpy.ndarray
            C-ordered float64, one row per row of ``X``: the columns with a median, missing
            values replaced by it, then 1.0/0.0 for "missing" in each column of
            :attr:`indicated_` (``SimpleImputer(strategy="median", add_indicator=True)``'s
            output), filled :data:`DESIGN_ROWS` rows at a time.

        Raises
        ------
        ValueError
            If ``X`` has another number of columns than the fit rows.
        """
        if X.shape[1] != len(self.medians_):
            raise ValueError(
                f"X has {X.shape[1]} columns; the logistic baseline was fitted on "
                f"{len(self.medians_)}"
            )
        kept = np.flatnonzero(~np.isnan(self.medians_))
        out = np.empty((X.shape[0], len(kept) + len(self.indicated_)))
        for lo in range(0, X.shape[0], DESIGN_ROWS):
            rows = (
                X.iloc[lo : lo + DESIGN_ROWS]
                if isinstance(X, pd.DataFrame)
                else X[lo : lo + DESIGN_ROWS]
            )
            block = np.asarray(rows, dtype=np.float64)
            missing = np.isnan(block)
            hi = lo + len(block)
            out[lo:hi, : len(kept)] = np.where(missing, self.medians_, block)[:, kept]
            out[lo:hi, len(kept) :] = missing[:, self.indicated_]
        return out

    def fit(
        self,
        X: pd.DataFrame | np.ndarray,  # noqa: N803
        y: np.ndarray,
        sample_weight: np.ndarray | None = None,
    ) -> Self:
        """Fit the medians, the scaling and the regression.

        Parameters
        ----------
        X : pandas.DataFrame or numpy.ndarray
            Training rows (float); NaN is a missing value.
        y : numpy.ndarray
            0/1 labels.
        sample_weight : numpy.ndarray, optional
            Row weights of the regression (the scaling and the medians are unweighted, as in
            the pipeline).

        Returns
        -------
        LogisticBaseline
            ``self``, fitted.
        """
        columns = (
            (X.iloc[:, j] for j in range(X.shape[1]))
            if isinstance(X, pd.DataFrame)
            else (X[:, j] for j in range(X.shape[1]))
        )
        medians, indicated = [], []
        for j, column in enumerate(columns):
            values = np.asarray(column, dtype=np.float64)
            present = values[~np.isnan(values)]
            medians.append(np.median(present) if len(present) else np.nan)
            if len(present) < len(values):
                indicated.append(j)
        self.medians_ = np.asarray(medians, dtype=np.float64)
        self.indicated_ = np.asarray(indicated, dtype=np.intp)
        design = self.design(X)
        self.scaler_ = StandardScaler(copy=False)  # a block at a time: its temporaries are
        for lo in range(0, len(design), DESIGN_ROWS):  # a block's, not the design's
            self.scaler_.partial_fit(design[lo : lo + DESIGN_ROWS])
        self.logistic_.fit(self.scaler_.transform(design), y, sample_weight=sample_weight)
        return self

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:  # noqa: N803
        """Return the class probabilities of some rows (``X`` as :meth:`design` takes it).

        Parameters
        ----------
        X : pandas.DataFrame or numpy.ndarray
            The rows; their design is scaled in place, then given to the regression.

        Returns
        -------
        numpy.ndarray
            Shape ``(n, 2)``: P(0) and P(1) per row, as ``LogisticRegression.predict_proba``.
        """
        return self.logistic_.predict_proba(self.scaler_.transform(self.design(X)))


def xgb_params(
    params: dict[str, Any], seed: int = 0, nthread: int = 2, objective: str = BINARY_OBJECTIVE
) -> dict[str, Any]:
    """Complete tuned hyper-parameters into the parameter dict of :func:`xgboost.train`.

    Parameters
    ----------
    params : dict
        Tuned hyper-parameters (``max_depth``, ``learning_rate``, ...). ``n_estimators`` is the
        number of boosting rounds and is left out (pass it to :func:`xgboost.train` as
        ``num_boost_round``).
    seed : int, default 0
        XGBoost's random seed.
    nthread : int, default 2
        Threads XGBoost may use.
    objective : str, default "binary:logistic"
        One of :data:`OBJECTIVES`; it sets ``eval_metric`` too (:func:`eval_metric`).

    Returns
    -------
    dict
        :data:`BOOSTER_BASE_PARAMS` with ``objective`` and its ``eval_metric``, plus ``params``
        (without ``n_estimators``), ``seed`` and ``nthread``.

    Raises
    ------
    ValueError
        If the objective is not one of :data:`OBJECTIVES`.
    """
    metric, _ = eval_metric(objective)
    tuned = {k: v for k, v in params.items() if k != "n_estimators"}
    return {
        **BOOSTER_BASE_PARAMS,
        "objective": objective,
        "eval_metric": metric,
        **tuned,
        "seed": seed,
        "nthread": nthread,
    }
