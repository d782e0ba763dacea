"""Events and customers from a real PostgreSQL server and DuckDB files (features/sources.py).

The server is the session's ``postgres`` fixture (tests/conftest.py): initdb in a temporary folder,
started on a loopback port, the sample data loaded into database ``crm``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.database import Relation, count, is_database, mask, write_table
from features.events import EventsValidationError, Problem, Staged
from features.events import load_customers as load_customers_file
from features.events import load_events as load_events_file
from features.sources import (
    ColumnMapping,
    MappingError,
    Source,
    TableMapping,
    event_rows,
    load_customers,
    load_events,
    stage_events,
    stage_orders,
)
from tests.processes import Postgres

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def problems_of(source: Source, customers: bool = False) -> list[Problem]:
    with pytest.raises(EventsValidationError) as info:
        (load_customers if customers else load_events)(source, now=NOW)
    return info.value.errors


# --- parity with the same rows as Parquet ----------------------------------------------------


@pytest.mark.slow
def test_postgres_table_reads_as_the_parquet_file(pg_sample: tuple[str, Path]) -> None:
    uri, folder = pg_sample
    from_db = load_events(Source(uri, table="events"), now=NOW)
    from_file = load_events_file(folder / "events.parquet", now=NOW)
    assert from_db.warnings == ()  # the key column is not reported as ignored
    assert from_db.frame.schema == from_file.frame.schema
    assert from_db.frame.equals(from_file.frame)
    people = load_customers(Source(uri, table="customers"), now=NOW).frame
    assert people.equals(load_customers_file(folder / "customers.parquet", now=NOW).frame)


@pytest.mark.slow
def test_duckdb_table_reads_as_the_parquet_file(
    pg_sample: tuple[str, Path], tmp_path: Path
) -> None:
    _, folder = pg_sample
    uri = f"duckdb://{tmp_path / 'crm.duckdb'}"
    file = load_events_file(folder / "events.parquet", now=NOW).frame
    write_table(uri, "events", pl.read_parquet(folder / "events.parquet"))
    assert load_events(Source(uri, table="events"), now=NOW).frame.equals(file)


def test_a_query_with_a_mapping_reads_a_table_of_another_shape(pg_database: str) -> None:
    shop = pl.DataFrame(
        {
            "cust_no": [17, 17, 42],
            "created_at": [datetime(2024, 1, 2, 9), datetime(2024, 1, 3), datetime(2024, 2, 1)],
            "kind": ["ORD", "VIS", "ORD"],
            "total": [12.5, None, 3.0],
            "note": ["x", "y", "z"],
        }
    )
    write_table(pg_database, "orders", shop)
    mapping = TableMapping(
        {"customer_id": "cust_no", "ts": "created_at", "event_type": "kind", "amount": "total"},
        {"ORD": "order", "VIS": "visit"},
    )
    loaded = load_events(
        Source(
            pg_database,
            query="SELECT * FROM orders WHERE total IS NOT NULL OR kind = 'VIS'",
            mapping=mapping,
        ),
        now=NOW,
    )
    frame = loaded.frame.sort("ts")
    assert frame["customer_id"].to_list() == ["17", "17", "42"]
    assert frame["event_type"].to_list() == ["order", "visit", "order"]
    assert frame["amount"].to_list() == [12.5, None, 3.0]
    assert frame["ts"].to_list()[0] == datetime(2024, 1, 2, 9, tzinfo=UTC)
    assert [(w.column, w.message.split(":")[0]) for w in loaded.warnings] == [
        ("note", "column ignored")
    ]


def test_numeric_and_duckdb_decimal_columns_are_numbers(pg_database: str, tmp_path: Path) -> None:
    import adbc_driver_postgresql.dbapi as postgresql

    with postgresql.connect(pg_database) as connection, connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE sales AS SELECT 'c1'::text AS customer_id, "
            "timestamptz '2024-05-01 10:00+02' AS ts, 'order'::text AS event_type, "
            "12.30::numeric(10, 2) AS amount"
        )
        connection.commit()
    frame = load_events(Source(pg_database, table="sales"), now=NOW).frame
    assert frame.select("ts", "amount").row(0) == (datetime(2024, 5, 1, 8, tzinfo=UTC), 12.3)
    duck = f"duckdb://{tmp_path / 'x.duckdb'}"
    import duckdb

    with duckdb.connect(str(tmp_path / "x.duckdb")) as con:
        con.execute(
            "CREATE TABLE sales AS SELECT 'c1' AS customer_id, TIMESTAMP '2024-05-01 08:00' AS ts,"
            " 'order' AS event_type, 12.30::DECIMAL(10, 2) AS amount"
        )
    frame = load_events(Source(duck, table="sales"), now=NOW).frame
    assert frame.select("ts", "amount").row(0) == (datetime(2024, 5, 1, 8, tzinfo=UTC), 12.3)


# --- problems name the source, the column and the primary key -----------------------------------


def test_problems_name_rows_by_primary_key(pg_database: str) -> None:
    import adbc_driver_postgresql.dbapi as postgresql

    rows = pl.DataFrame(
        {
            "event_no": [101, 102, 103, 104],
            "customer_id": ["a", "b", "c", "d"],
            "ts": [datetime(2024, 1, 1)] * 4,
            "event_type": ["order", "order", "visit", "teleport"],
            "amount": [5.0, -1.0, None, None],
        }
    )
    write_table(pg_database, "events", rows)
    with postgresql.connect(pg_database) as connection, connection.cursor() as cursor:
        cursor.execute("ALTER TABLE events ADD PRIMARY KEY (event_no)")
        connection.commit()
    found = {(p.column, p.keys, p.key) for p in problems_of(Source(pg_database, table="events"))}
    assert found == {
        ("amount", ("102",), "event_no"),
        ("event_type", ("104",), "event_no"),
    }
    text = str(problems_of(Source(pg_database, table="events"))[0])
    assert text.startswith(f"{mask(pg_database)} table events, column ")
    assert "event_no 10" in text and "s3cret" not in text


def test_a_query_is_keyed_by_the_mapping_or_by_row_number(pg_database: str) -> None:
    rows = pl.DataFrame(
        {
            "id": [7, 8],
            "customer_id": ["a", "b"],
            "ts": ["2024-01-01", "soon"],
            "event_type": "visit",
        }
    )
    write_table(pg_database, "raw", rows)
    query = "SELECT * FROM raw ORDER BY id"
    [by_row] = problems_of(Source(pg_database, query=query))
    assert (by_row.column, by_row.rows, by_row.key) == ("ts", (2,), None)
    [by_key] = problems_of(Source(pg_database, query=query, mapping=TableMapping(key=("id",))))
    assert (by_key.column, by_key.keys, by_key.rows_text()) == ("ts", ("8",), "id 8")


def test_rows_are_staged_in_parquet_and_extra_columns_are_not_fetched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database's rows go through a staging file, removed afterwards; a column outside the
    contract is reported as ignored without its values being asked of the database."""
    import features.database as database

    uri = f"duckdb://{tmp_path / 'crm.duckdb'}"
    rows = pl.DataFrame(
        {"customer_id": ["a", "b"], "ts": ["2024-01-01", "2024-01-02"], "event_type": "visit"}
    )
    write_table(uri, "events", rows.with_columns(note=pl.lit("x" * 50)))
    asked: list[str] = []
    batches = database._batches

    def spy(relation: Relation, sql: str, batch_size: int) -> Iterator[pl.DataFrame]:
        asked.append(sql)
        return batches(relation, sql, batch_size)

    monkeypatch.setattr(database, "_batches", spy)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", None)  # read TMPDIR again
    loaded = load_events(Source(uri, table="events"), now=NOW)
    assert loaded.frame.select("customer_id", "event_type").rows() == [
        ("a", "visit"),
        ("b", "visit"),
    ]
    [ignored] = loaded.warnings
    assert ignored.column == "note" and "column ignored" in ignored.message
    assert asked and all('"note"' not in sql for sql in asked)
    assert list((tmp_path / "tmp").iterdir()) == []  # the staging folder is gone


