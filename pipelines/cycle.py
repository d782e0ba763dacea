"""``guanxi cycle``: the scheduled job, one day at a time, resumable and idempotent.

One run for a day ``D`` (``--as-of``) takes these steps (:data:`STEPS`), each the same code the
single commands run:

``snapshot``
    Read and validate the events (and customers), build the snapshot of ``D`` and keep it in the
    store with its history (:meth:`features.store.Store.write_snapshot`); its summary says the
    day of the last event, and the customers with events the customers file lacks. A ``D``
    after today, or before every event (an empty snapshot), stops the cycle with nothing
    written, as ``guanxi features build`` refuses it; so do events that end more than
    :data:`features.freshness.STALE_EVENTS_DAYS` days, or ``--horizon`` days or more, before ``D``
    (an extract not refreshed), as ``guanxi train`` and ``guanxi drift`` refuse them, and
    events that start later than the last cycle's (an extract of the days since, not every
    customer's history: :func:`shorter_history`). Events 2 to 7 days short (a weekend or
    holidays) make the snapshot, and the summary's ``warning`` says where they end.
``value``
    Fit the value models and keep the value table of ``D`` (:mod:`pipelines.value`); data that
    cannot identify the models is noted, not an error.
``score``
    Score every customer with each task's champion, with reasons, and keep the tables
    (:func:`pipelines.score.store_scores`); a task without a champion is noted, and so is a
    champion trained as of a later day (:func:`pipelines.drift.trained_later`), here only: the
    drift step's report keeps that note without printing it again.
``drift``
    The drift and live-performance report of ``D`` (:mod:`pipelines.drift`): printed, HTML,
    MLflow, store. A day with nothing to measure (no champion compared, no score or value table
    measured: the first cycle, say) keeps no report, as ``guanxi drift`` refuses it; the step
    says why (:func:`pipelines.drift.nothing_to_measure`) and the cycle goes on. A champion
    whose test day, or a score table whose day, the events do not reach back to (its snapshot
    would be empty: :class:`pipelines.drift.EmptySnapshotError`) is noted, not compared or
    measured.
``retrain``
    Train a challenger (:func:`pipelines.train.run_training`) for each task whose champion is
    missing, older than ``--max-model-age`` days (its ``as_of`` tag, else its training run's:
    :func:`champion_trained_as_of`; a champion of unknown age is not retrained for its age, and
    the step says so), trained on another feature set than this guanxi builds (after an
    upgrade: the value and score steps leave it out, saying so), whose features drifted
    beyond ``--max-drifted-share`` or whose scores drifted; on a day whose events end 2 to 7
    days before it (the drift report's ``events_warning``) neither drift is taken
    (:data:`SHORT_EVENTS_DRIFT`), and the step says so. A version already trained as of
    ``D`` is reused, so a resumed run never registers a second one. A retraining refused by
    the data (too few rows, events too far short of ``D``) is recorded as ``skipped`` with its
    reason; one on events a few days short records the warning (``warning``). A champion whose
    recorded horizon or activity window is no whole number of days (read once, as the gate reads
    it, and a ``horizon`` tag too: :func:`unreadable_definition`) is not retrained, nor scored
    or measured by the steps before, and the value step keeps the values without its churn
    probabilities: the first step to meet it says why and the way out (train again, then
    ``guanxi promote --version``: the gate refuses every challenger meanwhile), the later ones
    refer to it.
``promote``
    The gate (:func:`pipelines.promote.promote`) for each challenger of the ``retrain`` step.
``rescore``
    Score and keep the tables of the champions promoted in this run (or moved to the task's
    rule-backed version, see :mod:`pipelines.promote`); otherwise nothing runs and the step
    says why.
``revalue``
    When this run promoted the retention task's champion (churn), fit the value step again so
    the value table of ``D`` carries the new champion's churn probabilities (the ``value`` step
    ran before there was one, and ``guanxi target`` reads them for its retention offers); the
    table is replaced atomically, like every value table. Otherwise nothing runs and the step
    says why.
``reload``
    Ask a running server to load the new state (``POST /v1/admin/reload`` with an admin key of
    ``GUANXI_API_KEYS``) when ``--reload-url`` is given; a server started later loads it anyway.
    With several workers the server answers once every worker serves the new state; the step
    records how many do (``workers_loaded``, ``workers_failed``, ``workers_waiting``).

Each finished step is recorded in the store (``<home>/cycle/as_of=D.json``, written atomically,
with the step's summary) before the next starts. One process at a time runs the cycle of a day
(``<home>/cycle/as_of=D.lock``, an advisory lock the system releases when its holder dies): a
second is refused before any step, naming the first. A run skips the steps recorded as done, so the
same ``--as-of`` twice does nothing new, and a run that failed or was killed (SIGKILL included)
resumes from the step that did not finish: every step writes its outputs atomically, so the
previous ones stay intact until the new ones are complete, and redoing an unfinished step only
replaces outputs with equal ones. The test hook ``GUANXI_CYCLE_KILL_IN=<step>`` kills the
process with SIGKILL inside that step, after its outputs and before its record (the tests use it).

:func:`run_cycle` is the function a scheduler calls (cron runs the command; Airflow can call the
function in a ``PythonOperator``).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import mlflow
import polars as pl
import typer
from mlflow.exceptions import MlflowException
from rich.console import Console
from rich.markup import escape

from features.contracts import FEATURES, MISSING, counted
from features.events import EventsValidationError
from features.freshness import EventsEnd
from features.snapshot import build_snapshot
from features.store import SourceFile, Store
from features.window import AGE, prepare_events
from models import registry
from models.clv import ModelIdentificationError
from models.definitions import DefinitionUnreadableError
from models.explain import MAX_REASONS
from models.labels import HORIZON_DAYS
from models.scoring import FeatureSetMismatchError, score_snapshot
from models.tasks import retention_task, task_names
from models.versions import ModelFilesMissingError, load_version
from pipelines import connectors
from pipelines.days import after_today, history_start, no_event_by
from pipelines.drift import (
    PROFILE,
    customers_inputs,
    feature_set_reason,
    lacks_attributes,
    not_whole_days,
    some_customers,
    trained_later,
)

if TYPE_CHECKING:
    from models.artifact import ModelBundle

__all__ = [
    "BRIEF_ITEMS",
    "KEEPS_TABLES",
    "KILL_ENV",
    "RERUN",
    "SHIFT_SLACK_DAYS",
    "STEPS",
    "CycleConfig",
    "CycleError",
    "CycleInputError",
    "CycleRunningError",
    "brief",
    "champion_trained_as_of",
    "cycle_command",
    "kept_reasons",
    "promote_lines",
    "readable",
    "retrain_reasons",
    "run_cycle",
    "shorter_history",
    "trained_later",
    "unreadable_definition",
]

STEPS: Final = (
    "snapshot",
    "value",
    "score",
    "drift",
    "retrain",
    "promote",
    "rescore",
    "revalue",
    "reload",
)
"""The steps of a cycle, in order."""

KEEPS_TABLES: Final = ("value", "score", "rescore", "revalue")
"""The steps that keep score or value tables in the store, signed with ``GUANXI_STORE_KEY``."""

KILL_ENV: Final = "GUANXI_CYCLE_KILL_IN"
"""Test hook: the step inside which the process kills itself with SIGKILL."""


class CycleError(RuntimeError):
    """A step failed; the record keeps the steps before it, the next run resumes there."""


class CycleInputError(CycleError):
    """The day or the events given make no cycle; the message says what to give instead.

    Raised before any step's work is kept (a day to come, a day before the first event, an
    extract not refreshed or holding the recent days alone): running the same command again
    meets the same refusal, so the stop says what to change, and no "run the same command
    again".
    """


class CycleRunningError(CycleError):
    """Another process runs the cycle of the same day; this one did nothing."""


@contextmanager
def _day_lock(path: Path, day: date) -> Iterator[None]:
    """Hold the lock of a day's cycle (``path``, beside its record) while the block runs.

    A second run of the same day (cron starting one while the last still trains, a retry of a
    run that timed out but lives on) ran every step beside the first and trained and registered
    a second model. The lock is an advisory ``flock``, released by the system when its holder
    dies (SIGKILL included), so a killed run never leaves a day locked. Only the ``flock``
    locks: the file stays once its run ends (a refused one's too), emptied of its holder's line,
    which named a process long gone as if it ran. It is not removed: a run that opened it just
    before would lock a file no longer there while a third locked a new one, both running.

    Raises
    ------
    CycleRunningError
        If another process holds it; the message names the process and when it started.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.seek(0)
            holder = handle.read().strip() or "a process"
            raise CycleRunningError(
                f"the cycle of {day} is running already ({holder}; lock {path}): this run did "
                "nothing; run the same command again once that one has finished, and it does "
                "what that one left undone"
            ) from exc
        handle.seek(0)
        handle.truncate()
        started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        handle.write(f"process {os.getpid()}, started {started}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()  # the file stays (see above); its process line goes with the run
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class CycleConfig:
    """Settings of a cycle.

    Parameters
    ----------
    tasks : tuple of str
        Tasks scored, checked and retrained.
    horizon : int, optional
        Label window of retrained models, in days; None: each champion's recorded horizon
        (:func:`pipelines.promote.task_definition`), else :data:`models.labels.HORIZON_DAYS`. A
        retrained model keeps its champion's activity window too, so the gate compares it (a
        version of another task definition is refused); a task whose champion records another
        horizon than one given is not retrained, said.
    trials : int
        Optuna trials per retraining.
    seed : int
        Seed of the retraining.
    max_model_age_days : int
        Retrain a champion trained more than this many days before the cycle's day.
    max_drifted_share : float
        Retrain when more than this share of the compared features drifted.
    value_horizon_days : int
        Horizon of the value table.
    explain : int
        Reasons kept per scored row.
    reload_url : str or None
        Base URL of a running server to reload (``http://127.0.0.1:8000``).
    """

    tasks: tuple[str, ...] = field(default_factory=task_names)
    horizon: int | None = None
    trials: int = 10
    seed: int = 0
    max_model_age_days: int = 90
    max_drifted_share: float = 0.25
    value_horizon_days: int = 365
    explain: int = MAX_REASONS
    reload_url: str | None = None


SHORT_EVENTS_DRIFT: Final = (
    "the events end 2 to 7 days before the day (the drift step's warning), and recency-type "
    "features read the missing days as inactivity, drift that is not the customers'"
)
"""Why the drifted share of a report on events a few days short retrains nothing by itself
(qa43 L3: 0.165 of PSI of days_since_last_engagement at 3 days short, 0.914 at 5), nor its
score drift: the scores are computed on that snapshot."""


def _untaken(
    drift: dict[str, Any], config: CycleConfig, task: str
) -> tuple[str | None, str | None]:
    """Name the drifts of a task a report on events a few days short does not take (pure).

    Returns the drifted share above ``--max-drifted-share`` and the task's score drift, each None
    when it is not one: none without the report's ``events_warning``.
    """
    if not drift.get("events_warning"):
        return None, None
    share = float(drift.get("drifted_share", 0.0))
    over = share > config.max_drifted_share
    return (
        f"{100 * share:.1f}% of features drifted > {100 * config.max_drifted_share:g}%"
        if over
        else None,
        "scores drifted" if task in drift.get("scores_drifted", []) else None,
    )


def _not_taken(*drifts: str) -> str:
    """Say that these drifts are not taken for a retraining, and why, once."""
    return f"{' and '.join(drifts)}, not taken for a retraining: {SHORT_EVENTS_DRIFT}"


def drifts_not_taken(drift: dict[str, Any], config: CycleConfig, task: str) -> str | None:
    """Say in one sentence which of a task's drifts are not taken for a retraining, and why (pure).

    Parameters
    ----------
    drift : dict
        The drift step's summary, with the report's ``events_warning`` when it has one.
    config : CycleConfig
        The thresholds.
    task : str
        The task.

    Returns
    -------
    str or None
        When the report carries an events warning: the drifted share against
        ``--max-drifted-share`` when above it and that the task's scores drifted when they did
        (``scores_drifted``), joined by "and", then :data:`SHORT_EVENTS_DRIFT`; None when neither
        is.
    """
    said = [d for d in _untaken(drift, config, task) if d is not None]
    return _not_taken(*said) if said else None


def retrain_reasons(
    champion_as_of: date | None,
    day: date,
    drifted_share: float,
    score_drifted: bool,
    config: CycleConfig,
    *,
    champion: bool | None = None,
    other_features: str | None = None,
    events_short: bool = False,
) -> list[str]:
    """Say why a task's model should be retrained (pure).

    Parameters
    ----------
    champion_as_of : datetime.date or None
        The champion's training day; None when there is no champion, or its day is unknown.
    day : datetime.date
        The cycle's day.
    drifted_share : float
        Share of the compared features that drifted.
    score_drifted : bool
        Whether the task's score distribution drifted.
    config : CycleConfig
        The thresholds.
    champion : bool, optional
        Whether the task has a champion; default: whether ``champion_as_of`` is given. A
        champion whose training day is unknown (:func:`champion_trained_as_of`) is not retrained
        for its age, only for drift. A champion trained after ``day`` (a cycle of a past day, a
        backfill) is not retrained for drift either: the gate could put a model of that earlier
        day in its place, and the server would serve it.
    other_features : str, optional
        That the champion was trained on another feature set than this guanxi builds
        (:func:`pipelines.drift.feature_set_reason`), the first reason: it can be neither
        scored nor compared.
    events_short : bool, default False
        The drift report carries an ``events_warning`` (the events end 2 to 7 days before
        ``day``): neither its drifted share nor the score drift is a reason
        (:data:`SHORT_EVENTS_DRIFT`), the others are.

    Returns
    -------
    list of str
        The reasons; empty when the champion stays.
    """
    if not (champion_as_of is not None if champion is None else champion):
        return ["no champion"]
    reasons = [other_features] if other_features else []
    age = (day - champion_as_of).days if champion_as_of is not None else None
    if age is not None and age < 0:  # a cycle of a past day: its model would replace a later one
        return reasons
    if age is not None and age > config.max_model_age_days:
        reasons.append(f"model age {age} days > {config.max_model_age_days}")
    if drifted_share > config.max_drifted_share and not events_short:
        reasons.append(f"{100 * drifted_share:.1f}% of features drifted")
    if score_drifted and not events_short:
        reasons.append("scores drifted")
    return reasons


def kept_reasons(
    champion_as_of: date | None,
    day: date,
    drift: dict[str, Any],
    config: CycleConfig,
    *,
    task: str,
) -> list[str]:
    """Say why a task's champion stays: each check of :func:`retrain_reasons` it passed (pure).

    Parameters
    ----------
    champion_as_of : datetime.date or None
        The champion's training day; None when it is unknown (:func:`champion_trained_as_of`).
    day : datetime.date
        The cycle's day.
    drift : dict
        The drift step's summary: the report's summary, or ``skipped`` on a day with nothing to
        measure.
    config : CycleConfig
        The thresholds.
    task : str
        The task, whose score drift on a day of events a few days short is said not taken
        (:func:`drifts_not_taken`).

    Returns
    -------
    list of str
        The model's age against ``--max-model-age`` (or that its age is unknown), the share of
        drifted features against ``--max-drifted-share`` and that no score drift was found (or
        that it was not taken; both not taken, in one sentence, as :func:`drifts_not_taken`),
        or that the day has no drift report; or, alone, that it was trained after the day.
    """
    age = (day - champion_as_of).days if champion_as_of is not None else None
    if age is None:
        kept = ["model age unknown"]
    elif age >= 0:
        kept = [f"model age {age} days <= {config.max_model_age_days}"]
    else:  # retrain_reasons keeps it whatever the drift: no past day's model replaces it
        return [
            f"trained as of {champion_as_of}, after this day: a cycle of an earlier day does "
            "not replace it, whatever the drift"
        ]
    if "features_compared" not in drift:
        return [*kept, "no drift report of this day"]
    share = float(drift["drifted_share"])
    share_said, score_said = _untaken(drift, config, task)
    if share_said and score_said:
        return [*kept, _not_taken(share_said, score_said)]  # both not taken: why, once
    return [
        *kept,
        _not_taken(share_said)
        if share_said
        else f"{100 * share:.1f}% of features drifted <= {100 * config.max_drifted_share:g}%",
        _not_taken(score_said) if score_said else "no score drift",
    ]


def _run_params(run_id: str | None) -> Callable[[], dict[str, str]]:
    """Read a training run's parameters when called: empty without a run, or one MLflow lacks."""

    def read() -> dict[str, str]:
        if not run_id:
            return {}
        try:
            return dict(mlflow.get_run(run_id).data.params)
        except MlflowException:
            return {}

    return read


def champion_trained_as_of(
    tags: dict[str, str], run_params: Callable[[], dict[str, str]]
) -> tuple[date | None, str | None]:
    """Return the day a champion was trained as of, and a note when its ``as_of`` tag lacks.

    ``guanxi train`` tags every version it registers with its training day (``as_of``); a
    version registered by hand (MLflow's ``register_model``) has none, and ``guanxi promote
    --version`` makes any version champion. The cycle took such a champion for no champion and
    retrained the task on every run. Its training run's ``as_of`` parameter is that day; else its
    ``cutoffs.test`` parameter, the held-out cutoff, which is on or before it (the age is then
    overstated, never understated); else the age is unknown: the champion is not retrained for
    its age alone, and the note says so.

    Parameters
    ----------
    tags : dict of str to str
        The version's tags.
    run_params : callable
        Returns the parameters of the version's training run (empty without one); called only
        when the tag lacks.

    Returns
    -------
    tuple
        The day (None when unknown) and the note (None when the tag gave the day).
    """
    tagged = tags.get("as_of")
    if tagged:
        return date.fromisoformat(tagged[:10]), None
    untagged = (
        "registered without the as_of tag guanxi train gives its versions (by hand, with "
        "MLflow's register_model; guanxi promote --version makes any version champion)"
    )
    params = run_params()
    for key, what in (("as_of", "training day"), ("cutoffs.test", "test cutoff")):
        try:
            found = date.fromisoformat(params.get(key, "")[:10])
        except ValueError:
            continue
        return found, f"{untagged}: its age is taken from its run's {what}, {found}"
    return None, (
        f"{untagged}, and its run records no training day: its age is unknown, so it is not "
        "retrained for its age (give it an as_of tag of its training day, or train and promote one)"
    )


RERUN: Final = (
    "run the cycle of a day on or after {trained}, or start from a fresh GUANXI_HOME to backfill "
    "past days"
)
"""The cycle's advice on a champion trained after its day (:func:`trained_later`'s ``redo``)."""


SHIFT_SLACK_DAYS: Final = 7
"""Days a rolling extract's first event may move beyond the days between two cycles."""


def shorter_history(
    store: Store, day: date, events: pl.DataFrame, frame: pl.DataFrame
) -> str | None:
    """Say when the events hold a shorter history than the last cycle's: an increment, not all.

    An extract of the days since the last cycle (``events-2025-11.parquet``) built a snapshot
    that took each customer's history to start then: every recency, count and tenure was wrong,
    and the cycle kept, scored and served it with no word. The events are compared with the
    history of the store's newest snapshot before ``day`` (the events that snapshot was built
    from): a rolling extract's first event moves on with the days between the two, plus
    :data:`SHIFT_SLACK_DAYS`; one that starts later is refused.

    Parameters
    ----------
    store : features.store.Store
        The store.
    day : datetime.date
        The cycle's day.
    events : polars.DataFrame
        The validated events (``ts``).
    frame : polars.DataFrame
        The snapshot of ``day`` built from them (``customer_id``).

    Returns
    -------
    str or None
        The refusal: both first days, how many customers of the earlier snapshot have no event
        here, and what to pass; None when there is no earlier history or the events reach back.
    """
    earlier = [d for d in store.list_snapshots() if d < day and store.history_path(d).is_file()]
    first = events["ts"].min() if events.height else None
    if not earlier or not isinstance(first, datetime):
        return None
    last = earlier[-1]
    kept = history_start(store.history_path(last))
    if kept is None:
        return None
    if (first.date() - kept.date()).days <= (day - last).days + SHIFT_SLACK_DAYS:
        return None
    before = store.read_snapshot(last).select("customer_id")
    lost = before.join(frame.select("customer_id"), on="customer_id", how="anti").height
    return (
        f"the events start on {first:%Y-%m-%d}, those of the snapshot of {last} on "
        f"{kept:%Y-%m-%d}: an extract of the days since {first:%Y-%m-%d}, not every customer's "
        "history, would make the snapshot take each customer's history to start then "
        f"({counted(lost, 'customers')} of the snapshot of {last} have no event in it); "
        f"nothing written; pass the events from {kept:%Y-%m-%d} on (a fresh GUANXI_HOME keeps a "
        "store of these alone)"
    )


NO_CHURN: Final = "no churn probabilities, so clv_textbook and equity_at_risk are empty"
"""The value step's note of a run without the churn champion's probabilities, before why."""


def unreadable_definition(
    task: str, version: str, bundle: ModelBundle, tags: dict[str, str] | None = None
) -> str | None:
    """Say that a champion's task definition cannot be read, what the cycle leaves out, the way out.

    The definition is read as the promotion gate reads it (:func:`models.definitions.definition`,
    the bundle's metadata), and a ``horizon`` tag the value and drift steps read when the
    metadata records none is read too (:func:`models.definitions.recorded_int`).

    Parameters
    ----------
    task : str
        The task.
    version : str
        The champion's version.
    bundle : models.artifact.ModelBundle
        The champion's model.
    tags : dict of str to str, optional
        The champion's registry tags.

    Returns
    -------
    str or None
        The task, the version, the field and the value recorded; that the cycle does not score,
        measure or retrain the task; that the gate refuses every challenger while it is
        champion; and the way out: train again with the window given, then make the new version
        champion. None when the definition can be read.
    """
    from models.definitions import recorded_int
    from pipelines.promote import _defined  # no public reader names the version so

    params = (bundle.metadata or {}).get("params") or {}
    tagged = (tags or {}).get("horizon")
    flag = "--horizon"
    try:
        _defined(bundle, f"{task} champion version {version}")
    except DefinitionUnreadableError as exc:
        error = str(exc)
        if params.get("horizon") is None or recorded_int(params["horizon"]) is not None:
            flag = "--active-days"  # the horizon reads: the activity window does not
    else:
        if params.get("horizon") or not tagged or recorded_int(tagged) is not None:
            return None
        of = f"{task} champion version {version}"
        unread = not_whole_days(of, "horizon", "tag horizon", tagged)
        error = f"{unread}: the task definition cannot be read"
    return (  # the value step, the first to meet the retention task, says it has no churn
        f"{error}; this cycle does not score {task}, measure its drift or retrain it; while this "
        "version is champion the promotion gate refuses every challenger: train again "
        f"(`guanxi train --task {task} {flag} DAYS ...`), then make the new version champion "
        f"(`guanxi promote --task {task} --version <new>`)"
    )


class _Run:
    """One run of a cycle: the inputs read at most once, and each step as a method."""

    def __init__(
        self,
        sources: connectors.Inputs,
        day: date,
        config: CycleConfig,
        home: Path,
        console: Console,
    ) -> None:
        self.sources, self.day, self.config = sources, day, config
        from serving.settings import get_settings

        # signs the score tables with GUANXI_STORE_KEY when it is set, as guanxi score does
        self.home, self.console, self.store = home, console, get_settings().store(home)
        self._data: tuple[pl.DataFrame, pl.DataFrame | None] | None = None
        self._said: set[str] = set()  # notes printed by a step of this run, not said again
        self._feature_sets: dict[tuple[str, str], str | None] = {}
        self._unreadable: dict[str, str] | None = None
        self._unread_said: dict[str, str] = {}  # a task -> the step that said why in full
        self._bundles: dict[tuple[str, str], ModelBundle | None] = {}  # loaded once a run

    def bundle(self, task: str, version: str) -> ModelBundle | None:
        """Return a version's model, loaded once a run; None when its files or version are gone.

        :meth:`other_features`, :meth:`unreadable` and :meth:`definition` read the champion's
        (each loaded it again); the score step says why one is gone.
        """
        key = (task, version)
        if key not in self._bundles:
            try:
                self._bundles[key] = load_version(task, version=version).bundle
            except (ModelFilesMissingError, registry.ModelNotFoundError):
                self._bundles[key] = None
        return self._bundles[key]

    def unread(self, task: str, step: str) -> str | None:
        """Return why a task is left out for its unreadable definition, or None if it is not.

        In full at the first step of the run that meets it (:func:`unreadable_definition`);
        a later step refers back to it.
        """
        said = self.unreadable().get(task)
        if said is None:
            return None
        first = self._unread_said.setdefault(task, step)
        if first == step:
            return said
        return f"its champion's task definition cannot be read, as the {first} step says"

    def other_features(self, task: str) -> tuple[str, str] | None:
        """Return the task's champion's version and why it is retrained, if another feature set's.

        :func:`pipelines.drift.feature_set_reason`.

        The version's ``feature_set_version`` tag (``guanxi train`` gives it), else its files'.
        """
        champion = registry.get_version(task, registry.CHAMPION)
        if champion is None:
            return None
        key = (task, str(champion.version))
        if key not in self._feature_sets:
            trained_on = (champion.tags or {}).get("feature_set_version")
            if not trained_on:  # registered by hand: its files say it
                bundle = self.bundle(task, key[1])  # None: the score step says the files are gone
                trained_on = bundle.feature_set_version if bundle is not None else None
            self._feature_sets[key] = feature_set_reason(trained_on)
        reason = self._feature_sets[key]
        return (key[1], reason) if reason is not None else None

    def unreadable(self) -> dict[str, str]:
        """Return the tasks whose champion's task definition cannot be read, and why.

        Read once, at the first step that reads a champion: each task of the cycle's, and the
        retention task the value step reads (:func:`unreadable_definition`). The value, score,
        drift and retrain steps leave such a task out, each saying this sentence (it ended the
        cycle in a traceback at the value step, before the retrain step's skip).
        """
        if self._unreadable is None:
            retention = retention_task()
            tasks = [*self.config.tasks, *([retention.name] if retention is not None else [])]
            self._unreadable = {}
            for task in dict.fromkeys(tasks):
                champion = registry.get_version(task, registry.CHAMPION)
                if champion is None:
                    continue
                version = str(champion.version)
                bundle = self.bundle(task, version)
                if bundle is None:
                    continue  # the score step says the files are gone
                said = unreadable_definition(task, version, bundle, dict(champion.tags or {}))
                if said is not None:
                    self._unreadable[task] = said
        return self._unreadable

    def definition(self, task: str, version: str | None) -> dict[str, int]:
        """Return a champion's task definition as recorded (horizon, activity window).

        :func:`pipelines.promote.task_definition`; empty without a champion or when its files
        cannot be read (the score step says why).
        """
        from pipelines.promote import task_definition

        bundle = None if version is None else self.bundle(task, version)
        return {} if bundle is None else task_definition(bundle)

    def without_customers(self, task: str, champion: Any) -> tuple[str | None, str | None]:
        """Say why a champion is not retrained by a cycle given no customers, or a note when it is.

        It is not when it reads inputs the customers file gives or changes
        (:func:`pipelines.drift.customers_inputs`) and was trained with the customers'
        attributes: a version retrained without them would not learn from them, and the gate
        would judge the champion on the challenger's held-out rows, built without them
        (``is_business`` 0 on every row, ``signup_tenure_days`` missing, ``tenure_days`` the days
        since the first event: qa46 M1). Its own held-out rows tell how it was trained
        (:func:`pipelines.drift.lacks_attributes`), as a champion reading a column only a
        customers file passes through is. Rows that cannot be read (a hand-registered version,
        pruned artifacts, a file without a column or corrupt: the registry's, a file's, a
        column's or a parquet reader's error) leave it retrained as before the skip, with a note
        naming the error's type (and an OSError's file; not its message, which may hold a
        tracking URI with its credentials): the gate's comparison may then lack the attributes.
        A champion reading ``tenure_days`` and no profile feature, whose rows hold its inputs
        alone, is told by its ``tenure_days`` against the first event's age at its test cutoff
        (:meth:`tenure_told`); when that cannot be told it is retrained, with a note.
        An error of the check itself is not caught. The skip's command to train now carries
        the champion's recorded horizon and activity window (:meth:`definition`), as the cycle
        retrains with them: ``guanxi train``'s defaults would train another task definition,
        which ``guanxi promote`` refuses.

        Returns
        -------
        tuple of (str or None, str or None)
            Why the task is skipped (None: retrained), and a note for the retrain line.
        """
        if self.sources.customers is not None:
            return None, None
        version = str(champion.version)
        bundle = self.bundle(task, version)
        read = [] if bundle is None else customers_inputs(bundle.feature_names)
        if not read:
            return None, None
        profile = [n for n in read if n in PROFILE]
        if len(profile) + ("tenure_days" in read) == len(read):  # no column passed through
            rows, unread = self._holdout(champion)
            lack = (  # both notes' end
                ": retrained as before, and the promotion gate's comparison may lack the "
                f"customers' attributes ({', '.join(read)})"
            )
            if unread is not None:
                return None, (
                    f"champion version {version}'s held-out rows could not be read ({unread}){lack}"
                )
            assert rows is not None
            if not profile:  # its rows hold its inputs alone: told by tenure_days, if at all
                told = self.tenure_told(bundle, rows)
                if isinstance(told, str):
                    return None, (
                        f"champion version {version} reads tenure_days and no profile feature: "
                        "its held-out rows cannot tell whether it was trained with the "
                        f"customers' attributes ({told}){lack}"
                    )
                if not told:  # its rows are those a cycle without them builds: equal terms
                    return None, None
            elif lacks_attributes(pl.from_pandas(rows)):  # on equal terms: retrained
                return None, None
        # the champion's definition, which the cycle retrains with: guanxi train's defaults
        # would train another, which `guanxi promote` refuses
        recorded = self.definition(task, version)
        options = "".join(
            f" {flag} {recorded[key]}"
            for key, flag in (("horizon", "--horizon"), ("active_days", "--active-days"))
            if key in recorded
        )
        return (
            f"champion version {version} reads {', '.join(read)} from the customers file, and "
            "this cycle was given none: a version retrained without them would not learn from "
            "them, and the promotion gate would judge the champion on held-out rows without them, "
            "inputs it is never served so; run the next cycle with --customers PATH, or now: "
            f"`guanxi train --task {task} --events PATH --customers PATH --as-of {self.day}"
            f"{options}`, "
            f"then `guanxi promote --task {task}`"
        ), None

    @staticmethod
    def _holdout(champion: Any) -> tuple[Any, str | None]:
        """Read a champion's held-out rows, its inputs' columns alone, or say why they cannot be.

        Rows that cannot be read (a hand-registered version, pruned artifacts, a file without
        a column or corrupt: the registry's, a file's, a column's or a parquet reader's error)
        are said by the error's type, and an OSError's file: not its message, which may hold a
        tracking URI with its credentials.

        Parameters
        ----------
        champion : object
            Its registry version (``run_id``: the run whose held-out rows are read).

        Returns
        -------
        tuple of (pandas.DataFrame or None, str or None)
            The rows (``customer_id`` and the feature columns), or None and why.
        """
        try:  # the read alone: an error of the checks on the rows is ours, and surfaces
            rows, _ = registry.load_holdout(str(champion.run_id))
            rows = rows[[c for c in rows.columns if c in FEATURES or c == "customer_id"]]
        except (MlflowException, OSError, KeyError, ValueError) as exc:  # ArrowInvalid
            name = getattr(exc, "filename", None) if isinstance(exc, OSError) else None
            return None, type(exc).__name__ + (f": {name}" if name else "")
        return rows, None

    def tenure_told(self, bundle: Any, rows: Any) -> bool | str:
        """Tell by its held-out ``tenure_days`` whether a champion was trained with the customers.

        ``tenure_days`` is the longer of the days since the customer's first event and
        ``signup_tenure_days``, the first alone without a customers file. Trained without them,
        no held-out row's exceeds the days from its training events' first day
        (``data.first_day`` of its metadata) to its test cutoff: one above was trained with
        them, the cycle's events not read. Else each row is compared with the first event's
        age at the test cutoff in this cycle's events, where they reach back that far (the
        days from their first day to the cutoff; a rolling extract's events no longer hold a
        customer's first event and would make its age shorter): one longer was trained with
        them. None longer, the champion's rows are those a cycle without them builds when no
        row was left out; otherwise it cannot be told (review53 M1). Events beginning on or
        before its training's first day leave none out, by the bound.

        Parameters
        ----------
        bundle : models.artifact.ModelBundle
            The champion's bundle (its test cutoff, ``params.cutoffs.test`` of its metadata,
            and its training events' first day, ``data.first_day``).
        rows : pandas.DataFrame
            Its held-out rows (:meth:`_holdout`).

        Returns
        -------
        bool or str
            True when trained with the customers' attributes, False when without; why it
            cannot be told otherwise (no test cutoff recorded or not a day, no
            ``customer_id`` or ``tenure_days`` column, every ``tenure_days`` null, this
            cycle's events beginning after the test cutoff, no held-out customer in them on
            or before it, the events not reaching back far enough).
        """
        metadata = bundle.metadata
        test = ((metadata.get("params") or {}).get("cutoffs") or {}).get("test")
        if not test:
            return "no test cutoff is recorded"
        try:
            cutoff = date.fromisoformat(str(test)[:10])
        except ValueError:
            return f"its recorded test cutoff {test!r} is not a day"
        first = (metadata.get("data") or {}).get("first_day")
        try:  # an older version's metadata may lack it: told by the cycle's events alone
            first_day = None if first is None else date.fromisoformat(str(first)[:10])
        except ValueError:
            first_day = None
        if not {"customer_id", "tenure_days"} <= set(rows.columns):
            return "they hold no customer_id or tenure_days"
        held = (
            pl.from_pandas(rows[["customer_id", "tenure_days"]])
            .with_columns(pl.col("customer_id").cast(pl.String))
            .drop_nulls()
        )
        if held.is_empty():  # every tenure_days (or customer_id) null: nothing to compare
            return "they hold no tenure_days"
        if first_day is not None and (held["tenure_days"] > (cutoff - first_day).days).any():
            return True  # beyond any first event of its training's: a sign-up's tenure
        events, _ = self.data()  # read by the cycle's first step already
        ids = held["customer_id"].unique().to_list()
        seen = prepare_events(events, cutoff)
        aged, start = pl.collect_all(  # one scan of the events for both
            [
                (  # the held-out customers' first event's age alone, not a whole snapshot
                    seen.with_columns(pl.col("customer_id").cast(pl.String))
                    .filter(pl.col("customer_id").is_in(ids))
                    .group_by("customer_id")
                    .agg(pl.col(AGE).max().alias("first_age"))
                ),
                seen.select(pl.col("ts").min()),
            ]
        )
        if start.item() is None:  # a rolling extract younger than its test cutoff
            return f"this cycle's events begin after its test cutoff {cutoff}"
        both = held.join(aged, on="customer_id")
        if both.is_empty():
            return (
                "none of its held-out customers is in this cycle's events on or before its "
                f"test cutoff {cutoff}"
            )
        begins = start.item().date()
        reach = (cutoff - begins).days
        within = both.filter(pl.col("tenure_days") <= reach)
        if (within["tenure_days"] > within["first_age"]).any():
            return True
        # events beginning on or before its training's first day need no case of their own:
        # the bound above leaves every tenure_days within what they reach back, no row left out
        if len(within) == len(both):
            return False
        since = "" if first_day is None else f", after its training's first day {first_day}"
        return (
            f"this cycle's events begin on {begins}{since}, and its held-out tenure_days "
            "reach further back"
        )

    def described(self) -> tuple[SourceFile, SourceFile | None]:
        """Describe the events and the customers as a snapshot kept records them.

        The snapshot step's and those the drift step keeps (the champion's test day's, a past
        table's day): a later ``guanxi drift`` without ``--customers`` reads the customers file
        recorded (:meth:`pipelines.drift.DriftInputs.customers`).
        """
        customers = self.sources.customers
        return self.sources.events.describe(), customers.describe() if customers else None

    def data(self) -> tuple[pl.DataFrame, pl.DataFrame | None]:
        if self._data is None:
            self._data = self.sources.read(datetime.now(UTC))
        return self._data

    def snapshot(self, record: dict[str, Any]) -> dict[str, Any]:
        events, customers = self.data()
        frame = build_snapshot(events, customers, self.day)
        if frame.is_empty():  # was kept, and every step done on it: the day recorded complete
            raise CycleInputError(
                f"{no_event_by(events, self.day)}: nothing written; choose a later --as-of"
            )
        end = EventsEnd.of(events, self.day, self.sources.events.label)  # named, as the others
        assert end is not None  # the snapshot holds a customer: there is an event
        through, behind = end.through, end.behind
        horizon = self.config.horizon or HORIZON_DAYS
        # an extract not refreshed: every step ran on it; up to horizon - 1 days short, the
        # snapshot was kept and served, every customer inactive since (qa49 H2, its review)
        if end.stale or behind >= horizon:
            then = (
                f", and a retraining would see no label in its {horizon}-day horizon"
                if behind >= horizon
                else ", and be served as the day's features"
            )
            raise CycleInputError(
                end.refusal(
                    f"the snapshot would take every customer for inactive since {through}{then}; "
                    "nothing written"
                )
            )
        shorter = shorter_history(self.store, self.day, events, frame)
        if shorter is not None:  # was kept, scored and served: a month's history for everyone's
            raise CycleInputError(shorter)
        described, people = self.described()
        info = self.store.write_snapshot(
            frame, self.day, events=described, customers=people, history=events
        )
        done = {
            "customers": info.rows,
            "path": str(info.path),
            "events_through": through.isoformat(),  # a stale extract shows here, day after day
        }
        if end.short:  # a weekend or holidays: kept (a daily cycle scores on it), and said
            done["warning"] = end.warning(
                f"the snapshot of {self.day} reads the days after it as no activity"
            )
        if customers is not None:  # was no word: their attributes empty, in the scores too
            source = self.sources.customers
            assert source is not None  # Inputs.read gives customers only from a customers source
            lacking = frame.select("customer_id").join(
                customers.select("customer_id"), on="customer_id", how="anti"
            )
            if lacking.height:
                done["not_in_customers"] = (
                    f"{counted(lacking.height, 'customers')} with events "
                    f"({some_customers(lacking['customer_id'])}) are not in the customers file "
                    f"({source.label}): their attributes are empty in the snapshot and its "
                    "scores; pass every customer"
                )
        return done

    def value(self, record: dict[str, Any]) -> dict[str, Any]:
        retention = retention_task()
        # no churn champion yet and this cycle trains one: said, not "train and promote one"
        later = (
            f"no {retention.name} champion yet; this cycle's retrain step trains one, and its "
            "revalue step refits these values once it is promoted"
            if retention is not None and retention.name in self.config.tasks
            else None
        )
        return self._values(later)

    def _values(self, later: str | None) -> dict[str, Any]:
        from pipelines.value import ChurnModel, compute_values, keep_values

        events, _ = self.data()
        retention = retention_task()
        unread = self.unread(retention.name, "value") if retention is not None else None
        # the values without its probabilities, said (float("ninety") was a traceback)
        churn = None if unread is None else ChurnModel(None, f"{NO_CHURN}: {unread}")
        other = self.other_features(retention.name) if retention is not None else None
        stale = None  # was a stop ("retrain it and promote the new version") of every step
        if other is not None and retention is not None:
            name, (version, reason) = retention.name, other
            stale = f"{name} version {version} was {reason}: " + (
                "this cycle's retrain step retrains it, and its revalue step refits these values "
                "once it is promoted"
                if name in self.config.tasks
                else f"this cycle does not retrain it (--tasks leaves {name} out): `guanxi train "
                f"--task {name}`, then `guanxi promote --task {name}`, do"
            )
        try:
            run = compute_values(
                events,
                self.store.read_snapshot(self.day),
                self.day,
                horizon_days=self.config.value_horizon_days,
                no_model=later,
                other_features=stale,
                loaded_churn=churn,
            )
        except ModelIdentificationError as exc:
            return {"skipped": str(exc)}
        run_id, _ = keep_values(run, self.home)
        return {"customers": run.table.height, "run_id": run_id, "notes": list(run.notes)}

    def _score(self, tasks: list[str]) -> dict[str, Any]:
        from pipelines.score import store_scores

        snapshot = self.store.read_snapshot(self.day)
        done: dict[str, Any] = {}
        seen: dict[str, list[str]] = {}  # a note -> the versions it is about
        for task in tasks:
            unread = self.unread(task, "score")
            if unread is not None:  # was a traceback (int("a year")) ending the cycle
                done[task] = f"not scored: {unread}"
                continue
            other = self.other_features(task)
            if other is not None:  # was a stop, saying to retrain and promote it: retrain does
                version, reason = other
                done[task] = (
                    f"not scored: version {version} was {reason}; this cycle's retrain step "
                    "retrains it"
                )
                continue
            try:
                loaded = load_version(task, alias=registry.CHAMPION, check=True)
            except ModelFilesMissingError as exc:  # was MLflow's traceback: No such artifact
                raise CycleError(
                    f"{task} v{exc.version}: {exc.of_alias(registry.CHAMPION)}"
                ) from exc
            except registry.ModelNotFoundError:
                done[task] = "no champion"
                continue
            bundle = loaded.bundle
            scored = score_snapshot(bundle, snapshot, explain_k=self.config.explain)
            info = store_scores(self.store, bundle, snapshot, self.day, scored, self.config.explain)
            done[task] = {"version": info.model_version, "rows": info.rows}
            # by its run when the as_of tag lacks, as the retrain step ages it (an untagged
            # champion trained after the day was never noted)
            trained, _ = champion_trained_as_of(loaded.tags, _run_params(loaded.run_id))
            day = trained.isoformat() if trained is not None else None
            later = trained_later(day, self.day, RERUN)
            if later:  # said here, with the scores it is about; the drift report keeps it too
                seen.setdefault(later, []).append(f"{task} v{loaded.version}")
                self._said.add(f"{task} v{loaded.version}: {later}")  # as the report says it
                done[task]["trained_as_of"] = day
        for later, versions in seen.items():  # once for the champions of a day (was four times)
            self.console.print(f"[yellow]note:[/yellow] {', '.join(versions)}: {later}")
        return done

    def score(self, record: dict[str, Any]) -> dict[str, Any]:
        return self._score(list(self.config.tasks))

    def drift(self, record: dict[str, Any]) -> dict[str, Any]:
        from pipelines.drift import (
            DriftInputs,
            EmptySnapshotError,
            ReportNotKeptError,
            drift_report,
            keep_report,
            nothing_to_measure,
            print_report,
        )

        events, customers = self.data()
        events_file: SourceFile | None
        customers_file: SourceFile | None
        said: dict[str, str] = {}  # the summary's note, whatever the step does
        try:  # recorded, as guanxi drift records them
            events_file, customers_file = self.described()
        except OSError as exc:  # an input removed since it was read: the snapshots kept record
            events_file = customers_file = None  # none, and are told by their rows, as older
            # ones: said, since a later drift judges them so; the type alone, as elsewhere
            name = exc.filename or "an input"
            said["note"] = (
                f"the snapshots kept record no source: {name} could not be described: "
                f"{type(exc).__name__}"
            )
        inputs = DriftInputs(
            self.store,
            self.day,
            events,
            customers,
            cycle=True,
            source=self.sources.events.label,
            events_file=events_file,
            customers_file=customers_file,
        )
        unread = {task: self.unread(task, "drift") for task in self.config.tasks}
        # its champion's definition unread: not compared nor measured (was a traceback)
        left = {task: f"not measured: {why}" for task, why in unread.items() if why is not None}
        # a task without a champion is not compared; the retrain step below trains one
        later = "no champion to compare yet; this cycle's retrain step trains one"
        try:
            report = drift_report(
                inputs,
                [task for task in self.config.tasks if task not in left],
                no_model=later,
                redo=RERUN,
                other_features="this cycle's retrain step retrains it",
            )
        except EmptySnapshotError as exc:  # was a traceback: events not reaching back to the
            # champion's test day (an earlier version's unread horizon is a note of the report)
            return {"skipped": f"no drift report, nothing written: {exc}", **left, **said}
        empty = nothing_to_measure(report)
        if empty is not None:  # guanxi drift refuses the day; this kept an empty report of it
            return {"skipped": f"no drift report, nothing written: {empty}", **left, **said}
        # the score step of this run said its trained-later notes, and the snapshot step the
        # customers the customers file lacks: the report keeps them for /ui/drift, unsaid
        snapshot = record.get("steps", {}).get("snapshot", {}).get("summary", {})
        lacking = "partial --customers:" if "not_in_customers" in snapshot else None
        unsaid = [
            n
            for n in report["notes"]
            if n not in self._said and not (lacking and n.startswith(lacking))
        ]
        print_report(self.console, {**report, "notes": unsaid}, limit=5)
        # the tasks left out, said by the step's summary: the kept report says it too (it said
        # nothing of them: "0 of 0 feature comparisons", no champion named), in full: /ui/drift
        # shows no other step, so the note does not refer to one ("as the value step says")
        full = self.unreadable()
        out = [f"{t}: not compared nor measured by guanxi cycle: {full[t]}" for t in left]
        report = {**report, "notes": [*report["notes"], *out]}
        try:
            run_id, path = keep_report(report, self.home)
        except ReportNotKeptError as exc:  # was a traceback, with no word of resuming
            raise CycleError(f"drift report not kept: {exc}") from exc
        done = {**report["summary"], "run_id": run_id, "html": str(path), **left, **said}
        if report["events_warning"] is not None:  # the retrain step reads it (qa43 L3)
            done["events_warning"] = report["events_warning"]
        return done

    def retrain(self, record: dict[str, Any]) -> dict[str, Any]:
        from pipelines.train import run_training
        from training.datasets import InsufficientDataError
        from training.train import TrainConfig

        drift = record["steps"]["drift"]["summary"]
        done: dict[str, Any] = {}
        notes: dict[str, str] = {}
        for task in self.config.tasks:
            unread = self.unread(task, "retrain")
            if unread is not None:  # the gate could not compare a retrained version with it
                done[task] = {"retrained": False, "skipped": unread}
                continue
            champion = registry.get_version(task, registry.CHAMPION)
            trained, other = None, self.other_features(task)
            if champion is not None:
                tags = dict(champion.tags or {})
                trained, note = champion_trained_as_of(tags, _run_params(champion.run_id))
                if note is not None:  # was taken for no champion, and retrained every run
                    notes[task] = f"version {champion.version} {note}"
            reasons = retrain_reasons(
                trained,
                self.day,
                float(drift.get("drifted_share", 0.0)),  # none without a report of the day
                task in drift.get("scores_drifted", []),
                self.config,
                champion=champion is not None,
                other_features=other[1] if other is not None else None,
                events_short=bool(drift.get("events_warning")),
            )
            if not reasons:  # was "retrained no" alone: the champion stays, and why
                stays = kept_reasons(trained, self.day, drift, self.config, task=task)
                done[task] = {"retrained": False, "because": stays}
                continue
            today = [
                v for v in registry.list_versions(task) if v.tags.get("as_of") == str(self.day)
            ]
            # before the skip below: a run given --customers, killed before its record, trained it
            if today:  # trained as of this day already (by a run that did not record it)
                done[task] = {"retrained": True, "version": today[0].version, "reasons": reasons}
                if warning := today[0].tags.get("events_warning"):  # as a recorded run's
                    done[task]["warning"] = warning
                continue
            lacking, rows_note = (
                (None, None)
                if champion is None or other
                else self.without_customers(task, champion)
            )
            if lacking is not None:  # the gate would compare them unfairly (qa46 M1)
                done[task] = {"retrained": False, "reasons": reasons, "skipped": lacking}
                continue
            # the champion's definition, so the gate compares (a 30-day champion was retrained
            # with 90 days on every run, each version refused)
            number = None if champion is None else str(champion.version)
            recorded = self.definition(task, number)  # readable: unreadable() left out the rest
            horizon = self.config.horizon or recorded.get("horizon", HORIZON_DAYS)
            if recorded.get("horizon", horizon) != horizon:
                done[task] = {
                    "retrained": False,
                    "reasons": reasons,
                    "skipped": f"champion version {number} was trained with a "
                    f"{recorded['horizon']}-day horizon, --horizon is {horizon}: the gate would "
                    "refuse the retrained version as another task definition; to change it on "
                    f"purpose: `guanxi train --task {task} --horizon {horizon} ...` and "
                    f"`guanxi promote --task {task} --new-definition`",
                }
                continue
            events, customers = self.data()
            # the cycle takes no sampling option of guanxi train: its refusals name none
            config = TrainConfig(
                trials=self.config.trials, seed=self.config.seed, trained_by="guanxi cycle"
            )
            if "active_days" in recorded:
                config = replace(config, active_days=recorded["active_days"])
            try:
                outcome = run_training(
                    task,
                    events,
                    customers,
                    self.sources.events.label,
                    self.day,
                    horizon,
                    config,
                    self.home,
                    self.console,
                )
            except InsufficientDataError as exc:
                done[task] = {"retrained": False, "reasons": reasons, "skipped": str(exc)}
                continue
            done[task] = {"retrained": True, "version": outcome.version, "reasons": reasons}
            if said := drifts_not_taken(drift, self.config, task):
                done[task]["drift"] = said  # the other reasons retrained it
            if rows_note is not None:  # the champion's rows unread: the gate may lack them
                done[task]["note"] = rows_note
            if outcome.result.events_warning is not None:  # was said on the console only
                done[task]["warning"] = outcome.result.events_warning
        for task, note in notes.items():  # the champion's, said with what the step did
            done[task]["champion"] = note
        return done

    def promote(self, record: dict[str, Any]) -> dict[str, Any]:
        from pipelines.promote import promote

        done: dict[str, Any] = {}
        for task, step in record["steps"]["retrain"]["summary"].items():
            if step.get("retrained"):
                decision = promote(task, self.console)
                done[task] = {"promoted": decision.promote or decision.already, **asdict(decision)}
        return done

    def rescore(self, record: dict[str, Any]) -> dict[str, Any]:
        promoted = record["steps"]["promote"]["summary"]
        # a champion moved to the task's rule-backed version is scored as a promoted one
        tasks = [t for t, step in promoted.items() if step["promoted"] or step.get("rule_moved")]
        if not tasks:  # an empty summary printed the step's heading over nothing
            return {"skipped": "no champion was promoted in this cycle: the day's scores stand"}
        return self._score(tasks)

    def revalue(self, record: dict[str, Any]) -> dict[str, Any]:
        retention = retention_task()
        if retention is None:
            return {"skipped": "no task declares retention risk: the values read no churn model"}
        task = retention.name
        step = record["steps"]["promote"]["summary"].get(task)
        if not step or not (step["promoted"] or step.get("rule_moved")):
            return {"skipped": f"no {task} champion was promoted in this cycle: the values stand"}
        champion = registry.get_version(task, registry.CHAMPION)
        version = str(champion.version) if champion is not None else None
        info = self.store.value_info(self.day)
        if info is not None and (info.churn_model or {}).get("version") == version:
            return {"skipped": f"the values of {self.day} read {task} version {version} already"}
        done = self._values(None)
        if "skipped" in done:
            return done
        return {
            "refitted": f"{task} version {version} was promoted in this cycle: the value table "
            f"of {self.day} now carries its churn probabilities",
            **done,
        }

    def reload(self, record: dict[str, Any]) -> dict[str, Any]:
        url = self.config.reload_url
        if not url:
            return {"skipped": "no --reload-url: a server started later loads the new state"}
        key = admin_key()
        if key is None:
            raise CycleError("cannot reload the server: GUANXI_API_KEYS holds no admin key")
        request = urllib.request.Request(
            url.rstrip("/") + "/v1/admin/reload", method="POST", headers={"X-API-Key": key}
        )
        try:
            # a server with several workers answers once they all serve the new state
            with urllib.request.urlopen(request, timeout=600) as response:
                answer = json.loads(response.read())
        except (urllib.error.URLError, OSError) as exc:
            raise CycleError(f"the server at {url} did not reload: {exc}") from exc
        workers = {k: v for k, v in answer.items() if k.startswith("workers_")}
        return {"reloaded": True, "snapshot": answer.get("snapshot"), **workers}


def admin_key() -> str | None:
    """Return the admin key the reload step sends: the first of ``GUANXI_API_KEYS``.

    Returns
    -------
    str or None
        The key, or None when ``GUANXI_API_KEYS`` holds no admin key.
    """
    from serving.settings import Role, get_settings

    return next((k for k, role in get_settings().keys.items() if role >= Role.admin), None)


BRIEF_ITEMS: Final = 8
"""Items of a list a step's printed summary shows; the record keeps them all."""


def brief(summary: Any) -> Any:
    """Shorten a step's summary for printing, never cutting a text (pure).

    Parameters
    ----------
    summary : Any
        A step's summary, as kept in the cycle's record (JSON-like).

    Returns
    -------
    Any
        The same structure with each list cut to its first :data:`BRIEF_ITEMS` items and a
        last item saying how many more there are, and floats rounded to 4 decimals; texts (a
        promotion's reason, a skipped step's cause) whole.
    """
    if isinstance(summary, dict):
        return {key: brief(value) for key, value in summary.items()}
    if isinstance(summary, list | tuple):
        shown = [brief(item) for item in summary[:BRIEF_ITEMS]]
        more = len(summary) - BRIEF_ITEMS
        return [*shown, f"... {more} more"] if more > 0 else shown
    if isinstance(summary, float):
        return round(summary, 4)
    return summary


_SENTENCES: Final = ("skipped", "note")
"""Keys of a task's summary whose value is a sentence, said after a colon (:func:`readable`)."""


def readable(summary: Any) -> list[str]:
    """Lay a step's (shortened) summary out as lines to read, one a key (pure).

    Parameters
    ----------
    summary : Any
        A step's summary, as :func:`brief` shortens it.

    Returns
    -------
    list of str
        ``key: value`` a top-level key; a task's (or other nested) summary as ``name value``
        pairs separated by commas (``skipped: why``, the reason a sentence), a list's items
        by semicolons, yes/no for a flag and ``—`` for nothing
        (:data:`features.contracts.MISSING`, as the tables write it). A count (an int) comes
        before its name, with thousands separators, as the other commands say counts
        (:func:`features.contracts.counted`): ``customers`` 1200 is ``1,200 customers``, a
        task's ``rows`` 1 ``1 row``. A task keeps its name (``cross_sell``, as ``--tasks``
        takes it); other keys read with spaces. ``--json`` prints the summary as
        JSON instead.
    """
    tasks = set(task_names())

    def pair(key: str, value: Any, between: str) -> str:
        name = key if key in tasks else key.replace("_", " ")  # a task is named as --tasks has it
        if isinstance(value, int) and not isinstance(value, bool):  # was "customers: 1200"
            return counted(value, name)
        return f"{name}{between}{text(value)}"

    def text(value: Any) -> str:
        if isinstance(value, dict):  # a reason after "skipped" reads as one (was its object)
            parts = (pair(k, v, ": " if k in _SENTENCES else " ") for k, v in value.items())
            return ", ".join(parts) or MISSING
        if isinstance(value, list | tuple):
            return "; ".join(text(v) for v in value) or "none"
        if isinstance(value, bool):
            return "yes" if value else "no"
        return MISSING if value is None else str(value)

    if not isinstance(summary, dict):
        return [text(summary)]
    return [pair(key, value, ": ") for key, value in summary.items()]


def promote_lines(summary: dict[str, Any]) -> list[str]:
    """Say the promote step's decisions, a sentence a task, as ``guanxi promote`` does (pure).

    Parameters
    ----------
    summary : dict
        The promote step's summary: task -> ``promoted`` and the fields of
        :class:`pipelines.promote.Decision`.

    Returns
    -------
    list of str
        One line a task (:func:`pipelines.promote.decision_text`), or one saying no challenger
        was trained.
    """
    from pipelines.promote import Decision, decision_text

    if not summary:
        return ["no challenger was trained in this cycle: nothing to promote"]
    names = [f.name for f in fields(Decision)]
    return [
        decision_text(task, Decision(**{k: step[k] for k in names if k in step}), named=True)
        for task, step in summary.items()
    ]


_REPORT_SAID: Final = ("features_compared", "features_drifted", "drifted_share", "events_warning")
"""Keys of the drift step's summary its printed report said already; the record keeps them."""


def _kill_hook(step: str) -> None:
    """SIGKILL this process inside ``step`` when the test hook names it."""
    if os.environ.get(KILL_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def run_cycle(
    sources: connectors.Inputs,
    as_of: date,
    config: CycleConfig,
    home: Path,
    console: Console | None = None,
    as_json: bool = False,
) -> dict[str, Any]:
    """Run (or resume) the cycle of a day; the function a scheduler calls.

    Parameters
    ----------
    sources : pipelines.connectors.Inputs
        Where the events (and customers) are read from.
    as_of : datetime.date
        The cycle's day.
    config : CycleConfig
        Settings.
    home : pathlib.Path
        ``GUANXI_HOME`` (tracking is configured and checked here).
    console : rich.console.Console, optional
        Progress output, with the warning, before the first step that keeps a score or value
        table, that the tables go unsigned when ``GUANXI_STORE_KEY`` is not set.
    as_json : bool, default False
        Print each finished step's summary as one line of JSON (``step: {...}``) rather than
        as lines to read (:func:`readable`).

    Returns
    -------
    dict
        The record kept in the store: ``as_of``, ``steps`` (step -> ``done`` time and
        ``summary``) and ``complete``.

    Raises
    ------
    features.events.EventsValidationError
        If the inputs have errors (nothing of the step is written).
    CycleError
        If ``as_of`` is after today, no customer has an event on or before it (nothing of the
        day is written), the server reload fails, the drift report cannot be kept, or a
        champion's files are missing (:class:`models.versions.ModelFilesMissingError`, said
        with what to run). A champion trained on another feature set is no stop: the value and
        score steps leave it out, saying so, and the retrain step retrains it (of a task in
        ``--tasks``; the value step's note says what to run for the churn champion of another).
    CycleRunningError
        If another process runs the cycle of the same day (this one does nothing).
    models.registry.TrackingUnavailableError
        If the tracking server does not answer.
    """
    from models.registry import check_tracking, configure_tracking

    console = console or Console()
    future = after_today(as_of)
    if future is not None:  # was run, its snapshot and values kept, as features build refuses
        raise CycleInputError(f"{future}; nothing written")
    check_tracking(configure_tracking(home))
    run = _Run(sources, as_of, config, home, console)
    with _day_lock(run.store.record_path("cycle", as_of).with_suffix(".lock"), as_of):
        return _run_steps(run, sources, as_of, console, as_json)


def _run_steps(
    run: _Run, sources: connectors.Inputs, as_of: date, console: Console, as_json: bool
) -> dict[str, Any]:
    """Run the steps of a day not recorded as done, recording each (:func:`run_cycle`).

    Before the first step that keeps a score or value table (:data:`KEEPS_TABLES`) it warns when
    ``GUANXI_STORE_KEY`` is not set (:func:`pipelines.console.warn_unsigned`): said before the
    run, the warning came before "cycle not run" (the tracking server down, the day running
    elsewhere) and before a snapshot step that refused the day with nothing written.
    """
    from pipelines.console import quiet_libraries, warn_unsigned

    store = run.store
    record = store.read_record("cycle", as_of) or {
        "as_of": as_of.isoformat(),
        "events": sources.events.label,
        "steps": {},
        "complete": False,
    }
    steps: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        name: getattr(run, name) for name in STEPS
    }
    started = record.get("events")
    if record["steps"] and started != sources.events.label:  # the done steps stand, unsaid
        console.print(
            f"note: the cycle of {as_of} was started with the events {started}: its steps done "
            f"({', '.join(record['steps'])}) stand and are not run again with "
            f"{sources.events.label}; a fresh GUANXI_HOME runs every step with these"
        )
    scored = record["steps"].get("score")  # the first step of each task: done for these tasks
    began = list(scored["summary"]) if scored else []
    left = [task for task in run.config.tasks if began and task not in began]
    if left:  # were "done already" without a word: the day never scored them
        console.print(
            f"note: the cycle of {as_of} was started for {', '.join(began)}: its steps done "
            f"({', '.join(record['steps'])}) stand and did not run for {', '.join(left)} "
            f"(`guanxi score --tasks {','.join(left)} --as-of {as_of} --events PATH` scores "
            "them); a fresh GUANXI_HOME runs every step for them"
        )
    warned = False
    for name, step in steps.items():
        if name in record["steps"]:
            done = record["steps"][name]["done"]
            if as_json:  # was the text line below, which no script reading "step: {...}" parses
                console.print(f"{name}: {json.dumps({'done_already': done})}", highlight=False)
            else:  # was the raw ISO time
                console.print(f"{name}: done already ({done[:16].replace('T', ' ')} UTC)")
            continue
        console.rule(f"{name} ({as_of})")
        if name in KEEPS_TABLES and not warned:  # once, where the first table is kept
            warn_unsigned(
                console,
                "each score and value table the cycle keeps",
                "computes those scores again and does not serve the values",
                skip=None,  # the cycle keeps its tables: it has no --no-store
            )
            warned = True
        try:  # a spinner while the step runs (seconds to minutes, silent before); Rich draws
            # it only on a terminal, so CI and cron logs get the step's lines alone
            with quiet_libraries(), console.status(f"running the {name} step of {as_of}"):
                summary = step(record)
        except FeatureSetMismatchError as exc:  # was a traceback, with no word of resuming
            raise CycleError(str(exc)) from exc
        _kill_hook(name)
        record["steps"][name] = {"done": datetime.now(UTC).isoformat(), "summary": summary}
        store.write_record("cycle", as_of, record)
        if as_json:
            console.print(f"{name}: {json.dumps(brief(summary), default=str)}")
        else:
            if name == "promote":
                lines = promote_lines(summary)
            else:  # the drift step's report said its counts: "14 of 82 ... drifted (17.1%)"
                shown = {k: v for k, v in summary.items() if k not in _REPORT_SAID}
                lines = readable(brief(shown if name == "drift" else summary))
            for line in lines:
                console.print(line, highlight=False, markup=False)
    if not record["complete"]:
        record["complete"] = True
        store.write_record("cycle", as_of, record)
    return record


def _kept(day: date, again: str | None) -> tuple[str, str]:
    """Say which steps of the day's cycle are kept after a stop, and how to go on.

    Returns the first step not done (the one stopped in) and the sentence. ``again`` ends the
    sentence of a stop before any step finished ("run the same command again <again>"); None
    ends it at what is kept, for a refusal that says itself what to give instead
    (:class:`CycleInputError`: "choose a later --as-of" was followed by "run the same
    command again once this is put right").
    """
    from serving.settings import get_settings

    store = get_settings().store()
    record = store.read_record("cycle", day) or {}
    done = list(record.get("steps", {}))  # "the steps before it" were said of none, too
    stopped = next((step for step in STEPS if step not in done), STEPS[-1])
    if done:
        steps = ", ".join(done)
        return (
            stopped,
            f"The steps before it ({steps}) are kept; run the same command again to resume.",
        )
    lock = store.record_path("cycle", day).with_suffix(".lock")
    # was "nothing is kept" beside the lock a fresh home was made for (see _day_lock)
    left = f", only the day's lock file ({lock}, empty: no sign of a run)" if lock.is_file() else ""
    rerun = f"; run the same command again {again}" if again is not None else ""
    return stopped, f"No step had finished: no step's work is kept{left}{rerun}."


def cycle_command(
    events: connectors.Events,
    as_of: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="The cycle's day (UTC).")],
    customers: connectors.Customers = None,
    tasks: Annotated[
        str, typer.Option(help="Comma-separated tasks (default: every task).")
    ] = ",".join(task_names()),
    horizon: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Label window of retrained models, in days (default: each champion's, else "
            f"{HORIZON_DAYS}); a champion of another horizon is not retrained, said.",
        ),
    ] = None,
    trials: Annotated[int, typer.Option(min=1, help="Optuna trials per retraining.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the retraining.")] = 0,
    max_model_age: Annotated[
        int, typer.Option(min=0, help="Retrain a champion trained more days ago than this.")
    ] = CycleConfig.max_model_age_days,
    max_drifted_share: Annotated[
        float,
        typer.Option(
            help="Retrain when more than this share of the compared features drifted (0 to 1: "
            "0.25 for 25%)."
        ),
    ] = CycleConfig.max_drifted_share,
    value_horizon: Annotated[
        int, typer.Option(min=1, help="Horizon of the value table, in days.")
    ] = CycleConfig.value_horizon_days,
    reload_url: Annotated[
        str | None,
        typer.Option(
            help="Base URL of a running guanxi server to reload (POST /v1/admin/reload with the "
            "admin key of GUANXI_API_KEYS, which this command's environment needs too)."
        ),
    ] = None,
    events_table: connectors.EventsTable = None,
    events_query: connectors.EventsQuery = None,
    customers_table: connectors.CustomersTable = None,
    customers_query: connectors.CustomersQuery = None,
    mapping: connectors.MappingFile = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print each step's summary as one line of JSON (step: {...}), for scripts.",
        ),
    ] = False,
) -> None:
    """Run the day's cycle: snapshot, value, scores, drift, retraining, promotion, reload."""
    from models.registry import TrackingUnavailableError
    from pipelines.score import parse_tasks
    from serving.settings import get_settings

    console = Console(log_path=False)  # progress lines need the width, not train.py:257
    sources = connectors.inputs(
        events, events_table, events_query, customers, customers_table, customers_query, mapping
    )
    config = CycleConfig(
        tasks=tuple(parse_tasks(tasks)),
        horizon=horizon,
        trials=trials,
        seed=seed,
        max_model_age_days=max_model_age,
        max_drifted_share=max_drifted_share,
        value_horizon_days=value_horizon,
        reload_url=reload_url,
    )
    if not 0 <= max_drifted_share <= 1:  # 25 (for 25%) was said only to be "<= 1"
        raise typer.BadParameter(
            f"{max_drifted_share:g} is not a share: the share of the compared features that "
            "drifted lies between 0 and 1 (0.25 for 25%)",
            param_hint="--max-drifted-share",
        )
    if reload_url and admin_key() is None:  # said before the work, not after it
        raise typer.BadParameter(
            "the reload needs an admin key in GUANXI_API_KEYS (key:admin); set it, or leave "
            "--reload-url out",
            param_hint="--reload-url",
        )
    day = as_of.date()
    try:
        record = run_cycle(sources, day, config, get_settings().home, console, as_json)
    except TrackingUnavailableError as exc:
        console.print(f"[red]cycle not run:[/red] {exc}")
        raise typer.Exit(2) from exc
    except CycleRunningError as exc:  # its steps done are the running one's: not said as kept
        console.print(f"[red]cycle not run:[/red] {exc}")
        raise typer.Exit(1) from exc
    except (EventsValidationError, CycleError) as exc:
        _, kept = _kept(day, None if isinstance(exc, CycleInputError) else "once this is put right")
        console.print(f"[red]cycle stopped:[/red] {escape(str(exc))}\n{kept}")
        raise typer.Exit(1) from exc
    except KeyboardInterrupt as exc:  # was click's "Aborted!" alone, the drift step's note lost
        for note in getattr(exc, "__notes__", []):  # what the drift step undid
            console.print(f"[red]{escape(note)}[/red]")
        step, kept = _kept(day, "to start it")
        console.print(f"[red]cycle interrupted in the {step} step:[/red] {kept}")
        raise
    console.print(f"cycle of {day} complete: {', '.join(s for s in STEPS if s in record['steps'])}")
