"""Model cards of the reviewer pages, read from the MLflow registry and the training runs.

For a task, the registered versions behind the ``champion`` and ``challenger`` aliases are read
with :mod:`models.registry`; each card holds what its training run recorded: held-out metrics (the
run's MLflow metrics, else the version's tags, else the model's own metadata), grade, data window
and cutoffs, gains table and reliability curve (the run's evaluation tables,
:func:`models.registry.read_table`), the
feature-set version, a link to the run, and the metric changes since the previous registered
version. Changes are kept only between versions measured alike (:func:`comparison_note`): on
the same held-out day (the test cutoff) under the same task definition (horizon, activity
window); otherwise the card says why not. Global SHAP importance (mean absolute contribution,
log-odds) is computed on a seeded sample of the served snapshot.

A registered version never changes, so a card is built once per (tracking URI, task, version,
snapshot day, served or not) and kept in a small cache; only the aliases are read on every
request. Whether the version is served is in the key because a served version's card reads its
loaded bundle (data window, calibration, SHAP) and another's does not: a reload that swaps the
served version on the same snapshot day rebuilds both cards.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, Final

import mlflow
import numpy as np
from cachetools import LRUCache
from mlflow.tracking import MlflowClient

from models import registry
from models.artifact import MODEL_METRICS, RULE_BACKED, ModelBundle
from models.definitions import Definition, changes, definition, recorded_int
from models.scoring import model_rows
from models.tasks import get_task
from serving.lifecycle import RunningLooks, asking_registry
from serving.state import ServingState
from serving.ui.charts import format_date

__all__ = [
    "CardCache",
    "Measured",
    "ModelCards",
    "VersionCard",
    "comparison_note",
    "load_cards",
    "measured_on",
    "numeric_metrics",
    "training_params",
]

_SHAP_ROWS: Final = 300
_TOP_FEATURES: Final = 15


def numeric_metrics(metrics: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Keep the finite numbers of nested metrics (a model's own metadata, as training wrote it).

    Parameters
    ----------
    metrics : mapping
        Model to metric name to value.

    Returns
    -------
    dict
        The same nesting with finite float values only.
    """
    out: dict[str, dict[str, float]] = {}
    for model, values in metrics.items():
        if not isinstance(values, Mapping):
            continue
        found = {
            str(name): float(value)
            for name, value in values.items()
            if isinstance(value, int | float) and math.isfinite(value)
        }
        if found:
            out[str(model)] = found
    return out