# --- staged as files are: the same events and problems as in memory ---------------------------


def keyed_duckdb(path: Path, rows: pl.DataFrame) -> str:
    """A DuckDB file whose table ``events`` holds ``rows``, ``event_no`` its primary key."""
    import duckdb

    with duckdb.connect(str(path)) as con:
        con.register("rows", rows.to_arrow())
        con.execute("CREATE TABLE events AS SELECT * FROM rows WHERE false")
        con.execute("ALTER TABLE events ADD PRIMARY KEY (event_no)")
        con.execute("INSERT INTO events SELECT * FROM rows")
    return f"duckdb://{path}"


def staged_and_in_memory(source: Source, folder: Path) -> tuple[object, object]:
    """Stage the events (a scan of files in ``folder``) and load them; errors as their problems.

    Staging only the orders (:func:`stage_orders`) is checked against the staged events: the
    same problems, or their orders, count and last time with the same warnings.
    """
    results: list[object] = []
    for way in ("staged", "in memory", "orders"):
        try:
            if way == "staged":
                staged = stage_events(source, now=NOW, folder=folder)
                assert staged.files and all(f.parent == folder for f in staged.files)
                frame = staged.frame.collect()
                assert staged.height == frame.height
                results.append((frame, staged.warnings))
            elif way == "in memory":
                loaded = load_events(source, now=NOW)
                results.append((loaded.frame, loaded.warnings))
            else:
                orders = stage_orders(source, now=NOW, folder=folder)
                assert orders.files and all(f.parent == folder for f in orders.files)
                assert isinstance(results[0], tuple)
                every, warnings = results[0]
                assert (orders.height, orders.last) == (every.height, every["ts"].max())
                assert orders.warnings == warnings
                expected = every.filter(pl.col("event_type") == "order")
                assert orders.frame.collect().equals(expected)
        except EventsValidationError as error:
            if way == "orders":
                assert error.problems == results[0]
            else:
                results.append(error.problems)
    return results[0], results[1]


