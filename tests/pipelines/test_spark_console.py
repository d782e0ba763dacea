"""What a Spark command prints: its own progress lines, not the JVM's and PySpark's warnings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.spark import LOG_LEVEL_ENV, spark_log_level
from tests.pipelines.test_train_cli import AS_OF, sample  # noqa: F401  (fixture)

SILENCED = (
    "log4j profile",  # Spark's "Using Spark's default log4j profile: ..."
    "resolves to a loopback address",
    "SPARK_LOCAL_IP",
    "NativeCodeLoader",
    "task of very large size",
    "Setting default log level",
    "PySpark does not yet fully support pandas",
    "FutureWarning",
    " WARN ",
)
"""Lines the finding F5 (session 19) saw before the result; none is an error."""


@pytest.mark.slow
def test_features_build_on_spark_prints_its_steps_and_no_library_warnings(
    sample: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    # a process of its own: the driver JVM's start-up lines come only from a JVM started there
    env = {**os.environ, "GUANXI_HOME": str(tmp_path / "home")}
    env.pop(LOG_LEVEL_ENV, None)
    args = ["features", "build", "--events", str(sample / "events.parquet")]
    args += ["--customers", str(sample / "customers.parquet"), "--as-of", AS_OF]
    args += ["--engine", "spark", "--spark-master", "local[2]"]
    run = subprocess.run(
        [sys.executable, "-c", "from pipelines.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"snapshot as of {AS_OF}" in run.stdout
    lines = run.stderr.splitlines()
    assert "starting Spark (local[2]) ..." in lines
    assert f"features as of {AS_OF} on Spark ..." in lines
    assert lines.index("starting Spark (local[2]) ...") < lines.index(
        f"features as of {AS_OF} on Spark ..."
    )
    printed = run.stdout + run.stderr
    assert not [line for line in SILENCED if line in printed], run.stderr


def test_the_spark_log_level_is_error_unless_the_variable_asks_for_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(LOG_LEVEL_ENV, raising=False)
    assert spark_log_level() == "ERROR"
    monkeypatch.setenv(LOG_LEVEL_ENV, " info ")
    assert spark_log_level() == "INFO"
    monkeypatch.setenv(LOG_LEVEL_ENV, "loud")
    with pytest.raises(ValueError, match=f"{LOG_LEVEL_ENV}=LOUD: not a Spark log level"):
        spark_log_level()
