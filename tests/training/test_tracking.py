"""Training runs in MLflow: the experiment under GUANXI_HOME, run statuses on errors."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from training.tracking import experiment_id, training_run


def test_experiment_artifacts_live_under_home(local_tracking: Path) -> None:
    exp = experiment_id("churn", local_tracking)
    assert experiment_id("churn", local_tracking) == exp
    location = MlflowClient().get_experiment(exp).artifact_location
    assert location == (local_tracking.resolve() / "mlartifacts" / "churn").as_uri()


@pytest.mark.parametrize(("error", "status"), [(KeyboardInterrupt, "KILLED"), (OSError, "FAILED")])
def test_training_run_status_on_errors(local_tracking: Path, error, status) -> None:
    exp = experiment_id("churn", local_tracking)
    with pytest.raises(error), training_run(exp, "r") as run:
        raise error
    assert MlflowClient().get_run(run.info.run_id).info.status == status
    assert mlflow.active_run() is None