def test_a_duckdb_table_is_staged_as_it_is_loaded(tmp_path: Path) -> None:
    """The staged events of a keyed DuckDB table are those held in memory, with the same warnings
    (an exact duplicate but for its key and a large amount named by the key, an ignored column); a
    bad row is named by its key in the same problems."""
    events = pl.read_csv(Path(__file__).parents[1] / "data" / "events_tiny.csv")
    rows = pl.concat([events, events.tail(2)]).with_columns(
        pl.int_range(101, 101 + events.height + 2, dtype=pl.Int64).alias("event_no"),
        note=pl.lit("x"),
    )
    large = pl.col("event_no") == 103
    rows = rows.with_columns(amount=pl.when(large).then(500_000.0).otherwise("amount"))
    staged, in_memory = staged_and_in_memory(
        Source(keyed_duckdb(tmp_path / "good.duckdb", rows), table="events"), tmp_path
    )
    assert isinstance(staged, tuple) and isinstance(in_memory, tuple)
    assert staged[0].equals(in_memory[0])
    assert staged[1] == in_memory[1]
    assert {(w.column, w.key, w.keys) for w in staged[1]} == {
        (None, "event_no", (str(101 + events.height), str(102 + events.height))),
        ("amount", "event_no", ("103",)),
        ("note", None, ()),
    }
    bad = rows.with_columns(
        amount=pl.when(pl.col("event_no") == 104).then(-1.0).otherwise(pl.col("amount")),
        ts=pl.when(pl.col("event_no") == 107).then(pl.lit("soon")).otherwise(pl.col("ts")),
    )
    folder = tmp_path / "bad"
    folder.mkdir()
    staged, in_memory = staged_and_in_memory(
        Source(keyed_duckdb(tmp_path / "bad.duckdb", bad), table="events"), folder
    )
    assert staged == in_memory
    assert isinstance(staged, list)
    errors = [(p.column, p.key, p.keys, p.rows) for p in staged if p.severity == "error"]
    assert sorted(errors) == [
        ("amount", "event_no", ("104",), (4,)),
        ("ts", "event_no", ("107",), (7,)),
    ]


