"""build_snapshot per hash bucket of customer_id equals the one-piece build."""

from __future__ import annotations

import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from features.events import read_customers, read_events, stage_events
from features.snapshot import (
    EVENTS_PER_BUCKET,
    buckets_for,
    build_snapshot,
    build_snapshot_by_range,
)
from features.store import Store, sorted_ranges, split_by_customer
from pipelines.sample import generate_sample
from tests.features.conftest import AS_OF
from tests.features.test_snapshot_properties import frame, priced_row

SAMPLE_AS_OF = date(2024, 10, 31)
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def assert_same(got: pl.DataFrame, expected: pl.DataFrame) -> None:
    """Every column exactly, floats to the last bit (their sums do not depend on the order)."""
    assert_frame_equal(got, expected, check_exact=True)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bucket-sample")
    generate_sample(400, out, seed=5)
    return out


@pytest.fixture(scope="module")
def sample_100(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A quarter of :func:`sample`'s customers: for one build per customer (a cost per range)."""
    out = tmp_path_factory.mktemp("bucket-sample-100")
    generate_sample(100, out, seed=5)
    return out


@pytest.mark.parametrize("buckets", [3, 8])
def test_buckets_give_the_one_piece_snapshot(sample: Path, buckets: int) -> None:
    events = read_events(sample / "events.parquet", now=NOW)
    customers = read_customers(sample / "customers.parquet", now=NOW)
    whole = build_snapshot(events, customers, SAMPLE_AS_OF, buckets=1)
    got = build_snapshot(events, customers, SAMPLE_AS_OF, buckets=buckets)
    assert got.height == whole.height > 300
    # scores rank every customer, not the bucket's: all five of each score occur
    assert set(got["r_score"].drop_nulls()) == {1, 2, 3, 4, 5}
    assert_same(got, whole)
    # lazy inputs too, and without a customers table
    assert_same(
        build_snapshot(events.lazy(), None, SAMPLE_AS_OF, buckets=buckets),
        build_snapshot(events, None, SAMPLE_AS_OF),
    )


@pytest.mark.parametrize("buckets", [2, 5])
def test_buckets_read_from_disk_give_the_in_memory_snapshot(sample: Path, buckets: int) -> None:
    """Scanned events are split to Parquet files per bucket and each bucket read back alone."""
    events = read_events(sample / "events.parquet", now=NOW)
    customers = read_customers(sample / "customers.parquet", now=NOW)
    whole = build_snapshot(events, customers, SAMPLE_AS_OF)
    seen: list[tuple[int, int]] = []
    got = build_snapshot(
        pl.scan_parquet(sample / "events.parquet"),
        customers.lazy(),
        SAMPLE_AS_OF,
        buckets=buckets,
        on_bucket=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(b, buckets) for b in range(1, buckets + 1)]
    assert got.height == whole.height > 300
    assert_same(got, whole)
    # the in-memory split reports its buckets too
    seen.clear()
    build_snapshot(
        events, customers, SAMPLE_AS_OF, buckets=buckets, on_bucket=lambda *p: seen.append(p)
    )
    assert seen == [(b, buckets) for b in range(1, buckets + 1)]


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(priced_row, max_size=30), buckets=st.integers(2, 8))
def test_any_events_any_buckets(rows: list[dict[str, object]], buckets: int) -> None:
    events = frame(rows)
    whole = build_snapshot(events, None, AS_OF)
    assert_same(build_snapshot(events, None, AS_OF, buckets=buckets), whole)
    # lazy events go through Parquet files per bucket (some buckets get none, or all do)
    assert_same(build_snapshot(events.lazy(), None, AS_OF, buckets=buckets), whole)


def test_bucket_count_checked_and_sized_by_events() -> None:
    with pytest.raises(ValueError, match="buckets must be positive"):
        build_snapshot(frame([]), None, AS_OF, buckets=0)
    assert [buckets_for(n) for n in (0, 1, EVENTS_PER_BUCKET, EVENTS_PER_BUCKET + 1)] == [
        1,
        1,
        1,
        2,
    ]
    assert buckets_for(60_600_000) == 8


