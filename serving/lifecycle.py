"""Loading and swapping the state: start-up retries, reloads and background explanations.

Start-up never waits for a load: the lifespan starts a background task that tries to load until
it succeeds (``/readyz`` answers 503 meanwhile), so an unreachable registry leaves the service
alive and retrying. Every load builds a whole new :class:`~serving.state.ServingState` in a worker
thread and swaps it in by reference; a failed load leaves the old state serving. After a swap a
daemon thread explains the snapshot's customers in chunks (and formats the reasons of as many as
the reason cache holds), so most requests find their reasons computed; it stops as soon as its
state is no longer current. When it has explained every customer of a task it writes the task's
score table into the store, so the next load (or another worker) reads scores and reasons instead
of computing them; tasks whose table came from the store need no explaining.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from fastapi import FastAPI

from features.store import Store, snapshot_digest
from serving.loader import Source, load_state
from serving.settings import Settings
from serving.state import ServingState, StateHolder, TaskTable

__all__ = ["explain_in_background", "lifespan", "reload_state"]

logger = logging.getLogger(__name__)


def _describe(exc: BaseException) -> str:
    """Return a one-line reason for a failed load (exception type and message, no traceback)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else 'no message'}"


def _store_table(store: Store, state: ServingState, task: str, table: TaskTable) -> None:
    """Write a fully explained task's score table into the store; a failure is only logged."""
    model = table.model
    try:
        info = store.write_scores(
            task,
            state.snapshot.as_of,
            model.version,
            table.score_table(),
            model_name=model.name,
            feature_set_version=model.bundle.feature_set_version,
            explain_k=table.reason_count,
            snapshot_digest=snapshot_digest(state.snapshot.frame),
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
                if lo + len(positions) <= table.cache_size:
                    table.reasons(positions)  # also formats them while the cache has room
                else:
                    table.ensure_explained(positions)
            logger.info("explained every %s customer of the snapshot", task)
            if store is not None:
                _store_table(store, state, task, table)

    thread = threading.Thread(target=work, name="guanxi-explain", daemon=True)
    thread.start()
    return thread


def _swap(app: FastAPI, state: ServingState) -> None:
    """Make ``state`` current and start explaining it if configured."""
    holder: StateHolder = app.state.holder
    settings: Settings = app.state.settings
    holder.swap(state)
    logger.info(
        "serving snapshot as of %s with %s",
        state.snapshot.as_of,
        ", ".join(f"{t} v{tab.model.version}" for t, tab in state.tables.items()),
    )
    if settings.precompute_reasons:
        explain_in_background(
            state, holder, settings.precompute_chunk, app.state.stop, Store(settings.home)
        )


async def reload_state(app: FastAPI) -> str | None:
    """Load a new state and swap it in; one load at a time.

    Parameters
    ----------
    app : fastapi.FastAPI
        The app (its ``state`` holds settings, source, holder and the load lock).

    Returns
    -------
    str or None
        None on success, else why the load failed (the old state keeps serving).
    """
    source: Source = app.state.source
    settings: Settings = app.state.settings
    async with app.state.load_lock:
        try:
            state = await asyncio.to_thread(load_state, source, settings)
        except Exception as exc:
            reason = _describe(exc)
            app.state.holder.last_error = reason
            logger.warning("load failed, keeping the current state: %s", reason, exc_info=True)
            return reason
        _swap(app, state)
        return None


async def _load_until_ready(app: FastAPI) -> None:
    """Try to load until a state is current (a reload may get there first)."""
    settings: Settings = app.state.settings
    while app.state.holder.current is None:
        if await reload_state(app) is None:
            return
        await asyncio.sleep(settings.retry_seconds)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    """Start loading in the background; at shutdown stop it and the explain threads."""
    app.state.load_lock = asyncio.Lock()
    app.state.stop = threading.Event()
    loader = asyncio.create_task(_load_until_ready(app), name="guanxi-initial-load")
    try:
        yield {}
    finally:
        app.state.stop.set()
        loader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loader
