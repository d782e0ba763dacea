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
(:meth:`features.store.Store.write_history`) are built from those ranges, one at a time. Fewer
events, database sources and ``--engine spark`` are validated in memory.
``export`` copies a stored snapshot to a CSV or Parquet file, also atomically.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Annotated, Final

import polars as pl
import typer
from rich.console import Console
from rich.progress import TextColumn
from rich.text import Text

from features.events import EventsValidationError, Loaded, Problem, Staged
from features.snapshot import buckets_for, build_snapshot, build_snapshot_by_range
from features.store import (
    CustomerRanges,
    SnapshotNotFoundError,
    Store,
    atomic_write,
    split_by_customer,
)
from pipelines import connectors
from pipelines.engine import DEFAULT_MASTER, EngineOption, SparkMasterOption
from pipelines.progress import progress_bar
from pipelines.validate import print_problems
from serving.settings import get_settings

__all__ = ["build_command", "export_command"]

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
    if day > now.date():
        out.print(Text(f"--as-of {day} is in the future (today is {now.date()} UTC)", style="red"))
        raise typer.Exit(1)
    if isinstance(sources, connectors.SparkEvents):
        _build_from_spark_table(sources, day, now, spark_master, out)
        return
    if engine == "spark":
        with status.status("Validating the inputs..."):
            loaded, loaded_customers, problems = sources.load(now)
        _stop_on_errors(out, problems)
        assert loaded is not None
        _build_and_store(sources, loaded, loaded_customers, day, spark_master, out, status)
        return
    if sources.few_events():
        # few events: validated and built in memory, faster than staging them
        with status.status("Validating the inputs..."):
            loaded, loaded_customers, problems = sources.load(now)
        _stop_on_errors(out, problems)
        assert loaded is not None
        _build_and_store(sources, loaded, loaded_customers, day, None, out, status)
        return
    # more events (or files that cannot be counted) are validated and built from files staged
    # here, never held whole
    with tempfile.TemporaryDirectory(prefix="guanxi-events-") as folder:
        with status.status("Validating the inputs..."):
            staged, staged_customers, problems = sources.stage(now, Path(folder))
        _stop_on_errors(out, problems)
        assert staged is not None
        _build_and_store(sources, staged, staged_customers, day, None, out, status)


def _build_and_store(
    sources: connectors.Inputs,
    events: Loaded | Staged,
    customers: Loaded | None,
    day: dt.date,
    spark_master: str | None,
    out: Console,
    status: Console,
) -> None:
    """Build the snapshot of validated inputs (on Spark with a master) and store it."""
    customer_frame = customers.frame if customers is not None else None
    # staged events are split by customer_id range once, for both the snapshot and the history
    with tempfile.TemporaryDirectory(prefix="guanxi-ranges-") as spill:
        history: pl.DataFrame | pl.LazyFrame | CustomerRanges = events.frame
        try:
            if spark_master is not None:
                from pipelines.spark import snapshot_with_spark

                assert isinstance(events, Loaded)
                with status.status(f"Building features as of {day} on Spark..."):
                    snapshot = snapshot_with_spark(events.frame, customer_frame, day, spark_master)
            elif isinstance(events, Staged):
                with status.status("Splitting the events by customer..."):
                    history = split_by_customer(
                        events.frame, day, _events_per_range(events.height), Path(spill)
                    )
                snapshot = _build_in_buckets(history, events.height, customer_frame, day, status)
            else:
                snapshot = _build_in_buckets(
                    events.frame, events.frame.height, customer_frame, day, status
                )
        except ValueError as error:
            out.print(Text(f"cannot build the snapshot: {error}", style="red"))
            raise typer.Exit(1) from error
        with status.status("Writing the snapshot..."):
            info = Store(get_settings().home).write_snapshot(
                snapshot,
                day,
                events=sources.events.describe(),
                customers=sources.customers.describe() if sources.customers is not None else None,
                history=history,
            )
    shape = f"{info.rows:,} customers, {snapshot.width} columns"
    out.print(Text(f"snapshot as of {day}: {shape} -> {info.path}", style="green"))


def _events_per_range(height: int) -> int:
    """Events per ``customer_id`` range of staged events: as many ranges as hash buckets."""
    return max(1, -(-height // buckets_for(height)))


def _build_in_buckets(
    events: pl.DataFrame | CustomerRanges,
    height: int,
    customers: pl.DataFrame | None,
    day: dt.date,
    status: Console,
) -> pl.DataFrame:
    """Build the snapshot in hash buckets of ``customer_id`` sized by the events, with a bar.

    Events already split into ranges of ``customer_id`` are built a range at a time instead.
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
            snapshot = build_snapshot_by_range(events, customers, day, on_bucket=advance)
        else:
            snapshot = build_snapshot(events, customers, day, buckets=buckets, on_bucket=advance)
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

    with Console(stderr=True).status(f"Validating {table.label} and building on Spark..."):
        try:
            snapshot, problems = snapshot_from_table(table, day, now, master)
        except EventsValidationError as error:
            snapshot, problems = None, error.problems
    _stop_on_errors(out, problems)
    assert snapshot is not None
    info = Store(get_settings().home).write_snapshot(
        snapshot,
        day,
        events=table.describe(),
        customers=table.customers.describe() if table.customers is not None else None,
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
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise typer.BadParameter(f"{out} must end in .csv or .parquet", param_hint="--out")
    try:
        snapshot = Store(get_settings().home).read_snapshot(as_of.date())
    except SnapshotNotFoundError as error:
        console.print(Text(str(error), style="red"))
        raise typer.Exit(1) from error
    if suffix == ".csv":
        atomic_write(out, snapshot.write_csv)
    else:
        atomic_write(out, snapshot.write_parquet)
    console.print(Text(f"wrote {snapshot.height:,} rows to {out}", style="green"))
