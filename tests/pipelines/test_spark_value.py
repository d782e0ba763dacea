"""`guanxi value --engine spark`: the value table computed on Spark equals the Polars one."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.events import read_customers, read_events
from features.snapshot import build_snapshot
from features.value import repeat_purchase_summary
from models.registry import flatten_metrics
from pipelines.sample import generate_sample
from pipelines.spark import purchase_summary_spark
from pipelines.value import compute_values

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.slow

AS_OF = date(2024, 10, 31)
NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("spark-value-sample")
    generate_sample(300, out, seed=3)
    return out


def _same(got: pl.DataFrame, expected: pl.DataFrame) -> None:
    assert got.schema == expected.schema and got.height == expected.height
    assert_frame_equal(got, expected, check_exact=True)  # floats to the last bit


def test_summaries_on_spark_equal_the_polars_summaries(spark: SparkSession, sample: Path) -> None:
    from pyspark.sql import functions as sf

    # the Polars side from the rows backwards, each Spark bucket's rows in the order a shuffle of
    # randomly ordered partitions delivers them, in two partitionings
    events = read_events(sample / "events.parquet", now=NOW)
    expected = repeat_purchase_summary(events.reverse(), AS_OF)
    for seed, buckets in ((1, 8), (2, 3)):
        rows = spark.createDataFrame(events.to_arrow()).orderBy(sf.rand(seed)).repartition(4)
        got = purchase_summary_spark(rows, AS_OF, buckets=buckets)
        _same(pl.from_arrow(got.toArrow()).sort("customer_id"), expected)  # type: ignore[arg-type]


def test_value_table_on_spark_equals_the_polars_table(
    spark: SparkSession, sample: Path, local_tracking: Path
) -> None:
    events = read_events(sample / "events.parquet", now=NOW)
    people = read_customers(sample / "customers.parquet", now=NOW)
    snapshot = build_snapshot(events, people, AS_OF)
    polars_run = compute_values(events, snapshot, AS_OF, horizon_days=365)
    spark_run = compute_values(
        events, snapshot, AS_OF, horizon_days=365, engine="spark", spark_master="local[2]"
    )
    # the summaries' sums are exact, so the fit sees the same numbers and every value is equal
    _same(spark_run.table, polars_run.table)
    assert flatten_metrics(spark_run.fit.summary()) == flatten_metrics(polars_run.fit.summary())
    # every tier is present: the tiers rank all customers, not one bucket's
    assert set(spark_run.table["value_tier"].drop_nulls()) == set(
        polars_run.table["value_tier"].drop_nulls()
    )
