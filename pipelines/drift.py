"""``guanxi drift``: feature and score drift since training, and the live performance of old scores.

For a day ``D`` (``--as-of``, default the newest snapshot in the store) the report holds:

Feature drift
    Per feature column (:func:`models.drift.feature_drift`: PSI, KS, Wasserstein, flagged only
    when material *and* beyond sampling noise) between the snapshot the champion was tested on
    and the snapshot of ``D``. The reference day is the champion's held-out test cutoff, which
    its metadata records (``params.cutoffs.test``; or the version tags ``as_of - horizon``,
    the same day by :func:`training.datasets.plan_cutoffs`). The snapshot of that day is read from
    the store, or built from the events (``--events``, else the store's history of ``D``, which
    holds every event up to ``D``) and the customers file the snapshot of ``D`` was built from,
    and then kept in the store; a snapshot of no customer (events with none on or before its
    day) is refused, not kept. ``--events`` that end more than
    :data:`features.freshness.STALE_EVENTS_DAYS` days before ``D`` are refused before anything is
    built (:func:`stale_events`); 2 days short or more, the report warns
    (:meth:`DriftInputs.events_warning`) and the snapshots built of days after their end are not
    kept (the server would serve the day's as its features).
Score drift
    Per task (:func:`models.drift.score_drift`): the champion's scores on the reference snapshot
    against its score table of ``D`` (from the store, else computed).
Live performance
    Every score table in the store whose window ``(c, c + horizon]`` has passed by ``D`` is
    matched with what happened (:mod:`models.performance`: the task's own labels from the
    events) and measured: ROC-AUC, PR-AUC, top-decile lift, precision in the top decile, Brier,
    log loss, ECE and the reliability bins, next to the model card's held-out figures (the
    version's tags); a table scored by a version trained after its day is noted (the version
    has seen its outcomes). For customer value, every value table whose horizon has passed: the
    forecast error of its expected purchases. Tables of days after ``D`` (a report of a past
    day, or a cycle backfilling one) are left out: they were not there on ``D``. A table whose
    window ends after the events' last day is not measured, a note saying so (the days missing
    would read as no order).

The report is printed (rich), logged to MLflow as a run of the experiment ``guanxi-drift``
(:func:`models.registry.log_drift_report`), written as a self-contained HTML page (atomically;
every value escaped by Jinja2's autoescape; :mod:`serving.ui.drift` renders it, the same view the
reviewer page ``/ui/drift`` shows) and, last, kept in the store (``<home>/drift/as_of=D.json``)
for the reviewer page: all or nothing (:func:`keep_report`), so the store never holds a report
whose page was not written. An ``--out`` in a folder that is missing or not writable is refused
before the report is computed. A champion trained as of a day after ``D`` (``D`` between its test
day and its training day) is compared with a note that it has seen the events that followed ``D``
(:func:`trained_later`, which ``guanxi cycle`` says of its scores too). A version registered but
whose files are gone (:class:`models.versions.ModelFilesMissingError`) is noted with where it
was looked for and what to run, not compared (a champion) or not measured (a score table's
version). A champion trained on another feature set than this guanxi builds is not compared
either (its scores of these snapshots would not be the ones it was tested with; ``guanxi score``
refuses it), the note saying so; the score tables it made are measured.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Final

import mlflow
import pandas as pd
import polars as pl
import typer
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from features import contracts
from features.contracts import FEATURE_SET_VERSION, FEATURES, MISSING, counted
from features.database import is_database
from features.events import EventsValidationError, read_customers, read_events
from features.freshness import BEYOND_A_WEEK, EventsEnd, history_through, last_event_day
from features.snapshot import build_snapshot
from features.sources import Source
from features.store import SnapshotNotFoundError, SourceFile, Store, atomic_write
from models import registry
from models.customer_rows import RepeatedCustomersError
from models.definitions import DefinitionUnreadableError, recorded_int
from models.drift import (
    DriftThresholds,
    drifted_first,
    feature_drift,
    format_measure,
    score_drift,
)
from models.performance import live_metrics, match_outcomes, outcomes, purchases_forecast_error
from models.registry import LoadedModel, nest_metrics
from models.scoring import FeatureSetMismatchError, check_feature_set, score_snapshot
from models.tasks import CANDIDATE_INPUTS, TARGET_PREFIX, get_task, task_names
from models.versions import ModelFilesMissingError, load_version
from pipelines.days import after_today, history_start, no_event_by
from pipelines.score import _same_source, stored_snapshot  # score.py has the only source check

__all__ = [
    "PROFILE",
    "ChampionUnreadableError",
    "DriftInputs",
    "EmptySnapshotError",
    "ReportNotKeptError",
    "champions_replaced",
    "compared_before",
    "customers_inputs",
    "drift_command",
    "drift_report",
    "feature_set_reason",
    "keep_report",
    "lacks_attributes",
    "not_whole_days",
    "nothing_to_measure",
    "print_report",
    "reference_day",
    "some_customers",
    "stale_events",
    "trained_later",
]

PROFILE: Final = tuple(n for n, f in FEATURES.items() if f.group == "profile")
"""The profile features: those a customers file gives (``features.contracts`` group ``profile``)."""


def reference_day(model: LoadedModel) -> date:
    """Return the day of the snapshot a model was tested on: the reference of its drift.

    Parameters
    ----------
    model : models.registry.LoadedModel
        A registered model version.

    Returns
    -------
    datetime.date
        ``params.cutoffs.test`` of its metadata, else its ``as_of`` tag minus its ``horizon`` tag.

    Raises
    ------
    ValueError
        If the version records neither.
    models.definitions.DefinitionUnreadableError
        If it is read from a ``horizon`` tag that is no whole number of days (a ValueError).
    """
    params = model.bundle.metadata.get("params") or {}
    test = (params.get("cutoffs") or {}).get("test")
    if test:
        return date.fromisoformat(str(test)[:10])
    as_of, horizon = model.tags.get("as_of"), model.tags.get("horizon")
    if as_of and horizon:  # was int(float("ninety"))'s traceback
        return date.fromisoformat(as_of[:10]) - timedelta(
            days=_recorded_days(model, "horizon", "tag horizon", horizon)
        )
    raise ValueError(
        f"{model.name} version {model.version} records neither its test cutoff nor as_of and "
        "horizon: cannot tell which snapshot it was trained on"
    )


def trained_later(trained: str | None, day: date, redo: str | None = None) -> str | None:
    """Say when a model was trained as of a later day than the one it scores (pure).

    A champion's test day is its training day minus its horizon, so a report of a day between
    the two compares a day whose following events the model has seen.

    Parameters
    ----------
    trained : str or None
        The model version's ``as_of`` tag (its training day), if any.
    day : datetime.date
        The day scored, or compared.
    redo : str, optional
        What to do instead, ``{trained}`` standing for the training day; default: a report of a
        day on or after it (``guanxi drift --as-of``). ``guanxi cycle`` says its own.

    Returns
    -------
    str or None
        The note (the model has seen what followed ``day``, so its scores of that day, and the
        live performance measured on them, look better than a model of that day would do), or
        None when it was trained on or before ``day``.
    """
    if not trained or date.fromisoformat(trained[:10]) <= day:
        return None
    since = trained[:10]
    instead = (redo or "give an --as-of on or after {trained}").format(trained=since)
    return (
        f"trained as of {since}, after {day}: it has seen events that followed this day, "
        f"so its scores of {day} and their live performance look better than they are; {instead}"
    )


def feature_set_reason(trained_on: str | None) -> str | None:
    """Say that a champion was trained on another feature set than this guanxi builds (pure).

    After an upgrade that changes the features, ``guanxi cycle`` stopped at its value or score
    step on such a champion, saying to retrain and promote it; its retrain step now does that
    itself, and says this as its reason (and ``guanxi drift``, in the cycle, of the champion it
    does not compare).

    Parameters
    ----------
    trained_on : str or None
        The champion's feature-set version (None when unknown).

    Returns
    -------
    str or None
        ``trained on feature set version <old>, this guanxi builds <new>``, or None when it is
        this guanxi's (or unknown).
    """
    if trained_on is None or trained_on == FEATURE_SET_VERSION:
        return None
    return f"trained on feature set version {trained_on}, this guanxi builds {FEATURE_SET_VERSION}"


class EmptySnapshotError(ValueError):
    """A snapshot a report needs holds no customer; its message names the day and what to do."""


def _no_customers(
    day: date, stored: date | None, *, skipped: dict[tuple[str, str], list[date]]
) -> str:
    """Say why the snapshot of ``day`` is not built without a customers table.

    ``stored`` is the report's day when the store holds its snapshot, built without one;
    ``skipped`` the customers files recorded but not read, each with why and the snapshots
    recording it (:meth:`DriftInputs.customers`). Only ``guanxi drift`` refuses it: a cycle's
    drift step builds it without them.
    """
    profile = ", ".join(PROFILE)
    # each file skipped says why: its column mapping, a database, gone, changed since
    unread = "; ".join(
        f"{path} (recorded with the store's {_recorded_on(days)}) {why}"
        for (path, why), days in skipped.items()
    )
    fix = "pass --customers PATH" + "".join(  # the file as it is now, read when given
        f" (--customers {path} reads it as it is now)" for path, why in skipped if why == _CHANGED
    )
    if unread and stored is not None:
        why = (
            f"the store's snapshot of {stored} records a customers file that cannot be read: "
            f"{unread}"
        )
    elif unread:
        why = (
            f"the newest customers file the store records cannot be read: {unread} (an older "
            "snapshot's file is not read in its place: its attributes would be older)"
        )
    elif stored is not None:  # it records none at all: one recorded and gone is in skipped
        why = (
            f"the store's snapshot of {stored} records no customers file (one built with their "
            "attributes would measure drift against it)"
        )
    else:  # none records one at all (qa46 L1: "that is still there" read as a file gone)
        why = "no snapshot in the store records a customers file"
    return (
        f"cannot build the snapshot of {day} without the customers' attributes: no --customers "
        f"given, and {why}; its profile features ({profile}) would all read as missing: nothing "
        f"kept; {fix}"
    )


def _recorded_on(days: list[date]) -> str:
    """Say which snapshots record a file: the one day, or the newest and how many older days."""
    if len(days) == 1:
        return f"snapshot of {days[0]}"
    older = "one older day" if len(days) == 2 else f"{len(days) - 1} older days"
    return f"snapshots of {max(days)} and {older}"


_CHANGED = "has changed since (its size or modification time is not the one recorded)"
"""Why a recorded customers file is not read when it was rewritten after it was recorded."""


def _unreadable_customers(source: SourceFile) -> str | None:
    """Say why a customers file a stored snapshot records is not read without --customers.

    None when it is read: a file still there, unchanged since it was recorded (its size and
    modification time, as ``guanxi score`` checks a stored snapshot's inputs), read without a
    column mapping.
    """
    if source.mapping is not None:
        return "was read with a column mapping (--mapping), which guanxi drift does not take"
    if is_database(source.path):
        return "is a database table or query, which guanxi drift does not read"
    if not Path(source.path).exists():
        return "is gone"
    if not _same_source(Source(source.path), source):  # size or mtime not as recorded
        return _CHANGED
    return None


def lacks_attributes(frame: pl.DataFrame) -> bool:
    """Tell whether a snapshot was built without the customers' attributes.

    Parameters
    ----------
    frame : polars.DataFrame
        A snapshot.

    Returns
    -------
    bool
        True when it holds customers and every profile feature is missing on every row, but the
        flags built as False without a customers table (``is_business``: one value on every row).
    """
    profile = [n for n in PROFILE if n in frame.columns]
    missing = [n for n in profile if frame[n].null_count() == frame.height]
    return (
        frame.height > 0
        and bool(missing)
        and all(n in missing or frame[n].n_unique() == 1 for n in profile)
    )


def _profile_left_out(
    inputs: DriftInputs, profile: list[str], day: date, lacking: list[date]
) -> str:
    """Say that the profile features are not compared against ``day``'s snapshot, why, the fix.

    A day built without the customers' attributes for the report alone (a cycle without
    ``--customers``), and the cycle's own day (its steps read that snapshot already), are fixed
    by the next cycle run with it, not by that day's again (each step says "done already", the
    day's comparison stays without them); another stored day by building that day again with
    them ("pass --customers PATH" builds no stored day again).
    """
    stored = set(inputs.store.list_snapshots())
    whys, fixes = [], []
    for d in lacking:
        build = f"(`guanxi features build --events PATH --customers PATH --as-of {d}`)"
        if d in inputs.attributeless:
            whys.append(
                f"the snapshot of {d} was built without the customers' attributes and not kept"
            )
            fix = "run the next cycle with --customers PATH"
        elif d in stored and inputs.cycle and d == inputs.day:  # scored and valued already
            whys.append(f"the store's snapshot of {d} was built without the customers' attributes")
            fix = "run the next cycle with --customers PATH"
        elif d in stored:  # named once when it is the one
            whys.append(f"the store's snapshot of {d} was built without the customers' attributes")
            it = "it" if len(lacking) == 1 else f"the store's snapshot of {d}"
            fix = f"build {it} again with them {build}"
        else:  # built for the report alone, from a --customers file without them
            whys.append(f"the snapshot of {d} was built without the customers' attributes")
            fix = "pass --customers PATH with their attributes"
        if fix not in fixes:
            fixes.append(fix)
    return (
        f"profile features ({', '.join(profile)}) not compared against the snapshot of {day}: "
        f"{', '.join(whys)}: {'; '.join(fixes)}"
    )


class DriftInputs:
    """Events, customers and snapshots for one report, each read or built at most once.

    Parameters
    ----------
    store : features.store.Store
        The store under ``GUANXI_HOME``.
    day : datetime.date
        The day of the report.
    events : polars.DataFrame, optional
        Validated events; default: the store's history of ``day``.
    customers : polars.DataFrame, optional
        Validated customers; default: the file the snapshot of ``day`` was built from, if any.
    cycle : bool, default False
        The report is ``guanxi cycle``'s, whose snapshot step built the day's snapshot from the
        events given: its notes say so (:meth:`partial`), a ``guanxi drift`` report's do not.
    source : str, optional
        The file (or table) ``events`` came from, named in :meth:`events_warning` as the other
        commands name it; None leaves it out.
    events_file, customers_file : pathlib.Path or features.store.SourceFile, optional
        The files (or tables) ``events`` and ``customers`` were read from, recorded with each
        snapshot kept (:meth:`features.store.Store.write_snapshot`), as the other commands record
        theirs: a later report without ``--customers`` reads the customers file recorded.
    """

    def __init__(
        self,
        store: Store,
        day: date,
        events: pl.DataFrame | None = None,
        customers: pl.DataFrame | None = None,
        *,
        cycle: bool = False,
        source: str | None = None,
        events_file: Path | SourceFile | None = None,
        customers_file: Path | SourceFile | None = None,
    ) -> None:
        self.store, self.day, self.cycle, self.source = store, day, cycle, source
        self._events_file, self._customers_file = events_file, customers_file
        self._events, self._customers = events, customers
        self._given = events is not None  # the events' source, said of an empty snapshot
        self._customers_given = customers is not None
        self._customers_looked = False  # the recorded customers file, looked for once
        self.customers_source: str | None = None
        """The customers file a stored snapshot records, read without ``--customers``."""
        self.customers_recorded_with: date | None = None
        """The day of the stored snapshot recording :attr:`customers_source`."""
        self._skipped: dict[tuple[str, str], list[date]] = {}  # recorded, not read: why
        self._snapshots: dict[date, pl.DataFrame] = {}
        self.built: set[date] = set()
        """The days whose snapshot was built from the events (the store held none)."""
        self.attributeless: set[date] = set()
        """The days of :attr:`built` built without the customers' attributes, for a cycle run
        without ``--customers``, and not kept: the report leaves their profile features out
        (:func:`lacks_attributes`)."""
        self.refused: set[date] = set()
        """The days whose snapshot was not built for want of the customers' attributes (no
        ``--customers`` given, none recorded readable: :func:`_no_customers`); the fix said is
        ``--customers PATH``."""
        self.refused_champions: set[str] = set()
        """The tasks whose champion was not compared as its test day is in :attr:`refused`
        (:func:`drift_report`); a past score table's day refused is not one: a champion not
        compared for another reason keeps its own advice."""
        self.unkept: set[date] = set()
        """The days of :attr:`built` not kept in the store: the events end 2 days or more before
        each (:meth:`snapshot`)."""
        self._through: tuple[date | None] | None = None  # the events' last day, once read
        self._models: dict[tuple[str, str], LoadedModel] = {}
        self.missing: dict[str, ModelFilesMissingError] = {}
        """The tasks whose champion (:meth:`champion`) is registered but its files are gone."""
        self.aliased: dict[tuple[str, str], str | None] = {}
        """The version each ``(task, alias)`` looked up by :meth:`champion` points at, files
        gone or not; None: no version has the alias. What ``guanxi drift`` compares a kept
        report's champions with, without asking the registry again."""
        self.other_features: dict[str, str] = {}
        """The tasks whose champion was trained on another feature set, and what says so."""

    def events(self) -> pl.DataFrame:
        """Return the events (read from the store's history on first use).

        Returns
        -------
        polars.DataFrame
            Validated events up to the report's day at least.

        Raises
        ------
        FileNotFoundError
            If no events were given and the store holds no history for the day.
        """
        if self._events is None:
            path = self.store.history_path(self.day)
            if not path.is_file():
                raise FileNotFoundError(self._no_history(path))
            self._events = pl.read_parquet(path)
        return self._events

    def _no_history(self, path: Path) -> str:
        """Say why the events are missing and which command gives them."""
        day, build = self.day, f"`guanxi features build --events PATH --as-of {self.day}`"
        if stored_snapshot(self.store, day) is not None:
            return (
                f"the store holds no history for {day} ({path}), the events the report reads: "
                f"pass --events PATH (the events up to {day} at least), or build the snapshot "
                f"again with its history ({build})"
            )
        days = self.store.list_snapshots()
        kept = (
            f"; the store's snapshots: {', '.join(d.isoformat() for d in days[-5:])}"
            f"{' (the newest five)' if len(days) > 5 else ''}"
            if days
            else "; the store holds no snapshot yet"
        )
        return (
            f"the store holds no snapshot of {day}, nor the history to build it ({path}): pass "
            f"--events PATH, or build it first ({build}){kept}"
        )

    def events_through(self) -> date | None:
        """Return the events' last day (UTC), read from every event once.

        The store's history of the day, not read yet, gives its last event from the file
        without reading it whole (:meth:`events_warning` asks of every report).

        Returns
        -------
        datetime.date or None
            :func:`features.freshness.last_event_day` of the events (those after the report's
            day too); None when there is no event.

        Raises
        ------
        FileNotFoundError
            If no events were given and the store holds no history for the day.
        """
        if self._through is None and self._events is None:  # the store's history, unread
            path = self.store.history_path(self.day)
            if not path.is_file():
                raise FileNotFoundError(self._no_history(path))
            self._through = (history_through(path),)
        if self._through is None:
            self._through = (last_event_day(self.events()),)
        return self._through[0]

    def events_warning(self) -> str | None:
        """Say that the events end a few days before the report's day (qa49 H2, qa43 H1).

        ``guanxi drift`` refuses events given (``--events``) that end more than
        :data:`features.freshness.STALE_EVENTS_DAYS` days before (:func:`stale_events`), and so
        does ``guanxi cycle``'s snapshot step, which warns of 2 to 7 days too (``guanxi features
        build``, ``score`` and ``value`` refuse and warn alike). Without events given the report
        reads the store's history of the day, the events its snapshot was built from (by one of
        those of an export short of the day, or before they refused): it is said the same, and
        beyond :data:`features.freshness.STALE_EVENTS_DAYS` days that the store's snapshot of the
        day, the one served, was built from events ending on their last day (the report is
        made: that snapshot is the store's already). Either way the feature drift figures
        are affected: recency-type features read the missing days as inactivity. Call it once
        the snapshots are read: it says which built from them were not kept (:attr:`unkept`).

        Returns
        -------
        str or None
            For events that end 2 days or more before the day: their last day, what the days
            after it read as (the feature drift figures too), the snapshots built from them not
            kept in the store (the day's first), how to build the day's from events that reach
            it and, for events given, the ``--as-of`` of an early export; None when they end a
            day before (an export of the morning of the day) or later.
        """
        if not self._given and not self.store.history_path(self.day).is_file():
            return None  # every snapshot the store's, nothing read from events
        through = self.events_through()
        if through is None or not (end := EventsEnd(through, self.day, self.source)).short:
            return None
        day, behind = self.day, end.behind
        build = (
            f"from events that reach {day} (`guanxi features build --events PATH --as-of {day}`, "
            f"PATH an export up to {day}"
        )
        drifts = (  # qa43 L3: 0.165 of PSI at 3 days short, read as drift
            "the feature drift figures too (recency-type features read the missing days as "
            "inactivity, not drift)"
        )
        if not self._given:  # the store's history: its snapshot of the day is the served one
            if end.stale:
                return (
                    f"the store's snapshot of {day} was built from events ending on {through}, "
                    f"{counted(behind, 'days')} before {day} ({BEYOND_A_WEEK}): it is what the "
                    f"server serves as that day's features, every customer inactive since "
                    f"{through}, and the feature drift figures read those days as inactivity "
                    f"(recency-type features), not drift: build it again {build})"
                )
            return (
                f"the store's history of {day} (the events its snapshot was built from) ends on "
                f"{through}, {counted(behind, 'days')} before {day}: the days after it read as "
                "no activity (recency longer, counts short) in that snapshot and what is read "
                f"from them, {drifts}: build the snapshot of {day} again {build})"
            )
        said = (  # named and "before --as-of", as features build, score, value and cycle say it
            f"{end.ended()}: the days "
            "after it read as no activity (recency longer, counts short) in what is built and "
            f"read from them, {drifts}"
        )
        if day in self.unkept:
            others = sorted(self.unkept - {day})
            also = f" (and those of {', '.join(str(d) for d in others)})" if others else ""
            said += (
                f"; the snapshot of {day} built from them{also} is not kept in the store (it "
                f"would be served as that day's features): build it {build}, not these events)"
            )
        elif self.unkept:
            days = ", ".join(str(d) for d in sorted(self.unkept))
            said += f"; the snapshots built from them of {days} are not kept in the store"
        return f"{said}; if the export is early, pass --as-of {through}"

    def partial(self, *, ended: bool = True) -> list[str]:
        """Say how the events and customers given fall short of the store's snapshot of the day.

        A partial extract (``--events`` of some customers or of the last weeks, ``--customers``
        of one region) gave no word: the snapshots built from it and the outcomes read from it
        were the extract's, and a reviewer read drift that was only its shape. Only inputs given
        are checked, against the store's snapshot of the report's day (and its history, the
        events that snapshot was built from); without one there is nothing to check against.
        Each note says what the extract shaped: the snapshots built from it (:attr:`built`, so
        call this once they are read), else only what is read from the events (outcomes).

        Parameters
        ----------
        ended : bool, default True
            Say where the events end, if before the day; :func:`drift_report` says it in the
            report's :meth:`events_warning` instead, when there is one.

        Returns
        -------
        list of str
            One note per shortfall, with counts: the snapshot's customers with no event in
            ``--events`` up to the day, the days the events start after the history's first
            event or end before the report's day, the snapshot's customers ``--customers``
            lacks; empty when the inputs cover the snapshot.
        """
        if (not self._given and not self._customers_given) or stored_snapshot(
            self.store, self.day
        ) is None:
            return []
        day, notes = self.day, []
        ids = self.store.read_snapshot(day).select("customer_id")
        whose = f"the {counted(ids.height, 'customers')} of the store's snapshot of {day}"
        built = ", ".join(d.isoformat() for d in sorted(self.built))
        shape = (  # was "drift ... shows the extract" when every snapshot was the store's
            f"the snapshots built from them ({built}), and drift and live performance measured "
            "on them, show the extract, not those customers"
            if built
            else "drift compares the store's snapshots, none built from them; what is read from "
            "them (the outcomes of live performance, the value forecast's error) shows the "
            "extract, not those customers"
        )
        if self._given:
            events = self.events()
            upto = events.filter(pl.col("ts").dt.date() <= day)
            lacking = ids.join(upto.select("customer_id").unique(), on="customer_id", how="anti")
            if lacking.height:
                named = some_customers(lacking["customer_id"])
                notes.append(
                    f"partial --events: {counted(lacking.height, 'customers')} of {whose} have "
                    f"no event in them up to {day} ({named}); {shape}: pass the events of every "
                    "customer"
                )
            first, last = events["ts"].min(), events["ts"].max()
            if isinstance(first, datetime):
                kept = history_start(self.store.history_path(day))
                if kept is not None and first.date() > kept.date():
                    notes.append(
                        f"partial --events: they start on {first:%Y-%m-%d}, the events the "
                        f"snapshot of {day} was built from on {kept:%Y-%m-%d} "
                        f"({(first.date() - kept.date()).days:,} days before); {shape}: pass "
                        "the events from the first day"
                    )
            if ended and isinstance(last, datetime) and last.date() < day:
                cycle = " (the day's, by this cycle's snapshot step)" if self.cycle else ""
                notes.append(  # qa43 L1: was "1 days", and the cycle's said in guanxi drift
                    f"partial --events: they end on {last:%Y-%m-%d}, "
                    f"{counted((day - last.date()).days, 'days')} before {day}: the days after "
                    f"it read as no activity, in the snapshots built from them{cycle} and the "
                    f"outcomes read from them; pass the events up to {day}"
                )
        people = self._customers if self._customers_given else None
        if people is not None:
            lacking = ids.join(people.select("customer_id"), on="customer_id", how="anti")
            if lacking.height:
                named = some_customers(lacking["customer_id"])
                built_with = (
                    f"the snapshots built with it ({built}) lack their attributes; drift and "
                    "live performance measured on them show the extract, not those customers"
                    if built
                    else "no snapshot was built with it (the store's were read), so nothing "
                    "here lacks their attributes; a snapshot built with it would"
                )
                notes.append(
                    f"partial --customers: {counted(lacking.height, 'customers')} of {whose} are "
                    f"not in it ({named}): {built_with}: pass every customer"
                )
        return notes

    def customers(self) -> pl.DataFrame | None:
        """Return the customers table: the one given, else the file a stored snapshot read.

        Without ``--customers`` the file recorded with the day's snapshot is read; when the
        store holds no snapshot of the day, the one recorded with the newest stored snapshot
        that records one: the snapshots built are then as the store's. It is read only when
        :func:`_unreadable_customers` finds no reason not to (a file still there, unchanged
        since recorded, read without a column mapping, not a database); otherwise none is read
        and the refusal says why, an older snapshot's file never read in its place (its
        attributes would be older than the ones the store last recorded). A stored snapshot of
        the day that records none gives None (a snapshot built with attributes would measure
        drift against one without). :attr:`customers_source` names the file read
        (:meth:`customers_read` says it).

        Returns
        -------
        polars.DataFrame or None
            None when none is given nor recorded.

        Raises
        ------
        EmptySnapshotError
            If the file recorded breaks the contract: the message names it and the snapshot
            recording it, not ``--customers``.
        """
        if self._customers is None and not self._customers_looked:
            self._customers_looked = True
            recorded = self.store.list_snapshots()
            days = [self.day] if self.day in recorded else recorded[::-1]
            for day in days:
                source = self._recorded_customers(day)
                if source is None:
                    continue
                why = _unreadable_customers(source)  # read as recorded, or not
                if why is not None:  # refused: an older snapshot's file would be stale
                    self._skipped[(source.path, why)] = [
                        d
                        for d in days
                        if (s := self._recorded_customers(d)) and s.path == source.path
                    ]
                    break
                try:
                    self._customers = read_customers(source.path, now=datetime.now(UTC))
                except (EventsValidationError, OSError, ValueError) as exc:  # was as if given
                    raise EmptySnapshotError(
                        f"the customers file recorded with the store's snapshot of {day} "
                        f"({source.path}), read as no --customers was given: {exc}"
                    ) from exc
                self.customers_source, self.customers_recorded_with = source.path, day
                break
        return self._customers

    def _recorded_customers(self, day: date) -> SourceFile | None:
        """Return the customers file the store's snapshot of ``day`` records, if any."""
        try:
            return self.store.snapshot_info(day).customers
        except SnapshotNotFoundError:
            return None

    def customers_read(self) -> str | None:
        """Say which customers file a stored snapshot records was read, if one was (one line).

        Returns
        -------
        str or None
            The file, the stored snapshot recording it, that no ``--customers`` was given and
            that it is unchanged since (:meth:`customers`); None when none was read.
        """
        if self.customers_source is None:
            return None
        return (
            f"customers' attributes read from {self.customers_source}, the customers file "
            f"recorded with the store's snapshot of {self.customers_recorded_with} (no "
            "--customers given; unchanged since)"
        )

    def _no_event(self, events: pl.DataFrame, day: date) -> EmptySnapshotError:
        """Say that the snapshot of ``day`` is not built: no customer has an event by then."""
        given = "--events" if self._given else f"the store's history of {self.day}"
        later = ", or a later --as-of" if day == self.day else ""
        return EmptySnapshotError(
            f"cannot build the snapshot of {day}: {no_event_by(events, day)} in {given}: "
            f"nothing kept; pass --events reaching back to {day}{later}"
        )

    def snapshot(self, day: date) -> pl.DataFrame:
        """Return the snapshot of a day: the store's, else built from the events (and kept).

        One built from the events given (``--events``) that end 2 days or more before its day
        is not kept (qa49 H2: the server served it as the day's features, every customer
        inactive since the events' end): it is used for the report alone, and :attr:`unkept`
        holds its day. One built from the store's history is kept, as before.

        Parameters
        ----------
        day : datetime.date
            The snapshot day.

        Returns
        -------
        polars.DataFrame
            The snapshot.

        Raises
        ------
        EmptySnapshotError
            If it holds no customer: the store's (its file named), or one built from events
            with none on or before ``day`` (then not kept).
        """
        if day not in self._snapshots:
            if stored_snapshot(self.store, day) is not None:
                frame = self.store.read_snapshot(day)
                if frame.is_empty():  # was "column 'recency_days': cannot measure drift with 0"
                    raise EmptySnapshotError(
                        f"the store's snapshot of {day} holds no customer "
                        f"({self.store.snapshot_path(day)}): build it again from the events up "
                        f"to {day} (`guanxi features build --events PATH --as-of {day}`)"
                    )
            else:
                events = self.events()
                first = events["ts"].min()
                if not isinstance(first, datetime) or first.date() > day:  # before customers
                    raise self._no_event(events, day)
                people = self.customers()
                if people is None and not self.cycle:  # was kept, every attribute missing
                    stored = self.day if self.day in self.store.list_snapshots() else None
                    self.refused.add(day)  # its fix told by this, not by the note's words
                    raise EmptySnapshotError(_no_customers(day, stored, skipped=self._skipped))
                frame = build_snapshot(events, people, day)
                if frame.is_empty():  # was kept in the store, where later reports read it
                    raise self._no_event(events, day)
                through = self.events_through() if self._given else None
                if people is None:  # a cycle without --customers: the report's alone
                    self.attributeless.add(day)
                elif not self._given or (through is not None and (day - through).days < 2):
                    # the files read, recorded for a later report without --customers
                    recorded = self.customers_source
                    source = (
                        self._customers_file
                        if self._customers_given
                        else Path(recorded)
                        if recorded is not None
                        else None
                    )
                    self.store.write_snapshot(
                        frame,
                        day,
                        events=self._events_file if self._given else None,
                        customers=source,
                    )
                else:  # --events short of the day: the report's, not the store's
                    self.unkept.add(day)
                self.built.add(day)
            self._snapshots[day] = frame
        return self._snapshots[day]

    def without_attributes(self, day: date) -> bool:
        """Tell whether the snapshot of a day was built without the customers' attributes.

        What was recorded decides, not its rows (a customers file without the optional
        ``signup_ts`` and ``region``, its customers all of one type, is one with them): for one
        built here, whether it was built without a customers table (:attr:`attributeless`); for
        a stored one, whether the store records no customers file with it. Only a stored
        snapshot that records no source at all (stored before sources were recorded) is told by
        its rows (:func:`lacks_attributes`).

        Parameters
        ----------
        day : datetime.date
            The snapshot day (:meth:`snapshot`).

        Returns
        -------
        bool
            True when it was built without them.
        """
        frame = self.snapshot(day)
        if day in self.built:
            return day in self.attributeless
        info = self.store.snapshot_info(day)
        if info.events is None and info.customers is None and not info.unreadable:
            return lacks_attributes(frame)  # no source recorded
        return info.customers is None and "customers" not in info.unreadable

    def champion(self, task: str, alias: str) -> LoadedModel:
        """Load ``task@alias`` (without the feature-set check) and remember its version.

        Parameters
        ----------
        task : str
            Registered model name.
        alias : str
            Registry alias.

        Returns
        -------
        models.registry.LoadedModel
            The version.

        Raises
        ------
        models.registry.ModelNotFoundError
            If no version has the alias.
        ModelFilesMissingError
            If the version's files are gone.
        """
        try:
            loaded = load_version(task, alias=alias)
        except ModelFilesMissingError as exc:
            self.missing[task] = exc
            self.aliased[(task, alias)] = str(exc.version)
            raise
        except registry.ModelNotFoundError:
            self.aliased[(task, alias)] = None
            raise
        self._models[(task, loaded.version)] = loaded
        self.aliased[(task, alias)] = str(loaded.version)
        return loaded

    def model(self, task: str, version: str) -> LoadedModel:
        """Load a registered version once (without the feature-set check: old ones are read).

        Parameters
        ----------
        task : str
            Registered model name.
        version : str
            Version number.

        Returns
        -------
        models.registry.LoadedModel
            The version.

        Raises
        ------
        ModelFilesMissingError
            If the version's files are gone.
        """
        key = (task, version)
        if key not in self._models:
            self._models[key] = load_version(task, version=version)
        return self._models[key]


