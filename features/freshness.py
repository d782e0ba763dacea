"""Events that end before the day they are read for: one rule for every command (qa43 H1).

A feed with no orders on weekends or holidays ends on its last working day: exported on a
Monday morning it ends on the Friday, 3 days before a Monday ``--as-of``, and a holiday adds
days. Read as of the day, the days after the last event read as no activity: recency longer,
counts short, churn labels positive, P(alive) lower. Events that end at most
:data:`STALE_EVENTS_DAYS` days before the day are taken, with a warning from
:data:`SHORT_EVENTS_DAYS` days short (a day short is an export of the morning of the day, said
nothing); further back they are an extract not refreshed, and refused before anything is
written. ``guanxi train`` (:func:`training.train.check_events_end`, which also bounds the share
of the held-out horizon), ``guanxi drift`` (:func:`pipelines.drift.stale_events`), ``guanxi
cycle``'s snapshot step, ``guanxi features build``, ``guanxi score`` and ``guanxi value`` all
measure the events with :class:`EventsEnd` and say it with its sentences: the events (and the
file they came from, when the command has one), their last day and the day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Final

import polars as pl
import pyarrow.parquet as pq

from features.contracts import counted
from features.events import _CSV_SUFFIXES, _files, _parse_ts

__all__ = [
    "BEYOND_A_WEEK",
    "SHORT_EVENTS_DAYS",
    "STALE_EVENTS_DAYS",
    "WEEK_TAKEN",
    "EventsEnd",
    "StaleEventsError",
    "file_last_day",
    "history_through",
    "last_event_day",
]

STALE_EVENTS_DAYS: Final = 7
"""Most days the events may end before the day they are read for and still be read (warned).

