"""The Spark engine in local mode equals the Polars engine: snapshots, scores, reasons, deciles."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import numpy as np
import pandas as pd
import polars as pl
import pytest
import xgboost as xgb
from polars.testing import assert_frame_equal

from features.contracts import FEATURE_SET_VERSION
from features.events import read_customers, read_events
from features.snapshot import build_snapshot
from models import registry
from models.artifact import ModelBundle
from models.scoring import score_snapshot
from models.tasks import get_task, model_feature_names, model_frame, snapshot_categories
from pipelines import spark as spark_engine
from pipelines.sample import generate_sample
from pipelines.spark import build_snapshot_spark, read_table, score_spark, write_table

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.slow

AS_OF = date(2024, 10, 31)
NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("spark-sample")
    generate_sample(600, out, seed=11)
    return out


def _polars_snapshot(sample: Path, customers: bool = True) -> pl.DataFrame:
    events = read_events(sample / "events.parquet", now=NOW)  # in the file's order
    people = read_customers(sample / "customers.parquet", now=NOW) if customers else None
    return build_snapshot(events, people, AS_OF)


def assert_same_snapshot(got: pl.DataFrame, expected: pl.DataFrame) -> None:
    # every column, RFM scores and segments included, floats to the last bit
    assert_frame_equal(got, expected, check_exact=True)


def test_snapshot_equals_the_polars_snapshot(
    spark: SparkSession, sample: Path, tmp_path: Path
) -> None:
    events = read_table(spark, str(sample / "events.parquet"))
    customers = read_table(spark, str(sample / "customers.parquet"))
    built = build_snapshot_spark(events, customers, AS_OF, buckets=8)
    target = str(tmp_path / "snapshot")
    write_table(built, target)  # a Parquet folder, as on a cluster
    got = pl.read_parquet(f"{target}/*.parquet").sort("customer_id")
    expected = _polars_snapshot(sample)
    assert_same_snapshot(got, expected)
    # RFM scores rank all customers: built from a part of them alone, they differ
    frame = read_events(sample / "events.parquet", now=NOW)
    part = build_snapshot(frame.filter(pl.col("customer_id") < "C050"), None, AS_OF)
    alone = part.join(expected, on="customer_id", suffix="_all").filter(pl.col("orders_total") > 0)
    assert (alone["m_score"] != alone["m_score_all"]).any()


def test_snapshot_does_not_depend_on_the_order_of_the_buckets_rows(
    spark: SparkSession, sample: Path
) -> None:
    from pyspark.sql import functions as sf

    # the Polars side from the rows backwards, each Spark bucket's rows in the order a shuffle of
    # randomly ordered partitions delivers them, in two partitionings: every column to the bit
    frame = read_events(sample / "events.parquet", now=NOW)
    people = read_customers(sample / "customers.parquet", now=NOW)
    expected = build_snapshot(frame.reverse(), people, AS_OF)
    customers = read_table(spark, str(sample / "customers.parquet"))
    for seed, buckets in ((1, 3), (2, 5)):
        events = read_table(spark, str(sample / "events.parquet"))
        events = events.orderBy(sf.rand(seed)).repartition(buckets + 1)
        built = build_snapshot_spark(events, customers, AS_OF, buckets=buckets)
        assert_same_snapshot(pl.from_arrow(built.toArrow()).sort("customer_id"), expected)


def test_snapshot_without_customers_and_with_given_categories(
    spark: SparkSession, sample: Path
) -> None:
    events = read_table(spark, str(sample / "events.parquet"))
    built = build_snapshot_spark(events, None, AS_OF, categories=["Toys", "garden"], buckets=3)
    got = pl.from_arrow(built.toArrow()).sort("customer_id")
    frame = read_events(sample / "events.parquet", now=NOW)
    expected = build_snapshot(frame, None, AS_OF, ["Toys", "garden"])
    assert [c for c in got.columns if c.startswith("cat_")] == [
        "cat_toys_orders",
        "cat_garden_orders",
        "cat_toys_share",
        "cat_garden_share",
    ]
    assert_same_snapshot(got, expected)


def _register(bundle: ModelBundle, example: pd.DataFrame) -> str:
    with mlflow.start_run():
        uri = registry.log_bundle(bundle, example)
    version = registry.register_challenger(bundle.task, uri, {})
    bundle.metadata["registry"] = {"name": bundle.task, "version": version}
    return f"models:/{bundle.task}/{version}"


def _bundle(task: str, snapshot: pl.DataFrame) -> tuple[ModelBundle, pd.DataFrame]:
    """A small booster on the task's real inputs, labels from a hand-made rule plus noise."""
    categories = snapshot_categories(snapshot) if get_task(task).kind == "ranked" else []
    names = model_feature_names(task, snapshot, categories or None)
    x = model_frame(task, snapshot, names, categories or None)
    rng = np.random.default_rng(0)
    recency = x["recency_days"].fillna(800).to_numpy()
    y = (rng.random(len(x)) < 1 / (1 + np.exp(-(recency - 200) / 100))).astype(int)
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "eta": 0.3, "seed": 0, "nthread": 1},
        xgb.DMatrix(x.to_numpy(), label=y, missing=np.nan),
        num_boost_round=15,
    )
    # isotonic steps, flat beyond [-1, 1]: many rows share a score, so ties decide deciles
    calibration = {"method": "isotonic", "x": [-1.0, 0.0, 1.0], "y": [0.2, 0.5, 0.7]}
    bundle = ModelBundle(task, booster, names, calibration, FEATURE_SET_VERSION, categories)
    return bundle, x.head(5)