def some_customers(ids: pl.Series, shown: int = 3) -> str:
    """Name the first few of some customers, and count the rest (pure).

    Parameters
    ----------
    ids : polars.Series
        The customers' ids.
    shown : int, default 3
        How many are named.

    Returns
    -------
    str
        ``C0158, C0174, C0220 and 12 more``, or the ids alone when they are few.
    """
    first = ", ".join(str(i) for i in ids.head(shown))
    return f"{first} and {ids.len() - shown:,} more" if ids.len() > shown else first


_DERIVED: Final = ("tenure_days",)
"""The features the customers file changes besides the profile ones: ``tenure_days``, the
longer of the days since the first event and ``signup_tenure_days``
(:func:`features.snapshot.build_snapshot`)."""


def _customers_inputs(model: LoadedModel) -> list[str]:
    """List a champion's inputs the customers file gives or changes (:func:`customers_inputs`)."""
    return customers_inputs(model.bundle.feature_names)


def customers_inputs(feature_names: Iterable[str]) -> list[str]:
    """List a model's inputs that the customers file gives or changes, in its order.

    The profile features, the columns the file passes through (no registered feature, nor one
    worked out when scoring: :func:`pipelines.score.missing_inputs`) and :data:`_DERIVED`.

    Parameters
    ----------
    feature_names : iterable of str
        The model's inputs (``ModelBundle.feature_names``).

    Returns
    -------
    list of str
        Those of them the customers file gives or changes.
    """
    computed = {f.name for f in CANDIDATE_INPUTS}

    def given(name: str) -> bool:
        if name in _DERIVED:
            return True
        if name in FEATURES:
            return name in PROFILE
        registered = contracts.is_feature(name)  # a category's
        return not registered and not name.startswith(TARGET_PREFIX) and name not in computed

    return [n for n in feature_names if given(n)]