@dataclass(frozen=True)
class VersionCard:
    """One registered version as its card shows it.

    Parameters
    ----------
    task, version : str
        Registered model name and version.
    aliases : tuple of str
        Aliases pointing at the version now.
    created : datetime or None
        When the version was registered (UTC).
    run_id : str or None
        The training run.
    run_url : str or None
        Link to the run in the MLflow UI (None unless the tracking URI is an HTTP server).
    metrics : dict
        Held-out metrics, model to metric name to value (nested; read back from MLflow with
        :func:`models.registry.nest_metrics`).
    metric_source : str
        Where the metrics were read: ``"run"``, ``"tags"`` or ``"metadata"``.
    grade : str or None
        Grade against the rule baseline.
    feature_set_version : str or None
        Feature-set version the model was trained on.
    params : dict
        Training parameters: ``as_of``, ``horizon``, ``cutoffs``, ``first_day``, ``rows``,
        ``calibration`` (those recorded).
    gains : dict
        Model to ``[(cum_rows_share, cum_positives_share), ...]`` by decile.
    reliability : dict
        Curve to ``[(mean_predicted, observed_rate, rows), ...]``.
    importance : list of (str, float)
        Top features by mean absolute SHAP contribution (log-odds) on the snapshot sample.
    previous : str or None
        The previous registered version.
    deltas : dict
        Metric changes since ``previous`` (this minus previous), nested like ``metrics``, row by
        row; a rule-backed previous version had no model row (the model trained beside it was
        not it), so there is no change of one. Empty when :attr:`previous_note` says why not.
    served_by : str, default "XGBoost"
        What scores for the version: XGBoost, or the rule's name for a rule-backed version
        (version tag ``backing=rule``, see :func:`models.registry.register_rule`).
    model_grade : str or None
        For a rule-backed version, the grade of the model trained beside it.
    rollback : str or None
        For the champion made by a rollback, who, when and why
        (:func:`models.registry.rollback_text`); None otherwise.
    previous_served_by : str or None
        What scored for ``previous``, as ``served_by`` says it.
    previous_auc_change : float or None
        The ROC-AUC of what this version serves minus that of what ``previous`` served, each
        version's own row (:attr:`metrics_key`): XGBoost against the affinity rule when a model
        follows its rule-backed version (the same row of the same run read +0.0000).
    events_warning : str or None
        The warning of a version trained on events a few days short of its training day (its
        version tag ``events_warning``, see :func:`training.train.check_events_end`); None
        for one trained on events that reach it, or registered before the tag.
    previous_note : str or None
        Why there is no change since ``previous`` (:func:`comparison_note`: measured on another
        held-out day, under another definition, or not recorded); None when the two versions
        were measured alike, or there is no previous version.
    """

    task: str
    version: str
    aliases: tuple[str, ...]
    created: datetime | None
    run_id: str | None
    run_url: str | None
    metrics: dict[str, dict[str, float]]
    metric_source: str
    grade: str | None
    feature_set_version: str | None
    params: dict[str, Any] = field(default_factory=dict)
    gains: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    reliability: dict[str, list[tuple[float, float, int]]] = field(default_factory=dict)
    importance: list[tuple[str, float]] = field(default_factory=list)
    previous: str | None = None
    deltas: dict[str, dict[str, float]] = field(default_factory=dict)
    served_by: str = "XGBoost"
    model_grade: str | None = None
    rollback: str | None = None
    previous_served_by: str | None = None
    previous_auc_change: float | None = None
    events_warning: str | None = None
    previous_note: str | None = None

    @property
    def rule_backed(self) -> bool:
        """Whether the version is rule-backed (not a trained model)."""
        return self.served_by != "XGBoost"

    @property
    def metrics_key(self) -> str:
        """Key of the version's own metrics in ``metrics`` (``rule_backed`` or ``xgboost``)."""
        return RULE_BACKED if self.rule_backed else MODEL_METRICS


@dataclass(frozen=True)
class ModelCards:
    """Champion and challenger of one task.

    Parameters
    ----------
    task : str
        The task.
    champion, challenger : VersionCard or None
        The versions behind the aliases (the challenger is None when the alias is missing or
        points at the champion).
    versions : int or None
        Registered versions of the task; None when not known (the registry could not be read,
        and the page shows the served model's card alone).
    """

    task: str
    champion: VersionCard | None
    challenger: VersionCard | None
    versions: int | None


def _run_url(uri: str, experiment: str, run_id: str) -> str | None:
    if not uri.startswith(("http://", "https://")):
        return None
    return f"{uri.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}"


