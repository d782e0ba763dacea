"""Estimator factories: the logistic-regression baseline and XGBoost's training parameters.

The logistic baseline is a scikit-learn :class:`~sklearn.pipeline.Pipeline` (median imputation
with missing-value indicators, standard scaling, logistic regression), so its preprocessing
travels with it. XGBoost is trained through :func:`xgboost.train` with the parameters built by
:func:`xgb_params`: binary logistic objective, ``hist`` trees, a fixed seed and thread count.
"""

from __future__ import annotations

from typing import Any, Final

from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

__all__ = ["BOOSTER_BASE_PARAMS", "EVAL_METRIC", "logistic_pipeline", "xgb_params"]

EVAL_METRIC: Final = "logloss"
"""Metric XGBoost reports per boosting round; early stopping and pruning watch it."""

BOOSTER_BASE_PARAMS: Final[dict[str, Any]] = {
    "objective": "binary:logistic",
    "eval_metric": EVAL_METRIC,
    "tree_method": "hist",
    "verbosity": 0,
}


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
        dropped by the imputer.
    """
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", add_indicator=True)),
            ("scale", StandardScaler()),
            ("logistic", LogisticRegression(C=C, max_iter=1000, random_state=seed)),
        ]
    )


def xgb_params(params: dict[str, Any], seed: int = 0, nthread: int = 2) -> dict[str, Any]:
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

    Returns
    -------
    dict
        :data:`BOOSTER_BASE_PARAMS` plus ``params`` (without ``n_estimators``), ``seed`` and
        ``nthread``.
    """
    tuned = {k: v for k, v in params.items() if k != "n_estimators"}
    return {**BOOSTER_BASE_PARAMS, **tuned, "seed": seed, "nthread": nthread}