def _scores_not_measured(
    task: str, model: LoadedModel, read: list[str], lacking: list[date]
) -> str:
    """Say that a champion's score drift is not measured, and why (pure).

    It reads the customers' attributes, which the snapshot of a day of ``lacking`` was built
    without: its scores of that day would differ from the other's for that alone. Scoring the
    other with them blanked too would be no truer: its ``tenure_days`` cannot be worked out
    again without them.
    """
    days = " and ".join(str(d) for d in lacking)
    snapshots = "snapshot" if len(lacking) == 1 else "snapshots"
    was = "was" if len(lacking) == 1 else "were"
    return (
        f"{task} v{model.version}: score drift not measured: it reads {', '.join(read)}, which "
        f"come from the customers file, and the {snapshots} of {days} {was} built without the "
        "customers' attributes: its scores would differ for that alone"
    )


def _current_scores(inputs: DriftInputs, model: LoadedModel) -> pl.DataFrame:
    stored = inputs.store.read_scores(model.name, inputs.day, model.version)
    if stored is None:
        stored = score_snapshot(model.bundle, inputs.snapshot(inputs.day))
    return stored.select("task", "score")


def _records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dicts()


def _model_horizon(model: LoadedModel) -> int | None:
    """Read a version's label window, in days; None when it records none.

    Raises :class:`models.definitions.DefinitionUnreadableError` naming the version, the field
    and the value when it is no whole number of days (was ``float("ninety")``'s traceback).
    """
    params = model.bundle.metadata.get("params") or {}
    where, recorded = "metadata params.horizon", params.get("horizon")
    if not recorded:
        where, recorded = "tag horizon", model.tags.get("horizon")
    return _recorded_days(model, "horizon", where, recorded) if recorded else None


