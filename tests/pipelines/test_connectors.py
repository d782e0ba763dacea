"""The CLI with databases as source and sink: a real PostgreSQL server and a DuckDB file.

The round trip is the README's: ``data validate`` -> ``features build`` -> ``train`` -> ``score``
with ``--events <uri> --events-table events`` and ``--out <uri> --out-table guanxi_scores``, and
the results equal those from the same rows as Parquet files.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

import features.database
from features.database import DatabaseError, Relation, mask, scan, write_table
from features.events import read_customers, read_events
from features.snapshot import build_snapshot
from features.store import Store, snapshot_digest
from pipelines import connectors, score
from pipelines.cli import _register, app
from serving.settings import get_settings
from tests.conftest import PG_SAMPLE_END
from tests.features.test_sources import keyed_duckdb

AS_OF = PG_SAMPLE_END.isoformat()


@pytest.fixture(autouse=True)
def count_without_a_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """A database's count waits here as long as the machine takes (no wall-time deadline).

    The commands give up counting after COUNT_SECONDS (10 s) and stage the events instead: on
    a loaded machine the count of a tiny table could take that long (opening DuckDB's file and
    counting in a thread that waits for a core), and a test expecting "in memory" saw "staged".
    The test of the deadline sets its own.
    """
    monkeypatch.setattr(features.database, "COUNT_SECONDS", None)


@pytest.fixture
def cli(local_tracking: Path) -> Iterator[CliRunner]:
    _register()
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def run(cli: CliRunner, *args: str) -> str:
    result = cli.invoke(app, list(args), env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.output


def fails(cli: CliRunner, code: int, *args: str) -> str:
    result = cli.invoke(app, list(args), env={"COLUMNS": "250"})
    assert result.exit_code == code, result.output
    return " ".join(result.output.split())


@pytest.fixture(params=["postgresql", "duckdb"])
def warehouse(
    request: pytest.FixtureRequest, pg_sample: tuple[str, Path], tmp_path_factory
) -> tuple[str, Path]:
    """A database holding tables ``events`` and ``customers``, and the same rows as Parquet."""
    uri, folder = pg_sample
    if request.param == "postgresql":
        return uri, folder
    duck = f"duckdb://{tmp_path_factory.mktemp('duck') / 'crm.duckdb'}"
    write_table(duck, "events", pl.read_parquet(folder / "events.parquet"))
    write_table(duck, "customers", pl.read_parquet(folder / "customers.parquet"))
    return duck, folder


@pytest.mark.slow
def test_round_trip_with_the_database_as_source_and_sink(
    cli: CliRunner, local_tracking: Path, warehouse: tuple[str, Path], tmp_path: Path
) -> None:
    uri, folder = warehouse
    source = ["--events", uri, "--events-table", "events"]
    people = ["--customers", uri, "--customers-table", "customers"]

    out = run(cli, "data", "validate", uri, "--events-table", "events", *people)
    assert "valid: " in out and "1,500 customers" in out

    run(cli, "features", "build", *source, *people, "--as-of", AS_OF)
    store = Store(local_tracking)
    stored = store.read_snapshot(PG_SAMPLE_END)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    from_files = build_snapshot(
        read_events(folder / "events.parquet", now=now),
        read_customers(folder / "customers.parquet", now=now),
        PG_SAMPLE_END,
    )
    assert snapshot_digest(stored) == snapshot_digest(from_files)  # parity with Parquet
    assert store.snapshot_info(PG_SAMPLE_END).events.path == f"{mask(uri)} table events"

    run(cli, "train", "--task", "churn", *source, *people, "--as-of", AS_OF, "--horizon", "90",
        "--trials", "2", "--seed", "0")  # fmt: skip
    score = ["score", *source, *people, "--as-of", AS_OF, "--tasks", "churn", "--alias",
             "challenger", "--explain", "3"]  # fmt: skip
    out = run(cli, *score, "--out", uri, "--out-table", "guanxi_scores")
    assert f"to {mask(uri)} table guanxi_scores" in " ".join(out.split())
    run(cli, *score, "--out", str(tmp_path / "scores.parquet"))

    table, _ = scan(Relation(uri, table="guanxi_scores"))
    in_db = table.collect()
    in_file = pl.read_parquet(tmp_path / "scores.parquet")
    assert in_db.height == in_file.height == from_files.height
    assert in_db.columns == in_file.columns
    assert {"model_version", "as_of"} <= set(in_db.columns)
    assert in_db["as_of"].unique().to_list() == [date.fromisoformat(AS_OF)]
    assert in_db["model_version"].unique().to_list() == ["1"]
    key = ["customer_id", "task"]
    assert in_db.sort(key).equals(in_file.sort(key).cast(in_db.schema))  # type: ignore[arg-type]


DATA = Path(__file__).resolve().parents[1] / "data"
TINY_DAY = date(2024, 3, 8)  # the day after the tiny events' last (qa43 H1: weeks after is refused)


def tiny_duckdb(path: Path, bad: bool = False) -> str:
    """The tiny events (``event_no`` their primary key; one late row bad) and customers."""
    events = pl.read_csv(DATA / "events_tiny.csv", infer_schema=False)
    events = events.with_columns(pl.int_range(101, 101 + events.height).alias("event_no"))
    if bad:
        late = pl.col("event_no") == 108
        events = events.with_columns(ts=pl.when(late).then(pl.lit("soon")).otherwise("ts"))
    uri = keyed_duckdb(path, events)
    write_table(uri, "customers", pl.read_csv(DATA / "customers_tiny.csv"))
    return uri


def in_memory_events(monkeypatch: pytest.MonkeyPatch, rows: int) -> None:
    """Set ``GUANXI_FEATURES_IN_MEMORY_EVENTS`` for the next command."""
    monkeypatch.setenv("GUANXI_FEATURES_IN_MEMORY_EVENTS", str(rows))
    get_settings.cache_clear()


def test_a_small_database_table_is_built_in_memory_a_larger_one_staged_alike(
    cli: CliRunner,
    local_tracking: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    input_paths: list[str],
) -> None:
    """features build and score's build count a database's events: at most
    GUANXI_FEATURES_IN_MEMORY_EVENTS of them (8 here) are held in memory, more are staged, as a
    file's; both give the same snapshot, history and output."""
    uri = tiny_duckdb(tmp_path / "crm.duckdb")
    sources = ["--events", uri, "--events-table", "events"]
    sources += ["--customers", uri, "--customers-table", "customers"]
    build = ["features", "build", *sources, "--as-of", TINY_DAY.isoformat()]
    in_memory_output = run(cli, *build)  # the default threshold, 8,000,000 events
    store = Store(local_tracking)
    in_memory = store.read_snapshot(TINY_DAY), pl.read_parquet(store.history_path(TINY_DAY))
    in_memory_events(monkeypatch, 8)
    inputs = connectors.inputs(uri, "events", None, uri, "customers")
    assert inputs.few_events()
    in_memory_events(monkeypatch, 7)
    assert not inputs.few_events()
    assert not connectors.inputs(uri, None, "SELECT * FROM events", None, None).few_events()
    output = run(cli, *build)
    built, _, _ = score.snapshot_for(Store(tmp_path / "empty"), inputs, TINY_DAY, datetime.now(UTC))
    assert input_paths == ["in memory", "staged", "staged"]
    assert output == in_memory_output
    assert in_memory[0].equals(store.read_snapshot(TINY_DAY))
    assert in_memory[0].equals(built)
    assert in_memory[1].equals(pl.read_parquet(store.history_path(TINY_DAY)))
    assert in_memory[1].height == 8


