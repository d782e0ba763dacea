"""Where events and customers come from: a file, or a table or query in a database.

A :class:`Source` is what a command's ``--events`` (or ``--customers``) names, with the table or
query and the column mapping that go with it. :func:`load_events` and :func:`load_customers` read
it and run the SAME validation as for files (:mod:`features.events`): a database is one more way
to get rows, not a second validator. Problems name the database URI (password masked) and the
table as their "file"; rows of a table with a primary key are named by their key values.

A database's rows are streamed in batches into a Parquet staging file in a temporary folder
(removed afterwards), which is then validated exactly as a Parquet file is: the raw result is never
held whole, and what a database read adds to a file read's memory is the batches in flight, not a
function of the table's size. :func:`load_events` returns the validated events in memory;
:func:`stage_events` stages them as it stages a Parquet file's, so a database's events are never
held whole either way round. Event columns outside the contract are staged as nulls (they are
reported as ignored, not fetched). :func:`event_rows` counts a table's or query's rows (up to a
limit), so that a command can validate a small table in memory, as it does a small file.

Mapping
-------
A mapping file (YAML) lets a user's own tables be used without a view: it names, for each
contract column, the source column that holds it, and translates the source's event codes::

    customer_id: cust_no          # events column holding the contract's customer_id
    ts: created_at
    event_type: kind
    event_types:                  # the source's codes -> contract event types
      ORD: order
      RET: return
    key: event_no                 # optional: names rows in problems (a query has no primary key)
    customers:                    # the customers table, when its columns differ as well
      customer_id: cust_no
      signup_ts: created

Columns not named keep their names. Codes not listed are kept, and validation reports those that
are not contract event types. A problem in a mapped column is reported under the contract name with
the source column beside it, e.g. ``ts (created_at)``. The same mapping works for files.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Final, TypeVar

import polars as pl
import yaml

from features.contracts import CUSTOMER_COLUMNS, EVENT_COLUMNS, EVENT_TYPES
from features.database import DatabaseError, Relation, count, is_database, scan
from features.events import (
    EventsValidationError,
    Loaded,
    Prepare,
    Problem,
    Staged,
    StagedOrders,
    csv_rows,
    parquet_rows,
    stage_events_table,
    stage_orders_table,
    validate_customers,
    validate_events,
)
from features.events import load_customers as load_customers_file
from features.events import load_events as load_events_file
from features.events import stage_events as stage_events_file
from features.events import stage_orders as stage_orders_file
from features.store import SourceFile

__all__ = [
    "ColumnMapping",
    "MappingError",
    "Source",
    "TableMapping",
    "event_rows",
    "load_customers",
    "load_events",
    "stage_events",
    "stage_orders",
]

_EVENT_NAMES: Final = tuple(c.name for c in EVENT_COLUMNS)
_CUSTOMER_NAMES: Final = tuple(c.name for c in CUSTOMER_COLUMNS)


class MappingError(ValueError):
    """A mapping file cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class TableMapping:
    """How one table's columns map to a contract.

    Parameters
    ----------
    columns : dict of str to str
        Contract column -> source column.
    codes : dict of str to str
        The source's event codes -> contract event types (events only).
    key : tuple of str
        Columns naming rows in problems, when the source has no primary key.
    """

    columns: dict[str, str] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)
    key: tuple[str, ...] = ()

    def check(self, names: list[str], where: str) -> list[Problem]:
        """Report mapped columns that the source lacks, and columns that would collide.

        Parameters
        ----------
        names : list of str
            The source's columns.
        where : str
            The source as problems name it.

        Returns
        -------
        list of Problem
            One error per mapped column the source does not have.
        """
        have = ", ".join(repr(n) for n in names[:30])
        problems = [
            Problem(
                where,
                source,
                f"the mapping maps {target!r} to {source!r}, which is not a column here; "
                f"the columns are: {have}",
            )
            for target, source in self.columns.items()
            if source not in names
        ]
        problems += [
            Problem(
                where,
                target,
                f"the mapping maps {target!r} to {source!r}, but a column {target!r} exists "
                "too: map it to that one, or rename one of them",
            )
            for target, source in self.columns.items()
            if target != source and target in names and source in names
        ]
        problems += [
            Problem(
                where, k, f"the mapping's key {k!r} is not a column here; the columns are: {have}"
            )
            for k in self.key
            if k not in names and k not in self.columns.values()
        ]
        return problems

    def digest(self) -> str | None:
        """Return a digest of the mapping, which a snapshot's metadata records beside its source.

        Returns
        -------
        str or None
            ``sha256:`` and 12 hex digits of the mapping's canonical JSON (its columns, codes
            and key); None for the empty mapping, which leaves a source as it is.
        """
        if self == TableMapping():
            return None
        text = json.dumps(
            {"columns": self.columns, "codes": self.codes, "key": list(self.key)}, sort_keys=True
        )
        return f"sha256:{hashlib.sha256(text.encode()).hexdigest()[:12]}"

    def apply(self, raw: pl.LazyFrame, where: str) -> pl.LazyFrame:
        """Rename mapped columns to contract names and translate event codes.

        Parameters
        ----------
        raw : polars.LazyFrame
            The source's rows.
        where : str
            The source as problems name it.

        Returns
        -------
        polars.LazyFrame
            The rows under contract names.

        Raises
        ------
        features.events.EventsValidationError
            If the mapping names a column the source does not have.
        """
        problems = self.check(raw.collect_schema().names(), where)
        if problems:
            raise EventsValidationError(problems)
        frame = raw.rename({source: target for target, source in self.columns.items()})
        if self.codes:
            frame = frame.with_columns(
                pl.col("event_type").cast(pl.String).replace(self.codes).alias("event_type")
            )
        return frame

    def contract_key(self, key: tuple[str, ...] = ()) -> tuple[str, ...]:
        """Return the columns naming rows in problems, under their contract names.

        Parameters
        ----------
        key : tuple of str
            The source's own key (a table's primary key), used when the mapping names none.

        Returns
        -------
        tuple of str
            The mapping's key, or ``key``; a mapped column by its contract name.
        """
        renamed = {source: target for target, source in self.columns.items()}
        return tuple(renamed.get(k, k) for k in self.key or key)

    def rename_problem(self, problem: Problem) -> Problem:
        """Show a mapped column as ``contract (source)`` in a problem.

        Parameters
        ----------
        problem : Problem
            A problem found after mapping.

        Returns
        -------
        Problem
            The same problem, its column named the user's way too.
        """
        source = self.columns.get(problem.column or "")
        if source is None or source == problem.column:
            return problem
        return replace(problem, column=f"{problem.column} ({source})")


