"""Where a command's events and customers come from, and where its result table goes.

Every command that reads events declares the same options through the aliases below and turns
them into :class:`features.sources.Source` objects with :func:`inputs`; every command that writes
a result table (``guanxi score``, and the value and targeting jobs) takes ``--out`` and
``--out-table`` and writes through :func:`write_output`. So a file, a PostgreSQL table or a DuckDB
table work the same way everywhere:

.. code-block:: text

    --events data/events.parquet
    --events postgresql://crm@db:5432/shop --events-table events [--mapping map.yaml]
    --events duckdb:///data/crm.duckdb --events-query "SELECT * FROM events WHERE ts > '2024-01-01'"
    --out scores.parquet
    --out postgresql://crm@db:5432/shop --out-table guanxi_scores

A table written with ``--out-table`` replaces the previous one in one transaction
(:func:`features.database.write_table`, or :func:`features.database.write_batches` for rows that
come a part at a time): readers see the old rows or the new ones, never a part.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import chain
from pathlib import Path
from typing import Annotated, Any, TypeVar, overload

import polars as pl
import typer

from features.database import (
    DatabaseError,
    check_writable,
    is_database,
    mask,
    write_batches,
    write_table,
)
from features.events import EventsValidationError, Loaded, Problem, Staged, StagedOrders
from features.sources import (
    ColumnMapping,
    MappingError,
    Source,
    TableMapping,
    event_rows,
    load_customers,
    load_events,
    stage_events,
    stage_orders,
)
from features.store import ParquetParts, SourceFile, atomic_write, fit_columns
from pipelines.engine import Engine

__all__ = [
    "Customers",
    "CustomersQuery",
    "CustomersTable",
    "Events",
    "EventsQuery",
    "EventsTable",
    "EventsTableOfPath",
    "Inputs",
    "MappingFile",
    "Out",
    "OutTable",
    "SparkEvents",
    "SparkOrEvents",
    "accepted",
    "check_folder",
    "check_output",
    "inputs",
    "inputs_or_table",
    "write_frame",
    "write_output",
    "write_parts",
]

logger = logging.getLogger(__name__)

_Loaded = TypeVar("_Loaded", Loaded, Staged, StagedOrders)

_DATABASES = "a database URI (postgresql://user@host:port/db or duckdb:///path/file.db)"

Events = Annotated[
    str,
    typer.Option(
        "--events",
        help="Events: a .csv or .parquet file, a directory of .parquet or .csv files, or "
        f"{_DATABASES} with --events-table or --events-query.",
    ),
]
SparkOrEvents = Annotated[
    str | None,
    typer.Option(
        "--events",
        help="Events: a .csv or .parquet file, a directory of .parquet or .csv files, or "
        f"{_DATABASES} with --events-table or --events-query. With --engine spark, leave it "
        "out and name a Spark catalog table (name or db.name) with --events-table.",
    ),
]


def _events_table(events: str) -> Any:
    """Build ``--events-table`` for a command whose events are given as ``events``."""
    return typer.Option(
        "--events-table", help=f"The events table (name or schema.name) of {events}."
    )


EventsTable = Annotated[str | None, _events_table("--events")]
EventsTableOfPath = Annotated[str | None, _events_table("PATH (or --events)")]
"""``--events-table`` of ``guanxi data validate``, whose events are its PATH argument."""

EventsQuery = Annotated[
    str | None,
    typer.Option("--events-query", help="A SELECT whose rows are the events, instead of a table."),
]
Customers = Annotated[
    str | None,
    typer.Option(
        "--customers",
        help=f"Customers (optional attributes): a file, or {_DATABASES} with --customers-table "
        "or --customers-query.",
    ),
]
CustomersTable = Annotated[
    str | None,
    typer.Option("--customers-table", help="The customers table of --customers."),
]
CustomersQuery = Annotated[
    str | None,
    typer.Option("--customers-query", help="A SELECT whose rows are the customers."),
]
MappingFile = Annotated[
    Path | None,
    typer.Option(
        "--mapping",
        help="YAML file mapping your column names and event codes to the events contract "
        "(e.g. 'customer_id: cust_no', 'ts: created_at', event_types: {ORD: order}).",
    ),
]
Out = Annotated[
    str,
    typer.Option(
        "--out", help=f"Output: a .parquet or .csv file, or {_DATABASES} with --out-table."
    ),
]
OutTable = Annotated[
    str | None,
    typer.Option(
        "--out-table",
        help="Table to create or replace (in one transaction) in the --out database.",
    ),
]


@dataclass(frozen=True)
class Inputs:
    """A command's events and optional customers.

    Parameters
    ----------
    events : features.sources.Source
        The events.
    customers : features.sources.Source or None
        The customers, if given.
    """

    events: Source
    customers: Source | None = None

    def load(self, now: datetime) -> tuple[Loaded | None, Loaded | None, list[Problem]]:
        """Load and validate both sources, collecting every problem of both.

        Parameters
        ----------
        now : datetime.datetime
            The current time; later timestamps are errors.

        Returns
        -------
        events : features.events.Loaded or None
            The validated events; None if they have errors.
        customers : features.events.Loaded or None
            The validated customers; None if not given or if they have errors.
        problems : list of features.events.Problem
            Every error and warning of both sources.
        """
        events, problems = _load(load_events, self.events, now)
        customers, found = self._load_customers(now)
        return events, customers, problems + found

    def few_events(self) -> bool:
        """Whether the events are few enough to validate in memory rather than stage.

        Returns
        -------
        bool
            True for events of at most ``GUANXI_FEATURES_IN_MEMORY_EVENTS`` rows
            (:func:`features.sources.event_rows`): files (Parquet or CSV, or a directory of
            them) counted from their metadata or size, a database table or query counted by the
            database (``SELECT COUNT(*)`` of at most that many rows plus one). False for more,
            and for files that cannot be counted or a database whose count fails or is slow
            (:data:`features.database.COUNT_SECONDS`): those go through :meth:`stage`.
        """
        from serving.settings import get_settings

        limit = get_settings().features_in_memory_events
        rows = event_rows(self.events, at_most=limit)
        return rows is not None and rows <= limit

    def stage(
        self, now: datetime, folder: Path
    ) -> tuple[Staged | None, Loaded | None, list[Problem]]:
        """As :meth:`load`, the events staged in ``folder`` instead of held in memory.

        Parameters
        ----------
        now : datetime.datetime
            The current time; later timestamps are errors.
        folder : pathlib.Path
            An existing directory that outlives the events' frame
            (:func:`features.sources.stage_events`).

        Returns
        -------
        events : features.events.Staged or None
            The validated events: a scan of the staged events, for a file source (Parquet or
            CSV) or a database table or query alike; None if they have errors.
        customers : features.events.Loaded or None
            As :meth:`load`.
        problems : list of features.events.Problem
            As :meth:`load` (the same problems).
        """

        def stage(source: Source, *, now: datetime) -> Staged:
            return stage_events(source, now=now, folder=folder)

        events, problems = _load(stage, self.events, now)
        customers, found = self._load_customers(now)
        return events, customers, problems + found

    def stage_orders(
        self, now: datetime, folder: Path
    ) -> tuple[StagedOrders | None, Loaded | None, list[Problem]]:
        """As :meth:`stage`, only the ``order`` events staged (every event validated).

        For a reader of the orders alone (``guanxi value`` with the day's snapshot in the
        store): :func:`features.sources.stage_orders`.

        Parameters
        ----------
        now : datetime.datetime
            The current time; later timestamps are errors.
        folder : pathlib.Path
            An existing directory that outlives the orders' frame.

        Returns
        -------
        events : features.events.StagedOrders or None
            The validated events' orders and last time; None if they have errors.
        customers : features.events.Loaded or None
            As :meth:`load`.
        problems : list of features.events.Problem
            As :meth:`load` (the same problems).
        """

        def stage(source: Source, *, now: datetime) -> StagedOrders:
            return stage_orders(source, now=now, folder=folder)

        events, problems = _load(stage, self.events, now)
        customers, found = self._load_customers(now)
        return events, customers, problems + found

    def _load_customers(self, now: datetime) -> tuple[Loaded | None, list[Problem]]:
        if self.customers is None:
            return None, []
        return _load(load_customers, self.customers, now)

    def read(self, now: datetime) -> tuple[pl.DataFrame, pl.DataFrame | None]:
        """Load and validate both sources; warnings go to the log.

        Parameters
        ----------
        now : datetime.datetime
            The current time; later timestamps are errors.

        Returns
        -------
        tuple of (polars.DataFrame, polars.DataFrame or None)
            The validated events and customers.

        Raises
        ------
        features.events.EventsValidationError
            With every problem of both sources, if any is an error.
        """
        events, customers, problems = self.load(now)
        events = accepted(events, problems)
        return events.frame, customers.frame if customers is not None else None


def _load(
    loader: Callable[..., _Loaded], source: Source, now: datetime
) -> tuple[_Loaded | None, list[Problem]]:
    try:
        loaded = loader(source, now=now)
    except EventsValidationError as error:
        return None, error.problems
    return loaded, list(loaded.warnings)


def _source(
    location: str, table: str | None, query: str | None, mapping: ColumnMapping, which: str
) -> Source:
    part = mapping.events if which == "events" else mapping.customers
    try:
        return Source(location, table, query, part)
    except (DatabaseError, ValueError) as error:
        raise typer.BadParameter(str(error), param_hint=f"--{which}") from error


def _mapping(mapping: Path | None) -> ColumnMapping:
    try:
        return ColumnMapping.read(mapping) if mapping is not None else ColumnMapping()
    except MappingError as error:
        raise typer.BadParameter(str(error), param_hint="--mapping") from error


def _customers(
    customers: str | None, table: str | None, query: str | None, columns: ColumnMapping
) -> Source | None:
    if customers is None and (table or query):
        raise typer.BadParameter("a table or query needs --customers", param_hint="--customers")
    if customers is None:
        return None
    return _source(customers, table, query, columns, "customers")


@overload
def accepted(events: Loaded | None, problems: list[Problem]) -> Loaded: ...


# an overlap only in Loaded, which both return: mypy's check of overloads sees unions whole
@overload
def accepted(  # type: ignore[overload-overlap]
    events: Loaded | Staged | None, problems: list[Problem]
) -> Loaded | Staged: ...


@overload
def accepted(
    events: Loaded | StagedOrders | None, problems: list[Problem]
) -> Loaded | StagedOrders: ...


def accepted(
    events: Loaded | Staged | StagedOrders | None, problems: list[Problem]
) -> Loaded | Staged | StagedOrders:
    """Return validated events if no problem is an error, the warnings sent to the log.

    Parameters
    ----------
    events : features.events.Loaded, features.events.Staged, features.events.StagedOrders or None
        The events of :meth:`Inputs.load`, :meth:`Inputs.stage` or :meth:`Inputs.stage_orders`.
    problems : list of features.events.Problem
        Every problem of the inputs.

    Returns
    -------
    features.events.Loaded, features.events.Staged or features.events.StagedOrders
        ``events``.

    Raises
    ------
    features.events.EventsValidationError
        With every problem, if any is an error or there are no events.
    """
    if events is None or any(p.severity == "error" for p in problems):
        raise EventsValidationError(problems)
    for warning in problems:
        logger.warning("%s", warning)
    return events


def inputs(
    events: str,
    events_table: str | None = None,
    events_query: str | None = None,
    customers: str | None = None,
    customers_table: str | None = None,
    customers_query: str | None = None,
    mapping: Path | None = None,
) -> Inputs:
    """Turn a command's input options into sources.

    Parameters
    ----------
    events, events_table, events_query : str
        ``--events`` and its table or query.
    customers, customers_table, customers_query : str, optional
        ``--customers`` and its table or query.
    mapping : pathlib.Path, optional
        ``--mapping``.

    Returns
    -------
    Inputs
        The sources.

    Raises
    ------
    typer.BadParameter
        If the mapping file is unusable, a table or query is given with a file, or a database is
        given without exactly one of its table and query.
    """
    columns = _mapping(mapping)
    people = _customers(customers, customers_table, customers_query, columns)
    return Inputs(_source(events, events_table, events_query, columns, "events"), people)


@dataclass(frozen=True)
class SparkEvents:
    """Events in a Spark catalog table (``--engine spark --events-table name``, no ``--events``).

    Parameters
    ----------
    table : str
        The table, ``name`` or ``db.name``.
    mapping : features.sources.TableMapping
        The events' column mapping.
    customers : features.sources.Source or None
        The customers (a file or a database, read in this process), if given.
    """

    table: str
    mapping: TableMapping = field(default_factory=TableMapping)
    customers: Source | None = None

    @property
    def label(self) -> str:
        """The table as messages name it."""
        return f"Spark table {self.table}"

    def describe(self) -> SourceFile:
        """Describe the table for a snapshot's metadata (its name and the time of the call).

        Returns
        -------
        features.store.SourceFile
            The description, with the digest of the column mapping
            (:meth:`features.sources.TableMapping.digest`).
        """
        return replace(SourceFile.now(self.label), mapping=self.mapping.digest())


def inputs_or_table(
    events: str | None,
    events_table: str | None,
    events_query: str | None,
    customers: str | None,
    customers_table: str | None,
    customers_query: str | None,
    mapping: Path | None,
    engine: Engine,
) -> Inputs | SparkEvents:
    """Turn the input options of a command that can run on Spark into sources.

    Parameters
    ----------
    events, events_table, events_query : str, optional
        ``--events`` and its table or query.
    customers, customers_table, customers_query : str, optional
        ``--customers`` and its table or query.
    mapping : pathlib.Path, optional
        ``--mapping``.
    engine : {"polars", "spark"}
        ``--engine``.

    Returns
    -------
    Inputs or SparkEvents
        :func:`inputs` when ``--events`` is given; the Spark table (and the customers) when it
        is left out.

    Raises
    ------
    typer.BadParameter
        If ``--events`` is left out without ``--engine spark`` and ``--events-table``, or with a
        query (a query needs a database in ``--events``); or as :func:`inputs`.
    """
    if events is not None:
        return inputs(
            events, events_table, events_query, customers, customers_table, customers_query,
            mapping,
        )  # fmt: skip
    if engine != "spark" or not events_table or events_query:
        raise typer.BadParameter(
            "name the events: a file or a database URI, or, with --engine spark, a Spark table "
            "with --events-table (and no --events)",
            param_hint="--events",
        )
    columns = _mapping(mapping)
    people = _customers(customers, customers_table, customers_query, columns)
    return SparkEvents(events_table, columns.events, people)


def check_output(out: str, out_table: str | None) -> None:
    """Refuse an output that cannot work before anything is computed or written.

    Parameters
    ----------
    out : str
        ``--out``: a file or a database URI.
    out_table : str, optional
        ``--out-table``.

    Raises
    ------
    typer.BadParameter
        If a database has no table or cannot be reached, a file has a table, a file has an
        unknown suffix, it is a directory (a folder of Parquet parts named ``*.parquet``), or
        its folder cannot take a new file (:func:`check_folder`).
    """
    if is_database(out):
        if not out_table:
            raise typer.BadParameter(
                f"{mask(out)} is a database: name the table with --out-table", param_hint="--out"
            )
        try:
            check_writable(out, out_table)
        except DatabaseError as error:
            raise typer.BadParameter(str(error), param_hint="--out") from error
    elif out_table:
        raise typer.BadParameter(
            "--out-table needs a database URI in --out (postgresql://... or duckdb:///...)",
            param_hint="--out-table",
        )
    elif Path(out).suffix.lower() not in (".csv", ".parquet"):
        raise typer.BadParameter(f"{out} must end in .csv or .parquet", param_hint="--out")
    elif Path(out).is_dir():
        raise typer.BadParameter(
            f"{out} is a directory: name a file to write, which is replaced if it exists",
            param_hint="--out",
        )
    else:
        check_folder(Path(out).parent, f"cannot write {out}", "--out")


def check_folder(folder: Path, what: str, option: str) -> None:
    """Refuse a folder that cannot take a new file, before any work is done.

    A probe file is created in ``folder`` and removed; a folder that does not exist yet is
    probed at its nearest existing parent, where the writers (:func:`features.store.atomic_write`)
    would create it. Without this an unwritable ``--out`` (``/proc/x.parquet``, a read-only
    folder) failed with a traceback only after all the work.

    Parameters
    ----------
    folder : pathlib.Path
        Where the files will be written.
    what : str
        What cannot be done, to start the message: ``"cannot write scores.parquet"``.
    option : str
        The option that named it, e.g. ``"--out"``.

    Raises
    ------
    typer.BadParameter
        Naming the folder and the reason (the system's: "Permission denied", "Read-only file
        system"...) when a file cannot be created there, or when a file stands where a folder
        should.
    """
    existing = folder
    while not _exists(existing) and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise typer.BadParameter(f"{what}: {existing} is a file, not a folder", param_hint=option)
    try:
        descriptor, probe = tempfile.mkstemp(prefix=".guanxi-probe-", dir=existing)
    except OSError as error:
        reason = error.strerror or str(error)
        raise typer.BadParameter(
            f"{what}: cannot create a file in {existing} ({reason})", param_hint=option
        ) from error
    os.close(descriptor)
    os.unlink(probe)


def _exists(path: Path) -> bool:
    """Tell whether ``path`` exists; a path that cannot be looked at counts as existing."""
    try:
        return path.exists()
    except OSError:  # e.g. a parent without search permission: probed there, which says why
        return True


def write_output(frame: pl.DataFrame, out: str, out_table: str | None) -> str:
    """Write a result table to a file or a database table, atomically either way.

    Parameters
    ----------
    frame : polars.DataFrame
        The rows.
    out : str
        A ``.parquet`` or ``.csv`` file (CSV when it ends in ``.csv``), or a database URI; checked
        beforehand with :func:`check_output`.
    out_table : str, optional
        The table, for a database.

    Returns
    -------
    str
        Where the rows went, for the console (a URI's password masked).

    Raises
    ------
    features.database.DatabaseError
        If the database cannot be reached or refuses the write; the previous table is unchanged.
    """
    if is_database(out) and out_table is not None:
        write_table(out, out_table, frame, memory=_duckdb_memory())
        return f"{mask(out)} table {out_table}"
    return str(write_frame(frame, Path(out)))


def _duckdb_memory() -> str:
    """Return DuckDB's memory limit for a table write (``GUANXI_DUCKDB_WRITE_MEMORY``)."""
    from serving.settings import get_settings

    return get_settings().duckdb_write_memory


def write_parts(
    parts: Iterable[pl.DataFrame], schema: pl.Schema, out: str, out_table: str | None
) -> tuple[str, int]:
    """Write a result table that comes a part at a time, atomically, as :func:`write_output`.

    A file gets each part as it comes, into a temporary file next to ``out`` that replaces it
    only when every part is written (:func:`features.store.atomic_write`: if a part raises,
    nothing is left at ``out`` but its old content, and no temporary file): Parquet a row group
    (or more) a part, zstd level 3 and a dictionary only for the columns whose values repeat in
    the first part (about the size of Polars' ``write_parquet`` of the whole table), CSV appended
    a part at a time under one header. A database table is
    replaced in one transaction, each part inserted as it comes
    (:func:`features.database.write_batches`: if a part raises, the old table is unchanged).

    Parameters
    ----------
    parts : iterable of polars.DataFrame
        The rows, a part at a time; a column of ``schema`` missing from a part is null there.
    schema : polars.Schema
        Every column of the table, in order, with its type.
    out : str
        A ``.parquet`` or ``.csv`` file (CSV when it ends in ``.csv``), or a database URI; checked
        beforehand with :func:`check_output`.
    out_table : str, optional
        The table, for a database.

    Returns
    -------
    tuple of (str, int)
        Where the rows went, for the console (a URI's password masked), and how many.

    Raises
    ------
    features.database.DatabaseError
        If the database cannot be reached or refuses the write; the previous table is unchanged.
    """
    empty = pl.DataFrame(schema=schema)
    rows = 0

    def fitted() -> Iterable[pl.DataFrame]:
        nonlocal rows
        for part in parts:
            rows += part.height
            yield fit_columns(part, schema)

    if is_database(out) and out_table is not None:
        write_batches(out, out_table, chain([empty], fitted()), memory=_duckdb_memory())
        return f"{mask(out)} table {out_table}", rows

    def write(path: Path) -> None:
        if Path(out).suffix.lower() == ".csv":
            with path.open("wb") as sink:
                empty.write_csv(sink)
                for part in fitted():
                    part.write_csv(sink, include_header=False)
            return
        with ParquetParts(path, schema) as table:
            for part in fitted():
                table.write(part)

    return str(atomic_write(Path(out), write)), rows


def write_frame(frame: pl.DataFrame, out: Path) -> Path:
    """Write a frame atomically, as CSV when ``out`` ends in ``.csv``, else Parquet.

    Parameters
    ----------
    frame : polars.DataFrame
        Rows to write.
    out : pathlib.Path
        Target file.

    Returns
    -------
    pathlib.Path
        ``out``.
    """
    if out.suffix.lower() == ".csv":
        return atomic_write(out, frame.write_csv)
    return atomic_write(out, frame.write_parquet)
