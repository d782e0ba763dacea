"""Reasons on demand: lazy TreeSHAP, the reason cache, the background explainer, the score table.

TreeSHAP contributions are the expensive part of a response, so they are computed lazily: on the
first request for a customer, or ahead of requests by :func:`explain_in_background`, into the
task table's ``contributions`` (:class:`~serving.state.TaskTable`), and the worded reasons of the
most recently asked customers stay in its ``reason_cache`` (a :class:`cachetools.LRUCache`). A
table that came from the store holds every reason as numbers already; only the sentences are
worded again (:func:`models.explain.reason_sentences`).

When the background worker has explained every customer of a task it writes the task's score table
into the store (:func:`score_table`, the layout of :func:`models.scoring.score_snapshot`, statuses
of the customers outside the population included), so the next load (or another worker) reads
scores and reasons instead of computing them.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import polars as pl

from features.store import Store, scores_digest, snapshot_digest
from models.artifact import ModelBundle
from models.explain import explain, reason_sentences, reason_tuples
from models.scoring import (
    REASON_FIELDS,
    reason_columns,
    score_rows,
    with_reasons,
    with_unscored,
)
from models.tasks import completed_categories
from serving.state import ReasonTuple, ServingState, StateHolder, TaskTable

__all__ = [
    "KEPT_ORDER",
    "PYTHON_ROWS",
    "REASON_COLUMNS",
    "REASON_ORDER",
    "ensure_explained",
    "ensure_explained_together",
    "explain_in_background",
    "explain_rows",
    "reasons",
    "score_table",
]

logger = logging.getLogger(__name__)

REASON_COLUMNS = ("feature", "group", "value", "points", "contribution", "sentence")
"""Columns of :func:`models.explain.explain` in :data:`~serving.state.ReasonTuple` order."""

REASON_ORDER = tuple(REASON_FIELDS[c] for c in REASON_COLUMNS)
"""Wide ``reason_{i}_*`` suffixes of a score table in :data:`~serving.state.ReasonTuple` order."""

PYTHON_ROWS = 64
"""Up to this many rows :func:`explain_rows` words in Python (:func:`models.explain.reason_tuples`:
no fixed cost, what a request needs); more go through the vectorised :func:`models.explain.explain`.
"""

KEPT_ORDER = REASON_ORDER[:-1]
"""What a stored table keeps in memory per reason: the sentence is worded again on request (a
sentence per reason is most of a table's memory: about 2 KB a customer with 20 reasons)."""


def explain_rows(
    bundle: ModelBundle,
    X: pd.DataFrame | np.ndarray,  # noqa: N803
    k: int,
    contributions: np.ndarray | None = None,
    exclude: Collection[str] = (),
) -> list[list[ReasonTuple]]:
    """Top-``k`` reasons of model input rows, as tuples.

    Parameters
    ----------
    bundle : ModelBundle
        The model.
    X : pandas.DataFrame or numpy.ndarray
        Model input rows (an array: the model's inputs in ``feature_names`` order).
    k : int
        Reasons per row, ``k >= 1``.
    contributions : numpy.ndarray, optional
        ``bundle.contributions(X)`` if already computed.
    exclude : collection of str, optional
        Model inputs that are never a reason (:func:`models.explain.explain`).

    Returns
    -------
    list of list of tuple
        Per row, reasons as ``(feature, group, value, points, log_odds, sentence)``.
    """
    if len(X) <= PYTHON_ROWS:
        return reason_tuples(bundle, X, k, contributions=contributions, exclude=exclude)
    frame = explain(bundle, X, k, contributions=contributions, exclude=exclude)
    rows = list(frame.select(REASON_COLUMNS).iter_rows())
    width = min(k, sum(name not in exclude for name in bundle.feature_names))
    return [rows[i * width : (i + 1) * width] for i in range(len(X))]


def ensure_explained(table: TaskTable, positions: np.ndarray) -> None:
    """Compute and keep the contributions of customers not explained yet.

    Parameters
    ----------
    table : TaskTable
        The task.
    positions : numpy.ndarray
        Snapshot positions of customers with a row (``top >= 0``); nothing is done for a table
        from the store.
    """
    if table.stored is not None:
        return
    missing = positions[~table.explained[positions]]
    if len(missing) == 0:
        return
    missing = np.unique(missing)
    values = table.model.bundle.contributions(table.values[table.top[missing]])
    with table.lock:
        table.contributions[missing] = values
        table.explained[missing] = True


@functools.cache
def _helpers() -> tuple[ThreadPoolExecutor, int]:
    """Threads that explain beside a request's own (one fewer than the CPUs this may use)."""
    count = max(1, len(os.sched_getaffinity(0)) - 1)
    return ThreadPoolExecutor(max_workers=count, thread_name_prefix="guanxi-shap"), count


def ensure_explained_together(tables: Sequence[TaskTable], position: int) -> None:
    """Explain one customer for several tasks at once, on every core (:func:`ensure_explained`).

    A customer never explained costs a TreeSHAP pass per task; the kernel releases the GIL, so
    the tasks are split between this thread and helper threads and run side by side instead of
    one after another. Tasks already explained (or from the store) cost nothing.

    Parameters
    ----------
    tables : sequence of TaskTable
        The tasks asked for.
    position : int
        A snapshot position (not -1).
    """
    at = np.array([position], dtype=np.int64)
    todo = [
        t for t in tables if t.stored is None and t.top[position] >= 0 and not t.explained[position]
    ]

    def explain_each(some: Sequence[TaskTable]) -> None:
        for table in some:
            ensure_explained(table, at)

    if not todo:
        return
    helpers, count = _helpers()
    parts = min(len(todo), count + 1)
    jobs = [helpers.submit(explain_each, todo[i::parts]) for i in range(1, parts)]
    explain_each(todo[::parts])
    for job in jobs:
        job.result()


def _stored_reasons(
    table: TaskTable, stored: pl.DataFrame, positions: np.ndarray
) -> list[list[ReasonTuple]]:
    """Reasons of a table from the store: numbers from its rows, sentences worded again."""
    width = len(KEPT_ORDER)
    rows = stored[table.top[positions]].iter_rows()
    kept = [[row[i : i + width] for i in range(0, len(row), width)] for row in rows]
    if not any(kept):
        return kept
    feature, _, value, points, *_ = zip(*(r for rs in kept for r in rs), strict=True)
    top = table.top[positions]
    rows = [int(top[i]) for i, found in enumerate(kept) for _ in found]
    words = iter(reason_sentences(table.model.bundle, feature, value, points, table.values, rows))
    return [[(*r, next(words)) for r in found] for found in kept]


def reasons(table: TaskTable, positions: np.ndarray) -> list[list[ReasonTuple]]:
    """Top :data:`~serving.state.kept_reasons` reasons of snapshot customers, cached.

    Customers not in the cache are explained together (one vectorised
    :func:`models.explain.explain` call on their kept contributions); the cache keeps the most
    recently used customers. A table from the store is read instead.

    Parameters
    ----------
    table : TaskTable
        The task.
    positions : numpy.ndarray
        Snapshot positions of customers with a row (``top >= 0``).

    Returns
    -------
    list of list of tuple
        Per position, reasons as ``(feature, group, value, points, log_odds, sentence)``.
    """
    if table.stored is not None:
        return _stored_reasons(table, table.stored, positions)
    with table.lock:
        found = {int(p): table.reason_cache.get(int(p)) for p in positions}
    missing = np.array([p for p, r in found.items() if r is None], dtype=np.int64)
    if len(missing):
        ensure_explained(table, missing)
        fresh = explain_rows(
            table.model.bundle,
            table.values[table.top[missing]],
            table.reason_count,
            contributions=table.contributions[missing],
        )
        found.update(zip(missing.tolist(), fresh, strict=True))
    with table.lock:
        for p, r in found.items():
            if r is not None and table.reason_cache.maxsize > 0:
                table.reason_cache[p] = r
    return [found[int(p)] or [] for p in positions]


def score_table(table: TaskTable, customer_ids: pd.Index, chunk: int = 50_000) -> pl.DataFrame:
    """Build the table the store keeps for this task, snapshot and model.

    Parameters
    ----------
    table : TaskTable
        A task whose customers are all explained.
    customer_ids : pandas.Index
        The snapshot's customer ids, in snapshot order (``ServingState.index``).
    chunk : int
        Customers whose reasons are formatted at a time (bounds the memory of the long reason
        frame).

    Returns
    -------
    polars.DataFrame
        The layout of :func:`models.scoring.score_snapshot` with ``explain_k = reason_count``:
        every model row, reasons on each customer's top row (null on the other rows of a ranked
        task), and a row with its status for each customer outside the population.

    Raises
    ------
    ValueError
        If a customer with a row is not explained yet.
    """
    has = np.flatnonzero(table.top >= 0)
    bundle, model = table.model.bundle, table.model
    if not table.explained[has].all():
        raise ValueError(f"{bundle.task}: not every customer is explained yet")
    rows = score_rows(bundle, table.X, table.margin, table.proba, model.name, model.version)
    if len(has):
        parts = []
        for lo in range(0, len(has), chunk):
            top = table.top[has[lo : lo + chunk]]
            parts.append(
                reason_columns(
                    bundle,
                    table.X.iloc[top],
                    table.reason_count,
                    contributions=table.contributions[has[lo : lo + chunk]],
                    margin=table.margin[top],
                )
            )
        rows = with_reasons(rows, pl.concat(parts), table.top[has])
    statuses = pl.DataFrame(
        {"customer_id": np.asarray(customer_ids, dtype=str), "status": table.status.astype(str)}
    )
    return with_unscored(rows, statuses, bundle, model.name, model.version)


def _store_table(store: Store, state: ServingState, task: str, table: TaskTable) -> None:
    """Write a fully explained task's score table into the store; a failure is only logged."""
    model = table.model
    try:
        info = store.write_scores(
            task,
            state.snapshot.as_of,
            model.version,
            score_table(table, state.index),
            model_name=model.name,
            feature_set_version=model.bundle.feature_set_version,
            explain_k=table.reason_count,
            snapshot_digest=scores_digest(
                snapshot_digest(state.snapshot.frame),
                completed_categories(state.snapshot.frame, model.bundle.feature_names),
            ),
        )
    except Exception:
        logger.warning("could not store the %s score table", task, exc_info=True)
        return
    logger.info("stored the %s score table in %s", task, info.path)


def explain_in_background(
    state: ServingState,
    holder: StateHolder,
    chunk: int,
    stop: threading.Event,
    store: Store | None = None,
) -> threading.Thread:
    """Start a daemon thread that computes contributions for every snapshot customer.

    It also formats the reasons of as many customers as the reason cache holds, stops as soon as
    ``state`` is no longer current, and skips tasks whose table came from the store.

    Parameters
    ----------
    state : ServingState
        The state whose customers to explain.
    holder : StateHolder
        The thread stops once ``holder.current`` is no longer ``state``.
    chunk : int
        Customers per step.
    stop : threading.Event
        Set at shutdown to stop the thread.
    store : features.store.Store, optional
        Where to write each task's score table once every customer is explained.

    Returns
    -------
    threading.Thread
        The started thread.
    """

    def work() -> None:
        for task, table in state.tables.items():
            if table.stored is not None:
                continue
            todo = np.flatnonzero((table.top >= 0) & ~table.explained)
            for lo in range(0, len(todo), chunk):
                if stop.is_set() or holder.current is not state:
                    return
                positions = todo[lo : lo + chunk]
                if lo + len(positions) <= table.reason_cache.maxsize:
                    reasons(table, positions)  # also formats them while the cache has room
                else:
                    ensure_explained(table, positions)
            logger.info("explained every %s customer of the snapshot", task)
            if store is not None:
                _store_table(store, state, task, table)

    thread = threading.Thread(target=work, name="guanxi-explain", daemon=True)
    thread.start()
    return thread