def test_a_postgres_table_is_staged_with_the_problems_in_memory(
    pg_database: str, tmp_path: Path
) -> None:
    import adbc_driver_postgresql.dbapi as postgresql

    rows = pl.DataFrame(
        {
            "event_no": [101, 102, 103, 104, 105],
            "customer_id": ["a", "b", "c", "d", "d"],
            "ts": [datetime(2024, 1, 1)] * 5,
            "event_type": ["order", "order", "visit", "teleport", "teleport"],
            "amount": [5.0, -1.0, None, None, None],
        }
    )
    write_table(pg_database, "events", rows)
    with postgresql.connect(pg_database) as connection, connection.cursor() as cursor:
        cursor.execute("ALTER TABLE events ADD PRIMARY KEY (event_no)")
        connection.commit()
    assert event_rows(Source(pg_database, table="events"), at_most=5) == 5  # held in memory
    assert event_rows(Source(pg_database, table="events"), at_most=4) == 5  # staged
    staged, in_memory = staged_and_in_memory(Source(pg_database, table="events"), tmp_path)
    assert staged == in_memory
    assert isinstance(staged, list)
    assert {(p.column, p.keys, p.key) for p in staged} == {
        ("amount", ("102",), "event_no"),
        ("event_type", ("104", "105"), "event_no"),
        (None, ("105",), "event_no"),  # a duplicate of 104 but for its key: a warning
    }
    good = Source(pg_database, query="SELECT * FROM events WHERE event_no < 102")
    (tmp_path / "good").mkdir()
    staged, in_memory = staged_and_in_memory(good, tmp_path / "good")
    assert isinstance(staged, tuple) and isinstance(in_memory, tuple)
    assert staged[0].equals(in_memory[0]) and staged[1] == in_memory[1]
    assert [(w.column, w.severity) for w in staged[1]] == [("event_no", "warning")]  # no key


# --- bad input: a clear error, the URI's password masked -------------------------------------


def test_wrong_password_is_named_and_masked(postgres: Postgres) -> None:
    source = Source(postgres.uri("crm", password="not-the-password"), table="events")
    [problem] = problems_of(source)
    assert problem.file == f"{mask(source.location)} table events"
    assert "wrong user name or password" in problem.message
    assert "not-the-password" not in str(problem) and ":***@" in problem.file


def test_unreachable_server_missing_database_and_table(postgres: Postgres) -> None:
    dead = postgres.uri().replace(f":{postgres.port}/", ":1/")
    assert "cannot reach the database server" in problems_of(Source(dead, table="e"))[0].message
    gone = postgres.uri("no_such_db")
    assert "no such database" in problems_of(Source(gone, table="e"))[0].message
    [missing] = problems_of(Source(postgres.uri(), table="no_such_table"))
    assert (missing.file, missing.message) == (
        f"{mask(postgres.uri())} table no_such_table",
        "no such table",
    )


def test_missing_column_and_failing_query(pg_database: str) -> None:
    write_table(pg_database, "thin", pl.DataFrame({"customer_id": ["a"], "ts": ["2024-01-01"]}))
    [missing] = problems_of(Source(pg_database, table="thin"))
    assert (missing.column, missing.message.split(";")[0]) == (
        "event_type",
        "required column is missing",
    )
    [failed] = problems_of(Source(pg_database, query="SELECT nope FROM thin"))
    assert failed.file.endswith(" query") and 'column "nope" does not exist' in failed.message


def test_mapping_naming_an_unknown_column(pg_database: str) -> None:
    write_table(pg_database, "thin", pl.DataFrame({"customer_id": ["a"], "ts": ["2024-01-01"]}))
    mapping = TableMapping({"event_type": "kind"})
    [problem] = problems_of(Source(pg_database, table="thin", mapping=mapping))
    assert problem.column == "kind"
    assert problem.message.startswith("the mapping maps 'event_type' to 'kind', which is not")
    assert problem.file == f"{mask(pg_database)} table thin"


def test_duckdb_missing_file_and_table(tmp_path: Path) -> None:
    missing = f"duckdb://{tmp_path / 'none.duckdb'}"
    [problem] = problems_of(Source(missing, table="events"))
    assert problem.message == f"no DuckDB file at {tmp_path / 'none.duckdb'}"
    assert problem.file == f"{missing} table events"
    assert not (tmp_path / "none.duckdb").exists()
    uri = f"duckdb://{tmp_path / 'x.duckdb'}"
    write_table(uri, "other", pl.DataFrame({"a": [1]}))
    assert problems_of(Source(uri, table="events"))[0].message == "no such table"


