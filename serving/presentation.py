"""API responses built from state lookups: scores, reasons, groups, models and the snapshot.

Routes stay thin: they validate the request and call these functions, which read the
:class:`~serving.state.ServingState` (and :mod:`serving.explaining` for reasons) and return the
pydantic models of :mod:`serving.schemas`. The reviewer pages use the same functions, so a page
shows exactly what the API answers.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from features.contracts import CATEGORY_FEATURE_PREFIX
from models.artifact import apply_calibration
from models.explain import other_inputs, other_sentence
from models.scoring import model_rows
from models.tasks import (
    CANDIDATE_FROM_PURCHASES,
    CANDIDATE_INPUTS,
    ELIGIBLE,
    NO_CANDIDATES,
    TARGET_PREFIX,
    get_task,
    population_status,
)
from serving.explaining import ensure_explained_together, explain_rows, reasons
from serving.schemas import (
    CategoryScore,
    ModelInfo,
    Reason,
    ReasonGroup,
    Remainder,
    SnapshotInfo,
    TaskScore,
)
from serving.state import ReasonTuple, ServingState, TaskTable

__all__ = ["live_scores", "model_infos", "score_fragments", "snapshot_info", "stored_scores"]

_DERIVED = frozenset(f.name for f in CANDIDATE_INPUTS)
"""A ranked model's inputs about the candidate category, worked out by
:func:`models.tasks.model_frame`, never sent (those from the purchases per category count as
missing when one of those was not sent)."""


def stored_scores(
    state: ServingState, positions: np.ndarray, tasks: Sequence[str], k: int, group: bool
) -> list[dict[str, TaskScore]]:
    """Scores of snapshot customers (all positions must be known).

    Parameters
    ----------
    state : ServingState
        The loaded state.
    positions : numpy.ndarray
        Snapshot positions (from :meth:`~serving.state.ServingState.positions`, without -1).
    tasks : sequence of str
        Loaded tasks to score.
    k : int
        Reasons per task (0 for none).
    group : bool
        Whether to group reasons by business concept.

    Returns
    -------
    list of dict
        Per position, task name to :class:`~serving.schemas.TaskScore`; a customer outside a
        task's population gets its status and no score.
    """
    out: list[dict[str, TaskScore]] = [{} for _ in positions]
    for task in tasks:
        table = state.tables[task]
        top = table.top[positions]
        found: list[list[ReasonTuple]] = [[] for _ in positions]
        if k > 0 and (top >= 0).any():
            slots = np.flatnonzero(top >= 0)
            for slot, kept in zip(slots, reasons(table, positions[slots]), strict=True):
                found[slot] = kept[:k]
        scores = _task_scores(
            state,
            task,
            table,
            X=table.X,
            rows=top,
            status=table.status[positions],
            proba=table.proba,
            margin=table.margin,
            decile=table.decile[top],
            reasons=found if k > 0 else None,
            blocks=[(table.start[p], table.start[p + 1]) for p in positions],
            group=group,
            snapshot_date=state.snapshot.as_of,
        )
        for result, task_score in zip(out, scores, strict=True):
            result[task] = task_score
    return out


def score_fragments(
    state: ServingState, position: int, tasks: Sequence[str], k: int, group: bool
) -> list[bytes]:
    """One snapshot customer's task scores as response JSON, each serialised once and kept.

    A task score whose reasons are computed never changes while ``state`` serves, so its JSON
    (:class:`~serving.schemas.TaskScore`, exactly as FastAPI writes it in a response) is kept in
    the task's ``fragments`` cache: a customer asked again costs a dictionary lookup per task,
    with no response model built and nothing worded.

    Parameters
    ----------
    state : ServingState
        The loaded state.
    position : int
        A snapshot position (not -1).
    tasks : sequence of str
        Loaded tasks to score.
    k : int
        Reasons per task (0 for none).
    group : bool
        Whether to group reasons by business concept.

    Returns
    -------
    list of bytes
        Per task, in ``tasks`` order, the JSON of its :class:`~serving.schemas.TaskScore`
        (:func:`stored_scores` of the customer).
    """
    key = (position, k, group)
    kept = []
    for task in tasks:
        table = state.tables[task]
        with table.lock:
            kept.append(table.fragments.get(key))
    if k > 0:  # the TreeSHAP passes of tasks not kept yet, side by side
        ensure_explained_together(
            [state.tables[t] for t, f in zip(tasks, kept, strict=True) if f is None], position
        )
    out = []
    for task, fragment in zip(tasks, kept, strict=True):
        table = state.tables[task]
        if fragment is None:
            score = stored_scores(state, np.array([position]), [task], k, group)[0][task]
            fragment = score.model_dump_json().encode()
            if table.fragments.maxsize > 0:
                with table.lock:
                    table.fragments[key] = fragment
        out.append(fragment)
    return out


def live_scores(
    state: ServingState,
    frame: pl.DataFrame,
    tasks: Sequence[str],
    k: int,
    group: bool,
    sent: Collection[str] | None = None,
) -> dict[str, TaskScore]:
    """Score one customer's snapshot row (not from the loaded snapshot) live.

    Parameters
    ----------
    state : ServingState
        The loaded state (its models, and its snapshot to place the deciles).
    frame : polars.DataFrame
        One snapshot row with a ``customer_id`` column.
    tasks : sequence of str
        Loaded tasks to score.
    k : int
        Reasons per task.
    group : bool
        Whether to group reasons by business concept.
    sent : collection of str, optional
        The feature names a caller sent (``POST /v1/score`` with features): the model inputs not
        in it (but those the model derives, the candidate category's and the ``target_{category}``
        indicators) are listed as ``missing_inputs`` and are never reasons, whether or not the
        loaded snapshot has their column. None when the row was built from events.

    Returns
    -------
    dict
        Task name to :class:`~serving.schemas.TaskScore`; deciles are placed among the loaded
        snapshot's population. The population is judged on the row as sent: a column it reads
        that was not sent counts as missing (for churn, no ``recency_days`` reads as no order;
        ``POST /v1/score`` refuses features without it, :func:`serving.routes._features_frame`).
        A ranked model's candidate inputs worked out from the customer's purchases per category
        (:data:`~models.tasks.CANDIDATE_FROM_PURCHASES`) count as missing when any of those
        columns was not sent.
    """
    out: dict[str, TaskScore] = {}
    for task in tasks:
        table = state.tables[task]
        bundle = table.model.bundle
        status = population_status(task, frame, bundle.metadata).get_column("status")
        population = frame.filter(status == ELIGIBLE)
        X = model_rows(bundle, population)  # noqa: N806
        margin = bundle.predict_margin(X)
        proba = bundle.predict_proba(X)
        top = np.array([int(np.argmax(proba))] if len(X) else [-1], dtype=np.int64)
        decile = table.decile_of(proba[top]) if len(X) else np.ones(1, dtype=np.int64)
        missing = None
        if sent is not None:
            # every input not sent, not only the loaded snapshot's columns: a category it lacks
            # is 0 orders in its lookup but unknown in this row (review54 M1)
            missing = [
                f
                for f in bundle.feature_names
                if f not in sent and f not in _DERIVED and not f.startswith(TARGET_PREFIX)
            ]
            if any(f.startswith(CATEGORY_FEATURE_PREFIX) for f in missing):
                # worked out from the purchases per category, which were not all sent
                missing += [f for f in CANDIDATE_FROM_PURCHASES if f in bundle.feature_names]
        found: list[ReasonTuple] = []
        if k > 0 and len(X):
            contributions = bundle.contributions(X.iloc[top])
            found = explain_rows(
                bundle, X.iloc[top], k, contributions=contributions, exclude=missing or ()
            )[0]
        out[task] = _task_scores(
            state,
            task,
            table,
            X=X,
            rows=top,
            status=np.array([status.item()], dtype=object),
            proba=proba,
            margin=margin,
            decile=decile,
            reasons=[found] if k > 0 else None,
            blocks=[(0, len(X))],
            group=group,
            snapshot_date=None,
            missing=missing,
        )[0]
    return out


def _task_scores(
    state: ServingState,
    task: str,
    table: TaskTable,
    *,
    X: pd.DataFrame,  # noqa: N803
    rows: np.ndarray,
    status: np.ndarray,
    proba: np.ndarray,
    margin: np.ndarray,
    decile: np.ndarray,
    reasons: list[list[ReasonTuple]] | None,
    blocks: list[tuple[int, int]],
    group: bool,
    snapshot_date: date | None,
    missing: list[str] | None = None,
) -> list[TaskScore]:
    """Assemble :class:`TaskScore` objects for customers whose top rows are ``rows``.

    ``status`` holds each customer's status; a customer without a row whose status is still
    :data:`~models.tasks.ELIGIBLE` (or None) has nothing to rank (:data:`NO_CANDIDATES`).
    ``reasons`` is None when none were asked for.
    """
    model = table.model
    bundle = model.bundle
    population = get_task(task).population
    has = rows >= 0
    ranked = get_task(task).kind == "ranked"
    bands = state.band(decile)
    base = table.base_log_odds
    base_p = float(apply_calibration(bundle.calibration, np.array([base]))[0])
    result = []
    for i, row in enumerate(rows):
        shown = reasons[i] if reasons is not None else []
        row_reasons = [
            Reason(
                feature=f,
                group=g,
                value=v,
                contribution_points=points,
                contribution_log_odds=log_odds,
                sentence=text,
            )
            for f, g, v, points, log_odds, text in shown
        ]
        categories = None
        if ranked:
            lo, hi = blocks[i]
            order = np.argsort(-proba[lo:hi], kind="stable")
            names = X.index[lo:hi].get_level_values("category")  # this block only: O(categories)
            categories = [
                CategoryScore(category=str(names[r]), rank=rank, probability=float(proba[lo + r]))
                for rank, r in enumerate(order, start=1)
            ]
        common: dict[str, Any] = {
            "task": task,
            "model_name": model.name,
            "model_version": model.version,
            "model_served_by": bundle.served_by,
            "snapshot_date": snapshot_date,
            "missing_inputs": missing,
            "categories": categories,
        }
        if not has[i]:
            found = str(status[i]) if status[i] not in (None, ELIGIBLE) else NO_CANDIDATES
            result.append(
                TaskScore(
                    **common,
                    status=found,
                    status_reason=population.note(found, table.active_days),
                    probability=None,
                    decile=None,
                    band=None,
                    log_odds=None,
                    base_log_odds=None,
                )
            )
            continue
        remainder = None
        if reasons is not None:
            rest = other_inputs(
                len(bundle.feature_names),
                margin[row : row + 1],
                np.array([base]),
                bundle.calibration,
                np.array([sum(r.contribution_points for r in row_reasons)]),
                np.array([sum(r.contribution_log_odds for r in row_reasons)]),
                np.array([len(row_reasons)]),
            )
            remainder = Remainder(
                inputs=int(rest.inputs[0]),
                contribution_points=float(rest.points[0]),
                contribution_log_odds=float(rest.log_odds[0]),
                sentence=other_sentence(task, int(rest.inputs[0]), float(rest.points[0])),
            )
        result.append(
            TaskScore(
                **common,
                status=ELIGIBLE,
                probability=float(proba[row]),
                decile=int(decile[i]),
                band=str(bands[i]),  # type: ignore[arg-type]
                log_odds=float(margin[row]),
                base_log_odds=base,
                base_probability=base_p,
                reasons=row_reasons,
                other_inputs=remainder,
                groups=_groups(row_reasons) if group else None,
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


def model_infos(
    state: ServingState, pending: Mapping[str, bool | None] | None = None
) -> list[ModelInfo]:
    """Describe the loaded models.

    Parameters
    ----------
    state : ServingState
        The loaded state.
    pending : mapping of str to bool or None, optional
        Per task, whether the registry's alias now points at another version
        (:func:`serving.lifecycle.pending_reloads`); a task not in it says null.

    Returns
    -------
    list of ModelInfo
        One per loaded task, with the held-out metrics recorded at training (nested by model)
        and its aliases as at load.
    """
    pending = pending or {}
    infos = []
    for task, table in state.tables.items():
        model, bundle = table.model, table.model.bundle
        infos.append(
            ModelInfo(
                task=task,
                model_name=model.name,
                version=model.version,
                served_by=bundle.served_by,
                aliases=list(model.aliases),
                reload_pending=pending.get(task),
                feature_set_version=bundle.feature_set_version,
                features=len(bundle.feature_names),
                categories=list(bundle.categories),
                metrics=_metrics(bundle.metadata.get("metrics") or {}),
                grade=None
                if bundle.metadata.get("grade") is None
                else str(bundle.metadata["grade"]),
            )
        )
    return infos


def _metrics(metrics: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Held-out metrics as training recorded them, nested by model; NaN becomes null."""
    return {
        str(model): {
            str(name): (float(v) if math.isfinite(v) else None) if v is not None else None
            for name, v in values.items()
            if v is None or (isinstance(v, int | float) and not isinstance(v, bool))
        }
        for model, values in metrics.items()
        if isinstance(values, dict)
    }


def snapshot_info(state: ServingState) -> SnapshotInfo:
    """Describe the loaded snapshot.

    Parameters
    ----------
    state : ServingState
        The loaded state.

    Returns
    -------
    SnapshotInfo
        Day, feature-set version, customers, and the share of each task already explained.
    """
    return SnapshotInfo(
        as_of=state.snapshot.as_of,
        feature_set_version=state.snapshot.feature_set_version,
        customers=len(state.index),
        explained={task: table.explained_share for task, table in state.tables.items()},
    )
