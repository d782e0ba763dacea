"""The loaded state: plain data and lookups, nothing computed here.

A :class:`ServingState` is built once per load (:mod:`serving.tables`) and never changes shape
afterwards: reload builds a new one and swaps the reference (:class:`StateHolder`), so a request
keeps the state it started with. Each task's :class:`TaskTable` holds the model input rows, the
probabilities, margins and deciles of every snapshot customer, and room for what is explained
lazily (:mod:`serving.explaining` fills ``contributions``, ``explained`` and the reason cache).
Responses are built from these lookups by :mod:`serving.presentation`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pandas as pd
import polars as pl
from cachetools import LRUCache

from models.artifact import ModelBundle
from models.explain import MAX_REASONS
from models.ranking import band, decile_among
from models.tasks import get_task
from models.versions import ModelFilesMissingError
from serving.values import LoadedValues

__all__ = [
    "IncompatibleModelError",
    "LoadedSnapshot",
    "ReasonTuple",
    "ServedModel",
    "ServingState",
    "StateHolder",
    "TaskTable",
    "kept_reasons",
]

ReasonTuple = tuple[str, str, float | None, float, float, str]
"""A reason as cached: feature, group, value, points, log-odds, sentence."""


def kept_reasons(bundle: ModelBundle) -> int:
    """Reasons kept per customer: :data:`~models.explain.MAX_REASONS`, or every model input.

    Parameters
    ----------
    bundle : ModelBundle
        A served model.

    Returns
    -------
    int
        ``min(MAX_REASONS, len(bundle.feature_names))``.
    """
    return min(MAX_REASONS, len(bundle.feature_names))


class IncompatibleModelError(ValueError):
    """A model that cannot score the loaded snapshot (feature set or task mismatch)."""


@dataclass(frozen=True)
class ServedModel:
    """A model bundle with its registry identity.

    Parameters
    ----------
    bundle : ModelBundle
        The loaded bundle.
    name : str
        Registered model name.
    version : str
        Registered model version.
    aliases : tuple of str
        Aliases pointing at this version.
    """

    bundle: ModelBundle
    name: str
    version: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoadedSnapshot:
    """A feature snapshot with its as-of day and feature-set version."""

    as_of: date
    feature_set_version: str
    frame: pl.DataFrame


@dataclass(frozen=True, eq=False)
class TaskTable:
    """One task's scores over the snapshot.

    ``X`` holds the model input rows and ``values`` the same rows as one float64 array (the
    memory ``X`` reads, model inputs in order), so a request picks a customer's row by position
    with no pandas indexing.
    The rows of snapshot customer ``i`` are
    ``start[i]:start[i + 1]`` (one row for a binary task, one per category not bought yet for a
    ranked task). ``top[i]`` is the customer's highest-scoring row (-1 if none).
    ``decile[r]`` is row ``r``'s decile as batch scoring computes it
    (:func:`models.ranking.deciles` over all rows), ``population`` the sorted row probabilities
    that place a live score among them. ``contributions[i]`` holds the TreeSHAP row of ``top[i]``
    once ``explained[i]``; ``reason_cache`` the worded reasons of recently asked customers and
    ``fragments`` their whole task scores as the JSON a response carries, by (position, reasons
    asked, grouped), so a customer asked again is answered with bytes already made.
    ``stored``, when the table came from the store, holds per model row the reasons in
    :data:`ReasonTuple` order without the sentence (``contributions`` is then empty and
    ``explained`` marks every customer with a row: nothing is left to explain).

    Only the task's population has model rows: ``status[i]`` is customer ``i``'s status
    (:func:`models.tasks.population_status` under the activity window the model recorded, or
    :data:`~models.tasks.NO_CANDIDATES` for an eligible customer without rows), and deciles rank
    the population's rows only. ``base_log_odds`` is the model's bias (TreeSHAP's expected
    margin, the same for every row).
    """

    model: ServedModel
    X: pd.DataFrame
    values: np.ndarray
    margin: np.ndarray
    proba: np.ndarray
    start: np.ndarray
    top: np.ndarray
    decile: np.ndarray
    population: np.ndarray
    contributions: np.ndarray
    explained: np.ndarray
    reason_cache: LRUCache[int, list[ReasonTuple]]
    fragments: LRUCache[tuple[int, int, bool], bytes]
    status: np.ndarray
    base_log_odds: float
    stored: pl.DataFrame | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def decile_of(self, proba: np.ndarray) -> np.ndarray:
        """Decile (1 = top tenth) of new probabilities among the snapshot's rows.

        Parameters
        ----------
        proba : numpy.ndarray
            Customer-level probabilities.

        Returns
        -------
        numpy.ndarray
            int64 deciles (:func:`models.ranking.decile_among`).
        """
        return decile_among(self.population, proba)

    @property
    def reason_count(self) -> int:
        """Reasons kept per customer (:func:`kept_reasons`)."""
        return kept_reasons(self.model.bundle)

    @property
    def explained_share(self) -> float:
        """Share of the customers with a row whose reasons are computed (or stored)."""
        return float(self.explained.sum()) / max(int((self.top >= 0).sum()), 1)

    @property
    def active_days(self) -> int:
        """The activity window of the model's population (recorded at training, or the default)."""
        return get_task(self.model.bundle.task).population.active_days_of(
            self.model.bundle.metadata
        )


