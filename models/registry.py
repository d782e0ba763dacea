"""The one module that talks to MLflow about models: tracking, artifacts, metric keys, loading.

Tracking
--------
``MLFLOW_TRACKING_URI`` wins when set (e.g. ``http://127.0.0.1:5000`` for a tracking server);
otherwise runs and the model registry live in ``sqlite:///<GUANXI_HOME>/mlflow.db`` with artifacts
under ``<GUANXI_HOME>/mlartifacts`` (:func:`configure_tracking`; the registry always uses the
tracking URI). Before a job starts, :func:`check_tracking` probes an HTTP tracking server's
``/health`` a bounded number of times (with tenacity) and raises :class:`TrackingUnavailableError`
with a message that says what to do. :func:`configure_tracking` also bounds MLflow's own HTTP
retries and timeout (:data:`ENV_DEFAULTS`) unless the environment already sets them, so a server
that goes away mid-job makes the job fail within about a minute instead of hanging.

Models
------
A model is logged as an MLflow *pyfunc* built from code (:mod:`models.pyfunc_model`), whose single
artifact is a :class:`~models.artifact.ModelBundle` directory; nothing is cloudpickled. Each task
has one registered model named after the task; a new version gets the alias ``challenger`` and
:func:`set_alias` moves ``champion`` (one registry call, so a promotion is atomic).
:func:`load_model` is the one way a registered model is loaded (``guanxi score``, ``guanxi
promote``, the server and its model cards): it resolves an alias or a version, downloads the
version's files and reads the bundle with :meth:`ModelBundle.load` (never through pickle).

Metric keys
-----------
Metrics are nested everywhere (``{"xgboost": {"roc_auc": 0.8}}``); they are flattened only here,
at the MLflow boundary (:func:`flatten_metrics`: ``xgboost_roc_auc``, run metrics and version
tags), and nested again when read back (:func:`nest_metrics`).

Value fits
----------
``guanxi value`` logs each fit of the customer value models as one run of the experiment
:data:`VALUE_EXPERIMENT` (:func:`log_value_fit`): its settings as params, the fitted parameters,
log-likelihoods, spend-frequency correlations, holdout checks and equity totals as flat metrics,
the equity tables as artifacts. ``guanxi drift`` logs each report the same way as a run of
:data:`DRIFT_EXPERIMENT` (:func:`log_drift_report`). Experiments keep their artifacts under
``<home>/mlartifacts`` with a local tracking store (:func:`experiment_id`).

Artifacts of a training run
---------------------------
Evaluation tables go to ``evaluation/{name}.csv`` and ``evaluation/{name}.json``
(:data:`EVALUATION_DIR`, :func:`log_tables`, read back by :func:`read_table`), the held-out rows to
:data:`HOLDOUT_ARTIFACT` (:func:`log_holdout`, :func:`load_holdout`). Training writes them and
serving and ``guanxi promote`` read them through these functions only.
"""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import Model, infer_signature
from mlflow.tracking import MlflowClient
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

import models.pyfunc_model as pyfunc_model
from features.contracts import counted
from models.artifact import (
    BACKING_KEY,
    BUNDLE_FILE,
    MODEL_METRICS,
    RULE_BACKED,
    RULE_BACKING,
    ModelBundle,
)
from models.metrics import RANKED_METRICS
from models.scoring import check_feature_set
from models.tasks import GRADED_BASELINE, task_specs
from models.uplift import UpliftBundle, uplift_model_name

__all__ = [
    "BOOSTER_DIGEST_TAG",
    "CHALLENGER",
    "CHAMPION",
    "DRIFT_EXPERIMENT",
    "ENV_DEFAULTS",
    "EVALUATION_DIR",
    "HOLDOUT_ARTIFACT",
    "HOLDOUT_LABEL",
    "MODEL_ARTIFACT",
    "ROLLBACK_TAG",
    "RULE",
    "RULE_ARTIFACT",
    "SERVER_SCHEMES",
    "UPLIFT_EXPERIMENT",
    "VALUE_EXPERIMENT",
    "LoadedModel",
    "LoadedUplift",
    "ModelIntegrityError",
    "ModelNotFoundError",
    "TrackingUnavailableError",
    "VersionInfo",
    "check_tracking",
    "configure_tracking",
    "default_tracking_uri",
    "delete_version",
    "evaluation_path",
    "experiment_id",
    "flatten_metrics",
    "get_version",
    "is_rule_backed",
    "list_versions",
    "load_holdout",
    "load_model",
    "load_uplift",
    "load_uplift_version",
    "log_bundle",
    "log_drift_report",
    "log_holdout",
    "log_tables",
    "log_value_fit",
    "metric_key",
    "metric_models",
    "metric_name",
    "metric_title",
    "model_title",
    "nest_metrics",
    "read_table",
    "record_rollback",
    "register_challenger",
    "register_rule",
    "register_uplift",
    "rollback_record",
    "rollback_text",
    "set_alias",
    "set_champion",
    "uplift_version",
]

