"""Checks of a command's day shared by the commands, kept apart from their heavy imports.

``guanxi value``, ``target``, ``campaign`` and ``cycle`` imported :func:`after_today` from
:mod:`pipelines.drift`, so ``guanxi value`` loaded the whole drift report (MLflow's client, the
serving views) to compare two dates. This module imports Polars, the standard library and
:mod:`serving.days` (which imports the standard library only): the refusal of a day to come,
of a day before the first event, and the first day of a stored history.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import polars as pl

from serving.days import in_the_future

__all__ = ["after_today", "history_start", "no_event_by"]


def after_today(day: date, today: date | None = None) -> str | None:
    """Say that an ``--as-of`` is after today (UTC): no event of it is in yet.

    ``guanxi cycle``, ``drift``, ``value``, ``target`` and ``campaign`` refuse such a day in
    these words, as ``guanxi features build`` refuses it; each wrote the sentence apart, and said
    it differently. ``POST /v1/score`` refuses an ``as_of`` to come in the same words
    (:func:`serving.days.in_the_future`), without repeating the day.

    Parameters
    ----------
    day : datetime.date
        The ``--as-of`` given.
    today : datetime.date, optional
        Today; default: today's date in UTC.

    Returns
    -------
    str or None
        ``--as-of <day> is in the future (today is <today> UTC): its events are not in yet;
        give <today> or an earlier day``, or None when ``day`` is today or before.
    """
    future = in_the_future(day, today)
    return None if future is None else f"--as-of {day} {future}"


def history_start(path: Path) -> datetime | None:
    """Return when a stored history (the events a snapshot was built from) starts.

    ``guanxi cycle`` (an increment given as the events) and ``guanxi drift`` (partial
    ``--events``) both compare the events given with it; each read it apart.

    Parameters
    ----------
    path : pathlib.Path
        The history file (:meth:`features.store.Store.history_path`).

    Returns
    -------
    datetime.datetime or None
        The first event's ``ts``; None when the file is missing or holds no event.
    """
    if not path.is_file():
        return None
    first = pl.scan_parquet(path).select(pl.col("ts").min()).collect().item()
    return first if isinstance(first, datetime) else None


def no_event_by(events: pl.DataFrame | pl.LazyFrame, day: date) -> str:
    """Say why the snapshot of a day holds no customer: no event on or before it (pure).

    ``guanxi features build`` refuses such a day in these words; ``guanxi cycle`` and
    ``guanxi drift`` kept the empty snapshot and went on, and ``guanxi value`` said BG/NBD's
    "no customer has a repeat purchase".

    Parameters
    ----------
    events : polars.DataFrame or polars.LazyFrame
        The events the snapshot was built from (``ts``).
    day : datetime.date
        The snapshot's day.

    Returns
    -------
    str
        ``no customer has an event on or before <day> (the first event is on <first>)``, or
        ``(there are no events)``.
    """
    first = events.lazy().select(pl.col("ts").min()).collect().item()
    since = (
        f"the first event is on {first:%Y-%m-%d}"
        if isinstance(first, date)
        else "there are no events"
    )
    return f"no customer has an event on or before {day} ({since})"
