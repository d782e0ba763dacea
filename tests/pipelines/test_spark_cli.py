"""`guanxi features build` and `guanxi score` with `--engine spark`: the Polars engine's output."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from features.store import Store
from pipelines.cli import app
from serving.settings import get_settings
from tests.pipelines.test_score_store import champion  # noqa: F401  (fixture)
from tests.pipelines.test_spark import assert_same_snapshot
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
    champion: None,  # noqa: F811
    tmp_path: Path,
) -> None:
    args = ["score", "--events", str(sample / "events.parquet"), "--as-of", AS_OF]
    args += ["--tasks", "churn", "--explain", "3", "--no-store"]
    out = cli.invoke(app, [*args, "--out", str(tmp_path / "polars.parquet")])
    assert out.exit_code == 0, out.output
    out = cli.invoke(app, [*args, "--out", str(tmp_path / "spark.parquet"), *SPARK])
    assert out.exit_code == 0, out.output
    expected = pl.read_parquet(tmp_path / "polars.parquet")
    assert expected.height > 0
    assert_frame_equal(pl.read_parquet(tmp_path / "spark.parquet"), expected, check_exact=True)


def test_an_unknown_engine_is_refused(cli: CliRunner, sample: Path) -> None:  # noqa: F811
    args = ["features", "build", "--events", str(sample / "events.parquet"), "--as-of", AS_OF]
    out = cli.invoke(app, [*args, "--engine", "dask"])
    assert out.exit_code == 2
    assert "--engine" in out.output and "'dask' is not one of" in " ".join(out.output.split())
