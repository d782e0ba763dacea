"""``guanxi features build`` and ``guanxi features export``."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import polars as pl
import pytest
import typer
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from features.contracts import event_schema
from features.snapshot import build_snapshot, build_snapshot_by_range
from features.store import CustomerRanges, Store, is_temporary
from pipelines import connectors, snapshot
from pipelines.sample import generate_sample
from serving.settings import get_settings
from tests.features.test_events import bad_corpus

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
EVENTS, CUSTOMERS = DATA / "events_tiny.csv", DATA / "customers_tiny.csv"
GUANXI = ROOT / ".venv" / "bin" / "guanxi"
DAY = date(2024, 3, 8)  # the day after the tiny events' last: weeks after, a build is refused


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    monkeypatch.setenv("GUANXI_HOME", str(home))
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


def invoke(*args: str) -> tuple[int, str]:
    app = typer.Typer()
    app.command("build")(snapshot.build_command)
    app.command("export")(snapshot.export_command)
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})
    return result.exit_code, result.output


def build(*extra: str) -> tuple[int, str]:
    return invoke("build", "--events", str(EVENTS), "--as-of", DAY.isoformat(), *extra)


def test_build_stores_the_snapshot(home: Path) -> None:
    code, output = build("--customers", str(CUSTOMERS))
    assert code == 0, output
    store = Store(home)
    assert store.list_snapshots() == [DAY]
    frame = store.read_snapshot(DAY)
    assert frame["customer_id"].to_list() == ["c1", "c2", "c3"]
    assert "loyalty_tier" in frame.columns
    assert f"snapshot as of 2024-03-08: 3 customers, {frame.width} columns" in output
    assert "1/1 buckets" in output
    assert str(store.snapshot_path(DAY)) in output.replace("\n", "")
    info = store.snapshot_info(DAY)
    assert info.events is not None
    assert info.events.path == str(EVENTS)
    assert info.customers is not None
    # the history the reviewer pages read: every event up to the day, sorted by customer
    history = pl.read_parquet(store.history_path(DAY))
    assert history["customer_id"].is_sorted()
    assert history["ts"].dt.date().max() <= DAY
    c1 = store.read_history(DAY, "c1")
    assert c1 is not None and c1.height > 0 and set(c1["customer_id"]) == {"c1"}


def test_build_passes_validated_frames(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def fake(
        events: pl.DataFrame, customers: pl.DataFrame | None, as_of: date, **options: object
    ) -> pl.DataFrame:
        seen.update(schema=events.schema, customers=customers, as_of=as_of)
        seen["buckets"] = options["buckets"]
        return pl.DataFrame({"customer_id": ["c1"], "as_of": [as_of]})

    monkeypatch.setattr(snapshot, "build_snapshot", fake)
    code, output = build()
    assert code == 0, output
    assert seen == {
        "schema": pl.Schema(event_schema()),
        "customers": None,
        "as_of": DAY,
        "buckets": 1,  # buckets_for: a few events make one bucket
    }
    assert Store(home).read_snapshot().height == 1


def test_build_in_buckets_stores_the_same_snapshot(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the events over several buckets the stored snapshot is the one-bucket one."""
    code, output = build("--customers", str(CUSTOMERS))
    assert code == 0, output
    whole = Store(home).read_snapshot(DAY)
    monkeypatch.setattr(snapshot, "buckets_for", lambda n_events: 3)
    code, output = build("--customers", str(CUSTOMERS))
    assert code == 0, output
    assert "3/3 buckets" in output  # the progress bar per bucket ends on the last one
    assert_frame_equal(Store(home).read_snapshot(DAY), whole, check_exact=True)


