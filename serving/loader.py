"""Where the served models and snapshot come from, and how a new state is built from them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from features.store import Store
from models import registry
from serving.settings import Settings
from serving.state import LoadedSnapshot, ServedModel, ServingState, build_state

__all__ = ["RegistrySource", "Source", "load_state"]


class Source(Protocol):
    """Loads models and the snapshot to serve (the registry and the store, or a test double)."""

    def load_models(self, tasks: Sequence[str], alias: str) -> dict[str, ServedModel]:
        """Load the model each task's ``alias`` points at."""
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

    def load_models(self, tasks: Sequence[str], alias: str) -> dict[str, ServedModel]:
        """Load ``<task>@<alias>`` for every task from the registry.

        Parameters
        ----------
        tasks : sequence of str
            Registered model names.
        alias : str
            The alias to follow, normally ``champion``.

        Returns
        -------
        dict of str to ServedModel
            Each task's model with its registered version and aliases.

        Raises
        ------
        registry.ModelNotFoundError
            If a task has no version with that alias.
        """
        models = {}
        for task in tasks:
            version = registry.get_version(task, alias)
            if version is None:
                raise registry.ModelNotFoundError(
                    f"no registered model {task!r} has the alias {alias!r}; train and promote one"
                )
            bundle = registry.load_bundle(task, version=str(version.version))
            models[task] = ServedModel(
                bundle=bundle,
                name=task,
                version=str(version.version),
                aliases=tuple(sorted(version.aliases or ())),
            )
        return models

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
        store = Store(self.settings.home)
        info = store.snapshot_info()
        return LoadedSnapshot(
            as_of=info.as_of,
            feature_set_version=info.feature_set_version,
            frame=store.read_snapshot(info.as_of),
        )


def load_state(source: Source, settings: Settings) -> ServingState:
    """Load models and snapshot from ``source`` and build a new state (nothing is swapped).

    Parameters
    ----------
    source : Source
        Where models and snapshot come from.
    settings : Settings
        Tasks, alias and band thresholds.

    Returns
    -------
    ServingState
        A state ready to swap in.

    Raises
    ------
    Exception
        Whatever the source raises (missing or corrupt model, unreachable registry) and
        :class:`serving.state.IncompatibleModelError`; the caller keeps the old state.
    """
    models = source.load_models(settings.tasks, settings.model_alias)
    snapshot = source.load_snapshot()
    return build_state(
        models,
        snapshot,
        band_high_decile=settings.band_high_decile,
        band_medium_decile=settings.band_medium_decile,
        reason_cache_size=settings.reason_cache_size,
        threads=settings.model_threads,
    )
