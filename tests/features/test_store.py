"""The embedded store: snapshots under GUANXI_HOME and atomic writes (features/store.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.contracts import FEATURE_SET_VERSION
from features.store import (
    MANIFEST_SUFFIX,
    METADATA_KEY,
    CampaignInfo,
    PlanInfo,
    SnapshotNotFoundError,
    Store,
    TamperedTableError,
    atomic_write,
    is_temporary,
    manifest_path,
    split_by_customer,
)

ROOT = Path(__file__).resolve().parents[2]
DAY1, DAY2, DAY3 = date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31)


def snapshot(n: int, value: float = 1.0) -> pl.DataFrame:
    return pl.DataFrame(
        {"customer_id": [f"c{i}" for i in range(n)], "recency_days": [value] * n}
    ).with_columns(as_of=pl.lit(DAY1))


def temporaries(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if is_temporary(p)] if directory.exists() else []


def test_round_trip_list_and_latest(tmp_path: Path) -> None:
    store = Store(tmp_path / "home")
    assert store.list_snapshots() == []
    assert store.latest_as_of() is None
    store.write_snapshot(snapshot(3), DAY2)
    store.write_snapshot(snapshot(2), DAY1)
    assert store.list_snapshots() == [DAY1, DAY2]
    assert store.latest_as_of() == DAY2
    assert store.read_snapshot().equals(snapshot(3))
    assert store.read_snapshot(DAY1).equals(snapshot(2))
    assert store.snapshot_path(DAY1) == tmp_path / "home/snapshots/as_of=2024-01-31.parquet"
    assert temporaries(store.snapshot_dir) == []


def test_rewriting_a_day_replaces_it(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.write_snapshot(snapshot(3), DAY1)
    store.write_snapshot(snapshot(5, 2.0), DAY1)
    assert store.list_snapshots() == [DAY1]
    assert store.read_snapshot(DAY1).equals(snapshot(5, 2.0))


def test_metadata_travels_in_the_parquet_file(tmp_path: Path) -> None:
    events = tmp_path / "events.csv"
    events.write_text("customer_id,ts,event_type\n")
    store = Store(tmp_path / "home")
    written = store.write_snapshot(snapshot(4), DAY1, events=events)
    info = store.snapshot_info(DAY1)
    assert info == written
    assert (info.rows, info.feature_set_version, info.as_of) == (4, FEATURE_SET_VERSION, DAY1)
    assert info.events is not None
    assert (info.events.path, info.events.size) == (str(events.resolve()), events.stat().st_size)
    assert info.customers is None
    raw = json.loads(pl.read_parquet_metadata(info.path)[METADATA_KEY])
    assert raw["as_of"] == "2024-01-31"
    assert not list(store.snapshot_dir.glob("*.json"))


def test_a_source_recorded_with_a_field_this_code_does_not_know_reads_as_not_recorded(
    tmp_path: Path,
) -> None:
    """review52 L2: SourceFile(**data) failed on a key it did not know (an older guanxi on this
    one's ``mapping``); a later guanxi's field now reads the source as not recorded, so a
    command given inputs builds the snapshot again instead of failing or reading it."""
    from features.store import SnapshotInfo

    events = tmp_path / "events.csv"
    events.write_text("customer_id,ts,event_type\n")
    info = Store(tmp_path / "home").write_snapshot(snapshot(2), DAY1, events=events)
    data = json.loads(info.to_json())
    # review54 L3: a source read without a mapping is written as before it was recorded, so an
    # older guanxi (its server too) still reads the snapshot
    assert set(data["events"]) == {"path", "size", "modified"} and "unreadable" not in data
    assert SnapshotInfo.from_json(json.dumps(data), info.path).events == info.events
    data["events"]["read_with"] = "a later option"
    read = SnapshotInfo.from_json(json.dumps(data), info.path)
    assert read.events is None and read.unreadable == ("events",)
    assert SnapshotInfo.from_json(info.to_json(), info.path).unreadable == ()
    assert info.events is not None
    mapped = replace(info, events=replace(info.events, mapping="abc"))
    assert json.loads(mapped.to_json())["events"]["mapping"] == "abc"


def test_missing_snapshot_lists_the_available_days(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with pytest.raises(SnapshotNotFoundError, match=r"no snapshot in .*\(available: none\)"):
        store.read_snapshot()
    store.write_snapshot(snapshot(1), DAY1)
    store.write_snapshot(snapshot(1), DAY3)
    with pytest.raises(SnapshotNotFoundError, match=r"for 2024-02-29 .*2024-01-31, 2024-03-31"):
        store.read_snapshot(DAY2)


def test_exception_mid_write_keeps_the_previous_snapshot(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.write_snapshot(snapshot(3), DAY1)
    before = store.snapshot_path(DAY1).read_bytes()

    def half_then_fail(path: Path) -> None:
        path.write_bytes(before[: len(before) // 2])
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(store.snapshot_path(DAY1), half_then_fail)
    assert store.snapshot_path(DAY1).read_bytes() == before
    assert store.list_snapshots() == [DAY1]
    assert sorted(p.name for p in store.snapshot_dir.iterdir()) == ["as_of=2024-01-31.parquet"]


def test_exception_in_the_parquet_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(tmp_path)
    store.write_snapshot(snapshot(3), DAY1)

    def fail(self: pl.DataFrame, path: Path, **_: object) -> None:
        Path(path).write_bytes(b"PAR1 partial")
        raise OSError("no space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", fail)
    with pytest.raises(OSError, match="no space"):
        store.write_snapshot(snapshot(9), DAY2)
    assert store.list_snapshots() == [DAY1]
    assert temporaries(store.snapshot_dir) == []
    assert store.read_snapshot().equals(snapshot(3))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporaries_are_removed_by_the_next_write(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.write_snapshot(snapshot(1), DAY1)
    stale = store.snapshot_dir / f".as_of=2024-02-29.parquet.{_dead_pid()}.0badcafe.tmp"
    live = store.snapshot_dir / f".as_of=2024-03-31.parquet.{os.getppid()}.0badcafe.tmp"
    stale.write_bytes(b"partial")
    live.write_bytes(b"another writer at work")
    assert store.list_snapshots() == [DAY1]
    store.write_snapshot(snapshot(1), DAY3)
    assert not stale.exists()
    assert live.exists()
    assert store.list_snapshots() == [DAY1, DAY3]


def test_atomic_write_creates_directories_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "scores.csv"
    atomic_write(target, lambda p: p.write_text("one"))
    atomic_write(target, lambda p: p.write_text("two"))
    assert target.read_text() == "two"
    assert temporaries(target.parent) == []


# --- a real process killed while writing -------------------------------------------------------

_SLOW_WRITER = textwrap.dedent(
    """
    import sys, time
    from datetime import date
    from pathlib import Path
    import polars as pl, pyarrow.parquet as pq
    from features.store import Store

    def slow_write_parquet(self, path, **kwargs):
        # A writer that is still writing when it dies: first row group on disk, then more.
        table = self.to_arrow()
        with pq.ParquetWriter(path, table.schema) as writer:
            writer.write_table(table)
            print("WRITING", flush=True)
            while True:
                writer.write_table(table)
                time.sleep(0.01)

    pl.DataFrame.write_parquet = slow_write_parquet
    frame = pl.DataFrame({"customer_id": [f"c{i}" for i in range(50_000)], "x": 1.0})
    Store(Path(sys.argv[1])).write_snapshot(frame, date(2024, 2, 29))
    """
)


def _child(script: str, home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", script, str(home)], stdout=subprocess.PIPE, text=True, env=env
    )


def test_sigkill_while_writing_leaves_the_previous_state(tmp_path: Path) -> None:
    store = Store(tmp_path / "home")
    store.write_snapshot(snapshot(7), DAY1)
    proc = _child(_SLOW_WRITER, store.home)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "WRITING"
    [partial] = temporaries(store.snapshot_dir)
    assert partial.stat().st_size > 0
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert store.list_snapshots() == [DAY1]
    assert store.latest_as_of() == DAY1
    assert store.read_snapshot().equals(snapshot(7))
    store.write_snapshot(snapshot(2), DAY3)  # the next write removes the dead writer's file
    assert temporaries(store.snapshot_dir) == []
    assert store.list_snapshots() == [DAY1, DAY3]


_BIG_WRITER = textwrap.dedent(
    """
    import sys
    from datetime import date
    from pathlib import Path
    import numpy as np, polars as pl
    from features.store import Store

    n = 4_000_000
    rng = np.random.default_rng(0)
    frame = pl.DataFrame({f"f{i}": rng.random(n) for i in range(6)})
    print("READY", flush=True)
    Store(Path(sys.argv[1])).write_snapshot(frame, date(2024, 2, 29))
    """
)


@pytest.mark.slow
def test_sigkill_during_a_real_large_write(tmp_path: Path) -> None:
    """Kill Polars' own writer once it has written bytes; whatever the moment, no half state."""
    store = Store(tmp_path / "home")
    store.write_snapshot(snapshot(7), DAY1)
    proc = _child(_BIG_WRITER, store.home)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "READY"

    def writing() -> bool:
        try:
            return any(p.stat().st_size > 0 for p in temporaries(store.snapshot_dir))
        except FileNotFoundError:  # renamed in between: the write is complete
            return False

    while proc.poll() is None and not writing():
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    days = store.list_snapshots()
    assert days in ([DAY1], [DAY1, DAY2])
    assert store.read_snapshot(DAY1).equals(snapshot(7))
    if days == [DAY1, DAY2]:  # the write finished before the kill: it is complete
        assert store.read_snapshot(DAY2).height == 4_000_000
    else:  # killed mid-write: the partial file is hidden from readers
        assert store.latest_as_of() == DAY1
        assert temporaries(store.snapshot_dir)


def test_value_tables_round_trip_with_their_metadata(tmp_path: Path) -> None:
    store = Store(tmp_path)
    assert store.list_values() == [] and store.value_info(DAY1) is None
    assert store.read_values(DAY1) is None
    frame = pl.DataFrame({"customer_id": ["a", "b"], "clv": [10.0, -1.5]})
    fit = {"basis": "margin", "bgnbd": {"r": 0.5, "log_likelihood": -12.5}}
    check = {"cutoff": "2023-12-31", "forecasts": {"bgnbd": {"mae": 0.4}}}
    written = store.write_values(
        frame,
        DAY2,
        horizon_days=365,
        discount_rate=0.1,
        basis="margin",
        fit=fit,
        churn_model={"name": "churn", "version": "3", "horizon_days": 90},
        validation=check,
        run_id="abc123",
    )
    store.write_values(frame, DAY1, horizon_days=90, discount_rate=0.0, basis="revenue", fit={})
    assert store.list_values() == [DAY1, DAY2]
    info = store.value_info(DAY2)
    assert info == written
    assert info.path == tmp_path / "values" / "as_of=2024-02-29.parquet"
    assert (info.rows, info.horizon_days, info.discount_rate) == (2, 365, 0.1)
    assert info.fit == fit and info.validation == check and info.churn_model["version"] == "3"
    assert info.version == "2024-02-29/abc123"
    assert store.value_info(DAY1).version == "2024-01-31/unlogged"
    stored = store.read_values(DAY2)
    assert stored is not None and stored.equals(frame)
    assert json.loads(pl.read_parquet_metadata(info.path)[METADATA_KEY])["run_id"] == "abc123"


def test_history_written_in_chunks_is_sorted_and_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Gathered and written a few rows at a time, the history is every event up to the day."""
    from datetime import UTC, datetime, timedelta

    from features import store as store_module
    from features.contracts import event_schema

    monkeypatch.setattr(store_module, "_HISTORY_CHUNK", 4)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    events = (
        pl.DataFrame(
            {
                "customer_id": [f"c{(7 * i) % 5}" for i in range(23)],
                "ts": [start + timedelta(days=(11 * i) % 17) for i in range(23)],
                "event_type": ["visit"] * 23,
            }
        )
        .with_columns(
            pl.lit(None, dtype).alias(name)
            for name, dtype in event_schema().items()
            if name not in ("customer_id", "ts", "event_type")
        )
        .select(list(event_schema()))
    )
    day = date(2024, 1, 12)
    store = Store(tmp_path)
    written = pl.read_parquet(store.write_history(events, day))
    expected = events.filter(pl.col("ts").dt.date() <= day).sort("customer_id", "ts")
    assert written.schema == expected.schema
    assert written.height == expected.height == 17
    assert written.select("customer_id", "ts").equals(expected.select("customer_id", "ts"))
    c3 = store.read_history(day, "c3")
    assert c3 is not None and c3["ts"].is_sorted() and set(c3["customer_id"]) == {"c3"}
    # no events up to the day: an empty history, still readable
    early = pl.read_parquet(store.write_history(events, date(2023, 12, 31)))
    assert early.height == 0 and early.schema == expected.schema


@pytest.mark.parametrize("per_range", [1, 4, 10, 1000])
def test_history_of_a_lazyframe_is_the_one_of_the_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, per_range: int
) -> None:
    """Written by ranges of customer_id from a scan, the history has the same rows in the same
    order (ties on customer and time in the events' order) as written from the frame."""
    from datetime import UTC, datetime, timedelta

    from features import store as store_module
    from features.contracts import event_schema

    monkeypatch.setattr(store_module, "_HISTORY_CHUNK", 3)
    monkeypatch.setattr(store_module, "HISTORY_RANGE", per_range)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    events = (
        pl.DataFrame(
            {
                "customer_id": [f"c{(7 * i) % 5}" for i in range(40)],
                "ts": [start + timedelta(days=(3 * i) % 7) for i in range(40)],  # ties
                "event_type": ["visit"] * 40,
                "amount": [float(i) for i in range(40)],  # tells tied rows apart
            },
            schema_overrides={"ts": event_schema()["ts"]},
        )
        .with_columns(
            pl.lit(None, dtype).alias(name)
            for name, dtype in event_schema().items()
            if name not in ("customer_id", "ts", "event_type", "amount")
        )
        .select(list(event_schema()))
    )
    scanned = tmp_path / "events.parquet"
    events.write_parquet(scanned)
    day = date(2024, 1, 5)
    store = Store(tmp_path / "home")
    from_frame = pl.read_parquet(store.write_history(events, day))
    from_scan = pl.read_parquet(store.write_history(pl.scan_parquet(scanned), day))
    assert from_frame.height == events.filter(pl.col("ts").dt.date() <= day).height > 0
    assert_frame_equal(from_scan, from_frame, check_exact=True)
    assert from_scan.select("customer_id", "ts").equals(
        from_scan.select("customer_id", "ts").sort("customer_id", "ts")
    )
    c3 = store.read_history(day, "c3")
    assert c3 is not None and set(c3["customer_id"]) == {"c3"}
    early = pl.read_parquet(store.write_history(pl.scan_parquet(scanned), date(2023, 12, 31)))
    assert early.height == 0 and early.schema == from_frame.schema
    # split once by customer_id range (features build splits for the snapshot and the history)
    (tmp_path / "ranges").mkdir()
    ranges = split_by_customer(pl.scan_parquet(scanned), day, per_range, tmp_path / "ranges")
    customers = from_frame["customer_id"].n_unique()
    assert len(ranges) == {1: customers, 1000: 1}.get(per_range, len(ranges))
    assert_frame_equal(
        pl.read_parquet(store.write_history(ranges, day)), from_frame, check_exact=True
    )
    keys = [
        part.select(ranges.key().unique()).collect().to_series().to_list() for part in ranges.parts
    ]
    assert keys == [[r] for r in range(len(ranges))]  # each part holds its range's customers only
    with pytest.raises(ValueError, match="split for 2024-01-05, not for 2024-01-06"):
        store.write_history(ranges, date(2024, 1, 6))
    with pytest.raises(ValueError, match="per_range must be positive"):
        split_by_customer(pl.scan_parquet(scanned), day, 0, tmp_path)
    early_ranges = split_by_customer(pl.scan_parquet(scanned), date(2023, 12, 31), 1, tmp_path)
    early = pl.read_parquet(store.write_history(early_ranges, date(2023, 12, 31)))
    assert early.height == 0 and early.schema == from_frame.schema


def test_range_key_counts_the_starts_at_or_below_each_customer() -> None:
    """The range of a customer_id is how many range starts are <= it (the starts included), in
    the streaming engine as in memory."""
    from features.store import _range_key

    starts = pl.Series(["c10", "c3", "c7"]).sort()  # string order: c10 < c3 < c7
    ids = ["a", "c1", "c10", "c100", "c2", "c3", "c30", "c7", "c8", "z"]
    frame = pl.DataFrame({"customer_id": ids})
    expected = [sum(i >= s for s in starts) for i in ids]
    assert expected == [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]
    got = frame.select(_range_key(starts)).to_series()
    assert got.dtype == pl.UInt32 and got.to_list() == expected
    streamed = frame.lazy().select(_range_key(starts)).collect(engine="streaming")
    assert streamed.to_series().to_list() == expected


def test_parquet_statistics_show_row_groups_in_customer_order(tmp_path: Path) -> None:
    """Row groups, files one after the other, are in order when each one's smallest customer_id
    is at least the previous one's largest (whatever the order within a row group); a row group
    starting below the previous one's largest, or without statistics, is not."""
    from features.store import parquet_ranges_in_order

    ids = pl.DataFrame({"customer_id": [f"c{i:02d}" for i in range(20)], "x": range(20)})
    ordered, reversed_, unknown = (tmp_path / f"{n}.parquet" for n in ("o", "r", "u"))
    ids.write_parquet(ordered, row_group_size=5)
    ids.reverse().write_parquet(reversed_, row_group_size=5)
    ids.write_parquet(unknown, row_group_size=5, statistics=False)
    assert parquet_ranges_in_order([ordered])
    assert not parquet_ranges_in_order([reversed_])
    assert not parquet_ranges_in_order([unknown])
    assert not parquet_ranges_in_order([ordered, ordered])  # the second file starts below
    assert not parquet_ranges_in_order([ordered], column="missing")
    # rows out of order within each row group, the row groups' ranges in order
    mixed = tmp_path / "m.parquet"
    pl.concat([ids[:10].reverse(), ids[10:].reverse()]).write_parquet(mixed, row_group_size=10)
    assert parquet_ranges_in_order([mixed])


def _plan_info(expected_value: float) -> PlanInfo:
    return PlanInfo(
        as_of=DAY1,
        rows=0,
        budget=3.0,
        investment=1.0,
        expected_value=expected_value,
        gap=0.0,
        method="exact",
        reason=None,
        offers={},
        summaries={"by_segment": [{"segment": "at_risk", "customers": 1}]},
        uplift=None,
        created="2024-01-31T00:00:00+00:00",
        path=Path(),
    )


def test_the_manifest_beside_a_signed_table_is_named_by_manifest_path(tmp_path: Path) -> None:
    """plan27: serving.values rebuilt the path of a table's manifest, which features.store kept
    private; features.store.manifest_path names it for both."""
    keyed, plain = Store(tmp_path / "home", b"k" * 32), Store(tmp_path / "other")
    rows = pl.DataFrame({"customer_id": ["c1"], "offer": ["retention_email"]})
    keyed.write_plan(rows, _plan_info(1.0))
    path = keyed.plan_path(DAY1)
    assert manifest_path(path) == path.with_name(path.name + MANIFEST_SUFFIX)
    assert json.loads(manifest_path(path).read_text())["file"] == path.name
    plain.write_plan(rows, _plan_info(1.0))  # without a key: no manifest
    assert not manifest_path(plain.plan_path(DAY1)).exists()


def test_a_plan_is_read_with_its_metadata_from_one_checked_read(tmp_path: Path) -> None:
    """plan27: a plan's metadata was read apart from its checked rows (Store.plan_info), so a
    file whose metadata alone changed could be read with the rows of the signed write. Now
    read_plan_with_info parses both from the same checked bytes."""
    keyed, plain = Store(tmp_path / "home", b"k" * 32), Store(tmp_path / "home")
    rows = pl.DataFrame({"customer_id": ["c1"], "offer": ["retention_email"]})
    kept = keyed.write_plan(rows, _plan_info(1.0))
    read = keyed.read_plan_with_info(DAY1)
    assert read is not None
    assert_frame_equal(read[0], rows)
    assert read[1] == kept
    plain.write_plan(rows, _plan_info(12345.0))  # its metadata alone changed, unsigned
    with pytest.raises(TamperedTableError, match="does not match its signed manifest"):
        keyed.read_plan_with_info(DAY1)
    read = plain.read_plan_with_info(DAY1)  # without a key: read as it is
    assert read is not None and read[1].expected_value == 12345.0
    assert keyed.read_plan_with_info(DAY2) is None


def test_a_campaign_keeps_the_plan_it_was_drawn_from_and_one_kept_before_still_loads(
    tmp_path: Path,
) -> None:
    """heavy36: a recorded campaign did not say which plan it was drawn from; it keeps the
    plan's day (None when not known), and one recorded before the field loads with None."""
    store = Store(tmp_path)
    frame = pl.DataFrame({"customer_id": ["C1"], "offer": ["ret"]})
    drawn = store.write_campaign(frame, "october", "october.csv", DAY2, plan=DAY1)
    unknown = store.write_campaign(frame, "may", "may.csv", DAY2)
    assert (drawn.plan, unknown.plan) == (DAY1, None)
    assert store.list_campaigns() == [unknown, drawn]  # by name, the day read back as a day
    assert json.loads(drawn.to_json())["plan"] == DAY1.isoformat()
    before = json.loads(drawn.to_json())
    del before["plan"]  # the metadata of a campaign recorded before the field
    assert CampaignInfo.from_json(json.dumps(before), drawn.path) == replace(drawn, plan=None)
