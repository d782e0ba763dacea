"""Databases as sources and sinks: PostgreSQL through ADBC, and DuckDB files.

This module only moves rows in and out; what the rows mean (the events contract, the mapping of a
user's columns) is :mod:`features.sources`' and :mod:`features.events`' business.

Locations
---------
A database is named by a URI:

* ``postgresql://user:password@host:port/db`` (or ``postgres://``; libpq's query parameters such as
  ``?sslmode=require`` pass through). The password may also come from ``PGPASSWORD`` or
  ``~/.pgpass``, as for ``psql``: a URI without one never shows a secret.
* ``duckdb:///path/to/file.db``: a DuckDB file; what follows ``duckdb://`` is the path, so three
  slashes mean an absolute path and ``duckdb://data/crm.db`` a relative one. Four slashes,
  SQLAlchemy's absolute form (``duckdb:////path/to/file.db``), name the same file as three. As
  SQLAlchemy reads ``duckdb:///crm.db`` as a relative path, a write to a file at the root named
  with three slashes is refused, naming both forms.

Every message names the URI with its password masked (:func:`mask`).

Reading
-------
:func:`scan` turns a table or a query into a :class:`polars.LazyFrame` whose rows come from the
database in batches (Polars' ``read_database`` with ``iter_batches``: ADBC's Arrow record-batch
stream for PostgreSQL, DuckDB's Arrow reader for DuckDB). Collected or sunk by the streaming
engine, the rows go on batch by batch and the raw result is never held whole
(:mod:`features.sources` sinks them into a Parquet staging file, then validates that file as any
Parquet file). Only the columns the plan needs are asked for (projection pushdown into the
SQL). The column types come from the database without reading rows (the query with
``LIMIT 0``); the primary key of a table is read from the catalog, so problems can name rows by
it. PostgreSQL ``numeric`` arrives as text and is
parsed like a CSV value. :func:`count` counts a table's or query's rows up to a limit, so a caller
can hold a small table in memory and stage a large one; a count that fails or is slow gives up
(None) rather than fail the command.

Writing
-------
:func:`write_table` replaces a table atomically: the rows go into a staging table created in the
same transaction, then the old table is dropped and the staging table renamed, and only then is
the transaction committed. :func:`write_batches` does the same with rows that come a batch at a
time (``guanxi score``'s), never held together: PostgreSQL gets each batch inside the
transaction as it comes, DuckDB one statement reading them from a temporary Parquet file, in a
folder named ``.guanxi-rows-<pid>-<host>-...`` next to the database file (a write killed before
it removes its folder leaves it; the next write into that folder removes it,
:func:`remove_stale_spills`). A
reader sees the old table or the new one, never a part; a writer that dies (SIGKILL, lost
connection) leaves the old table as it was, and its staging table disappears with the
rolled-back transaction. Indexes, grants and views on the old table do not carry over (a view
on it makes the drop fail: nothing is written and the error says why).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import polars as pl

from features.store import process_alive

__all__ = [
    "BATCH_ROWS",
    "COUNT_SECONDS",
    "DUCKDB_WRITE_MEMORY",
    "SPILL_STALE_SECONDS",
    "DatabaseError",
    "Relation",
    "check_writable",
    "count",
    "is_database",
    "mask",
    "remove_stale_spills",
    "scan",
    "write_batches",
    "write_table",
]

logger = logging.getLogger(__name__)

BATCH_ROWS: Final = 250_000
"""Rows per batch asked of DuckDB (PostgreSQL's ADBC driver sizes batches at about 16 MB)."""

COUNT_SECONDS: Final = 10.0
"""How long :func:`count` waits for a database to count rows before it gives up."""

DUCKDB_WRITE_MEMORY: Final = "1GB"
"""DuckDB's memory limit while it writes a table from the batches' file, by default (by its own
default it may cache up to 80 % of the machine's memory: 3.5 GB more for 10.5M score rows, against
1 GB with this); the commands take ``GUANXI_DUCKDB_WRITE_MEMORY``."""

SPILL_STALE_SECONDS: Final = 86_400
"""Age after which :func:`remove_stale_spills` removes a spill folder whatever wrote it (another
host's, or one named before the folders were named by process)."""

_SPILL_PREFIX: Final = ".guanxi-rows-"
_SPILL_NAME: Final = re.compile(r"^\.guanxi-rows-(\d+)-([0-9a-f]{8})-")
_HOST: Final = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]

