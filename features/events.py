"""Read events and customers files and validate them against the contract.

Every check in :mod:`features.contracts` runs on every row, and every problem found is reported
at once: a user fixes a file in one round, not one error per run.

Reading
-------
A path is a ``.csv`` file, a ``.parquet`` file or a directory of ``.parquet`` files (read in name
order, as one table); a directory without ``.parquet`` files is read as its ``.csv`` files. CSV
files are read with every column as text, so a bad value such as an ``amount`` of ``"abc"`` is
reported with its row instead of stopping the reader. Parquet columns keep their stored types when
those fit the contract (any integer or float for a number, any date or timestamp for a time,
integers for an id) and are parsed when stored as text.

Timestamps are ISO 8601: ``2024-03-01``, ``2024-03-01 09:30``, ``2024-03-01T09:30:05.25``,
optionally ending in ``Z`` or an offset (``+08:00``, ``-0500``). Naive timestamps mean UTC;
timestamps with an offset are converted to UTC. Timestamps after ``now`` are errors; ``now`` is a
parameter that the caller passes (the CLI passes the wall clock).

Rows
----
Row numbers in problems are **1-based data rows**: row 1 is the first record after the header of
a CSV (line 2 of the file when no quoted value spans lines) and the first row of a Parquet file.
In a directory of files, rows count within each file and the problem names the file. At
most :data:`MAX_LISTED_ROWS` rows are listed per problem, followed by how many more there are.
A table whose rows have no meaningful order (a database table) is validated with ``key``, the
columns of its primary key: problems then list key values (``Problem.keys``) as well.

The contract has no upper bound on ``amount``, but an amount more than
:data:`LARGE_AMOUNT_FACTOR` (1,000) times the median positive amount of its file (or table, or
query) is reported as a *warning* naming its rows: usually a unit slip (cents in a file of
euros) or a typing error, sometimes a real order; the rows are kept and the analyst decides.

Memory and speed
----------------
The result is an eager :class:`polars.DataFrame`: validation has to see every row anyway, and the
typed frame (numbers and timestamps instead of text) is much smaller than the raw text. The file
is read once by Polars' streaming engine, which converts the columns and computes one boolean
flag per check in the same pass, so the raw text is never held whole; the flags are then counted
in bulk; one more streaming pass over the typed ``amount`` column finds the median of the
positive amounts (holding those, 8 bytes each, but not the rest of the column). Only when
there are problems are a few more cheap passes made (distinct bad values, the first bad raw value
of a column). No Python loop runs over rows. :func:`stage_events` does the
same checks without the eager frame: the typed rows and flags are streamed to Parquet files, the
problems found from those (flags, row hashes), and the result is a scan of them.
:func:`stage_orders` does the same checks for a reader of the orders alone, in one streaming pass
per file that keeps only the ``order`` rows (written to Parquet after it) and the flagged rows,
each row's hash and the positive amounts for the duplicate and amount checks. A CSV whose first
line is longer than 1 MiB is refused before parsing (a file without line breaks is not a table).
A CSV file is read once more, each line as one text, to count its commas: a row with fewer
fields than the header (read with nulls) is a warning naming it, and a row with more (which
Polars refuses naming none) is named; only then does Python's :mod:`csv` read the file to find
them (:func:`long_rows`).
"""

from __future__ import annotations

import csv
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal, TypeVar

import numpy as np
import polars as pl

from features.contracts import (
    CHANNELS,
    CUSTOMER_COLUMNS,
    CUSTOMER_TYPES,
    EVENT_COLUMNS,
    EVENT_REQUIRES,
    EVENT_TYPES,
    OUTCOME_COLUMNS,
    SCORE_RANGES,
    UTC_TS,
    Column,
)

__all__ = [
    "BLANK_CHARS",
    "CONTROL_CHARS",
    "LARGE_AMOUNT_FACTOR",
    "MAX_LISTED_ROWS",
    "MAX_VALUE_CHARS",
    "EventsValidationError",
    "Loaded",
    "LongRows",
    "Prepare",
    "Problem",
    "Staged",
    "StagedOrders",
    "csv_rows",
    "load_customers",
    "load_events",
    "long_rows",
    "parquet_rows",
    "read_customers",
    "read_events",
    "stage_events",
    "stage_events_table",
    "stage_orders",
    "stage_orders_table",
    "validate_customers",
    "validate_events",
]

logger = logging.getLogger(__name__)

MAX_LISTED_ROWS: Final = 10
"""Rows listed per problem; the rest are counted."""

MAX_VALUE_CHARS: Final = 1000
"""Longest text value accepted in a contract column (ids, types, categories)."""

CONTROL_CHARS: Final = r"\x00-\x1f\x7f-\x9f"
"""The control characters (Unicode category Cc: C0, DEL and C1) as the body of a regex character
class; a customer id holds none."""

BLANK_CHARS: Final = r" \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
r"""The Unicode white space that is not a control character, as the body of a regex character
class. Written out instead of ``\s``, whose meaning differs between regex engines (``\x85``
is white space to Python and Rust, not to JavaScript), so that the API's published pattern and
the server agree; Polars' ``strip_chars`` strips the same set."""

LARGE_AMOUNT_FACTOR: Final = 1000
"""An ``amount`` above this many times its file's (table's) median positive amount is a warning."""

_HEADER_LIMIT: Final = 1 << 20
_SEPARATORS: Final = ((b";", "semicolon"), (b"\t", "tab"), (b"|", "vertical bar"))
"""Separators a CSV file read here might use instead of commas, with their names."""
_SHOW_CHARS: Final = 40
_SHOW_VALUES: Final = 5
_T: Final = "__typed_"
_F: Final = "__check_"
_K: Final = "__key__"
_ROW: Final = "__row__"
_PARQUET_SUFFIXES: Final = (".parquet", ".pq")
_CSV_SUFFIXES: Final = (".csv",)
_SAMPLE_BYTES: Final = 1 << 20
"""Bytes of a CSV file read to estimate its rows (:func:`csv_rows`)."""
_NAIVE_TS: Final = r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?$"
_AWARE_TS: Final = (
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$"
)
_TS_HINT: Final = (
    "expected ISO 8601 such as 2024-03-01, 2024-03-01 09:30:00 or 2024-03-01T09:30+08:00"
)

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One problem found in an input file.

    Parameters
    ----------
    file : str
        The file the problem is in, as the user named it (a part file for a directory).
    column : str or None
        The column concerned; None for a problem with the whole file.
    message : str
        What is wrong, in words a CRM analyst can act on.
    rows : tuple of int
        The first affected rows (1-based data rows, at most :data:`MAX_LISTED_ROWS`).
    n_rows : int
        How many rows are affected in total (0 for a problem with the whole file).
    severity : {"error", "warning"}
        Errors stop the load; warnings are reported and the data is used.
    key : str or None
        The key the rows are named by instead of row numbers (e.g. ``"event_id"``), for a table
        read with a primary key; None otherwise.
    keys : tuple of str
        The key values of the rows in ``rows``, when ``key`` is set.
    """

    file: str
    column: str | None
    message: str
    rows: tuple[int, ...] = ()
    n_rows: int = 0
    severity: Severity = "error"
    key: str | None = None
    keys: tuple[str, ...] = ()

    def rows_text(self) -> str:
        """Return the listed rows as text, e.g. ``"3, 7, 12 and 1,204 more"``.

        Returns
        -------
        str
            Empty for a problem with the whole file; key values (``"event_id 17, 40"``) for a
            table read with a key.
        """
        listed = self.keys if self.key else self.rows
        shown = ", ".join(str(r) for r in listed)
        more = self.n_rows - len(listed)
        shown = f"{shown} and {more:,} more" if more > 0 else shown
        return f"{self.key} {shown}" if self.key and shown else shown

    def __str__(self) -> str:
        where = self.file + (f", column {self.column!r}" if self.column else "")
        if self.keys:
            where += f", {self.rows_text()}"
        elif self.rows:
            where += f", row{'s' if self.n_rows > 1 else ''} {self.rows_text()}"
        return f"{where}: {self.message}"


class EventsValidationError(ValueError):
    """An input file breaks the contract; nothing should be written from it.

    Parameters
    ----------
    problems : sequence of Problem
        Every problem found, errors and warnings.

    Attributes
    ----------
    problems : list of Problem
        Every problem found, errors first.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: p.severity != "error")
        super().__init__(str(self))

    @property
    def errors(self) -> list[Problem]:
        """The problems with severity ``"error"``."""
        return [p for p in self.problems if p.severity == "error"]

    def __str__(self) -> str:
        errors = self.errors
        lines = [f"{len(errors)} error{'s' if len(errors) != 1 else ''} in the input:"]
        lines += [f"  - {p}" for p in errors]
        warnings = [p for p in self.problems if p.severity == "warning"]
        if warnings:
            lines.append("warnings:")
            lines += [f"  - {p}" for p in warnings]
        return "\n".join(lines)