def _recorded_days(model: LoadedModel, name: str, where: str, recorded: Any) -> int:
    """Read a window a version records (:func:`models.definitions.recorded_int`), or say why not."""
    days = recorded_int(recorded)
    if days is None:
        of = f"{model.name} version {model.version}"
        raise DefinitionUnreadableError(not_whole_days(of, name, where, recorded))
    return days


def not_whole_days(of: str, name: str, where: str, recorded: Any) -> str:
    """Say that a window a version records is no whole number of days (pure).

    Parameters
    ----------
    of : str
        The version, as said (``"churn version 1"``, ``"churn champion version 1"``).
    name : str
        The window (``"horizon"``, ``"active_days"``).
    where : str
        Where it is recorded (``"tag horizon"``, ``"metadata params.horizon"``).
    recorded : object
        The value recorded.

    Returns
    -------
    str
        The version, the window, where and what is recorded, and that it is no whole number of
        days: the one sentence of ``guanxi drift`` and of ``guanxi cycle``'s definition check.
    """
    return f"{of}'s recorded {name} ({where}) is {recorded!r}, not a whole number of days"


def _not_yet(what: str, days: list[date], horizon: int, outcomes: str, done: str, day: date) -> str:
    """Say in one note that the tables of some days wait for their outcomes (pure).

    A report noted each table apart: a daily cycle keeps a score table a task and a value table
    a day, and its report printed some ninety notes a task and 365 of the value tables, the
    day's log lost in them.

    Parameters
    ----------
    what : str
        The tables: ``churn v1 scores``, ``value table`` (made plural for several).
    days : list of datetime.date
        Their days.
    horizon : int
        Their horizon, in days.
    outcomes : str
        What they are measured with: ``outcomes``, ``purchases``.
    done : str
        What is done with them: ``measured``, ``checked``.
    day : datetime.date
        The report's day.

    Returns
    -------
    str
        ``<what> of <day>: not <done> yet, its <horizon>-day <outcomes> are complete on <due>,
        after <day>`` for one (``their`` for scores); for several, their days (the first and the
        last of more than three) and the days their outcomes are complete between.
    """
    tables, their, due = _tables_named(what, days, horizon)
    when = f"on {due}" if len(days) == 1 else due
    return (
        f"{tables}: not {done} yet, {their} {horizon}-day {outcomes} are complete {when}, "
        f"after {day}"
    )


def _tables_named(what: str, days: list[date], horizon: int) -> tuple[str, str, str]:
    """Name some tables of one kind by their days, for :func:`_not_yet` and :func:`_unreached`.

    Returns ``<what> of <day>`` for one table, ``<what>s of <n> days (<days>)`` for several (the
    first and the last of more than three); the possessive (``its`` for one table, ``their``
    for scores or several); and the day their outcomes are complete (``<due>``, or ``between
    <first due> and <last due>``).
    """
    days = sorted(days)
    first, last = days[0], days[-1]
    h = timedelta(days=horizon)
    if len(days) == 1:
        their = "its" if what.endswith("table") else "their"
        return f"{what} of {first}", their, str(first + h)
    shown = (
        f"{', '.join(str(d) for d in days[:-1])} and {last}"
        if len(days) <= 3
        else f"{first} to {last}"
    )
    tables = f"{what}s" if what.endswith("table") else what
    return (
        f"{tables} of {len(days):,} days ({shown})",
        "their",
        f"between {first + h} and {last + h}",
    )


