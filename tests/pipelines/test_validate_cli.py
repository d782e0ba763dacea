"""``guanxi data validate`` through CliRunner and as a real process."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from pipelines.validate import validate_command
from serving.settings import get_settings
from tests.features.test_events import HEADER, bad_corpus, write_csv
from tests.pipelines.test_connectors import tiny_duckdb

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
GUANXI = ROOT / ".venv" / "bin" / "guanxi"


def invoke(*args: str) -> tuple[int, str]:
    app = typer.Typer()
    app.command()(validate_command)
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})
    return result.exit_code, result.output


def test_valid_file_prints_a_summary() -> None:
    code, output = invoke(str(DATA / "events_tiny.csv"))
    assert code == 0, output
    assert "valid: 8 events of 3 customers, 2024-03-01 to 2024-03-07" in output
    assert "complaint 1" in output
    assert "error" not in output


def test_valid_with_customers() -> None:
    code, output = invoke(
        str(DATA / "events_tiny.csv"), "--customers", str(DATA / "customers_tiny.csv")
    )
    assert code == 0, output
    assert "customers file: 3 customers" in output


def test_the_events_are_taken_with_events_as_every_other_command_takes_them() -> None:
    """heavy28: `guanxi data validate --events FILE` failed with "No such option: --events"
    while every other command takes its events so; --events is now taken beside PATH."""
    tiny, customers = str(DATA / "events_tiny.csv"), str(DATA / "customers_tiny.csv")
    code, output = invoke("--events", tiny, "--customers", customers)
    assert code == 0, output
    assert "valid: 8 events of 3 customers" in output and "customers file: 3 customers" in output
    assert invoke("--events", tiny, tiny)[0] == 0  # the same source twice is the one
    code, output = invoke("--events", tiny, str(DATA / "customers_tiny.csv"))
    assert code == 2 and "give the events once, as PATH or with --events" in " ".join(
        output.replace("│", " ").split()
    )
    code, output = invoke("--customers", customers)
    assert code == 2 and "give the events as PATH or with --events" in " ".join(
        output.replace("│", " ").split()
    )


def test_a_database_customers_table_is_called_a_table(tmp_path: Path) -> None:
    """Session 19's F7: customers read from a database table were summed up as "customers file:
    3,000 customers"; a table is called a table, a query a query (DuckDB here, PostgreSQL alike:
    the wording depends on the source, not the database)."""
    uri = tiny_duckdb(tmp_path / "crm.duckdb")
    events = [uri, "--events-table", "events"]
    code, output = invoke(*events, "--customers", uri, "--customers-table", "customers")
    assert code == 0, output
    said = " ".join(output.split())
    assert "; customers table: 3 customers" in said and "customers file" not in said
    query = "SELECT * FROM customers"
    code, output = invoke(*events, "--customers", uri, "--customers-query", query)
    assert code == 0, output
    assert "; customers query: 3 customers" in " ".join(output.split())


def test_the_summary_says_one_as_one(tmp_path: Path) -> None:
    """It read "1 events of 1 customers ...; customers file: 1 customers (1 customer ids of
    the events are not in it)"."""
    events = write_csv(tmp_path / "e.csv", "customer_id,ts,event_type", "c1,2024-03-01,visit")
    people = write_csv(tmp_path / "c.csv", "customer_id,region", "c2,north")
    code, output = invoke(str(events), "--customers", str(people))
    assert code == 0, output
    assert (
        "valid: 1 event of 1 customer, 2024-03-01 to 2024-03-01 (visit 1); customers file: "
        "1 customer (1 customer id of the events is not in it)"
    ) in " ".join(output.split())


def test_every_error_is_listed_and_exit_is_1(tmp_path: Path) -> None:
    code, output = invoke(str(bad_corpus(tmp_path)))
    assert code == 1
    assert "16 errors" in output
    assert "1 warning" in output
    assert "invalid: 16 errors" in output
    for text in (
        "customer_id is empty",
        "control characters",
        "unreadable value: expected ISO 8601",
        "timestamp after the current time",
        "unknown event type",
        "unknown channel",
        "negative value",
        "amount is required for order, return events",
        "score of a survey outside 0-10",
        "not a number (e.g. 'abc')",
        "not valid UTF-8",
        "ref_id is required",
        "score of a review outside 1-5",
        "timestamp is empty",
        "event_type is empty",
        "exact duplicate of an earlier row",
    ):
        assert text in output, text