def test_a_database_whose_count_fails_or_is_slow_is_staged(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, input_paths: list[str]
) -> None:
    """A count that does not answer in time stages the events: slower, never an error."""
    uri = tiny_duckdb(tmp_path / "crm.duckdb")
    slow = "SELECT e.* FROM events AS e, range(1000000000000) AS t(x) WHERE x = 0"
    inputs = connectors.inputs(uri, None, slow, None, None)
    monkeypatch.setattr(features.database, "COUNT_SECONDS", 0.5)
    assert not inputs.few_events()  # gave up: a full scan of 10^12 rows
    dead = connectors.inputs(f"duckdb://{tmp_path / 'none.duckdb'}", "events", None, None, None)
    assert not dead.few_events()
    missing = fails(cli, 1, "data", "validate", dead.events.location, "--events-table", "events")
    assert input_paths == ["staged"]
    assert f"no DuckDB file at {tmp_path / 'none.duckdb'}" in missing


def test_a_database_names_a_bad_row_by_its_key_staged_as_in_memory(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, input_paths: list[str]
) -> None:
    uri = tiny_duckdb(tmp_path / "crm.duckdb", bad=True)
    in_memory = fails(cli, 1, "data", "validate", uri, "--events-table", "events")
    in_memory_events(monkeypatch, 0)
    assert fails(cli, 1, "data", "validate", uri, "--events-table", "events") == in_memory
    assert input_paths == ["in memory", "staged"]
    assert f"{mask(uri)} table events │ ts │ event_no 108 │ unreadable value" in in_memory
    assert "invalid: 1 error" in in_memory


