"""MLflow run tracking for training jobs: the experiment, the parent run, trial runs, parameters.

Where runs go (the tracking URI, checked before a job starts), how metric keys are flattened for
MLflow and where evaluation tables and held-out rows are kept are :mod:`models.registry`'s, the
one module that talks to MLflow about models; this module adds what only training needs.

Runs
----
One parent run per training job (:func:`training_run`): an exception marks it ``FAILED``, a
``KeyboardInterrupt`` marks it ``KILLED``. Optuna trials become nested runs through
:func:`trial_logger` (thread-safe: it uses the client API with an explicit parent id).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import mlflow
import numpy as np
from mlflow.entities import Metric, Param, RunStatus
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from models import registry

__all__ = [
    "experiment_id",
    "git_commit",
    "log_dict_params",
    "training_run",
    "trial_logger",
]

_MAX_PARAM_CHARS: Final = 6000


def experiment_id(task: str, home: Path) -> str:
    """Return (creating if needed) the experiment ``guanxi-<task>``.

    Its artifacts go to ``<home>/mlartifacts/<task>`` with a local tracking store
    (:func:`models.registry.experiment_id`).

    Parameters
    ----------
    task : str
        Task name.
    home : pathlib.Path
        ``GUANXI_HOME``.

    Returns
    -------
    str
        Experiment id.
    """
    return registry.experiment_id(f"guanxi-{task}", home, task)


@contextmanager
def training_run(
    experiment: str, run_name: str, tags: Mapping[str, str] | None = None
) -> Iterator[mlflow.ActiveRun]:
    """Open the parent run of a training job.

    Parameters
    ----------
    experiment : str
        Experiment id (from :func:`experiment_id`).
    run_name : str
        Display name of the run.
    tags : mapping, optional
        Run tags.

    Yields
    ------
    mlflow.ActiveRun
        The active parent run. It ends ``FINISHED`` on success, ``KILLED`` on
        ``KeyboardInterrupt`` and ``FAILED`` on any other exception (which is re-raised).
    """
    run = mlflow.start_run(experiment_id=experiment, run_name=run_name, tags=dict(tags or {}))
    try:
        yield run
    except KeyboardInterrupt:
        mlflow.end_run(RunStatus.to_string(RunStatus.KILLED))
        raise
    except BaseException:
        mlflow.end_run(RunStatus.to_string(RunStatus.FAILED))
        raise
    mlflow.end_run(RunStatus.to_string(RunStatus.FINISHED))


def _param_value(value: object) -> str:
    text = str(value)
    return text if len(text) <= _MAX_PARAM_CHARS else text[: _MAX_PARAM_CHARS - 3] + "..."


def trial_logger(experiment: str, parent_run_id: str) -> Callable[[Any, dict[str, Any]], None]:
    """Build an ``on_trial`` callback that logs each Optuna trial as a nested run.

    Parameters
    ----------
    experiment : str
        Experiment id of the parent run.
    parent_run_id : str
        The parent run.

    Returns
    -------
    callable
        ``on_trial(trial, info)`` with ``info`` holding ``params``, ``value``, ``state``,
        ``duration`` (seconds) and optionally ``best_iteration`` (numbers are logged as
        ``trial_<key>`` metrics). Each call creates one finished child run (``FAILED`` when the
        trial failed; pruned trials finish with tag ``optuna_state=PRUNED``).
    """
    client = MlflowClient()

    def on_trial(trial: Any, info: dict[str, Any]) -> None:
        now = int(time.time() * 1000)
        state = str(info.get("state", "")).rsplit(".", 1)[-1]
        run = client.create_run(
            experiment,
            start_time=now,
            tags={
                MLFLOW_PARENT_RUN_ID: parent_run_id,
                MLFLOW_RUN_NAME: f"trial-{trial.number}",
                "optuna_state": state,
            },
        )
        metrics = [Metric("trial_number", float(trial.number), now, 0)]
        for key in ("value", "duration", "best_iteration"):
            value = info.get(key)
            if value is not None and np.isfinite(float(value)):
                metrics.append(Metric(f"trial_{key}", float(value), now, 0))
        params = [Param(k, _param_value(v)) for k, v in dict(info.get("params", {})).items()]
        client.log_batch(run.info.run_id, metrics=metrics, params=params)
        status = RunStatus.FAILED if state == "FAIL" else RunStatus.FINISHED
        client.set_terminated(run.info.run_id, RunStatus.to_string(status))

    return on_trial


def log_dict_params(params: Mapping[str, Any]) -> None:
    """Log parameters on the active run (nested dicts become ``outer.inner``; long values cut).

    Parameters
    ----------
    params : mapping
        Parameter names to values.
    """
    flat: dict[str, str] = {}

    def walk(items: Mapping[str, Any], prefix: str) -> None:
        for key, value in items.items():
            if isinstance(value, Mapping):
                walk(value, f"{prefix}{key}.")
            elif value is not None:
                flat[f"{prefix}{key}"] = _param_value(value)

    walk(params, "")
    mlflow.log_params(flat)


def git_commit() -> str | None:
    """Return the git commit of the checkout this package runs from, if any.

    Returns
    -------
    str or None
        The full commit hash, or None outside a git checkout.
    """
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
