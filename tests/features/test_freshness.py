"""``features.freshness``: where events end, read from files' footers when they have them.

Staged events were read whole once more to find where they end; an events file given to
``guanxi score`` for the store's snapshot built from it is measured as its build measured it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from features.events import stage_events
from features.freshness import EventsEnd, file_last_day, history_through, last_event_day

DATA = Path(__file__).parents[1] / "data"
NOW = datetime(2024, 6, 1, tzinfo=UTC)


def _events(*days: int) -> pl.DataFrame:
    ts = [datetime(2024, 3, d, 23, 30, tzinfo=UTC) for d in days]
    schema = {"customer_id": pl.String, "ts": pl.Datetime("us", "UTC")}
    return pl.DataFrame({"customer_id": [f"c{d}" for d in days], "ts": ts}, schema=schema)


def test_staged_events_end_where_their_files_footers_say(tmp_path: Path) -> None:
    """The staged tiny events (last event 2024-03-07 10:00 UTC): the footers give the day the
    scan gives, without reading the column."""
    staged = stage_events(DATA / "events_tiny.csv", now=NOW, folder=tmp_path)
    assert staged.files
    assert last_event_day(staged.frame, staged.files) == date(2024, 3, 7)
    assert last_event_day(staged.frame) == date(2024, 3, 7)
    assert EventsEnd.of(staged.frame, date(2024, 3, 31), "e", staged.files) == EventsEnd(
        date(2024, 3, 7), date(2024, 3, 31), "e"
    )


def test_the_footers_of_every_row_group_and_file_are_read(tmp_path: Path) -> None:
    """Several row groups and files, the latest in neither the first nor the last."""
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    _events(1, 20, 3, 4).write_parquet(first, row_group_size=2)  # 2024-03-20 23:30 UTC: its day
    _events(5, 6).write_parquet(second, row_group_size=1)
    files = (first, second)
    assert last_event_day(pl.scan_parquet(list(files)), files) == date(2024, 3, 20)
    assert history_through(first) == date(2024, 3, 20)
    # the footers, not the rows: a scan of other rows with these files says the files' day
    assert last_event_day(_events(2), files) == date(2024, 3, 20)
    # an empty file: no event
    empty = tmp_path / "empty.parquet"
    _events().write_parquet(empty)
    assert last_event_day(pl.scan_parquet(empty), (empty,)) is None


def test_files_without_statistics_are_read_whole(tmp_path: Path) -> None:
    """A row group without statistics of ``ts``: the events are read, as before."""
    bare = tmp_path / "bare.parquet"
    _events(1, 9).write_parquet(bare, statistics=False)
    assert last_event_day(pl.scan_parquet(bare), (bare,)) == date(2024, 3, 9)
    assert last_event_day(_events(2), (bare,)) == date(2024, 3, 2)  # the events, read


def test_an_events_file_ends_where_a_build_of_it_would_say(tmp_path: Path) -> None:
    """As given, unvalidated: a CSV's text parsed as validation parses it (the tiny events' last,
    2024-03-07), a Parquet file's footers, a directory of files, a mapped column, and None for
    what cannot be read as events (a build's validation says why)."""
    assert file_last_day(DATA / "events_tiny.csv") == date(2024, 3, 7)
    folder = tmp_path / "parts"
    folder.mkdir()
    _events(1, 20).write_parquet(folder / "a.parquet")
    _events(5).write_parquet(folder / "b.parquet")
    assert file_last_day(folder / "a.parquet") == date(2024, 3, 20)
    assert file_last_day(folder) == date(2024, 3, 20)
    mapped = tmp_path / "mapped.csv"
    mapped.write_text("who,at\nc1,2024-03-02T10:00:00Z\nc2,2024-03-09 08:00\nc3,not a time\n")
    assert file_last_day(mapped, "at") == date(2024, 3, 9)
    assert file_last_day(mapped) is None  # no ts column: not events
    assert file_last_day(tmp_path / "missing.csv") is None