@dataclass(frozen=True)
class Loaded:
    """A validated table and the warnings found while validating it.

    Parameters
    ----------
    frame : polars.DataFrame
        The typed table.
    warnings : tuple of Problem
        Problems that did not stop the load (e.g. exact duplicate rows).
    """

    frame: pl.DataFrame
    warnings: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class Staged:
    """Validated events staged on disk (:func:`stage_events`): a scan, not a table in memory.

    Parameters
    ----------
    frame : polars.LazyFrame
        A scan of the typed events (as :attr:`Loaded.frame`, rows in the same order).
    height : int
        The number of events.
    warnings : tuple of Problem
        Problems that did not stop the load.
    files : tuple of pathlib.Path
        The staged Parquet files ``frame`` scans, in its order, written with row-group
        statistics: a scan filtered on ``customer_id`` skips the row groups outside the filter
        (:func:`features.store.parquet_ranges_in_order` tells from them whether the row groups
        hold ranges of ``customer_id`` in order).
    """

    frame: pl.LazyFrame
    height: int
    warnings: tuple[Problem, ...] = ()
    files: tuple[Path, ...] = ()


@dataclass(frozen=True)
class StagedOrders:
    """Validated events of which only the ``order`` events are staged (:func:`stage_orders`).

    For a reader of the orders alone (``guanxi value`` with the day's snapshot in the store):
    every event is validated as :func:`stage_events` validates it, with the same problems, but
    only the orders are written to disk.

    Parameters
    ----------
    frame : polars.LazyFrame
        A scan of the typed ``order`` events (the rows of :attr:`Loaded.frame` whose
        ``event_type`` is ``order``, in the same order).
    height : int
        The number of events validated (all of them, not only the orders).
    last : datetime.datetime or None
        The time of the last event of any type (None without events).
    warnings : tuple of Problem
        Problems that did not stop the load.
    files : tuple of pathlib.Path
        The staged Parquet files ``frame`` scans, in its order.
    """

    frame: pl.LazyFrame
    height: int
    last: datetime | None
    warnings: tuple[Problem, ...] = ()
    files: tuple[Path, ...] = ()


@dataclass(frozen=True)
class _Check:
    """A row-level check: ``flag`` is True on the bad rows."""

    column: str
    message: str
    flag: pl.Expr
    show: Literal["", "values", "example"] = ""


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOW_CHARS else text[: _SHOW_CHARS - 3] + "..."


def _typed(name: str) -> pl.Expr:
    return pl.col(_T + name)


def _parse_ts(text: pl.Expr) -> pl.Expr:
    """Parse ISO 8601 text to UTC; anything else becomes null.

    Only text of the ISO shapes reaches Polars' parser, so its format inference can only pick
    the year-month-day patterns (never day-first ones); naive and offset text go separately.
    """
    text = text.str.strip_chars()
    parsed = [
        pl.when(text.str.contains(shape))
        .then(text)
        .str.to_datetime(None, time_unit="us", time_zone="UTC", strict=False)
        for shape in (_NAIVE_TS, _AWARE_TS)
    ]
    return pl.coalesce(parsed)


def _convert(
    col: Column, dtype: pl.DataType, file: str
) -> tuple[pl.Expr, pl.Expr | None, Problem | None]:
    """Return (typed expression, flag of unparseable values or None, file-level type problem)."""
    raw = pl.col(col.name)
    if dtype == pl.Null:
        return raw.cast(col.dtype), None, None
    target = col.dtype
    if target == pl.String:
        if dtype == pl.String:
            return raw, None, None
        if dtype.is_integer() or dtype in (pl.Categorical, pl.Enum):
            return raw.cast(pl.String), None, None
    elif target == pl.Float64:
        if dtype == pl.String:
            number = raw.str.strip_chars().cast(pl.Float64, strict=False)
            return number, raw.is_not_null() & number.is_null(), None
        if dtype.is_numeric():
            return raw.cast(pl.Float64), None, None
    elif isinstance(target, pl.Datetime):
        if dtype == pl.String:
            ts = _parse_ts(raw)
            return ts, raw.is_not_null() & ts.is_null(), None
        if isinstance(dtype, pl.Datetime):
            ts = (
                raw.dt.replace_time_zone("UTC")
                if dtype.time_zone is None
                else raw.dt.convert_time_zone("UTC")
            )
            return ts.dt.cast_time_unit("us"), None, None
        if dtype == pl.Date:
            return raw.cast(pl.Datetime("us")).dt.replace_time_zone("UTC"), None, None
    kind = {pl.String: "text", pl.Float64: "a number"}.get(type(target), "a timestamp")
    problem = Problem(file, col.name, f"the column is stored as {dtype}, expected {kind}")
    return pl.lit(None, dtype=target), None, problem


def _rename(name: str, column: str, section: str | None = None) -> str:
    """Say how a file's ``name`` that is ``column`` but for case or spaces becomes it.

    ``section`` is the mapping file's part for the table (``customers``), None for the events.
    """
    entry = f"{column}: {name!r}"
    entry = entry if section is None else f"{section}: {{{entry}}}"
    return f"names must match exactly, so rename it {column} or map it with --mapping ({entry})"


def _missing_columns(
    file: str, names: Sequence[str], columns: Sequence[Column], section: str | None
) -> list[Problem]:
    problems = []
    for col in columns:
        if col.required and col.name not in names:
            # an export's CUSTOMER_ID or " ts": said as such, not as one name in the whole list
            near = [n for n in names if n.strip().lower() == col.name]
            message = (
                f"required column is missing; the file has {_show(near[0])}: "
                + _rename(near[0], col.name, section)
                if near
                else "required column is missing; the file has: "
                + ", ".join(_show(n) for n in names[:20])
            )
            problems.append(Problem(file, col.name, message))
    return problems


def _prepare(
    raw: pl.LazyFrame,
    columns: Sequence[Column],
    file: str,
    lossy: bool,
    section: str | None = None,
) -> tuple[pl.LazyFrame, dict[str, pl.Expr], set[str], list[_Check], list[Problem]]:
    """Add missing columns as typed nulls and build the typed expressions and common checks.

    Returns the frame, typed expressions by column, the usable columns (present with a usable
    type), the checks shared by every table and file-level problems. ``section`` is the table's
    part of a mapping file (``customers``; None for the events), for the problems' advice.
    """
    schema = raw.collect_schema()
    problems = _missing_columns(file, schema.names(), columns, section)
    raw = raw.with_columns(
        pl.lit(None, dtype=c.dtype).alias(c.name) for c in columns if c.name not in schema
    )
    typed: dict[str, pl.Expr] = {}
    usable: set[str] = set()
    checks: list[_Check] = []
    for col in columns:
        expr, bad, problem = _convert(col, schema.get(col.name, col.dtype), file)
        typed[col.name] = expr
        if problem is not None:
            problems.append(problem)
        elif col.name in schema:
            usable.add(col.name)
        if bad is not None:
            message = _TS_HINT if isinstance(col.dtype, pl.Datetime) else "not a number"
            checks.append(_Check(col.name, f"unreadable value: {message}", bad, "example"))
    texts = [name for name, dtype in schema.items() if dtype == pl.String]
    checks += _text_checks(columns, usable, texts, lossy)
    return raw, typed, usable, checks, problems


def _text_checks(
    columns: Sequence[Column], usable: set[str], texts: Sequence[str], lossy: bool
) -> list[_Check]:
    """Build the checks shared by events and customers: ids, value length, encoding."""
    checks = []
    if "customer_id" in usable:
        cid = _typed("customer_id")
        checks.append(
            _Check(
                "customer_id", "customer_id is empty", cid.is_null() | (cid.str.strip_chars() == "")
            )
        )
        checks.append(
            _Check(
                "customer_id",
                "customer_id contains control characters (tab, line break, NUL, ...)",
                cid.str.contains(f"[{CONTROL_CHARS}]"),
                "example",
            )
        )
    for col in columns:
        if col.dtype == pl.String and col.name in usable:
            checks.append(
                _Check(
                    col.name,
                    f"value longer than {MAX_VALUE_CHARS:,} characters",
                    _typed(col.name).str.len_chars() > MAX_VALUE_CHARS,
                )
            )
    if lossy:
        message = "bytes that are not valid UTF-8 (wrong encoding: save the file as UTF-8)"
        checks += [
            _Check(name, message, pl.col(name).str.contains("\ufffd", literal=True))
            for name in texts
        ]
    return checks