def _unreached(
    what: str, days: list[date], horizon: int, outcomes: str, done: str, through: date | None
) -> str:
    """Say in one note that the events end before the outcome windows of some tables (pure).

    Their windows have passed by the report's day, but the events do not reach their ends: the
    days missing would read as no order (a churner of everyone who would have ordered then,
    purchases short), so they are not measured (qa49 H2).

    Parameters
    ----------
    what : str
        The tables: ``churn v1 scores``, ``value table`` (made plural for several).
    days : list of datetime.date
        Their days.
    horizon : int
        Their horizon, in days.
    outcomes : str
        What they are measured with: ``outcomes``, ``purchases``.
    done : str
        What is done with them: ``measured``, ``checked``.
    through : datetime.date or None
        The events' last day (None: no event).

    Returns
    -------
    str
        ``<what> of <day>: not <done>: its <horizon>-day <outcomes> run to <due>, after the
        events' last day <through>: ...; <done> once the events reach <due>`` for one
        (``their`` for scores); for several, their days as :func:`_not_yet` names them.
    """
    tables, their, due = _tables_named(what, days, horizon)
    end = (
        f"after the events' last day {through}: the days after it would read as no activity"
        if through is not None
        else "and there is no event: they would read as no activity"
    )
    reach = max(days) + timedelta(days=horizon)
    return (
        f"{tables}: not {done}: {their} {horizon}-day {outcomes} run to {due}, {end}; {done} "
        f"once the events reach {reach}"
    )


_JUDGE_LATER: Final = "judge it by the scores of days on or after {trained}"
"""The advice of :func:`trained_later` on a score table older than the version that scored it."""


def _live_performance(
    inputs: DriftInputs, tasks: list[str], notes: list[str]
) -> list[dict[str, Any]]:
    """Measure every stored score table whose window has passed by the report's day."""
    found = []
    for task in tasks:
        spec = get_task(task)
        pending: dict[tuple[str, int], list[date]] = {}
        unreached: dict[tuple[str, int], list[date]] = {}
        for table in inputs.store.list_score_tables(task):
            if table.as_of > inputs.day:  # a later day's (a backfill): not known on the day
                continue  # was "not measured yet", as if its outcomes were still to come
            try:
                model = inputs.model(task, table.model_version)
            except ModelFilesMissingError as exc:  # was a traceback, the report lost
                said = inputs.missing.get(task)
                gone = (
                    "the champion's files are missing (above)"
                    if said is not None and said.version == exc.version
                    else str(exc)
                )
                notes.append(f"{task} v{exc.version} scores of {table.as_of}: not measured: {gone}")
                continue
            except registry.ModelNotFoundError as exc:  # its version deleted from the registry
                notes.append(
                    f"{task} v{table.model_version} scores of {table.as_of}: not measured: {exc}"
                )
                continue
            try:  # one old version's unreadable record: the other tables are measured
                horizon = _model_horizon(model)
                params = model.bundle.metadata.get("params") or {}
                active_days = _recorded_days(
                    model,
                    "activity window",
                    "metadata params.active_days",
                    params.get("active_days", 365),
                )
            except DefinitionUnreadableError as exc:  # was the whole report lost, every day
                notes.append(
                    f"{task} v{model.version} scores of {table.as_of}: not measured: {exc}"
                )
                continue
            if horizon is None:
                notes.append(f"{task} v{model.version} records no horizon: not measured")
                continue
            due = table.as_of + timedelta(days=horizon)
            if due > inputs.day:  # said once for all of a version (a daily cycle keeps 90)
                pending.setdefault((model.version, horizon), []).append(table.as_of)
                continue
            through = inputs.events_through()
            if through is None or through < due:  # was measured, the days missing as no order
                unreached.setdefault((model.version, horizon), []).append(table.as_of)
                continue
            try:  # events not reaching back to the table's day: the other tables are measured
                snapshot = inputs.snapshot(table.as_of)
            except EmptySnapshotError as exc:
                notes.append(
                    f"{task} v{model.version} scores of {table.as_of}: not measured: {exc}"
                )
                continue
            labels = outcomes(
                spec,
                inputs.events(),
                snapshot,
                table.as_of,
                horizon,
                active_days=active_days,
                categories=list(model.bundle.categories),
            )
            scores = inputs.store.read_scores(task, table.as_of, table.model_version)
            assert scores is not None  # listed a moment ago; tables are never deleted
            matched = match_outcomes(scores, labels)
            if matched.is_empty():
                notes.append(f"{task} v{model.version} scores of {table.as_of}: no outcomes")
                continue
            live = live_metrics(spec, matched)
            seen = trained_later(model.tags.get("as_of"), table.as_of, _JUDGE_LATER)
            if seen:  # scored by a version trained later: its outcomes were its training labels
                notes.append(f"{task} v{model.version} scores of {table.as_of}: {seen}")
            card = nest_metrics(model.tags).get("xgboost", {})
            found.append(
                {
                    "task": task,
                    "as_of": table.as_of.isoformat(),
                    "outcomes_through": due.isoformat(),
                    "version": model.version,
                    "horizon": horizon,
                    "rows": matched.height,
                    "metrics": live["metrics"],
                    "card": {k: card[k] for k in live["metrics"] if k in card},
                    "reliability": live["reliability"],
                }
            )
        for (version, horizon), days in pending.items():
            tables = f"{task} v{version} scores"
            notes.append(_not_yet(tables, days, horizon, "outcomes", "measured", inputs.day))
        for (version, horizon), days in unreached.items():
            tables = f"{task} v{version} scores"
            through = inputs.events_through()
            notes.append(_unreached(tables, days, horizon, "outcomes", "measured", through))
    return found


def _value_performance(inputs: DriftInputs, notes: list[str]) -> list[dict[str, Any]]:
    """Forecast error of every stored value table whose horizon has passed."""
    found = []
    pending: dict[int, list[date]] = {}
    unreached: dict[int, list[date]] = {}
    for day in inputs.store.list_values():
        if day > inputs.day:  # a later day's: not known on the report's day
            continue
        info = inputs.store.value_info(day)
        table = inputs.store.read_values(day)
        if info is None or table is None:
            continue
        due = day + timedelta(days=info.horizon_days)
        if due > inputs.day:  # said once for them all (a daily cycle keeps 365)
            pending.setdefault(info.horizon_days, []).append(day)
            continue
        through = inputs.events_through()
        if through is None or through < due:  # was checked, the days missing as no purchase
            unreached.setdefault(info.horizon_days, []).append(day)
            continue
        try:
            accuracy = purchases_forecast_error(table, inputs.events(), day, info.horizon_days)
        except RepeatedCustomersError as exc:  # names the day, the customer and the command
            notes.append(f"value table of {day}: not checked: {exc}")
            continue
        found.append(
            {
                "as_of": day.isoformat(),
                "horizon_days": info.horizon_days,
                "outcomes_through": due.isoformat(),
                "accuracy": accuracy,
            }
        )
    for horizon, days in pending.items():
        notes.append(_not_yet("value table", days, horizon, "purchases", "checked", inputs.day))
    for horizon, days in unreached.items():
        through = inputs.events_through()
        notes.append(_unreached("value table", days, horizon, "purchases", "checked", through))
    return found