def test_validate_reports_a_wrong_password_masked(cli: CliRunner, pg_sample, postgres) -> None:
    wrong = postgres.uri("crm", password="wrong-secret")
    out = fails(cli, 1, "data", "validate", wrong, "--events-table", "events")
    assert "wrong user name or password" in out and "wrong-secret" not in out
    assert f"{mask(wrong)} table events" in out


def test_build_from_a_missing_table_writes_nothing(
    cli: CliRunner, local_tracking: Path, pg_sample
) -> None:
    uri, _ = pg_sample
    out = fails(cli, 1, "features", "build", "--events", uri, "--events-table", "nope",
                "--as-of", AS_OF)  # fmt: skip
    assert "no such table" in out and "nothing was written" in out
    assert Store(local_tracking).list_snapshots() == []


def test_mapping_with_an_unknown_column_is_reported(cli: CliRunner, pg_sample, tmp_path) -> None:
    uri, _ = pg_sample
    mapping = tmp_path / "map.yaml"
    mapping.write_text("customer_id: cust_no\n")
    out = fails(cli, 1, "data", "validate", uri, "--events-table", "events", "--mapping",
                str(mapping))  # fmt: skip
    assert "cust_no" in out and "the mapping maps 'customer_id' to 'cust_no'" in out
    mapping.write_text("customer_id: [a, b]\n")
    out = fails(cli, 2, "data", "validate", uri, "--events-table", "events", "--mapping",
                str(mapping))  # fmt: skip
    assert "must name one source column" in out


def test_bad_source_and_sink_options_fail_before_any_work(
    cli: CliRunner, local_tracking: Path, tmp_path: Path
) -> None:
    events = str(tmp_path / "events.parquet")
    out = fails(cli, 2, "data", "validate", events, "--events-table", "events")
    assert "needs a database URI" in out
    out = fails(cli, 2, "data", "validate", "postgresql://u@127.0.0.1:1/db")
    assert "exactly one of them" in out
    score = ["score", "--events", events, "--as-of", AS_OF]
    assert "name the table with --out-table" in fails(cli, 2, *score, "--out", "duckdb:///x.db")
    out = fails(cli, 2, *score, "--out", "s.parquet", "--out-table", "t")
    assert "--out-table needs a database URI" in out
    out = fails(cli, 2, *score, "--out", "postgresql://u:pw@127.0.0.1:1/db", "--out-table", "t")
    assert "cannot reach the database server" in out and ":pw@" not in out
    assert not (local_tracking / "scores").exists()


def test_guanxi_duckdb_write_memory_reaches_a_duckdb_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GUANXI_DUCKDB_WRITE_MEMORY is DuckDB's memory limit for --out-table: one that holds
    nothing fails the write, naming memory; a wrong unit is refused when the settings are read."""
    uri = f"duckdb://{tmp_path / 'out.duckdb'}"
    frame = pl.DataFrame({"customer_id": ["a"], "score": [0.5]})
    try:
        monkeypatch.setenv("GUANXI_DUCKDB_WRITE_MEMORY", "1kB")
        get_settings.cache_clear()
        with pytest.raises(DatabaseError, match=r"(?i)memory"):
            connectors.write_output(frame, uri, "scores")
        with pytest.raises(DatabaseError, match=r"(?i)memory"):
            connectors.write_parts(iter([frame]), frame.schema, uri, "scores")
        monkeypatch.setenv("GUANXI_DUCKDB_WRITE_MEMORY", "256 MiB")
        get_settings.cache_clear()
        assert connectors.write_output(frame, uri, "scores").endswith("table scores")
        monkeypatch.setenv("GUANXI_DUCKDB_WRITE_MEMORY", "1 GBs")
        get_settings.cache_clear()
        with pytest.raises(ValueError, match="duckdb_write_memory"):
            get_settings()
    finally:
        get_settings.cache_clear()


def test_an_output_that_is_a_directory_is_refused_before_any_work(tmp_path: Path) -> None:
    """``--out scores.parquet`` naming a folder (Spark writes Parquet as one) scored every
    customer, then ended in an IsADirectoryError traceback at the rename; ``check_output``,
    which score, value and target call first, refuses it."""
    folder = tmp_path / "scores.parquet"
    folder.mkdir()
    with pytest.raises(typer.BadParameter, match=r"scores\.parquet is a directory: name a file"):
        connectors.check_output(str(folder), None)
    connectors.check_output(str(tmp_path / "new" / "scores.parquet"), None)  # made on writing
