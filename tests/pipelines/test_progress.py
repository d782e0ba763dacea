"""The jobs' progress bar fits the terminal's width: one line, count and times whole."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console
from rich.progress import TextColumn

from pipelines.progress import progress_bar


@pytest.mark.parametrize("columns", [80, 60])
def test_a_long_description_is_shortened_and_the_times_stay_whole(
    monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    monkeypatch.setenv(
        "COLUMNS", str(columns)
    )  # the terminal's width, as the jobs' console reads it
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system=None)
    assert console.width == columns
    description = "building features as of 2025-12-31 from 300,199 events"
    with progress_bar(console, description, TextColumn("buckets")) as progress:
        task = progress.add_task("x", total=64)
        progress.update(task, completed=12)
        progress.refresh()
    # each redraw: erase the line, draw the bar; it wrapped onto 3 lines at 80 columns, redrawn
    # below each other instead of in place
    drawn = [re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", d) for d in out.getvalue().split("\r")]
    bars = [d.strip("\n") for d in drawn if "12/64" in d]
    assert bars and all("\n" not in bar and len(bar) <= columns for bar in bars), bars
    assert bars[-1].startswith("building features") and "…" in bars[-1]  # shortened
    assert bars[-1].rstrip().endswith("12/64 buckets 0:00:00 -:--:--")  # never 0:0…


def test_a_description_that_fits_is_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system=None)
    with progress_bar(console, "building features as of 2025-12-31") as progress:
        progress.advance(progress.add_task("x", total=1))
    assert "building features as of 2025-12-31 " in out.getvalue() and "…" not in out.getvalue()