CHALLENGER: Final = "challenger"
BOOSTER_DIGEST_TAG: Final = "booster_sha256"
"""Version tag pinning the SHA-256 of the booster at registration; checked at every load."""
CHAMPION: Final = "champion"
MODEL_ARTIFACT: Final = "model"
"""Name of the logged model inside a training run."""
RULE: Final = "rule"
"""Alias of a task's newest rule-backed version (:func:`register_rule`), the one ``guanxi
promote`` serves when the model does not pass the gate."""
RULE_ARTIFACT: Final = "rule_model"
"""Name of the logged rule-backed model inside a training run."""

_PIP_REQUIREMENTS: Final = ("mlflow", "xgboost", "pandas", "numpy")

SERVER_SCHEMES: Final = ("http://", "https://", "databricks")
"""Tracking URIs of a server (artifacts go where the server says); anything else is local."""

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

VALUE_EXPERIMENT: Final = "guanxi-value"
"""The MLflow experiment of the customer value fits (:func:`log_value_fit`)."""

DRIFT_EXPERIMENT: Final = "guanxi-drift"
"""The MLflow experiment of the drift and live-performance reports (:func:`log_drift_report`)."""
UPLIFT_EXPERIMENT: Final = "guanxi-uplift"
"""Experiment of the uplift fits (``guanxi campaign uplift``), one run per offer and fit."""
T = TypeVar("T")

EVALUATION_DIR: Final = "evaluation"
"""Run artifact folder of the evaluation tables (``evaluation/{name}.json`` and ``.csv``)."""

HOLDOUT_ARTIFACT: Final = "holdout/holdout.parquet"
"""Run artifact holding the held-out rows (index columns, features, label)."""
HOLDOUT_LABEL: Final = "__label__"
"""Label column of the held-out Parquet file."""

_BAD_METRIC_CHARS: Final = re.compile(r"[^A-Za-z0-9_\-. :/]")


class ModelNotFoundError(LookupError):
    """No registered model version matches the requested task and alias/version."""


class TrackingUnavailableError(RuntimeError):
    """The MLflow tracking server cannot be reached."""


@dataclass(frozen=True)
class VersionInfo:
    """One registered model version, as listed by :func:`list_versions`.

    Parameters
    ----------
    task : str
        Registered model name (the task).
    version : str
        Version number.
    aliases : tuple of str
        Aliases pointing at this version.
    run_id : str or None
        The training run that produced it.
    created : int
        Creation time, milliseconds since the epoch.
    tags : dict of str to str
        Version tags (grade, feature-set version, held-out metrics).
    """

    task: str
    version: str
    aliases: tuple[str, ...]
    run_id: str | None
    created: int
    tags: dict[str, str]