def drift_report(
    inputs: DriftInputs,
    tasks: list[str],
    thresholds: DriftThresholds | None = None,
    alias: str = registry.CHAMPION,
    no_model: str | None = None,
    redo: str | None = None,
    other_features: str | None = None,
) -> dict[str, Any]:
    """Compute the drift and live-performance report of a day (nothing is written but snapshots).

    Parameters
    ----------
    inputs : DriftInputs
        The store, the day and the events.
    tasks : list of str
        Tasks whose champions are compared (a task without one is noted and skipped).
    thresholds : models.drift.DriftThresholds, optional
        Defaults to ``DriftThresholds()``.
    alias : str, default "champion"
        Registry alias of the models compared.
    no_model : str, optional
        The note of the tasks without such a model, one for them all (after ``"<task>, <task>:
        "``); by default the registry's message a task, which says to train and promote one.
        ``guanxi cycle``, whose retrain step comes next, says that it trains them.
    redo : str, optional
        The advice of the note on a champion trained after the report's day
        (:func:`trained_later`); by default an ``--as-of`` on or after its training day.
    other_features : str, optional
        What becomes of a champion trained on another feature set, in the note of it (after
        :func:`feature_set_reason`); by default the refusal of :mod:`models.scoring`, which says
        to retrain and promote it. ``guanxi cycle``, whose retrain step does that, says so.

    Returns
    -------
    dict
        JSON-ready: ``as_of``, ``thresholds``, ``features`` (one entry per reference day, with
        the tasks whose champion it is the reference of and the drift rows), ``scores`` (the
        score drift rows per task), ``performance`` (live metrics per stored score table whose
        horizon has passed), ``value`` (forecast error per value table whose horizon has passed),
        ``summary`` (drifted features and scores), ``notes`` and ``events_warning``
        (:meth:`DriftInputs.events_warning`, or None).
    """
    t = thresholds or DriftThresholds()
    notes: list[str] = []
    champions: dict[str, LoadedModel] = {}
    untrained: list[str] = []
    for task in tasks:
        try:
            champions[task] = inputs.champion(task, alias)
        except ModelFilesMissingError as exc:  # was a traceback, or "give a later --as-of"
            notes.append(f"{task} v{exc.version}: not compared: {exc.of_alias(alias)}")
        except registry.ModelNotFoundError as exc:
            if no_model is None:  # the registry's advice names the task's own command
                notes.append(f"{task}: {exc}")
            else:
                untrained.append(task)
    if untrained:  # one note, not the caller's words again a task (the first cycle's four)
        notes.append(f"{', '.join(untrained)}: {no_model}")
    for task, model in list(champions.items()):
        try:  # its scores of snapshots of this feature set are none it was tested on
            check_feature_set(model.bundle, f"{task}@{alias} (version {model.version})")
        except FeatureSetMismatchError as exc:  # was compared, as guanxi score refuses it
            del champions[task]
            inputs.other_features[task] = str(exc)
            why = f"it was {feature_set_reason(model.bundle.feature_set_version)}: {other_features}"
            notes.append(f"{task} v{model.version}: not compared: {why if other_features else exc}")
            continue
        try:
            tested = reference_day(model)
        except DefinitionUnreadableError as exc:  # its test day unknown: not compared
            del champions[task]
            notes.append(f"{task} v{model.version}: not compared: {exc}")
            continue
        if inputs.day < tested:  # comparing backwards: an earlier day against a later one
            del champions[task]
            notes.append(
                f"{task} v{model.version}: not compared: it was tested on the snapshot of "
                f"{tested}, after {inputs.day}; drift is measured on a day on or after that"
            )
            continue
        later = trained_later(model.tags.get("as_of"), inputs.day, redo)
        if later:  # a day between its test day and its training day: seen in training
            notes.append(f"{task} v{model.version}: {later}")
    current = inputs.snapshot(inputs.day)
    for task, model in list(champions.items()):
        try:  # events not reaching back to its test day (a rolling extract): the rest goes on
            inputs.snapshot(reference_day(model))
        except EmptySnapshotError as exc:
            del champions[task]
            if reference_day(model) in inputs.refused:  # its fix: --customers, not a later day
                inputs.refused_champions.add(task)
            notes.append(f"{task} v{model.version}: not compared: {exc}")
    by_reference: dict[date, list[str]] = {}
    for task, model in champions.items():
        by_reference.setdefault(reference_day(model), []).append(task)
    features: list[dict[str, Any]] = []
    lacked: dict[date, list[date]] = {}  # a reference day: the days without attributes
    for day, owners in sorted(by_reference.items()):
        inputs_of = sorted({n for t_ in owners for n in champions[t_].bundle.feature_names})
        reference, against = inputs.snapshot(day), current
        # a set: the champion's test day may be the report's own, named once
        lacking = sorted({d for d in (day, inputs.day) if inputs.without_attributes(d)})
        lacked[day] = lacking
        if lacking:  # every profile feature would read as drifted, or none
            # and those the customers file changes (a column it passes through is in one alone)
            reference, against = reference.drop(_DERIVED), against.drop(_DERIVED)
            profile = list(PROFILE)
            reference, against = reference.drop(profile), against.drop(profile)
            notes.append(_profile_left_out(inputs, profile, day, lacking))
        table = feature_drift(reference, against, thresholds=t).with_columns(
            model_input=pl.col("column").is_in(inputs_of)
        )
        features.append({"reference": day.isoformat(), "tasks": owners, "rows": _records(table)})
        if lacking:  # after the profile features' note
            notes.append(
                f"{', '.join(_DERIVED)} not compared against the snapshot of {day} either: the "
                "longer of the days since the first event and signup_tenure_days, it lengthens "
                "with the customers' sign-up dates"
            )
    reference_scores, current_scores = [], []
    for task, model in champions.items():
        tested = reference_day(model)
        read = _customers_inputs(model)
        if lacked[tested] and read:  # its scores would differ for the attributes alone
            notes.append(_scores_not_measured(task, model, read, lacked[tested]))
            continue
        reference = inputs.snapshot(tested)
        reference_scores.append(score_snapshot(model.bundle, reference).select("task", "score"))
        current_scores.append(_current_scores(inputs, model))
    scores = (
        score_drift(pl.concat(reference_scores), pl.concat(current_scores), t)
        if reference_scores
        else pl.DataFrame()
    )
    performance = _live_performance(inputs, tasks, notes)
    value = _value_performance(inputs, notes)
    warning = inputs.events_warning()  # once the snapshots built, and those not kept, are known
    found = inputs.customers_read()  # the recorded customers file read, said first
    notes[:0] = [
        *([found] if found is not None else []),
        *inputs.partial(ended=warning is None),
    ]  # was no word; first, once they are known
    drifted = [r["column"] for f in features for r in f["rows"] if r["drifted"]]
    compared = sum(len(f["rows"]) for f in features)
    return {
        "as_of": inputs.day.isoformat(),
        "created": datetime.now(UTC).isoformat(),
        "thresholds": asdict(t),
        "champions": {task: m.version for task, m in champions.items()},
        "features": features,
        "scores": _records(scores),
        "performance": performance,
        "value": value,
        "summary": {
            "features_compared": compared,
            "features_drifted": len(drifted),
            "drifted_share": len(drifted) / compared if compared else 0.0,
            "drifted": sorted(set(drifted)),
            "scores_drifted": [r["column"] for r in _records(scores) if r["drifted"]],
        },
        "notes": notes,
        "events_warning": warning,
    }


def _mlflow_results(report: dict[str, Any]) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """Nested metrics and tables of a report, for :func:`models.registry.log_drift_report`."""
    summary = report["summary"]
    results: dict[str, Any] = {
        "features_drifted": summary["features_drifted"],
        "drifted_share": summary["drifted_share"],
        "psi": {r["column"]: r["psi"] for f in report["features"] for r in f["rows"]},
        "score": {
            r["column"]: {"psi": r["psi"], "ks": r["ks"], "drifted": float(r["drifted"])}
            for r in report["scores"]
        },
        "live": {f"{p['task']}_{p['as_of']}": p["metrics"] for p in report["performance"]},
        "value": {f"{v['as_of']}": v["accuracy"] for v in report["value"]},
    }
    tables = {
        "feature_drift": pd.DataFrame(
            [{"reference": f["reference"], **r} for f in report["features"] for r in f["rows"]]
        ),
        "score_drift": pd.DataFrame(report["scores"]),
        "live_performance": pd.DataFrame(
            [
                {"task": p["task"], "as_of": p["as_of"], "version": p["version"], **p["metrics"]}
                for p in report["performance"]
            ]
        ),
    }
    return results, tables


def nothing_to_measure(report: dict[str, Any]) -> str | None:
    """Say why a report is not worth keeping: it compared and measured nothing (pure).

    ``guanxi drift`` refuses such a day, and ``guanxi cycle``'s drift step keeps no report of it:
    an empty one ("0 of 0 feature comparisons drifted") would become the newest on ``/ui/drift``.

    Parameters
    ----------
    report : dict
        :func:`drift_report`.

    Returns
    -------
    str or None
        ``nothing to measure on <day> (<the notes>)`` when no champion was compared and no score
        or value table measured; None otherwise.
    """
    if report["champions"] or report["performance"] or report["value"]:
        return None
    return f"nothing to measure on {report['as_of']} ({'; '.join(report['notes'])})"


def compared_before(
    report: dict[str, Any], kept: dict[str, Any] | None, replaced: str | None
) -> str | None:
    """Say why a report that compared no champion is not kept over the day's that compared one.

    ``guanxi drift`` of a day whose champion it cannot compare (the customers' attributes it
    will not build the champion's test day without, events not reaching back to that day) may
    still measure live performance; kept, it replaced the day's report that compared the
    champion (a cycle's without ``--customers``), and ``/ui/drift`` showed "no champion
    compared" (qa46 M2). Pure.

    Parameters
    ----------
    report : dict
        The new report (:func:`drift_report`).
    kept : dict, optional
        The store's report of the same day (``Store.read_record("drift", day)``).
    replaced : str or None
        Which champions the kept report compared are no longer their task's
        (:func:`champions_replaced`): then it stays no longer, as it no longer describes the
        model served; None when none is (or the current ones could not be read).

    Returns
    -------
    str or None
        Why the new report is not kept, naming the kept one's run, champions and drifted
        share; None when the new one compared a champion, the kept one compared none, or a
        champion it compared is no longer the task's.
    """
    if report["champions"] or not kept or not kept.get("champions"):
        return None
    if replaced is not None:
        return None
    champions = ", ".join(f"{task} v{version}" for task, version in kept["champions"].items())
    summary = kept.get("summary") or {}
    counts = (
        f" ({summary['features_drifted']} of {summary['features_compared']} feature comparisons "
        "drifted)"
        if "features_drifted" in summary and "features_compared" in summary
        else ""
    )
    run = f" (run {kept['run_id']})" if kept.get("run_id") else ""
    return (
        f"it compared no champion, and the store's report of {report['as_of']}{run} compared "
        f"{champions}{counts}: that report stays, on /ui/drift too"
    )


def champions_replaced(
    kept: dict[str, Any], current: Callable[[str], str | None], chosen: Iterable[str]
) -> str | None:
    """Say which champions a stored report compared are no longer their task's.

    Only the tasks of ``chosen`` (``--tasks``) decide: the report is replaced when any of their
    champions it compared was replaced since, or the task has none now; one of another task,
    whose champion this run did not look up, decides nothing. Once replaced, the comparisons of
    the others go with it, each said.

    Parameters
    ----------
    kept : dict
        The store's report of a day (``Store.read_record("drift", day)``).
    current : callable
        The champion version now of a task (None: it has none); asked of the other tasks only
        once the tasks of ``chosen`` decided (:func:`_current_champions`). Its
        :class:`ChampionUnreadableError` for another task is said (``referral: its champion now
        could not be read (MlflowException)``), for a task of ``chosen`` raised.
    chosen : iterable of str
        The tasks the new report looked up.

    Returns
    -------
    str or None
        ``compared churn v1 and referral v3; the champion now is churn v2; referral v3 is still
        the champion (its comparison goes too)`` (``churn has no champion now``); None when no
        champion of ``chosen`` it compared changed.

    Raises
    ------
    ChampionUnreadableError
        If the champion now of a task of ``chosen`` cannot be read.
    """
    compared = {task: str(version) for task, version in (kept.get("champions") or {}).items()}
    picked = set(chosen)
    now = {task: current(task) for task in compared if task in picked}
    if all(version is not None and version == compared[task] for task, version in now.items()):
        return None
    unread: dict[str, str] = {}
    for task in compared:
        if task not in picked:  # decides nothing now: its failure is said, not raised
            try:
                now[task] = current(task)
            except ChampionUnreadableError as exc:
                unread[task] = exc.error
    said = []
    for task, version in compared.items():
        if task in unread:
            said.append(f"{task}: its champion now could not be read ({unread[task]})")
        elif now[task] is None:
            said.append(f"{task} has no champion now")
        elif str(now[task]) != version:
            said.append(f"the champion now is {task} v{now[task]}")
        else:
            said.append(f"{task} v{version} is still the champion (its comparison goes too)")
    names = [f"{task} v{version}" for task, version in compared.items()]
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f"compared {listed}; {'; '.join(said)}"


