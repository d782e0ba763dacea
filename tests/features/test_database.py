"""Writing tables into PostgreSQL and DuckDB atomically (features/database.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from features.database import (
    _HOST,
    SPILL_STALE_SECONDS,
    DatabaseError,
    Relation,
    check_writable,
    mask,
    scan,
    write_batches,
    write_table,
)

ROOT = Path(__file__).resolve().parents[2]

BEFORE = pl.DataFrame(
    {
        "customer_id": ["a", "b"],
        "score": [0.25, 0.5],
        "decile": pl.Series([1, 2], dtype=pl.Int8),
        "model_version": ["3", "3"],
        "as_of": [date(2025, 12, 31)] * 2,
        "reason": [None, "3 complaints"],
    }
)


def read(uri: str, table: str) -> pl.DataFrame:
    frame, _ = scan(Relation(uri, table=table))
    return frame.collect()


def tables(uri: str) -> list[str]:
    if uri.startswith("duckdb"):
        with duckdb.connect(uri.split("://", 1)[1], read_only=True) as con:
            return sorted(
                r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
            )
    frame, _ = scan(
        Relation(uri, query="SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    )
    return sorted(frame.collect()["tablename"].to_list())


@pytest.fixture(params=["postgresql", "duckdb"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "duckdb":
        return f"duckdb://{tmp_path / 'out.duckdb'}"
    return str(request.getfixturevalue("pg_database"))


def test_write_creates_then_replaces_the_table(database: str) -> None:
    assert write_table(database, "guanxi_scores", BEFORE) == 2
    got = read(database, "guanxi_scores")
    assert got.with_columns(pl.col("decile").cast(pl.Int8)).equals(BEFORE)
    after = BEFORE.head(1).with_columns(pl.lit("4").alias("model_version"))
    write_table(database, "guanxi_scores", after)
    assert read(database, "guanxi_scores")["model_version"].to_list() == ["4"]
    assert tables(database) == ["guanxi_scores"]  # no staging table left


def test_write_into_a_schema(pg_database: str) -> None:
    import adbc_driver_postgresql.dbapi as postgresql

    with postgresql.connect(pg_database) as connection, connection.cursor() as cursor:
        cursor.execute("CREATE SCHEMA crm")
        connection.commit()
    write_table(pg_database, "crm.guanxi_scores", BEFORE)
    assert read(pg_database, "crm.guanxi_scores").height == 2


def test_a_refused_write_keeps_the_old_table(pg_database: str) -> None:
    import adbc_driver_postgresql.dbapi as postgresql

    write_table(pg_database, "guanxi_scores", BEFORE)
    with postgresql.connect(pg_database) as connection, connection.cursor() as cursor:
        cursor.execute("CREATE VIEW top AS SELECT * FROM guanxi_scores WHERE decile = 1")
        connection.commit()
    with pytest.raises(DatabaseError) as info:
        write_table(pg_database, "guanxi_scores", BEFORE.head(1))
    assert str(info.value).startswith(f"{mask(pg_database)} table guanxi_scores: cannot write: ")
    assert "depend" in str(info.value)
    assert read(pg_database, "guanxi_scores").height == 2
    assert tables(pg_database) == ["guanxi_scores"]


def test_batches_go_in_as_one_table(database: str) -> None:
    """Batches (the first empty, as `guanxi score` sends them) make the table one frame makes."""
    batches = [BEFORE.clear(), BEFORE.head(1), BEFORE.tail(1), BEFORE]
    assert write_batches(database, "guanxi_scores", iter(batches)) == 4
    got = read(database, "guanxi_scores").with_columns(pl.col("decile").cast(pl.Int8))
    assert got.equals(pl.concat(batches))
    assert tables(database) == ["guanxi_scores"]
    with pytest.raises(ValueError, match="no batch"):
        write_batches(database, "guanxi_scores", [])


def test_a_batch_that_fails_midway_keeps_the_old_table(database: str) -> None:
    """A batch that raises after others went in: the previous table whole, no half table."""
    write_table(database, "guanxi_scores", BEFORE)

    def batches():  # type: ignore[no-untyped-def]
        yield BEFORE.clear()
        yield BEFORE.head(1).with_columns(pl.lit("4").alias("model_version"))
        raise RuntimeError("scoring failed")

    with pytest.raises(RuntimeError, match="scoring failed"):
        write_batches(database, "guanxi_scores", batches())
    got = read(database, "guanxi_scores").with_columns(pl.col("decile").cast(pl.Int8))
    assert got.equals(BEFORE)
    assert tables(database) == ["guanxi_scores"]  # no staging table left
    if database.startswith("duckdb"):  # nor the batches' temporary file
        folder = Path(database.split("://", 1)[1]).parent
        assert [p.name for p in folder.iterdir()] == ["out.duckdb"]


def test_a_duckdb_write_removes_the_spill_folders_killed_writes_left(tmp_path: Path) -> None:
    """Folders of a process that is gone (or a day old) go; a running write's stay, and so does
    another host's recent one, which this host cannot tell is running."""
    uri = f"duckdb://{tmp_path / 'out.duckdb'}"
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], text=True, capture_output=True
    )
    gone = int(ended.stdout)
    old = time.time() - SPILL_STALE_SECONDS - 60
    folders = {
        f".guanxi-rows-{gone}-{_HOST}-k1": True,  # its process ended: removed
        f".guanxi-rows-{os.getpid()}-{_HOST}-k2": False,  # this process runs: kept
        f".guanxi-rows-{gone}-0123abcd-k3": False,  # another host's, recent: kept
        f".guanxi-rows-{gone}-0123abcd-k4": True,  # another host's, a day old: removed
        ".guanxi-rows-x7_q2abc": True,  # named without a pid (before), a day old: removed
    }
    for name, stale in folders.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "rows.parquet").write_bytes(b"x" * 1000)
        if stale and not name.endswith("k1"):
            os.utime(tmp_path / name, (old, old))
    write_table(uri, "guanxi_scores", BEFORE)
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".guanxi-rows-"))
    assert left == sorted(name for name, stale in folders.items() if not stale)
    assert read(uri, "guanxi_scores").height == 2


