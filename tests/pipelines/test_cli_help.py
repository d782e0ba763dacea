"""Every ``guanxi`` command's ``--help`` reads as plain text for the person at the terminal."""

from __future__ import annotations

import functools
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer
from rich.text import Text
from typer.testing import CliRunner

from pipelines import cli
from serving.settings import Settings

ROOT = Path(__file__).resolve().parents[2]

MARKUP = re.compile(r"``|:(?:mod|func|class|meth|attr|data):`")
"""reStructuredText of the code's docstrings, which a terminal shows as it is."""

BRACED = re.compile(r"\{(?:[A-Z_]+|[a-z_]{2,})\}")
"""An argument's name in braces, ``{PATH}`` or ``{path}``, as Typer 0.29 writes a required one."""


def _paths(command: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group below ``command``, as the words that name it."""
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        found += _paths(sub, (*path, name))
    return found


def _helps() -> dict[tuple[str, ...], str]:
    """Each command's and group's ``--help``, its whitespace folded (a copy per call)."""
    return dict(_rendered_helps())


@functools.cache
def _rendered_helps() -> dict[tuple[str, ...], str]:
    """Every ``--help``, rendered once for the module's tests (each takes a copy): rendering all
    of them took several seconds a test."""
    cli._register()
    runner = CliRunner()
    helps = {}
    for path in _paths(typer.main.get_command(cli.app)):
        out = runner.invoke(cli.app, [*path, "--help"], env={"COLUMNS": "200"})
        assert out.exit_code == 0, (path, out.output)
        helps[path] = " ".join(out.output.split())
    assert ("train",) in helps and ("data", "sample") in helps
    return helps


def test_no_help_shows_docstring_markup() -> None:
    for path, text in _helps().items():
        assert not MARKUP.search(text), (path, MARKUP.search(text))


def test_a_day_options_default_is_shown_as_a_day() -> None:
    """Not as the midnight timestamp Typer parses a day into."""
    helps = _helps()
    for path, text in helps.items():
        assert "00:00:00" not in text, path
    assert "2023-01-01" in helps["data", "sample"] and "2025-12-31" in helps["data", "sample"]


def test_positional_arguments_have_a_name_in_capitals() -> None:
    """``data validate`` takes its events as PATH and its ``--events-table`` names that PATH;
    ``audit verify`` takes part files as PATH, one or more; commands that take ``--events``
    still say so."""
    helps = _helps()
    validate = helps["data", "validate"]
    assert "Usage: guanxi data validate [OPTIONS] [PATH] Check events" in validate
    assert "{path}" not in validate
    assert "The events table (name or schema.name) of PATH (or --events)." in validate
    assert "--events <str> The events, as PATH" in validate  # heavy28: as every command's
    assert "Usage: guanxi audit verify [OPTIONS] [PATH]... Verify" in helps["audit", "verify"]
    assert "PATH <path>... Part files or directories" in helps["audit", "verify"]
    assert "The events table (name or schema.name) of --events." in helps["score",]


def test_no_help_shows_a_name_in_braces_or_a_python_type() -> None:
    """Typer 0.29 writes a required argument as ``{PATH}`` and a list of paths as
    ``<list[Path]>``; the help writes ``PATH`` and ``<path>...`` as the options do. (Braces
    in help text stay: ``event_types: {ORD: order}`` is YAML, ``reason_{i}_*`` a pattern.)"""
    for path, text in _helps().items():
        assert not BRACED.search(text), (path, BRACED.search(text))
        assert "list[" not in text, path


def _piped_help(*env: tuple[str, str]) -> list[str]:
    """``guanxi train --help`` as a pipe or a CI log gets it: standard output not a terminal."""
    clean = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TERMINAL_WIDTH")}
    out = subprocess.run(
        [sys.executable, "-c", "from pipelines.cli import main; main()", "train", "--help"],
        env={**clean, "PYTHONPATH": str(ROOT), **dict(env)},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.splitlines()


def test_help_off_a_terminal_is_wide_enough_to_read() -> None:
    """Off a terminal Rich laid --help out at 80 columns: about 20 for an option's help, and
    `duckdb:///path/fi…` cut. It takes cli.HELP_WIDTH columns, unless COLUMNS says otherwise."""
    lines = _piped_help()
    assert max(len(line) for line in lines) == cli.HELP_WIDTH
    text = "\n".join(lines)
    assert "…" not in text and "duckdb:///path/file.db" in text
    assert max(len(line) for line in _piped_help(("COLUMNS", "80"))) == 80


def _texts(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """Every help text below ``command`` as written in the code: commands' and parameters'."""
    texts = [(path, command.help or "")]
    texts += [(path, getattr(p, "help", None) or "") for p in command.params]
    for name, sub in getattr(command, "commands", {}).items():
        texts += _texts(sub, (*path, name))
    return texts


def test_no_help_loses_a_word_in_square_brackets() -> None:
    """``--help`` reads each text as Rich markup, where ``[spark]`` is a style tag: the
    ``--engine`` help said "needs the guanxi extra" for ``guanxi[spark]``. Every text keeps
    its brackets (escaped as ``\\[`` where Rich would take them)."""
    cli._register()
    for path, text in _texts(typer.main.get_command(cli.app)):
        text = inspect.cleandoc(text)
        assert Text.from_markup(text).plain == text.replace("\\[", "["), (path, text)
    assert "(needs the guanxi[spark] extra and Java 17)" in _helps()["train",]


def test_serve_help_says_what_dev_mode_turns_on() -> None:
    """``guanxi serve --help`` said "see /docs once it runs", but /docs is served in --dev only
    (or with GUANXI_API_DOCS=true), and --dev does more than "generate a key"."""
    text = _helps()["serve",]
    assert "see /docs once it runs" not in text
    assert "the API's docs at /docs with --dev" in text
    serve = typer.main.get_command(cli.app).commands["serve"]  # type: ignore[attr-defined]
    dev = next(p.help for p in serve.params if p.name == "dev")
    assert "/docs served, a session cookie sent over plain HTTP too" in dev
    assert Settings(dev=True).docs_enabled and not Settings(dev=False).docs_enabled
    assert not Settings(dev=True).secure_cookie


def test_cycle_help_says_the_reload_needs_an_admin_key() -> None:
    """--reload-url asks the server with the admin key of GUANXI_API_KEYS; without one the cycle
    did all its work and then said "GUANXI_API_KEYS holds no admin key"."""
    cycle = typer.main.get_command(cli.app).commands["cycle"]  # type: ignore[attr-defined]
    reload_url = next(p.help for p in cycle.params if p.name == "reload_url")
    assert "admin key of GUANXI_API_KEYS" in reload_url
