"""Load registered model versions, saying when a version's files are gone.

A version the registry lists whose artifacts were moved or deleted failed to load with MLflow's
"No such artifact" (or a missing ``bundle.json``): :func:`load_version` tells it apart as
:class:`ModelFilesMissingError`, with where the files were looked for and what to run.
``guanxi drift``, ``guanxi cycle``, ``guanxi promote`` and the server
(:class:`serving.loader.RegistrySource`) load versions through it.

It imports the registry and MLflow only, so ``guanxi train`` (which promotes) does not import
the drift report and the reviewer pages with it (it was ``pipelines.versions``, which the server
may not import).
"""

from __future__ import annotations

import urllib.parse
import urllib.request

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from models import registry
from models.registry import LoadedModel

__all__ = ["ModelFilesMissingError", "load_version"]


class ModelFilesMissingError(LookupError):
    """A registered model version whose files are not where the registry says they are.

    Parameters
    ----------
    task : str
        Registered model name.
    version : str
        Version number.
    where : str
        Where the registry keeps its files: a local folder, else the artifact URI.
    missing : str, optional
        The file found missing (its path under ``where``), when one file alone is.
    alias : str, optional
        The alias the version was loaded by (:func:`load_version`), if any: what
        :meth:`remedy` says depends on it.
    """

    def __init__(
        self,
        task: str,
        version: str,
        where: str,
        missing: str | None = None,
        alias: str | None = None,
    ) -> None:
        self.task, self.version, self.where, self.missing = task, version, where, missing
        self.alias = alias
        self._what = f"file {missing} is" if missing else "files are"
        whose = f"{task} version {version}"
        what = f"file {missing} of {whose} is" if missing else f"files of {whose} are"
        super().__init__(f"the {what} missing (looked in {where})")

    def remedy(self, alias: str) -> str:
        """Say what brings back the version an alias names: the one sentence every reader gives.

        For the champion: ``guanxi promote --task T`` alone refuses while the lost version is
        still the champion ("Version N is already the T champion", qa43 M2): what works is
        promoting another version whose files exist, or training again and promoting the new one.
        For another alias (a server following ``GUANXI_MODEL_ALIAS=challenger``) those would
        move the champion, not the alias read: what works is pointing the alias at another
        version with MLflow's alias setting (``MlflowClient().set_registered_model_alias``, or
        the MLflow UI), serving the champion instead, or, for the challenger alone, training
        again (the new version is the challenger; no other alias moves with training). The
        server log (:meth:`of_alias`), ``/readyz``, the 503s and ``not_served``
        (:func:`serving.lifecycle.not_served`), ``guanxi drift`` and ``guanxi cycle`` say it so.

        Parameters
        ----------
        alias : str
            The alias that names the version (``champion``, ``challenger``, ...).

        Returns
        -------
        str
            ``put them back there, or ...``, with the task's commands.
        """
        task = self.task
        if alias != registry.CHAMPION:
            again = (
                f"train again (`guanxi train --task {task} --events PATH --as-of DAY`: the new "
                "version is the challenger), or "
                if alias == registry.CHALLENGER
                else ""
            )
            return (
                f"put them back there, or {again}point the {alias} alias at another version "
                f"whose files exist (`MlflowClient().set_registered_model_alias('{task}', "
                f"'{alias}', N)` or the MLflow UI; `guanxi models` lists the versions), or serve "
                f"the champion (`GUANXI_MODEL_ALIAS={registry.CHAMPION}`)"
            )
        return (
            "put them back there, or promote another version whose files exist (`guanxi promote "
            f"--task {task} --version N`), or train again (`guanxi train --task {task} --events "
            f"PATH --as-of DAY`, then `guanxi promote --task {task}`)"
        )

    def of_alias(self, alias: str) -> str:
        """Say that the version an alias names lost its files, where they were and what to run.

        Parameters
        ----------
        alias : str
            The alias that names the version (``champion``).

        Returns
        -------
        str
            ``the champion's files are missing (looked in <where>): put them back there, or ...``
            (:meth:`remedy` of ``alias``: for the champion another version, ``--version N``, or
            training again; a plain ``guanxi promote --task T`` refuses while the lost version is
            still the champion).
        """
        said = self.remedy(alias)
        return f"the {alias}'s {self._what} missing (looked in {self.where}): {said}"


def _may_be_files_missing(exc: Exception) -> bool:
    """Whether a failed load may be a version whose files are gone (worth naming the version).

    A missing file, or MLflow's "No such artifact" (``RESOURCE_DOES_NOT_EXIST``, which the
    download says as :class:`~models.registry.ModelNotFoundError`), may be; any other MLflow
    failure (a registry that refused the connection or did not answer in time: MLflow's "API
    request ... failed with timeout exception") is not. A load that failed so asks the registry
    no second time (qa44 M2: the second look at a hung registry cost another minute).
    """
    return not isinstance(exc, MlflowException) or exc.error_code == "RESOURCE_DOES_NOT_EXIST"


def _files_missing(
    task: str, version: str, exc: Exception, alias: str | None = None
) -> ModelFilesMissingError | None:
    """Tell a version whose files are gone from a failed load, or None for any other failure."""
    if not _may_be_files_missing(exc):
        return None
    try:
        uri = MlflowClient().get_model_version_download_uri(task, version)
    except MlflowException:  # not registered after all: the load's own error says so
        return None
    parsed = urllib.parse.urlparse(uri)
    where = urllib.request.url2pathname(parsed.path) if parsed.scheme == "file" else uri
    missing = exc.filename if isinstance(exc, FileNotFoundError) else None
    return ModelFilesMissingError(task, version, where, missing, alias)


def load_version(
    task: str, alias: str | None = None, version: str | None = None, *, check: bool = False
) -> LoadedModel:
    """Load a registered version (:func:`models.registry.load_model`), saying if its files are gone.

    Parameters
    ----------
    task : str
        Registered model name.
    alias : str, optional
        Registry alias; exactly one of ``alias`` and ``version``.
    version : str, optional
        Version number.
    check : bool, default False
        Refuse a model of another feature-set version (old versions are read without it).

    Returns
    -------
    models.registry.LoadedModel
        The version.

    Raises
    ------
    ModelFilesMissingError
        If the version is registered but its files are not where the registry keeps them (moved
        or deleted): the load failed with MLflow's "No such artifact" or a missing bundle file.
    models.registry.ModelNotFoundError
        If no version matches.
    """
    try:
        return registry.load_model(task, alias=alias, version=version, check=check)
    except (registry.ModelNotFoundError, MlflowException, FileNotFoundError) as exc:
        if not _may_be_files_missing(exc):  # a registry not answering is not asked again
            raise
        if alias is not None:  # the version is named only for files that may be gone
            found = registry.get_version(task, alias)
            version = str(found.version) if found is not None else None
        missing = _files_missing(task, version, exc, alias) if version is not None else None
        if missing is None:
            raise
        raise missing from exc