def _time_checks(name: str, usable: set[str], now: datetime) -> list[_Check]:
    if name not in usable:
        return []
    message = f"timestamp after the current time ({now:%Y-%m-%d %H:%M:%S} UTC)"
    return [_Check(name, message, _typed(name) > pl.lit(now, dtype=UTC_TS), "example")]


def _allowed_check(name: str, allowed: Sequence[str], what: str) -> _Check:
    value = _typed(name)
    return _Check(
        name,
        f"unknown {what} (allowed: {', '.join(allowed)})",
        value.is_not_null() & ~value.is_in(list(allowed)),
        "values",
    )


def _event_checks(usable: set[str], now: datetime) -> list[_Check]:
    et = _typed("event_type")
    checks = _time_checks("ts", usable, now)
    if "ts" in usable:
        checks.append(_Check("ts", "timestamp is empty", pl.col("ts").is_null()))
    if "event_type" in usable:
        checks.append(_Check("event_type", "event_type is empty", et.is_null()))
        checks.append(_allowed_check("event_type", EVENT_TYPES, "event type"))
    if "channel" in usable:
        checks.append(_allowed_check("channel", CHANNELS, "channel"))
    for name in ("amount", "margin", "quantity", "score"):
        if name in usable:
            value = _typed(name)
            checks.append(
                _Check(name, "not a finite number", value.is_nan() | value.is_infinite(), "example")
            )
    for name in ("amount", "quantity"):
        if name in usable:
            checks.append(_Check(name, "negative value", _typed(name) < 0, "example"))
    if "event_type" not in usable:
        return checks
    needs: dict[str, list[str]] = {}
    for event_type, names in EVENT_REQUIRES.items():
        for name in names:
            needs.setdefault(name, []).append(event_type)
    for name, types in needs.items():
        absent = "" if name in usable else f" (the file has no {name!r} column)"
        checks.append(
            _Check(
                name,
                f"{name} is required for {', '.join(types)} events{absent}",
                et.is_in(types) & pl.col(name).is_null(),
            )
        )
    if "score" in usable:
        for event_type, (low, high) in SCORE_RANGES.items():
            score = _typed("score")
            checks.append(
                _Check(
                    "score",
                    f"score of a {event_type} outside {low:g}-{high:g}",
                    (et == event_type) & score.is_not_null() & ~score.is_between(low, high),
                    "example",
                )
            )
    return checks


def _customer_checks(usable: set[str], now: datetime) -> list[_Check]:
    checks = _time_checks("signup_ts", usable, now)
    if "customer_type" in usable:
        checks.append(_allowed_check("customer_type", CUSTOMER_TYPES, "customer type"))
    return checks


def _key_label(key: Sequence[str]) -> str | None:
    """Name a key in problems: ``event_id``, or ``(order_id, line)`` for a composite key."""
    if not key:
        return None
    return key[0] if len(key) == 1 else f"({', '.join(key)})"


def _key_values(key: Sequence[str]) -> list[pl.Expr]:
    """Return the key as one column (a composite key as text, parts joined by ``/``).

    A one-column key keeps its type (an integer key costs 8 bytes a row, not a string); values
    become text only for the rows listed in problems.
    """
    if not key:
        return []
    if len(key) == 1:
        return [pl.col(key[0]).alias(_K)]
    parts = [pl.col(k).cast(pl.String).fill_null("null") for k in key]
    return [pl.concat_str(parts, separator="/").alias(_K)]


def _flagged(
    raw: pl.LazyFrame, typed: dict[str, pl.Expr], checks: Sequence[_Check], key: Sequence[str]
) -> pl.LazyFrame:
    """Plan the typed columns, the key values (as :data:`_K`) and one flag per check."""
    return raw.with_columns(expr.alias(_T + name) for name, expr in typed.items()).select(
        *(_typed(name).alias(name) for name in typed),
        *_key_values(key),
        *(c.flag.fill_null(False).alias(f"{_F}{i}") for i, c in enumerate(checks)),
    )


def _run_checks(
    raw: pl.LazyFrame,
    typed: dict[str, pl.Expr],
    checks: Sequence[_Check],
    file: str,
    key: Sequence[str] = (),
) -> tuple[pl.DataFrame, list[Problem]]:
    """Convert and flag in one streaming pass, then turn the flags into problems.

    With a ``key``, the returned frame keeps the key values in a column named :data:`_K`.
    """
    frame = _flagged(raw, typed, checks, key).collect(engine="streaming")
    return frame.drop(_flags(checks)), _flag_summary(frame, raw, checks, file, key)


def _stage_checks(
    raw: pl.LazyFrame,
    typed: dict[str, pl.Expr],
    checks: Sequence[_Check],
    file: str,
    staging: Path,
    key: Sequence[str],
) -> tuple[pl.LazyFrame, list[Problem]]:
    """As :func:`_run_checks`, the typed rows and flags streamed to ``staging`` (Parquet).

    Returns a scan of the staged typed rows (with a ``key``, its values in :data:`_K`): no more
    than a streaming batch is held. The file has row-group statistics, which range reads of
    ``customer_id`` use.
    """
    _flagged(raw, typed, checks, key).sink_parquet(staging, compression="lz4")
    frame = pl.scan_parquet(staging)
    return frame.drop(_flags(checks)), _flag_summary(frame, raw, checks, file, key)


def _stage_order_checks(
    raw: pl.LazyFrame,
    typed: dict[str, pl.Expr],
    checks: Sequence[_Check],
    staging: Path,
    flagged: Path,
    key: Sequence[str],
) -> tuple[pl.DataFrame, pl.LazyFrame | None, pl.DataFrame, datetime | None]:
    """Convert and flag every row in one streaming pass that stages only the ``order`` events.

    The pass (one read of ``raw``, Polars' collections and sink sharing it) collects the typed
    order rows, written to ``staging`` after it, and writes the flagged rows, numbered by their
    place in the file (:data:`_ROW`), to ``flagged``; it returns what the checks of the other
    rows need: each row's hash (8 bytes a row, for the exact-duplicate check), the positive
    amounts with their row numbers (for the large-amount check, :func:`_large_amounts`), and
    the last timestamp. The orders (about a tenth of the events) are collected rather than
    sunk: the engine buffers the shared rows for a consumer that lags, and a Parquet sink of the
    orders beside the collections lagged, so the peak memory varied from run to run
    (bench/README, valueorders).

    Returns
    -------
    tuple
        The rows' hashes (one column), a scan of the flagged rows (None without checks), the
        positive amounts (``_ROW``, ``amount`` and with a ``key`` :data:`_K`) and the last
        timestamp.
    """
    rows = _flagged(raw, typed, checks, key).with_row_index(_ROW)
    flags = _flags(checks)
    keys = [_K] if key else []
    plans = [
        rows.filter(pl.col("event_type") == "order").select(*typed),
        rows.select(pl.struct(*typed).hash(seed=0).alias("hash")),
        rows.filter(pl.col("amount") > 0).select(_ROW, "amount", *keys),
        rows.select(pl.col("ts").max()),
    ]
    if flags:
        plans.append(rows.filter(pl.any_horizontal(flags)).sink_parquet(flagged, lazy=True))
    orders, hashes, amounts, last, *_ = pl.collect_all(plans, engine="streaming")
    orders.write_parquet(staging, compression="lz4")
    return hashes, pl.scan_parquet(flagged) if flags else None, amounts, last.item()


def _flags(checks: Sequence[_Check]) -> list[str]:
    return [f"{_F}{i}" for i in range(len(checks))]


