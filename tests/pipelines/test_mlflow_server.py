"""The real thing: `guanxi train` (real training) against a real `mlflow server` process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from models import registry
from pipelines.sample import generate_sample

pytestmark = pytest.mark.slow


def _guanxi(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from pipelines.cli import main; main()", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_train_against_real_server(mlflow_server: str, tmp_path: Path) -> None:
    summary = generate_sample(1200, tmp_path / "sample", seed=5)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": mlflow_server,
        "GUANXI_HOME": str(tmp_path / "home"),
        "COLUMNS": "120",
    }
    done = _guanxi(
        "train", "--task", "churn",
        "--events", str(summary.events_path),
        "--customers", str(summary.customers_path),
        "--as-of", "2024-10-31", "--horizon", "90", "--trials", "2", "--seed", "1",
        env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "registered churn version 1 as @challenger" in " ".join(done.stdout.split())

    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    mv = client.get_model_version_by_alias("churn", "challenger")
    assert str(mv.version) == "1" and mv.tags["grade"] in {"A", "B", "C"}
    assert 0.0 <= float(mv.tags["xgboost_roc_auc"]) <= 1.0
    run = client.get_run(mv.run_id)
    assert run.info.status == "FINISHED"
    assert {"xgboost_roc_auc", "logistic_roc_auc", "rule_roc_auc"} <= set(run.data.metrics)
    assert run.data.params["task"] == "churn" and run.data.params["horizon"] == "90"
    children = client.search_runs(
        [run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'"
    )
    assert len(children) == 2
    plots = {f.path for f in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/gains.png", "plots/reliability.png", "plots/shap_beeswarm.png"} <= plots

    # nothing was written next to the code or in the working directory's default ./mlruns
    assert not (tmp_path / "home" / "mlflow.db").exists()

    # the model loads back through the server (artifact proxy) and scores its own input example
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_registry_uri(mlflow_server)
    try:
        bundle = registry.load_model("churn", alias="challenger").bundle
        pyfunc = mlflow.pyfunc.load_model("models:/churn@challenger")
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
    example = pyfunc.input_example
    np.testing.assert_allclose(pyfunc.predict(example), bundle.predict_proba(example))

    listed = _guanxi("models", env=env)
    assert listed.returncode == 0 and "challenger" in listed.stdout