def _entries(data: object, path: Path, section: str) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise MappingError(f"{path}: {section} must be a mapping of names, not {data!r}")
    return {str(k): v for k, v in data.items()}


def _columns(
    entries: Mapping[str, Any], names: tuple[str, ...], path: Path, section: str
) -> dict[str, str]:
    columns = {}
    for target, source in entries.items():
        if target not in names:
            raise MappingError(
                f"{path}: {section}{target!r} is not a contract column (known: {', '.join(names)})"
            )
        if not isinstance(source, str | int) or isinstance(source, bool) or not str(source):
            raise MappingError(f"{path}: {section}{target!r} must name one source column")
        columns[target] = str(source)
    return columns


def _key(value: object, path: Path) -> tuple[str, ...]:
    if value is None:
        return ()
    keys = [value] if isinstance(value, str) else value
    if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
        raise MappingError(f"{path}: key must name a column or a list of columns")
    return tuple(keys)


@dataclass(frozen=True)
class ColumnMapping:
    """A mapping file: how a user's events and customers tables map to the contract.

    Parameters
    ----------
    events : TableMapping
        The events table's mapping.
    customers : TableMapping
        The customers table's mapping.
    path : pathlib.Path or None
        The file it was read from.
    """

    events: TableMapping = field(default_factory=TableMapping)
    customers: TableMapping = field(default_factory=TableMapping)
    path: Path | None = None

    @classmethod
    def read(cls, path: Path) -> ColumnMapping:
        """Read and check a mapping file.

        Parameters
        ----------
        path : pathlib.Path
            A YAML file (see the module docstring).

        Returns
        -------
        ColumnMapping
            The mapping.

        Raises
        ------
        MappingError
            If the file is missing or not YAML, names a column outside the contract, or maps a
            code to an unknown event type; the message names the file and the entry.
        """
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise MappingError(
                f"{path}: cannot read the mapping file ({error.strerror})"
            ) from error
        except yaml.YAMLError as error:
            raise MappingError(f"{path}: not a YAML mapping file ({error})") from error
        top = _entries(data, path, "the file")
        codes = {
            str(k): v
            for k, v in _entries(top.pop("event_types", None), path, "event_types").items()
        }
        bad = {code: target for code, target in codes.items() if target not in EVENT_TYPES}
        if bad:
            code, target = next(iter(bad.items()))
            raise MappingError(
                f"{path}: event_types maps {code!r} to {target!r}, which is not an event type "
                f"(known: {', '.join(EVENT_TYPES)})"
            )
        customers = _entries(top.pop("customers", None), path, "customers")
        customer_key = _key(customers.pop("key", None), path)
        events_key = _key(top.pop("key", None), path)
        return cls(
            events=TableMapping(_columns(top, _EVENT_NAMES, path, ""), codes, events_key),
            customers=TableMapping(
                _columns(customers, _CUSTOMER_NAMES, path, "customers: "), {}, customer_key
            ),
            path=path,
        )


