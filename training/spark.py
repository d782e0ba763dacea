"""The final XGBoost fit on Spark: ``guanxi train --engine spark`` (the ``guanxi[spark]`` extra).

What runs where:

- on the driver, as with the Polars engine: the events, the rows of every cutoff (capped by
  ``--max-customers`` and ``--max-rows-per-cutoff``), the baselines, the logistic regression, the
  Optuna search (each trial an in-process :func:`xgboost.train` with early stopping and the pruning
  callback), and after the fit the calibration, the evaluation and the card;
- on Spark: the final fit. The training rows and the validation rows of early stopping (their
  sampling weights in ``weight_col``, the validation rows flagged by ``validation_indicator_col``)
  are sent to the session and :class:`xgboost.spark.SparkXGBClassifier` fits the booster with
  the best trial's hyper-parameters (``n_estimators`` the trial's cap on rounds, early stopping
  after :data:`training.tuning.EARLY_STOPPING_ROUNDS` rounds without a better validation log loss),
  over ``num_workers`` Spark tasks that build each tree together (distributed ``hist``).

Tuning stays on the driver because the trials are many short fits of the same capped rows: on
Spark each would pay a job's start-up, and Optuna's pruning callback, which stops a weak trial
between boosting rounds, cannot reach into the executors. The booster that comes back is cut to its
best round and is an ordinary :class:`xgboost.Booster`: the model is stored, served and explained as
one fitted on the driver.

``SparkXGBClassifier`` fits ``binary:logistic`` only; the ranking objectives (cross-sell's
``rank:*``, rows grouped by customer) are refused (:class:`SparkFit` raises before any Spark work).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd
import xgboost as xgb

from models.estimators import BINARY_OBJECTIVE, xgb_params
from training.datasets import TaskData
from training.tuning import EARLY_STOPPING_ROUNDS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["SparkFit", "spark_rows"]

_FEATURES: Final = "features"
_LABEL: Final = "label"
_WEIGHT: Final = "weight"
_VALID: Final = "is_validation"
_NOT_BOOSTER: Final = ("nthread", "seed", "objective", "verbosity")
"""Keys of :func:`models.estimators.xgb_params` that ``SparkXGBClassifier`` sets itself: the
threads of a worker (``spark.task.cpus``), the seed (``random_state``) and the objective."""


def _columns(n_features: int) -> list[str]:
    """Plain Spark column names for the inputs (feature names may hold dots or spaces)."""
    return [f"f{i}" for i in range(n_features)]


def spark_rows(spark: SparkSession, train: TaskData, valid: TaskData) -> DataFrame:
    """Put training and validation rows in one Spark DataFrame, as ``SparkXGBClassifier`` reads.

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
        The session.
    train, valid : training.datasets.TaskData
        Training rows and the validation rows of early stopping, with their sampling weights.

    Returns
    -------
    pyspark.sql.DataFrame
        Columns ``features`` (an array of the float32 inputs in the order of ``train.X``; missing
        values NaN), ``label`` (0/1), ``weight`` (float64) and ``is_validation`` (boolean).

    Notes
    -----
    The inputs go in one array column, not one column each: with a list of feature columns,
    xgboost 3.2's ``create_dmatrix_from_partitions`` fails (``KeyError: 'values'``) on an Arrow
    batch of a partition that holds no validation row, or no training row.
    """
    from pyspark.sql import functions as F  # noqa: N812

    names = _columns(train.X.shape[1])

    def frame(data: TaskData, validation: bool) -> pd.DataFrame:
        x = data.X.to_numpy(dtype=np.float32, na_value=np.nan)
        out = pd.DataFrame(x, columns=names)
        out[_LABEL] = data.y.astype(np.int32)
        out[_WEIGHT] = data.weight.astype(np.float64)
        out[_VALID] = validation
        return out

    # one split at a time: never both splits' copies beside their concatenation
    rows = spark.createDataFrame(frame(train, False))
    rows = rows.unionByName(spark.createDataFrame(frame(valid, True)))
    # Spark holds pandas' NaN as null; XGBoost reads NaN as missing
    missing = F.lit(float("nan")).cast("float")
    inputs = F.array(*(F.coalesce(F.col(name), missing) for name in names)).alias(_FEATURES)
    return rows.select(inputs, _LABEL, _WEIGHT, _VALID)


@dataclass(frozen=True)
class SparkFit:
    """Fit the tuned booster on Spark with ``xgboost.spark.SparkXGBClassifier``.

    Passed to :func:`training.train.train_task` as ``final_fit``.

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
        The session to fit on (its master decides where: local cores or a cluster).
    num_workers : int, optional
        XGBoost workers, one Spark task each (None: the session's ``defaultParallelism``, every
        core of ``local[*]``). A fit waits until that many task slots are free at once.
    seed : int, default 0
        XGBoost's seed (``random_state``) and the seed of the random repartition of the rows.
    """

    spark: SparkSession
    num_workers: int | None = None
    seed: int = 0

    def __call__(
        self, train: TaskData, valid: TaskData, params: dict[str, Any], objective: str
    ) -> tuple[xgb.Booster, str]:
        """Fit one booster on ``train`` with early stopping on ``valid``.

        Parameters
        ----------
        train, valid : training.datasets.TaskData
            Training rows and validation rows; their weights are the booster's row weights.
        params : dict
            Hyper-parameters of :func:`training.tuning.suggest_params` (``n_estimators`` the cap
            on boosting rounds).
        objective : str
            The XGBoost objective; only ``binary:logistic``.

        Returns
        -------
        booster : xgboost.Booster
            Cut to its best round, without feature names (as a booster fitted on the driver).
        note : str
            One sentence for the model card: where it was fitted, on how many workers, the rounds.

        Raises
        ------
        ValueError
            If the objective is not ``binary:logistic`` (SparkXGBClassifier fits no ranking).
        """
        if objective != BINARY_OBJECTIVE:
            raise ValueError(
                f"--engine spark fits {BINARY_OBJECTIVE} only (xgboost.spark.SparkXGBClassifier); "
                f"objective {objective} groups rows by customer: train it with --engine polars"
            )
        from xgboost.spark import SparkXGBClassifier

        workers = self.num_workers or self.spark.sparkContext.defaultParallelism
        booster_params = {
            k: v
            for k, v in xgb_params(params, seed=self.seed, objective=objective).items()
            if k not in _NOT_BOOSTER
        }
        cap = int(params["n_estimators"])
        classifier = SparkXGBClassifier(
            features_col=_FEATURES,
            label_col=_LABEL,
            weight_col=_WEIGHT,
            validation_indicator_col=_VALID,
            num_workers=workers,
            force_repartition=True,  # else one worker may get only validation rows
            n_estimators=cap,
            early_stopping_rounds=EARLY_STOPPING_ROUNDS,
            random_state=self.seed,
            verbose=False,
            **booster_params,
        )
        model = classifier.fit(spark_rows(self.spark, train, valid))
        full = model.get_booster()
        booster = full[: full.best_iteration + 1]
        booster.feature_names = None
        booster.feature_types = None
        note = (
            f"final fit on Spark ({self.spark.sparkContext.master}, {workers} XGBoost workers, "
            f"xgboost.spark.SparkXGBClassifier) with the best trial's parameters: "
            f"{booster.num_boosted_rounds()} rounds kept of at most {cap} (early stopping on "
            f"the validation rows); the Optuna trials ran on the driver"
        )
        return booster, note