_SCHEMES: Final = ("postgresql", "postgres", "duckdb")
_IDENTIFIER: Final = re.compile(r"^[^\x00-\x1f\"]{1,63}$")
_FIRST_LINE: Final = 300


class DatabaseError(ValueError):
    """A database cannot be reached, read or written; the message names the URI (masked).

    Parameters
    ----------
    location : str
        The database, table or query concerned, as shown to the user (password masked).
    message : str
        What went wrong.
    column : str or None
        The column concerned, if any.
    """

    def __init__(self, location: str, message: str, column: str | None = None) -> None:
        self.location = location
        self.column = column
        self.reason = message
        where = location + (f", column {column!r}" if column else "")
        super().__init__(f"{where}: {message}")


def is_database(location: str | Path) -> bool:
    """Tell whether an input or output names a database rather than a file.

    Parameters
    ----------
    location : str or pathlib.Path
        What the user passed to ``--events``, ``--customers`` or ``--out``.

    Returns
    -------
    bool
        True for a ``postgresql://``, ``postgres://`` or ``duckdb://`` URI.
    """
    return (
        isinstance(location, str)
        and location.split("://", 1)[0].lower() in _SCHEMES
        and ("://" in location)
    )


def mask(uri: str) -> str:
    """Return the URI with its password (in the user part or a ``password=`` parameter) masked.

    Parameters
    ----------
    uri : str
        A database URI.

    Returns
    -------
    str
        The same URI with ``***`` in place of any password.
    """
    parts = urlsplit(uri)
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        if ":" in user:
            netloc = f"{user.split(':', 1)[0]}:***@{host}"
    query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    if (netloc, query) == (parts.netloc, parts.query):
        return uri
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Relation:
    """A table (optionally ``schema.table``) or a query in a database.

    Parameters
    ----------
    uri : str
        The database.
    table : str or None
        A table name, ``name`` or ``schema.name``, taken as written (quoted, so case counts).
    query : str or None
        A ``SELECT`` whose rows are the table. Exactly one of ``table`` and ``query`` is given.
    """

    uri: str
    table: str | None = None
    query: str | None = None

    def __post_init__(self) -> None:
        if (self.table is None) == (self.query is None):
            raise DatabaseError(mask(self.uri), "name a table or a query (exactly one of them)")
        if self.table is not None:
            parts = self.table.split(".")
            if len(parts) > 2 or not all(_IDENTIFIER.match(p) for p in parts):
                raise DatabaseError(
                    mask(self.uri), f"{self.table!r} is not a table name (name or schema.name)"
                )

    @property
    def label(self) -> str:
        """The relation as problems and messages name it, password masked."""
        what = f"table {self.table}" if self.table is not None else "query"
        return f"{mask(self.uri)} {what}"

    @property
    def kind(self) -> str:
        """``"postgresql"`` or ``"duckdb"``."""
        return "duckdb" if self.uri.lower().startswith("duckdb://") else "postgresql"

    def schema_and_name(self) -> tuple[str | None, str]:
        """Split the table name into its schema (None when not given) and name.

        Returns
        -------
        tuple of (str or None, str)
            Schema and table name.
        """
        if self.table is None:
            raise ValueError("a query has no table name")
        schema, _, name = self.table.rpartition(".")
        return schema or None, name

    def qualified(self, name: str | None = None) -> str:
        """Return the quoted table name, or another table's in the same schema.

        Parameters
        ----------
        name : str, optional
            A table name to qualify with this table's schema instead of its own.

        Returns
        -------
        str
            ``"schema"."name"`` or ``"name"``.
        """
        schema, own = self.schema_and_name()
        quoted = _quote(name or own)
        return f"{_quote(schema)}.{quoted}" if schema else quoted

    def select(self, columns: list[str] | None = None, limit: int | None = None) -> str:
        """Return SQL that selects the rows (some columns, at most ``limit`` rows).

        Parameters
        ----------
        columns : list of str, optional
            The columns to select; all when None.
        limit : int, optional
            A row limit.

        Returns
        -------
        str
            One ``SELECT`` statement.
        """
        body = f"SELECT * FROM {self.qualified()}" if self.table is not None else self.query
        assert body is not None
        wanted = ", ".join(_quote(c) for c in columns) if columns is not None else "*"
        sql = f"SELECT {wanted} FROM ({body.strip().rstrip(';')}) AS guanxi_source"
        return sql + (f" LIMIT {limit}" if limit is not None else "")