def _collected(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    return frame.collect() if isinstance(frame, pl.LazyFrame) else frame


def _flag_summary(
    frame: pl.DataFrame | pl.LazyFrame,
    raw: pl.LazyFrame,
    checks: Sequence[_Check],
    file: str,
    key: Sequence[str],
) -> list[Problem]:
    """Turn the flag columns of ``frame`` into problems (counts, first rows, values shown).

    Only the flag (and key) columns are read: a staged frame is not loaded whole. Rows are
    numbered by their place in ``frame``, or by its :data:`_ROW` column (0-based) when it has
    one: a frame of some of the file's rows (:func:`_stage_order_checks`).
    """
    if not checks:
        return []
    flags = _flags(checks)
    counts = _collected(frame.select(pl.col(f).sum() for f in flags)).row(0, named=True)
    flags = [f for f in flags if counts[f]]  # the rows of the others are not looked up
    if not flags:
        return []
    row = (
        pl.col(_ROW).cast(pl.Int64) + 1
        if _ROW in frame.collect_schema()
        else pl.int_range(1, pl.len() + 1, dtype=pl.Int64)
    )
    listed = (pl.col(_K),) if key else ()
    summary = _collected(
        frame.select(
            *(pl.col(f).sum().alias(f"n{f}") for f in flags),
            *(row.filter(pl.col(f)).head(MAX_LISTED_ROWS).implode().alias(f"r{f}") for f in flags),
            *(
                k.filter(pl.col(f)).head(MAX_LISTED_ROWS).cast(pl.String).implode().alias(f"k{f}")
                for f in flags
                for k in listed
            ),
        )
    ).row(0, named=True)
    problems = []
    for check, f in zip(checks, _flags(checks), strict=True):
        count = summary.get(f"n{f}")
        if not count:
            continue
        rows = tuple(summary[f"r{f}"])
        message = check.message
        if check.show == "values":
            values = (
                frame.lazy()
                .filter(pl.col(f))
                .group_by(check.column)
                .len()
                .sort(["len", check.column], descending=[True, False])
                .head(_SHOW_VALUES)
                .collect()
                .rows()
            )
            message += ": " + ", ".join(
                f"{_show(v)} ({n:,} row{'s' if n > 1 else ''})" for v, n in values
            )
        elif check.show == "example":
            first = raw.select(check.column).slice(rows[0] - 1, 1).collect().item()
            message += f" (e.g. {_show(first)})"
        keys = tuple(summary[f"k{f}"]) if key else ()
        problems.append(
            Problem(file, check.column, message, rows, count, key=_key_label(key), keys=keys)
        )
    return problems


def _now_utc(now: datetime) -> datetime:
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def _customers_given_as_events(file: str, names: Sequence[str], noun: str) -> Problem | None:
    """Say where a customers table given as events belongs, instead of its missing columns.

    A table is taken for customers when it has a column of the customers contract that the
    events contract lacks (``signup_ts``, ``customer_type``, ``region``) and no events column
    but ``customer_id``: the sample's ``customers.parquet`` in the folder given to ``--events``.
    """
    events_only = [c.name for c in EVENT_COLUMNS if c.name != "customer_id"]
    theirs = [c.name for c in CUSTOMER_COLUMNS if c.name not in events_only and c.name in names]
    if any(name in names for name in events_only) or not set(theirs) - {"customer_id"}:
        return None
    missing = ", ".join(c.name for c in EVENT_COLUMNS if c.required and c.name not in names)
    where = (
        f"give --events the events alone and this file as --customers {file} (every file of a "
        "folder given to --events is read as events)"
        if noun == "file"
        else f"give it as --customers-table or --customers-query, not as the events {noun}"
    )
    return Problem(
        file, None, f"customers, not events (it has {', '.join(theirs)}; no {missing}): {where}"
    )


def _campaign_given_as_events(file: str, names: Sequence[str], noun: str) -> Problem | None:
    """Say where a campaign's outcomes given as events belong, instead of their missing columns.

    A table is taken for outcomes when it has every required column of the outcomes contract
    (:data:`~features.contracts.OUTCOME_COLUMNS`: ``offer``, ``control``, ``responded``,
    ``ordered``, ``revenue`` beside ``customer_id``) and lacks every required events column but
    ``customer_id`` (``ts``, ``event_type``): the sample's ``campaign.parquet`` in the folder
    given to ``--events``. Such a table could not be read as events anyway, so no events table
    is ever refused by this.
    """
    required = [c.name for c in EVENT_COLUMNS if c.required and c.name != "customer_id"]
    if any(name in names for name in required) or not set(OUTCOME_COLUMNS) <= set(names):
        return None
    theirs = ", ".join(name for name in OUTCOME_COLUMNS if name != "customer_id")
    where = (
        f"record them with guanxi campaign record --file {file}, and give --events the events "
        "alone (every file of a folder given to --events is read as events)"
        if noun == "file"
        else f"export it to a file for guanxi campaign record --file, not as the events {noun}"
    )
    return Problem(
        file,
        None,
        f"a campaign's outcomes, not events (it has {theirs}; no {', '.join(required)}): {where}",
    )


def _event_plan(
    raw: pl.LazyFrame, file: str, now: datetime, lossy: bool, key: Sequence[str], noun: str
) -> tuple[pl.LazyFrame, dict[str, pl.Expr], list[_Check], list[Problem]]:
    """Return the events frame, typed expressions, checks and file-level problems.

    A customers table (:func:`_customers_given_as_events`) or a campaign's outcomes
    (:func:`_campaign_given_as_events`) gets that one problem and no checks.
    """
    names = raw.collect_schema().names()
    other = _customers_given_as_events(file, names, noun) or _campaign_given_as_events(
        file, names, noun
    )
    raw, typed, usable, checks, problems = _prepare(raw, EVENT_COLUMNS, file, lossy)
    if other is not None:
        return raw, typed, [], [other]
    contract = {c.name for c in EVENT_COLUMNS}
    problems += [
        Problem(
            file,
            name,
            "column ignored: not in the events contract"
            + (f"; {_rename(name, near)}" if (near := name.strip().lower()) in contract else ""),
            severity="warning",
        )
        for name in raw.collect_schema()
        if name not in typed and name not in key
    ]
    checks += _event_checks(usable, _now_utc(now))
    return raw, typed, checks, problems


def _large_amounts(
    frame: pl.DataFrame | pl.LazyFrame,
    raw: pl.LazyFrame,
    file: str,
    key: Sequence[str],
    noun: str = "file",
) -> list[Problem]:
    """Warn of amounts above :data:`LARGE_AMOUNT_FACTOR` times the file's median positive amount.

    ``frame`` is the file's typed events (with the key values as :data:`_K` when ``key`` is
    set): the median and the largest positive amount are one streaming pass over ``amount``,
    filtered to the positive amounts before the median, which holds those it is given (Polars'
    streaming engine does not stream a median); the flagged rows are listed as the checks' are
    (:func:`_flag_summary`). The message says the largest
    amount rather than a raw value: finding that would read a staged CSV file again. ``noun``
    is what ``file`` names in the message ("the table's median"): file, table or query.
    """
    amount = pl.col("amount")
    median, largest = (
        frame.lazy()
        .filter(amount > 0)  # first: the median then holds the positive amounts, not the column
        .select(amount.median(), amount.max().alias("largest"))
        .collect(engine="streaming")
        .row(0)
    )
    if median is None or largest <= LARGE_AMOUNT_FACTOR * median:
        return []
    check = _Check(
        "amount",
        f"amount more than {LARGE_AMOUNT_FACTOR:,}x the {noun}'s median positive amount "
        f"({median:,.2f}; the largest is {largest:,.2f}): a unit or typing error? (rows kept)",
        amount > LARGE_AMOUNT_FACTOR * median,
    )
    flagged = frame.with_columns(check.flag.fill_null(False).alias(_flags([check])[0]))
    found = _flag_summary(flagged, raw, [check], file, key)
    return [replace(problem, severity="warning") for problem in found]


def _check_events(
    raw: pl.LazyFrame,
    file: str,
    now: datetime,
    lossy: bool,
    key: Sequence[str] = (),
    noun: str = "file",
) -> tuple[pl.DataFrame, list[Problem]]:
    raw, typed, checks, problems = _event_plan(raw, file, now, lossy, key, noun)
    frame, found = _run_checks(raw, typed, checks, file, key)
    return frame, problems + found + _large_amounts(frame, raw, file, key, noun)


def _staging_check(
    folder: Path, staged: list[Path], key: Sequence[str] = (), noun: str = "file"
) -> _Validator[pl.LazyFrame]:
    """Return a validator that stages each file's typed events in ``folder`` (one Parquet each).

    Each staged file is appended to ``staged`` once validated. With a ``key`` (a table's primary
    key), problems name rows by it and the staged rows keep its values in :data:`_K`. ``noun``
    is what a file is called in the large-amount warning (:func:`_large_amounts`).
    """
    names = itertools.count()

    def check(
        raw: pl.LazyFrame, file: str, now: datetime, lossy: bool
    ) -> tuple[pl.LazyFrame, list[Problem]]:
        raw, typed, checks, problems = _event_plan(raw, file, now, lossy, key, noun)
        staging = folder / f"part-{next(names):05d}.parquet"
        try:
            frame, found = _stage_checks(raw, typed, checks, file, staging, key)
        except pl.exceptions.ComputeError:
            staging.unlink(missing_ok=True)  # a CSV that is not UTF-8 is staged again, lossily
            raise
        staged.append(staging)
        return frame, problems + found + _large_amounts(frame, raw, file, key, noun)

    return check


@dataclass(frozen=True)
class _OrdersPart:
    """One file's part of :func:`stage_orders`: its staged orders, typed rows and last event."""

    orders: Path
    typed: pl.LazyFrame
    last: datetime | None


def _order_staging_check(
    folder: Path, parts: list[_OrdersPart], key: Sequence[str] = (), noun: str = "file"
) -> _Validator[pl.DataFrame]:
    """Return a validator that stages each file's ``order`` events in ``folder``.

    It checks every row as :func:`_staging_check`'s validator does, with the same problems, in
    one pass (:func:`_stage_order_checks`), and returns the rows' hashes (a ``hash`` column)
    for the exact-duplicate check; each file's :class:`_OrdersPart` is appended to ``parts``.
    """
    names = itertools.count()

    def check(
        raw: pl.LazyFrame, file: str, now: datetime, lossy: bool
    ) -> tuple[pl.DataFrame, list[Problem]]:
        raw, typed, checks, problems = _event_plan(raw, file, now, lossy, key, noun)
        name = next(names)
        staging, flagged = (folder / f"{kind}-{name:05d}.parquet" for kind in ("orders", "flagged"))
        try:
            hashes, rows, amounts, last = _stage_order_checks(
                raw, typed, checks, staging, flagged, key
            )
        except pl.exceptions.ComputeError:
            staging.unlink(missing_ok=True)  # a CSV that is not UTF-8 is staged again, lossily
            flagged.unlink(missing_ok=True)
            raise
        found = _flag_summary(rows, raw, checks, file, key) if rows is not None else []
        # the typed rows of the file, read again only for the rows an exact duplicate may hold
        parts.append(_OrdersPart(staging, _flagged(raw, typed, [], key), last))
        return hashes, problems + found + _large_amounts(amounts, raw, file, key, noun)

    return check


def _check_customers(
    raw: pl.LazyFrame, file: str, now: datetime, lossy: bool, key: Sequence[str] = ()
) -> tuple[pl.DataFrame, list[Problem]]:
    raw, typed, usable, checks, problems = _prepare(raw, CUSTOMER_COLUMNS, file, lossy, "customers")
    typed |= {name: pl.col(name) for name in raw.collect_schema() if name not in typed}
    checks += _customer_checks(usable, _now_utc(now))
    frame, found = _run_checks(raw, typed, checks, file, key)
    return _infer_extra_types(frame), problems + found


def _infer_extra_types(frame: pl.DataFrame) -> pl.DataFrame:
    """Give text columns outside the contract a numeric type when every value is a number."""
    known = {c.name for c in CUSTOMER_COLUMNS}
    casts = []
    for name, dtype in frame.schema.items():
        if name in known or name == _K or dtype != pl.String:
            continue
        text = pl.col(name).str.strip_chars()
        for target in (pl.Int64, pl.Float64):
            fits = frame.select((text.cast(target, strict=False).is_null() == text.is_null()).all())
            if fits.item():
                casts.append(text.cast(target).alias(name))
                break
    return frame.with_columns(casts)


def _exact_duplicates(
    frame: pl.DataFrame | pl.LazyFrame,
    hashes: np.ndarray | None = None,
    keys: Sequence[str] = (),
) -> pl.Series:
    """Flag every row that repeats an earlier row exactly (the first copy is not flagged).

    A row with a null in one of ``keys`` (a required column, empty or unreadable: an error of
    its own) is never flagged: unreadable timestamps are all null once typed, so rows differing
    only there read as copies of each other.

    Rows are hashed first and only rows whose hash repeats are compared in full. The repeated
    hashes are found by sorting a copy of the hashes, so the extra memory is about two integers
    per row (``is_duplicated``'s hash table took 1.3 GB at 18M events, this 0.4 GB). A
    ``LazyFrame`` (staged events) is read twice, by the streaming engine: for the hashes alone,
    then for the candidate rows; it is never held whole. ``hashes``, when given, are the rows'
    hashes already computed (:func:`stage_orders`' pass): ``frame`` is then read only for the
    candidate rows, and not at all when no hash repeats.
    """
    frame = frame.drop(_K, strict=False)
    if hashes is None:
        hashes = (
            frame.hash_rows(seed=0).to_numpy()
            if isinstance(frame, pl.DataFrame)
            else frame.select(pl.struct(pl.all()).hash(seed=0))
            .collect(engine="streaming")
            .to_series()
            .to_numpy()
        )
    flag = pl.Series("duplicate", np.zeros(len(hashes), dtype=bool))
    ordered = np.sort(hashes)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    del ordered
    if repeated.size == 0:
        return flag
    # a hash set of the repeated hashes: np.isin sorts a copy of every hash once there are more
    # than a few hundred (29 s and 2.8 GB more at 60M hashes with 1,000 repeated, this 0.7 s)
    candidate = pl.Series(hashes).is_in(pl.Series(np.unique(repeated)).implode())
    del hashes
    if not candidate.any():
        return flag
    positions = candidate.arg_true()
    if isinstance(frame, pl.DataFrame):
        rows = frame.filter(candidate)
    else:
        rows = _rows_at(frame, positions)
    known = [pl.col(k).is_not_null() for k in keys]
    repeats = rows.select(
        ~pl.struct(pl.all()).is_first_distinct() & pl.all_horizontal(pl.lit(True), *known)
    )
    return flag.scatter(positions.filter(repeats.to_series()), True)


def _rows_at(frame: pl.LazyFrame, positions: pl.Series) -> pl.DataFrame:
    """Return the rows of ``frame`` at ``positions`` (0-based, ascending), read by streaming."""
    return (
        frame.with_row_index(_ROW)
        .filter(pl.col(_ROW).is_in(positions.implode()))
        .collect(engine="streaming")
        .sort(_ROW)
        .drop(_ROW)
    )


def _flag_problems(
    flag: pl.Series,
    parts: Sequence[tuple[str, int]],
    column: str | None,
    message: str,
    severity: Severity,
    keys: tuple[str | None, pl.Series | None] = (None, None),
) -> list[Problem]:
    """Turn a flag over concatenated parts ``(file, height)`` into one problem per file.

    ``keys`` is the key's label and its values on the flagged rows (:func:`_keys`), for a table
    read with a key.
    """
    if not flag.any():
        return []
    starts = pl.Series([0, *(height for _, height in parts)]).cum_sum().head(len(parts))
    positions = flag.arg_true().cast(pl.Int64)
    part = starts.search_sorted(positions, side="right").cast(pl.Int64) - 1
    label, values = keys
    located = pl.DataFrame(
        {
            "part": part,
            "row": positions - starts.gather(part) + 1,
            "key": (
                values.cast(pl.String)
                if values is not None
                else pl.repeat(None, len(positions), dtype=pl.String, eager=True)
            ),
        }
    )
    grouped = located.group_by("part", maintain_order=True).agg(
        pl.len(), pl.col("row").head(MAX_LISTED_ROWS), pl.col("key").head(MAX_LISTED_ROWS)
    )
    return [
        Problem(
            parts[i][0],
            column,
            message,
            tuple(rows),
            n,
            severity,
            key=label,
            keys=tuple(k) if label else (),
        )
        for i, n, rows, k in grouped.iter_rows()
    ]


def _keys(
    frame: pl.DataFrame | pl.LazyFrame, key: Sequence[str], flag: pl.Series
) -> tuple[str | None, pl.Series | None]:
    """Return the key's label and its values on the rows ``flag`` marks; (None, None) without.

    Staged events (a ``LazyFrame``) are read for the marked rows' key values only.
    """
    if not key or not flag.any():
        return None, None
    if isinstance(frame, pl.DataFrame):
        return _key_label(key), frame[_K].filter(flag)
    return _key_label(key), _rows_at(frame.select(_K), flag.arg_true())[_K]


_REQUIRED_EVENT_COLUMNS: Final = tuple(c.name for c in EVENT_COLUMNS if c.required)
"""A row with one of these null (empty or unreadable: an error) is no exact duplicate."""


def _event_rows(
    frame: pl.DataFrame | pl.LazyFrame,
    parts: Sequence[tuple[str, int]],
    key: Sequence[str] = (),
    hashes: np.ndarray | None = None,
) -> list[Problem]:
    message = "exact duplicate of an earlier row (kept: remove it upstream if it is not a repeat)"
    duplicate = _exact_duplicates(frame, hashes, _REQUIRED_EVENT_COLUMNS)
    return _flag_problems(duplicate, parts, None, message, "warning", _keys(frame, key, duplicate))


_REQUIRED_CUSTOMER_COLUMNS: Final = tuple(c.name for c in CUSTOMER_COLUMNS if c.required)
"""A customer row with one of these null (an empty id: an error) is no exact duplicate."""


def _customer_rows(
    frame: pl.DataFrame, parts: Sequence[tuple[str, int]], key: Sequence[str] = ()
) -> tuple[pl.DataFrame, list[Problem]]:
    """Drop exact duplicate customers (a warning) and flag ids with conflicting rows (an error)."""
    duplicate = _exact_duplicates(frame, keys=_REQUIRED_CUSTOMER_COLUMNS)
    problems = _flag_problems(
        duplicate,
        parts,
        None,
        "exact duplicate of an earlier row (dropped)",
        "warning",
        _keys(frame, key, duplicate),
    )
    cid, kept = pl.col("customer_id"), ~pl.col(duplicate.name)
    conflict = (
        frame.with_columns(duplicate)
        .select(cid.is_not_null() & kept & (kept.sum().over(cid) > 1))
        .to_series()
    )
    message = "customer_id appears on several rows that differ"
    problems += _flag_problems(
        conflict, parts, "customer_id", message, "error", _keys(frame, key, conflict)
    )
    return frame.filter(~duplicate), problems


_Frame = TypeVar("_Frame", pl.DataFrame, pl.LazyFrame)
_Validator = Callable[[pl.LazyFrame, str, datetime, bool], tuple[_Frame, list[Problem]]]
Prepare = Callable[[pl.LazyFrame, str], pl.LazyFrame]
"""Turns a scanned file into the table to validate (e.g. renames mapped columns), given the
scan and the file's name; it may raise :class:`EventsValidationError`."""


def _files(path: Path) -> tuple[list[Path], list[Problem]]:
    """Return the files of ``path``: itself, or a directory's Parquet files, else its CSV files."""
    file = str(path)
    if path.is_dir():
        listed = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
        )
        for suffixes in (_PARQUET_SUFFIXES, _CSV_SUFFIXES):
            found = [p for p in listed if p.suffix.lower() in suffixes]
            if found:
                return found, []
        return [], [Problem(file, None, "the directory holds no .parquet or .csv files")]
    if not path.exists():
        return [], [Problem(file, None, "file not found")]
    if path.suffix.lower() not in (*_CSV_SUFFIXES, *_PARQUET_SUFFIXES):
        message = f"unsupported file type {path.suffix!r}: use .csv, .parquet or a directory"
        return [], [Problem(file, None, message)]
    return [path], []


