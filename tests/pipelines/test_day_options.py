"""Every day option of every command reads and refuses a day in the same words.

Typer's own message was "Invalid value for '--as-of': Value error, '2025-13-01' does not match
the formats '%Y-%m-%d'.": a format code, not the form, and not why the date is impossible.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import pytest
import typer
from typer.core import TyperOption
from typer.testing import CliRunner

from pipelines import cli

WRONG_MONTH = "2025-13-01"


def _commands(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every command below ``command`` (groups' commands too), with the words that name it."""
    subs = getattr(command, "commands", {})
    found = [] if subs else [(path, command)]
    for name, sub in subs.items():
        found += _commands(sub, (*path, name))
    return found


def _day_options() -> list[tuple[tuple[str, ...], str]]:
    """(command words, option flag) of every option of every command that takes a day."""
    cli._register()
    found = []
    for path, command in _commands(typer.main.get_command(cli.app)):
        for param in command.params:
            descriptor = getattr(param, "type_descriptor", None)
            if isinstance(param, TyperOption) and descriptor and descriptor.is_datetime:
                found.append((path, max(param.opts, key=len)))
    return found


DAY_OPTIONS = _day_options()


def test_the_day_options_are_found() -> None:
    flags = {(" ".join(path), flag) for path, flag in DAY_OPTIONS}
    assert {("score", "--as-of"), ("data sample", "--start"), ("data sample", "--end")} <= flags
    assert {("train", "--as-of"), ("features build", "--as-of"), ("cycle", "--as-of")} <= flags
    assert len(flags) >= 11


def test_every_day_option_is_the_one_shared_type() -> None:
    cli._register()
    for path, command in _commands(typer.main.get_command(cli.app)):
        for param in command.params:
            descriptor = getattr(param, "type_descriptor", None)
            if isinstance(param, TyperOption) and descriptor and descriptor.is_datetime:
                assert type(param) is cli._DayOption, (path, param.opts)


@pytest.mark.parametrize(("path", "flag"), DAY_OPTIONS, ids=lambda v: str(v))
def test_every_day_option_says_an_impossible_date_in_our_words(
    path: tuple[str, ...], flag: str
) -> None:
    result = CliRunner().invoke(cli.app, [*path, flag, WRONG_MONTH], env={"COLUMNS": "200"})
    text = " ".join(result.output.split())
    assert result.exit_code == 2, text
    assert (
        f"Invalid value for '{flag}': '{WRONG_MONTH}' is not a date: there is no month 13 "
        "(months are 01 to 12); the form is YYYY-MM-DD, e.g. 2025-01-31." in text
    )
    assert "%Y" not in text and "Value error" not in text


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("2025-13-01", "'2025-13-01' is not a date: there is no month 13 (months are 01 to 12)"),
        ("2025-00-10", "'2025-00-10' is not a date: there is no month 00 (months are 01 to 12)"),
        ("2025-02-29", "'2025-02-29' is not a date: February 2025 has 28 days"),
        ("2024-02-30", "'2024-02-30' is not a date: February 2024 has 29 days"),
        ("2025-04-31", "'2025-04-31' is not a date: April 2025 has 30 days"),
        ("2025-04-00", "'2025-04-00' is not a date: there is no day 00 (days start at 01)"),
        ("0000-01-01", "'0000-01-01' is not a date: there is no year 0000"),
        ("2025/12/01", "'2025/12/01' is not a date in the form YYYY-MM-DD (e.g. 2025-01-31)."),
        ("31-12-2025", "'31-12-2025' is not a date in the form YYYY-MM-DD (e.g. 2025-01-31)."),
        ("yesterday", "'yesterday' is not a date in the form YYYY-MM-DD (e.g. 2025-01-31)."),
        ("2025-12-01T10:00", "'2025-12-01T10:00' is not a date in the form YYYY-MM-DD"),
        ("", "'' is not a date in the form YYYY-MM-DD"),
    ],
)
def test_parse_day_says_why(given: str, said: str) -> None:
    with pytest.raises(typer.BadParameter) as refused:
        cli.parse_day(given)
    assert said in refused.value.message


def test_parse_day_reads_what_typer_read() -> None:
    """The same days as ``formats=["%Y-%m-%d"]``: midnight, unpadded month and day included."""
    assert cli.parse_day("2025-12-31") == datetime(2025, 12, 31)
    assert cli.parse_day("2024-02-29") == datetime(2024, 2, 29)
    assert cli.parse_day("2025-1-5") == datetime(2025, 1, 5)


START = datetime(2023, 1, 1)


def test_a_good_day_and_the_default_still_work() -> None:
    """A day given is read, a default (already a datetime) is kept: data sample's window."""
    seen: dict[str, Any] = {}
    app = typer.Typer()

    def days(
        start: Annotated[datetime, typer.Option(formats=[cli.DAY_FORMAT])] = START,
        end: Annotated[datetime | None, typer.Option(formats=[cli.DAY_FORMAT])] = None,
    ) -> None:
        seen.update(start=start, end=end)

    app.command(cls=cli._Command)(days)
    app.command("other")(lambda: None)  # two commands: the first word names the command
    result = CliRunner().invoke(app, ["days", "--end", "2025-12-31"])
    assert result.exit_code == 0, result.output
    assert seen == {"start": START, "end": datetime(2025, 12, 31)}


def test_help_writes_a_days_form_not_a_format_code() -> None:
    out = CliRunner().invoke(cli.app, ["score", "--help"], env={"COLUMNS": "200"}).output
    assert "<YYYY-MM-DD>" in out and "%Y-%m-%d" not in out