def test_duckdbs_memory_limit_is_the_callers(tmp_path: Path) -> None:
    """The limit reaches DuckDB: one too small to hold anything fails the write, naming it."""
    uri = f"duckdb://{tmp_path / 'out.duckdb'}"
    assert write_table(uri, "guanxi_scores", BEFORE, memory="64MB") == 2
    with pytest.raises(DatabaseError, match=r"(?i)memory"):
        write_table(uri, "guanxi_scores", BEFORE, memory="1kB")
    assert read(uri, "guanxi_scores").height == 2


def test_duckdb_three_slashes_never_write_at_the_root_and_four_are_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--out duckdb:///name.duckdb` (SQLAlchemy's relative form) went silently to /name.duckdb:
    refused, naming both forms; four slashes (SQLAlchemy's absolute form) name the file three
    name, and two a file of the working directory."""
    monkeypatch.chdir(tmp_path)
    name = f"guanxi-test-{os.getpid()}.duckdb"
    root = Path("/") / name
    writes = (
        lambda uri: write_table(uri, "t", BEFORE),
        lambda uri: write_batches(uri, "t", [BEFORE]),
        lambda uri: check_writable(uri, "t"),
    )
    for write in writes:
        with pytest.raises(DatabaseError) as info:
            write(f"duckdb:///{name}")
        assert str(info.value) == (
            f"duckdb:///{name}: names /{name}, at the root of the file system (three slashes "
            f"make an absolute path); write duckdb://{name} for {name} of the working "
            f"directory, or duckdb:////{name} for the root"
        )
        assert not root.exists()
    four = f"duckdb:///{tmp_path / 'out.duckdb'}"
    assert four.startswith("duckdb:////")
    assert write_table(four, "t", BEFORE) == 2 and write_batches(four, "t", [BEFORE]) == 2
    assert read(four, "t").equals(read(f"duckdb://{tmp_path / 'out.duckdb'}", "t"))
    assert write_table("duckdb://here.duckdb", "t", BEFORE) == 2
    assert (tmp_path / "here.duckdb").is_file() and not list(tmp_path.glob(".guanxi-rows-*"))


def test_unreachable_sink_names_the_masked_uri(pg_database: str) -> None:
    dead = pg_database.rsplit(":", 1)[0] + ":1/x"
    with pytest.raises(DatabaseError, match=r"cannot reach the database server") as info:
        write_table(dead, "guanxi_scores", BEFORE)
    assert ":***@" in str(info.value) and "s3cret" not in str(info.value)


# --- SIGKILL while the rows go in ---------------------------------------------------------------

_WRITER = textwrap.dedent(
    """
    import sys
    import polars as pl
    from features.database import write_table

    big = pl.DataFrame({"customer_id": [f"c{i}" for i in range(400_000)], "score": 0.5,
                        "model_version": "9", "text": "x" * 200})
    print("READY", flush=True)
    for n in range(1000):
        write_table(sys.argv[1], "guanxi_scores", big)
    """
)


def _copy_running(uri: str) -> bool:
    """Whether a client is sending rows (ADBC ingests with COPY ... FROM STDIN)."""
    import adbc_driver_postgresql.dbapi as postgresql

    with postgresql.connect(uri, autocommit=True) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
            "AND state = 'active' AND query ILIKE 'COPY%FROM STDIN%'"
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def _writer(uri: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, uri], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
    return proc


@pytest.mark.slow
def test_sigkill_while_writing_to_postgres_keeps_the_previous_table(pg_database: str) -> None:
    write_table(pg_database, "guanxi_scores", BEFORE)
    proc = _writer(pg_database)
    for _ in range(3000):
        if proc.poll() is not None or _copy_running(pg_database):
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the writer ended before it was killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for _ in range(3000):  # the server notices the lost client and rolls back
        if not _copy_running(pg_database):
            break
        time.sleep(0.01)
    assert (
        read(pg_database, "guanxi_scores")
        .with_columns(pl.col("decile").cast(pl.Int8))
        .equals(BEFORE)
    )
    assert tables(pg_database) == ["guanxi_scores"]


@pytest.mark.slow
def test_sigkill_while_writing_to_duckdb_keeps_a_whole_table(tmp_path: Path) -> None:
    uri = f"duckdb://{tmp_path / 'out.duckdb'}"
    write_table(uri, "guanxi_scores", BEFORE)
    proc = _writer(uri)
    time.sleep(1.5)  # inside the first write of 400k rows
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    got = read(uri, "guanxi_scores")
    assert got.height in (2, 400_000)  # the old table, or a whole new one: never a part
    assert tables(uri) == ["guanxi_scores"]
    write_table(uri, "guanxi_scores", BEFORE)  # the next write removes the killed one's rows
    assert not list(tmp_path.glob(".guanxi-rows-*"))
