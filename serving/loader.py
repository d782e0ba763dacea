"""Where the served models and snapshot come from, and how a new state is built from them.

Models come from a :class:`Source`; score tables kept in the store under ``settings.home`` for
the snapshot's day and each model's version (:func:`stored_scores`) make scores and reasons a
lookup when they were computed from this very snapshot with enough reasons.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Protocol

import polars as pl

from features.store import (
    Store,
    TamperedTableError,
    UnsignedTableError,
    scores_digest,
    snapshot_digest,
)
from models import registry
from models.tasks import completed_categories
from models.versions import ModelFilesMissingError, load_version
from serving.settings import Settings
from serving.state import LoadedSnapshot, ServedModel, ServingState, kept_reasons
from serving.tables import build_state
from serving.values import NewestValues

__all__ = ["RegistrySource", "Source", "load_state", "stored_scores"]

logger = logging.getLogger(__name__)


class Source(Protocol):
    """Loads models and the snapshot to serve (the registry and the store, or a test double)."""

    def load_models(
        self,
        tasks: Sequence[str],
        alias: str,
        gone: dict[str, ModelFilesMissingError] | None = None,
    ) -> dict[str, ServedModel]:
        """Load the model each task's ``alias`` points at.

        With ``gone``, a task whose model's files are gone is put there with its error and the
        other tasks load (:func:`load_state` passes it); when no task loads, the first such
        error is raised. Without it, the first such error is raised. A source whose models
        cannot lose their files (a test double holding them in memory) leaves it empty.
        """
        ...

    def load_snapshot(self) -> LoadedSnapshot:
        """Load the newest feature snapshot."""
        ...


class RegistrySource:
    """Models from the MLflow registry, the snapshot from the store under ``settings.home``.

    Parameters
    ----------
    settings : Settings
        The service settings (the store root).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # the tasks the last load left out for want of a version with the alias: said again
        # only when they change, not at every start-up retry
        self.unserved: tuple[str, ...] = ()
        # held while followed_versions reads the registry: one look at a time, however many
        # GET /v1/models come while a slow registry has not answered (they say null)
        self.looking = threading.Lock()

    def load_models(
        self,
        tasks: Sequence[str],
        alias: str,
        gone: dict[str, ModelFilesMissingError] | None = None,
    ) -> dict[str, ServedModel]:
        """Load ``<task>@<alias>`` for every task from the registry.

        Parameters
        ----------
        tasks : sequence of str
            Registered model names.
        alias : str
            The alias to follow, normally ``champion``.
        gone : dict of str to ModelFilesMissingError, optional
            When given, a task whose version's files are gone is put here with its error and the
            other tasks load (:func:`load_state`); when no task loads, the first of them (in
            ``tasks``' order) is raised. Without it, the first such task's error is raised.

        Returns
        -------
        dict of str to ServedModel
            Each task's model with its registered version and aliases. When the settings name
            no tasks (``GUANXI_TASKS`` unset: every task), a task without a version with that
            alias is left out, and the other tasks are served; a warning names the tasks left
            out when they differ from the last load's (debug level otherwise). (Cross-sell whose
            model does not beat its rule has a champion all the same: ``guanxi promote`` points
            it at the affinity rule's rule-backed version, served like any model.)

        Raises
        ------
        registry.ModelNotFoundError
            If a task the settings name has no version with that alias, or no task has one.
        models.versions.ModelFilesMissingError
            If a version's files are not where the registry keeps them (named with the task,
            version and folder), and ``gone`` is not given or no task loads.
        """
        required = "tasks" in self.settings.model_fields_set
        models = {}
        unserved = []
        for task in tasks:  # the feature set is checked against the snapshot when building
            if not required and registry.get_version(task, alias) is None:
                unserved.append(task)
                continue
            try:
                loaded = load_version(task, alias=alias)
            except ModelFilesMissingError as exc:
                if gone is None:
                    raise
                gone[task] = exc  # one task at a time: the others load all the same
                continue
            models[task] = ServedModel(
                bundle=loaded.bundle,
                name=loaded.name,
                version=loaded.version,
                aliases=loaded.aliases,
            )
        if not models and gone:  # every champion lost its files: the first task's is said
            raise next(iter(gone.values()))
        if not models:  # the load fails, and says so itself (serving.lifecycle)
            raise registry.ModelNotFoundError(
                f"no task has a {alias} version: train one and promote it with `guanxi promote`"
            )
        if unserved:
            level = logging.WARNING if tuple(unserved) != self.unserved else logging.DEBUG
            logger.log(level, "no %s version, not served: %s", alias, ", ".join(unserved))
        self.unserved = tuple(unserved)
        return models

    def followed_versions(self, tasks: Sequence[str], alias: str) -> dict[str, str | None]:
        """Return the version each task's ``alias`` points at in the registry now.

        What ``GET /v1/models`` compares with the loaded versions (``reload_pending``): it reads
        the registry's aliases only, no model file, and never on the scoring path.

        Parameters
        ----------
        tasks : sequence of str
            Registered model names.
        alias : str
            The alias the server follows (``settings.model_alias``).

        Returns
        -------
        dict of str to str or None
            The version by task; None when the task has no version with that alias.

        Raises
        ------
        TimeoutError
            If the previous look has not finished yet (a registry slower than the caller waits).
        Exception
            Whatever the registry raises when it cannot be read (the caller says "not known").
        """
        if not self.looking.acquire(blocking=False):
            raise TimeoutError("the registry has not answered the previous look yet")
        try:
            versions: dict[str, str | None] = {}
            for task in tasks:
                found = registry.get_version(task, alias)
                # a number from a SQL registry, text from a server: the loaded version is text
                versions[task] = None if found is None else str(found.version)
            return versions
        finally:
            self.looking.release()

    def load_snapshot(self) -> LoadedSnapshot:
        """Load the newest snapshot in the store.

        Returns
        -------
        LoadedSnapshot
            The snapshot with its as-of day and feature-set version.

        Raises
        ------
        features.store.SnapshotNotFoundError
            If the store has no snapshot.
        """
        store = self.settings.store()
        info = store.snapshot_info()
        return LoadedSnapshot(
            as_of=info.as_of,
            feature_set_version=info.feature_set_version,
            frame=store.read_snapshot(info.as_of),
        )