def _reason(error: Exception, relation: Relation) -> str:
    """Return the first line of a driver's error, without its prefixes or the password."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    password = urlsplit(relation.uri).password
    if password:
        text = text.replace(password, "***")
    text = re.sub(r"^(IO|INTERNAL|NOT_FOUND|INVALID_ARGUMENT|UNKNOWN)(: )+", "", text)
    text = re.sub(r"^(\[[^\]]*\] )?(Failed to \w+ \w+: )?(ERROR:  )?", "", text)
    return text[:_FIRST_LINE]


def _connection_error(relation: Relation, error: Exception) -> DatabaseError:
    reason = _reason(error, relation)
    lowered = reason.lower()
    where = relation.label
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return DatabaseError(where, f"wrong user name or password ({reason})")
    if "connection refused" in lowered or "could not connect" in lowered or "timeout" in lowered:
        return DatabaseError(where, f"cannot reach the database server ({reason})")
    if "does not exist" in lowered:
        return DatabaseError(where, f"no such database ({reason})")
    return DatabaseError(where, f"cannot connect: {reason}")


def _duckdb_path(uri: str, *, write: bool = False) -> Path:
    """Return the DuckDB file a URI names: what follows ``duckdb://``.

    Four slashes (SQLAlchemy's absolute form, ``duckdb:////data/crm.duckdb``) name the same file
    as three. A write to a file at the root named with three slashes is refused: SQLAlchemy
    reads ``duckdb:///crm.duckdb`` as ``crm.duckdb`` of the working directory, and it went
    silently to ``/crm.duckdb``.
    """
    rest = uri.split("://", 1)[1]
    if rest.startswith("//"):
        return Path("/" + rest.lstrip("/"))
    path = Path(rest)
    if write and path.is_absolute() and path.parent == Path(path.anchor) and path.name:
        raise DatabaseError(
            mask(uri),
            f"names {path}, at the root of the file system (three slashes make an absolute "
            f"path); write duckdb://{path.name} for {path.name} of the working directory, or "
            f"duckdb:///{path} for the root",
        )
    return path


def _relative_hint(path: Path) -> str:
    """Point to ``duckdb://name`` when ``duckdb:///name`` missed a file of the working directory.

    Three slashes mean an absolute path here, while SQLAlchemy's ``sqlite:///name`` is relative:
    a user who writes ``duckdb:///crm.duckdb`` for the file beside them gets ``/crm.duckdb``.
    """
    relative = Path(*path.parts[1:]) if path.is_absolute() else None
    if relative is None or not relative.parts or not relative.is_file():
        return ""
    return (
        f" (three slashes make an absolute path; the file {relative} of the working directory "
        f"is duckdb://{relative.as_posix()})"
    )


@contextmanager
def _connect(relation: Relation, *, write: bool = False) -> Iterator[Any]:
    """Open a DB-API connection (ADBC for PostgreSQL, duckdb for DuckDB), errors translated."""
    if relation.kind == "duckdb":
        import duckdb

        path = _duckdb_path(relation.uri, write=write)
        if not write and not path.is_file():
            raise DatabaseError(relation.label, f"no DuckDB file at {path}{_relative_hint(path)}")
        try:
            connection = duckdb.connect(str(path), read_only=not write)
        except duckdb.Error as error:
            raise _connection_error(relation, error) from error
    else:
        import adbc_driver_manager
        import adbc_driver_postgresql.dbapi as postgresql

        uri = "postgresql://" + relation.uri.split("://", 1)[1]
        try:
            connection = postgresql.connect(uri)
        except adbc_driver_manager.Error as error:
            raise _connection_error(relation, error) from error
    try:
        yield connection
    finally:
        connection.close()


def _driver_errors(relation: Relation) -> tuple[type[Exception], ...]:
    if relation.kind == "duckdb":
        import duckdb

        return (duckdb.Error,)
    import adbc_driver_manager

    return (adbc_driver_manager.Error,)


def _read_error(relation: Relation, error: Exception) -> DatabaseError:
    reason = _reason(error, relation)
    lowered = reason.lower()
    if relation.table is not None and (
        "does not exist" in lowered and ("relation" in lowered or "table" in lowered)
    ):
        return DatabaseError(relation.label, "no such table")
    if relation.query is not None:
        return DatabaseError(relation.label, f"the query failed: {reason}")
    return DatabaseError(relation.label, f"cannot read: {reason}")


def _storage(dtype: pl.DataType) -> pl.DataType:
    """Return the type a column is handed on as: an extension type (numeric) as its storage."""
    if isinstance(dtype, pl.Extension):
        storage = dtype.ext_storage()
        return storage if isinstance(storage, pl.DataType) else storage()
    return dtype


def _batches(relation: Relation, sql: str, batch_size: int) -> Iterator[pl.DataFrame]:
    errors = _driver_errors(relation)
    with _connect(relation) as connection:
        try:
            for batch in pl.read_database(
                sql, connection=connection, iter_batches=True, batch_size=batch_size
            ):
                extensions = [n for n, t in batch.schema.items() if isinstance(t, pl.Extension)]
                yield batch.with_columns(pl.col(n).ext.storage() for n in extensions)
        except errors as error:
            raise _read_error(relation, error) from error


def _primary_key(relation: Relation, connection: Any) -> tuple[str, ...]:
    """Return a table's primary-key columns in key order; empty for a query or no key."""
    if relation.table is None:
        return ()
    schema, name = relation.schema_and_name()
    if relation.kind == "duckdb":
        sql = (
            "SELECT constraint_column_names FROM duckdb_constraints() "
            "WHERE constraint_type = 'PRIMARY KEY' AND table_name = ? "
            + ("AND schema_name = ?" if schema else "")
        )
        params = [name, schema] if schema else [name]
        row = connection.execute(sql, params).fetchone()
        return tuple(row[0]) if row else ()
    sql = (
        "SELECT a.attname FROM pg_index i "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indisprimary AND i.indrelid = to_regclass($1) "
        "ORDER BY array_position(i.indkey, a.attnum)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, (relation.qualified(),))
        return tuple(str(r[0]) for r in cursor.fetchall())


def scan(
    relation: Relation, *, batch_size: int = BATCH_ROWS
) -> tuple[pl.LazyFrame, tuple[str, ...]]:
    """Scan a table or query lazily, in batches.

    Parameters
    ----------
    relation : Relation
        The table or query.
    batch_size : int
        Rows per batch where the driver takes a size (DuckDB).

    Returns
    -------
    frame : polars.LazyFrame
        The rows; each collection runs the query again (only for the columns it needs).
    key : tuple of str
        The table's primary-key columns; empty for a query or a table without one.

    Raises
    ------
    DatabaseError
        If the database cannot be reached, the user is refused, the table does not exist or the
        query fails; the message names the URI (password masked) and the table.
    """
    errors = _driver_errors(relation)
    with _connect(relation) as connection:
        try:
            empty = pl.read_database(relation.select(limit=0), connection=connection)
            key = _primary_key(relation, connection)
        except errors as error:
            raise _read_error(relation, error) from error
    schema = {name: _storage(dtype) for name, dtype in empty.schema.items()}

    def source(
        with_columns: list[str] | None,
        predicate: pl.Expr | None,
        n_rows: int | None,
        hinted: int | None,
    ) -> Iterator[pl.DataFrame]:
        sql = relation.select(with_columns, n_rows)
        for batch in _batches(relation, sql, batch_size):
            yield batch.filter(predicate) if predicate is not None else batch

    frame = pl.io.plugins.register_io_source(
        source, schema=schema, explain_name="database", explain_detail=relation.label
    )
    return frame, key


def count(relation: Relation, *, at_most: int, seconds: float | None = None) -> int | None:
    """Count a table's or query's rows, up to ``at_most + 1``; give up when that fails or is slow.

    One ``SELECT COUNT(*)`` over at most ``at_most + 1`` of the rows (a ``LIMIT``, so a large
    table is not scanned to its end), run in a thread; if it has not answered within ``seconds``
    it is cancelled (DuckDB's interrupt, ADBC's cancel) and the answer is None.

    Parameters
    ----------
    relation : Relation
        The table or query.
    at_most : int
        The count that matters: more rows are counted as ``at_most + 1``.
    seconds : float, optional
        How long to wait for the database, the connection included (default
        :data:`COUNT_SECONDS`).

    Returns
    -------
    int or None
        The rows, ``at_most + 1`` standing for more than ``at_most``; None when the database
        cannot be reached, the count fails or it takes longer than ``seconds`` (logged at INFO).
    """
    wait = COUNT_SECONDS if seconds is None else seconds
    sql = f"SELECT COUNT(*) FROM ({relation.select(limit=at_most + 1)}) AS guanxi_count"
    answer: list[int] = []
    cancels: list[Callable[[], object]] = []
    given_up = threading.Event()

    def run() -> None:
        try:
            with _connect(relation) as connection:
                if given_up.is_set():
                    return
                if relation.kind == "duckdb":
                    cancels.append(connection.interrupt)
                    row = connection.execute(sql).fetchone()
                else:
                    with connection.cursor() as cursor:
                        cancels.append(cursor.adbc_cancel)
                        cursor.execute(sql)
                        row = cursor.fetchone()
            answer.append(int(row[0]))
        except Exception as error:  # any failure means "not counted": the caller stages
            if not given_up.is_set():
                why = error.reason if isinstance(error, DatabaseError) else _reason(error, relation)
                logger.info("%s: rows not counted (%s)", relation.label, why)

    thread = threading.Thread(target=run, name="guanxi-count", daemon=True)
    thread.start()
    thread.join(wait)
    if thread.is_alive():
        given_up.set()
        logger.info("%s: rows not counted (no answer in %s s)", relation.label, wait)
        for cancel in cancels:
            with contextlib.suppress(Exception):
                cancel()
        thread.join(1.0)  # let the cancelled count close its connection
        return None
    return answer[0] if answer else None


def check_writable(uri: str, table: str) -> None:
    """Check before any work that a table could be written.

    The server must answer and accept the user; for DuckDB, the file's folder must exist.

    Parameters
    ----------
    uri : str
        The database.
    table : str
        The table to be written (its name is checked).

    Raises
    ------
    DatabaseError
        If the server cannot be reached or refuses the user, or the DuckDB folder is missing.
    """
    relation = Relation(uri, table=table)
    if relation.kind == "duckdb":
        folder = _duckdb_path(uri, write=True).parent
        if not folder.is_dir():
            raise DatabaseError(relation.label, f"no folder {folder} for the DuckDB file")
        return
    with _connect(relation, write=True):
        pass


def write_table(
    uri: str, table: str, frame: pl.DataFrame, *, memory: str = DUCKDB_WRITE_MEMORY
) -> int:
    """Replace a table with ``frame``'s rows in one transaction (staging table, then swap).

    Parameters
    ----------
    uri : str
        The database (``postgresql://...`` or ``duckdb:///...``; a DuckDB file is created if
        missing).
    table : str
        The table to create or replace, ``name`` or ``schema.name``.
    frame : polars.DataFrame
        The rows.
    memory : str, default :data:`DUCKDB_WRITE_MEMORY`
        DuckDB's memory limit for the write, as :func:`write_batches` takes it.

    Returns
    -------
    int
        Rows written.

    Raises
    ------
    DatabaseError
        If the database cannot be reached or refuses the write; the old table is then unchanged.
    """
    return write_batches(uri, table, [frame], memory=memory)


def write_batches(
    uri: str, table: str, batches: Iterable[pl.DataFrame], *, memory: str = DUCKDB_WRITE_MEMORY
) -> int:
    """Replace a table with rows that come a batch at a time, in one transaction.

    As :func:`write_table`, but only one batch is held. PostgreSQL: the first batch creates the
    staging table (its columns and types are the table's) and each later one is copied into it
    as it comes, inside the transaction; the swap and the commit follow the last. DuckDB: the
    batches go into a temporary Parquet file next to the database file, and the transaction
    then creates the staging table from it in one statement, within ``memory`` (DuckDB kept
    every batch inserted in an open transaction in memory until the commit: about 14 GB for
    ``guanxi score``'s 10.5M rows at 1M customers). If a batch raises, the old table is unchanged
    and no staging table (nor temporary file) is left; the folders that killed writes left next
    to the database file are removed first (:func:`remove_stale_spills`).

    Parameters
    ----------
    uri : str
        The database (``postgresql://...`` or ``duckdb:///...``; a DuckDB file is created if
        missing).
    table : str
        The table to create or replace, ``name`` or ``schema.name``.
    batches : iterable of polars.DataFrame
        The rows, at least one batch (it may have no rows); every batch has the first's
        columns, in the same order, with the same types.
    memory : str, default :data:`DUCKDB_WRITE_MEMORY`
        DuckDB's ``memory_limit`` while it creates the table (``"512MB"``, ``"4GB"``,
        ``"50%"``); PostgreSQL ignores it.

    Returns
    -------
    int
        Rows written.

    Raises
    ------
    DatabaseError
        If the database cannot be reached or refuses the write; the old table is then unchanged.
    ValueError
        If there is no batch.
    """
    relation = Relation(uri, table=table)
    schema, name = relation.schema_and_name()
    staging = f"{name[:40]}_staging_{secrets.token_hex(4)}"
    target = relation.qualified(staging)
    errors = _driver_errors(relation)
    swap = [
        f"DROP TABLE IF EXISTS {relation.qualified()}",
        f"ALTER TABLE {target} RENAME TO {_quote(name)}",
    ]
    if relation.kind == "duckdb":
        folder = _duckdb_path(uri, write=True).parent
        remove_stale_spills(folder)
        prefix = f"{_SPILL_PREFIX}{os.getpid()}-{_HOST}-"
        with tempfile.TemporaryDirectory(prefix=prefix, dir=folder) as spill:
            rows = Path(spill) / "rows.parquet"
            written = _spill(relation, batches, rows)
            with _connect(relation, write=True) as connection:
                try:
                    connection.execute("SET memory_limit = '" + memory.replace("'", "''") + "'")
                    connection.begin()
                    source = "'" + str(rows).replace("'", "''") + "'"
                    connection.execute(f"CREATE TABLE {target} AS FROM read_parquet({source})")
                    for statement in swap:
                        connection.execute(statement)
                    connection.commit()
                except errors as error:
                    raise DatabaseError(
                        relation.label, f"cannot write: {_reason(error, relation)}"
                    ) from error
        return written
    written, first = 0, True
    with _connect(relation, write=True) as connection, connection.cursor() as cursor:
        try:
            for batch in batches:
                mode = "create" if first else "append"
                cursor.adbc_ingest(staging, _arrow(batch), mode=mode, db_schema_name=schema)
                written, first = written + batch.height, False
            if first:
                raise ValueError(f"{relation.label}: no batch to write, not even an empty one")
            for statement in swap:
                cursor.execute(statement)
            connection.commit()
        except errors as error:
            raise DatabaseError(
                relation.label, f"cannot write: {_reason(error, relation)}"
            ) from error
    return written


def remove_stale_spills(folder: Path) -> list[Path]:
    """Remove the spill folders that killed DuckDB writes left in ``folder``.

    :func:`write_batches` spills a DuckDB table's rows into ``.guanxi-rows-<pid>-<host>-...``
    next to the database file and removes it when done; a write killed meanwhile (SIGKILL, the
    OOM killer) leaves it, as large as the table. A folder is stale when the process that made
    it is not running on this host, or when it is :data:`SPILL_STALE_SECONDS` old (another
    host's, or named before the pid was in the name); a running write's folder is left alone.

    Parameters
    ----------
    folder : pathlib.Path
        The folder of a DuckDB file.

    Returns
    -------
    list of pathlib.Path
        The folders removed (each also logged as a warning).
    """
    removed = []
    for path in sorted(folder.glob(f"{_SPILL_PREFIX}*")):
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:  # removed meanwhile by its own write
            continue
        owner = _SPILL_NAME.match(path.name)
        dead = owner is not None and owner[2] == _HOST and not process_alive(int(owner[1]))
        if path.is_dir() and (dead or age >= SPILL_STALE_SECONDS):
            shutil.rmtree(path, ignore_errors=True)
            logger.warning("removed %s: left by a DuckDB write that did not finish", path)
            removed.append(path)
    return removed


def _arrow(batch: pl.DataFrame) -> Any:
    """Return a batch as the Arrow table the drivers take (plain strings, not views)."""
    return batch.to_arrow(compat_level=pl.CompatLevel.oldest())


def _spill(relation: Relation, batches: Iterable[pl.DataFrame], path: Path) -> int:
    """Write the batches into one Parquet file, a row group (or more) each; return the rows."""
    import pyarrow.parquet as pq

    with contextlib.ExitStack() as stack:
        written, sink = 0, None
        for batch in batches:
            rows = _arrow(batch)
            if sink is None:
                sink = stack.enter_context(pq.ParquetWriter(path, rows.schema))
            sink.write_table(rows)
            written += batch.height
        if sink is None:
            raise ValueError(f"{relation.label}: no batch to write, not even an empty one")
    return written
