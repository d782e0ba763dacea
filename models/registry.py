"""The one module that saves models to, and loads them from, MLflow.

A model is logged as an MLflow *pyfunc* built from code (:mod:`models.pyfunc_model`), whose single
artifact is a :class:`~models.artifact.ModelBundle` directory; nothing is cloudpickled. Each task
has one registered model named after the task (``churn``, ``repurchase``, ``cross_sell``); a new
version gets the alias ``challenger`` and :func:`set_alias` moves ``champion`` (one registry call,
so a promotion is atomic). Loading downloads the version's files and reads the bundle with
:meth:`ModelBundle.load` (never through pickle).

Every function uses the tracking/registry URI MLflow is configured with
(see :func:`training.tracking.configure_tracking`).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import mlflow
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import Model, infer_signature
from mlflow.tracking import MlflowClient

import models.pyfunc_model as pyfunc_model
from models.artifact import ModelBundle

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "MODEL_ARTIFACT",
    "ModelNotFoundError",
    "VersionInfo",
    "delete_version",
    "get_version",
    "list_versions",
    "load_bundle",
    "log_bundle",
    "register_challenger",
    "set_alias",
]

CHALLENGER: Final = "challenger"
CHAMPION: Final = "champion"
MODEL_ARTIFACT: Final = "model"
"""Name of the logged model inside a training run."""

_PIP_REQUIREMENTS: Final = ("mlflow", "xgboost", "pandas", "numpy")


class ModelNotFoundError(LookupError):
    """No registered model version matches the requested task and alias/version."""


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


def log_bundle(bundle: ModelBundle, input_example: pd.DataFrame) -> str:
    """Log a bundle as a pyfunc model in the active MLflow run.

    Parameters
    ----------
    bundle : ModelBundle
        The trained model.
    input_example : pandas.DataFrame
        A few model input rows; kept with the model and used to infer its signature
        (the bundle's feature columns -> calibrated probability).

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
    signature = infer_signature(example, bundle.predict(example))
    with tempfile.TemporaryDirectory(prefix="guanxi-bundle-") as tmp:
        bundle_dir = Path(tmp) / pyfunc_model.BUNDLE_ARTIFACT
        bundle.save(bundle_dir)
        info = mlflow.pyfunc.log_model(
            name=MODEL_ARTIFACT,
            python_model=str(Path(pyfunc_model.__file__).resolve()),
            artifacts={pyfunc_model.BUNDLE_ARTIFACT: str(bundle_dir)},
            signature=signature,
            input_example=example,
            pip_requirements=_requirements(),
            metadata={"task": bundle.task, "feature_set_version": bundle.feature_set_version},
        )
    return str(info.model_uri)


def register_challenger(task: str, model_uri: str, tags: dict[str, Any]) -> str:
    """Register a logged model as a new version of ``task`` and point ``challenger`` at it.

    If setting the alias fails, the new version is deleted again, so a failure registers nothing.

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
    """
    mv = mlflow.register_model(model_uri, task, tags={k: str(v) for k, v in tags.items()})
    try:
        MlflowClient().set_registered_model_alias(task, CHALLENGER, str(mv.version))
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


def load_bundle(task: str, alias: str | None = None, version: str | None = None) -> ModelBundle:
    """Load a registered model's bundle by alias or version.

    Parameters
    ----------
    task : str
        Registered model name.
    alias : str, optional
        E.g. ``"champion"``; exactly one of ``alias`` and ``version`` must be given.
    version : str, optional
        Version number.

    Returns
    -------
    ModelBundle
        The bundle (booster in memory; the downloaded files are removed), with
        ``metadata["registry"] = {"name": task, "version": version}``.

    Raises
    ------
    ModelNotFoundError
        If no version matches.
    ValueError
        If both or neither of ``alias`` and ``version`` are given, or the logged model has no
        bundle artifact.
    """
    if (alias is None) == (version is None):
        raise ValueError("give exactly one of alias and version")
    if alias is not None:
        mv = get_version(task, alias)
        if mv is None:
            raise ModelNotFoundError(f"no registered model {task!r} with alias {alias!r}")
        version = str(mv.version)
    uri = f"models:/{task}/{version}"
    with tempfile.TemporaryDirectory(prefix="guanxi-model-") as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise ModelNotFoundError(f"no registered model version {uri}") from exc
            raise
        flavor = Model.load(str(local)).flavors.get("python_function", {})
        artifact = flavor.get("artifacts", {}).get(pyfunc_model.BUNDLE_ARTIFACT)
        if artifact is None:
            raise ValueError(f"{uri} has no {pyfunc_model.BUNDLE_ARTIFACT!r} artifact")
        bundle = ModelBundle.load(local / artifact["path"])
    bundle.metadata.setdefault("registry", {}).update({"name": task, "version": version})
    return bundle


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
