from __future__ import annotations

import socket
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from training.tracking import (
    TrackingUnavailableError,
    check_tracking,
    configure_tracking,
    default_tracking_uri,
    experiment_id,
    flatten_metrics,
    metric_name,
    training_run,
)


def test_flatten_metrics_prefixes_and_skips_non_numbers() -> None:
    metrics = {
        "xgboost": {"roc_auc": 0.8, "precision@5": 0.25, "n": 10},
        "rule": {"roc_auc": float("nan"), "name": "recency", "flag": True},
    }
    assert flatten_metrics(metrics) == {
        "xgboost_roc_auc": 0.8,
        "xgboost_precision_at_5": 0.25,
        "xgboost_n": 10.0,
    }
    assert metric_name("a b/c:d-e.f(g)") == "a b/c:d-e.f_g_"


def test_tracking_uri_defaults_to_home_and_env_wins(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    try:
        uri = configure_tracking(tmp_path / "h")
        assert (
            uri == default_tracking_uri(tmp_path / "h") == f"sqlite:///{tmp_path / 'h'}/mlflow.db"
        )
        monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
        assert configure_tracking(tmp_path / "h") == "http://127.0.0.1:9"
        assert mlflow.get_registry_uri() == "http://127.0.0.1:9"
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)


def test_check_tracking_gives_up_with_a_clear_message() -> None:
    check_tracking("sqlite:///anything.db")  # not a server: nothing to probe
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TrackingUnavailableError, match=r"not reachable after 2 attempt\(s\)"):
        check_tracking(f"http://127.0.0.1:{port}", attempts=2, timeout=0.5, wait=0.0)


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