def parquet_rows(path: Path | str) -> int | None:
    """Return how many rows a Parquet file or directory holds, from the files' metadata alone.

    Parameters
    ----------
    path : pathlib.Path or str
        A ``.parquet`` file or a directory of ``.parquet`` files (as :func:`load_events` reads).

    Returns
    -------
    int or None
        The rows of every file; None for a CSV file, a path that is not there or a file whose
        metadata cannot be read (validation reports those).
    """
    # a count of a scan is answered from the footer: no row is read
    return _file_rows(
        path, _PARQUET_SUFFIXES, lambda f: int(pl.scan_parquet(f).select(pl.len()).collect().item())
    )


def csv_rows(path: Path | str) -> int | None:
    """Estimate how many data rows a CSV file or a directory of CSV files holds, reading 1 MiB.

    A file of at most :data:`_SAMPLE_BYTES` is counted; a larger one is estimated as its size
    over the mean size of the rows in its first :data:`_SAMPLE_BYTES` (cut at the last line
    break; Polars reads that sample, so a quoted line break does not start a row). Counting a
    whole file (Polars' row counter maps it: RSS grows by the file's size) costs a read of it
    for a number that only chooses between two paths with the same result.

    Parameters
    ----------
    path : pathlib.Path or str
        A ``.csv`` file or a directory of ``.csv`` files (as :func:`load_events` reads).

    Returns
    -------
    int or None
        The data rows (header not counted) of every file, estimated for large ones; None for a
        Parquet file, a path that is not there or a sample Polars cannot read (validation
        reports those).
    """
    return _file_rows(path, _CSV_SUFFIXES, _csv_file_rows)