class ChampionUnreadableError(RuntimeError):
    """A task's champion now could not be read from the registry.

    Parameters
    ----------
    task : str
        The task.
    error : str
        The registry error's type alone: its text may hold the tracking URI's credentials.
    """

    def __init__(self, task: str, error: str) -> None:
        super().__init__(f"the current champion of {task} could not be read ({error})")
        self.task = task
        self.error = error


def _current_champions(inputs: DriftInputs) -> Callable[[str], str | None]:
    """Look up the champion version now of a task (None: it has none).

    A task the report just computed looked its champion up (:attr:`DriftInputs.aliased`): not
    asked again; the registry is asked of the others alone, its error
    (:class:`mlflow.exceptions.MlflowException`) raised as :class:`ChampionUnreadableError`.
    """

    def current(task: str) -> str | None:
        if (task, registry.CHAMPION) in inputs.aliased:
            return inputs.aliased[(task, registry.CHAMPION)]
        try:
            version = registry.get_version(task, registry.CHAMPION)
        except MlflowException as exc:
            raise ChampionUnreadableError(task, type(exc).__name__) from exc
        return None if version is None else str(version.version)

    return current


class ReportNotKeptError(RuntimeError):
    """A report could not be kept; its message says which step failed and what stayed."""


def _forget_run(run_id: str) -> str:
    """Delete an MLflow run of a report that was not kept; say what became of it."""
    try:
        MlflowClient().delete_run(run_id)
    except Exception as exc:  # the tracking store that failed may fail again
        return (
            f"MLflow run {run_id} stayed ({exc}): delete it with "
            f"`mlflow runs delete --run-id {run_id}`"
        )
    return f"MLflow run {run_id} deleted"


def _failed_run(day: date, since: int) -> str:
    """Delete the run a failed log left behind (started, then FAILED half way); say so."""
    name = f"drift-{day.isoformat()}"
    try:
        experiment = mlflow.get_experiment_by_name(registry.DRIFT_EXPERIMENT)
        runs = (
            MlflowClient().search_runs(
                [experiment.experiment_id],
                f"attributes.run_name = '{name}' and attributes.start_time >= {since} "
                "and attributes.status != 'FINISHED'",
            )
            if experiment is not None
            else []
        )
    except Exception:  # the store that failed the log may fail the search too
        return f"; MLflow may hold a FAILED run {name} of this attempt"
    return "".join(f"; {_forget_run(r.info.run_id)}" for r in runs)


def _restore(path: Path, old: bytes | None) -> None:
    """Put a file back as it was: its old bytes, or no file."""
    if old is None:
        path.unlink(missing_ok=True)
    else:
        atomic_write(path, lambda p: p.write_bytes(old))


def keep_report(report: dict[str, Any], home: Path, html: Path | None = None) -> tuple[str, Path]:
    """Log a report to MLflow, write its HTML page and keep it in the store: all or nothing.

    The steps run in that order (the page shows the run id; the store's record, which the
    reviewer page ``/ui/drift`` reads, comes last). If one fails, or is interrupted (Ctrl-C), the
    steps before it are undone: the page of the day is put back as it was and the MLflow run is
    deleted, so the store, the reports folder and MLflow are left as before. An interrupt is
    raised again once undone, with a note saying what was undone.

    Parameters
    ----------
    report : dict
        :func:`drift_report`; its ``run_id`` is set.
    home : pathlib.Path
        ``GUANXI_HOME`` (tracking must be configured).
    html : pathlib.Path, optional
        Where the HTML page goes; default ``<home>/reports/drift-<as_of>.html`` (its folder is
        created).

    Returns
    -------
    tuple of (str, pathlib.Path)
        The MLflow run id and the HTML page.

    Raises
    ------
    ReportNotKeptError
        If a step failed; its message names the step and the file and says what was undone (or,
        when undoing failed too, what stayed). The original exception is its cause.
    KeyboardInterrupt
        Raised again after the steps before it were undone; its note says what was undone.
    """
    from serving.ui.drift import render_report

    day = date.fromisoformat(report["as_of"])
    path = html or home / "reports" / f"drift-{day.isoformat()}.html"
    results, tables = _mlflow_results(report)
    settings = {
        **{f"threshold_{k}": v for k, v in report["thresholds"].items()},
        **{f"champion_{k}": v for k, v in report["champions"].items()},
        "references": ",".join(f["reference"] for f in report["features"]),
    }
    try:  # the day's page as it was, to put back; read before anything is written
        old = path.read_bytes() if path.is_file() else None
    except OSError as exc:
        raise ReportNotKeptError(
            f"could not read the HTML page {path} to replace ({type(exc).__name__}: {exc}); "
            "nothing kept"
        ) from exc
    started = int(time.time() * 1000) - 1
    try:
        run_id = registry.log_drift_report(home, day, settings, results, tables)
    except KeyboardInterrupt as exc:  # the run MLflow ended as FAILED stayed behind
        exc.add_note(f"drift report interrupted: nothing kept{_failed_run(day, started)}")
        raise
    except Exception as exc:
        raise ReportNotKeptError(
            f"could not log the report to MLflow ({type(exc).__name__}: {exc}); nothing kept"
            f"{_failed_run(day, started)}"
        ) from exc
    report["run_id"] = run_id
    store = Store(home)
    step, written = "render the HTML page", False
    try:
        page = render_report(report)
        step = f"write the HTML page {path}"
        atomic_write(path, lambda p: p.write_text(page, encoding="utf-8"))
        step, written = f"keep the report in the store ({store.record_path('drift', day)})", True
        store.write_record("drift", day, report)
    except (Exception, KeyboardInterrupt) as exc:  # Ctrl-C left the logged run behind
        undone = ["the store's drift record is as before"]
        if written:
            try:
                _restore(path, old)
                undone.append(f"{path} {'put back' if old is not None else 'removed'}")
            except OSError as again:
                undone.append(f"{path} stayed ({again}): remove it")
        else:
            undone.append(f"{path} is as before")
        undone.append(_forget_run(run_id))
        report.pop("run_id", None)
        if isinstance(exc, KeyboardInterrupt):  # undone, then the interrupt goes on
            exc.add_note(f"drift report interrupted: nothing kept: {', '.join(undone)}")
            raise
        raise ReportNotKeptError(
            f"could not {step} ({type(exc).__name__}: {exc}); nothing kept: {', '.join(undone)}"
        ) from exc
    return run_id, path


def print_report(console: Console, report: dict[str, Any], limit: int = 15) -> None:
    """Print a report's tables.

    Parameters
    ----------
    console : rich.console.Console
        Where they go.
    report : dict
        :func:`drift_report`.
    limit : int, default 15
        Feature rows shown per reference: the drifted ones, then the highest PSI.
    """
    for group in report["features"]:
        rows = drifted_first(group["rows"])
        # it read "feature drift: 2025-10-02 (tested on, churn, repurchase) -> 2025-12-31"; it
        # says what the first day is, as the HTML report does under its heading
        owners = group["tasks"]
        champions = f"champion{'s were' if len(owners) > 1 else ' was'}"
        table = Table(
            title=f"feature drift: {group['reference']} -> {report['as_of']} (reference: the "
            f"snapshot the {', '.join(owners)} {champions} tested on)",
            box=box.SIMPLE_HEAD,
        )
        for header in ("feature", "PSI", "KS D", "W / sd", "drifted", "fired"):
            # a feature's name is never cut (days_since_last_com… at 80 columns); "fired" wraps
            table.add_column(
                header,
                justify="left" if header in ("feature", "fired") else "right",
                no_wrap=header != "fired",
            )
        for r in rows[:limit]:
            table.add_row(
                r["column"],
                format_measure(r["psi"]),
                format_measure(r["ks"]),
                format_measure(r["wasserstein_std"]),
                "[red]yes[/red]" if r["drifted"] else "no",
                (r["fired"] or MISSING).replace(",", ", "),
            )
        console.print(table)
        hidden = rows[limit:]
        if hidden:  # were left out without a word, drifted ones too (the cycle shows five)
            drifted = sum(r["drifted"] for r in hidden)
            console.print(
                f"{counted(len(hidden), 'more features')} not shown ({drifted:,} of them "
                "drifted): the HTML report lists every one"
            )
    summary = report["summary"]
    if report["features"] or report.get("champions"):  # a champion compared
        console.print(
            f"{summary['features_drifted']} of {summary['features_compared']} feature "
            f"comparisons drifted ({100 * summary['drifted_share']:.1f}%)"
        )
    else:  # was "0 of 0 feature comparisons drifted (0.0%)", the tasks left out unsaid
        console.print("no champion compared: no feature or score drift measured (see the notes)")
    if report["scores"]:
        table = Table(title="score drift per task", box=box.SIMPLE_HEAD)
        for header in ("task", "PSI", "KS D", "W / sd", "drifted"):
            table.add_column(header, justify="left" if header == "task" else "right")
        for r in report["scores"]:
            table.add_row(
                r["column"],
                format_measure(r["psi"]),
                format_measure(r["ks"]),
                format_measure(r["wasserstein_std"]),
                "[red]yes[/red]" if r["drifted"] else "no",
            )
        console.print(table)
    if report["performance"]:
        table = Table(
            title="live performance (scores whose horizon has passed)", box=box.SIMPLE_HEAD
        )
        for header in (
            "task",
            "scored",
            "ver",
            "rows",
            "ROC-AUC",
            "card",
            "lift",
            "prec@10%",
            "ECE",
        ):
            table.add_column(header, justify="left" if header == "task" else "right")
        for p in report["performance"]:
            m = p["metrics"]
            table.add_row(
                p["task"],
                p["as_of"],
                p["version"],
                f"{p['rows']:,}",
                format_measure(m.get("roc_auc")),
                format_measure(p["card"].get("roc_auc")),
                format_measure(m.get("top_decile_lift"), 2),
                format_measure(m.get("precision_top_decile")),
                format_measure(m.get("ece")),
            )
        console.print(table)
    for v in report["value"]:
        a: dict[str, float] = v["accuracy"]
        console.print(
            f"value of {v['as_of']}: expected purchases {a['forecast_total']:,.1f} vs actual "
            f"{a['actual_total']:,.0f} through {v['outcomes_through']} (MAE {a['mae']:.3f}, "
            f"aggregate error {100 * a['aggregate_error']:+.1f}%)"
        )
    if report.get("events_warning"):  # a report kept before qa49 H2 has none
        console.print(f"[yellow]warning:[/yellow] {escape(report['events_warning'])}")
    for note in report["notes"]:
        console.print(f"[dim]note: {note}[/dim]")


