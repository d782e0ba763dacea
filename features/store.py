"""The embedded store under ``GUANXI_HOME``, and the atomic write that every file in it uses.

This is the only module of :mod:`features` that writes files.

Layout
------
::

    <home>/snapshots/as_of=YYYY-MM-DD.parquet    one feature snapshot per as-of day
    <home>/history/as_of=YYYY-MM-DD.parquet      the events a snapshot was built from, sorted by
                                                 customer (a customer's history is one lookup)
    <home>/scores/task=<task>/as_of=YYYY-MM-DD/version=<model version>.parquet
                                                 one score table per task, snapshot and model
    <home>/values/as_of=YYYY-MM-DD.parquet       the customer value table of a day (guanxi value)
    <home>/plans/as_of=YYYY-MM-DD.parquet        the campaign plan of a day (guanxi target)
    <home>/campaigns/campaign=<name>.parquet     recorded campaign outcomes (guanxi campaign record)
    <home>/drift/as_of=YYYY-MM-DD.json           the drift and live-performance report of a day
                                                 (guanxi drift), read by the reviewer page
    <home>/cycle/as_of=YYYY-MM-DD.json           the steps of ``guanxi cycle`` done for a day

A snapshot's metadata (feature-set version, as-of day, row count, the events and customers
files it was built from with their size and modification time, when it was created) is stored
in the Parquet file's own key-value metadata under the key :data:`METADATA_KEY`, as JSON. Data and
metadata are therefore one file and are replaced together by one rename: there is no sidecar that
could disagree with the data after a crash. A score table (the rows of
:func:`models.scoring.score_snapshot`, computed once in batch so that serving is a lookup) carries
its own metadata the same way (:class:`ScoreTableInfo`): the task, model name and version, the
feature-set version, how many reasons each row has, its row count, the digest of the snapshot it
was computed from (:func:`scores_digest`) and when it was written. The store treats the table as
data: it never looks inside the rows. A value table (one row per customer: P(alive), expected
purchases, CLV two ways, value tier, equity at risk; see :mod:`models.clv.customers`) carries its
metadata the same way (:class:`ValueTableInfo`): the horizon, the discount rate, the fitted
parameters, the holdout check, the churn model it read and the MLflow run of the fit. A plan
(:class:`PlanInfo`: budget, what it spends and returns, the optimality gap, the summaries and the
offers it was made with) and a recorded campaign (:class:`CampaignInfo`) are kept the same way.

A snapshot written from events (``guanxi features build``, the demo) comes with its *history*: the
validated events dated on or before the snapshot day, sorted by ``customer_id`` (then time) in
row groups of :data:`HISTORY_ROW_GROUP` rows. Parquet keeps each row group's smallest and largest
``customer_id``, so :meth:`Store.read_history` reads only the row group(s) that can hold the
customer (predicate pushdown) instead of scanning and validating the raw events file again.

Why Parquet files rather than DuckDB
------------------------------------
* Polars scans Parquet lazily (projection and predicate pushdown), so serving can load only the
  columns and customers it needs; a DuckDB table would go through a second engine and a copy.
* A whole file can be replaced atomically with ``os.replace``: readers see the old snapshot or the
  new one, never half of one. A database file is updated in place and relies on its own journal.
* No server, no lock file, no single-writer rule: the CLI, a scheduled job and the API server can
  read while another process writes. DuckDB allows one writing process per database file.
* Each snapshot is written once and never updated, which is what files do well; the data is also
  readable by any tool (pandas, Spark, DuckDB itself) without guanxi.

Atomic writes
-------------
:func:`atomic_write` writes to a temporary file in the target's directory (a hidden name ending in
``.tmp`` that carries the writer's process id), flushes it to disk with ``fsync``, renames it over
the target with ``os.replace`` and then fsyncs the directory so the rename itself survives a power
cut. A crash at any point leaves the previous file in place; readers only look at final names, and
temporary files left by dead writers are removed by the next write into the same directory.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any, ClassVar, Final, Self

import polars as pl
import polars.selectors as cs
import pyarrow.parquet as pq

from features.contracts import FEATURE_SET_VERSION

__all__ = [
    "HISTORY_RANGE",
    "HISTORY_ROW_GROUP",
    "MANIFEST_SUFFIX",
    "METADATA_KEY",
    "CampaignInfo",
    "CustomerRanges",
    "ParquetParts",
    "PlanInfo",
    "ScoreTableInfo",
    "ScoreTableWriter",
    "SnapshotInfo",
    "SnapshotNotFoundError",
    "SourceFile",
    "Store",
    "TamperedTableError",
    "UnsignedTableError",
    "ValueTableInfo",
    "atomic_write",
    "fit_columns",
    "is_temporary",
    "manifest_path",
    "parquet_ranges_in_order",
    "process_alive",
    "scores_digest",
    "snapshot_digest",
    "sorted_ranges",
    "spill_partitions",
    "split_by_customer",
    "vouched_for",
]

METADATA_KEY: Final = "guanxi"
"""Key of the snapshot metadata (JSON) in the Parquet key-value metadata."""

MANIFEST_SUFFIX: Final = ".manifest.json"
"""Suffix of a table's signed manifest, beside it (``version=3.parquet.manifest.json``)."""

HISTORY_ROW_GROUP: Final = 16_384
"""Rows per Parquet row group of a history file: what one customer lookup reads at most (plus a
second group when the customer's rows straddle two)."""

_HISTORY_CHUNK: Final = 64 * HISTORY_ROW_GROUP
"""Rows of a history file gathered and written at a time (whole row groups)."""

HISTORY_RANGE: Final = 8_000_000
"""Events per ``customer_id`` range that a history given as a ``LazyFrame`` is sorted in."""

_ROW: Final = "_guanxi_row"

_ZSTD_LEVEL: Final = 3
"""zstd level of Parquet files written a part at a time: Polars' ``write_parquet`` default
(pyarrow's is 1)."""

_TEMP: Final = re.compile(r"^\..+\.(?P<pid>\d+)\.[0-9a-f]+\.tmp$")
_SNAPSHOT: Final = re.compile(r"^as_of=(?P<day>\d{4}-\d{2}-\d{2})\.parquet$")
_RECORD: Final = re.compile(r"^as_of=(?P<day>\d{4}-\d{2}-\d{2})\.json$")
_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def snapshot_digest(frame: pl.DataFrame) -> str:
    """Fingerprint a snapshot's content, to tell whether a score table was computed from it.

    Parameters
    ----------
    frame : polars.DataFrame
        A snapshot (any frame).

    Returns
    -------
    str
        A hex digest of the column names, dtypes and every row, in order (seeded
        :meth:`polars.DataFrame.hash_rows`), with floats rounded to 9 decimals: Polars' parallel
        group-by sums rows in varying order, so two builds from the same events can differ in the
        last bits of a float. Equal frames give equal digests within one Polars version; a
        different Polars may give another digest, which only costs a recomputation.
    """
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr(list(frame.schema.items())).encode())
    rounded = frame.with_columns(cs.float().round(9))
    digest.update(rounded.hash_rows(seed=0).to_numpy().tobytes())
    return digest.hexdigest()


def scores_digest(digest: str, completed: Sequence[str]) -> str:
    """Give the snapshot digest a score table records: the snapshot's, and what was completed.

    A model's rows complete the ``cat_{category}_*`` inputs of categories the snapshot has no
    column of (``models.tasks.completed_categories``: 0 orders, not unknown). Tables computed
    before that read NaN for them, and recorded the snapshot's :func:`snapshot_digest` alone:
    naming the completed categories after it tells those apart, so they are computed again
    rather than read. A snapshot with every category a model reads records its digest as before.

    Parameters
    ----------
    digest : str
        :func:`snapshot_digest` of the snapshot scored.
    completed : sequence of str
        The categories the model's rows completed, in the model's input order.

    Returns
    -------
    str
        ``digest``, then ``+`` and the categories comma-separated when there are any.
    """
    return f"{digest}+{','.join(completed)}" if completed else digest


def _checked_name(kind: str, value: str, table: str = "a score table") -> str:
    """Refuse a name (task, model version, campaign) that cannot be one path component.

    ``table`` is what the name would name, in the message (``"a stored campaign"``).
    """
    if not _NAME.match(value):
        raise ValueError(
            f"{kind} {value!r} cannot name {table}: use letters, digits, '.', '_' or '-'"
        )
    return value


def is_temporary(path: Path) -> bool:
    """Tell whether a file is an unfinished write of :func:`atomic_write`.

    Parameters
    ----------
    path : pathlib.Path
        Any file.

    Returns
    -------
    bool
        True for a temporary file, which readers must ignore.
    """
    return _TEMP.match(path.name) is not None