def stored_scores(
    store: Store, models: Mapping[str, ServedModel], snapshot: LoadedSnapshot
) -> dict[str, pl.DataFrame]:
    """Read the score tables the store holds for this snapshot and these models.

    A table is used only if it was computed from this snapshot, with the categories the model
    reads that it lacks completed (same :func:`features.store.scores_digest`), by this model
    with at least the reasons serving keeps; otherwise, or if it cannot be read, it is ignored
    with a warning and the task is scored at load as without it.

    Parameters
    ----------
    store : features.store.Store
        The store under ``GUANXI_HOME``.
    models : mapping of str to ServedModel
        The models about to be served, by task.
    snapshot : LoadedSnapshot
        The snapshot about to be served.

    Returns
    -------
    dict of str to polars.DataFrame
        The usable tables, by task (for :func:`serving.tables.build_state`'s ``stored``).
    """
    found: dict[str, pl.DataFrame] = {}
    digest: str | None = None
    for task, model in models.items():
        name = f"{task} version {model.version} as of {snapshot.as_of}"
        frame: pl.DataFrame | None = None
        problem: str | None
        try:
            info = store.score_info(task, snapshot.as_of, model.version)
            if info is None:
                continue
            need = kept_reasons(model.bundle)
            digest = digest or snapshot_digest(snapshot.frame)
            recorded = scores_digest(
                digest, completed_categories(snapshot.frame, model.bundle.feature_names)
            )
            if info.explain_k < need:
                problem = (
                    f"it has {info.explain_k} reasons per row, serving keeps {need} (a table "
                    f"of guanxi score --explain {need} is read instead of computed again)"
                )
            elif info.model_name != model.name:
                problem = f"it was computed by model {info.model_name}, not {model.name}"
            elif info.snapshot_digest != recorded:
                problem = (
                    "it was computed from another snapshot of that day, or before the "
                    "categories the snapshot lacks were completed"
                )
            else:
                frame = store.read_scores(task, snapshot.as_of, model.version)
                problem = None if frame is not None else "it disappeared while being read"
        except TamperedTableError:
            raise  # not what the store signed: refuse the load, the current state keeps serving
        except UnsignedTableError as exc:
            problem = f"it is not signed with GUANXI_STORE_KEY ({exc}); it is recomputed"
        except Exception as exc:  # a damaged table must not stop the load
            problem = f"it cannot be read ({type(exc).__name__}: {exc})"
        if frame is not None:
            found[task] = frame
        else:
            logger.warning("ignoring the stored score table of %s: %s", name, problem)
    return found


def load_state(
    source: Source, settings: Settings, newest: NewestValues | None = None
) -> ServingState:
    """Load models and snapshot from ``source`` and build a new state (nothing is swapped).

    Parameters
    ----------
    source : Source
        Where models and snapshot come from.
    settings : Settings
        Tasks, alias and band thresholds.
    newest : serving.values.NewestValues, optional
        The app's value table read once per write (``app.state.newest_values``): the load reads
        the table through it, so a table it refused (the log says why) is not read, and said,
        again by the value requests served while the state has none. Default: a new one.

    Returns
    -------
    ServingState
        A state ready to swap in, with the store's value table (:func:`serving.values.load_values`
        picks it). A task whose champion's files are gone is left out and named in its ``gone``
        (the other tasks serve); when every task's are, the load fails.

    Raises
    ------
    Exception
        Whatever the source raises (missing or corrupt model, unreachable registry) and
        :class:`serving.state.IncompatibleModelError`; the caller keeps the old state.
    """
    models, gone = _load_models(source, settings)
    snapshot = source.load_snapshot()
    store = settings.store()
    stored = stored_scores(store, models, snapshot)
    state = build_state(
        models,
        snapshot,
        band_high_decile=settings.band_high_decile,
        band_medium_decile=settings.band_medium_decile,
        reason_cache_size=settings.reason_cache_size,
        threads=settings.model_threads,
        stored=stored,
    )
    values = (newest if newest is not None else NewestValues()).get(store, snapshot.as_of)
    return replace(state, values=values, gone=gone)


def _load_models(
    source: Source, settings: Settings
) -> tuple[dict[str, ServedModel], dict[str, ModelFilesMissingError]]:
    """Load the tasks' models, leaving out each task whose champion's files are gone.

    One task's lost files made every task wait (qa49 M2): the source (:meth:`Source.load_models`
    with ``gone``; a :class:`RegistrySource` loads task by task, once) returns the tasks whose
    files are gone with their error; the other tasks serve. When every task's files are gone,
    the first task's error (in ``settings.tasks``' order) is raised, as before.
    """
    gone: dict[str, ModelFilesMissingError] = {}
    return source.load_models(settings.tasks, settings.model_alias, gone=gone), gone
