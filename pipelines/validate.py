"""``guanxi data validate``: check events (and customers) against the contract.

The events and customers are files or database tables and queries (:mod:`pipelines.connectors`).

Every problem is listed at once in a table (file, column, rows, message), warnings apart from
errors; the command exits 1 when there is an error and prints a one-line summary otherwise.
Events that ``guanxi features build`` would stage (:meth:`pipelines.connectors.Inputs.few_events`:
files or a database's table or query of more than ``GUANXI_FEATURES_IN_MEMORY_EVENTS`` rows, or
that cannot be counted) are validated in a streaming pass into staged Parquet files in a
temporary directory and summarised from a scan of them, never held whole: the same problems, exit
code and summary.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from features.contracts import counted
from features.events import MAX_LISTED_ROWS, Problem
from features.sources import Source
from pipelines import connectors

__all__ = ["customers_source", "print_problems", "summary", "validate_command"]


def print_problems(console: Console, problems: Sequence[Problem]) -> None:
    """Print errors and warnings as two tables.

    Parameters
    ----------
    console : rich.console.Console
        Where to print.
    problems : sequence of Problem
        The problems; nothing is printed for an empty sequence.
    """
    for severity, style in (("error", "red"), ("warning", "yellow")):
        chosen = [p for p in problems if p.severity == severity]
        if not chosen:
            continue
        table = Table(
            title=Text(f"{len(chosen)} {severity}{'s' if len(chosen) > 1 else ''}", style=style),
            caption=f"rows: 1 = first data row after the header, or a table's key values; "
            f"{MAX_LISTED_ROWS} listed at most",
            show_lines=True,
        )
        for name in ("file", "column", "rows", "problem"):
            table.add_column(name, overflow="fold")
        for p in chosen:
            table.add_row(Text(p.file), Text(p.column or ""), Text(p.rows_text()), Text(p.message))
        console.print(table)


def _unknown_ids(customers: pl.DataFrame) -> pl.Expr:
    """Count the events' distinct customer ids that are not in ``customers``."""
    ids = pl.col("customer_id").unique()
    return ids.is_in(customers["customer_id"].implode()).not_().sum().alias("unknown")


def summary(
    events: pl.DataFrame | pl.LazyFrame,
    customers: pl.DataFrame | None,
    customers_source: str = "customers file",
) -> str:
    """Describe valid inputs in one line.

    Parameters
    ----------
    events : polars.DataFrame or polars.LazyFrame
        Validated events: in memory, or a scan of staged events
        (:class:`features.events.Staged`), never collected whole (streaming engine).
    customers : polars.DataFrame, optional
        Validated customers.
    customers_source : str, optional
        What the customers were read from, as the summary names it: ``"customers file"``,
        ``"customers table"`` or ``"customers query"`` (:func:`customers_source`).

    Returns
    -------
    str
        Rows, customers, date range and event counts by type.
    """
    unknown = [] if customers is None else [_unknown_ids(customers)]
    stats_query = events.lazy().select(
        pl.len().alias("rows"),
        pl.col("customer_id").n_unique().alias("ids"),
        pl.col("ts").min().dt.date().alias("first"),
        pl.col("ts").max().dt.date().alias("last"),
        *unknown,
    )
    counts_query = events.lazy().group_by("event_type").len()
    stats_frame, counts = pl.collect_all([stats_query, counts_query], engine="streaming")
    stats = stats_frame.row(0, named=True)
    counts = counts.sort(["len", "event_type"], descending=[True, False])
    by_type = ", ".join(f"{t} {n:,}" for t, n in counts.iter_rows())
    text = (
        f"{counted(stats['rows'], 'events')} of {counted(stats['ids'], 'customers')}, "
        f"{stats['first']} to {stats['last']} ({by_type})"
    )
    if customers is not None:
        text += f"; {customers_source}: {counted(customers.height, 'customers')}"
        if unknown := stats["unknown"]:
            are = "is" if unknown == 1 else "are"
            text += f" ({counted(unknown, 'customer ids')} of the events {are} not in it)"
    return text


def customers_source(source: Source | None) -> str:
    """Name what the customers were read from: a file, or a database's table or query.

    A database table was called "customers file" in the summary (session 19's F7).

    Parameters
    ----------
    source : features.sources.Source, optional
        The customers' source.

    Returns
    -------
    str
        ``"customers table"``, ``"customers query"`` or ``"customers file"``.
    """
    if source is None or not source.is_database:
        return "customers file"
    return "customers query" if source.query is not None else "customers table"


def validate_command(
    path: Annotated[
        str | None,
        typer.Argument(
            metavar="PATH",
            help="Events: .csv, .parquet, a directory of .parquet or .csv files, or a database "
            "URI (postgresql://... or duckdb:///...) with --events-table or --events-query. "
            "Or give them with --events, as the other commands take them.",
            show_default=False,
        ),
    ] = None,
    events_option: Annotated[
        str | None,
        typer.Option("--events", help="The events, as PATH: give one or the other."),
    ] = None,
    customers: connectors.Customers = None,
    events_table: connectors.EventsTableOfPath = None,
    events_query: connectors.EventsQuery = None,
    customers_table: connectors.CustomersTable = None,
    customers_query: connectors.CustomersQuery = None,
    mapping: connectors.MappingFile = None,
) -> None:
    """Check events (and customers) against the contract; exit 1 on errors."""
    console = Console()
    given = path if path is not None else events_option
    if given is None:
        raise typer.BadParameter("give the events as PATH or with --events", param_hint="PATH")
    if events_option not in (None, given):
        raise typer.BadParameter(
            f"two events sources, {path!r} and {events_option!r}: give the events once, as PATH or "
            "with --events",
            param_hint="'--events'",
        )
    sources = connectors.inputs(
        given, events_table, events_query, customers, customers_table, customers_query, mapping
    )
    now = datetime.now(UTC)
    # as `features build` decides: many events (or files that cannot be counted) are validated
    # into files staged here and summarised from them, never held whole
    with tempfile.TemporaryDirectory(prefix="guanxi-events-") as folder:
        events, customers_loaded, problems = (
            sources.load(now) if sources.few_events() else sources.stage(now, Path(folder))
        )
        print_problems(console, problems)
        if events is None or any(p.severity == "error" for p in problems):
            errors = sum(p.severity == "error" for p in problems)
            console.print(Text(f"invalid: {errors} error{'s' if errors > 1 else ''}", style="red"))
            raise typer.Exit(1)
        frame = customers_loaded.frame if customers_loaded is not None else None
        said = summary(events.frame, frame, customers_source(sources.customers))
        console.print(Text("valid: " + said, style="green"))