def process_alive(pid: int) -> bool:
    """Tell whether a process with this id exists on this host.

    Parameters
    ----------
    pid : int
        A process id.

    Returns
    -------
    bool
        False only when no such process exists (a process of another user counts as alive).
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_temporaries(directory: Path) -> None:
    """Remove temporary files whose writing process no longer runs."""
    for path in directory.iterdir():
        match = _TEMP.match(path.name)
        if match and not process_alive(int(match["pid"])):
            path.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """Write a file so that readers see either the old content or the complete new one.

    Parameters
    ----------
    path : pathlib.Path
        The file to create or replace; its directory is created if needed.
    write : callable
        Called with a temporary path in the same directory; writes the whole content there
        (e.g. ``lambda p: frame.write_parquet(p)``). Its return value is ignored.

    Returns
    -------
    pathlib.Path
        ``path``.

    Notes
    -----
    The temporary file is fsynced, renamed over ``path`` with :func:`os.replace` (atomic on POSIX
    and Windows within one file system) and the directory is fsynced. If ``write`` raises, the
    temporary file is removed and the exception propagates; if the process dies, the temporary
    file stays (hidden, and ignored by readers) until the next write into the directory.
    """
    path = Path(path)
    with _atomic(path) as temporary:
        write(temporary)
    return path


@contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` that replaces it when the block ends.

    :func:`atomic_write`'s steps, for a file written across a block (e.g. a part at a time): if
    the block raises, the temporary file is removed and the exception propagates.
    """
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(directory)
    temporary = directory / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        yield temporary
        _fsync(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if os.name == "posix":
        _fsync(directory)


def fit_columns(part: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """Give a part of a table the table's columns, in order and with their types.

    Parameters
    ----------
    part : polars.DataFrame
        Some rows of the table; a column of ``schema`` it lacks is null in them.
    schema : polars.Schema
        Every column of the table, in order, with its type.

    Returns
    -------
    polars.DataFrame
        ``part``'s rows with exactly ``schema``'s columns (``part`` itself when it has them).
    """
    if part.schema == schema:  # already fitted (e.g. by write_parts before ParquetParts)
        return part
    return part.select(
        (pl.col(c).cast(t) if c in part.columns else pl.lit(None, dtype=t)).alias(c)
        for c, t in schema.items()
    )


class ParquetParts:
    """A Parquet file written a part at a time, so that its rows are never all held.

    Each part is fitted to one schema (:func:`fit_columns`) and written as a row group or more.
    The file is begun with the first part: zstd level 3, and a dictionary only for the columns
    whose values repeat in that part (:func:`_repeating`), which comes to about the size of
    Polars' ``write_parquet`` of the whole table. Use it as a context manager: the file is
    finished when the block ends (with the schema alone when no part came).

    Parameters
    ----------
    path : pathlib.Path
        The file to write (e.g. the temporary path of an atomic write).
    schema : polars.Schema
        Every column, in order, with its type.
    """

    def __init__(self, path: Path, schema: pl.Schema) -> None:
        self.path = path
        self.schema = schema
        self.rows = 0
        self._metadata: dict[str, str] = {}
        self._sink: pq.ParquetWriter | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, error: type[BaseException] | None, *_: object) -> None:
        if self._sink is None:
            if error is not None:  # nothing begun: nothing to finish
                return
            self.write(pl.DataFrame(schema=self.schema))
        assert self._sink is not None
        if self._metadata and error is None:
            self._sink.add_key_value_metadata(self._metadata)
        self._sink.close()

    def write(self, part: pl.DataFrame) -> None:
        """Append a part's rows; a column of the schema that it lacks is null there.

        Parameters
        ----------
        part : polars.DataFrame
            Rows of the table.
        """
        rows = fit_columns(part, self.schema)
        if self._sink is None:
            self._sink = pq.ParquetWriter(
                self.path,
                pl.DataFrame(schema=self.schema).to_arrow().schema,
                compression="zstd",
                compression_level=_ZSTD_LEVEL,
                use_dictionary=_repeating(rows),
            )
        self._sink.write_table(rows.to_arrow())
        self.rows += part.height

    def add_metadata(self, metadata: dict[str, str]) -> None:
        """Have the file's key-value metadata hold these entries when it is finished.

        Parameters
        ----------
        metadata : dict of str to str
            Keys and values, e.g. ``{METADATA_KEY: info.to_json()}``.
        """
        self._metadata |= metadata


def _repeating(part: pl.DataFrame) -> list[str]:
    """Name the columns a Parquet file gives a dictionary, judged on its first part.

    A column whose known values repeat (at most one distinct value in two) gets one; so does a
    column with no known value yet unless it is a float (Polars' writer gives floats none). A
    dictionary of unique values (ids, scores, contributions) is written first and then dropped for
    plain values once it outgrows its page: pyarrow's default, a dictionary for every column, made
    ``guanxi score``'s file about a fifth larger than Polars' ``write_parquet`` of the same table.
    """

    def repeats(column: pl.Series) -> bool:
        known = column.drop_nulls()
        if known.is_empty():
            return not column.dtype.is_float()
        return 2 * known.n_unique() <= known.len()

    return [column.name for column in part.iter_columns() if repeats(column)]


def spill_partitions(
    frame: pl.LazyFrame, key: pl.Expr, parts: int, folder: Path
) -> list[pl.LazyFrame]:
    """Split a frame into parts in one streaming pass, each part written to its own files.

    Parameters
    ----------
    frame : polars.LazyFrame
        The rows to split; never held whole.
    key : polars.Expr
        The part of each row, an integer in ``[0, parts)``.
    parts : int
        How many parts.
    folder : pathlib.Path
        An existing (temporary) directory for the files (LZ4 Parquet), which must outlive the
        scans returned.

    Returns
    -------
    list of polars.LazyFrame
        A scan of each part's rows (the frame's columns, without the key), in part order; an
        empty frame for a part without rows.
    """
    name = "_guanxi_part"
    frame.with_columns(key.alias(name)).sink_parquet(
        pl.PartitionBy(folder, key=name, include_key=False), compression="lz4", mkdir=True
    )
    empty = frame.clear()
    return [
        pl.scan_parquet(part / "*.parquet", hive_partitioning=False)
        if (part := Path(folder) / f"{name}={b}").is_dir()
        else empty
        for b in range(parts)
    ]


def sorted_ranges(frame: pl.LazyFrame, parts: int) -> list[pl.Expr] | None:
    """Return a filter per range of ``customer_id`` if the rows are in ``customer_id`` order.

    One streaming pass over the ``customer_id`` column counts each customer's rows and the first
    and last row number they occupy (:func:`_customer_spans`). When every customer's rows come
    after the previous customer's (the rows sorted by ``customer_id``, as the sample generator
    writes them), the customers are cut into ``parts`` ranges of about equal rows, and each range
    is selected by comparisons of ``customer_id`` with literals: a Parquet scan filtered by one
    skips, by its row groups' statistics, the row groups outside the range, so the ranges can be
    built one at a time from the scan without first writing each part to its own files
    (:func:`spill_partitions`), which costs more than the build itself.

    Parameters
    ----------
    frame : polars.LazyFrame
        Rows with a ``customer_id`` column (non-null), e.g. a scan of events; never held whole.
    parts : int
        How many ranges (positive); a range without customers selects no row.

    Returns
    -------
    list of polars.Expr or None
        ``parts`` boolean expressions over ``customer_id``, ranges in ``customer_id`` order,
        together selecting each row once; ``None`` if the rows are not in ``customer_id`` order.
    """
    spans = _customer_spans(frame)
    if not _in_order(spans):
        return None
    ids = spans.get_column("customer_id")
    rows = spans.get_column("len")
    before = rows.cum_sum() - rows  # rows of the customers before each
    total = int(rows.sum())
    cuts = [0, *(before.search_sorted(-(-k * total // parts)) for k in range(1, parts)), ids.len()]
    key = pl.col("customer_id")
    ranges = []
    for lo, hi in pairwise(cuts):
        if lo >= hi:
            ranges.append(pl.lit(False))
        elif lo > 0 and hi < ids.len():
            ranges.append((key >= ids[lo]) & (key < ids[hi]))
        elif lo > 0:
            ranges.append(key >= ids[lo])
        else:
            ranges.append(key < ids[hi] if hi < ids.len() else pl.lit(True))
    return ranges


def _customer_spans(frame: pl.LazyFrame) -> pl.DataFrame:
    """Count each customer's rows and their first and last row number, in one streaming pass.

    Returns ``customer_id``, ``len``, ``first`` and ``last``, sorted by ``customer_id``.
    """
    return (
        frame.select("customer_id")
        .with_row_index(_ROW)
        .group_by("customer_id")
        .agg(pl.len(), pl.col(_ROW).min().alias("first"), pl.col(_ROW).max().alias("last"))
        .sort("customer_id")
        .collect(engine="streaming")
    )


def _in_order(spans: pl.DataFrame) -> bool:
    """Whether each customer's rows come after the previous one's (:func:`_customer_spans`)."""
    return bool((spans.get_column("first").shift(-1) > spans.get_column("last")).all())


def parquet_ranges_in_order(files: Sequence[Path | str], column: str = "customer_id") -> bool:
    """Whether Parquet files' row groups hold ascending, non-overlapping ranges of a column.

    The files are read one after the other, each row group in order; the row groups are in order
    when each one's smallest value (by its statistics) is at least the largest value of the row
    group before it. A scan of such files filtered on a range of the column then reads only the
    row groups that overlap the range, as if the rows were sorted, whatever the order of the rows
    within a row group. Only the files' footers are read, no data. A row group without
    statistics of the column, or a file without the column, makes the answer ``False``.

    Parameters
    ----------
    files : sequence of pathlib.Path or str
        Parquet files, in the order their rows are read.
    column : str, default "customer_id"
        The column (top-level) asked about.

    Returns
    -------
    bool
        ``True`` if the statistics show the row groups in order, else ``False``.
    """
    largest: object = None
    for file in files:
        meta = pq.ParquetFile(file).metadata
        names = [meta.schema.column(i).path for i in range(meta.num_columns)]
        if column not in names:
            return False
        at = names.index(column)
        for group in range(meta.num_row_groups):
            chunk = meta.row_group(group).column(at)
            if chunk.num_values == 0:
                continue  # an empty row group holds no range
            stats = chunk.statistics
            if stats is None or not stats.has_min_max:
                return False
            if largest is not None and stats.min < largest:
                return False
            largest = stats.max
    return True


def _write_in_order(
    out: pq.ParquetWriter, frame: pl.DataFrame, order: pl.Series, first: bool = True
) -> None:
    """Write ``frame``'s rows in ``order``, a chunk of whole row groups at a time.

    With ``first`` and no rows, one empty table is written (an empty history has a row group).
    """
    for lo in range(0, max(order.len(), int(first)), _HISTORY_CHUNK):
        chunk = frame[order.slice(lo, _HISTORY_CHUNK)].to_arrow()
        out.write_table(chunk.cast(out.schema), row_group_size=HISTORY_ROW_GROUP)


def _range_key(starts: pl.Series) -> pl.Expr:
    """Return each row's range of ``customer_id``: how many of ``starts`` (sorted) are <= it.

    One binary search of the starts a row, batch by batch. A comparison with every start summed
    costs a pass per range (38 at 5M customers); ``pl.lit(starts).search_sorted(...)`` is not
    run batch by batch by the streaming engine, which then holds every row (8 GB at 1M).
    """
    return pl.col("customer_id").map_batches(
        lambda ids: starts.search_sorted(ids, side="right"),
        return_dtype=pl.UInt32,
        is_elementwise=True,
    )


@dataclass(frozen=True)
class CustomerRanges:
    """Events up to a day split into ranges of ``customer_id`` (:func:`split_by_customer`).

    Both the snapshot (:func:`features.snapshot.build_snapshot_by_range`) and the history
    (:meth:`Store.write_history`) are built from one such split, a range at a time.

    Parameters
    ----------
    as_of : datetime.date
        The day: the parts hold the events with ``date(ts) <= as_of`` only.
    starts : polars.Series
        The first ``customer_id`` of each range after the first, sorted; empty for one range.
    parts : tuple of polars.LazyFrame
        Each range's events, ranges in ``customer_id`` order, with a column ``_guanxi_row``: a
        row number that orders the range's events as they are ordered among all the events up
        to ``as_of`` (their row number there, or within the range when the range is a filter
        of the events).
    """

    as_of: date
    starts: pl.Series
    parts: tuple[pl.LazyFrame, ...]

    def __len__(self) -> int:
        return len(self.parts)

    def key(self) -> pl.Expr:
        """Return the range of each row of a frame with a ``customer_id`` column (an index)."""
        return _range_key(self.starts)

    def events(self, part: int) -> pl.LazyFrame:
        """Return one range's events (the events' columns, without the row number)."""
        return self.parts[part].drop(_ROW)


def split_by_customer(
    events: pl.LazyFrame,
    as_of: date,
    per_range: int,
    folder: Path,
    files: Sequence[Path] = (),
) -> CustomerRanges:
    """Split the events up to a day into ranges of ``customer_id`` of about ``per_range`` events.

    The events' ``customer_id`` values are counted (one streaming pass), and the ranges are cut
    between customers so that each holds about ``per_range`` events (a customer's events are
    never split). When the events are Parquet ``files`` whose row groups hold ranges of
    ``customer_id`` in order (:func:`parquet_ranges_in_order`, read from their footers; e.g.
    staged events that were in ``customer_id`` order), or, without ``files``, when the counting
    pass finds every customer's events after the previous customer's (as :func:`sorted_ranges`
    does), each range is a filter of ``events`` itself, which the scan reads by skipping the row
    groups outside the range: nothing is written. Otherwise one more streaming pass writes each
    range's events to its own files. With one range nothing is written either: its part is a
    scan of ``events``.

    Parameters
    ----------
    events : polars.LazyFrame
        Validated events (``features.contracts.event_schema()``), e.g. a scan of staged files;
        never held whole.
    as_of : datetime.date
        Events dated after it (UTC) are left out.
    per_range : int
        Events per range aimed at (positive).
    folder : pathlib.Path
        An existing (temporary) directory for the ranges' files (LZ4 Parquet); it must outlive
        the returned scans.
    files : sequence of pathlib.Path, optional
        The Parquet files ``events`` scans, in order (e.g. :attr:`features.events.Staged.files`);
        their statistics decide whether the ranges are filters, without a look at the rows.
        The ranges hold the same events either way.

    Returns
    -------
    CustomerRanges
        The ranges, in ``customer_id`` order.

    Raises
    ------
    ValueError
        If ``per_range`` is not positive.
    """
    if per_range < 1:
        raise ValueError(f"per_range must be positive, got {per_range}")
    events = events.filter(pl.col("ts").dt.date() <= as_of)
    if files:
        by_filter = parquet_ranges_in_order(files)
        counts = (
            events.group_by("customer_id").len().sort("customer_id").collect(engine="streaming")
        )
    else:
        counts = _customer_spans(events)
        by_filter = _in_order(counts)
    before = counts.get_column("len").cum_sum() - counts.get_column("len")
    starts = counts.filter((before // per_range).is_first_distinct()).get_column("customer_id")[
        1:
    ]  # the first customer of each range after the first
    if starts.is_empty():
        return CustomerRanges(as_of, starts, (events.with_row_index(_ROW),))
    if by_filter:
        # a filter keeps the events' order, so row numbers within a range order its events as
        # their row numbers among all the events do
        key = pl.col("customer_id")
        within = [
            key < starts[0],
            *((key >= lo) & (key < hi) for lo, hi in pairwise(starts)),
            key >= starts[-1],
        ]
        parts = [events.filter(w).with_row_index(_ROW) for w in within]
        return CustomerRanges(as_of, starts, tuple(parts))
    numbered = events.with_row_index(_ROW)
    parts = spill_partitions(numbered, _range_key(starts), starts.len() + 1, folder)
    return CustomerRanges(as_of, starts, tuple(parts))


@dataclass(frozen=True)
class SourceFile:
    """An input file a snapshot was built from, as it was when the snapshot was written.

    Parameters
    ----------
    path : str
        Absolute path.
    size : int
        Size in bytes (the sum over the files of a directory).
    modified : str
        Last modification time, ISO 8601 in UTC (the latest over the files of a directory).
    mapping : str or None
        The digest of the column mapping it was read with
        (:meth:`features.sources.TableMapping.digest`), None without one (and in the metadata
        of snapshots stored before it was recorded).
    """

    path: str
    size: int
    modified: str
    mapping: str | None = None

    @classmethod
    def of(cls, path: Path) -> SourceFile:
        """Describe a file or directory as it is now.

        Parameters
        ----------
        path : pathlib.Path
            A file, or a directory of files.

        Returns
        -------
        SourceFile
            Its absolute path, size and modification time.
        """
        path = Path(path).resolve()
        files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
        stats = [p.stat() for p in files] or [path.stat()]
        modified = datetime.fromtimestamp(max(s.st_mtime for s in stats), UTC)
        return cls(str(path), sum(s.st_size for s in stats), modified.isoformat())

    @classmethod
    def now(cls, name: str) -> SourceFile:
        """Describe a source that is not a file (a database table or query) as read now.

        Parameters
        ----------
        name : str
            How the source is named (a database URI with its password masked, and the table).

        Returns
        -------
        SourceFile
            The name, size 0 and the current time.
        """
        return cls(name, 0, datetime.now(UTC).isoformat())


class _FileInfo:
    """Metadata kept inside a store file: serialised without the path, which its location gives."""

    as_of: date
    _UNWRITTEN: ClassVar[tuple[str, ...]] = ("path",)
    """The fields not serialised: the path, which the file's location gives, and what is
    learnt when reading."""

    def to_json(self) -> str:
        """Serialise everything but the path (and what is learnt when reading).

        A source recorded without a mapping (:attr:`SourceFile.mapping` None) is written without
        the field, as before it was recorded, so an older guanxi still reads it.

        Returns
        -------
        str
            A JSON object.
        """
        data = asdict(self)  # type: ignore[call-overload]
        for name in self._UNWRITTEN:
            del data[name]
        for name, value in data.items():  # the days (as_of, a campaign's plan), ISO 8601
            if isinstance(value, date):
                data[name] = value.isoformat()
            elif isinstance(value, dict) and value.get("mapping", "") is None:
                del value["mapping"]  # a SourceFile's
        return json.dumps(data, sort_keys=True)


def _dated(directory: Path, as_of: date) -> Path:
    """``<directory>/as_of=YYYY-MM-DD.parquet``: where a store file of a day lives."""
    return directory / f"as_of={as_of.isoformat()}.parquet"


def _days(directory: Path, pattern: re.Pattern[str] = _SNAPSHOT) -> list[date]:
    """Return the days of the complete dated files in a directory, oldest first."""
    if not directory.is_dir():
        return []
    days = (pattern.match(p.name) for p in directory.iterdir())
    return sorted(date.fromisoformat(m["day"]) for m in days if m)


class UnsignedTableError(LookupError):
    """A table the store must check has no manifest signed for this write of it."""

    what: str | None = None
    """The table, as a person names it, when :func:`vouched_for` said it."""


class TamperedTableError(ValueError):
    """A table's bytes, or its manifest, are not the ones the store signed."""

    what: str | None = None
    """The table, as a person names it, when :func:`vouched_for` said it."""


@contextmanager
def vouched_for(what: str, again: str) -> Iterator[None]:
    """Say which table the store refused, and how to write it again, around a checked read.

    Parameters
    ----------
    what : str
        The table, as a person names it (``"the recorded campaign 'october'"``).
    again : str
        The command that writes it again (``"guanxi campaign record --file F --name N"``).

    Yields
    ------
    None
        The checked read runs inside.

    Raises
    ------
    UnsignedTableError
        The read's, its message naming the table, that it was kept without GUANXI_STORE_KEY
        and the command to run with the key set.
    TamperedTableError
        The read's, its message naming the table and the command that writes it again.
    """
    refused: UnsignedTableError | TamperedTableError
    try:
        yield
    except UnsignedTableError as exc:
        refused = UnsignedTableError(
            f"{what} is not signed with the store's key ({exc}): it was kept without "
            f"GUANXI_STORE_KEY; write it again with the key set ({again})"
        )
        refused.what = what
        raise refused from exc
    except TamperedTableError as exc:
        refused = TamperedTableError(
            f"{what} is not the table guanxi kept ({exc}): write it again ({again})"
        )
        refused.what = what
        raise refused from exc


def manifest_path(path: Path) -> Path:
    """Return where the signed manifest of a store table is (or would be) kept.

    Parameters
    ----------
    path : pathlib.Path
        The table's Parquet file.

    Returns
    -------
    pathlib.Path
        The file beside it, its name followed by :data:`MANIFEST_SUFFIX`; written only when the
        store has a key.
    """
    return path.with_name(path.name + MANIFEST_SUFFIX)


def _sign(key: bytes, fields: dict[str, Any]) -> str:
    return hmac.new(key, json.dumps(fields, sort_keys=True).encode(), hashlib.sha256).hexdigest()


def _write_with_info(
    path: Path, frame: pl.DataFrame, info: _FileInfo, key: bytes | None = None
) -> None:
    """Write a frame atomically with its metadata inside the Parquet file, then its manifest.

    With a key, the manifest beside the table holds the table's name, size, SHA-256 and the
    ``created`` time of its metadata, signed with HMAC-SHA256 under the key.
    """
    text = info.to_json()
    atomic_write(path, lambda p: frame.write_parquet(p, metadata={METADATA_KEY: text}))
    _write_manifest(path, text, key)


def _write_manifest(path: Path, text: str, key: bytes | None) -> None:
    """With a key, sign a table written with the metadata ``text`` in a manifest beside it."""
    if key is None:
        return
    raw = path.read_bytes()
    fields = {
        "file": path.name,
        "bytes": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "created": json.loads(text).get("created"),
    }
    manifest = json.dumps({**fields, "hmac": _sign(key, fields)}, sort_keys=True)
    atomic_write(manifest_path(path), lambda p: p.write_text(manifest))


def _read_checked(path: Path, key: bytes | None) -> pl.DataFrame:
    """Read a table, checking it against its signed manifest when the store has a key."""
    return pl.read_parquet(io.BytesIO(_checked_bytes(path, key)))


def _checked_bytes(path: Path, key: bytes | None) -> bytes:
    """Read a table's bytes, checked against its signed manifest when the store has a key.

    Rows and metadata parsed from these bytes are both the ones the manifest vouches for.

    Raises
    ------
    UnsignedTableError
        No manifest, or one of another write (its ``created`` differs: a write in progress, or a
        table written without the key).
    TamperedTableError
        The manifest's signature or the table's bytes do not match.
    """
    raw = path.read_bytes()
    if key is None:
        return raw
    manifest_file = manifest_path(path)
    if not manifest_file.is_file():
        raise UnsignedTableError(f"{path.name} has no signed manifest ({manifest_file.name})")
    try:
        manifest = json.loads(manifest_file.read_text())
        fields = {k: manifest[k] for k in ("file", "bytes", "sha256", "created")}
        signature = str(manifest["hmac"])
    except (ValueError, KeyError, TypeError) as exc:
        raise TamperedTableError(f"{manifest_file.name} is not a manifest") from exc
    if not hmac.compare_digest(_sign(key, fields), signature) or fields["file"] != path.name:
        raise TamperedTableError(f"{manifest_file.name}: the signature does not match")
    if len(raw) != fields["bytes"] or hashlib.sha256(raw).hexdigest() != fields["sha256"]:
        # bytes checked before any parsing: a flipped byte may leave the file unreadable
        try:
            meta = pl.read_parquet_metadata(io.BytesIO(raw))[METADATA_KEY]
            created = json.loads(meta).get("created")
        except Exception:  # unreadable: not the write signed, whatever it is
            created = fields["created"]
        if created != fields["created"]:
            raise UnsignedTableError(f"{path.name} is not the write its manifest was signed for")
        raise TamperedTableError(f"{path.name} does not match its signed manifest")
    return raw


def _info_text(path: Path) -> str | None:
    """Return the metadata JSON of a store file, None when the file does not exist."""
    return pl.read_parquet_metadata(path)[METADATA_KEY] if path.is_file() else None


def _source(source: Path | SourceFile | None) -> SourceFile | None:
    if source is None or isinstance(source, SourceFile):
        return source
    return SourceFile.of(source)


@dataclass(frozen=True)
class SnapshotInfo(_FileInfo):
    """What the store knows about one snapshot.

    Parameters
    ----------
    as_of : datetime.date
        The snapshot day (UTC).
    path : pathlib.Path
        The snapshot's Parquet file.
    rows : int
        Number of customers (rows).
    feature_set_version : str
        ``features.contracts.FEATURE_SET_VERSION`` when the snapshot was written.
    created : str
        When it was written, ISO 8601 in UTC.
    events : SourceFile or None
        The events file it was built from, if given.
    customers : SourceFile or None
        The customers file it was built from, if given.
    unreadable : tuple of str
        The sources (``"events"``, ``"customers"``) recorded with a field this code does not
        know, so read as None although recorded; never written.
    """

    as_of: date
    path: Path
    rows: int
    feature_set_version: str
    created: str
    events: SourceFile | None = None
    customers: SourceFile | None = None
    unreadable: tuple[str, ...] = ()
    _UNWRITTEN: ClassVar[tuple[str, ...]] = ("path", "unreadable")

    @classmethod
    def from_json(cls, text: str, path: Path) -> SnapshotInfo:
        """Read what :meth:`to_json` wrote.

        Parameters
        ----------
        text : str
            The JSON object.
        path : pathlib.Path
            The snapshot file it was read from.

        Returns
        -------
        SnapshotInfo
            The metadata.
        """
        data: dict[str, Any] = json.loads(text)
        sources = {key: _recorded_source(data.get(key)) for key in ("events", "customers")}
        return cls(
            as_of=date.fromisoformat(data["as_of"]),
            path=path,
            rows=int(data["rows"]),
            feature_set_version=str(data["feature_set_version"]),
            created=str(data["created"]),
            **sources,
            unreadable=tuple(k for k, v in sources.items() if v is None and data.get(k)),
        )


def _recorded_source(data: dict[str, Any] | None) -> SourceFile | None:
    """Read a source a snapshot's metadata records; None if none, or not one this code knows.

    A field this code does not know (a later guanxi's) was recorded for a reason it cannot
    compare: the source is read as not recorded, so a command given inputs builds the snapshot
    again rather than fail (an older guanxi stops on this version's ``mapping``) or read one
    built otherwise.
    """
    if not data or set(data) - set(SourceFile.__dataclass_fields__):
        return None
    return SourceFile(**data)


@dataclass(frozen=True)
class ScoreTableInfo(_FileInfo):
    """What the store knows about one score table.

    Parameters
    ----------
    task : str
        The task scored.
    as_of : datetime.date
        The day of the snapshot that was scored.
    model_name : str
        Registered model name.
    model_version : str
        Registered model version.
    feature_set_version : str
        Feature-set version of the snapshot and the model.
    explain_k : int
        Reasons per row (0 for none).
    rows : int
        Number of rows.
    snapshot_digest : str
        :func:`scores_digest` of the snapshot scored.
    created : str
        When it was written, ISO 8601 in UTC.
    path : pathlib.Path
        The table's Parquet file.
    """

    task: str
    as_of: date
    model_name: str
    model_version: str
    feature_set_version: str
    explain_k: int
    rows: int
    snapshot_digest: str
    created: str
    path: Path

    @classmethod
    def from_json(cls, text: str, path: Path) -> ScoreTableInfo:
        """Read what :meth:`to_json` wrote.

        Parameters
        ----------
        text : str
            The JSON object.
        path : pathlib.Path
            The table file it was read from.

        Returns
        -------
        ScoreTableInfo
            The metadata.
        """
        data: dict[str, Any] = json.loads(text)
        return cls(
            task=str(data["task"]),
            as_of=date.fromisoformat(data["as_of"]),
            model_name=str(data["model_name"]),
            model_version=str(data["model_version"]),
            feature_set_version=str(data["feature_set_version"]),
            explain_k=int(data["explain_k"]),
            rows=int(data["rows"]),
            snapshot_digest=str(data["snapshot_digest"]),
            created=str(data["created"]),
            path=path,
        )


@dataclass(frozen=True)
class ValueTableInfo(_FileInfo):
    """What the store knows about one customer value table.

    Parameters
    ----------
    as_of : datetime.date
        The day the values were computed as of (events up to its end).
    rows : int
        Number of customers (rows).
    horizon_days : int
        Days the expected purchases and CLV cover.
    discount_rate : float
        Annual discount rate of the CLV.
    basis : str
        What a purchase earns in the CLV: ``"margin"`` or ``"revenue"`` (times a margin rate).
    churn_model : dict or None
        The churn model whose probabilities were read (``name``, ``version``, ``horizon_days``),
        None when there was none.
    fit : dict
        The fitted models' parameters and statistics, nested by model.
    validation : dict or None
        The holdout check (cutoff, end, and per forecast its accuracy), None without one.
    run_id : str or None
        The MLflow run the fit was logged to.
    created : str
        When it was written, ISO 8601 in UTC.
    path : pathlib.Path
        The table's Parquet file.
    """

    as_of: date
    rows: int
    horizon_days: int
    discount_rate: float
    basis: str
    churn_model: dict[str, Any] | None
    fit: dict[str, Any]
    validation: dict[str, Any] | None
    run_id: str | None
    created: str
    path: Path

    @property
    def version(self) -> str:
        """How audit lines and responses name this table: its day and its MLflow run."""
        return f"{self.as_of.isoformat()}/{self.run_id or 'unlogged'}"

    @classmethod
    def from_json(cls, text: str, path: Path) -> ValueTableInfo:
        """Read what :meth:`to_json` wrote.

        Parameters
        ----------
        text : str
            The JSON object.
        path : pathlib.Path
            The table file it was read from.

        Returns
        -------
        ValueTableInfo
            The metadata.
        """
        data: dict[str, Any] = json.loads(text)
        return cls(
            as_of=date.fromisoformat(data["as_of"]),
            rows=int(data["rows"]),
            horizon_days=int(data["horizon_days"]),
            discount_rate=float(data["discount_rate"]),
            basis=str(data["basis"]),
            churn_model=data.get("churn_model"),
            fit=dict(data.get("fit") or {}),
            validation=data.get("validation"),
            run_id=data.get("run_id"),
            created=str(data["created"]),
            path=path,
        )


class _PlainInfo(_FileInfo):
    """Metadata whose JSON holds its fields as they are, but for its days (ISO 8601)."""

    _DAYS: ClassVar[tuple[str, ...]] = ("as_of",)
    """The fields that are days: a date each, or None where the field may be None."""

    @classmethod
    def from_json(cls, text: str, path: Path) -> Self:
        """Read what :meth:`to_json` wrote.

        Parameters
        ----------
        text : str
            The JSON object.
        path : pathlib.Path
            The file it was read from.

        Returns
        -------
        Self
            The metadata.
        """
        data: dict[str, Any] = json.loads(text)
        for name in cls._DAYS:
            if data.get(name) is not None:
                data[name] = date.fromisoformat(data[name])
        return cls(**data, path=path)  # type: ignore[call-arg]


@dataclass(frozen=True)
class PlanInfo(_PlainInfo):
    """What the store knows about one campaign plan (``guanxi target``).

    Parameters
    ----------
    as_of : datetime.date
        The day of the scores and values the plan was made from.
    rows : int
        Customers contacted.
    budget : float
        The budget.
    investment : float
        What the plan spends.
    expected_value : float
        Expected value after costs.
    gap : float
        Optimality gap against the LP bound.
    method : str
        ``exact`` or ``lagrangian``.
    reason : str or None
        Why the plan is empty.
    offers : dict
        The offers file the plan was made with (validated, as data).
    summaries : dict of str to list of dict
        ``by_segment``, ``by_offer``, ``next_best`` and ``comparison`` tables as rows.
    uplift : dict or None
        The uplift model the plan used, if any.
    created : str
        When it was written, ISO 8601 in UTC.
    path : pathlib.Path
        The plan's Parquet file.
    """

    as_of: date
    rows: int
    budget: float
    investment: float
    expected_value: float
    gap: float
    method: str
    reason: str | None
    offers: dict[str, Any]
    summaries: dict[str, list[dict[str, Any]]]
    uplift: dict[str, Any] | None
    created: str
    path: Path


@dataclass(frozen=True)
class CampaignInfo(_PlainInfo):
    """What the store knows about one recorded campaign (``guanxi campaign record``).

    Parameters
    ----------
    as_of : datetime.date
        The day its outcomes were complete (``guanxi campaign record --as-of``; by default, and
        in files recorded before the option, the day it was recorded, UTC): a plan or uplift fit
        of an earlier day leaves it out.
    name : str
        The campaign's name.
    rows : int
        Customers in it.
    source : str
        The file it was recorded from.
    created : str
        When it was written, ISO 8601 in UTC.
    path : pathlib.Path
        The outcomes' Parquet file.
    plan : datetime.date or None, default None
        The day of the stored plan the campaign was drawn from (``guanxi campaign record
        --plan``, or the one stored plan that gave every contacted customer their offer); None
        when it is not known: recorded before the field, planned outside guanxi, or held by
        several plans alike.
    """

    _DAYS: ClassVar[tuple[str, ...]] = ("as_of", "plan")

    as_of: date
    name: str
    rows: int
    source: str
    created: str
    path: Path
    plan: date | None = None


class ScoreTableWriter:
    """A score table being stored a part at a time (:meth:`Store.writing_scores`).

    Parameters
    ----------
    parts : ParquetParts
        The file the parts go into.

    Attributes
    ----------
    info : ScoreTableInfo or None
        The metadata written with the table, once it is stored.
    """

    def __init__(self, parts: ParquetParts) -> None:
        self._parts = parts
        self.info: ScoreTableInfo | None = None

    def write(self, part: pl.DataFrame) -> None:
        """Append a part of the table (:meth:`ParquetParts.write`).

        Parameters
        ----------
        part : polars.DataFrame
            Rows of the table.
        """
        self._parts.write(part)


class SnapshotNotFoundError(LookupError):
    """No snapshot for the requested day (or none at all)."""


class Store:
    """The files guanxi keeps under its home directory.

    Parameters
    ----------
    home : pathlib.Path
        The store's root (``GUANXI_HOME``); created on the first write.
    key : bytes, optional
        The server key (``GUANXI_STORE_KEY``). With it every table written gets a signed manifest
        beside it (HMAC-SHA256 of its name, size, SHA-256 and creation time), and score tables,
        value tables and plans are read only when their manifest matches:
        :class:`UnsignedTableError` without one, :class:`TamperedTableError` when the bytes or the
        signature differ.
    """

    def __init__(self, home: Path, key: bytes | None = None) -> None:
        self.home = Path(home)
        self._key = key or None

    @property
    def snapshot_dir(self) -> Path:
        """The directory of the feature snapshots."""
        return self.home / "snapshots"

    def snapshot_path(self, as_of: date) -> Path:
        """Return where the snapshot for a day is (or would be) stored.

        Parameters
        ----------
        as_of : datetime.date
            The snapshot day.

        Returns
        -------
        pathlib.Path
            ``<home>/snapshots/as_of=YYYY-MM-DD.parquet``.
        """
        return _dated(self.snapshot_dir, as_of)

    def list_snapshots(self) -> list[date]:
        """List the days that have a complete snapshot.

        Returns
        -------
        list of datetime.date
            Oldest first; unfinished writes are never listed.
        """
        return _days(self.snapshot_dir)

    def latest_as_of(self) -> date | None:
        """Return the most recent snapshot day.

        Returns
        -------
        datetime.date or None
            None when the store has no snapshot.
        """
        days = self.list_snapshots()
        return days[-1] if days else None

    def _existing(self, as_of: date | None) -> Path:
        days = self.list_snapshots()
        if as_of is None and days:
            as_of = days[-1]
        if as_of is not None and as_of in days:
            return self.snapshot_path(as_of)
        available = ", ".join(d.isoformat() for d in days) or "none"
        wanted = f"for {as_of.isoformat()} " if as_of is not None else ""
        raise SnapshotNotFoundError(
            f"no snapshot {wanted}in {self.snapshot_dir} (available: {available}); "
            "build one with `guanxi features build`"
        )

    def write_snapshot(
        self,
        frame: pl.DataFrame,
        as_of: date,
        *,
        events: Path | SourceFile | None = None,
        customers: Path | SourceFile | None = None,
        history: pl.DataFrame | pl.LazyFrame | CustomerRanges | None = None,
        drop_history: bool = False,
    ) -> SnapshotInfo:
        """Store a snapshot atomically, replacing any snapshot for the same day.

        Parameters
        ----------
        frame : polars.DataFrame
            The snapshot (one row per customer).
        as_of : datetime.date
            The snapshot day.
        events : pathlib.Path or SourceFile, optional
            The events file it was built from; its path, size and modification time are recorded
            (a :class:`SourceFile` is recorded as given, e.g. a database table's).
        customers : pathlib.Path or SourceFile, optional
            The customers file it was built from, recorded the same way.
        history : polars.DataFrame, polars.LazyFrame or CustomerRanges, optional
            The validated events it was built from; written first with :meth:`write_history`,
            so the reviewer pages can show a customer's history.
        drop_history : bool, default False
            Without ``history``, whether to remove the day's stored history (the replaced
            snapshot's events, :meth:`drop_history`) once the snapshot is written: a failed write
            leaves the replaced snapshot with its history.

        Returns
        -------
        SnapshotInfo
            The metadata written with the snapshot.
        """
        if history is not None:
            self.write_history(history, as_of)
        path = self.snapshot_path(as_of)
        info = SnapshotInfo(
            as_of=as_of,
            path=path,
            rows=frame.height,
            feature_set_version=FEATURE_SET_VERSION,
            created=datetime.now(UTC).isoformat(),
            events=_source(events),
            customers=_source(customers),
        )
        _write_with_info(path, frame, info, self._key)
        if history is None and drop_history:
            self.drop_history(as_of)
        return info

    def read_snapshot(self, as_of: date | None = None) -> pl.DataFrame:
        """Read a snapshot.

        Parameters
        ----------
        as_of : datetime.date, optional
            The snapshot day; the latest one when omitted.

        Returns
        -------
        polars.DataFrame
            The snapshot as written.

        Raises
        ------
        SnapshotNotFoundError
            If there is no such snapshot; the message lists the available days.
        """
        return pl.read_parquet(self._existing(as_of))

    def snapshot_info(self, as_of: date | None = None) -> SnapshotInfo:
        """Read a snapshot's metadata without reading its data.

        Parameters
        ----------
        as_of : datetime.date, optional
            The snapshot day; the latest one when omitted.

        Returns
        -------
        SnapshotInfo
            The metadata written with the snapshot.

        Raises
        ------
        SnapshotNotFoundError
            If there is no such snapshot; the message lists the available days.
        """
        path = self._existing(as_of)
        return SnapshotInfo.from_json(pl.read_parquet_metadata(path)[METADATA_KEY], path)

    def history_path(self, as_of: date) -> Path:
        """Return where the history of a snapshot day is (or would be) stored.

        Parameters
        ----------
        as_of : datetime.date
            The snapshot day.

        Returns
        -------
        pathlib.Path
            ``<home>/history/as_of=YYYY-MM-DD.parquet``.
        """
        return self.home / "history" / f"as_of={as_of.isoformat()}.parquet"

    def write_history(
        self, events: pl.DataFrame | pl.LazyFrame | CustomerRanges, as_of: date
    ) -> Path:
        """Store the events of a snapshot day, sorted by customer, atomically.

        Parameters
        ----------
        events : polars.DataFrame, polars.LazyFrame or CustomerRanges
            Validated events (``features.contracts.event_schema()``); those dated after
            ``as_of`` (UTC) are left out. A ``LazyFrame`` (e.g. staged events) is never held
            whole: it is split into ranges of ``customer_id`` of about :data:`HISTORY_RANGE`
            events (:func:`split_by_customer`, temporary Parquet files) and the ranges are
            sorted and written one at a time, in order. Events already split
            (:class:`CustomerRanges`, e.g. those the snapshot was built from) are written from
            their ranges the same way, without another split.
        as_of : datetime.date
            The snapshot day.

        Returns
        -------
        pathlib.Path
            The history file, sorted by ``customer_id`` then ``ts`` (events of a customer at the
            same time in the events' order), in row groups of :data:`HISTORY_ROW_GROUP` rows
            with statistics. The rows are the same whichever form ``events`` has.

        Raises
        ------
        ValueError
            If ``events`` are ranges split for another day.
        """
        if isinstance(events, CustomerRanges):
            return self._write_ranges(events, as_of)
        if isinstance(events, pl.LazyFrame):
            with tempfile.TemporaryDirectory(prefix="guanxi-history-") as spill:
                ranges = split_by_customer(events, as_of, HISTORY_RANGE, Path(spill))
                return self._write_ranges(ranges, as_of)
        order = (
            events.lazy()
            .select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("row"), "customer_id", "ts")
            .filter(pl.col("ts").dt.date() <= as_of)
            .sort("customer_id", "ts", maintain_order=True)
            .collect()
            .get_column("row")
        )  # the row order alone: the events are not copied whole to be sorted

        def write(path: Path) -> None:
            schema = events.head(0).to_arrow().schema
            with pq.ParquetWriter(path, schema, compression="zstd") as out:
                _write_in_order(out, events, order)

        return atomic_write(self.history_path(as_of), write)

    def _write_ranges(self, ranges: CustomerRanges, as_of: date) -> Path:
        """Write the history from ranges of ``customer_id``, one range sorted at a time."""
        if ranges.as_of != as_of:
            raise ValueError(f"the events were split for {ranges.as_of}, not for {as_of}")

        def write(path: Path) -> None:
            schema = ranges.events(0).clear().collect().to_arrow().schema
            with pq.ParquetWriter(path, schema, compression="zstd") as out:
                for i, part in enumerate(ranges.parts):
                    frame = part.collect(engine="streaming")
                    order = frame.select(
                        pl.int_range(pl.len(), dtype=pl.UInt32).sort_by("customer_id", "ts", _ROW)
                    ).to_series()
                    # the first range writes an empty row group when there are no events at all
                    _write_in_order(out, frame.drop(_ROW), order, first=i == 0)
                    del frame, order

        return atomic_write(self.history_path(as_of), write)

    def drop_history(self, as_of: date) -> bool:
        """Remove the history of a snapshot day, for a snapshot stored without one.

        A snapshot built where its events cannot be written as a history (a Spark table) must
        not keep the history of the one it replaces: the reviewer pages would show other events.

        Parameters
        ----------
        as_of : datetime.date
            The snapshot day.

        Returns
        -------
        bool
            Whether there was one.
        """
        path = self.history_path(as_of)
        existed = path.is_file()
        path.unlink(missing_ok=True)
        return existed

    def read_history(self, as_of: date, customer_id: str) -> pl.DataFrame | None:
        """Read one customer's events of a snapshot day.

        Parameters
        ----------
        as_of : datetime.date
            The snapshot day.
        customer_id : str
            The customer.

        Returns
        -------
        polars.DataFrame or None
            The customer's events on or before ``as_of`` (empty when there are none), oldest
            first; None when the store holds no history for the day. Only the row groups whose
            ``customer_id`` range holds the customer are read.
        """
        path = self.history_path(as_of)
        if not path.is_file():
            return None
        return pl.scan_parquet(path).filter(pl.col("customer_id") == customer_id).collect()

    @property
    def score_dir(self) -> Path:
        """The directory of the score tables."""
        return self.home / "scores"

    def score_path(self, task: str, as_of: date, model_version: str) -> Path:
        """Return where a score table is (or would be) stored.

        Parameters
        ----------
        task : str
            The task scored.
        as_of : datetime.date
            The day of the snapshot scored.
        model_version : str
            Registered version of the model that scored it.

        Returns
        -------
        pathlib.Path
            ``<home>/scores/task=<task>/as_of=YYYY-MM-DD/version=<model_version>.parquet``.

        Raises
        ------
        ValueError
            If ``task`` or ``model_version`` is not a plain name (letters, digits, ``._-``).
        """
        task = _checked_name("task", task)
        version = _checked_name("model version", str(model_version))
        return (
            self.score_dir
            / f"task={task}"
            / f"as_of={as_of.isoformat()}"
            / f"version={version}.parquet"
        )

    def write_scores(
        self,
        task: str,
        as_of: date,
        model_version: str,
        frame: pl.DataFrame,
        *,
        model_name: str,
        feature_set_version: str,
        explain_k: int,
        snapshot_digest: str,
    ) -> ScoreTableInfo:
        """Store a score table atomically, replacing any table for the same key.

        Parameters
        ----------
        task : str
            The task scored.
        as_of : datetime.date
            The day of the snapshot scored.
        model_version : str
            Registered version of the model that scored it.
        frame : polars.DataFrame
            The scored rows (stored as given).
        model_name : str
            Registered model name.
        feature_set_version : str
            Feature-set version of the snapshot and the model.
        explain_k : int
            Reasons per row in ``frame`` (0 for none).
        snapshot_digest : str
            :func:`scores_digest` of the snapshot scored.

        Returns
        -------
        ScoreTableInfo
            The metadata written with the table.
        """
        with self.writing_scores(
            task,
            as_of,
            model_version,
            frame.schema,
            model_name=model_name,
            feature_set_version=feature_set_version,
            explain_k=explain_k,
            snapshot_digest=snapshot_digest,
        ) as table:
            table.write(frame)
        assert table.info is not None
        return table.info

    @contextmanager
    def writing_scores(
        self,
        task: str,
        as_of: date,
        model_version: str,
        schema: pl.Schema,
        *,
        model_name: str,
        feature_set_version: str,
        explain_k: int,
        snapshot_digest: str,
    ) -> Iterator[ScoreTableWriter]:
        """Store a score table that comes a part at a time, atomically, as :meth:`write_scores`.

        The parts go into the file as they are written (:class:`ParquetParts`), so the table is
        never held whole; the file replaces any table for the same key when the block ends.

        Parameters
        ----------
        task, as_of, model_version
            As for :meth:`write_scores`.
        schema : polars.Schema
            The table's columns, in order, with their types (a part's missing column is null).
        model_name, feature_set_version, explain_k, snapshot_digest
            As for :meth:`write_scores`.

        Yields
        ------
        ScoreTableWriter
            Give it each part with :meth:`ScoreTableWriter.write`; once the block has ended
            without an error, its ``info`` is the metadata written with the table. If the block
            raises, nothing is stored and the table before (if any) stays.
        """
        path = self.score_path(task, as_of, model_version)
        with _atomic(path) as temporary, ParquetParts(temporary, schema) as parts:
            table = ScoreTableWriter(parts)
            yield table
            info = ScoreTableInfo(
                task=task,
                as_of=as_of,
                model_name=model_name,
                model_version=str(model_version),
                feature_set_version=feature_set_version,
                explain_k=explain_k,
                rows=parts.rows,
                snapshot_digest=snapshot_digest,
                created=datetime.now(UTC).isoformat(),
                path=path,
            )
            text = info.to_json()
            parts.add_metadata({METADATA_KEY: text})
        _write_manifest(path, text, self._key)
        table.info = info

    def score_info(self, task: str, as_of: date, model_version: str) -> ScoreTableInfo | None:
        """Read a score table's metadata without reading its rows.

        Parameters
        ----------
        task : str
            The task scored.
        as_of : datetime.date
            The day of the snapshot scored.
        model_version : str
            Registered version of the model that scored it.

        Returns
        -------
        ScoreTableInfo or None
            None when the store has no such table (unfinished writes never count).
        """
        path = self.score_path(task, as_of, model_version)
        text = _info_text(path)
        return ScoreTableInfo.from_json(text, path) if text is not None else None

    def read_scores(self, task: str, as_of: date, model_version: str) -> pl.DataFrame | None:
        """Read a score table.

        Parameters
        ----------
        task : str
            The task scored.
        as_of : datetime.date
            The day of the snapshot scored.
        model_version : str
            Registered version of the model that scored it.

        Returns
        -------
        polars.DataFrame or None
            The rows as written; None when the store has no such table.

        Raises
        ------
        UnsignedTableError, TamperedTableError
            With a key: the table has no manifest of this write, or does not match it.
        """
        path = self.score_path(task, as_of, model_version)
        return _read_checked(path, self._key) if path.is_file() else None

    @property
    def value_dir(self) -> Path:
        """The directory of the customer value tables."""
        return self.home / "values"

    def value_path(self, as_of: date) -> Path:
        """Return where the value table of a day is (or would be) stored.

        Parameters
        ----------
        as_of : datetime.date
            The day the values are computed as of.

        Returns
        -------
        pathlib.Path
            ``<home>/values/as_of=YYYY-MM-DD.parquet``.
        """
        return _dated(self.value_dir, as_of)

    def list_values(self) -> list[date]:
        """List the days that have a complete value table.

        Returns
        -------
        list of datetime.date
            Oldest first; unfinished writes are never listed.
        """
        return _days(self.value_dir)

    def write_values(
        self,
        frame: pl.DataFrame,
        as_of: date,
        *,
        horizon_days: int,
        discount_rate: float,
        basis: str,
        fit: dict[str, Any],
        churn_model: dict[str, Any] | None = None,
        validation: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> ValueTableInfo:
        """Store a customer value table atomically, replacing any table of the same day.

        Parameters
        ----------
        frame : polars.DataFrame
            One row per customer (stored as given).
        as_of : datetime.date
            The day the values are computed as of.
        horizon_days : int
            Days the expected purchases and CLV cover.
        discount_rate : float
            Annual discount rate.
        basis : str
            ``"margin"`` or ``"revenue"``.
        fit : dict
            Fitted parameters and statistics (JSON-serialisable).
        churn_model : dict, optional
            The churn model read (name, version, horizon_days).
        validation : dict, optional
            The holdout check.
        run_id : str, optional
            The MLflow run of the fit.

        Returns
        -------
        ValueTableInfo
            The metadata written with the table.
        """
        path = self.value_path(as_of)
        info = ValueTableInfo(
            as_of=as_of,
            rows=frame.height,
            horizon_days=int(horizon_days),
            discount_rate=float(discount_rate),
            basis=basis,
            churn_model=churn_model,
            fit=fit,
            validation=validation,
            run_id=run_id,
            created=datetime.now(UTC).isoformat(),
            path=path,
        )
        _write_with_info(path, frame, info, self._key)
        return info

    def value_info(self, as_of: date) -> ValueTableInfo | None:
        """Read a value table's metadata without reading its rows.

        Parameters
        ----------
        as_of : datetime.date
            The day of the table.

        Returns
        -------
        ValueTableInfo or None
            None when the store has no value table for the day.
        """
        path = self.value_path(as_of)
        text = _info_text(path)
        return ValueTableInfo.from_json(text, path) if text is not None else None

    def read_values(self, as_of: date) -> pl.DataFrame | None:
        """Read a value table.

        Parameters
        ----------
        as_of : datetime.date
            The day of the table.

        Returns
        -------
        polars.DataFrame or None
            The rows as written; None when the store has no value table for the day.

        Raises
        ------
        UnsignedTableError, TamperedTableError
            With a key: the table has no manifest of this write, or does not match it.
        """
        path = self.value_path(as_of)
        return _read_checked(path, self._key) if path.is_file() else None

    @property
    def plan_dir(self) -> Path:
        """The directory of the campaign plans."""
        return self.home / "plans"

    def plan_path(self, as_of: date) -> Path:
        """Return where the plan of a day is (or would be) stored.

        Parameters
        ----------
        as_of : datetime.date
            The day of the scores and values the plan was made from.

        Returns
        -------
        pathlib.Path
            ``<home>/plans/as_of=YYYY-MM-DD.parquet``.
        """
        return _dated(self.plan_dir, as_of)

    def list_plans(self) -> list[date]:
        """List the days that have a complete plan.

        Returns
        -------
        list of datetime.date
            Oldest first.
        """
        return _days(self.plan_dir)

    def write_plan(self, frame: pl.DataFrame, info: PlanInfo) -> PlanInfo:
        """Store a plan atomically, replacing any plan of the same day.

        Parameters
        ----------
        frame : polars.DataFrame
            The plan's rows.
        info : PlanInfo
            Its metadata (``path`` is set by the store).

        Returns
        -------
        PlanInfo
            The metadata written with the rows.
        """
        path = self.plan_path(info.as_of)
        info = replace(info, path=path, rows=frame.height)
        _write_with_info(path, frame, info, self._key)
        return info

    def plan_info(self, as_of: date) -> PlanInfo | None:
        """Read a plan's metadata without its rows.

        Parameters
        ----------
        as_of : datetime.date
            The day of the plan.

        Returns
        -------
        PlanInfo or None
            None when the store has no plan for the day.
        """
        path = self.plan_path(as_of)
        text = _info_text(path)
        return PlanInfo.from_json(text, path) if text is not None else None

    def read_plan(self, as_of: date) -> pl.DataFrame | None:
        """Read a plan's rows.

        Parameters
        ----------
        as_of : datetime.date
            The day of the plan.

        Returns
        -------
        polars.DataFrame or None
            None when the store has no plan for the day.

        Raises
        ------
        UnsignedTableError, TamperedTableError
            With a key: the plan has no manifest of this write, or does not match it.
        """
        path = self.plan_path(as_of)
        return _read_checked(path, self._key) if path.is_file() else None

    def read_plan_with_info(self, as_of: date) -> tuple[pl.DataFrame, PlanInfo] | None:
        """Read a plan's rows and its metadata from one read of the file.

        Both are parsed from the same bytes, checked once: with a key, a file whose metadata
        alone was changed is refused like one whose rows were, and no file replaced between
        two reads gives the metadata of another write (:meth:`plan_info` reads it unchecked).

        Parameters
        ----------
        as_of : datetime.date
            The day of the plan.

        Returns
        -------
        tuple of (polars.DataFrame, PlanInfo) or None
            The rows and the metadata; None when the store has no plan for the day.

        Raises
        ------
        UnsignedTableError, TamperedTableError
            With a key: the plan has no manifest of this write, or does not match it.
        """
        path = self.plan_path(as_of)
        if not path.is_file():
            return None
        raw = _checked_bytes(path, self._key)
        text = pl.read_parquet_metadata(io.BytesIO(raw))[METADATA_KEY]
        return pl.read_parquet(io.BytesIO(raw)), PlanInfo.from_json(text, path)

    @property
    def campaign_dir(self) -> Path:
        """The directory of the recorded campaigns."""
        return self.home / "campaigns"

    def campaign_path(self, name: str) -> Path:
        """Return where a recorded campaign is (or would be) stored.

        Parameters
        ----------
        name : str
            The campaign's name (letters, digits, ``.``, ``_``, ``-``).

        Returns
        -------
        pathlib.Path
            ``<home>/campaigns/campaign=<name>.parquet``.
        """
        return (
            self.campaign_dir
            / f"campaign={_checked_name('campaign', name, 'a stored campaign')}.parquet"
        )

    def write_campaign(
        self,
        frame: pl.DataFrame,
        name: str,
        source: str,
        as_of: date | None = None,
        plan: date | None = None,
    ) -> CampaignInfo:
        """Store a campaign's outcomes atomically, replacing a campaign of the same name.

        Parameters
        ----------
        frame : polars.DataFrame
            Validated outcomes.
        name : str
            The campaign's name.
        source : str
            Where they were read from.
        as_of : datetime.date, optional
            The day its outcomes were complete (:attr:`CampaignInfo.as_of`); today (UTC) when
            omitted.
        plan : datetime.date, optional
            The day of the stored plan it was drawn from (:attr:`CampaignInfo.plan`), if known.

        Returns
        -------
        CampaignInfo
            The metadata written with the rows.
        """
        path = self.campaign_path(name)
        now = datetime.now(UTC)
        day = now.date() if as_of is None else as_of
        info = CampaignInfo(day, name, frame.height, source, now.isoformat(), path, plan)
        _write_with_info(path, frame, info, self._key)
        return info

    def list_campaigns(self, exclude: Collection[str] = ()) -> list[CampaignInfo]:
        """List the recorded campaigns.

        Parameters
        ----------
        exclude : collection of str, default ()
            Campaigns not to list, their files not read (``guanxi campaign record`` replacing
            one, which may be a damaged file).

        Returns
        -------
        list of CampaignInfo
            By name; unfinished writes are never listed.

        Raises
        ------
        TamperedTableError
            A campaign file whose metadata cannot be read (not Parquet, truncated, or without
            guanxi's metadata), naming the file and the campaign (``what``).
        """
        if not self.campaign_dir.is_dir():
            return []
        paths = sorted(
            p
            for p in self.campaign_dir.glob("campaign=*.parquet")
            if p.is_file()
            and not is_temporary(p)
            and p.stem.removeprefix("campaign=") not in exclude
        )
        listed = []
        for path in paths:
            try:
                listed.append(
                    CampaignInfo.from_json(pl.read_parquet_metadata(path)[METADATA_KEY], path)
                )
            except (pl.exceptions.PolarsError, OSError, KeyError, ValueError) as exc:
                refused = TamperedTableError(
                    f"the campaign file {path} cannot be read ({exc}): record the campaign "
                    "again (guanxi campaign record --file F --name N)"
                )
                refused.what = f"the recorded campaign {path.stem.removeprefix('campaign=')!r}"
                raise refused from exc
        return listed

    def read_campaign(self, name: str) -> pl.DataFrame | None:
        """Read a recorded campaign's outcomes.

        Parameters
        ----------
        name : str
            The campaign's name.

        Returns
        -------
        polars.DataFrame or None
            The outcomes as recorded; None when no campaign of that name is recorded.

        Raises
        ------
        UnsignedTableError, TamperedTableError
            With a key: the outcomes have no manifest of this write, or do not match it.
        """
        path = self.campaign_path(name)
        return _read_checked(path, self._key) if path.is_file() else None

    def list_score_tables(self, task: str) -> list[ScoreTableInfo]:
        """List the score tables of a task.

        Parameters
        ----------
        task : str
            The task scored.

        Returns
        -------
        list of ScoreTableInfo
            Oldest snapshot day first, then by model version; unfinished writes never count.
        """
        directory = self.score_dir / f"task={_checked_name('task', task)}"
        found = []
        for path in sorted(directory.glob("as_of=*/version=*.parquet")):
            text = _info_text(path)
            if text is not None and not is_temporary(path):
                found.append(ScoreTableInfo.from_json(text, path))
        return sorted(found, key=lambda i: (i.as_of, i.model_version))

    def record_path(self, kind: str, as_of: date) -> Path:
        """Return where a JSON record of a day is (or would be) stored.

        Parameters
        ----------
        kind : {"drift", "cycle"}
            ``drift``: the report of ``guanxi drift``; ``cycle``: the steps of ``guanxi cycle``.
        as_of : datetime.date
            The day.

        Returns
        -------
        pathlib.Path
            ``<home>/<kind>/as_of=YYYY-MM-DD.json``.
        """
        if kind not in ("drift", "cycle"):
            raise ValueError(f"unknown record kind {kind!r}")
        return self.home / kind / f"as_of={as_of.isoformat()}.json"

    def write_record(self, kind: str, as_of: date, record: dict[str, Any]) -> Path:
        """Store a JSON record atomically, replacing the record of the same kind and day.

        Parameters
        ----------
        kind : {"drift", "cycle"}
            See :meth:`record_path`.
        as_of : datetime.date
            The day.
        record : dict
            JSON-serialisable content (dates are written as ISO strings).

        Returns
        -------
        pathlib.Path
            The record's file.
        """
        text = json.dumps(record, indent=1, default=str, allow_nan=True)
        return atomic_write(self.record_path(kind, as_of), lambda p: p.write_text(text))

    def read_record(self, kind: str, as_of: date) -> dict[str, Any] | None:
        """Read a JSON record.

        Parameters
        ----------
        kind : {"drift", "cycle"}
            See :meth:`record_path`.
        as_of : datetime.date
            The day.

        Returns
        -------
        dict or None
            The record; None when the store has none for the day.
        """
        path = self.record_path(kind, as_of)
        if not path.is_file():
            return None
        record: dict[str, Any] = json.loads(path.read_text())
        return record

    def list_records(self, kind: str) -> list[date]:
        """List the days with a complete record of a kind.

        Parameters
        ----------
        kind : {"drift", "cycle"}
            See :meth:`record_path`.

        Returns
        -------
        list of datetime.date
            Oldest first.
        """
        return _days(self.record_path(kind, date(2000, 1, 1)).parent, _RECORD)