def _file_rows(
    path: Path | str, suffixes: tuple[str, ...], rows: Callable[[Path], int | None]
) -> int | None:
    """Sum ``rows`` over the files of ``path`` if all have one of ``suffixes``, else None."""
    files, problems = _files(Path(path))
    if problems or any(f.suffix.lower() not in suffixes for f in files):
        return None
    try:
        counts = [rows(f) for f in files]
    except (OSError, pl.exceptions.PolarsError):
        return None
    return None if None in counts else sum(c for c in counts if c is not None)


def _csv_file_rows(file: Path) -> int | None:
    """Count a CSV file's data rows when it is small, else estimate them from its first bytes."""
    size = file.stat().st_size
    with file.open("rb") as f:
        sample = f.read(_SAMPLE_BYTES)
    whole = len(sample) == size
    if not whole:
        sample = sample[: sample.rfind(b"\n") + 1]  # whole lines only
    rows = pl.read_csv(sample, infer_schema=False, encoding="utf8-lossy").height if sample else 0
    if whole:
        return rows
    header = sample.find(b"\n") + 1
    if not rows:
        return None
    return round(rows * (size - header) / (len(sample) - header))


def _first_line_problem(path: Path) -> Problem | None:
    with path.open("rb") as f:
        head = f.read(_HEADER_LIMIT)
    if not head:
        return Problem(str(path), None, "the file is empty (expected a header row)")
    if b"\n" not in head and path.stat().st_size > len(head):
        return Problem(
            str(path),
            None,
            f"the first line is longer than {_HEADER_LIMIT >> 20} MiB: not a CSV table "
            "(wrong file, or line breaks missing?)",
        )
    header = head.split(b"\n", 1)[0]
    separator = next((name for sep, name in _SEPARATORS if sep in header), None)
    if b"," not in header and separator is not None:
        # one problem for the file: read with commas it is one column, and every row would be
        # reported again (missing columns, "duplicates" of all-null rows)
        return Problem(
            str(path),
            None,
            f"the header has no commas but {separator}s: the file seems to use {separator}s as "
            "its separator; save it as comma-separated CSV (or Parquet)",
        )
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in header:
        return Problem(
            str(path),
            None,
            "the header is not UTF-8 text (UTF-16 or a binary file?): save the file as UTF-8",
        )
    return None