@pytest.mark.parametrize("task", ["churn", "cross_sell"])
def test_scores_and_reasons_equal_batch_scoring(
    spark: SparkSession, sample: Path, local_tracking: Path, task: str
) -> None:
    snapshot = _polars_snapshot(sample)
    bundle, example = _bundle(task, snapshot)
    uri = _register(bundle, example)
    expected = score_snapshot(bundle, snapshot, explain_k=3)
    frame = spark.createDataFrame(snapshot.to_arrow()).repartition(3)
    got = pl.from_arrow(score_spark(frame, bundle, uri, explain_k=3).toArrow())
    assert got.columns == expected.columns
    assert got.height == expected.height > 0
    assert_frame_equal(got, expected, check_exact=True, check_dtypes=True)
    if task == "churn":  # customers outside the population: a status and no score, alike
        outside = got.filter(pl.col("status") != "eligible")
        assert outside.height > 0 and outside["score"].null_count() == outside.height
    # deciles were decided by ties: the tie-break by snapshot order was needed
    assert expected["score"].n_unique() < expected.height / 2


def test_scores_run_python_over_the_snapshot_twice_only(
    spark: SparkSession,
    sample: Path,
    local_tracking: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One pass makes the model rows, one the statuses; the final sort reruns neither.

    The statuses were a lazy ``mapInArrow`` under the final ``orderBy``, whose range partitioner
    samples its input in a job of its own: every scoring call ran that Python pass over the whole
    snapshot twice (three passes in all).
    """
    snapshot = _polars_snapshot(sample)
    bundle, example = _bundle("churn", snapshot)
    uri = _register(bundle, example)
    rows_seen = spark.sparkContext.accumulator(0)
    status_of = spark_engine.population_status

    def counted(task: str, frame: pl.DataFrame, metadata: dict[str, object]) -> pl.DataFrame:
        rows_seen.add(frame.height)  # on the executors: added up on the driver
        return status_of(task, frame, metadata)

    monkeypatch.setattr(spark_engine, "population_status", counted)
    frame = spark.createDataFrame(snapshot.to_arrow()).repartition(3)
    score_spark(frame, bundle, uri).write.format("noop").mode("overwrite").save()
    assert rows_seen.value == 2 * snapshot.height
