"""``guanxi features build`` and ``guanxi features export``: feature snapshots in the store.

``build`` validates the inputs (nothing is written when they have errors), builds the snapshot
with :func:`features.snapshot.build_snapshot` in hash buckets of ``customer_id`` sized by the
events (:func:`features.snapshot.buckets_for`, with a progress bar per bucket; ``--engine spark``:
the same function per hash bucket on Spark, :func:`pipelines.spark.snapshot_with_spark`) and
stores it atomically under ``GUANXI_HOME``.
Parquet or CSV events (a file or a directory) of more than ``GUANXI_FEATURES_IN_MEMORY_EVENTS`` rows
(8M by default; Parquet's read from the files' metadata, CSV's estimated from the files' sizes and
first MiB, :func:`features.sources.event_rows`) are never held whole with the Polars engine: they
are validated in a streaming pass into staged Parquet files (:func:`features.sources.stage_events`,
the same problems as the in-memory validation), split once into ranges of ``customer_id`` of about
as many events as a bucket (:func:`features.store.split_by_customer`), and both the snapshot
(:func:`features.snapshot.build_snapshot_by_range`) and the history
(:meth:`features.store.Store.write_history`) are built from those ranges, one at a time. Events
in ``customer_id`` order are written once: when the staged files' row groups hold ranges of
``customer_id`` in order (their statistics, :func:`features.store.parquet_ranges_in_order`), each
range is read from the staged files, skipping the other row groups; other events are written
again, by range. A database's events are counted by the database (``SELECT COUNT(*)`` of at most
the threshold plus one row, :func:`features.database.count`) and, when more or not counted in
time, staged the same way, sunk batch by batch into Parquet first
(:func:`features.sources.stage_events`). Fewer events and ``--engine spark`` are validated in
memory. Events that end more than :data:`features.freshness.STALE_EVENTS_DAYS` days before
``--as-of`` are refused once validated, before anything is built or stored; 2 days short or more,
a warning says so (:func:`refuse_stale_events`, the rule ``guanxi train``, ``score``, ``value``,
``drift`` and ``cycle`` take too). A Spark catalog table's events are not checked.
``export`` copies a stored snapshot to a CSV or Parquet file, also atomically.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Final, TypeVar

import polars as pl
import typer
from rich.console import Console
from rich.progress import TextColumn
from rich.text import Text

from features.events import EventsValidationError, Loaded, Problem, Staged, StagedOrders
from features.freshness import EventsEnd, StaleEventsError
from features.products import category_names, category_slugs
from features.snapshot import buckets_for, build_snapshot, build_snapshot_by_range
from features.sources import Source
from features.store import (
    CustomerRanges,
    SnapshotNotFoundError,
    SourceFile,
    Store,
    atomic_write,
    split_by_customer,
)
from features.window import prepare_events
from pipelines import connectors
from pipelines.days import after_today, no_event_by
from pipelines.engine import DEFAULT_MASTER, EngineOption, SparkMasterOption
from pipelines.progress import progress_bar
from pipelines.validate import print_problems
from serving.settings import get_settings

__all__ = [
    "build_command",
    "build_validated",
    "describe_sources",
    "export_command",
    "refuse_stale_events",
    "validated_events",
    "validated_orders",
]

_DAY: Final = ["%Y-%m-%d"]


def build_command(
    as_of: Annotated[
        dt.datetime,
        typer.Option("--as-of", formats=_DAY, help="Snapshot day (UTC): events up to its end."),
    ],
    events: connectors.SparkOrEvents = None,
    customers: connectors.Customers = None,
    events_table: connectors.EventsTable = None,
    events_query: connectors.EventsQuery = None,
    customers_table: connectors.CustomersTable = None,
    customers_query: connectors.CustomersQuery = None,
    mapping: connectors.MappingFile = None,
    engine: EngineOption = "polars",
    spark_master: SparkMasterOption = DEFAULT_MASTER,
) -> None:
    """Validate the inputs, build the feature snapshot as of a day and store it."""
    sources = connectors.inputs_or_table(
        events, events_table, events_query, customers, customers_table, customers_query, mapping,
        engine,
    )  # fmt: skip
    out = Console()
    status = Console(stderr=True)
    now = dt.datetime.now(dt.UTC)
    day = as_of.date()
    future = after_today(day, now.date())  # said as value, target and cycle say it, with advice
    if future is not None:
        out.print(Text(f"cannot build the snapshot, nothing stored: {future}", style="red"))
        raise typer.Exit(1)
    if isinstance(sources, connectors.SparkEvents):
        _build_from_spark_table(sources, day, now, spark_master, out)
        return
    described = describe_sources(sources)  # before they are read: a file rewritten meanwhile
    if engine == "spark":
        with status.status("Validating the inputs..."):
            loaded, loaded_customers, problems = sources.load(now)
        _stop_on_errors(out, problems)
        assert loaded is not None
        _stop_on_stale(out, loaded, day, sources.events.label)
        _build_and_store(described, loaded, loaded_customers, day, spark_master, out, status)
        return
    with validated_events(sources, now, status) as (validated, validated_customers, problems):
        _stop_on_errors(out, problems)
        assert validated is not None
        _stop_on_stale(out, validated, day, sources.events.label)
        _build_and_store(described, validated, validated_customers, day, None, out, status)


def refuse_stale_events(
    events: Loaded | Staged | StagedOrders | dt.date,
    day: dt.date,
    source: str,
    *,
    then: str = ", and be served as that day's features",
    also: str = "",
) -> str | None:
    """Refuse events that end more than a week before the snapshot's day; say a few days.

    The rule of every command (:class:`features.freshness.EventsEnd`, qa43 H1): built from
    events that end weeks before ``day``, the snapshot took every customer for inactive since
    their last day, and was kept in the store (replacing the day's, if any) and served as the
    day's features with no word. Call it once the events are validated, before anything is built
    or written; or, for the store's snapshot of the day read instead of built, with the last
    event's day of the files it was built from (:func:`features.freshness.file_last_day`).

    Parameters
    ----------
    events : Loaded, Staged, StagedOrders (features.events) or datetime.date
        The validated events (a scan of staged events is read for ``ts`` alone; staged orders
        give the last event of any type, :attr:`features.events.StagedOrders.last`), or the
        last event's day of the files the store's snapshot of ``day`` was built from: it is
        built already.
    day : datetime.date
        The snapshot's day (``--as-of``).
    source : str
        Where they were read from (:attr:`features.sources.Source.label`), named in the
        sentences.
    then : str, default ", and be served as that day's features"
        What else the snapshot built from events a week short would do, in the refusal.
    also : str, default ""
        What else the days without events read as, in the warning (``", and so do its
        scores"``).

    Returns
    -------
    str or None
        The warning for events 2 to :data:`features.freshness.STALE_EVENTS_DAYS` days short of
        ``day``: their last day, what the days after it read as, and the ``--as-of`` of an early
        export; None when they end a day before ``day`` or later, or there is no event (the
        command's own refusal says so).

    Raises
    ------
    features.freshness.StaleEventsError
        If they end more than :data:`features.freshness.STALE_EVENTS_DAYS` days before ``day``:
        the file, their last day, ``day``, and the events or ``--as-of`` to pass.
    """
    if isinstance(events, dt.date):  # the store's snapshot, built from them already
        end: EventsEnd | None = EventsEnd(events, day, source)
        made = f"the store's snapshot of {day}, built from them, takes"
    elif isinstance(events, StagedOrders):  # its frame holds the orders alone
        last = events.last
        end = None if last is None else EventsEnd(last.date(), day, source)
        made = f"the snapshot of {day} built from them would take"
    else:  # staged: read from the staged files' footers (their row groups' statistics)
        files = events.files if isinstance(events, Staged) else ()
        end = EventsEnd.of(events.frame, day, source, files)
        made = f"the snapshot of {day} built from them would take"
    if end is None:
        return None
    return end.check(
        f"{made} every customer for inactive since {end.through}{then}",
        f"the snapshot of {day} reads the days after it as no activity{also}",
    )


def _stop_on_stale(out: Console, events: Loaded | Staged, day: dt.date, source: str) -> None:
    """Refuse events a week short of ``day`` (nothing stored); print the warning of a few days."""
    try:
        warning = refuse_stale_events(events, day, source)
    except StaleEventsError as error:
        out.print(Text(f"cannot build the snapshot, nothing stored: {error}", style="red"))
        raise typer.Exit(1) from error
    if warning is not None:
        out.print(Text(f"warning: {warning}", style="yellow"))


def describe_sources(
    sources: connectors.Inputs | connectors.SparkEvents,
) -> tuple[SourceFile | None, SourceFile | None]:
    """Describe the events and customers as they are now, for the snapshot's metadata.

    Called before they are validated and built, so a file rewritten meanwhile is recorded as it
    was read, not as it is after (:func:`same_inputs` then builds the new one again).

    Parameters
    ----------
    sources : pipelines.connectors.Inputs or pipelines.connectors.SparkEvents
        The inputs.

    Returns
    -------
    tuple of (features.store.SourceFile or None, features.store.SourceFile or None)
        The events' and the customers' (:meth:`features.sources.Source.describe`); None for
        customers not given, or for a file that is missing (its validation says so).
    """

    def of(source: Source | connectors.SparkEvents | None) -> SourceFile | None:
        try:
            return source.describe() if source is not None else None
        except OSError:
            return None

    events = sources if isinstance(sources, connectors.SparkEvents) else sources.events
    return of(events), of(sources.customers)


@contextmanager
def validated_events(
    sources: connectors.Inputs, now: dt.datetime, status: Console
) -> Iterator[tuple[Loaded | Staged | None, Loaded | None, list[Problem]]]:
    """Validate the inputs in memory when the events are few, else into staged files.

    Parameters
    ----------
    sources : pipelines.connectors.Inputs
        Events and customers.
    now : datetime.datetime
        The current time; later timestamps are errors.
    status : rich.console.Console
        Where the "Validating the inputs..." spinner goes.

    Yields
    ------
    tuple of (Loaded or Staged or None, Loaded or None, list of Problem)
        :meth:`pipelines.connectors.Inputs.load` when
        :meth:`~pipelines.connectors.Inputs.few_events` (faster than staging them), else
        :meth:`~pipelines.connectors.Inputs.stage` into a temporary directory that lives as long
        as the context: more events (and files or a database that cannot be counted) are never
        held whole.
    """
    with _validated(sources, now, status, sources.stage) as validated:
        yield validated


@contextmanager
def validated_orders(
    sources: connectors.Inputs, now: dt.datetime, status: Console
) -> Iterator[tuple[Loaded | StagedOrders | None, Loaded | None, list[Problem]]]:
    """As :func:`validated_events`, many events staged with only their ``order`` events.

    For a reader of the orders alone (``guanxi value`` with the day's snapshot in the store):
    every event is validated, with the same problems, but only the orders are written.

    Parameters
    ----------
    sources : pipelines.connectors.Inputs
        Events and customers.
    now : datetime.datetime
        The current time; later timestamps are errors.
    status : rich.console.Console
        Where the "Validating the inputs..." spinner goes.

    Yields
    ------
    tuple of (Loaded or StagedOrders or None, Loaded or None, list of Problem)
        :meth:`pipelines.connectors.Inputs.load` when
        :meth:`~pipelines.connectors.Inputs.few_events`, else
        :meth:`~pipelines.connectors.Inputs.stage_orders` into a temporary directory that lives
        as long as the context.
    """
    with _validated(sources, now, status, sources.stage_orders) as validated:
        yield validated


_Staging = TypeVar("_Staging", Staged, StagedOrders)


@contextmanager
def _validated(
    sources: connectors.Inputs,
    now: dt.datetime,
    status: Console,
    stage: Callable[[dt.datetime, Path], tuple[_Staging | None, Loaded | None, list[Problem]]],
) -> Iterator[tuple[Loaded | _Staging | None, Loaded | None, list[Problem]]]:
    """Validate in memory when the events are few, else with ``stage`` into a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="guanxi-events-") as folder:
        with status.status("Validating the inputs..."):
            few = sources.few_events()
            validated = sources.load(now) if few else stage(now, Path(folder))
        yield validated


def _build_and_store(
    described: tuple[SourceFile | None, SourceFile | None],
    events: Loaded | Staged,
    customers: Loaded | None,
    day: dt.date,
    spark_master: str | None,
    out: Console,
    status: Console,
) -> None:
    """Build the snapshot of validated inputs (on Spark with a master) and store it.

    ``described``: the events and customers as :func:`describe_sources` described them before
    they were validated, recorded with the snapshot.
    """
    customer_frame = customers.frame if customers is not None else None
    # staged events are split by customer_id range once, for both the snapshot and the history
    with tempfile.TemporaryDirectory(prefix="guanxi-ranges-") as spill:
        history: pl.DataFrame | pl.LazyFrame | CustomerRanges = events.frame
        try:
            if spark_master is not None:
                from pipelines.spark import snapshot_with_spark

                assert isinstance(events, Loaded)
                # it says "starting Spark" and "features as of <day> on Spark" itself
                snapshot = snapshot_with_spark(events.frame, customer_frame, day, spark_master)
            else:
                snapshot, history = build_validated(
                    events, customer_frame, day, Path(spill), status
                )
        except ValueError as error:
            out.print(Text(f"cannot build the snapshot: {error}", style="red"))
            raise typer.Exit(1) from error
        if snapshot.height == 0:  # an --as-of before the data: an empty snapshot helps nobody
            out.print(
                Text(
                    f"{no_event_by(events.frame, day)}: nothing written; choose a later --as-of",
                    style="red",
                )
            )
            raise typer.Exit(1)
        with status.status("Writing the snapshot..."):
            info = Store(get_settings().home).write_snapshot(
                snapshot,
                day,
                events=described[0],
                customers=described[1],
                history=history,
            )
    shape = f"{info.rows:,} customers, {snapshot.width} columns"
    out.print(Text(f"snapshot as of {day}: {shape} -> {info.path}", style="green"))


def build_validated(
    events: Loaded | Staged,
    customers: pl.DataFrame | None,
    day: dt.date,
    spill: Path,
    status: Console,
    categories: Sequence[str] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame | CustomerRanges]:
    """Build the snapshot of validated events in this process, in buckets, with a progress bar.

    Parameters
    ----------
    events : features.events.Loaded or features.events.Staged
        The events of :func:`validated_events`.
    customers : polars.DataFrame, optional
        The validated customers.
    day : datetime.date
        Snapshot day.
    spill : pathlib.Path
        An existing directory that outlives the history: staged events are split there by
        ``customer_id`` range once (:func:`features.store.split_by_customer`), for both the
        snapshot and the history.
    status : rich.console.Console
        Where the spinner and the bar go.
    categories : sequence of str, optional
        Categories that get ``cat_{category}_*`` columns besides those of the events' orders
        up to ``day`` (the models' when scoring: a category no order of the events has is then
        0 orders and a 0 share, not unknown); the columns are the union, sorted, so events
        that have them all give the snapshot a build without them gives. None: the events'
        own, as ``guanxi features build`` builds.

    Returns
    -------
    tuple of (polars.DataFrame, polars.DataFrame or features.store.CustomerRanges)
        The snapshot and the events for the store's history (the split ranges of staged events).

    Raises
    ------
    ValueError
        If the snapshot cannot be built.
    """
    if isinstance(events, Staged):
        with status.status("Splitting the events by customer..."):
            ranges = split_by_customer(
                events.frame, day, _events_per_range(events.height), spill, files=events.files
            )
        cats = _with_categories_of(ranges, day, categories)
        return _build_in_buckets(ranges, events.height, customers, day, status, cats), ranges
    cats = _with_categories_of(events.frame, day, categories)
    return _build_in_buckets(
        events.frame, events.frame.height, customers, day, status, cats
    ), events.frame


def _with_categories_of(
    events: pl.DataFrame | pl.LazyFrame | CustomerRanges,
    day: dt.date,
    categories: Sequence[str] | None,
) -> list[str] | None:
    """Add the categories of the events' orders up to ``day`` to ``categories``, sorted.

    None stays None (:func:`features.snapshot.build_snapshot` then takes the events' own).
    """
    if categories is None:
        return None
    if isinstance(events, CustomerRanges):
        events = pl.concat([events.events(r) for r in range(len(events))])
    seen = category_names(prepare_events(events, day))
    return sorted({*category_slugs(categories), *seen.values()})


def _events_per_range(height: int) -> int:
    """Events per ``customer_id`` range of staged events: as many ranges as hash buckets."""
    return max(1, -(-height // buckets_for(height)))


def _build_in_buckets(
    events: pl.DataFrame | CustomerRanges,
    height: int,
    customers: pl.DataFrame | None,
    day: dt.date,
    status: Console,
    categories: list[str] | None,
) -> pl.DataFrame:
    """Build the snapshot in hash buckets of ``customer_id`` sized by the events, with a bar.

    Events already split into ranges of ``customer_id`` are built a range at a time instead.
    ``categories``: those that get columns (None: the events' own).
    """
    buckets = len(events) if isinstance(events, CustomerRanges) else buckets_for(height)
    progress = progress_bar(
        status,
        f"building features as of {day} from {height:,} events",
        TextColumn("buckets"),
    )
    with progress:
        task = progress.add_task("buckets", total=buckets)

        def advance(done: int, _: int) -> None:
            progress.update(task, completed=done)

        if isinstance(events, CustomerRanges):
            snapshot = build_snapshot_by_range(
                events, customers, day, categories=categories, on_bucket=advance
            )
        else:
            snapshot = build_snapshot(
                events, customers, day, categories=categories, buckets=buckets, on_bucket=advance
            )
        progress.update(task, completed=buckets)  # one bucket reports no progress of its own
    return snapshot


def _stop_on_errors(out: Console, problems: list[Problem]) -> None:
    print_problems(out, problems)
    if any(p.severity == "error" for p in problems):
        out.print(Text("invalid input: nothing was written", style="red"))
        raise typer.Exit(1)


def _build_from_spark_table(
    table: connectors.SparkEvents, day: dt.date, now: dt.datetime, master: str, out: Console
) -> None:
    """Validate and build on Spark from a catalog table: its rows never come to the driver.

    The store keeps no history for such a snapshot (the history file is the driver's copy of the
    events); the snapshot itself is written as for any other source.
    """
    from pipelines.spark import snapshot_from_table

    try:  # it says "starting Spark" and "validating <table> on Spark" itself
        snapshot, problems = snapshot_from_table(table, day, now, master)
    except EventsValidationError as error:
        snapshot, problems = None, error.problems
    _stop_on_errors(out, problems)
    assert snapshot is not None
    store = Store(get_settings().home)
    info = store.write_snapshot(
        snapshot,
        day,
        events=table.describe(),
        customers=table.customers.describe() if table.customers is not None else None,
        drop_history=True,  # the replaced snapshot's: not the events of this one
    )
    shape = f"{info.rows:,} customers, {snapshot.width} columns"
    out.print(Text(f"snapshot as of {day}: {shape} -> {info.path}", style="green"))


def export_command(
    as_of: Annotated[
        dt.datetime, typer.Option("--as-of", formats=_DAY, help="Day of the stored snapshot.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Output file: .csv or .parquet.")],
) -> None:
    """Write a stored snapshot to a CSV or Parquet file."""
    console = Console()
    connectors.check_output(str(out), None)
    try:
        snapshot = Store(get_settings().home).read_snapshot(as_of.date())
    except SnapshotNotFoundError as error:
        console.print(Text(str(error), style="red"))
        raise typer.Exit(1) from error
    if out.suffix.lower() == ".csv":
        atomic_write(out, snapshot.write_csv)
    else:
        atomic_write(out, snapshot.write_parquet)
    console.print(Text(f"wrote {snapshot.height:,} rows to {out}", style="green"))
