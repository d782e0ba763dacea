"""Building the state at load: every snapshot customer scored in one vectorised pass.

:func:`build_state` checks the models against the snapshot, then builds each task's
:class:`~serving.state.TaskTable`: every customer's status under the task's population (recorded
with the model), the model rows of the population, their margins, probabilities and deciles
(ranked among the population only). When the store holds a score table for this snapshot and
model (written by ``guanxi score`` or by the background explainer of an earlier load), it is
checked first (its scored rows exactly the population's model rows, enough reasons, reasons on
every customer's top row) and, if it passes,
its values are taken instead: nothing is predicted or explained, and every value served is the one
the table holds, which is the value the computation gives. A table that fails a check is ignored
with a warning and the task is scored as without it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import polars as pl
from cachetools import LRUCache

from features.contracts import FEATURE_SET_VERSION
from models.customer_rows import repeated_customers
from models.explain import base_log_odds
from models.ranking import deciles, ranked_deciles
from models.scoring import (
    FeatureSetMismatchError,
    check_feature_set,
    model_categories,
    model_rows,
)
from models.tasks import (
    ELIGIBLE,
    NO_CANDIDATES,
    get_task,
    population_status,
    snapshot_categories,
)
from serving.explaining import KEPT_ORDER, REASON_ORDER
from serving.state import (
    IncompatibleModelError,
    LoadedSnapshot,
    ServedModel,
    ServingState,
    TaskTable,
    kept_reasons,
)

__all__ = ["build_state"]

logger = logging.getLogger(__name__)


def _top_rows(owner: np.ndarray, proba: np.ndarray, n: int) -> np.ndarray:
    """Each customer's highest-scoring row (-1 for a customer without rows)."""
    top = np.full(n, -1, dtype=np.int64)
    if len(owner):
        by_score = np.lexsort((-proba, owner))  # per customer, highest probability first
        owners = owner[by_score]
        first = np.r_[True, owners[1:] != owners[:-1]]
        top[owners[first]] = by_score[first]
    return top


def _deciles(proba: np.ndarray, owner: np.ndarray, ranked: bool) -> np.ndarray:
    """Row deciles as batch scoring gives them (ranked: on the customers' best probabilities)."""
    found = ranked_deciles(proba, owner)[0] if ranked else deciles(proba)
    return found.astype(np.int64)


def _reference(proba: np.ndarray, owner: np.ndarray, ranked: bool) -> np.ndarray:
    """Sorted probabilities a live score is placed among: rows', or customers' best (ranked)."""
    return ranked_deciles(proba, owner)[1] if ranked else np.sort(proba)


def _stored_rows(
    frame: pl.DataFrame,
    X: pd.DataFrame,  # noqa: N803
    owner: np.ndarray,
    n: int,
    k: int,
    name: str,
) -> pl.DataFrame | None:
    """Return a stored table's columns if it has exactly ``X``'s rows and ``k`` reasons on top."""
    ids = X.index.get_level_values(0)
    reasons = [f"reason_{i}_{f}" for i in range(1, k + 1) for f in REASON_ORDER]
    wanted = ["score", "margin", "decile", "base_logodds", *reasons]
    kept = [
        "score",
        "margin",
        "decile",
        "base_logodds",
        *(c for c in reasons if c.endswith(KEPT_ORDER)),
    ]
    labels = [f"reason_{i}_{f}" for i in range(1, k + 1) for f in KEPT_ORDER[:2]]
    problem = None
    if missing := [
        c for c in ("customer_id", "category", "status", *wanted) if c not in frame.columns
    ]:
        problem = f"lacks the columns {', '.join(missing)}"
    elif (frame := frame.filter(pl.col("status") == ELIGIBLE)).height != len(X):
        problem = f"scores {frame.height} rows, the task's population gives {len(X)}"
    elif not frame.get_column("customer_id").equals(
        pl.Series("customer_id", np.asarray(ids, dtype=str)), check_names=False
    ):
        problem = "names other customers (or orders them otherwise) than the snapshot"
    elif isinstance(X.index, pd.MultiIndex) and not frame.get_column("category").equals(
        pl.Series(np.asarray(X.index.get_level_values("category"), dtype=str)),
        check_names=False,
    ):
        problem = "names other categories than the snapshot"
    else:
        top = _top_rows(owner, frame.get_column("score").to_numpy(), n)
        if frame["reason_1_feature"].gather(top[top >= 0]).has_nulls():
            problem = "lacks reasons on top rows"
    if problem is not None:
        logger.warning("ignoring the stored score table of %s: it %s", name, problem)
        return None
    return frame.select(kept).with_columns(pl.col(labels).cast(pl.Categorical))