@dataclass(frozen=True)
class Source:
    """An events or customers input: a file, or a database table or query.

    Parameters
    ----------
    location : str
        A file path (``.csv``, ``.parquet`` or a directory of them) or a database URI
        (``postgresql://...``, ``duckdb:///...``).
    table : str or None
        The table, for a database.
    query : str or None
        A ``SELECT``, for a database (instead of a table).
    mapping : TableMapping
        How the source's columns map to the contract.
    """

    location: str
    table: str | None = None
    query: str | None = None
    mapping: TableMapping = field(default_factory=TableMapping)

    def __post_init__(self) -> None:
        if self.is_database:
            Relation(self.location, self.table, self.query)  # checks table xor query
        elif self.table is not None or self.query is not None:
            raise DatabaseError(
                self.location,
                "a table or query needs a database URI (postgresql://... or duckdb:///...), "
                "not a file",
            )

    @property
    def is_database(self) -> bool:
        """Whether the source is a database."""
        return is_database(self.location)

    @property
    def label(self) -> str:
        """The source as messages name it (a database URI with its password masked)."""
        if self.is_database:
            return Relation(self.location, self.table, self.query).label
        return self.location

    def describe(self) -> SourceFile:
        """Describe the source for a snapshot's metadata.

        Returns
        -------
        features.store.SourceFile
            For a file, its path, size and modification time; for a database, the masked URI and
            table, or ``query sha256:`` and 12 hex digits of the query's text (size 0, the time
            of the call); with the :meth:`TableMapping.digest` of its mapping.

        Raises
        ------
        OSError
            If the file is missing.
        """
        if self.is_database:
            described = SourceFile.now(self.label)
            if self.query is not None:  # another query is another source
                digest = hashlib.sha256(self.query.encode()).hexdigest()[:12]
                described = replace(described, path=f"{self.label} sha256:{digest}")
        else:
            described = SourceFile.of(Path(self.location))
        return replace(described, mapping=self.mapping.digest())


_Result = TypeVar("_Result", Loaded, Staged, StagedOrders)


def _noun(source: Source) -> str:
    """Return what a database source is in messages ("the query's median"): table or query."""
    return "query" if source.query is not None else "table"


def _load(
    source: Source,
    now: datetime,
    file_loader: Callable[..., _Result],
    validate: Callable[..., _Result],
    used: tuple[str, ...] | None = None,
) -> _Result:
    """Load a source; for a database, sink its rows into a Parquet file first.

    ``file_loader`` reads a file source, ``validate`` a database's rows (a scan of that file).

    ``used`` names the columns validation keeps (None: every column); the others are staged as
    nulls of their type, so they are not fetched yet still reported as ignored.
    """
    mapping = source.mapping
    try:
        if not source.is_database:
            prepare = mapping.apply if mapping != TableMapping() else None
            return file_loader(Path(source.location), now=now, prepare=prepare)
        relation = Relation(source.location, source.table, source.query)
        raw, key = scan(relation)
        raw = mapping.apply(raw, relation.label)
        key = mapping.contract_key(key)
        if used is not None:
            raw = raw.with_columns(
                pl.lit(None, dtype=dtype).alias(name)
                for name, dtype in raw.collect_schema().items()
                if name not in used and name not in key
            )
        with tempfile.TemporaryDirectory(prefix="guanxi-staging-") as folder:
            staged = Path(folder) / "rows.parquet"
            raw.sink_parquet(staged)
            return validate(
                pl.scan_parquet(staged),
                now=now,
                file=relation.label,
                key=key,
            )
    except DatabaseError as error:
        problem = Problem(error.location, error.column, error.reason)
        raise EventsValidationError([problem]) from error
    except EventsValidationError as error:
        raise EventsValidationError([mapping.rename_problem(p) for p in error.problems]) from None


def load_events(source: Source, *, now: datetime) -> Loaded:
    """Read events from a file or a database and validate them against the events contract.

    Parameters
    ----------
    source : Source
        Where the events are.
    now : datetime.datetime
        The current time (naive means UTC); events after it are errors.

    Returns
    -------
    features.events.Loaded
        As :func:`features.events.load_events`.

    Raises
    ------
    features.events.EventsValidationError
        With every problem found; an unreachable database, refused credentials, a missing table
        or column and a mapping naming an unknown column are problems too.
    """
    validate = partial(validate_events, noun=_noun(source))
    return _load(source, now, load_events_file, validate, _EVENT_NAMES)