A feed with no orders on weekends or holidays ends on its last working day: exported on a Monday
morning it ends on the Friday, 3 days before a Monday ``--as-of`` (2 before a Sunday month end),
and a holiday adds days. With one day allowed, such an export was refused every Monday and a
weekly ``guanxi cycle`` skipped its retraining each time. A week covers weekends and holidays;
events that end further back are an extract not refreshed, and are refused."""

SHORT_EVENTS_DAYS: Final = 2
"""Fewest days short that are said: a day short is an export of the morning of the day."""

BEYOND_A_WEEK: Final = f"more than the {STALE_EVENTS_DAYS:,} taken for a weekend or holidays"
"""Why events :attr:`EventsEnd.stale` are refused, as every refusal says it."""

WEEK_TAKEN: Final = f"a weekend or holidays are taken: up to {counted(STALE_EVENTS_DAYS, 'days')}"
"""What events :attr:`EventsEnd.short` but not stale are taken for, as every warning says it."""


class StaleEventsError(ValueError):
    """Events end more than :data:`STALE_EVENTS_DAYS` days before the day: nothing is written."""


def last_event_day(events: pl.DataFrame | pl.LazyFrame, files: Sequence[Path] = ()) -> date | None:
    """Return the day (UTC) of the last event, read from every event.

    Parameters
    ----------
    events : polars.DataFrame or polars.LazyFrame
        Validated events (a scan of staged ones is read for its ``ts`` column alone).
    files : sequence of pathlib.Path, default ()
        The Parquet files ``events`` scans, when it is a scan of them (staged events,
        :attr:`features.events.Staged.files`; a stored history): the last event is read from
        their row groups' statistics of ``ts``, their footers alone, and from ``events`` only
        when a row group has none (:func:`_footers_last`).

    Returns
    -------
    datetime.date or None
        The last event's day; None when there is no event.
    """
    if files and (known := _footers_last(files)) is not None:
        last: object = known[0]
    else:
        last = events.lazy().select(pl.col("ts").max()).collect().item()
    if not isinstance(last, datetime):
        return None
    return last.astimezone(UTC).date() if last.tzinfo is not None else last.date()


def file_last_day(location: Path, column: str = "ts") -> date | None:
    """Return the day (UTC) of the last event of an events file (or directory), as given.

    What a build's check measures of the same file once validated (:func:`last_event_day`),
    read without validating it: ``guanxi score`` reading the day's stored snapshot built from
    the file checks the file so, not the history stored with the snapshot (which ends at the
    day: a gap before ``--as-of`` with events after it read as events ending in the gap). A
    Parquet file's timestamps are read from its footers (:func:`_footers_last`); text (CSV, or
    a text column) is parsed as validation parses it, and unparseable text is left out.

    Parameters
    ----------
    location : pathlib.Path
        A ``.csv`` or ``.parquet`` file, or a directory of them (as ``--events`` takes).
    column : str, default "ts"
        The file's column of the event's time (another name under a column mapping).

    Returns
    -------
    datetime.date or None
        The last event's day; None when there is no event, or the file cannot be read as events
        (validation, when a build reads it, says why).
    """
    files, problems = _files(location)
    if problems or not files:
        return None
    latest: datetime | None = None
    for file in files:
        try:
            if file.suffix.lower() in _CSV_SUFFIXES:
                scan = pl.scan_csv(file, infer_schema=False, encoding="utf8-lossy")
            else:
                known = _footers_last((file,), column)
                if known is not None:
                    latest = _later(latest, known[0])
                    continue
                scan = pl.scan_parquet(file)
            ts = pl.col(column)
            if scan.collect_schema().get(column) == pl.String:
                ts = _parse_ts(ts)
            last = scan.select(ts.max()).collect().item()
        except (pl.exceptions.PolarsError, OSError):
            return None
        if isinstance(last, datetime):
            latest = _later(latest, last)
    if latest is None:
        return None
    return latest.astimezone(UTC).date() if latest.tzinfo is not None else latest.date()


def _later(latest: datetime | None, other: datetime | None) -> datetime | None:
    """Return the later of two times, a naive one taken as UTC; None when neither is known."""
    if other is None:
        return latest
    other = other.astimezone(UTC) if other.tzinfo is not None else other.replace(tzinfo=UTC)
    return other if latest is None else max(latest, other)


def _footers_last(files: Sequence[Path], column: str = "ts") -> tuple[datetime | None] | None:
    """Read the latest ``column`` of Parquet files from their row groups' statistics (footers).

    Reading the whole column once more to find where staged events end cost a pass over them:
    their files are written with statistics, whose maximum of an INT64 timestamp is exact.
    Returns ``(None,)`` for files without a row; None, to read the events instead, when a file
    lacks the column or a row group with rows lacks its statistics (or they are not of a
    timestamp).
    """
    latest: datetime | None = None
    for file in files:
        meta = pq.read_metadata(file)
        names = [meta.schema.column(i).path for i in range(meta.num_columns)]
        if column not in names:
            return None
        at = names.index(column)
        for group in range(meta.num_row_groups):
            chunk = meta.row_group(group).column(at)
            if meta.row_group(group).num_rows == 0:
                continue
            stats = chunk.statistics
            if stats is None or not stats.has_min_max:
                return None
            try:
                top = stats.max
            except (ValueError, TypeError):  # not convertible to a datetime: read the events
                return None
            if not isinstance(top, datetime):
                return None
            top = top.astimezone(UTC) if top.tzinfo is not None else top.replace(tzinfo=UTC)
            latest = top if latest is None else max(latest, top)
    return (latest,)


def history_through(path: Path) -> date | None:
    """Return the day of the last event a stored history holds, reading its ``ts`` column alone.

    A snapshot day's history (:meth:`features.store.Store.history_path`) holds no event after the
    day: one that ends before the day holds events that end there. ``guanxi drift`` reads it so
    for a report on the store's events.

    Parameters
    ----------
    path : pathlib.Path
        A stored history (Parquet), which exists.

    Returns
    -------
    datetime.date or None
        :func:`last_event_day` of its events; None when it holds none.
    """
    return last_event_day(pl.scan_parquet(path), (path,))


@dataclass(frozen=True)
class EventsEnd:
    """Where events end, the day they are read for, and what that makes of them.

    Parameters
    ----------
    through : datetime.date
        The last event's day (UTC), of every event (those after ``day`` too).
    day : datetime.date
        The day they are read for (``--as-of``).
    source : str, optional
        The file (or table) they came from, named in the sentences; None leaves it out.
    """

    through: date
    day: date
    source: str | None = None

    @classmethod
    def of(
        cls,
        events: pl.DataFrame | pl.LazyFrame,
        day: date,
        source: object = None,
        files: Sequence[Path] = (),
    ) -> EventsEnd | None:
        """Measure validated events (:func:`last_event_day`) against ``day``.

        Parameters
        ----------
        events : polars.DataFrame or polars.LazyFrame
            Validated events, every one.
        day : datetime.date
            The day they are read for.
        source : object, optional
            The file they came from (a path or a label), named in the sentences.
        files : sequence of pathlib.Path, default ()
            The Parquet files ``events`` scans, if any: read from their footers
            (:func:`last_event_day`).

        Returns
        -------
        EventsEnd or None
            None when there is no event (the command's own refusal says so).
        """
        through = last_event_day(events, files)
        if through is None:
            return None
        return cls(through, day, None if source is None else str(source))

    @property
    def behind(self) -> int:
        """Days from the last event's day to :attr:`day` (0 or below: they reach it)."""
        return (self.day - self.through).days

    @property
    def stale(self) -> bool:
        """Whether they end more than :data:`STALE_EVENTS_DAYS` days before the day: refused."""
        return self.behind > STALE_EVENTS_DAYS

    @property
    def short(self) -> bool:
        """Whether they end :data:`SHORT_EVENTS_DAYS` days or more before the day: said."""
        return self.behind >= SHORT_EVENTS_DAYS

    def ended(self) -> str:
        """Say where they end: "the events (F) end on T, N days before --as-of D".

        Returns
        -------
        str
            The sentence every refusal and warning of events short starts with.
        """
        named = f" ({self.source})" if self.source is not None else ""
        return (
            f"the events{named} end on {self.through}, {counted(self.behind, 'days')} before "
            f"--as-of {self.day}"
        )

    def refusal(self, then: str) -> str:
        """Say why they are refused, then what reading them would do and what to pass.

        Parameters
        ----------
        then : str
            What the command would make of them, after a colon; the refusal ends with the
            events to pass and the ``--as-of`` of their last day.

        Returns
        -------
        str
            :meth:`ended`, :data:`BEYOND_A_WEEK` (when :attr:`stale`), ``then`` and the two
            ways out.
        """
        bound = f" ({BEYOND_A_WEEK})" if self.stale else ""
        return (
            f"{self.ended()}{bound}: {then}; pass the events up to {self.day}, or --as-of "
            f"{self.through}"
        )

    def warning(self, then: str, also: str = "") -> str:
        """Say they end a few days before the day and what the days after read as.

        Parameters
        ----------
        then : str
            What the days without events make of what is read, after a colon.
        also : str, default ""
            A further bound, after :data:`WEEK_TAKEN` in its parentheses (``guanxi train``'s
            share of the horizon).

        Returns
        -------
        str
            :meth:`ended`, ``then``, :data:`WEEK_TAKEN` and the ``--as-of`` to pass if the export
            is early.
        """
        return (
            f"{self.ended()}: {then} ({WEEK_TAKEN}{also}); if the export is early, pass --as-of "
            f"{self.through}"
        )

    def check(self, refused: str, warned: str) -> str | None:
        """Refuse them when :attr:`stale`; else give the warning when :attr:`short`.

        Parameters
        ----------
        refused : str
            What reading them would do (:meth:`refusal`'s ``then``).
        warned : str
            What the days without events make of what is read (:meth:`warning`'s ``then``).

        Returns
        -------
        str or None
            The warning for events :data:`SHORT_EVENTS_DAYS` to :data:`STALE_EVENTS_DAYS` days
            short; None when they end a day before the day or later.

        Raises
        ------
        StaleEventsError
            If they end more than :data:`STALE_EVENTS_DAYS` days before the day.
        """
        if self.stale:
            raise StaleEventsError(self.refusal(refused))
        return self.warning(warned) if self.short else None