def _reader_message(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return (lines[0] if lines else type(error).__name__)[:300]


def _as_is(raw: pl.LazyFrame, file: str) -> pl.LazyFrame:
    return raw


def _check_file(
    path: Path, now: datetime, check: _Validator[_Frame], prepare: Prepare
) -> tuple[_Frame | None, list[Problem]]:
    """Read one file and check it; a file that cannot be read becomes a file-level problem."""
    file = str(path)
    if path.suffix.lower() in _PARQUET_SUFFIXES:
        try:
            return check(prepare(pl.scan_parquet(path), file), file, now, False)
        except (pl.exceptions.ComputeError, OSError) as error:
            message = f"unreadable Parquet file (truncated or corrupt?): {_reader_message(error)}"
            return None, [Problem(file, None, message)]
    problem = _first_line_problem(path)
    if problem is not None:
        return None, [problem]
    lossy = False
    while True:
        encoding: Literal["utf8", "utf8-lossy"] = "utf8-lossy" if lossy else "utf8"
        try:
            scan = pl.scan_csv(path, infer_schema=False, encoding=encoding)
            frame, problems = check(prepare(scan, file), file, now, lossy)
            short = _short_rows_problem(path, len(scan.collect_schema()))
            return frame, problems + ([short] if short is not None else [])
        except pl.exceptions.ComputeError as error:
            long = _long_rows_problem(path) if "more fields than" in str(error) else None
            if long is not None:  # Polars said it with no row
                return None, [long]
            if lossy or "utf-8" not in str(error).lower():
                return None, [Problem(file, None, f"not a readable CSV: {_reader_message(error)}")]
            lossy = True


@dataclass(frozen=True)
class LongRows:
    """The rows of a CSV file with more (or fewer) fields than its header (:func:`long_rows`).

    Parameters
    ----------
    header : int
        Fields in the header.
    rows : tuple of int
        The first such rows (1-based data rows, at most :data:`MAX_LISTED_ROWS`).
    n_rows : int
        How many there are.
    fields : int
        Fields in the first.
    """

    header: int
    rows: tuple[int, ...]
    n_rows: int
    fields: int


def long_rows(path: Path, shorter: bool = False) -> LongRows | None:
    """Find the rows of a CSV file with more fields than its header, which Polars names not.

    Polars refuses such a file with "found more fields than defined in 'Schema'" and its own
    ``truncate_ragged_lines`` as advice; a row with fewer fields it reads with nulls, unsaid.
    Python's :mod:`csv` reads the file again (quoted separators and line breaks as Polars reads
    them), a loop over rows: only once Polars has refused it, or a count of the separators of
    each line found a shorter one (:func:`_short_rows_problem`).

    Parameters
    ----------
    path : pathlib.Path
        The CSV file (a byte-order mark is skipped; bytes that are not UTF-8 are replaced).
    shorter : bool, default False
        Find the rows with fewer fields instead (but blank lines, which no reader takes as a
        row).

    Returns
    -------
    LongRows or None
        None when no row is longer (shorter) than the header, or the file cannot be read so (a
        field above the :mod:`csv` module's size limit, an unreadable file).
    """
    rows: list[int] = []
    n, fields = 0, 0
    try:
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
            reader = csv.reader(handle)
            header = len(next(reader, []))
            number = 0
            for record in reader:
                if not record:  # a blank line: Polars skips it too
                    continue
                number += 1  # 1 = the first data row
                if (0 < len(record) < header) if shorter else (len(record) > header):
                    n += 1
                    fields = fields or len(record)
                    rows += [number] if len(rows) < MAX_LISTED_ROWS else []
    except (OSError, csv.Error):
        return None
    return LongRows(header, tuple(rows), n, fields) if n else None


def _long_rows_problem(path: Path) -> Problem | None:
    """Say a CSV file's rows longer than its header (:func:`long_rows`), the first's line too."""
    return _rows_problem(
        path,
        long_rows(path),
        "more",
        "a separator inside a value that is not quoted, or values shifted? quote such values or "
        "fix the rows",
    )


def _rows_problem(
    path: Path,
    found: LongRows | None,
    which: str,
    advice: str,
    severity: Severity = "error",
) -> Problem | None:
    """Say the rows :func:`long_rows` found (``which`` fields than the header), the first's line."""
    if found is None:
        return None
    first = found.rows[0]
    return Problem(
        str(path),
        None,
        f"{which} fields than the header's {found.header} (row {first}, line {first + 1} in a "
        f"spreadsheet, has {found.fields}): {advice}",
        found.rows,
        found.n_rows,
        severity=severity,
    )


def _short_rows_problem(path: Path, header: int) -> Problem | None:
    """Warn of a CSV file's rows with fewer fields than its ``header`` (Polars reads nulls).

    One vectorised pass counts each line's commas (quotes not read, so a quoted comma or line
    break can only make a line look longer, or shorter); only when a line has fewer than the
    header does :func:`long_rows` read the file again to find the rows, if any.
    """
    try:
        lines = pl.scan_csv(
            path,
            has_header=False,
            separator="\x1f",  # never in a table: each line one value
            quote_char=None,
            infer_schema=False,
            encoding="utf8-lossy",
            truncate_ragged_lines=True,
            skip_rows=1,
            new_columns=["line"],
        )
        fewest = lines.select(pl.col("line").str.count_matches(",", literal=True).min())
        commas = fewest.collect(engine="streaming").item()
    except pl.exceptions.PolarsError:  # read already: nothing more to say of it
        return None
    if commas is None or commas >= header - 1:
        return None
    return _rows_problem(
        path,
        long_rows(path, shorter=True),
        "fewer",
        "the fields missing at the end read as empty; a line cut short, or a value broken over "
        "lines without quotes?",
        severity="warning",
    )


def _read_parts(
    path: Path | str, now: datetime, check: _Validator[_Frame], prepare: Prepare | None
) -> tuple[list[_Frame], list[tuple[str, int]], list[Problem]]:
    """Check every file of ``path``; return each file's typed rows, the parts and the problems."""
    path = Path(path)
    files, problems = _files(path)
    frames: list[_Frame] = []
    parts: list[tuple[str, int]] = []
    for file in files:
        frame, found = _check_file(file, now, check, prepare or _as_is)
        problems += found
        if frame is not None:
            frames.append(frame)
            height = (
                frame.height
                if isinstance(frame, pl.DataFrame)
                else frame.select(pl.len()).collect().item()
            )
            parts.append((str(file), height))
    if frames and sum(height for _, height in parts) == 0:
        problems.append(Problem(str(path), None, "no data rows (the file has only a header)"))
    return frames, parts, problems


def _read(
    path: Path | str, now: datetime, check: _Validator[pl.DataFrame], prepare: Prepare | None
) -> tuple[pl.DataFrame, list[tuple[str, int]], list[Problem]]:
    """Check every file of ``path``; return the typed rows, the parts read and the problems."""
    frames, parts, problems = _read_parts(path, now, check, prepare)
    frame = pl.concat(frames, how="vertical") if frames else pl.DataFrame()
    return frame, parts, problems


def _finish(frame: pl.DataFrame, problems: list[Problem]) -> Loaded:
    if any(p.severity == "error" for p in problems):
        raise EventsValidationError(problems)
    return Loaded(frame.drop(_K, strict=False), tuple(problems))


def _log(loaded: Loaded) -> pl.DataFrame:
    for warning in loaded.warnings:
        logger.warning("%s", warning)
    return loaded.frame


def validate_events(
    raw: pl.DataFrame | pl.LazyFrame,
    *,
    now: datetime,
    file: str = "<events>",
    key: Sequence[str] = (),
    noun: str = "table",
) -> Loaded:
    """Validate an events table that is in memory or scanned lazily (e.g. from a database).

    Parameters
    ----------
    raw : polars.DataFrame or polars.LazyFrame
        Events as read, with text or typed columns. A LazyFrame is collected once, by the
        streaming engine, so a source that yields batches is never held whole as read.
    now : datetime.datetime
        The current time (naive means UTC); events after it are errors.
    file : str
        Name used for the table in problems.
    key : sequence of str
        Columns that identify a row (a primary key); problems then name rows by their key
        values. Key columns outside the contract are dropped without a warning.
    noun : str
        What ``file`` is, as the large-amount warning names it ("the table's median positive
        amount"): ``"table"``, or ``"query"`` for a database query's rows.

    Returns
    -------
    Loaded
        As :func:`load_events`.

    Raises
    ------
    EventsValidationError
        With every problem found, if any is an error.
    """
    frame, problems = _check_events(raw.lazy(), file, now, False, key, noun)
    problems += _event_rows(frame, [(file, frame.height)], key)
    return _finish(frame, problems)


def load_events(path: Path | str, *, now: datetime, prepare: Prepare | None = None) -> Loaded:
    """Read an events file and validate it against the events contract.

    Parameters
    ----------
    path : pathlib.Path or str
        A ``.csv`` file, a ``.parquet`` file or a directory of ``.parquet`` (or ``.csv``) files.
    now : datetime.datetime
        The current time (naive means UTC); events after it are errors. Passed by the caller.
    prepare : callable, optional
        Applied to each file's scan before validation (see :data:`Prepare`), e.g. a column
        mapping.

    Returns
    -------
    Loaded
        The events with every contract column, in contract order and with the contract types
        (``features.contracts.event_schema()``; absent optional columns are typed nulls), rows
        in file order; and the warnings: exact duplicate rows (kept) and columns outside the
        contract (dropped).

    Raises
    ------
    EventsValidationError
        With every problem found, if any is an error.
    """
    frame, parts, problems = _read(path, now, _check_events, prepare)
    problems += _event_rows(frame, parts)
    return _finish(frame, problems)


def stage_events(
    path: Path | str, *, now: datetime, folder: Path | str, prepare: Prepare | None = None
) -> Staged:
    """Validate an events file as :func:`load_events` does, without holding the events.

    Each file is converted and checked in one streaming pass that writes the typed rows to a
    Parquet file in ``folder``; the problems are then found from those files, reading the check
    flags, and for the exact-duplicate check the row hashes (8 bytes a row) and the candidate
    rows. The problems are those :func:`load_events` reports for the same file.

    Parameters
    ----------
    path : pathlib.Path or str
        A ``.csv`` file, a ``.parquet`` file or a directory of ``.parquet`` (or ``.csv``) files.
    now : datetime.datetime
        The current time (naive means UTC); events after it are errors.
    folder : pathlib.Path or str
        An existing directory for the staged rows; it must outlive the returned frame (e.g. a
        ``tempfile.TemporaryDirectory`` around the frame's use).
    prepare : callable, optional
        Applied to each file's scan before validation (see :data:`Prepare`).

    Returns
    -------
    Staged
        A scan of the validated events (the frame :func:`load_events` returns, rows in the same
        order), their number and the warnings.

    Raises
    ------
    EventsValidationError
        With every problem found, if any is an error.
    """
    staged: list[Path] = []
    frames, parts, problems = _read_parts(path, now, _staging_check(Path(folder), staged), prepare)
    frame = pl.concat(frames, how="vertical") if frames else pl.LazyFrame()
    if parts:
        problems += _event_rows(frame, parts)
    if any(p.severity == "error" for p in problems):
        raise EventsValidationError(problems)
    return Staged(frame, sum(height for _, height in parts), tuple(problems), tuple(staged))


def stage_events_table(
    raw: pl.LazyFrame,
    *,
    now: datetime,
    folder: Path | str,
    file: str = "<events>",
    key: Sequence[str] = (),
    noun: str = "table",
) -> Staged:
    """Validate an events table as :func:`validate_events` does, staging it as :func:`stage_events`.

    The table (e.g. a database's rows sunk into a Parquet file) is converted and checked in one
    streaming pass into a Parquet file in ``folder``, and the problems are found from that file,
    as for one file of :func:`stage_events`; rows are named by ``key`` as
    :func:`validate_events` names them.

    Parameters
    ----------
    raw : polars.LazyFrame
        Events as read, with text or typed columns; never collected whole.
    now : datetime.datetime
        The current time (naive means UTC); events after it are errors.
    folder : pathlib.Path or str
        An existing directory for the staged rows; it must outlive the returned frame.
    file : str
        Name used for the table in problems.
    key : sequence of str
        Columns that identify a row (a primary key); problems then name rows by their key
        values. Key columns outside the contract are dropped without a warning.
    noun : str
        As :func:`validate_events`.

    Returns
    -------
    Staged
        A scan of the validated events (the frame :func:`validate_events` returns, rows in the
        same order), their number and the warnings: the problems :func:`validate_events` reports.

    Raises
    ------
    EventsValidationError
        With every problem found, if any is an error.
    """
    staged: list[Path] = []
    frame, problems = _staging_check(Path(folder), staged, key, noun)(raw, file, now, False)
    height = frame.select(pl.len()).collect().item()
    problems += _event_rows(frame, [(file, height)], key)
    if any(p.severity == "error" for p in problems):
        raise EventsValidationError(problems)
    return Staged(frame.drop(_K, strict=False), height, tuple(problems), tuple(staged))


def stage_orders(
    path: Path | str, *, now: datetime, folder: Path | str, prepare: Prepare | None = None
) -> StagedOrders:
    """Validate an events file as :func:`stage_events` does, staging only its ``order`` events.

    For a reader of the orders alone: each file is converted and checked in one streaming pass
    (every row, every check) that writes the typed order rows to a Parquet file in ``folder``,
    the flagged rows to another, and keeps the rows' hashes and positive amounts for the
    exact-duplicate and large-amount checks; the other events are not written. The problems
    are those :func:`load_events` reports for the same file (rows named by file and row).

    Parameters
    ----------
    path : pathlib.Path or str
        A ``.csv`` file, a ``.parquet`` file or a directory of ``.parquet`` (or ``.csv``) files.
    now : datetime.datetime
        The current time (naive means UTC); events after it are errors.
    folder : pathlib.Path or str
        An existing directory for the staged orders; it must outlive the returned frame.
    prepare : callable, optional
        Applied to each file's scan before validation (see :data:`Prepare`).

    Returns
    -------
    StagedOrders
        A scan of the validated ``order`` events (rows in file order), the number of events,
        the last event's time and the warnings.

    Raises
    ------
    EventsValidationError
        With every problem found, if any is an error.
    """
    parts: list[_OrdersPart] = []
    check = _order_staging_check(Path(folder), parts)
    hashes, heights, problems = _read_parts(path, now, check, prepare)
    return _orders_staged(hashes, heights, problems, parts)


def stage_orders_table(
    raw: pl.LazyFrame,
    *,
    now: datetime,
    folder: Path | str,
    file: str = "<events>",
    key: Sequence[str] = (),
    noun: str = "table",
) -> StagedOrders:
    """Validate an events table as :func:`validate_events` does, staging only its orders.

    As one file of :func:`stage_orders` (the table, e.g. a database's rows sunk into a Parquet
    file, read in one streaming pass), rows named by ``key`` as :func:`validate_events` names
    them.

    Parameters
    ----------
    raw : polars.LazyFrame
        Events as read, with text or typed columns; never collected whole.
    now : datetime.datetime
        The current time (naive means UTC); events after it are errors.
    folder : pathlib.Path or str
        An existing directory for the staged orders; it must outlive the returned frame.
    file : str
        Name used for the table in problems.
    key : sequence of str
        Columns that identify a row (a primary key), as :func:`validate_events`.
    noun : str
        As :func:`validate_events`.

    Returns
    -------
    StagedOrders
        As :func:`stage_orders`: the problems :func:`validate_events` reports.

    Raises
    ------
    EventsValidationError
        With every problem found, if any is an error.
    """
    parts: list[_OrdersPart] = []
    hashes, problems = _order_staging_check(Path(folder), parts, key, noun)(raw, file, now, False)
    return _orders_staged([hashes], [(file, hashes.height)], problems, parts, key)


def _orders_staged(
    hashes: list[pl.DataFrame],
    heights: list[tuple[str, int]],
    problems: list[Problem],
    parts: list[_OrdersPart],
    key: Sequence[str] = (),
) -> StagedOrders:
    """Add the exact-duplicate check over every part to the problems; return the orders."""
    if heights:
        typed = pl.concat([part.typed for part in parts], how="vertical")
        every = pl.concat(hashes, how="vertical").to_series().to_numpy()
        problems += _event_rows(typed, heights, key, every)
    if any(p.severity == "error" for p in problems):
        raise EventsValidationError(problems)
    lasts = [part.last for part in parts if part.last is not None]
    return StagedOrders(
        pl.concat([pl.scan_parquet(part.orders) for part in parts], how="vertical")
        if parts
        else pl.LazyFrame(),
        sum(height for _, height in heights),
        max(lasts, default=None),
        tuple(problems),
        tuple(part.orders for part in parts),
    )


def read_events(path: Path | str, *, now: datetime) -> pl.DataFrame:
    """Read and validate an events file; warnings go to the ``features.events`` logger.

    Parameters
    ----------
    path : pathlib.Path or str
        A ``.csv`` file, a ``.parquet`` file or a directory of ``.parquet`` (or ``.csv``) files.
    now : datetime.datetime
        The current time (naive means UTC); events after it are errors.

    Returns
    -------
    polars.DataFrame
        The validated events (see :func:`load_events`).

    Raises
    ------
    EventsValidationError
        With every problem found, if any is an error.
    """
    return _log(load_events(path, now=now))


def validate_customers(
    raw: pl.DataFrame | pl.LazyFrame,
    *,
    now: datetime,
    file: str = "<customers>",
    key: Sequence[str] = (),
) -> Loaded:
    """Validate a customers table that is in memory or scanned lazily (e.g. from a database).

    Parameters
    ----------
    raw : polars.DataFrame or polars.LazyFrame
        Customers as read, with text or typed columns (a LazyFrame is collected once, by the
        streaming engine).
    now : datetime.datetime
        The current time (naive means UTC); sign-ups after it are errors.
    file : str
        Name used for the table in problems.
    key : sequence of str
        Columns that identify a row (a primary key); problems then name rows by their key
        values.

    Returns
    -------
    Loaded
        As :func:`load_customers`.

    Raises
    ------
    EventsValidationError
        With every problem found, if any is an error.
    """
    frame, problems = _check_customers(raw.lazy(), file, now, False, key)
    frame, found = _customer_rows(frame, [(file, frame.height)], key)
    return _finish(frame, problems + found)


def load_customers(path: Path | str, *, now: datetime, prepare: Prepare | None = None) -> Loaded:
    """Read a customers file and validate it against the customers contract.

    Parameters
    ----------
    path : pathlib.Path or str
        A ``.csv`` file, a ``.parquet`` file or a directory of ``.parquet`` (or ``.csv``) files.
    now : datetime.datetime
        The current time (naive means UTC); sign-ups after it are errors.
    prepare : callable, optional
        Applied to each file's scan before validation (see :data:`Prepare`).

    Returns
    -------
    Loaded
        One row per customer: the contract columns in contract order with their types (absent
        optional ones as typed nulls), then the file's other columns (text columns whose every
        value is a number become Int64 or Float64). Exact duplicate rows are dropped with a
        warning.

    Raises
    ------
    EventsValidationError
        With every problem found, if any is an error (e.g. one id on rows that differ).
    """
    frame, parts, problems = _read(path, now, _check_customers, prepare)
    frame, found = _customer_rows(frame, parts) if parts else (frame, [])
    return _finish(frame, problems + found)


def read_customers(path: Path | str, *, now: datetime) -> pl.DataFrame:
    """Read and validate a customers file; warnings go to the ``features.events`` logger.

    Parameters
    ----------
    path : pathlib.Path or str
        A ``.csv`` file, a ``.parquet`` file or a directory of ``.parquet`` (or ``.csv``) files.
    now : datetime.datetime
        The current time (naive means UTC); sign-ups after it are errors.

    Returns
    -------
    polars.DataFrame
        The validated customers (see :func:`load_customers`).

    Raises
    ------
    EventsValidationError
        With every problem found, if any is an error.
    """
    return _log(load_customers(path, now=now))
