"""The loaded state: models, the snapshot indexed by customer, scores and cached contributions.

A :class:`ServingState` is built once per load and never changes shape afterwards: reload builds a
new one and swaps the reference (:class:`StateHolder`), so a request keeps the state it started
with. Probabilities, margins and deciles of every snapshot customer are computed in one vectorised
pass when the state is built; TreeSHAP contributions, the expensive part, are computed lazily (on
first request, or by a background worker) into a per-task array and reused, so a request for a
customer already explained is a lookup.

When the store holds a score table for the snapshot and model (written by ``guanxi score`` or by
the background worker of an earlier load, see :meth:`TaskTable.score_table`), the state takes the
probabilities, margins, deciles and reasons from it instead (:func:`build_state`'s ``stored``):
nothing is predicted or explained, and every value served is the one the table holds, which is
the value the computation gives.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import polars as pl

from features.contracts import FEATURE_SET_VERSION
from models.artifact import ModelBundle
from models.explain import explain, reason_sentences
from models.scoring import REASON_FIELDS, deciles, reason_columns, score_rows
from models.tasks import get_task, model_frame
from serving.schemas import (
    MAX_REASONS,
    Band,
    CategoryScore,
    Reason,
    ReasonGroup,
    TaskScore,
)

ReasonTuple = tuple[str, str, float | None, float, float, str]
"""A reason as cached: feature, group, value, points, log-odds, sentence."""

__all__ = [
    "IncompatibleModelError",
    "LoadedSnapshot",
    "ReasonTuple",
    "ServedModel",
    "ServingState",
    "StateHolder",
    "TaskTable",
    "build_state",
    "kept_reasons",
]

logger = logging.getLogger(__name__)

_REASON_COLUMNS = ("feature", "group", "value", "points", "contribution", "sentence")
"""Columns of :func:`models.explain.explain` in :data:`ReasonTuple` order."""

_REASON_ORDER = tuple(REASON_FIELDS[c] for c in _REASON_COLUMNS)
"""Wide ``reason_{i}_*`` suffixes in :data:`ReasonTuple` order."""

_KEPT_ORDER = _REASON_ORDER[:-1]
"""What a stored table keeps in memory per reason: the sentence is worded again on request (a
sentence per reason is most of a table's memory: about 2 KB a customer with 20 reasons)."""


def kept_reasons(bundle: ModelBundle) -> int:
    """Reasons kept per customer: :data:`~serving.schemas.MAX_REASONS`, or every model input.

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

    ``X`` holds the model input rows; the rows of snapshot customer ``i`` are
    ``start[i]:start[i + 1]`` (one row for a binary task, one per category not bought yet for a
    ranked task). ``top[i]`` is the customer's highest-scoring row (-1 if none).
    ``decile[r]`` is row ``r``'s decile as batch scoring computes it
    (:func:`models.scoring.deciles` over all rows), ``population`` the sorted row probabilities
    that place a live score among them. ``contributions[i]`` holds the TreeSHAP row of ``top[i]``
    once ``explained[i]``. ``stored``, when the table came from the store, holds per model row
    ``base_logodds`` and the reasons in :data:`ReasonTuple` order (``contributions`` is then empty
    and ``explained`` marks every customer with a row: nothing is left to explain).
    """

    model: ServedModel
    X: pd.DataFrame
    margin: np.ndarray
    proba: np.ndarray
    start: np.ndarray
    top: np.ndarray
    decile: np.ndarray
    population: np.ndarray
    contributions: np.ndarray
    explained: np.ndarray
    cache_size: int = 20_000
    stored: pl.DataFrame | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    _reasons: OrderedDict[int, list[ReasonTuple]] = field(default_factory=OrderedDict)

    def decile_of(self, proba: np.ndarray) -> np.ndarray:
        """Decile (1 = top tenth) of new probabilities among the snapshot's rows.

        Parameters
        ----------
        proba : numpy.ndarray
            Customer-level probabilities.

        Returns
        -------
        numpy.ndarray
            int64 deciles: ``1 + floor(10 * share of rows scoring strictly higher)``, as
            :func:`models.scoring.deciles` gives a score that ties with none.
        """
        return _deciles(self.population, proba)

    @property
    def reason_count(self) -> int:
        """Reasons kept per customer (:func:`kept_reasons`)."""
        return kept_reasons(self.model.bundle)

    def base_log_odds(self, position: int) -> float:
        """Bias (log-odds before any feature) of an explained or stored customer.

        Parameters
        ----------
        position : int
            Snapshot position of a customer with a row, explained (or from the store).

        Returns
        -------
        float
            The bias of the customer's top row.
        """
        if self.stored is not None:
            return float(self.stored.item(int(self.top[position]), "base_logodds"))
        return float(self.contributions[position, -1])

    def reasons(self, positions: np.ndarray) -> list[list[ReasonTuple]]:
        """Top :data:`~serving.schemas.MAX_REASONS` reasons of snapshot customers, cached.

        Customers not in the cache are explained together (one vectorised
        :func:`models.explain.explain` call on their kept contributions); the cache keeps the
        ``cache_size`` most recently used customers. A table from the store is read instead.

        Parameters
        ----------
        positions : numpy.ndarray
            Snapshot positions of customers with a row (``top >= 0``).

        Returns
        -------
        list of list of tuple
            Per position, reasons as ``(feature, group, value, points, log_odds, sentence)``.
        """
        if self.stored is not None:
            width = len(_KEPT_ORDER)
            rows = self.stored.drop("base_logodds")[self.top[positions]].iter_rows()
            kept = [[row[i : i + width] for i in range(0, len(row), width)] for row in rows]
            if not any(kept):
                return kept
            feature, _, value, points, *_ = zip(*(r for rs in kept for r in rs), strict=True)
            words = iter(reason_sentences(self.model.bundle, feature, value, points))
            return [[(*r, next(words)) for r in reasons] for reasons in kept]
        with self.lock:
            found = {int(p): self._reasons.get(int(p)) for p in positions}
        missing = np.array([p for p, r in found.items() if r is None], dtype=np.int64)
        if len(missing):
            self.ensure_explained(missing)
            k = self.reason_count
            frame = explain(
                self.model.bundle,
                self.X.iloc[self.top[missing]],
                k,
                contributions=self.contributions[missing],
            )
            rows = list(frame.select(_REASON_COLUMNS).iter_rows())
            for j, p in enumerate(missing.tolist()):
                found[p] = rows[j * k : (j + 1) * k]
        with self.lock:
            for p, r in found.items():
                self._reasons[p] = r  # type: ignore[assignment]
                self._reasons.move_to_end(p)
            while len(self._reasons) > self.cache_size:
                self._reasons.popitem(last=False)
        return [found[int(p)] or [] for p in positions]

    def ensure_explained(self, positions: np.ndarray) -> None:
        """Compute and keep the contributions of customers not explained yet.

        Parameters
        ----------
        positions : numpy.ndarray
            Snapshot positions of customers with a row (``top >= 0``); nothing is done for a
            table from the store.
        """
        if self.stored is not None:
            return
        missing = positions[~self.explained[positions]]
        if len(missing) == 0:
            return
        missing = np.unique(missing)
        values = self.model.bundle.contributions(self.X.iloc[self.top[missing]])
        with self.lock:
            self.contributions[missing] = values
            self.explained[missing] = True

    def score_table(self, chunk: int = 50_000) -> pl.DataFrame:
        """Build the table the store keeps for this task, snapshot and model.

        Parameters
        ----------
        chunk : int
            Customers whose reasons are formatted at a time (bounds the memory of the long
            reason frame).

        Returns
        -------
        polars.DataFrame
            The layout of :func:`models.scoring.score_snapshot` with
            ``explain_k = reason_count``: every model row, reasons on each customer's top row
            (null on the other cross-sell rows).

        Raises
        ------
        ValueError
            If a customer with a row is not explained yet.
        """
        has = np.flatnonzero(self.top >= 0)
        if not self.explained[has].all():
            raise ValueError(f"{self.model.bundle.task}: not every customer is explained yet")
        bundle = self.model.bundle
        rows = score_rows(
            bundle, self.X, self.margin, self.proba, self.model.name, self.model.version
        )
        if len(has) == 0:
            return rows
        parts = [
            reason_columns(
                bundle,
                self.X.iloc[self.top[has[lo : lo + chunk]]],
                self.reason_count,
                contributions=self.contributions[has[lo : lo + chunk]],
            )
            for lo in range(0, len(has), chunk)
        ]
        reasons = pl.concat(parts).with_columns(pl.Series("_row", self.top[has], dtype=pl.UInt32))
        return (
            rows.with_row_index("_row")
            .join(reasons, on="_row", how="left", maintain_order="left")
            .drop("_row")
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

    def positions(self, customer_ids: Sequence[str]) -> np.ndarray:
        """Snapshot positions of customer ids (-1 for unknown ids), O(1) each (hash lookup)."""
        if len(customer_ids) > 64:
            return np.asarray(self.index.get_indexer(pd.Index(list(customer_ids))), np.int64)
        out = np.full(len(customer_ids), -1, dtype=np.int64)
        for i, customer_id in enumerate(customer_ids):
            with contextlib.suppress(KeyError):
                out[i] = int(self.index.get_loc(customer_id))  # type: ignore[arg-type]
        return out

    def band(self, decile: int) -> Band:
        """Band of a decile: ``high``, ``medium`` or ``low``."""
        if decile <= self.band_high_decile:
            return "high"
        return "medium" if decile <= self.band_medium_decile else "low"

    def score(
        self, positions: np.ndarray, tasks: Sequence[str], k: int, group: bool
    ) -> list[dict[str, TaskScore]]:
        """Scores of snapshot customers (all positions must be known).

        Parameters
        ----------
        positions : numpy.ndarray
            Snapshot positions (from :meth:`positions`, without -1).
        tasks : sequence of str
            Loaded tasks to score.
        k : int
            Reasons per task (0 for none).
        group : bool
            Whether to group reasons by business concept.

        Returns
        -------
        list of dict
            Per position, task name to :class:`~serving.schemas.TaskScore`.
        """
        out: list[dict[str, TaskScore]] = [{} for _ in positions]
        for task in tasks:
            table = self.tables[task]
            top = table.top[positions]
            has = top >= 0
            reasons: list[list[ReasonTuple]] = [[] for _ in positions]
            base: list[float | None] = [None] * len(positions)
            if k > 0 and has.any():
                slots = np.flatnonzero(has)
                for slot, found in zip(slots, table.reasons(positions[slots]), strict=True):
                    reasons[slot] = found[:k]
                    base[slot] = table.base_log_odds(int(positions[slot]))
            scores = _task_scores(
                self,
                task,
                table,
                X=table.X,
                rows=top,
                proba=table.proba,
                margin=table.margin,
                decile=table.decile[top],
                reasons=reasons,
                base=base,
                blocks=[(table.start[p], table.start[p + 1]) for p in positions],
                group=group,
                snapshot_date=self.snapshot.as_of,
            )
            for result, task_score in zip(out, scores, strict=True):
                result[task] = task_score
        return out

    def score_frame(
        self, frame: pl.DataFrame, tasks: Sequence[str], k: int, group: bool
    ) -> dict[str, TaskScore]:
        """Score one customer's snapshot row (not from the loaded snapshot) live.

        Parameters
        ----------
        frame : polars.DataFrame
            One snapshot row with a ``customer_id`` column.
        tasks : sequence of str
            Loaded tasks to score.
        k : int
            Reasons per task.
        group : bool
            Whether to group reasons by business concept.

        Returns
        -------
        dict
            Task name to :class:`~serving.schemas.TaskScore`; deciles are placed among the loaded
            snapshot's customers.
        """
        out: dict[str, TaskScore] = {}
        for task in tasks:
            table = self.tables[task]
            bundle = table.model.bundle
            X = model_frame(task, frame, bundle.feature_names, bundle.categories)  # noqa: N806
            margin = bundle.predict_margin(X)
            proba = bundle.predict_proba(X)
            top = np.array([int(np.argmax(proba))] if len(X) else [-1], dtype=np.int64)
            decile = table.decile_of(proba[top]) if len(X) else np.ones(1, dtype=np.int64)
            reasons: list[ReasonTuple] = []
            base = None
            if k > 0 and len(X):
                contributions = bundle.contributions(X.iloc[top])
                reasons = list(
                    explain(bundle, X.iloc[top], k, contributions=contributions)
                    .select(_REASON_COLUMNS)
                    .iter_rows()
                )
                base = float(contributions[0, -1])
            out[task] = _task_scores(
                self,
                task,
                table,
                X=X,
                rows=top,
                proba=proba,
                margin=margin,
                decile=decile,
                reasons=[reasons],
                base=[base],
                blocks=[(0, len(X))],
                group=group,
                snapshot_date=None,
            )[0]
        return out


def _task_scores(
    state: ServingState,
    task: str,
    table: TaskTable,
    *,
    X: pd.DataFrame,  # noqa: N803
    rows: np.ndarray,
    proba: np.ndarray,
    margin: np.ndarray,
    decile: np.ndarray,
    reasons: list[list[ReasonTuple]],
    base: list[float | None],
    blocks: list[tuple[int, int]],
    group: bool,
    snapshot_date: date | None,
) -> list[TaskScore]:
    """Assemble :class:`TaskScore` objects for customers whose top rows are ``rows``."""
    model = table.model
    has = rows >= 0
    ranked = get_task(task).kind == "ranked"
    result = []
    for i, row in enumerate(rows):
        row_reasons = [
            Reason(
                feature=f,
                group=g,
                value=v,
                contribution_points=points,
                contribution_log_odds=log_odds,
                sentence=text,
            )
            for f, g, v, points, log_odds, text in reasons[i]
        ]
        categories = None
        if ranked:
            lo, hi = blocks[i]
            order = lo + np.argsort(-proba[lo:hi], kind="stable")
            names = X.index.get_level_values("category")
            categories = [
                CategoryScore(category=str(names[r]), rank=rank, probability=float(proba[r]))
                for rank, r in enumerate(order, start=1)
            ]
        result.append(
            TaskScore(
                task=task,
                probability=float(proba[row]) if has[i] else None,
                decile=int(decile[i]) if has[i] else None,
                band=state.band(int(decile[i])) if has[i] else None,
                log_odds=float(margin[row]) if has[i] else None,
                base_log_odds=base[i],
                model_name=model.name,
                model_version=model.version,
                snapshot_date=snapshot_date,
                reasons=row_reasons,
                groups=_groups(row_reasons) if group else None,
                categories=categories,
            )
        )
    return result


def _groups(reasons: list[Reason]) -> list[ReasonGroup]:
    """Reasons grouped by business concept, largest absolute total first."""
    by_group: dict[str, list[Reason]] = defaultdict(list)
    for r in reasons:
        by_group[r.group].append(r)
    groups = [
        ReasonGroup(
            group=name,
            contribution_points=sum(r.contribution_points for r in items),
            contribution_log_odds=sum(r.contribution_log_odds for r in items),
            reasons=items,
        )
        for name, items in by_group.items()
    ]
    return sorted(groups, key=lambda g: -abs(g.contribution_points))


def _deciles(population: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """``1 + floor(10 * share of population strictly above proba)``, capped at 10."""
    n = len(population)
    if n == 0:
        return np.ones(len(proba), dtype=np.int64)
    higher = n - np.searchsorted(population, proba, side="right")
    return np.minimum(1 + (10 * higher) // n, 10).astype(np.int64)


def _stored_rows(
    frame: pl.DataFrame,
    X: pd.DataFrame,  # noqa: N803
    k: int,
    name: str,
) -> pl.DataFrame | None:
    """Return a stored table's columns if it has exactly ``X``'s rows and ``k`` reasons."""
    ids = X.index.get_level_values(0)
    wanted = [
        "score",
        "margin",
        "decile",
        "base_logodds",
        *(f"reason_{i}_{f}" for i in range(1, k + 1) for f in _REASON_ORDER),
    ]
    kept = [c for c in wanted if not c.endswith(f"_{_REASON_ORDER[-1]}")]
    labels = [f"reason_{i}_{f}" for i in range(1, k + 1) for f in _KEPT_ORDER[:2]]
    problem = None
    if frame.height != len(X):
        problem = f"has {frame.height} rows, the snapshot gives {len(X)}"
    elif missing := [c for c in ("customer_id", "category", *wanted) if c not in frame.columns]:
        problem = f"lacks the columns {', '.join(missing)}"
    elif not frame.get_column("customer_id").equals(
        pl.Series("customer_id", np.asarray(ids, dtype=str)), check_names=False
    ):
        problem = "names other customers (or orders them otherwise) than the snapshot"
    elif isinstance(X.index, pd.MultiIndex) and not frame.get_column("category").equals(
        pl.Series(np.asarray(X.index.get_level_values("category"), dtype=str)),
        check_names=False,
    ):
        problem = "names other categories than the snapshot"
    if problem is not None:
        logger.warning("ignoring the stored score table of %s: it %s", name, problem)
        return None
    return frame.select(kept).with_columns(pl.col(labels).cast(pl.Categorical))


def _table(
    model: ServedModel,
    snapshot: LoadedSnapshot,
    index: pd.Index,
    cache_size: int,
    stored: pl.DataFrame | None = None,
) -> TaskTable:
    """Score every snapshot customer for one task, vectorised (or take the stored scores)."""
    bundle = model.bundle
    X = model_frame(bundle.task, snapshot.frame, bundle.feature_names, bundle.categories)  # noqa: N806
    n = len(index)
    customer_ids = X.index.get_level_values(0) if isinstance(X.index, pd.MultiIndex) else X.index
    owner = np.asarray(index.get_indexer(customer_ids), dtype=np.int64)
    if (owner < 0).any():
        raise ValueError(f"{bundle.task} model rows name customers that are not in the snapshot")
    order = np.argsort(owner, kind="stable")
    if not np.array_equal(order, np.arange(len(order))):
        X, owner = X.iloc[order], owner[order]  # noqa: N806
    k = kept_reasons(bundle)
    name = f"{bundle.task} version {model.version} as of {snapshot.as_of}"
    rows = _stored_rows(stored, X, k, name) if stored is not None else None
    if rows is None:
        margin = bundle.predict_margin(X)
        proba = bundle.predict_proba(X)
        decile = deciles(proba).astype(np.int64)
    else:
        margin = rows.get_column("margin").to_numpy()
        proba = rows.get_column("score").to_numpy()
        decile = rows.get_column("decile").to_numpy().astype(np.int64)
        rows = rows.drop("score", "margin", "decile")
    start = np.searchsorted(owner, np.arange(n + 1), side="left").astype(np.int64)
    top = np.full(n, -1, dtype=np.int64)
    if len(X):
        by_score = np.lexsort((-proba, owner))  # per customer, highest probability first
        owners = owner[by_score]
        first = np.r_[True, owners[1:] != owners[:-1]]
        top[owners[first]] = by_score[first]
    if rows is not None and rows[top[top >= 0]].get_column("reason_1_feature").has_nulls():
        logger.warning("ignoring the stored score table of %s: top rows lack reasons", name)
        return _table(model, snapshot, index, cache_size)
    if rows is not None:
        logger.info("scores and reasons of %s come from the store", name)
    population = np.sort(proba)
    return TaskTable(
        model=model,
        X=X,
        margin=margin,
        proba=proba,
        start=start,
        top=top,
        decile=decile,
        population=population,
        contributions=np.empty(
            (n if rows is None else 0, len(bundle.feature_names) + 1), dtype=np.float32
        ),
        explained=np.zeros(n, dtype=bool) if rows is None else top >= 0,
        cache_size=cache_size,
        stored=rows,
    )


def build_state(
    models: dict[str, ServedModel],
    snapshot: LoadedSnapshot,
    band_high_decile: int = 2,
    band_medium_decile: int = 5,
    reason_cache_size: int = 20_000,
    threads: int | None = 1,
    stored: Mapping[str, pl.DataFrame] | None = None,
) -> ServingState:
    """Check the models against the snapshot and score every snapshot customer.

    Parameters
    ----------
    models : dict of str to ServedModel
        The model of each task to serve.
    snapshot : LoadedSnapshot
        The feature snapshot to serve.
    band_high_decile, band_medium_decile : int
        Deciles ``1..band_high_decile`` are band ``high``, up to ``band_medium_decile``
        ``medium``, the rest ``low``.
    reason_cache_size : int
        Customers per task whose formatted reasons are kept.
    threads : int or None
        XGBoost threads per prediction (``nthread`` of each booster); 1 suits one-row requests
        served concurrently. None leaves the boosters as loaded.
    stored : mapping of str to polars.DataFrame, optional
        Score tables from the store for this snapshot and these models, by task (the layout of
        :func:`models.scoring.score_snapshot`, with at least ``reason_count`` reasons). A table
        whose rows are not exactly the snapshot's model rows, or whose top rows lack reasons, is
        ignored with a warning and the task is scored as without it.

    Returns
    -------
    ServingState
        The new state, ready to swap in.

    Raises
    ------
    IncompatibleModelError
        If a model was trained on another feature-set version than the snapshot's, is
        registered for another task, or the snapshot was built with another feature-set version
        than this code builds.
    ValueError
        If the snapshot has no ``customer_id`` column or repeats a customer.
    """
    for task, model in models.items():
        bundle = model.bundle
        if bundle.task != task:
            raise IncompatibleModelError(
                f"model {model.name} version {model.version} is a {bundle.task!r} model, "
                f"registered for task {task!r}"
            )
        if bundle.feature_set_version != snapshot.feature_set_version:
            raise IncompatibleModelError(
                f"{task} model {model.name} version {model.version} was trained on feature set "
                f"version {bundle.feature_set_version}, but the snapshot as of {snapshot.as_of} "
                f"has feature set version {snapshot.feature_set_version}; retrain the model or "
                "rebuild the snapshot with the matching feature set"
            )
    if snapshot.feature_set_version != FEATURE_SET_VERSION:
        raise IncompatibleModelError(
            f"the snapshot as of {snapshot.as_of} has feature set version "
            f"{snapshot.feature_set_version}, but this guanxi builds feature set version "
            f"{FEATURE_SET_VERSION}; rebuild the snapshot (`guanxi features build`)"
        )
    if "customer_id" not in snapshot.frame.columns:
        raise ValueError(f"snapshot as of {snapshot.as_of} has no 'customer_id' column")
    if threads is not None:
        for model in models.values():
            model.bundle.booster.set_param({"nthread": threads})
    index = pd.Index(snapshot.frame.get_column("customer_id").to_numpy())
    if not index.is_unique:
        raise ValueError(f"snapshot as of {snapshot.as_of} repeats customer ids")
    return ServingState(
        snapshot=snapshot,
        index=index,
        tables={
            task: _table(model, snapshot, index, reason_cache_size, (stored or {}).get(task))
            for task, model in models.items()
        },
        band_high_decile=band_high_decile,
        band_medium_decile=band_medium_decile,
        loaded_at=datetime.now(UTC),
    )


class StateHolder:
    """The current state, swapped by reference; readers never lock."""

    def __init__(self) -> None:
        self.current: ServingState | None = None
        self.last_error: str | None = None

    def swap(self, state: ServingState) -> None:
        """Make ``state`` current (one reference assignment, atomic for readers)."""
        self.current = state
        self.last_error = None