@pytest.mark.parametrize("buckets", [1, 3])
def test_parquet_events_are_staged_and_build_the_in_memory_result(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, buckets: int
) -> None:
    """Parquet events are validated and built from staged files, not held in memory, split once
    by customer_id range for the snapshot and the history: the stored snapshot and history and
    the problems printed are those of the in-memory path."""
    parts = tmp_path / "events"
    parts.mkdir()
    rows = pl.read_csv(EVENTS, infer_schema=False)
    rows.with_columns(note=pl.lit("x")).write_parquet(parts / "part-0.parquet")  # ignored column
    rows.tail(3).write_parquet(parts / "part-1.parquet")  # exact duplicates: a warning
    monkeypatch.setenv("GUANXI_FEATURES_IN_MEMORY_EVENTS", "0")  # staged however few
    get_settings.cache_clear()
    monkeypatch.setattr(snapshot, "buckets_for", lambda n_events: buckets)
    built_from: list[object] = []
    histories: list[object] = []

    def spy(events: pl.DataFrame, *args: object, **options: object) -> object:
        built_from.append(type(events))
        return build_snapshot(events, *args, **options)  # type: ignore[arg-type]

    def spy_ranges(ranges: CustomerRanges, *args: object, **options: object) -> object:
        built_from.append((CustomerRanges, len(ranges)))
        return build_snapshot_by_range(ranges, *args, **options)  # type: ignore[arg-type]

    write_history = Store.write_history

    def spy_history(self: Store, events: object, as_of: date) -> Path:
        histories.append(type(events))
        return write_history(self, events, as_of)  # type: ignore[arg-type]

    monkeypatch.setattr(snapshot, "build_snapshot", spy)
    monkeypatch.setattr(snapshot, "build_snapshot_by_range", spy_ranges)
    monkeypatch.setattr(Store, "write_history", spy_history)
    args = ("build", "--events", str(parts), "--customers", str(CUSTOMERS), "--as-of", "2024-03-08")
    code, staged_output = invoke(*args)
    assert code == 0, staged_output
    store = Store(home)
    staged = store.read_snapshot(DAY), pl.read_parquet(store.history_path(DAY))
    monkeypatch.setattr(connectors.Inputs, "stage", lambda self, now, folder: self.load(now))
    code, output = invoke(*args)
    assert code == 0, output
    # the staged events are split once, for both: at most as many ranges as buckets (a
    # customer's events are never split), several when there are several buckets
    assert built_from[1:] == [pl.DataFrame]
    assert built_from[0] in [(CustomerRanges, n) for n in range(min(buckets, 2), buckets + 1)]
    assert histories == [CustomerRanges, pl.DataFrame]
    assert_frame_equal(staged[0], store.read_snapshot(DAY), check_exact=True)
    assert_frame_equal(staged[1], pl.read_parquet(store.history_path(DAY)), check_exact=True)
    assert staged[1].height == rows.height + 3  # every event is on or before the day
    # the same output, but for the progress bar's count: ranges there, hash buckets here
    ranges = built_from[0][1]
    assert f"{ranges}/{ranges} buckets" in staged_output
    assert f"{buckets}/{buckets} buckets" in output
    count = re.compile(r"\d+/\d+ buckets")
    assert count.sub("", staged_output) == count.sub("", output)
    assert "column ignored: not in the events contract" in output
    assert "exact duplicate of an earlier row" in output


def test_few_parquet_events_are_built_in_memory(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, input_paths: list[str]
) -> None:
    """Parquet events of at most GUANXI_FEATURES_IN_MEMORY_EVENTS rows (the files' metadata)
    are validated and built in memory, more are staged: the same snapshot and history."""
    parts = tmp_path / "events"
    parts.mkdir()
    rows = pl.read_csv(EVENTS, infer_schema=False)
    rows.write_parquet(parts / "part-0.parquet")
    rows.head(2).write_parquet(parts / "part-1.parquet")
    total = rows.height + 2
    args = ("build", "--events", str(parts), "--customers", str(CUSTOMERS), "--as-of", "2024-03-08")
    stored = []
    for threshold, path in [
        (None, "in memory"),  # the default, 8M
        (total, "in memory"),
        (total - 1, "staged"),
        (0, "staged"),
    ]:
        if threshold is not None:
            monkeypatch.setenv("GUANXI_FEATURES_IN_MEMORY_EVENTS", str(threshold))
        get_settings.cache_clear()
        input_paths.clear()
        code, output = invoke(*args)
        assert code == 0, output
        assert input_paths == [path], threshold
        store = Store(home)
        stored.append((store.read_snapshot(DAY), pl.read_parquet(store.history_path(DAY))))
    for snapshot_frame, history in stored[1:]:
        assert_frame_equal(snapshot_frame, stored[0][0], check_exact=True)
        assert_frame_equal(history, stored[0][1], check_exact=True)
    assert stored[0][1].height == total