def stale_events(
    events: pl.DataFrame, day: date, source: str | Path, *, stored: bool = False
) -> str | None:
    """Say why events that end too long before a report's day are refused (qa49 H2).

    Built from them, the snapshot of the day took every customer for inactive since their last
    day and was kept in the store, where the server served it as the day's features. The bound
    is every command's (:data:`features.freshness.STALE_EVENTS_DAYS`, a weekend or holidays),
    read from every event (:class:`features.freshness.EventsEnd`); events 2 days short or more,
    within it, make a report with a warning (:meth:`DriftInputs.events_warning`).

    Parameters
    ----------
    events : polars.DataFrame
        Validated events, every one (those after ``day`` too).
    day : datetime.date
        The report's day.
    source : str or pathlib.Path
        Where they were read from, named in the message.
    stored : bool, default False
        The store holds the snapshot of ``day``: the report reads it and builds none from the
        events, so the message says nothing of one.

    Returns
    -------
    str or None
        The refusal, naming the file, their last day, ``day`` and the ``--as-of`` that takes
        them; None when they end at most :data:`features.freshness.STALE_EVENTS_DAYS` days before
        ``day``, or there is no event (the snapshot's refusal says so).
    """
    end = EventsEnd.of(events, day, source)
    if end is None or not end.stale:
        return None
    built = (
        ""
        if stored
        else f"the snapshot of {day} built from them would take every customer for inactive "
        f"since {end.through}, and "
    )
    return end.refusal(f"{built}the outcomes read from them would miss the days after it")


def _check_out(out: Path) -> None:
    """Refuse an ``--out`` the page cannot be written to, before the report is computed."""
    folder = out.parent
    if out.is_dir():
        raise typer.BadParameter(f"{out} is a directory: give the HTML file", param_hint="--out")
    if out.suffix.lower() not in (".html", ".htm"):  # an HTML page was written as drift.pdf
        raise typer.BadParameter(
            f"{out}: the report is one HTML page; give a file name ending in .html",
            param_hint="--out",
        )
    if folder.exists() and not folder.is_dir():  # was said not to exist, with a mkdir to fail
        raise typer.BadParameter(
            f"the folder of {out} ({folder}) is a file: give the HTML file in a folder",
            param_hint="--out",
        )
    if not folder.is_dir():
        raise typer.BadParameter(
            f"the folder of {out} does not exist: create it (`mkdir -p {folder}`) or give a file "
            "in an existing folder",
            param_hint="--out",
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise typer.BadParameter(
            f"cannot write into the folder of {out} ({folder}): give a file in a folder you can "
            "write to",
            param_hint="--out",
        )


def drift_command(
    as_of: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Day of the report (default: newest snapshot)."),
    ] = None,
    events: Annotated[
        Path | None,
        typer.Option(help="Events file (default: the store's history of --as-of)."),
    ] = None,
    customers: Annotated[
        Path | None,
        typer.Option(help="Customers file (default: the one the snapshot was built from)."),
    ] = None,
    tasks: Annotated[
        str, typer.Option(help="Comma-separated tasks (default: every task).")
    ] = ",".join(task_names()),
    out: Annotated[
        Path | None,
        typer.Option(help="HTML report (default: <GUANXI_HOME>/reports/drift-<as-of>.html)."),
    ] = None,
    psi: Annotated[float, typer.Option(help="PSI a feature must reach.")] = 0.1,
    ks: Annotated[float, typer.Option(help="KS statistic D a feature must reach.")] = 0.1,
    wasserstein: Annotated[
        float, typer.Option(help="Wasserstein distance, in reference std devs, to reach.")
    ] = 0.1,
    alpha: Annotated[float, typer.Option(help="Significance level of the noise test.")] = 0.01,
) -> None:
    """Feature and score drift since the champion's test cutoff, and live performance."""
    from pipelines.console import quiet_libraries
    from pipelines.score import parse_tasks, require_tracking
    from serving.settings import get_settings

    console = Console()
    chosen = parse_tasks(tasks)
    if out is not None:  # each was a traceback after the run and the record were kept
        _check_out(out)
    try:  # said before anything is read, naming the option (was "psi must be ...", once read)
        thresholds = DriftThresholds(psi=psi, ks=ks, wasserstein=wasserstein, alpha=alpha)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=f"--{str(exc).split()[0]}") from exc
    future = after_today(as_of.date()) if as_of is not None else None
    if future is not None:  # was told to build its snapshot, which guanxi features build refuses
        console.print(f"[red]no drift report, nothing written:[/red] {future}")
        raise typer.Exit(1)
    home = get_settings().home
    build = "(`guanxi features build --events PATH --as-of DAY`, or `guanxi cycle`)"
    if not home.is_dir():  # was "no history for DAY" or "no snapshot", as if the store were there
        console.print(
            f"[red]no drift report:[/red] GUANXI_HOME is {escape(str(home))}, which does not "
            "exist: set it to the store's folder (`export GUANXI_HOME=...`), or build a store "
            f"there first {build}"
        )
        raise typer.Exit(1)
    store = get_settings().store(home)  # checks signed tables with GUANXI_STORE_KEY
    day = as_of.date() if as_of is not None else store.latest_as_of()
    if day is None:
        console.print(
            f"[red]no drift report:[/red] the store ({escape(str(home))}) holds no snapshot; "
            f"build one first {build}"
        )
        raise typer.Exit(1)
    today = datetime.now(UTC).date()
    if day > today:  # the newest snapshot, of a day to come (guanxi score of one keeps it)
        console.print(
            f"[red]no drift report, nothing written:[/red] the store's newest snapshot is of "
            f"{day}, after today ({today} UTC): give --as-of {today} or an earlier day"
        )
        raise typer.Exit(1)
    now = datetime.now(UTC)
    try:
        frame = read_events(events, now=now) if events is not None else None
    except (EventsValidationError, FileNotFoundError, ValueError) as exc:
        console.print(f"[red]no drift report, nothing written:[/red] {exc}")
        raise typer.Exit(1) from exc
    if frame is not None and events is not None:  # before tracking is set up: nothing written
        stored = stored_snapshot(store, day) is not None
        stale = stale_events(frame, day, events, stored=stored)
        if stale is not None:  # was built, kept in the store and served as the day's features
            console.print(f"[red]no drift report, nothing written:[/red] {escape(stale)}")
            raise typer.Exit(1)
    require_tracking(console, home, "report drift")
    try:
        people = read_customers(customers, now=now) if customers is not None else None
        inputs = DriftInputs(
            store,
            day,
            frame,
            people,
            source=str(events) if events else None,
            events_file=events,
            customers_file=customers,
        )
        with quiet_libraries():  # MLflow's INFO lines on a version whose files are gone
            report = drift_report(inputs, chosen, thresholds)
    except (EventsValidationError, FileNotFoundError, ValueError) as exc:
        console.print(f"[red]no drift report, nothing written:[/red] {exc}")
        raise typer.Exit(1) from exc
    empty = nothing_to_measure(report)
    if empty is not None:
        # was an empty report ("0 of 0 feature comparisons"), logged, written and kept
        # the registry says which task has no champion (was: a note's "<task>: " prefix)
        # from the report's own look-ups (None: no champion): drift_report looked up every task
        # of --tasks, a registry error ending the command there, so the registry is not asked
        current = _current_champions(inputs)
        untrained = [t for t in chosen if current(t) is None]
        if untrained:
            fix = (
                f": `guanxi train --task {untrained[0]} --events PATH --as-of DAY`, then "
                f"`guanxi promote --task {untrained[0]}`"
            )
        elif inputs.missing or inputs.other_features or inputs.refused_champions:  # its note
            fix = ""  # says what to run (a refused test day's: pass --customers PATH)
        else:
            fix = ": give an --as-of on or after the day its champion was tested on"
        console.print(f"[red]no drift report, nothing written:[/red] {escape(empty)}{fix}")
        raise typer.Exit(1)
    print_report(console, report)
    try:
        kept = store.read_record("drift", day)
    except (OSError, ValueError):  # unreadable: replaced, as before
        kept = None
    replaced = None
    if not report["champions"] and kept and kept.get("champions"):  # else none to weigh
        # a report kept over a champion since replaced; the tasks of --tasks are told by the
        # report's look-ups (drift_report ended the command on a registry error for one), so
        # only another task's champion can be unreadable, and champions_replaced says it
        replaced = champions_replaced(kept, _current_champions(inputs), chosen)
    stays = compared_before(report, kept, replaced)
    if stays is not None:  # was kept over it: /ui/drift showed "no champion compared"
        fix = (  # a flag of the refusal: a note's wording changed the fix (was matched)
            "pass --customers PATH to compare the champion"
            if inputs.refused_champions
            else "the notes above say why no champion was compared"
        )
        if out is not None:  # was silently not written
            fix += f"; no HTML written to {out}"
        console.print(f"[red]drift report not kept:[/red] {escape(stays)}; {escape(fix)}")
        raise typer.Exit(1)
    if replaced is not None:  # was refused: the report of a model no longer served stayed
        assert kept is not None  # told of a kept report alone (for mypy: not a second test)
        run = f" (run {kept['run_id']})" if kept.get("run_id") else ""
        note = (
            f"the store's report of {day}{run} {replaced}: replaced by this one, which compares "
            "no champion (the notes above say why)"
        )
        report["notes"].append(note)  # on /ui/drift too, which said "no champion compared"
        console.print(f"note: {escape(note)}")
    try:
        run_id, path = keep_report(report, home, out)
    except ReportNotKeptError as exc:
        console.print(f"[red]drift report not kept:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    except KeyboardInterrupt as exc:  # said what was undone, then stopped as interrupted
        for note in getattr(exc, "__notes__", []):
            console.print(f"[red]{escape(note)}[/red]")
        raise
    console.print(f"report: {path} (MLflow run {run_id}; kept in the store for /ui/drift)")