def test_duckdb_three_slashes_before_a_file_of_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """duckdb:///crm.duckdb is /crm.duckdb (SQLAlchemy's sqlite:///crm.db would be relative):
    when the file is in the working directory, the error gives the URI that names it."""
    monkeypatch.chdir(tmp_path)
    write_table(f"duckdb://{tmp_path / 'crm.duckdb'}", "events", pl.DataFrame({"a": [1]}))
    [problem] = problems_of(Source("duckdb:///crm.duckdb", table="events"))
    assert problem.message == (
        "no DuckDB file at /crm.duckdb (three slashes make an absolute path; the file crm.duckdb "
        "of the working directory is duckdb://crm.duckdb)"
    )
    [problem] = problems_of(Source("duckdb:///elsewhere.duckdb", table="events"))
    assert problem.message == "no DuckDB file at /elsewhere.duckdb"  # no such file here either


# --- the mapping file, and mappings on files ----------------------------------------------------


def test_mapping_file_is_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(
        "customer_id: cust_no\nts: created_at\nevent_types:\n  ORD: order\n  7: visit\n"
        "key: event_no\ncustomers:\n  customer_id: cust_no\n  signup_ts: created\n"
    )
    mapping = ColumnMapping.read(path)
    assert mapping.events == TableMapping(
        {"customer_id": "cust_no", "ts": "created_at"},
        {"ORD": "order", "7": "visit"},
        ("event_no",),
    )
    assert mapping.customers.columns == {"customer_id": "cust_no", "signup_ts": "created"}
    for text, expected in [
        ("cust_id: cust_no\n", "'cust_id' is not a contract column"),
        ("event_types:\n  ORD: purchase\n", "maps 'ORD' to 'purchase', which is not an event"),
        ("customer_id: [a, b]\n", "'customer_id' must name one source column"),
        ("- just\n- a list\n", "the file must be a mapping"),
        ("customer_id: [unclosed\n", "not a YAML mapping file"),
    ]:
        path.write_text(text)
        with pytest.raises(MappingError, match=r"map\.yaml: ") as info:
            ColumnMapping.read(path)
        assert expected in str(info.value)
    with pytest.raises(MappingError, match="cannot read the mapping file"):
        ColumnMapping.read(tmp_path / "absent.yaml")


def test_mapping_applies_to_files_and_names_the_source_column(tmp_path: Path) -> None:
    path = tmp_path / "shop.csv"
    path.write_text("cust_no,created_at,kind\nc1,2024-01-01,V\nc2,yesterday,V\n")
    mapping = TableMapping(
        {"customer_id": "cust_no", "ts": "created_at", "event_type": "kind"}, {"V": "visit"}
    )
    [problem] = problems_of(Source(str(path), mapping=mapping))
    assert (problem.file, problem.column, problem.rows) == (str(path), "ts (created_at)", (2,))
    path.write_text("cust_no,created_at,kind\nc1,2024-01-01,V\n")
    frame = load_events(Source(str(path), mapping=mapping), now=NOW).frame
    assert frame.select("customer_id", "event_type").row(0) == ("c1", "visit")


def test_a_table_needs_a_database_and_exactly_one_of_table_and_query() -> None:
    with pytest.raises(ValueError, match="needs a database URI"):
        Source("events.parquet", table="events")
    with pytest.raises(ValueError, match="exactly one"):
        Source("postgresql://u@h/db")
    with pytest.raises(ValueError, match="exactly one"):
        Source("postgresql://u@h/db", table="t", query="SELECT 1")
    with pytest.raises(ValueError, match="not a table name"):
        Relation("duckdb:///x.db", table="a.b.c")


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgres://u:p%40ss@h/db?sslmode=require", "postgres://u:***@h/db?sslmode=require"),
        ("postgresql://u@h/db?password=pw&x=1", "postgresql://u@h/db?password=***&x=1"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("duckdb:///data/crm.db", "duckdb:///data/crm.db"),
    ],
)
def test_mask_hides_passwords(uri: str, shown: str) -> None:
    assert is_database(uri) and mask(uri) == shown
    assert not is_database("data/events.parquet") and not is_database("mysql://h/db")


