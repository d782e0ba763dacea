"""The README and the docs say only what the ``guanxi`` CLI does: every command they show exists,
and every option they name is an option of that command.

Commands are read from the README's fenced code blocks (``\\`` continuations joined, leading
``NAME=value`` settings skipped) and inline code that starts with ``guanxi``, and from the code
blocks of the other documents; options named on their own in the README's prose
(`` `--trials` ``) must belong to a command the same section shows.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer

from pipelines import cli

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted([README, *(ROOT / "docs").glob("*.md"), *(ROOT / "bench").glob("*.md")])
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
OTHER_TOOLS = ("python -m", "pytest", "pip ", "uvicorn", "spark-submit")
"""Lines that show another program's options, not guanxi's."""


@dataclass(frozen=True)
class Shown:
    """A ``guanxi`` command as a document shows it."""

    where: str
    words: tuple[str, ...]


def _root() -> Any:
    cli._register()  # every command, as `guanxi --help` sees them
    return typer.main.get_command(cli.app)


def _resolve(group: Any, words: list[str]) -> tuple[Any, list[str], str]:
    """Follow sub-commands (Typer's click groups); return the command, the rest and its name."""
    command, name = group, ["guanxi"]
    while hasattr(command, "commands") and words and not words[0].startswith("-"):
        found = command.commands.get(words[0])
        assert found is not None, f"`{' '.join(name)}` has no command {words[0]!r}"
        command, name = found, [*name, words.pop(0)]
    return command, words, " ".join(name)


def _options(command: Any) -> set[str]:
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("--")}


def _commands(text: str, source: str, inline: bool = True) -> list[Shown]:
    """Every ``guanxi ...`` command of a document's text: code blocks (and inline code)."""
    found: list[Shown] = []
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", text, re.S | re.M):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            for part in re.split(r"&&|;|\|", line.split("#")[0]):
                words = shlex.split(part)
                while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
                    words.pop(0)
                if words and (words[0] == "guanxi" or words[0].endswith("/guanxi")):
                    found.append(Shown(f"{source}: {part.strip()}", tuple(words[1:])))
    for code in re.findall(r"`(guanxi [^`]+)`", text) if inline else ():
        found.append(Shown(f"{source}: {code}", tuple(shlex.split(code)[1:])))
    return found


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_shown_exists_with_its_options(path: Path) -> None:
    root = _root()
    shown = _commands(path.read_text(encoding="utf-8"), path.name, inline=path == README)
    if path == README:
        assert len(shown) > 20
    for command in shown:
        resolved, rest, name = _resolve(root, list(command.words))
        unknown = [
            w.split("=")[0]
            for w in rest
            if w.startswith("--") and w.split("=")[0] not in _options(resolved)
        ]
        assert not unknown, f"{command.where}: `{name}` has no option {', '.join(unknown)}"


def test_options_named_in_the_readme_prose_belong_to_a_command_of_their_section() -> None:
    root = _root()
    sections = re.split(r"^## ", README.read_text(encoding="utf-8"), flags=re.M)
    checked = 0
    for section in sections:
        title = section.splitlines()[0] if section else ""
        names = set()
        for command in _commands(section, "README.md"):
            resolved, _, _ = _resolve(root, list(command.words))
            names |= _options(resolved)
        for line in section.splitlines():
            if any(tool in line for tool in OTHER_TOOLS) or line.startswith(("guanxi", "  ")):
                continue
            for code in re.findall(r"`([^`]+)`", line):
                if code.startswith("guanxi "):
                    continue
                for option in OPTION.findall(code):
                    checked += 1
                    assert option in names, (
                        f"README section {title!r} names {option}, which no command it shows has"
                    )
    assert checked > 10


SNAPSHOT_BUILDERS = ("features build", "score", "value", "train", "cycle")
"""Commands that build (and keep) a day's snapshot from ``--events`` when the store has none."""


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_command_reading_a_sample_s_events_gives_its_customers_too(path: Path) -> None:
    """The README's ``guanxi features build --events data/events.parquet --as-of 2025-12-31``
    replaced the day's snapshot with one built without the customers file: every profile feature
    (``is_business``, ``signup_tenure_days``, ``region``) empty, churn scores moved by up to 0.12.
    A shown command that reads a sample's ``events.<format>`` also reads its ``customers.<format>``.
    """
    root = _root()
    for command in _commands(path.read_text(encoding="utf-8"), path.name, inline=False):
        _, rest, name = _resolve(root, list(command.words))
        if name.removeprefix("guanxi ") not in SNAPSHOT_BUILDERS or "--events" not in rest:
            continue
        events = rest[rest.index("--events") + 1]
        folder, _, file = events.rpartition("/")
        if not re.fullmatch(r"events\.(parquet|csv)", file):
            continue  # a database, a folder of files, `...`
        customers = f"{folder}/customers.{file.split('.')[1]}".lstrip("/")
        given = rest[rest.index("--customers") + 1] if "--customers" in rest else None
        assert given == customers, (
            f"{command.where}: reads {events} without --customers {customers}"
        )