def _requirements() -> list[str]:
    """Pin the model's runtime packages to the installed versions."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in _PIP_REQUIREMENTS]


def log_bundle(bundle: ModelBundle, input_example: pd.DataFrame, name: str = MODEL_ARTIFACT) -> str:
    """Log a bundle as a pyfunc model in the active MLflow run.

    Parameters
    ----------
    bundle : ModelBundle
        The trained model.
    input_example : pandas.DataFrame
        A few model input rows; kept with the model and used to infer its signature
        (the bundle's feature columns -> calibrated probability).
    name : str, default :data:`MODEL_ARTIFACT`
        The logged model's name in the run (:data:`RULE_ARTIFACT` for a rule-backed bundle).

    Returns
    -------
    str
        The logged model's URI (to pass to :func:`register_challenger`).

    Raises
    ------
    RuntimeError
        If no MLflow run is active.
    """
    if mlflow.active_run() is None:
        raise RuntimeError("log_bundle needs an active MLflow run")
    example = input_example.loc[:, bundle.feature_names].reset_index(drop=True).astype("float64")
    return _log_pyfunc(
        bundle.save,
        example,
        bundle.predict(example),
        {"task": bundle.task, "feature_set_version": bundle.feature_set_version},
        name,
    )


def _log_pyfunc(
    save: Callable[[Path], None],
    example: pd.DataFrame,
    output: np.ndarray,
    metadata: dict[str, str],
    name: str = MODEL_ARTIFACT,
) -> str:
    """Log a bundle directory (written by ``save``) as a pyfunc model built from code."""
    with tempfile.TemporaryDirectory(prefix="guanxi-bundle-") as tmp:
        bundle_dir = Path(tmp) / pyfunc_model.BUNDLE_ARTIFACT
        save(bundle_dir)
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=str(Path(pyfunc_model.__file__).resolve()),
            artifacts={pyfunc_model.BUNDLE_ARTIFACT: str(bundle_dir)},
            signature=infer_signature(example, output),
            input_example=example,
            pip_requirements=_requirements(),
            metadata=metadata,
        )
    return str(info.model_uri)


def register_challenger(task: str, model_uri: str, tags: dict[str, Any]) -> str:
    """Register a logged model as a new version of ``task`` and point ``challenger`` at it.

    If setting the alias fails, the new version is deleted again, so a failure registers nothing.
    The booster's SHA-256 (recorded in ``bundle.json``) is pinned as the version tag
    :data:`BOOSTER_DIGEST_TAG`; :func:`load_model` refuses a version whose bundle differs from it.

    Parameters
    ----------
    task : str
        Registered model name.
    model_uri : str
        URI from :func:`log_bundle`.
    tags : dict
        Version tags (values are stringified).

    Returns
    -------
    str
        The new version number.

    Raises
    ------
    ModelIntegrityError
        If the bundle records no booster digest.
    """
    return _register(task, model_uri, tags, CHALLENGER)


def register_rule(task: str, model_uri: str, tags: dict[str, Any]) -> str:
    """Register a logged rule-backed bundle as a new version and point :data:`RULE` at it.

    As :func:`register_challenger` (the booster digest pinned, the version deleted again if the
    alias cannot be set), with the alias :data:`RULE` instead of ``challenger`` and the tag
    ``backing=rule``: the version is served only when ``guanxi promote`` makes it champion.

    Parameters
    ----------
    task : str
        Registered model name.
    model_uri : str
        URI from :func:`log_bundle` of the rule-backed bundle.
    tags : dict
        Version tags (values are stringified).

    Returns
    -------
    str
        The new version number.
    """
    return _register(task, model_uri, {**tags, BACKING_KEY: RULE_BACKING}, RULE)


def is_rule_backed(version: ModelVersion | VersionInfo | None) -> bool:
    """Whether a registered version is rule-backed (its tag ``backing`` is ``rule``).

    Parameters
    ----------
    version : ModelVersion or VersionInfo or None
        A version (None: no version, not rule-backed).

    Returns
    -------
    bool
        True for a version registered by :func:`register_rule`.
    """
    return version is not None and (version.tags or {}).get(BACKING_KEY) == RULE_BACKING


def _register(task: str, model_uri: str, tags: dict[str, Any], alias: str) -> str:
    """Register a logged model with its booster digest pinned and point ``alias`` at it."""
    with tempfile.TemporaryDirectory(prefix="guanxi-model-") as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
        digest = _booster_digest(_bundle_dir(local, model_uri))
    if digest is None:
        raise ModelIntegrityError(
            f"{model_uri}: the bundle records no booster digest; refusing to register it"
        )
    tags = {**tags, BOOSTER_DIGEST_TAG: digest}  # pinned: a later change of the files is refused
    mv = mlflow.register_model(model_uri, task, tags={k: str(v) for k, v in tags.items()})
    try:
        MlflowClient().set_registered_model_alias(task, alias, str(mv.version))
    except BaseException:
        delete_version(task, str(mv.version))
        raise
    return str(mv.version)


def delete_version(task: str, version: str) -> None:
    """Delete one model version (used to undo a half-finished registration).

    Parameters
    ----------
    task : str
        Registered model name.
    version : str
        Version number.
    """
    MlflowClient().delete_model_version(task, version)


def get_version(task: str, alias: str) -> ModelVersion | None:
    """Return the version ``task@alias`` points at, or None when there is none.

    Parameters
    ----------
    task : str
        Registered model name.
    alias : str
        Alias, e.g. :data:`CHAMPION`.

    Returns
    -------
    mlflow.entities.model_registry.ModelVersion or None
        The version, or None if the model or the alias does not exist.
    """
    try:
        return MlflowClient().get_model_version_by_alias(task, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def set_alias(task: str, alias: str, version: str) -> None:
    """Point ``task@alias`` at ``version`` (a single registry call).

    Parameters
    ----------
    task : str
        Registered model name.
    alias : str
        Alias to move.
    version : str
        Target version.
    """
    MlflowClient().set_registered_model_alias(task, alias, version)


ROLLBACK_TAG: Final = "rollback"
"""Version tag recording the rollback that made the version champion: one JSON object (``by``,
``reason``, ``at`` in UTC ISO 8601, ``from``: the champion's version before, or null), so the
record is written in one registry call."""


def record_rollback(task: str, version: str, by: str, reason: str, previous: str | None) -> None:
    """Make ``version`` champion as a rollback, recording who, why, when and from which version.

    The record (version tag :data:`ROLLBACK_TAG`, one call) is written first, then ``champion``
    moves (one call). If the move fails the record is put back as it was (removed, or the
    version's earlier rollback record restored), so no record says a rollback happened that did
    not; if that fails too, the error says the record is left on the version.

    Parameters
    ----------
    task : str
        Registered model name.
    version : str
        The version to make champion.
    by : str
        Who rolled back.
    reason : str
        Why.
    previous : str or None
        The champion's version before (None: there was none).
    """
    client = MlflowClient()
    earlier = (client.get_model_version(task, version).tags or {}).get(ROLLBACK_TAG)
    at = datetime.now(UTC).isoformat(timespec="seconds")
    record = {"by": by, "reason": reason, "at": at, "from": previous}
    client.set_model_version_tag(task, version, ROLLBACK_TAG, json.dumps(record))
    try:
        client.set_registered_model_alias(task, CHAMPION, version)
    except Exception as exc:
        try:
            if earlier is None:
                client.delete_model_version_tag(task, version, ROLLBACK_TAG)
            else:
                client.set_model_version_tag(task, version, ROLLBACK_TAG, earlier)
        except Exception as undo:
            exc.add_note(
                f"{task} version {version} keeps a rollback record (tag {ROLLBACK_TAG}) for this "
                f"rollback that did not happen; removing it failed: {undo}"
            )
        raise


def set_champion(task: str, version: str) -> None:
    """Point ``champion`` at ``version`` as a gated promotion (not a rollback).

    A rollback record the version kept from an earlier rollback onto it is removed first, so
    the listing and the model page do not call this promotion a rollback; a failure between the
    two calls leaves a version that is not champion without a record, which says nothing false.

    Parameters
    ----------
    task : str
        Registered model name.
    version : str
        The version to make champion.
    """
    client = MlflowClient()
    if ROLLBACK_TAG in (client.get_model_version(task, version).tags or {}):
        client.delete_model_version_tag(task, version, ROLLBACK_TAG)
    client.set_registered_model_alias(task, CHAMPION, version)


def rollback_record(version: ModelVersion | VersionInfo | None) -> dict[str, Any] | None:
    """Return a version's rollback record (see :func:`record_rollback`), None when it has none.

    Parameters
    ----------
    version : mlflow.entities.model_registry.ModelVersion or VersionInfo or None
        A registered version.

    Returns
    -------
    dict or None
        ``by``, ``reason``, ``at`` and ``from``; None without a record or with one that is not
        a JSON object (not written by :func:`record_rollback`).
    """
    text = None if version is None else (version.tags or {}).get(ROLLBACK_TAG)
    if text is None:
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def rollback_text(version: ModelVersion | VersionInfo | None) -> str | None:
    """Say a version's rollback record in one line (pure), None when it has none.

    Parameters
    ----------
    version : mlflow.entities.model_registry.ModelVersion or VersionInfo or None
        A registered version (callers pass the champion).

    Returns
    -------
    str or None
        ``rolled back to vN by X on YYYY-MM-DD: reason`` (without ``: reason`` when none was
        given).
    """
    record = rollback_record(version)
    if version is None or record is None:
        return None
    text = f"rolled back to v{version.version} by {record.get('by') or '?'}"
    text += f" on {str(record.get('at') or '?')[:10]}"
    reason = str(record.get("reason") or "")
    return f"{text}: {reason}" if reason else text


class ModelIntegrityError(ValueError):
    """A model version's booster has no digest, or not the one pinned at its registration."""


def _bundle_dir(local: Path, uri: str) -> Path:
    """Return the bundle folder inside a downloaded pyfunc model."""
    flavor = Model.load(str(local)).flavors.get("python_function", {})
    artifact = flavor.get("artifacts", {}).get(pyfunc_model.BUNDLE_ARTIFACT)
    if artifact is None:
        raise ValueError(f"{uri} has no {pyfunc_model.BUNDLE_ARTIFACT!r} artifact")
    return local / artifact["path"]


def _booster_digest(bundle_dir: Path) -> str | None:
    """Return the booster digest ``bundle.json`` records, or None."""
    try:
        digest = json.loads((bundle_dir / BUNDLE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = digest.get("booster_sha256") if isinstance(digest, dict) else None
    return value if isinstance(value, str) else None


def _download_checked(name: str, version: str, pinned: str | None, read: Callable[[Path], T]) -> T:
    """Download one registered version's files and read its bundle with ``read`` (never pickle).

    The booster digest in ``bundle.json`` must equal ``pinned`` (the version's
    :data:`BOOSTER_DIGEST_TAG`) before anything is read; the bundle then checks its boosters
    against it. The downloaded files are removed. A logged model without a bundle artifact is a
    ValueError; a bundle without one of its files (``bundle.json``, ``model.ubj``, an uplift
    booster) a FileNotFoundError naming the version and the file, whose ``filename`` is that
    file's path inside the version's files (never the download's temporary directory).
    """
    uri = f"models:/{name}/{version}"
    with tempfile.TemporaryDirectory(prefix="guanxi-model-") as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise ModelNotFoundError(f"no registered model version {uri}") from exc
            raise
        bundle_dir = _bundle_dir(local, uri)
        if not (bundle_dir / BUNDLE_FILE).is_file():  # was "records no booster digest"
            raise _missing_file(uri, local, bundle_dir / BUNDLE_FILE)
        digest = _booster_digest(bundle_dir)
        if digest is None:
            raise ModelIntegrityError(f"{uri}: the bundle records no booster digest; refused")
        if pinned is None:
            raise ModelIntegrityError(
                f"{uri}: no booster digest pinned at registration (tag {BOOSTER_DIGEST_TAG}); "
                "refused: register it again"
            )
        if digest != pinned:
            raise ModelIntegrityError(
                f"{uri}: the booster digest differs from the one pinned at registration; refused"
            )
        try:
            return read(bundle_dir)
        except FileNotFoundError as exc:  # it named the download's temporary directory
            if exc.filename is None or not Path(exc.filename).is_relative_to(local):
                raise
            raise _missing_file(uri, local, Path(exc.filename)) from exc


def _missing_file(uri: str, local: Path, path: Path) -> FileNotFoundError:
    """Say which file of a registered version is missing, by its path inside the version's files."""
    file = path.relative_to(local).as_posix()
    return FileNotFoundError(errno.ENOENT, f"{uri}: the model's file {file} is missing", file)


def _download_bundle(task: str, version: str, pinned: str | None) -> ModelBundle:
    """Download and read a task's bundle (:func:`_download_checked`), naming it in its metadata.

    The bundle's ``metadata["registry"]`` is set to ``{"name": task, "version": version}``.
    """
    bundle = _download_checked(task, version, pinned, ModelBundle.load)
    bundle.metadata.setdefault("registry", {}).update({"name": task, "version": version})
    return bundle


@dataclass(frozen=True)
class LoadedModel:
    """A registered model version, loaded.

    Parameters
    ----------
    bundle : ModelBundle
        The model (``metadata["registry"]`` names it).
    name : str
        Registered model name (the task).
    version : str
        Version number.
    aliases : tuple of str
        Aliases pointing at the version.
    run_id : str or None
        The training run.
    tags : dict of str to str
        Version tags (grade, feature-set version, held-out metrics).
    """

    bundle: ModelBundle
    name: str
    version: str
    aliases: tuple[str, ...]
    run_id: str | None
    tags: dict[str, str]


def load_model(
    task: str, alias: str | None = None, version: str | None = None, *, check: bool = True
) -> LoadedModel:
    """Load a registered model version by alias or version: the one loader every caller uses.

    Parameters
    ----------
    task : str
        Registered model name.
    alias : str, optional
        E.g. ``"champion"``; exactly one of ``alias`` and ``version`` must be given.
    version : str, optional
        Version number.
    check : bool, default True
        Refuse a model trained on another feature-set version than this code builds
        (:func:`models.scoring.check_feature_set`); the server checks against its snapshot
        instead and ``guanxi promote`` compares versions, so they pass False.

    Returns
    -------
    LoadedModel
        The bundle with its registry identity.

    Raises
    ------
    ModelNotFoundError
        If no version matches.
    ModelIntegrityError
        If the booster has no digest, or not the one pinned at registration.
    FileNotFoundError
        If a file of the version is missing (``filename``: its path inside the version's files).
    models.scoring.FeatureSetMismatchError
        If ``check`` and the feature-set versions differ.
    ValueError
        If both or neither of ``alias`` and ``version`` are given.
    """
    if (alias is None) == (version is None):
        raise ValueError("give exactly one of alias and version")
    client = MlflowClient()
    if alias is not None:
        mv = get_version(task, alias)
        if mv is None:
            raise ModelNotFoundError(
                f"no registered model {task!r} with alias {alias!r}; train and promote one"
            )
    else:
        try:
            mv = client.get_model_version(task, str(version))
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise ModelNotFoundError(f"no registered model version {task}/{version}") from exc
            raise
    number = str(mv.version)
    bundle = _download_bundle(task, number, (mv.tags or {}).get(BOOSTER_DIGEST_TAG))
    if check:
        where = f"{task}@{alias}" if alias is not None else task
        check_feature_set(bundle, f"{where} (version {number})")
    return LoadedModel(
        bundle=bundle,
        name=task,
        version=number,
        aliases=tuple(sorted(mv.aliases or ())),
        run_id=mv.run_id,
        tags=dict(mv.tags or {}),
    )


def list_versions(task: str) -> list[VersionInfo]:
    """List every version of a registered model, newest first.

    Parameters
    ----------
    task : str
        Registered model name.

    Returns
    -------
    list of VersionInfo
        Empty if the model is not registered.
    """
    client = MlflowClient()
    try:
        registered = client.get_registered_model(task)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return []
        raise
    aliases: dict[str, list[str]] = {}
    for alias, version in (registered.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    versions = client.search_model_versions(f"name = '{task}'")
    return sorted(
        (
            VersionInfo(
                task=task,
                version=str(v.version),
                aliases=tuple(sorted(aliases.get(str(v.version), []))),
                run_id=v.run_id,
                created=int(v.creation_timestamp or 0),
                tags=dict(v.tags or {}),
            )
            for v in versions
        ),
        key=lambda v: int(v.version),
        reverse=True,
    )


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
    if not uri.startswith(SERVER_SCHEMES[:2]):
        return
    url = uri.rstrip("/") + "/health"
    tries = max(1, attempts)

    def probe() -> None:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            if not 200 <= response.status < 300:
                raise OSError(f"HTTP {response.status} from {url}")

    retrying = Retrying(
        stop=stop_after_attempt(tries),
        wait=wait_exponential(multiplier=wait, min=0, max=60),
        retry=retry_if_exception_type((OSError, ValueError)),
        reraise=True,
    )
    try:
        retrying(probe)
        return
    except urllib.error.HTTPError as exc:
        error = f"HTTP {exc.code} from {url}"
    except (OSError, ValueError) as exc:
        error = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
    raise TrackingUnavailableError(
        f"MLflow tracking server {uri} is not reachable after {counted(tries, 'attempts')} "
        f"({error}). Start it (e.g. `mlflow server --host 127.0.0.1 --port 5000`) or unset "
        "MLFLOW_TRACKING_URI to track runs in the local store under GUANXI_HOME."
    )


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


def metric_key(model: str, name: str) -> str:
    """Return the flat MLflow key of one model's metric (``xgboost``, ``precision@1``).

    Parameters
    ----------
    model : str
        The model key (``xgboost``, ``logistic``, ``rule``, ...).
    name : str
        The metric's name.

    Returns
    -------
    str
        ``metric_name(f"{model}_{name}")``, e.g. ``xgboost_precision_at_1``: the key
        :func:`flatten_metrics` writes.
    """
    return metric_name(f"{model}_{name}")


def metric_models() -> tuple[str, ...]:
    """Return the model keys of a task's metrics: ``xgboost``, ``logistic``, then every baseline.

    ``rule_backed`` (a rule-backed version's own metrics) comes after ``xgboost`` when a task
    has one.

    Returns
    -------
    tuple of str
        In display order; the baselines are the keys of the registered specs' rules (the graded
        one first).
    """
    baselines = [b.key for spec in task_specs() for b in spec.rules]
    backed = [RULE_BACKED] if any(spec.rule_backing for spec in task_specs()) else []
    return tuple(dict.fromkeys(("xgboost", *backed, "logistic", GRADED_BASELINE, *baselines)))


_MODEL_TITLES: Final = {
    MODEL_METRICS: "XGBoost",
    RULE_BACKED: "Rule-backed",
    "logistic": "Logistic",
    GRADED_BASELINE: "Rule",
}


METRIC_TITLES: Final = {
    "roc_auc": "ROC-AUC",
    "pr_auc": "PR-AUC",
    "top_decile_lift": "top-decile lift",
    "brier": "Brier score",
    "log_loss": "log loss",
    "ece": "calibration error (ECE)",
    "max_bin_gap": "largest calibration gap",
    "n": "test rows",
    "positive_rate": "positive rate",
    "ndcg@3": "NDCG@3",
}
"""Metric names (:mod:`models.metrics`) as people read them, where a name alone does not do."""

_TITLES_BY_KEY: Final = {
    metric_name(m): METRIC_TITLES.get(m, m) for m in (*RANKED_METRICS, *METRIC_TITLES)
}


def metric_title(name: str) -> str:
    """Name a metric for people, given its name or its MLflow key: ``ndcg_at_3`` -> ``NDCG@3``.

    Metrics read back from MLflow (:func:`nest_metrics`) carry their keys (``precision_at_3``),
    metrics of a training run their names (``precision@3``); both read the same.

    Parameters
    ----------
    name : str
        A metric's name (``ndcg@3``, ``ece``) or its MLflow key (:func:`metric_name`).

    Returns
    -------
    str
        Its title in :data:`METRIC_TITLES`, else its name (``precision@3``); a metric unknown
        to both with its underscores as spaces.
    """
    return _TITLES_BY_KEY.get(metric_name(name), name.replace("_", " "))


def model_title(key: str, task: str | None = None) -> str:
    """Name a model's metrics key for people, as pages, charts and figures show it.

    Parameters
    ----------
    key : str
        A key of :func:`metric_models` (``xgboost``, ``rule_backed``, ``popularity``, ...),
        optionally followed by a qualifier in parentheses, as training names its extra
        reliability curves (``xgboost (uncalibrated)``).
    task : str, optional
        The task whose metrics these are: its spec's baselines are named by their ``title``
        (:class:`models.tasks.Baseline`), e.g. the graded ``rule`` of churn ``Recency rule``.

    Returns
    -------
    str
        ``XGBoost``, ``Rule-backed``, ``Logistic``; a baseline as the task's spec titles it, or
        ``Rule`` without a (known) task; another key title-cased (``Popularity``); a qualifier
        is kept as it is (``XGBoost (uncalibrated)``).
    """
    model, sep, qualifier = key.partition(" (")
    spec = next((spec for spec in task_specs() if spec.name == task), None)
    baselines = {b.key: b.title for b in spec.rules if b.title} if spec is not None else {}
    title = baselines.get(model) or _MODEL_TITLES.get(model, model.title())
    return title + sep + qualifier


def nest_metrics(flat: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Nest flat MLflow metric keys by model: ``xgboost_roc_auc`` -> ``{"xgboost": {"roc_auc"}}``.

    The inverse of :func:`flatten_metrics` for the keys it writes.

    Parameters
    ----------
    flat : mapping of str to float
        Run metrics or numeric version tags (strings that read as numbers count); keys without a
        known model prefix (:func:`metric_models`) and values that are not finite numbers are
        left out.

    Returns
    -------
    dict
        Model to metric name to value, models in :func:`metric_models` order, names sorted.
    """
    models = metric_models()
    # a key belongs to the longest model prefix it starts with (rule_backed_x is not rule's)
    by_length = sorted(models, key=len, reverse=True)
    found: dict[str, dict[str, float]] = {}
    for key, value in flat.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        model = next((m for m in by_length if key.startswith(f"{m}_")), None)
        if model is not None and np.isfinite(number):
            found.setdefault(model, {})[key.removeprefix(f"{model}_")] = number
    return {m: dict(sorted(found[m].items())) for m in models if m in found}


def evaluation_path(name: str, suffix: str = "json") -> str:
    """Return the run artifact path of an evaluation table.

    Parameters
    ----------
    name : str
        Table name (``gains``, ``reliability``, ``metrics``, ...).
    suffix : str, default "json"
        ``json`` or ``csv``.

    Returns
    -------
    str
        ``evaluation/{name}.{suffix}``.
    """
    return f"{EVALUATION_DIR}/{name}.{suffix}"


def log_tables(tables: Mapping[str, pd.DataFrame], artifact_dir: str = EVALUATION_DIR) -> None:
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


def read_table(run_id: str, name: str) -> list[dict[str, Any]]:
    """Read the rows of a run's evaluation table (written by :func:`log_tables`).

    Parameters
    ----------
    run_id : str
        The training run.
    name : str
        Table name.

    Returns
    -------
    list of dict
        The table's records; empty when the run has no such table or it cannot be read.
    """
    try:
        data: Any = mlflow.artifacts.load_dict(f"runs:/{run_id}/{evaluation_path(name)}")
    except (MlflowException, OSError):
        return []
    return [row for row in data if isinstance(row, dict)] if isinstance(data, list) else []


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


def experiment_id(name: str, home: Path, folder: str) -> str:
    """Return (creating if needed) an MLflow experiment.

    With a database or file tracking URI (the local SQLite store by default) the experiment's
    artifacts go to ``<home>/mlartifacts/<folder>`` (MLflow would otherwise write ``./mlruns`` in
    the working directory); with a tracking server, the server decides where artifacts go.

    Parameters
    ----------
    name : str
        Experiment name (``guanxi-churn``, :data:`VALUE_EXPERIMENT`).
    home : pathlib.Path
        ``GUANXI_HOME``.
    folder : str
        Artifact folder under ``<home>/mlartifacts`` for a local store.

    Returns
    -------
    str
        Experiment id.
    """
    client = MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = None
    if not mlflow.get_tracking_uri().startswith(SERVER_SCHEMES):
        location = (Path(home).resolve() / "mlartifacts" / folder).as_uri()
    return str(client.create_experiment(name, artifact_location=location))


def log_value_fit(
    home: Path,
    as_of: date,
    settings: Mapping[str, Any],
    results: Mapping[str, Any],
    tables: Mapping[str, pd.DataFrame],
) -> str:
    """Log one fit of the customer value models as a finished run of :data:`VALUE_EXPERIMENT`.

    Parameters
    ----------
    home : pathlib.Path
        ``GUANXI_HOME`` (artifact location of a local store).
    as_of : datetime.date
        The day the values are computed as of (the run's name).
    settings : mapping
        Settings logged as params (horizon, discount rate, basis, margin rate, sources).
    results : mapping
        Nested numbers logged as flat metrics (:func:`flatten_metrics`): fitted parameters,
        log-likelihoods, the spend-frequency correlation, holdout checks, equity totals.
    tables : mapping of str to pandas.DataFrame
        Tables logged under :data:`EVALUATION_DIR` (:func:`log_tables`).

    Returns
    -------
    str
        The run id.
    """
    return _log_report_run(VALUE_EXPERIMENT, "value", home, as_of, settings, results, tables)


def _log_report_run(
    experiment_name: str,
    prefix: str,
    home: Path,
    as_of: date,
    settings: Mapping[str, Any],
    results: Mapping[str, Any],
    tables: Mapping[str, pd.DataFrame],
) -> str:
    """Log settings, flat metrics and tables as one finished run named ``<prefix>-<as_of>``."""
    experiment = experiment_id(experiment_name, home, prefix)
    with mlflow.start_run(
        experiment_id=experiment, run_name=f"{prefix}-{as_of.isoformat()}"
    ) as run:
        mlflow.log_params({k: str(v) for k, v in settings.items() if v is not None})
        mlflow.log_metrics(flatten_metrics(results))
        log_tables(tables)
    return str(run.info.run_id)


def log_drift_report(
    home: Path,
    as_of: date,
    settings: Mapping[str, Any],
    results: Mapping[str, Any],
    tables: Mapping[str, pd.DataFrame],
) -> str:
    """Log one drift and live-performance report as a finished run of :data:`DRIFT_EXPERIMENT`.

    Parameters
    ----------
    home : pathlib.Path
        ``GUANXI_HOME`` (artifact location of a local store).
    as_of : datetime.date
        The day of the report (the run's name is ``drift-<as_of>``).
    settings : mapping
        Thresholds and references, logged as params.
    results : mapping
        Nested numbers logged as flat metrics (:func:`flatten_metrics`): drifted-feature counts,
        PSI per feature, score drift per task, live metrics per task and cutoff.
    tables : mapping of str to pandas.DataFrame
        Tables logged under :data:`EVALUATION_DIR` (:func:`log_tables`).

    Returns
    -------
    str
        The run id.
    """
    return _log_report_run(DRIFT_EXPERIMENT, "drift", home, as_of, settings, results, tables)


@dataclass(frozen=True)
class LoadedUplift:
    """A registered uplift model version, loaded.

    Parameters
    ----------
    bundle : models.uplift.UpliftBundle
        The model.
    name : str
        Registered model name (``uplift_<offer>``).
    version : str
        Version number.
    run_id : str or None
        The fit's run.
    as_of : datetime.date or None
        The day it was fitted as of (its ``as_of`` tag; None for a version without one): it
        learnt from the campaigns complete on or before that day.
    """

    bundle: UpliftBundle
    name: str
    version: str
    run_id: str | None
    as_of: date | None = None


def register_uplift(bundle: UpliftBundle, home: Path, as_of: date) -> LoadedUplift:
    """Log an uplift fit as a run of :data:`UPLIFT_EXPERIMENT` and register it as a challenger.

    The run has the bundle's provenance as params and its held-out Qini and AUUC per ranking as
    metrics (``two_model_qini``, ``churn_score_qini``, ...); the model is a pyfunc built from code
    (:mod:`models.pyfunc_model`) whose artifact is the bundle directory (XGBoost JSON, no pickle),
    registered as ``uplift_<offer>`` with its combined booster digest pinned
    (:func:`register_challenger`).

    Parameters
    ----------
    bundle : models.uplift.UpliftBundle
        The fitted model (:func:`models.uplift.fit_uplift`).
    home : pathlib.Path
        ``GUANXI_HOME`` (artifact location of a local store).
    as_of : datetime.date
        The day of the snapshot the campaign's customers were described by.

    Returns
    -------
    LoadedUplift
        The registered version.
    """
    name = uplift_model_name(bundle.offer)
    experiment = experiment_id(UPLIFT_EXPERIMENT, home, "uplift")
    example = pd.DataFrame(np.zeros((1, len(bundle.feature_names))), columns=bundle.feature_names)
    with mlflow.start_run(experiment_id=experiment, run_name=f"{name}-{as_of.isoformat()}") as run:
        mlflow.log_params(
            {"offer": bundle.offer, "learner": bundle.learner, "as_of": as_of.isoformat()}
            | {k: str(v) for k, v in bundle.metadata.items()}
        )
        mlflow.log_metrics(flatten_metrics(bundle.metrics))
        uri = _log_pyfunc(
            bundle.save,
            example,
            bundle.predict_uplift(example.to_numpy()),
            {"offer": bundle.offer, "kind": "uplift"},
        )
    tags = {
        "offer": bundle.offer,
        "learner": bundle.learner,
        "feature_set_version": bundle.feature_set_version,
        "beats_churn_score": bundle.beats_churn_score,
        "as_of": as_of.isoformat(),
    } | flatten_metrics(bundle.metrics)
    version = register_challenger(name, uri, tags)
    return LoadedUplift(
        bundle=bundle, name=name, version=version, run_id=run.info.run_id, as_of=as_of
    )


def uplift_version(offer: str, alias: str = CHALLENGER) -> ModelVersion:
    """Return the registered version of an offer's uplift model that ``alias`` points at.

    Parameters
    ----------
    offer : str
        The offer whose ``uplift_<offer>`` is looked up.
    alias : str, default :data:`CHALLENGER`
        The alias to follow (the latest fit by default).

    Returns
    -------
    mlflow.entities.model_registry.ModelVersion
        The version; nothing is downloaded.

    Raises
    ------
    ModelNotFoundError
        If the offer has no uplift model with the alias.
    """
    name = uplift_model_name(offer)
    mv = get_version(name, alias)
    if mv is None:
        raise ModelNotFoundError(
            f"no registered uplift model {name!r} with alias {alias!r}: "
            "fit one with guanxi campaign uplift"
        )
    return mv


def load_uplift_version(mv: ModelVersion) -> LoadedUplift:
    """Download and read one registered uplift model version, its boosters checked.

    Parameters
    ----------
    mv : mlflow.entities.model_registry.ModelVersion
        The version (:func:`uplift_version`).

    Returns
    -------
    LoadedUplift
        The model with its registry identity.

    Raises
    ------
    ModelIntegrityError
        If the boosters' digest is not the one pinned at registration.
    """
    number = str(mv.version)
    bundle = _download_checked(
        mv.name, number, (mv.tags or {}).get(BOOSTER_DIGEST_TAG), UpliftBundle.load
    )
    day = (mv.tags or {}).get("as_of")
    return LoadedUplift(
        bundle=bundle,
        name=mv.name,
        version=number,
        run_id=mv.run_id,
        as_of=date.fromisoformat(day) if day else None,
    )


def load_uplift(offer: str, alias: str = CHALLENGER) -> LoadedUplift:
    """Load an offer's registered uplift model (the latest fit, ``challenger``, by default).

    :func:`uplift_version` then :func:`load_uplift_version`.

    Parameters
    ----------
    offer : str
        The offer.
    alias : str, default :data:`CHALLENGER`
        The alias to load.

    Returns
    -------
    LoadedUplift
        The loaded version with its name, number and run.

    Raises
    ------
    ModelNotFoundError
        If the offer has no uplift model with the alias (:func:`uplift_version`).
    ModelIntegrityError
        If the boosters' digest differs from the version's pinned one.
    """
    return load_uplift_version(uplift_version(offer, alias))
