"""The final XGBoost fit on Spark (``training.spark.SparkFit``) in local mode on two cores."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
import polars as pl
import pytest
import xgboost as xgb

from models.artifact import BOOSTER_FILE, BUNDLE_FILE, ModelBundle
from tests.training.conftest import AS_OF
from training.datasets import TaskData
from training.spark import SparkFit
from training.train import TrainConfig, TrainResult, train_task
from training.tuning import fit_booster

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

CONFIG = TrainConfig(trials=3, seed=1, nthread=1, shap_rows=200)
"""The fast settings of ``tests/training/test_train.py``."""

AUC_TOLERANCE = 0.02
"""Largest held-out ROC-AUC gap between the engines. Same rows, same hyper-parameters, but the
booster differs: the two Spark workers each sketch the bins of their half of the rows and build
every tree from the sum of their histograms, so split points (and the round early stopping picks)
move a little. On the 1,500-customer sample the test cutoff holds a few hundred rows, where
0.02 is a handful of pairs ranked the other way."""

PARAMS = {
    "n_estimators": 40,
    "max_depth": 2,
    "learning_rate": 0.3,
    "min_child_weight": 1.0,
    "subsample": 1.0,
    "colsample_bytree": 1.0,
    "reg_lambda": 1.0,
    "reg_alpha": 0.0,
}


def _weighted(n: int, seed: int) -> TaskData:
    """Rows where the label does not depend on the inputs and every negative weighs 9.

    Half the rows are positive: ignoring the weights, the fitted probability is about 0.5; with
    them the weighted positive rate is 1 / (1 + 9) = 0.1. The inputs take few distinct values, so
    every worker's bins are the values themselves.
    """
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1], n // 2)
    x = pd.DataFrame(
        {"a": rng.integers(0, 5, n).astype(float), "b": rng.integers(0, 3, n).astype(float)},
        index=pd.MultiIndex.from_arrays(
            [[date(2025, 1, 1)] * n, [f"c{i}" for i in range(n)]], names=["cutoff", "customer_id"]
        ),
    )
    x.iloc[::11, 1] = np.nan
    return TaskData(X=x, y=y, weight=np.where(y == 1, 1.0, 9.0))


@pytest.mark.slow
def test_the_spark_fit_keeps_the_sampling_weights(spark: SparkSession) -> None:
    train, valid = _weighted(800, seed=0), _weighted(400, seed=1)
    # Arrow batches of 100 rows: some hold training rows only (xgboost 3.2 fails on those with a
    # list of feature columns; see training.spark.spark_rows)
    batch = "spark.sql.execution.arrow.maxRecordsPerBatch"
    before = spark.conf.get(batch)
    spark.conf.set(batch, "100")
    try:
        booster, note = SparkFit(spark, num_workers=2)(train, valid, PARAMS, "binary:logistic")
    finally:
        spark.conf.set(batch, before)
    assert "2 XGBoost workers" in note and "local[2]" in note
    assert booster.feature_names is None
    x = valid.X.to_numpy(dtype=np.float32)
    p = booster.predict(xgb.DMatrix(x, missing=np.nan))
    assert p.mean() == pytest.approx(0.1, abs=0.02)  # unweighted it would be about 0.5
    # the same weighted fit in this process
    _, local = fit_booster(
        PARAMS,
        xgb.DMatrix(train.X.to_numpy(np.float32), label=train.y, weight=train.weight),
        xgb.DMatrix(x, label=valid.y, weight=valid.weight),
        nthread=1,
    )
    np.testing.assert_allclose(p, local.predict(xgb.DMatrix(x, missing=np.nan)), atol=0.01)


def test_a_ranking_objective_is_refused() -> None:
    data = _weighted(10, seed=0)
    no_session = cast(Any, None)  # refused before the session is touched
    with pytest.raises(ValueError, match=r"binary:logistic only.*rank:ndcg.*--engine polars"):
        SparkFit(no_session)(data, data, PARAMS, "rank:ndcg")


@pytest.fixture(scope="module")
def engines(
    spark: SparkSession, small_sample: tuple[pl.DataFrame, pl.DataFrame]
) -> tuple[TrainResult, TrainResult]:
    events, customers = small_sample
    polars = train_task(events, customers, "churn", AS_OF, 90, CONFIG)
    on_spark = train_task(
        events, customers, "churn", AS_OF, 90, CONFIG, final_fit=SparkFit(spark, 2, seed=1)
    )
    return polars, on_spark


@pytest.mark.slow
def test_spark_and_polars_engines_rank_the_held_out_rows_alike(
    engines: tuple[TrainResult, TrainResult],
) -> None:
    polars, on_spark = engines
    # the same held-out rows, to the last bit (the snapshot's float sums are exact since 2767495)
    pd.testing.assert_frame_equal(on_spark.holdout.X, polars.holdout.X, check_exact=True)
    gap = on_spark.metrics["xgboost"]["roc_auc"] - polars.metrics["xgboost"]["roc_auc"]
    print(
        f"held-out ROC-AUC polars {polars.metrics['xgboost']['roc_auc']:.4f}, "
        f"spark {on_spark.metrics['xgboost']['roc_auc']:.4f} (gap {gap:+.4f})"
    )
    assert abs(gap) <= AUC_TOLERANCE
    # fitted on the driver either way
    assert on_spark.metrics["logistic"] == pytest.approx(polars.metrics["logistic"], rel=1e-9)
    assert on_spark.params["best_params"] | {"n_estimators": 0} == polars.params["best_params"] | {
        "n_estimators": 0
    }
    assert "final_fit" not in polars.params
    assert on_spark.params["best_params"]["n_estimators"] == (
        on_spark.bundle.booster.num_boosted_rounds()
    )
    assert "final fit on Spark (local[2], 2 XGBoost workers" in on_spark.model_card


@pytest.mark.slow
def test_the_spark_fitted_bundle_round_trips(
    engines: tuple[TrainResult, TrainResult], tmp_path: Path
) -> None:
    _, on_spark = engines
    x = on_spark.holdout.X
    p = on_spark.bundle.predict_proba(x)
    on_spark.bundle.save(tmp_path / "m")
    assert sorted(f.name for f in (tmp_path / "m").iterdir()) == [BUNDLE_FILE, BOOSTER_FILE]
    np.testing.assert_allclose(ModelBundle.load(tmp_path / "m").predict_proba(x), p)
    assert on_spark.bundle.calibration["method"] in ("isotonic", "sigmoid")
