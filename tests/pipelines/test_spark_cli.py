"""`guanxi features build`, `score`, `value` and `train` with `--engine spark`."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import numpy as np
import polars as pl
import pytest
from mlflow.tracking import MlflowClient
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from features.store import Store
from models import registry
from pipelines.cli import app
from pipelines.sample import generate_sample
from serving.settings import get_settings
from tests.pipelines.test_spark import assert_same_snapshot
from tests.pipelines.test_spark_value import _same as same_values
from tests.pipelines.test_train_cli import AS_OF, cli, sample  # noqa: F401  (fixtures)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.slow

SPARK = ["--engine", "spark", "--spark-master", "local[2]"]


def test_features_build_on_spark_stores_the_polars_snapshot(
    spark: SparkSession,
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
) -> None:
    args = ["features", "build", "--events", str(sample / "events.parquet")]
    args += ["--customers", str(sample / "customers.parquet"), "--as-of", AS_OF]
    store = Store(get_settings().home)
    day = date.fromisoformat(AS_OF)
    out = cli.invoke(app, args)
    assert out.exit_code == 0, out.output
    polars_engine = store.read_snapshot(day)
    out = cli.invoke(app, [*args, *SPARK])
    assert out.exit_code == 0, out.output
    assert_same_snapshot(store.read_snapshot(day), polars_engine)


def test_score_on_spark_writes_the_polars_scores(
    spark: SparkSession,
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    args = ["score", "--events", str(sample / "events.parquet"), "--as-of", AS_OF]
    args += ["--tasks", "churn", "--explain", "3", "--no-store"]
    out = cli.invoke(app, [*args, "--out", str(tmp_path / "polars.parquet")])
    assert out.exit_code == 0, out.output
    out = cli.invoke(app, [*args, "--out", str(tmp_path / "spark.parquet"), *SPARK])
    assert out.exit_code == 0, out.output
    assert "scores of churn on Spark ..." in out.output  # the step, on standard error
    expected = pl.read_parquet(tmp_path / "polars.parquet")
    assert expected.height > 0
    assert_frame_equal(pl.read_parquet(tmp_path / "spark.parquet"), expected, check_exact=True)
    # the same rows as a Spark table: the snapshot is built on Spark, the scores are the same
    _save_table(spark, pl.read_parquet(sample / "events.parquet"), "crm.events")
    args[1:3] = ["--events-table", "crm.events"]
    out = cli.invoke(app, [*args, "--out", str(tmp_path / "table.parquet"), *SPARK])
    assert out.exit_code == 0, out.output
    assert "built on Spark from Spark table crm.events" in " ".join(out.output.split())
    assert_frame_equal(pl.read_parquet(tmp_path / "table.parquet"), expected, check_exact=True)


def test_score_on_spark_keeps_the_table_it_writes_in_the_store(
    spark: SparkSession,
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    # the store takes Spark's scores a part at a time, cast to the task's columns: the kept
    # table must be the rows --out got, and those the Polars engine's
    args = ["score", "--events", str(sample / "events.parquet"), "--as-of", AS_OF]
    args += ["--tasks", "churn", "--explain", "3"]
    out = cli.invoke(app, [*args, "--no-store", "--out", str(tmp_path / "polars.parquet")])
    assert out.exit_code == 0, out.output
    out = cli.invoke(app, [*args, "--out", str(tmp_path / "spark.parquet"), *SPARK])
    assert out.exit_code == 0, out.output
    written = pl.read_parquet(tmp_path / "spark.parquet")
    assert_frame_equal(written, pl.read_parquet(tmp_path / "polars.parquet"), check_exact=True)
    kept = Store(get_settings().home).read_scores("churn", date.fromisoformat(AS_OF), "1")
    assert kept is not None
    assert_frame_equal(kept, written.drop("as_of"), check_exact=True)


def test_score_on_spark_of_the_stored_snapshot_without_events(
    spark: SparkSession,
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    """`guanxi score --engine spark` without --events scores the store's snapshot on Spark: the
    rows of the Polars engine given the events."""
    events = ["--events", str(sample / "events.parquet")]
    out = cli.invoke(app, ["features", "build", *events, "--as-of", AS_OF])
    assert out.exit_code == 0, out.output
    args = ["score", "--as-of", AS_OF, "--tasks", "churn", "--explain", "3", "--no-store"]
    out = cli.invoke(app, [*args, *events, "--out", str(tmp_path / "polars.parquet")])
    assert out.exit_code == 0, out.output
    out = cli.invoke(app, [*args, "--out", str(tmp_path / "spark.parquet"), *SPARK])
    assert out.exit_code == 0, out.output
    assert "no --events given" in " ".join(out.output.split())
    expected = pl.read_parquet(tmp_path / "polars.parquet")
    assert expected.height > 0
    assert_frame_equal(pl.read_parquet(tmp_path / "spark.parquet"), expected, check_exact=True)


def test_an_unknown_engine_is_refused(cli: CliRunner, sample: Path) -> None:  # noqa: F811
    args = ["features", "build", "--events", str(sample / "events.parquet"), "--as-of", AS_OF]
    out = cli.invoke(app, [*args, "--engine", "dask"])
    assert out.exit_code == 2
    assert "--engine" in out.output and "'dask' is not one of" in " ".join(out.output.split())


# --- a Spark catalog table as the source (--engine spark --events-table, no --events) --------


def _save_table(spark: SparkSession, events: pl.DataFrame, name: str) -> None:
    spark.sql("CREATE DATABASE IF NOT EXISTS crm")
    spark.createDataFrame(events.to_arrow()).write.mode("overwrite").saveAsTable(name)


def _fails(cli: CliRunner, *args: str) -> str:  # noqa: F811
    out = cli.invoke(app, [*args, *SPARK], env={"COLUMNS": "250"})
    assert out.exit_code == 1, out.output
    return " ".join(out.output.split())


def test_features_build_from_a_spark_table_equals_the_parquet_snapshot(
    spark: SparkSession,
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    events = pl.read_parquet(sample / "events.parquet")
    codes = {t: f"X{i}" for i, t in enumerate(sorted(events["event_type"].unique()))}
    users = events.rename({"customer_id": "cust_no", "ts": "created_at"}).with_columns(
        pl.col("event_type").replace_strict(codes)
    )
    _save_table(spark, users, "crm.raw_events")
    mapping = tmp_path / "map.yaml"
    lines = ["customer_id: cust_no", "ts: created_at", "event_types:"]
    mapping.write_text("\n".join([*lines, *(f"  {c}: {t}" for t, c in codes.items())]) + "\n")
    store = Store(get_settings().home)
    day = date.fromisoformat(AS_OF)
    parquet = ["features", "build", "--events", str(sample / "events.parquet"), "--as-of", AS_OF]
    out = cli.invoke(app, parquet)
    assert out.exit_code == 0, out.output
    from_parquet = store.read_snapshot(day)
    table = ["features", "build", "--events-table", "crm.raw_events", "--as-of", AS_OF]
    out = cli.invoke(app, [*table, "--mapping", str(mapping), *SPARK])
    assert out.exit_code == 0, out.output
    assert_same_snapshot(store.read_snapshot(day), from_parquet)
    info = store.snapshot_info(day).events
    assert info is not None and info.path == "Spark table crm.raw_events"


def test_a_spark_table_with_problems_is_reported_and_nothing_written(
    spark: SparkSession,
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    store = Store(get_settings().home)
    build = ["features", "build", "--as-of", AS_OF, "--events-table"]
    out = _fails(cli, *build, "crm.nope")
    assert "Spark table crm.nope" in out and "no such table" in out
    events = pl.read_parquet(sample / "events.parquet")
    _save_table(spark, events.drop("ts"), "crm.no_ts")
    out = _fails(cli, *build, "crm.no_ts")
    assert "Spark table crm.no_ts" in out and "ts" in out and "required column is missing" in out
    mapping = tmp_path / "map.yaml"
    mapping.write_text("customer_id: cust_no\n")
    out = _fails(cli, *build, "crm.no_ts", "--mapping", str(mapping))
    assert "the mapping maps 'customer_id' to 'cust_no'" in out
    bad = events.with_columns(
        pl.when(pl.int_range(pl.len()) < 3).then(pl.lit("teleport")).otherwise("event_type")
        .alias("event_type")
    )  # fmt: skip
    _save_table(spark, bad, "crm.bad_types")
    out = _fails(cli, *build, "crm.bad_types")
    assert "Spark table crm.bad_types" in out and "unknown event type" in out
    assert "'teleport'" in out and "nothing was written" in out
    assert store.list_snapshots() == []


def test_events_are_needed_unless_a_spark_table_is_named(
    cli: CliRunner,  # noqa: F811
) -> None:
    out = cli.invoke(app, ["features", "build", "--as-of", AS_OF])
    assert out.exit_code == 2 and "--events" in out.output
    out = cli.invoke(app, ["features", "build", "--as-of", AS_OF, "--events-table", "events"])
    assert out.exit_code == 2 and "with --engine spark" in " ".join(out.output.split())


def test_value_from_a_spark_table_equals_the_value_from_parquet(
    spark: SparkSession,
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    _save_table(spark, pl.read_parquet(sample / "events.parquet"), "crm.events")
    args = ["value", "--as-of", AS_OF, "--no-store", *SPARK]
    parquet = ["--events", str(sample / "events.parquet"), "--out", str(tmp_path / "p.parquet")]
    out = cli.invoke(app, [*args, *parquet])
    assert out.exit_code == 0, out.output
    steps = [f"purchase summaries as of {AS_OF} on Spark ...", "values on Spark ..."]
    assert all(step in out.output for step in steps), out.output  # on standard error
    table = ["--events-table", "crm.events", "--out", str(tmp_path / "t.parquet")]
    out = cli.invoke(app, [*args, *table], env={"COLUMNS": "250"})
    assert out.exit_code == 0, out.output
    assert "no holdout check: the events are a Spark table" in " ".join(out.output.split())
    expected = pl.read_parquet(tmp_path / "p.parquet")
    assert expected.height > 0
    same_values(pl.read_parquet(tmp_path / "t.parquet"), expected)


# --- guanxi train --engine spark: the booster fitted by xgboost.spark, registered as usual ---


def test_train_on_spark_registers_a_model_that_loads_and_scores(
    spark: SparkSession,
    cli: CliRunner,  # noqa: F811
    tmp_path: Path,
) -> None:
    summary = generate_sample(1200, tmp_path / "sample", seed=5)
    args = ["train", "--task", "churn", "--events", str(summary.events_path)]
    args += ["--customers", str(summary.customers_path), "--as-of", "2024-10-31"]
    args += ["--horizon", "90", "--trials", "2", "--seed", "1", *SPARK, "--spark-workers", "2"]
    out = cli.invoke(app, args)
    assert out.exit_code == 0, out.output
    assert "registered churn version 1 as @challenger" in " ".join(out.output.split())
    mv = registry.get_version("churn", registry.CHALLENGER)
    assert mv is not None
    run = MlflowClient().get_run(mv.run_id)
    assert run.data.params["final_fit"].startswith("final fit on Spark (local[2], 2 XGBoost")
    card = mlflow.artifacts.load_text(f"runs:/{mv.run_id}/model_card.md")
    assert "xgboost.spark.SparkXGBClassifier" in card
    # the registered model is a bundle like any other: loads without pickle and scores
    bundle = registry.load_model("churn", alias=registry.CHALLENGER).bundle
    pyfunc = mlflow.pyfunc.load_model(f"models:/churn@{registry.CHALLENGER}")
    example = pyfunc.input_example
    np.testing.assert_allclose(pyfunc.predict(example), bundle.predict_proba(example))
    assert float(mv.tags["xgboost_roc_auc"]) > 0.5