@pytest.mark.parametrize("order", ["in order", "out of order"])
def test_staged_events_in_customer_order_are_written_once(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, order: str
) -> None:
    """Staged events in customer_id order are read a range at a time from the staged files
    themselves (their row-group statistics skip the other ranges), not written again by range;
    events whose staged files' statistics show them out of order are written by range. Neither
    runs a pass over the rows to find their order (the statistics tell). The stored snapshot
    and history are the in-memory ones either way."""
    import features.store as store_module

    sample = tmp_path / "sample"
    generate_sample(120, sample, seed=7, start=date(2024, 1, 1), end=DAY)
    rows = pl.read_parquet(sample / "events.parquet")
    middle = rows["customer_id"].unique().sort()[60]
    low, high = (
        rows.filter(pl.col("customer_id") < middle),
        rows.filter(pl.col("customer_id") >= middle),
    )
    parts = tmp_path / "events"
    parts.mkdir()
    first, second = (low, high) if order == "in order" else (high, low)
    first.write_parquet(parts / "part-0.parquet")  # files are read in name order
    second.write_parquet(parts / "part-1.parquet")
    monkeypatch.setenv("GUANXI_FEATURES_IN_MEMORY_EVENTS", "0")  # staged however few
    get_settings.cache_clear()
    monkeypatch.setattr(snapshot, "buckets_for", lambda n_events: 3)
    calls: list[str] = []
    spill, spans = store_module.spill_partitions, store_module._customer_spans

    def spy_spill(*args: object, **options: object) -> object:
        calls.append("spill")
        return spill(*args, **options)  # type: ignore[arg-type]

    def spy_spans(*args: object, **options: object) -> object:
        calls.append("order pass")
        return spans(*args, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(store_module, "spill_partitions", spy_spill)
    monkeypatch.setattr(store_module, "_customer_spans", spy_spans)
    customers = sample / "customers.parquet"
    args = ("build", "--events", str(parts), "--customers", str(customers), "--as-of", str(DAY))
    code, staged_output = invoke(*args)
    assert code == 0, staged_output
    assert "3/3 buckets" in staged_output  # three ranges
    assert calls == ([] if order == "in order" else ["spill"])
    store = Store(home)
    staged = store.read_snapshot(DAY), pl.read_parquet(store.history_path(DAY))
    monkeypatch.setattr(connectors.Inputs, "stage", lambda self, now, folder: self.load(now))
    code, output = invoke(*args)
    assert code == 0, output
    assert_frame_equal(staged[0], store.read_snapshot(DAY), check_exact=True)
    assert_frame_equal(staged[1], pl.read_parquet(store.history_path(DAY)), check_exact=True)
    assert staged[1].height == rows.height


def _threshold(monkeypatch: pytest.MonkeyPatch, rows: int) -> None:
    monkeypatch.setenv("GUANXI_FEATURES_IN_MEMORY_EVENTS", str(rows))
    get_settings.cache_clear()


@pytest.mark.parametrize("layout", ["file", "directory"])
def test_csv_events_are_staged_and_build_the_in_memory_result(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str, input_paths: list[str]
) -> None:
    """CSV events of more than GUANXI_FEATURES_IN_MEMORY_EVENTS rows (a small file counted) are
    validated in a streaming pass into staged files and built by customer range; at most that
    many are built in memory: the same snapshot, history and problems printed either way."""
    rows = pl.read_csv(EVENTS, infer_schema=False).with_columns(note=pl.lit("x"))  # ignored
    if layout == "file":
        events = tmp_path / "events.csv"
        pl.concat([rows, rows.tail(3)]).write_csv(events)  # exact duplicates: a warning
    else:
        events = tmp_path / "events"
        events.mkdir()
        rows.write_csv(events / "part-0.csv")
        rows.tail(3).write_csv(events / "part-1.csv")
    total = rows.height + 3
    args = ("build", "--events", str(events), "--customers", str(CUSTOMERS), "--as-of", str(DAY))
    stored, outputs = [], []
    for threshold in (total, total - 1, 0):
        _threshold(monkeypatch, threshold)
        code, output = invoke(*args)
        assert code == 0, output
        store = Store(home)
        stored.append((store.read_snapshot(DAY), pl.read_parquet(store.history_path(DAY))))
        outputs.append(output)
    assert input_paths == ["in memory", "staged", "staged"]
    for snapshot_frame, history in stored[1:]:
        assert_frame_equal(snapshot_frame, stored[0][0], check_exact=True)
        assert_frame_equal(history, stored[0][1], check_exact=True)
    assert stored[0][1].height == total
    count = re.compile(r"\d+/\d+ buckets")
    assert count.sub("", outputs[1]) == count.sub("", outputs[0])
    assert "column ignored: not in the events contract" in outputs[1]
    assert "exact duplicate of an earlier row" in outputs[1]


def test_a_late_bad_value_of_a_staged_csv_is_reported_and_nothing_written(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, input_paths: list[str]
) -> None:
    """A bad value near the end of a staged CSV is reported with the file, its row (1-based
    data rows, as in memory) and the column, as the in-memory path reports it; nothing is
    stored."""
    rows = pl.read_csv(EVENTS, infer_schema=False)
    copies = pl.concat(
        rows.with_columns(customer_id=pl.col("customer_id") + f"-{i}") for i in range(2_000)
    )
    late = copies.height - 2  # 1-based data row; line late + 1 of the file
    copies = copies.with_columns(
        amount=pl.when(pl.int_range(1, pl.len() + 1) == late)
        .then(pl.lit("12,5"))
        .otherwise(pl.col("amount"))
    )
    events = tmp_path / "events.csv"
    copies.write_csv(events)
    args = ("build", "--events", str(events), "--as-of", "2024-03-08")
    outputs = []
    for threshold in (0, copies.height):
        _threshold(monkeypatch, threshold)
        code, output = invoke(*args)
        assert code == 1
        outputs.append(output)
    assert input_paths == ["staged", "in memory"]
    assert outputs[0] == outputs[1]
    # the table's row: file, column, row, problem
    cells = [cell.strip() for cell in outputs[0].split("│")]
    at = cells.index(str(events))
    assert cells[at : at + 4] == [
        str(events),
        "amount",
        str(late),
        "unreadable value: not a number (e.g. '12,5')",
    ]
    assert "nothing was written" in outputs[0]
    assert not home.exists()


def test_staged_csv_with_another_separator_is_hinted_once(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, input_paths: list[str]
) -> None:
    """A semicolon-separated CSV gives the one hint whichever path reads it."""
    text = EVENTS.read_text(encoding="utf-8").replace(",", ";")
    events = tmp_path / "semi.csv"
    events.write_text(text, encoding="utf-8")
    outputs = []
    for threshold in (0, 1_000):
        _threshold(monkeypatch, threshold)
        code, output = invoke("build", "--events", str(events), "--as-of", "2024-03-08")
        assert code == 1
        outputs.append(output)
    assert input_paths == ["staged", "in memory"]
    assert outputs[0] == outputs[1]
    assert outputs[0].count("seems to use semicolons as its separator") == 1
    assert outputs[0].split()[:2] == ["1", "error"]
    assert not home.exists()


def test_invalid_input_writes_nothing(home: Path, tmp_path: Path) -> None:
    code, output = invoke("build", "--events", str(bad_corpus(tmp_path)), "--as-of", "2024-03-08")
    assert code == 1
    assert "16 errors" in output
    assert "nothing was written" in output
    assert not home.exists()


def test_future_as_of_is_refused(home: Path) -> None:
    code, output = invoke("build", "--events", str(EVENTS), "--as-of", "2999-01-01")
    assert code == 1
    assert "is in the future" in output
    assert not home.exists()


@pytest.mark.parametrize("stage", ["1000000000", "0"])  # in memory, then staged
def test_an_as_of_before_every_event_writes_nothing(
    home: Path, monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    # a year typed wrong wrote an empty snapshot ("0 customers, 64 columns") and exit 0
    monkeypatch.setenv("GUANXI_FEATURES_IN_MEMORY_EVENTS", stage)
    get_settings.cache_clear()
    first = pl.read_csv(EVENTS)["ts"].str.slice(0, 10).min()
    code, output = invoke("build", "--events", str(EVENTS), "--as-of", "2001-01-01")
    assert code == 1, output
    text = " ".join(output.split())
    assert f"no customer has an event on or before 2001-01-01 (the first event is on {first})" in (
        text
    )
    assert "nothing written" in text and "--as-of" in text
    assert not Store(home).list_snapshots()


def test_bad_date_is_a_usage_error(home: Path) -> None:
    code, output = invoke("build", "--events", str(EVENTS), "--as-of", "31/03/2024")
    assert code == 2
    assert "--as-of" in output


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export(home: Path, tmp_path: Path, suffix: str) -> None:
    assert build()[0] == 0
    out = tmp_path / "out" / f"snapshot{suffix}"
    code, output = invoke("export", "--as-of", DAY.isoformat(), "--out", str(out))
    assert code == 0, output
    assert "wrote 3 rows" in output
    stored = Store(home).read_snapshot(DAY)
    csv = suffix == ".csv"
    exported = pl.read_csv(out, schema=stored.schema) if csv else pl.read_parquet(out)
    assert exported.equals(stored)
    assert [p.name for p in out.parent.iterdir() if is_temporary(p)] == []


def test_export_missing_day_lists_the_available_ones(home: Path, tmp_path: Path) -> None:
    assert build()[0] == 0
    code, output = invoke("export", "--as-of", "2024-01-01", "--out", str(tmp_path / "x.csv"))
    assert code == 1
    assert "no snapshot for 2024-01-01" in output
    assert "available: 2024-03-08" in output
    assert not (tmp_path / "x.csv").exists()


def test_export_needs_a_known_suffix(home: Path, tmp_path: Path) -> None:
    code, output = invoke("export", "--as-of", "2024-03-08", "--out", str(tmp_path / "x.xlsx"))
    assert code == 2
    assert ".csv or .parquet" in output


def test_export_to_a_directory_is_a_usage_error(home: Path, tmp_path: Path) -> None:
    """It was an IsADirectoryError traceback at the rename, after reading the snapshot."""
    (tmp_path / "x.csv").mkdir()
    code, output = invoke("export", "--as-of", "2024-03-08", "--out", str(tmp_path / "x.csv"))
    assert code == 2
    assert "x.csv is a directory" in " ".join(output.split())


@pytest.mark.slow
def test_real_process_build_then_export(tmp_path: Path) -> None:
    env = {**os.environ, "GUANXI_HOME": str(tmp_path / "home")}
    out = tmp_path / "export.parquet"
    for args in (
        ["build", "--events", str(EVENTS), "--customers", str(CUSTOMERS), "--as-of", "2024-03-08"],
        ["export", "--as-of", "2024-03-08", "--out", str(out)],
    ):
        result = subprocess.run(
            [str(GUANXI), "features", *args], capture_output=True, text=True, env=env, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
    assert pl.read_parquet(out).equals(Store(tmp_path / "home").read_snapshot(DAY))
