"""``guanxi data validate`` through CliRunner and as a real process."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from pipelines.validate import validate_command
from tests.features.test_events import HEADER, bad_corpus, write_csv

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
    assert "valid: 2 events of 1 customers" in output


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
