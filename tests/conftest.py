"""Shared fixtures: a tiny model bundle, local tracking, real MLflow and PostgreSQL servers.

Also the property tests' settings, everywhere: Hypothesis' own ``ci`` profile (which Hypothesis
loads by itself only where ``CI`` is set). Each test's examples follow from its code (derandomized),
so a run's verdict is the code's, not a draw's; no deadline and no ``too_slow`` health check (no
test passes or fails on wall time); no example database; a failure prints its falsifying example
and the ``@reproduce_failure`` line that replays it. ``--hypothesis-profile=explore`` draws new
random examples instead, with the same rules otherwise (the README's Testing section).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import hypothesis
import mlflow
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from mlflow.tracking import MlflowClient

from features.contracts import FEATURE_SET_VERSION
from models.artifact import ModelBundle
from models.registry import ENV_DEFAULTS, configure_tracking
from tests.processes import Postgres, start_postgres, stop, stop_postgres, wait_status
from tests.processes import mlflow_server as start_mlflow_server

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

hypothesis.settings.register_profile(
    "explore", hypothesis.settings.get_profile("ci"), derandomize=False
)
hypothesis.settings.load_profile("ci")

TINY_FEATURES = ["recency_days", "orders_90d", "unresolved_complaints"]


@pytest.fixture(autouse=True)
def _restore_environment() -> Iterator[None]:
    """Give every test back the environment variables it started with.

    Code under test sets ``GUANXI_*`` in-process (``guanxi serve --dev`` its secrets and
    ``GUANXI_DEV``, the demo ``GUANXI_TASKS``), and ``monkeypatch.delenv`` of a variable that was
    unset restores nothing: one leaked ``GUANXI_DEV=1`` let the settings tests that followed in CI
    start without the secrets they must refuse. Session fixtures are set up before this one, so
    what they set stays.
    """
    before = dict(os.environ)
    yield
    if dict(os.environ) != before:
        os.environ.clear()
        os.environ.update(before)


def _tiny_frame(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            "recency_days": rng.integers(0, 400, n).astype(float),
            "orders_90d": rng.poisson(2, n).astype(float),
            "unresolved_complaints": rng.poisson(0.3, n).astype(float),
        },
        index=pd.Index([f"c{i:04d}" for i in range(n)], name="customer_id"),
    )
    x.iloc[::17, 1] = np.nan
    logit = 0.01 * (x["recency_days"] - 200) + 0.8 * x["unresolved_complaints"]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit.to_numpy()))).astype(int)
    return x, y


@pytest.fixture(scope="session")
def tiny_data() -> tuple[pd.DataFrame, np.ndarray]:
    """200 hand-seeded churn rows over three registered features (NaNs in ``orders_90d``)."""
    return _tiny_frame()


@pytest.fixture(scope="session")
def tiny_bundle(tiny_data: tuple[pd.DataFrame, np.ndarray]) -> ModelBundle:
    """A 20-tree depth-3 churn booster with a sigmoid calibration."""
    x, y = tiny_data
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "eta": 0.3, "seed": 0, "nthread": 1},
        xgb.DMatrix(x.to_numpy(), label=y, missing=np.nan),
        num_boost_round=20,
    )
    return ModelBundle(
        task="churn",
        booster=booster,
        feature_names=list(TINY_FEATURES),
        calibration={"method": "sigmoid", "a": 0.9, "b": -0.1},
        feature_set_version=FEATURE_SET_VERSION,
        categories=[],
        metadata={"grade": "B", "metrics": {"xgboost": {"roc_auc": 0.8}}},
    )


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised, empty MLflow SQLite database (copied per test: migrations take seconds)."""
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def local_tracking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_mlflow_db: Path
) -> Iterator[Path]:
    """Point MLflow at a SQLite store in ``tmp_path`` (GUANXI_HOME); yields the home."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(empty_mlflow_db, home / "mlflow.db")
    monkeypatch.setenv("GUANXI_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    for key, value in ENV_DEFAULTS.items():
        monkeypatch.setenv(key, value)
    configure_tracking(home)
    yield home
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    """Start a real ``mlflow server`` on 127.0.0.1 (port 0, SQLite backend in ``tmp_path``).

    Waits for ``/health`` (up to 90 s), yields the URI and stops the server's process group.
    """
    root = tmp_path / "mlflow-server"
    root.mkdir()
    log = root / "server.log"
    proc, port = start_mlflow_server(root, log)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_status(f"{uri}/health", 200, proc, log, attempts=450)
        yield uri
    finally:
        stop(proc)


# --- PostgreSQL ---------------------------------------------------------------------------------

PG_SAMPLE_END = date(2025, 12, 31)
"""Last day of the sample data loaded into the session's PostgreSQL server."""


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A real PostgreSQL server for the session: initdb in a temporary folder, loopback port.

    Run as the ``postgres`` system user when the tests run as root. Skipped when PostgreSQL is not
    installed, except in CI (``CI=true``), where ``tests/install.sh`` must have installed it.
    """
    try:
        server = start_postgres()
    except (FileNotFoundError, subprocess.CalledProcessError) as error:
        if os.environ.get("CI") == "true":
            raise
        detail = getattr(error, "stderr", b"") or b""
        pytest.skip(f"no PostgreSQL server: {error} {detail.decode(errors='replace')[-300:]}")
    try:
        yield server
    finally:
        stop_postgres(server)


def loaded_by(module: str) -> set[str]:
    """Name every module a fresh interpreter has loaded once it has imported ``module``.

    For the tests that keep a heavy import off a light path (the demo's MLflow, the drift
    module's optimiser): the test process itself has imported everything already.
    """
    code = f"import sys, {module}; print(*sorted(sys.modules))"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return set(done.stdout.split())


def create_database(server: Postgres, name: str) -> str:
    """Create an empty database on ``server``; return its URI."""
    import adbc_driver_postgresql.dbapi as postgresql

    with (
        postgresql.connect(server.uri(), autocommit=True) as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute(f'CREATE DATABASE "{name}"')
    return server.uri(name)


@pytest.fixture
def pg_database(postgres: Postgres) -> str:
    """A new, empty database on the session's server; yields its URI (password included)."""
    return create_database(postgres, f"t_{secrets.token_hex(6)}")


@pytest.fixture(scope="session")
def pg_sample(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """1,500 sample customers (ending 2025-12-31) as Parquet files and as tables in PostgreSQL.

    Returns the database URI (tables ``events`` with primary key ``event_id`` and ``customers``
    with primary key ``customer_id``) and the folder of the same rows as Parquet.
    """
    import adbc_driver_postgresql.dbapi as postgresql
    import polars as pl

    from features.database import write_table
    from pipelines.sample import generate_sample

    folder = tmp_path_factory.mktemp("pg-sample")
    generate_sample(1500, folder, seed=11, end=PG_SAMPLE_END)
    uri = create_database(postgres, "crm")
    events = pl.read_parquet(folder / "events.parquet")
    keyed = events.with_row_index("event_id", offset=1).cast({"event_id": pl.Int64})
    write_table(uri, "events", keyed)
    write_table(uri, "customers", pl.read_parquet(folder / "customers.parquet"))
    with postgresql.connect(uri) as connection, connection.cursor() as cursor:
        cursor.execute("ALTER TABLE events ADD PRIMARY KEY (event_id)")
        cursor.execute("ALTER TABLE customers ADD PRIMARY KEY (customer_id)")
        connection.commit()
    return uri, folder


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    """A Spark session in local mode on two cores (UTC), started once and stopped at the end.

    Its catalog tables are written to a temporary warehouse folder.
    """
    from pipelines.spark import spark_session

    warehouse = {"spark.sql.warehouse.dir": str(tmp_path_factory.mktemp("spark-warehouse"))}
    session = spark_session("local[2]", app_name="guanxi-tests", config=warehouse)
    session.conf.set("spark.sql.shuffle.partitions", "4")
    yield session
    session.stop()