@pytest.mark.parametrize(
    ("per_range", "customers_in_sample"), [(1, 100), (3_000, 400), (10**9, 400)]
)
def test_ranges_give_the_one_piece_snapshot(
    request: pytest.FixtureRequest, tmp_path: Path, per_range: int, customers_in_sample: int
) -> None:
    """Events split once by customer_id range (as features build does with staged events) build
    the one-piece snapshot, with and without a customers table; events in customer_id order (the
    sample's) write no files: each range is a filter of the scan.

    One event per range makes a range of every customer with events, each built apart (the cost
    is per range): that case takes the 100-customer sample, the same generator's, so it builds
    about 80 ranges three times instead of about 320."""
    sample: Path = request.getfixturevalue("sample_100" if customers_in_sample == 100 else "sample")
    events = read_events(sample / "events.parquet", now=NOW)
    customers = read_customers(sample / "customers.parquet", now=NOW)
    whole = build_snapshot(events, customers, SAMPLE_AS_OF)
    scan = pl.scan_parquet(sample / "events.parquet")
    ranges = split_by_customer(scan, SAMPLE_AS_OF, per_range, tmp_path)
    assert (len(ranges) == 1) == (per_range == 10**9)
    assert not any(tmp_path.iterdir())
    seen: list[tuple[int, int]] = []
    got = build_snapshot_by_range(
        ranges, customers.lazy(), SAMPLE_AS_OF, on_bucket=lambda *p: seen.append(p)
    )
    if len(ranges) > 1:
        assert seen == [(r, len(ranges)) for r in range(1, len(ranges) + 1)]
    if per_range == 1:  # a range per customer with events
        assert (
            len(ranges)
            == events.filter(pl.col("ts").dt.date() <= SAMPLE_AS_OF)["customer_id"].n_unique()
        )
    assert got.height == whole.height > 0.75 * customers_in_sample
    assert set(got["r_score"].drop_nulls()) == {1, 2, 3, 4, 5}  # ranked over everyone
    assert_same(got, whole)
    assert_same(
        build_snapshot_by_range(ranges, None, SAMPLE_AS_OF),
        build_snapshot(events, None, SAMPLE_AS_OF),
    )
    # the training categories, given, are used as given
    cats = ["zeta", "apparel"]
    assert_same(
        build_snapshot_by_range(ranges, None, SAMPLE_AS_OF, categories=cats),
        build_snapshot(events, None, SAMPLE_AS_OF, categories=cats),
    )
    with pytest.raises(ValueError, match="split for"):
        build_snapshot_by_range(ranges, None, date(2024, 9, 30))


@settings(max_examples=30, deadline=None)
@given(rows=st.lists(priced_row, max_size=30), per_range=st.integers(1, 12), in_order=st.booleans())
def test_any_events_any_ranges(
    rows: list[dict[str, object]], per_range: int, in_order: bool
) -> None:
    """Events split by customer_id range, as filters of the events when they are in customer_id
    order and as files otherwise, build the one-piece snapshot and write the same history."""
    events = frame(rows)
    if in_order:
        events = events.sort("customer_id", maintain_order=True)  # ties keep their order
    with tempfile.TemporaryDirectory() as folder:
        ranges = split_by_customer(events.lazy(), AS_OF, per_range, Path(folder))
        assert_same(
            build_snapshot_by_range(ranges, None, AS_OF), build_snapshot(events, None, AS_OF)
        )
        store = Store(Path(folder) / "home")
        from_ranges = pl.read_parquet(store.write_history(ranges, AS_OF))
        assert_frame_equal(
            from_ranges, pl.read_parquet(store.write_history(events, AS_OF)), check_exact=True
        )