@given(
    password=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~%", min_size=1, max_size=30),
    scheme=st.sampled_from(["postgresql", "postgres"]),
)
def test_mask_never_shows_the_password(password: str, scheme: str) -> None:
    secret = f"S3CRET{password}"  # marked, so it cannot stand elsewhere in the URI
    for uri in (
        f"{scheme}://guanxi:{secret}@127.0.0.1:5432/crm",
        f"{scheme}://guanxi@127.0.0.1:5432/crm?sslmode=disable&password={secret}",
    ):
        assert secret not in mask(uri) and "***" in mask(uri)
        assert mask(uri).startswith(f"{scheme}://guanxi")


def test_event_rows_come_from_the_parquet_metadata(tmp_path: Path) -> None:
    """Rows of a Parquet file or directory without reading them, of a CSV file counted; None
    where there is no count."""
    frame = pl.DataFrame({"customer_id": ["a", "b", "c"], "x": [1, 2, 3]})
    frame.write_parquet(tmp_path / "one.parquet")
    folder = tmp_path / "many"
    (folder / "sub").mkdir(parents=True)
    frame.write_parquet(folder / "a.parquet")
    frame.head(1).write_parquet(folder / "sub" / "b.parquet")
    frame.write_parquet(folder / "_hidden.parquet")  # skipped, as validation skips it
    frame.write_csv(tmp_path / "events.csv")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    assert event_rows(Source(str(tmp_path / "one.parquet"))) == 3
    assert event_rows(Source(str(folder))) == 4
    assert event_rows(Source(str(tmp_path / "events.csv"))) == 3  # the header is not a row
    assert event_rows(Source(str(tmp_path / "missing.parquet"))) is None
    assert event_rows(Source(str(tmp_path / "broken.parquet"))) is None
    assert event_rows(Source("postgresql://u@h/db", table="events")) is None


def test_event_rows_count_small_csv_files(tmp_path: Path) -> None:
    """A CSV file's or a directory of CSV files' data rows, counted as validation numbers them:
    a quoted line break does not start a row, and a value that would not parse is still a row."""
    path = tmp_path / "events.csv"
    path.write_text(
        'customer_id,ts,event_type,category\nc1,2024-01-01,visit,"two\nlines"\n'
        "c2,not a time,visit,\nc3,2024-01-02,order,\n",
        encoding="utf-8",
    )
    folder = tmp_path / "many"
    folder.mkdir()
    (folder / "a.csv").write_bytes(path.read_bytes())
    (folder / "b.csv").write_text("customer_id,ts,event_type\nc4,2024-01-03,visit\n")
    assert event_rows(Source(str(path))) == 3
    assert event_rows(Source(str(folder))) == 4
    assert event_rows(Source(str(tmp_path / "missing.csv"))) is None


def test_event_rows_estimate_large_csv_files(tmp_path: Path) -> None:
    """A CSV file over 1 MiB is not read whole: its rows are estimated from its first MiB."""
    rows = pl.DataFrame(
        {
            "customer_id": [f"c{i % 997}" for i in range(200_000)],
            "ts": ["2024-01-01 10:00:00"] * 200_000,
            "event_type": ["visit", "order", "email_open", "call"] * 50_000,
        }
    )
    path = tmp_path / "events.csv"
    rows.write_csv(path)
    assert path.stat().st_size > 4 << 20
    estimate = event_rows(Source(str(path)))
    assert estimate is not None and abs(estimate - rows.height) < rows.height / 100
    (tmp_path / "one-line.csv").write_bytes(b"customer_id," * (1 << 18))  # no line in 1 MiB
    assert event_rows(Source(str(tmp_path / "one-line.csv"))) is None


def test_a_database_counts_its_rows_up_to_the_limit(tmp_path: Path) -> None:
    """A table's or query's rows are counted by the database, at most ``at_most + 1`` of them."""
    events = pl.read_csv(Path(__file__).parents[1] / "data" / "events_tiny.csv")
    uri = f"duckdb://{tmp_path / 'crm.duckdb'}"
    write_table(uri, "events", events)
    table = Source(uri, table="events")
    query = Source(uri, query="SELECT * FROM events WHERE event_type = 'order';")
    orders = events.filter(pl.col("event_type") == "order").height
    assert event_rows(table, at_most=100) == events.height == 8
    assert event_rows(table, at_most=8) == 8
    assert event_rows(table, at_most=7) == 8  # more than 7
    assert event_rows(table, at_most=2) == 3  # more than 2: no more are counted
    assert event_rows(query, at_most=100) == orders < events.height
    assert event_rows(table) is None  # no limit: not counted