def test_duplicates_warn_but_pass(tmp_path: Path) -> None:
    line = "c1,2024-01-01,visit,web,,,,"
    code, output = invoke(str(write_csv(tmp_path / "d.csv", HEADER, line, line)))
    assert code == 0, output
    assert "1 warning" in output
    assert "valid: 2 events of 1 customer," in output


def test_customers_errors_fail_too(tmp_path: Path) -> None:
    customers = write_csv(tmp_path / "c.csv", "customer_id,customer_type", "c1,martian")
    code, output = invoke(str(DATA / "events_tiny.csv"), "--customers", str(customers))
    assert code == 1
    assert "unknown customer type" in output


def test_markup_in_values_is_printed_as_is(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "m.csv", HEADER, "c1,2024-01-01,[bold]x[/bold],web,,,,")
    code, output = invoke(str(path))
    assert code == 1
    assert "'[bold]x[/bold]'" in output


def _both_ways(monkeypatch: pytest.MonkeyPatch, calls: list[str], *args: str) -> tuple[int, str]:
    """Run the command with the events in memory, then staged (GUANXI_FEATURES_IN_MEMORY_EVENTS
    above and below their rows), check which way each run took and that both print the same."""
    results = []
    for threshold, way in [(1_000_000, "in memory"), (0, "staged")]:
        monkeypatch.setenv("GUANXI_FEATURES_IN_MEMORY_EVENTS", str(threshold))
        get_settings.cache_clear()
        calls.clear()
        results.append(invoke(*args))
        assert calls == [way], threshold
    get_settings.cache_clear()
    assert results[1] == results[0]
    return results[0]


def test_staged_csv_prints_what_in_memory_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, input_paths: list[str]
) -> None:
    lines = (DATA / "events_tiny.csv").read_text(encoding="utf-8").splitlines()
    events = write_csv(tmp_path / "events.csv", *lines, lines[-1])  # a duplicate: a warning
    customers = write_csv(tmp_path / "c.csv", "customer_id,customer_type", "c1,consumer", "c9,")
    code, output = _both_ways(monkeypatch, input_paths, str(events), "--customers", str(customers))
    assert code == 0, output
    assert "1 warning" in output
    assert "exact duplicate of an earlier row" in output
    assert (
        "valid: 9 events of 3 customers, 2024-03-01 to 2024-03-07 (email_open 2, complaint 1, "
        "complaint_resolved 1, order 1, return 1, review 1, survey 1, visit 1); customers file: "
        "2 customers "
        "(2 customer ids of the events are not in it)"
    ) in output


def test_staged_parquet_directory_prints_what_in_memory_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, input_paths: list[str]
) -> None:
    rows = pl.read_csv(DATA / "events_tiny.csv", infer_schema=False)
    parts = tmp_path / "events"
    parts.mkdir()
    rows.head(5).write_parquet(parts / "part-0.parquet")
    rows.tail(3).write_parquet(parts / "part-1.parquet")
    code, output = _both_ways(
        monkeypatch, input_paths, str(parts), "--customers", str(DATA / "customers_tiny.csv")
    )
    assert code == 0, output
    assert "valid: 8 events of 3 customers, 2024-03-01 to 2024-03-07" in output
    assert "customers file: 3 customers" in output
    assert "not in it" not in output


def test_staged_csv_names_a_bad_late_row_as_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, input_paths: list[str]
) -> None:
    good = [f"c{i},2024-01-{1 + i % 28:02d},visit,web,,,," for i in range(3010)]
    events = write_csv(tmp_path / "late.csv", HEADER, *good[:3000], "c7,yesterday,visit,web,,,,")
    with events.open("a", encoding="utf-8") as rest:
        rest.write("\n".join(good[3000:]) + "\n")
    code, output = _both_ways(monkeypatch, input_paths, str(events))
    assert code == 1
    assert "invalid: 1 error\n" in output
    assert "warning" not in output
    row = next(line for line in output.splitlines() if "unreadable value" in line)
    assert [cell.strip() for cell in row.split("│")[1:4]] == [str(events), "ts", "3001"]
    assert "expected ISO 8601" in row
    assert "'yesterday'" in row


@pytest.mark.slow
def test_real_process(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(GUANXI), "data", "validate", str(bad_corpus(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "250"},
    )
    assert result.returncode == 1, result.stderr
    assert "16 errors" in result.stdout
    assert "not a number (e.g. 'abc')" in result.stdout