def event_rows(source: Source, *, at_most: int | None = None) -> int | None:
    """Return how many rows an events source holds, without reading it whole.

    Parameters
    ----------
    source : Source
        Where the events are.
    at_most : int, optional
        For a database, the count that matters: more rows are counted as ``at_most + 1``.

    Returns
    -------
    int or None
        The rows of a ``.parquet`` file or a directory of them, from their metadata
        (:func:`features.events.parquet_rows`); the data rows of a ``.csv`` file or a directory
        of them, estimated from their sizes and their first MiB (:func:`features.events.csv_rows`;
        counted for files of at most 1 MiB); a database table's or query's rows, counted by the
        database up to ``at_most + 1`` (:func:`features.database.count`). None for files that
        cannot be counted, and for a database without ``at_most`` or whose count fails or is
        slow.
    """
    if source.is_database:
        if at_most is None:
            return None
        return count(Relation(source.location, source.table, source.query), at_most=at_most)
    rows = parquet_rows(source.location)
    return rows if rows is not None else csv_rows(source.location)


def stage_events(source: Source, *, now: datetime, folder: Path) -> Staged:
    """Validate events as :func:`load_events` does, without holding them in memory.

    Parameters
    ----------
    source : Source
        Where the events are.
    now : datetime.datetime
        The current time (naive means UTC); events after it are errors.
    folder : pathlib.Path
        An existing directory for the staged events (see
        :func:`features.events.stage_events`); it must outlive the returned frame.

    Returns
    -------
    features.events.Staged
        A scan of the events staged in ``folder``: a file's (``.parquet`` or ``.csv``) or a
        directory's as :func:`features.events.stage_events` stages them; a database's rows sunk
        batch by batch into a Parquet file (in a temporary folder, removed afterwards) and that
        file staged as :func:`features.events.stage_events_table` stages it, rows named by the
        table's primary key. The problems are those of :func:`load_events`.

    Raises
    ------
    features.events.EventsValidationError
        As :func:`load_events`.
    """

    def stage(path: Path, *, now: datetime, prepare: Prepare | None) -> Staged:
        return stage_events_file(path, now=now, folder=folder, prepare=prepare)

    def stage_table(raw: pl.LazyFrame, *, now: datetime, file: str, key: tuple[str, ...]) -> Staged:
        return stage_events_table(
            raw, now=now, folder=folder, file=file, key=key, noun=_noun(source)
        )

    return _load(source, now, stage, stage_table, _EVENT_NAMES)


def stage_orders(source: Source, *, now: datetime, folder: Path) -> StagedOrders:
    """Validate events as :func:`stage_events` does, staging only the ``order`` events.

    Parameters
    ----------
    source : Source
        Where the events are.
    now : datetime.datetime
        The current time (naive means UTC); events after it are errors.
    folder : pathlib.Path
        An existing directory for the staged orders; it must outlive the returned frame.

    Returns
    -------
    features.events.StagedOrders
        A scan of the ``order`` events staged in ``folder`` (a file's or a directory's as
        :func:`features.events.stage_orders` stages them; a database's rows sunk into a Parquet
        file as :func:`stage_events` sinks them, then staged as
        :func:`features.events.stage_orders_table` stages them), the number of events and the
        last event's time. The problems are those of :func:`load_events`.

    Raises
    ------
    features.events.EventsValidationError
        As :func:`load_events`.
    """

    def stage(path: Path, *, now: datetime, prepare: Prepare | None) -> StagedOrders:
        return stage_orders_file(path, now=now, folder=folder, prepare=prepare)

    def stage_table(
        raw: pl.LazyFrame, *, now: datetime, file: str, key: tuple[str, ...]
    ) -> StagedOrders:
        return stage_orders_table(
            raw, now=now, folder=folder, file=file, key=key, noun=_noun(source)
        )

    return _load(source, now, stage, stage_table, _EVENT_NAMES)


def load_customers(source: Source, *, now: datetime) -> Loaded:
    """Read customers from a file or a database and validate them against the customers contract.

    Parameters
    ----------
    source : Source
        Where the customers are.
    now : datetime.datetime
        The current time (naive means UTC); sign-ups after it are errors.

    Returns
    -------
    features.events.Loaded
        As :func:`features.events.load_customers`.

    Raises
    ------
    features.events.EventsValidationError
        As :func:`load_events`.
    """
    return _load(source, now, load_customers_file, validate_customers)