def _table(
    model: ServedModel,
    snapshot: LoadedSnapshot,
    index: pd.Index,
    cache_size: int,
    stored: pl.DataFrame | None,
) -> TaskTable:
    """Score every snapshot customer for one task, vectorised (or take the stored scores)."""
    bundle = model.bundle
    ranked = get_task(bundle.task).kind == "ranked"
    status = population_status(bundle.task, snapshot.frame, bundle.metadata).get_column("status")
    population = snapshot.frame.filter(status == ELIGIBLE)
    X = model_rows(bundle, population)  # noqa: N806
    n = len(index)
    customer_ids = X.index.get_level_values(0) if isinstance(X.index, pd.MultiIndex) else X.index
    owner = np.asarray(index.get_indexer(customer_ids), dtype=np.int64)
    if (owner < 0).any():
        raise ValueError(f"{bundle.task} model rows name customers that are not in the snapshot")
    order = np.argsort(owner, kind="stable")
    if not np.array_equal(order, np.arange(len(order))):
        X, owner = X.iloc[order], owner[order]  # noqa: N806
    values = X.to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.shares_memory(values, X.iloc[:, :1].to_numpy()):  # X was several blocks
        X = pd.DataFrame(values, index=X.index, columns=X.columns, copy=False)  # noqa: N806
    name = f"{bundle.task} version {model.version} as of {snapshot.as_of}"
    k = kept_reasons(bundle)
    rows = _stored_rows(stored, X, owner, n, k, name) if stored is not None else None
    if rows is None or rows.height == 0:
        rows = None
        margin = bundle.predict_margin(X)
        proba = bundle.predict_proba(X)
        decile = _deciles(proba, owner, ranked)
        bias = base_log_odds(bundle)
    else:
        logger.info("scores and reasons of %s come from the store", name)
        margin = rows.get_column("margin").to_numpy()
        proba = rows.get_column("score").to_numpy()
        decile = rows.get_column("decile").to_numpy().astype(np.int64)
        # a ranked task explains each customer's top rows only: the others carry no base
        bases = rows.get_column("base_logodds").drop_nulls()
        bias = float(bases[0]) if len(bases) else base_log_odds(bundle)
        rows = rows.drop("score", "margin", "decile", "base_logodds")
    top = _top_rows(owner, proba, n)
    statuses = status.to_numpy().astype(object)
    statuses[(statuses == ELIGIBLE) & (top < 0)] = NO_CANDIDATES
    return TaskTable(
        model=model,
        X=X,
        values=values,
        margin=margin,
        proba=proba,
        start=np.searchsorted(owner, np.arange(n + 1), side="left").astype(np.int64),
        top=top,
        decile=decile,
        population=_reference(proba, owner, ranked),
        contributions=np.empty(
            (n if rows is None else 0, len(bundle.feature_names) + 1), dtype=np.float32
        ),
        explained=np.zeros(n, dtype=bool) if rows is None else top >= 0,
        reason_cache=LRUCache(maxsize=cache_size),
        fragments=LRUCache(maxsize=cache_size),
        status=statuses,
        base_log_odds=bias,
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
        Customers per task whose formatted reasons are kept (and as many response fragments).
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
        The new state, ready to swap in, with the categories a request's events are built with
        (``ServingState.categories``: the snapshot's and the models', once per load).

    Raises
    ------
    IncompatibleModelError
        If a model was trained on another feature-set version than the snapshot's, is
        registered for another task, or the snapshot was built with another feature-set version
        than this code builds.
    ValueError
        If the snapshot has no ``customer_id`` column.
    models.customer_rows.RepeatedCustomersError
        If the snapshot lists a customer on more than one row (a ``ValueError`` too): the
        message names its day, the first such customer and ``guanxi features build``.
    """
    if snapshot.feature_set_version != FEATURE_SET_VERSION:
        raise IncompatibleModelError(
            f"the snapshot as of {snapshot.as_of} has feature set version "
            f"{snapshot.feature_set_version}, but this guanxi builds feature set version "
            f"{FEATURE_SET_VERSION}; rebuild the snapshot (`guanxi features build`)"
        )
    for task, model in models.items():
        bundle = model.bundle
        if bundle.task != task:
            raise IncompatibleModelError(
                f"model {model.name} version {model.version} is a {bundle.task!r} model, "
                f"registered for task {task!r}"
            )
        try:  # the snapshot is the code's version: a model that fits the code fits it
            check_feature_set(bundle, f"{task} version {model.version}")
        except FeatureSetMismatchError as exc:
            raise IncompatibleModelError(str(exc)) from exc
    if "customer_id" not in snapshot.frame.columns:
        raise ValueError(f"snapshot as of {snapshot.as_of} has no 'customer_id' column")
    if threads is not None:
        for model in models.values():
            model.bundle.booster.set_param({"nthread": threads})
    index = pd.Index(snapshot.frame.get_column("customer_id").to_numpy())
    if not index.is_unique:  # it said "repeats customer ids", naming none, nor what to run
        raise repeated_customers(
            pl.Series(index[index.duplicated()].unique()),
            snapshot.as_of,
            what="features",
            consequence="a lookup of them would find several rows",
            table="the snapshot",
            again=f"build it again (guanxi features build --as-of {snapshot.as_of})",
        )
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
        # a customer's orders in a category the snapshot lacks and a model reads count too
        # (model_frame would complete its column as no order by anyone): once per load
        categories=tuple(
            sorted(
                {
                    *snapshot_categories(snapshot.frame),
                    *model_categories(m.bundle for m in models.values()),
                }
            )
        ),
    )
