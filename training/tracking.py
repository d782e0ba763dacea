"""MLflow run tracking for training jobs: where runs go, the parent run, trial runs, artifacts.

Tracking URI
------------
``MLFLOW_TRACKING_URI`` wins when set (e.g. ``http://127.0.0.1:5000`` for a tracking server);
otherwise runs and the model registry live in ``sqlite:///<GUANXI_HOME>/mlflow.db`` with artifacts
under ``<GUANXI_HOME>/mlartifacts``. The registry always uses the tracking URI.

Resilience
----------
Before a job starts, :func:`check_tracking` probes an HTTP tracking server's ``/health`` a bounded
number of times and raises :class:`TrackingUnavailableError` with a message that says what to do.
:func:`configure_tracking` also bounds MLflow's own HTTP retries and timeout
(``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, ``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR``,
``MLFLOW_HTTP_REQUEST_TIMEOUT``) unless the environment already sets them, so a server that goes
away mid-job makes the job fail within about a minute instead of hanging.

Runs
----
One parent run per training job (:func:`training_run`): an exception marks it ``FAILED``, a
``KeyboardInterrupt`` marks it ``KILLED``. Optuna trials become nested runs through
:func:`trial_logger` (thread-safe: it uses the client API with an explicit parent id).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Metric, Param, RunStatus
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

__all__ = [
    "ENV_DEFAULTS",
    "HOLDOUT_ARTIFACT",
    "HOLDOUT_LABEL",
    "TrackingUnavailableError",
    "check_tracking",
    "configure_tracking",
    "default_tracking_uri",
    "experiment_id",
    "flatten_metrics",
    "git_commit",
    "load_holdout",
    "log_dict_params",
    "log_holdout",
    "log_tables",
    "metric_name",
    "training_run",
    "trial_logger",
]

ENV_DEFAULTS: Final[dict[str, str]] = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
"""MLflow client settings applied unless the environment sets them: bounded HTTP retries (three
attempts per request: a refused connection fails within seconds, an unresponsive server within
about a minute) and no download progress bars."""

HOLDOUT_ARTIFACT: Final = "holdout/holdout.parquet"
"""Run artifact holding the held-out rows (index columns, features, label)."""
HOLDOUT_LABEL: Final = "__label__"
"""Label column of the held-out Parquet file."""

_MAX_PARAM_CHARS: Final = 6000
_SERVER_SCHEMES: Final = ("http://", "https://", "databricks")
_BAD_METRIC_CHARS: Final = re.compile(r"[^A-Za-z0-9_\-. :/]")


class TrackingUnavailableError(RuntimeError):
    """The MLflow tracking server cannot be reached."""


def default_tracking_uri(home: Path) -> str:
    """Return the local tracking URI under ``home`` (``sqlite:///<home>/mlflow.db``).

    Parameters
    ----------
    home : pathlib.Path
        ``GUANXI_HOME``.

    Returns
    -------
    str
        A SQLAlchemy SQLite URI with an absolute path.
    """
    return f"sqlite:///{Path(home).resolve() / 'mlflow.db'}"


def configure_tracking(home: Path) -> str:
    """Point MLflow (tracking and registry) at ``MLFLOW_TRACKING_URI`` or the local store.

    Also applies :data:`ENV_DEFAULTS` to the environment where unset.

    Parameters
    ----------
    home : pathlib.Path
        ``GUANXI_HOME``; created when the local SQLite store is used.

    Returns
    -------
    str
        The tracking URI in use.
    """
    for key, value in ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    uri = os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(home)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def check_tracking(uri: str, attempts: int = 3, timeout: float = 3.0, wait: float = 1.0) -> None:
    """Make sure an HTTP tracking server answers ``/health``; other URIs pass.

    Parameters
    ----------
    uri : str
        Tracking URI.
    attempts : int
        Probes before giving up (at least 1).
    timeout : float
        Seconds per probe.
    wait : float
        Seconds between probes (doubled after each failure).

    Raises
    ------
    TrackingUnavailableError
        If every probe fails; the message names the URI, the last error and the fix.
    """
    if not uri.startswith(_SERVER_SCHEMES[:2]):
        return
    url = uri.rstrip("/") + "/health"
    error = ""
    for attempt in range(max(1, attempts)):
        if attempt:
            time.sleep(wait * 2 ** (attempt - 1))
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                if 200 <= response.status < 300:
                    return
                error = f"HTTP {response.status} from {url}"
        except urllib.error.HTTPError as exc:
            error = f"HTTP {exc.code} from {url}"
        except (OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
    raise TrackingUnavailableError(
        f"MLflow tracking server {uri} is not reachable after {max(1, attempts)} attempt(s) "
        f"({error}). Start it (e.g. `mlflow server --host 127.0.0.1 --port 5000`) or unset "
        "MLFLOW_TRACKING_URI to track runs in the local store under GUANXI_HOME."
    )


def experiment_id(task: str, home: Path) -> str:
    """Return (creating if needed) the experiment ``guanxi-<task>``.

    With a database or file tracking URI (the local SQLite store by default) the experiment's
    artifacts go to ``<home>/mlartifacts/<task>`` (MLflow would otherwise write ``./mlruns`` in
    the working directory); with a tracking server, the server decides where artifacts go.

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
    client = MlflowClient()
    name = f"guanxi-{task}"
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = None
    if not mlflow.get_tracking_uri().startswith(_SERVER_SCHEMES):
        location = (Path(home).resolve() / "mlartifacts" / task).as_uri()
    return str(client.create_experiment(name, artifact_location=location))


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


def metric_name(name: str) -> str:
    """Make a name MLflow accepts as a metric key (``precision@5`` -> ``precision_at_5``).

    Parameters
    ----------
    name : str
        Any name.

    Returns
    -------
    str
        ``@`` spelled ``_at_``; other characters outside letters, digits, ``_ - . : /`` and
        space replaced by ``_``.
    """
    return _BAD_METRIC_CHARS.sub("_", name.replace("@", "_at_"))


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Flatten nested metric dicts to ``outer_inner`` keys, keeping finite numbers only.

    Parameters
    ----------
    metrics : mapping
        E.g. ``{"xgboost": {"roc_auc": 0.8}, "rule": {"roc_auc": 0.7}}``.
    prefix : str
        Prepended to every key.

    Returns
    -------
    dict of str to float
        E.g. ``{"xgboost_roc_auc": 0.8, "rule_roc_auc": 0.7}``; keys pass through
        :func:`metric_name`.
    """
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = metric_name(f"{prefix}{key}")
        if isinstance(value, Mapping):
            flat.update(flatten_metrics(value, prefix=f"{name}_"))
        elif (
            isinstance(value, int | float | np.number)
            and not isinstance(value, bool)
            and np.isfinite(float(value))
        ):
            flat[name] = float(value)
    return flat


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


def log_tables(tables: Mapping[str, pd.DataFrame], artifact_dir: str = "evaluation") -> None:
    """Log pandas tables on the active run as CSV and JSON (records).

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Table name to frame.
    artifact_dir : str
        Run artifact folder.
    """
    with tempfile.TemporaryDirectory(prefix="guanxi-tables-") as tmp:
        for name, frame in tables.items():
            flat = frame.reset_index() if frame.index.name or frame.index.nlevels > 1 else frame
            flat.to_csv(Path(tmp) / f"{name}.csv", index=False)
            flat.to_json(Path(tmp) / f"{name}.json", orient="records", indent=2, date_format="iso")
        mlflow.log_artifacts(tmp, artifact_dir)


def log_holdout(X: pd.DataFrame, y: Any) -> None:  # noqa: N803
    """Store the held-out rows on the active run (:data:`HOLDOUT_ARTIFACT`).

    Parameters
    ----------
    X : pandas.DataFrame
        Held-out model input rows; index levels are written as columns.
    y : array-like
        Held-out labels (0/1), one per row.
    """
    frame = X.reset_index().assign(**{HOLDOUT_LABEL: np.asarray(y, dtype=np.int8)})
    with tempfile.TemporaryDirectory(prefix="guanxi-holdout-") as tmp:
        path = Path(tmp) / Path(HOLDOUT_ARTIFACT).name
        frame.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), str(Path(HOLDOUT_ARTIFACT).parent))


def load_holdout(run_id: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Read the held-out rows stored by :func:`log_holdout` on a run.

    Parameters
    ----------
    run_id : str
        The training run.

    Returns
    -------
    tuple of (pandas.DataFrame, numpy.ndarray)
        Rows (index columns kept as plain columns) and labels.
    """
    with tempfile.TemporaryDirectory(prefix="guanxi-holdout-") as tmp:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=HOLDOUT_ARTIFACT, dst_path=tmp
        )
        frame = pd.read_parquet(local)
    y = frame.pop(HOLDOUT_LABEL).to_numpy(dtype=np.int8)
    return frame, y


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