def test_sorted_scan_builds_by_range_without_writing(
    sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scanned events in customer_id order are built a range at a time from the scan itself
    (no bucket files); the same events out of order still go through the hash split."""
    import features.snapshot as snapshot_module

    events = read_events(sample / "events.parquet", now=NOW)
    customers = read_customers(sample / "customers.parquet", now=NOW)
    whole = build_snapshot(events, customers, SAMPLE_AS_OF)
    ordered = tmp_path / "ordered.parquet"
    events.sort("customer_id", "ts").write_parquet(ordered, row_group_size=500)
    shuffled = tmp_path / "shuffled.parquet"
    events.sample(fraction=1.0, shuffle=True, seed=3).write_parquet(shuffled)
    spilled: list[int] = []
    spill = snapshot_module.spill_partitions

    def counted(*args: object, **kwargs: object) -> list[pl.LazyFrame]:
        spilled.append(1)
        return spill(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(snapshot_module, "spill_partitions", counted)
    seen: list[tuple[int, int]] = []
    got = build_snapshot(
        pl.scan_parquet(ordered),
        customers.lazy(),
        SAMPLE_AS_OF,
        buckets=4,
        on_bucket=lambda *p: seen.append(p),
    )
    assert spilled == [] and seen == [(b, 4) for b in range(1, 5)]
    assert_same(got, whole)
    assert_same(
        build_snapshot(pl.scan_parquet(shuffled), customers, SAMPLE_AS_OF, buckets=4), whole
    )
    assert spilled == [1]


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(priced_row, max_size=30), parts=st.integers(1, 8))
def test_sorted_ranges_select_each_row_once(rows: list[dict[str, object]], parts: int) -> None:
    """Rows in customer_id order are cut into ``parts`` ranges, in order, that select every row
    once and never split a customer; rows out of order get no ranges."""
    events = frame(rows).sort("customer_id")
    ranges = sorted_ranges(events.lazy(), parts)
    assert ranges is not None and len(ranges) == parts
    picked = [events.filter(r)["customer_id"] for r in ranges]
    assert pl.concat(picked).to_list() == events["customer_id"].to_list()
    ids = events["customer_id"].unique()
    assert sum(p.n_unique() for p in picked) == ids.len()  # no customer in two ranges
    if ids.len() > 1:
        assert sorted_ranges(events.sort("customer_id", descending=True).lazy(), parts) is None
    if not events.is_empty():
        # the whole build by range equals the one-piece build
        assert_same(
            build_snapshot(events.lazy(), None, AS_OF, buckets=max(parts, 2)),
            build_snapshot(events, None, AS_OF),
        )


def test_the_same_events_give_the_same_snapshot_bit_for_bit(sample: Path, tmp_path: Path) -> None:
    """Built twice, from events in other chunks and order, scanned, and staged and split by
    range as ``features build`` does with large events: every float equal to the last bit."""
    events = read_events(sample / "events.parquet", now=NOW)
    customers = read_customers(sample / "customers.parquet", now=NOW)
    first = build_snapshot(events, customers, SAMPLE_AS_OF)
    assert_same(build_snapshot(events, customers, SAMPLE_AS_OF), first)
    shuffled = events.sample(fraction=1.0, shuffle=True, seed=7)
    chunked = pl.concat([shuffled.slice(i, 997) for i in range(0, shuffled.height, 997)])
    assert chunked.n_chunks() > 10
    assert_same(build_snapshot(chunked, customers, SAMPLE_AS_OF), first)
    assert_same(
        build_snapshot(pl.scan_parquet(sample / "events.parquet"), customers, SAMPLE_AS_OF), first
    )
    staging = tmp_path / "staged"
    staging.mkdir()
    staged = stage_events(sample / "events.parquet", now=NOW, folder=staging)
    ranges = split_by_customer(staged.frame, SAMPLE_AS_OF, 3_000, tmp_path, files=staged.files)
    assert len(ranges) > 3
    assert_same(build_snapshot_by_range(ranges, customers, SAMPLE_AS_OF), first)