@dataclass(frozen=True, eq=False)
class ServingState:
    """Everything a request needs; immutable once built, replaced as a whole on reload."""

    snapshot: LoadedSnapshot
    index: pd.Index
    tables: dict[str, TaskTable]
    band_high_decile: int
    band_medium_decile: int
    loaded_at: datetime
    values: LoadedValues | None = None
    """The customer value table served beside the scores (:mod:`serving.values`), if any."""
    categories: tuple[str, ...] = ()
    """The product categories a request's events are built with (``POST /v1/score``), sorted:
    the snapshot's and those the models read a column of, computed once per load
    (:func:`serving.tables.build_state`), not per request."""
    gone: dict[str, ModelFilesMissingError] = field(default_factory=dict)
    """The tasks left out because their champion's files are gone, each with its error: the
    other tasks serve, these answer 503 naming the version (:func:`serving.loader.load_state`)."""

    def positions(self, customer_ids: Sequence[str]) -> np.ndarray:
        """Snapshot positions of customer ids (-1 for unknown ids), O(1) each (hash lookup)."""
        if len(customer_ids) > 64:
            return np.asarray(self.index.get_indexer(pd.Index(list(customer_ids))), np.int64)
        out = np.full(len(customer_ids), -1, dtype=np.int64)
        for i, customer_id in enumerate(customer_ids):
            with contextlib.suppress(KeyError):
                out[i] = int(self.index.get_loc(customer_id))  # type: ignore[arg-type]
        return out

    def holds(self, customer_id: str) -> bool:
        """Say whether the snapshot has a customer (the id matched exactly, as :meth:`positions`).

        Parameters
        ----------
        customer_id : str
            The customer.

        Returns
        -------
        bool
            True when the snapshot has a row of that id.
        """
        return customer_id in self.index

    def band(self, decile: np.ndarray) -> np.ndarray:
        """Bands (``high``, ``medium``, ``low``) of deciles under this state's thresholds."""
        return band(decile, self.band_high_decile, self.band_medium_decile)


class StateHolder:
    """The current state, swapped by reference; readers never lock."""

    def __init__(self) -> None:
        self.current: ServingState | None = None
        self.last_error: str | None = None
        # what is missing before anything can be served, said for clients (no paths, no
        # servers): set when the last load found no champion or no snapshot
        self.missing: str | None = None
        # why the last load failed, in one line for clients (no paths, no servers): set when it
        # failed otherwise than for what is missing (/readyz and the API's 503 say it alike)
        self.failure: str | None = None
        # loads failed in a row since the last one that succeeded (said in the log's retry line)
        self.failed_loads = 0
        # TreeSHAP's kernels compiled or loaded (or their warm-up failed): /readyz waits for it
        self.explainer_warm = False

    def swap(self, state: ServingState) -> None:
        """Make ``state`` current (one reference assignment, atomic for readers)."""
        self.current = state
        self.last_error = None
        self.missing = None
        self.failure = None
        self.failed_loads = 0