def test_a_failing_or_slow_count_gives_up_without_an_error(
    tmp_path: Path, pg_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A count that fails (missing file or table, unreachable server, failing query) or does not
    answer in time is None, not an error: the caller then stages the events.

    A count given up is cancelled: its thread ends, which it would not for an hour (``pg_sleep``)
    or for a scan of 10**12 rows if the query ran on. The check waits for that by polls, up to a
    minute, not by a time limit on the call, which holds by construction (``seconds`` plus a
    second's join) and could only fail on a stalled machine.
    """
    import threading
    import time

    uri = f"duckdb://{tmp_path / 'crm.duckdb'}"
    write_table(uri, "events", pl.DataFrame({"customer_id": ["a"]}))
    assert event_rows(Source(f"duckdb://{tmp_path / 'none.duckdb'}", table="e"), at_most=9) is None
    assert event_rows(Source(uri, table="no_such_table"), at_most=9) is None
    assert event_rows(Source(uri, query="SELECT nope FROM events"), at_most=9) is None
    assert event_rows(Source("postgresql://u@127.0.0.1:1/db", table="e"), at_most=9) is None
    endless = "SELECT x FROM range(1000000000000) AS t(x) WHERE x < 0"  # scans every row
    for relation in (
        Relation(uri, query=endless),
        Relation(pg_database, query="SELECT pg_sleep(3600)"),
    ):
        before = set(threading.enumerate())
        with caplog.at_level("INFO", logger="features.database"):
            assert count(relation, at_most=10**13, seconds=0.5) is None
        assert f"{relation.label}: rows not counted (no answer in 0.5 s)" in caplog.messages
        for _ in range(6000):  # cancelled: the count's thread ends, the query with it
            if not any(t.name == "guanxi-count" for t in set(threading.enumerate()) - before):
                break
            time.sleep(0.01)
        else:
            raise AssertionError(f"{relation.label}: the count given up still runs")
    assert count(Relation(pg_database, query="SELECT 1 UNION ALL SELECT 2"), at_most=5) == 2


def test_large_amounts_are_a_warning_from_files_staged_or_not_and_from_a_database(
    tmp_path: Path,
) -> None:
    """A source's events with an amount above 1,000x the median positive amount: the same
    warning whether the file is loaded or staged; a DuckDB table's or query's names the row and
    says the table's or the query's median, loaded or staged; rows kept."""
    rows = pl.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e"],
            "ts": ["2024-01-01"] * 5,
            "event_type": ["order"] * 5,
            "amount": [20.0, 25.0, 30.0, 40_000.0, 22.0],
            "quantity": [1.0] * 5,
        }
    )
    file = tmp_path / "events.parquet"
    rows.write_parquet(file)
    loaded = load_events(Source(str(file)), now=NOW)
    staged = stage_events(Source(str(file)), now=NOW, folder=tmp_path)
    assert isinstance(staged, Staged)
    [warning] = loaded.warnings
    assert staged.warnings == loaded.warnings
    assert (warning.column, warning.rows, warning.severity) == ("amount", (4,), "warning")
    assert "more than 1,000x the file's median positive amount (25.00; " in warning.message
    uri = f"duckdb://{tmp_path / 'crm.duckdb'}"
    write_table(uri, "events", rows)
    for source, noun in (
        (Source(uri, table="events"), "table"),
        (Source(uri, query="SELECT * FROM events"), "query"),
    ):
        from_db = load_events(source, now=NOW)
        [db_warning] = from_db.warnings
        assert (db_warning.column, db_warning.n_rows) == ("amount", 1)
        assert db_warning.severity == "warning"
        median = f"more than 1,000x the {noun}'s median positive amount (25.00; "
        assert median in db_warning.message
        assert from_db.frame.height == loaded.frame.height == 5
        folder = tmp_path / noun
        folder.mkdir()
        assert stage_events(source, now=NOW, folder=folder).warnings == from_db.warnings
        assert stage_orders(source, now=NOW, folder=folder).warnings == from_db.warnings