def _gains(rows: list[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = {}
    for row in sorted(rows, key=lambda r: (str(r.get("model")), float(r.get("decile", 0)))):
        x, y = row.get("cum_rows_share"), row.get("cum_positives_share")
        if isinstance(x, int | float) and isinstance(y, int | float):
            out.setdefault(str(row.get("model", "xgboost")), []).append((float(x), float(y)))
    return dict(sorted(out.items(), key=lambda kv: _order(kv[0])))


def _reliability(rows: list[dict[str, Any]]) -> dict[str, list[tuple[float, float, int]]]:
    out: dict[str, list[tuple[float, float, int]]] = {}
    for row in rows:
        x, y = row.get("mean_predicted"), row.get("observed_rate")
        if isinstance(x, int | float) and isinstance(y, int | float):
            point = (float(x), float(y), int(row.get("rows") or 0))
            out.setdefault(str(row.get("model", "xgboost")), []).append(point)
    return {k: sorted(v) for k, v in sorted(out.items(), key=lambda kv: _order(kv[0]))}


def _order(model: str) -> int:
    head, models = model.split(" ")[0], registry.metric_models()
    return models.index(head) if head in models else len(models)


def training_params(bundle: ModelBundle | None, run_params: Mapping[str, str]) -> dict[str, Any]:
    """Return data window, cutoffs and calibration from the model metadata or run params.

    Parameters
    ----------
    bundle : ModelBundle or None
        The model (its ``metadata`` as training wrote it).
    run_params : mapping of str to str
        The training run's parameters (``cutoffs.train``, ``as_of``, ...), the fallback.

    Returns
    -------
    dict
        ``as_of``, ``horizon``, ``cutoffs``, ``first_day``, ``rows``, ``calibration``, ``seed``,
        ``active_days`` (the population's activity window: the metadata's ``population``, else
        its ``params``, else the run's) (None where nothing was recorded). The horizon and the
        activity window are the version's definition as the promotion gate reads it
        (:func:`models.definitions.definition`).
    """
    meta = bundle.metadata if bundle is not None else {}
    params = dict(meta.get("params") or {})
    defined = definition(bundle, run_params, lenient=True)  # shows what it can
    data = dict(meta.get("data") or {})
    cutoffs = params.get("cutoffs") or {
        key.removeprefix("cutoffs."): _param_days(value) if key == "cutoffs.train" else value
        for key, value in run_params.items()
        if key.startswith("cutoffs.")
    }
    return {
        "as_of": params.get("as_of") or run_params.get("as_of"),
        "horizon": defined.horizon,
        "cutoffs": cutoffs,
        "first_day": data.get("first_day"),
        "rows": data.get("rows"),
        "calibration": (meta.get("calibration") or {}).get("method")
        or (bundle.calibration.get("method") if bundle is not None else None),
        # seed 0 is a seed: the first recorded one, not the first true one
        "seed": next(
            (
                seed
                for seed in (params.get("seed"), meta.get("seed"), run_params.get("seed"))
                if seed is not None
            ),
            None,
        ),
        "active_days": defined.active_days,
    }


@dataclass(frozen=True)
class Measured:
    """What a version's held-out metrics were measured on, as its training recorded it.

    Parameters
    ----------
    held_out : datetime.date or None
        The held-out day: the test cutoff the metrics were computed on.
    horizon : int or None
        The label window, in days.
    active_days : int or None
        The population's activity window, in days.
    split : str, default "time"
        How the held-out day's rows were held (its ``cutoffs.split``): ``"time"``, every
        customer of the day (a version recording no split was trained before there was another),
        or ``"customer"``, the short-history fallback of :func:`training.train.train_task`: half
        the day's customers, drawn by the seed.
    seed : int or None
        The seed that drew the customer split's held-out customers; None for the time split
        (its seed holds out no customer).
    """

    held_out: date | None = None
    horizon: int | None = None
    active_days: int | None = None
    split: str = "time"
    seed: int | None = None

    @property
    def definition(self) -> Definition:
        """The task definition measured under (:class:`models.definitions.Definition`)."""
        return Definition(self.horizon, self.active_days)


def _recorded_day(value: Any) -> date | None:
    """Read a recorded day (a date, ISO text); None when it is none."""
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def measured_on(params: Mapping[str, Any]) -> Measured:
    """Read what a version was measured on from its training parameters (pure).

    Parameters
    ----------
    params : mapping
        A version's training parameters as :func:`training_params` returns them (the model's
        metadata, else its run's params): ``cutoffs`` (``test``, ``split``), ``horizon``,
        ``active_days``, ``seed``.

    Returns
    -------
    Measured
        The held-out day, the definition and the split; None for each part not recorded (or not
        readable), the split ``"time"`` when none is recorded.
    """
    cutoffs = params.get("cutoffs")
    cutoffs = cutoffs if isinstance(cutoffs, Mapping) else {}
    test, split = cutoffs.get("test"), str(cutoffs.get("split") or "time")
    horizon, window, seed = params.get("horizon"), params.get("active_days"), params.get("seed")
    return Measured(
        held_out=None if test is None else _recorded_day(test),
        horizon=recorded_int(horizon),
        active_days=recorded_int(window),
        split=split,
        seed=None if seed is None or split == "time" else recorded_int(seed),
    )


def comparison_note(
    then: Measured,
    now: Measured,
    *,
    window: bool = True,
    names: tuple[str, str] | None = None,
) -> str | None:
    """Say why two versions' metrics are not compared; None when they are (pure).

    Metrics compare only when both versions were measured on the same held-out day under the
    same task definition (horizon and, where the population reads it, activity window) and the
    same split (by time, or by customer with the same seed: the customer split holds out half
    the day's customers, drawn by it): other days, definitions or splits are other rows, and
    their difference misleads (qa49 M3).

    Parameters
    ----------
    then, now : Measured
        What the earlier version (the previous one, the champion) and the later one (this one,
        the challenger) were measured on.
    window : bool, default True
        Whether the task's population reads the activity window
        (:attr:`models.tasks.Population.uses_active_days`); when it does not, the window
        defines nothing and need not match or be recorded.
    names : tuple of (str, str), optional
        What to call the two versions (``("champion", "challenger")``); by default the text is
        of a version against its previous one ("then", "now", "this one").

    Returns
    -------
    str or None
        ``"not recorded: the previous version records no held-out day"`` when either records
        a part not; else the differences: ``"another definition: 90-day horizon then, 60 now"``,
        ``"another held-out split: by time then, by customer now"`` (or ``"customers drawn by
        seed 0 then, 3 now"``),
        ``"measured on 31 Jul 2024, this one on 31 Oct 2024: not comparable"``, joined by
        ``"; "``; with ``names``, each names the versions first: ``"another definition: the
        champion's horizon 90 days, the challenger's 60"``, ``"the champion's held-out day 31 Jul
        2024, the challenger's 31 Oct 2024: not comparable"``; None when measured alike.
    """
    parts = [("held-out day", "held_out"), ("horizon", "horizon")]
    if window:
        parts.append(("activity window", "active_days"))
    if "customer" in (then.split, now.split):
        parts.append(("split seed", "seed"))
    whos = (f"the {names[0]}", f"the {names[1]}") if names else ("the previous version", "this one")
    for who, measured in zip(whos, (then, now), strict=True):
        missing = [
            word
            for word, key in parts
            if getattr(measured, key) is None and (key != "seed" or measured.split != "time")
        ]
        if missing:
            said = " or ".join(filter(None, (", ".join(missing[:-1]), missing[-1])))
            return f"not recorded: {who} records no {said}"
    if names:  # qa43 L6: "the champion's horizon 90 days, the challenger's 60"
        first, second = (f"the {name}'s" for name in names)

        def differ(word: str, was: object, is_: object, unit: str = "") -> str:
            return f"{first} {f'{word} ' if word else ''}{was}{unit}, {second} {is_}"

    else:  # "90-day horizon then, 60 now"

        def differ(word: str, was: object, is_: object, unit: str = "") -> str:
            said = f"{was}-day {word}" if unit else f"{f'{word} ' if word else ''}{was}"
            return f"{said} then, {is_} now"

    # compared as the promotion gate compares them (pipelines.promote._definition_change)
    words = {key: word for word, key in parts}
    changed = [
        differ(words[key], was, is_, " days")
        for key, (was, is_) in changes(then.definition, now.definition, window=window).items()
    ]
    notes = [f"another definition: {'; '.join(changed)}"] if changed else []
    if then.split != now.split:
        notes.append(f"another held-out split: {differ('', f'by {then.split}', f'by {now.split}')}")
    elif then.split == "customer" and then.seed != now.seed:
        seed = f"by seed {now.seed}" if names else now.seed
        notes.append(
            f"another held-out split: {differ('customers drawn by seed', then.seed, seed)}"
        )
    if then.held_out != now.held_out:
        was, is_ = format_date(then.held_out), format_date(now.held_out)
        notes.append(
            f"{differ('held-out day', was, is_)}: not comparable"
            if names
            else f"measured on {was}, this one on {is_}: not comparable"
        )
    return "; ".join(notes) or None


def _param_days(text: str) -> list[date | str] | str:
    """Read a run parameter that holds a list of days back into the days.

    Training logs a list as Python writes it, ``[datetime.date(2024, 11, 6), ...]`` (cut with
    ``...`` when long), which a card read from the run (a challenger's) showed as it stands; the
    days are kept in order, with ``"…"`` after them when the parameter was cut. Text without a
    day is returned as it is.
    """
    found = re.findall(r"\b(\d{4})(?:-|, )(\d{1,2})(?:-|, )(\d{1,2})\b", text)
    if not text.lstrip().startswith("[") or not found:
        return text
    days: list[date | str] = [date(int(y), int(m), int(d)) for y, m, d in found]
    return [*days, "…"] if text.rstrip().endswith("...") else days


def _importance(bundle: ModelBundle, state: ServingState) -> list[tuple[str, float]]:
    """Mean |SHAP| per input over a seeded sample of the served snapshot, largest first."""
    frame = state.snapshot.frame
    if frame.height > _SHAP_ROWS:
        frame = frame.sample(_SHAP_ROWS, seed=0)
    X = model_rows(bundle, frame)  # noqa: N806
    if len(X) == 0:
        return []
    mean_abs = np.abs(bundle.contributions(X)[:, :-1]).mean(axis=0)
    order = np.argsort(-mean_abs, kind="stable")[:_TOP_FEATURES]
    return [(bundle.feature_names[i], float(mean_abs[i])) for i in order]


class CardCache:
    """Built cards by (tracking URI, task, version, snapshot day, served?), the latest ``size``.

    A :class:`cachetools.LRUCache` behind a lock: pages run in FastAPI's thread pool.
    """

    def __init__(self, size: int = 16) -> None:
        self._cards: LRUCache[tuple[str, ...], VersionCard] = LRUCache(maxsize=size)
        self._lock = threading.Lock()
        self.looks = RunningLooks()
        """The registry looks of the model pages running now, by (task, the state they read)."""

    def get(self, key: tuple[str, ...]) -> VersionCard | None:
        """Return a cached card, or None."""
        with self._lock:
            return self._cards.get(key)

    def put(self, key: tuple[str, ...], card: VersionCard) -> None:
        """Keep a card, dropping the least recently used beyond the cache's size."""
        with self._lock:
            self._cards[key] = card


def _build(
    client: MlflowClient,
    uri: str,
    info: registry.VersionInfo,
    previous: registry.VersionInfo | None,
    state: ServingState | None,
) -> VersionCard:
    """Read one version's run, artifacts and tags into a card (aliases filled by the caller).

    Only the served version's bundle (already in memory) is read, for its global SHAP importance;
    another version (a challenger) is described by what the registry and its run stored, so an
    ordinary page view never downloads or parses a bundle.
    """
    with asking_registry():  # late in it is the registry's; the rest is our own work
        run = client.get_run(info.run_id) if info.run_id else None
        gains = registry.read_table(info.run_id, "gains") if info.run_id else []
        curve = registry.read_table(info.run_id, "reliability") if info.run_id else []
    served = state.tables.get(info.task) if state is not None else None
    bundle: ModelBundle | None = None
    if served is not None and served.model.version == info.version:
        bundle = served.model.bundle
    run_metrics = registry.nest_metrics(run.data.metrics) if run is not None else {}
    tag_metrics = registry.nest_metrics(info.tags)
    if run_metrics:
        metrics, source = run_metrics, "run"
    elif tag_metrics:
        metrics, source = tag_metrics, "tags"
    else:
        meta = (bundle.metadata.get("metrics") if bundle is not None else None) or {}
        metrics, source = numeric_metrics(meta), "metadata"
    params = training_params(bundle, run.data.params if run is not None else {})
    deltas: dict[str, dict[str, float]] = {}
    auc_change, note = None, None
    if previous is not None:
        with asking_registry():
            run_before = client.get_run(previous.run_id).data if previous.run_id else None
        # measured alike or not compared (qa49 M3): another held-out day or definition is
        # other rows; without a run, its version tags (a horizon, no held-out day)
        note = comparison_note(
            measured_on(training_params(None, run_before.params if run_before else previous.tags)),
            measured_on(params),
            window=get_task(info.task).population.uses_active_days,
        )
        before = registry.nest_metrics(run_before.metrics if run_before else {}) or (
            registry.nest_metrics(previous.tags)
        )
        if registry.is_rule_backed(previous):  # the model trained beside it was not it
            before.pop(MODEL_METRICS, None)
        if note is None:
            deltas = {
                model: {k: v - before[model][k] for k, v in values.items() if k in before[model]}
                for model, values in metrics.items()
                if model in before
            }
            now = metrics.get(_own_row(info), {}).get("roc_auc")
            then = before.get(_own_row(previous), {}).get("roc_auc")
            auc_change = now - then if now is not None and then is not None else None
    run_tags = dict(run.data.tags) if run is not None else {}
    grade = info.tags.get("grade") or run_tags.get("grade")
    if grade is None and bundle is not None and bundle.metadata.get("grade") is not None:
        grade = str(bundle.metadata["grade"])
    return VersionCard(
        task=info.task,
        version=info.version,
        aliases=info.aliases,
        created=datetime.fromtimestamp(info.created / 1000, UTC) if info.created else None,
        run_id=info.run_id,
        run_url=_run_url(uri, run.info.experiment_id, run.info.run_id) if run else None,
        metrics=metrics,
        metric_source=source,
        grade=grade,
        feature_set_version=info.tags.get("feature_set_version")
        or (bundle.feature_set_version if bundle is not None else None),
        params=params,
        gains=_gains(gains),
        reliability=_reliability(curve),
        importance=_importance(bundle, state) if bundle is not None and state else [],
        previous=previous.version if previous is not None else None,
        deltas=deltas,
        served_by=_served_by(info),
        model_grade=info.tags.get("model_grade"),
        previous_served_by=_served_by(previous) if previous is not None else None,
        previous_auc_change=auc_change,
        events_warning=info.tags.get("events_warning"),
        previous_note=note,
    )


def _served_by(info: registry.VersionInfo) -> str:
    """Say what scores for a version: XGBoost, or a rule-backed version's rule by its name."""
    return (info.tags.get("backing_name") or "rule") if registry.is_rule_backed(info) else "XGBoost"


def _own_row(info: registry.VersionInfo) -> str:
    """Key of a version's own metrics in its run's (:attr:`VersionCard.metrics_key`)."""
    return RULE_BACKED if registry.is_rule_backed(info) else MODEL_METRICS


def load_cards(task: str, state: ServingState | None, cache: CardCache) -> ModelCards:
    """Read the champion and challenger cards of a task from the registry.

    Parameters
    ----------
    task : str
        Registered model name.
    state : ServingState or None
        The served state: its snapshot is the sample for global SHAP, and its model is reused
        when it is the version shown.
    cache : CardCache
        Cards already built.

    Returns
    -------
    ModelCards
        The cards (None where an alias is missing).

    Raises
    ------
    mlflow.exceptions.MlflowException
        If the registry cannot be read.
    """
    with asking_registry():  # a model page's look (serving.lifecycle.read_in_time, staged)
        versions = registry.list_versions(task)
    by_alias = {alias: v for v in versions for alias in v.aliases}
    uri = mlflow.get_tracking_uri()
    client = MlflowClient()
    as_of = state.snapshot.as_of.isoformat() if state is not None else ""
    loaded = state.tables.get(task) if state is not None else None
    served_version = loaded.model.version if loaded is not None else None

    def card(info: registry.VersionInfo | None) -> VersionCard | None:
        if info is None:
            return None
        # served or not (qa44 M1): _build reads the bundle of the served version only, so a
        # reload onto another version on the same snapshot day must not reuse either card
        served = "served" if info.version == served_version else "not served"
        key = (uri, task, info.version, as_of, served)
        found = cache.get(key)
        if found is None:
            older = [v for v in versions if int(v.version) < int(info.version)]
            found = _build(client, uri, info, older[0] if older else None, state)
            cache.put(key, found)
        # read each request with the aliases: a cached card predates a rollback onto it
        champion = registry.CHAMPION in info.aliases
        return replace(
            found,
            aliases=info.aliases,
            rollback=registry.rollback_text(info) if champion else None,
        )

    champion = by_alias.get(registry.CHAMPION)
    challenger = by_alias.get(registry.CHALLENGER)
    if challenger is not None and champion is not None and challenger.version == champion.version:
        challenger = None
    return ModelCards(task, card(champion), card(challenger), len(versions))
