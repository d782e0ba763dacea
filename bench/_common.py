"""Pieces the serving benchmarks share: synthetic champion models, free ports, stopping servers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import polars as pl
import xgboost as xgb

from features.contracts import FEATURE_SET_VERSION
from models import registry
from models.artifact import ModelBundle
from models.registry import configure_tracking
from models.tasks import get_task, model_frame, task_names
from training.tracking import experiment_id

__all__ = ["free_port", "register_champions", "stop", "synthetic_bundles"]


def synthetic_bundles(
    snapshot: pl.DataFrame, trees: int, depth: int, eta: float = 0.05
) -> dict[str, ModelBundle]:
    """Fit one XGBoost model per task on a synthetic recency label: only speed is measured.

    Parameters
    ----------
    snapshot : polars.DataFrame
        Snapshot whose model rows train the boosters.
    trees, depth : int
        Boosting rounds and tree depth (model size drives explanation cost).
    eta : float, default 0.05
        Learning rate.

    Returns
    -------
    dict of str to ModelBundle
        Uncalibrated bundles by task.
    """
    rng = np.random.default_rng(0)
    bundles = {}
    for task in task_names():
        X = model_frame(task, snapshot)  # noqa: N806
        logit = -0.01 * X["recency_days"].fillna(365).to_numpy() + rng.normal(0, 1, len(X))
        booster = xgb.train(
            {"objective": "binary:logistic", "max_depth": depth, "eta": eta, "nthread": 2},
            xgb.DMatrix(X.to_numpy(), label=(logit > np.median(logit)).astype(int)),
            num_boost_round=trees,
        )
        bundles[task] = ModelBundle(
            task=task,
            booster=booster,
            feature_names=list(X.columns),
            calibration={"method": "none"},
            feature_set_version=FEATURE_SET_VERSION,
            categories=sorted(set(X.index.get_level_values(-1)))
            if get_task(task).kind == "ranked"
            else [],
            metadata={"grade": "B"},
        )
    return bundles


def register_champions(
    home: Path, snapshot: pl.DataFrame, trees: int, depth: int, eta: float = 0.05
) -> None:
    """Register :func:`synthetic_bundles` as each task's champion in the SQLite MLflow of ``home``.

    Parameters
    ----------
    home : pathlib.Path
        ``GUANXI_HOME``.
    snapshot : polars.DataFrame
        Training rows (see :func:`synthetic_bundles`).
    trees, depth : int
        Model size.
    eta : float, default 0.05
        Learning rate.
    """
    configure_tracking(home)
    for task, bundle in synthetic_bundles(snapshot, trees, depth, eta).items():
        X = model_frame(task, snapshot.head(50), bundle.feature_names, bundle.categories)  # noqa: N806
        with mlflow.start_run(experiment_id=experiment_id(task, home)):
            uri = registry.log_bundle(bundle, X.head(3))
        registry.set_alias(task, registry.CHAMPION, registry.register_challenger(task, uri, {}))


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server started in its own session: SIGTERM to its group, SIGKILL after 30 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
