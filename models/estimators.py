"""Estimator factories: the logistic-regression baseline and XGBoost's training parameters.

The logistic baseline is a scikit-learn :class:`~sklearn.pipeline.Pipeline` (median imputation
with missing-value indicators, standard scaling, logistic regression), so its preprocessing
travels with it. XGBoost is trained through :func:`xgboost.train` with the parameters built by
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

from typing import Any, Final

from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

__all__ = [
    "BINARY_OBJECTIVE",
    "BOOSTER_BASE_PARAMS",
    "EVAL_METRIC",
    "OBJECTIVES",
    "RANKING_EVAL_METRIC",
    "eval_metric",
    "is_ranking",
    "logistic_pipeline",
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


def logistic_pipeline(seed: int = 0, C: float = 1.0) -> Pipeline:  # noqa: N803
    """Build the logistic-regression baseline.

    Parameters
    ----------
    seed : int, default 0
        ``random_state`` of the regression.
    C : float, default 1.0
        Inverse L2 regularisation strength.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Unfitted ``impute -> scale -> logistic`` pipeline. Columns that are entirely missing are
        dropped by the imputer. The scaler works in place on the imputer's output (a new array),
        so fitting on millions of rows holds one scaled copy of them, not two.
    """
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", add_indicator=True)),
            ("scale", StandardScaler(copy=False)),  # scales the imputer's own new array
            ("logistic", LogisticRegression(C=C, max_iter=1000, random_state=seed)),
        ]
    )


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
