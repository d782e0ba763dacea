"""The jobs' progress bar keeps its count and times whole in an 80-column terminal."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import TextColumn

from pipelines.progress import progress_bar


def test_a_long_description_wraps_and_the_times_stay_whole() -> None:
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=False)
    description = "building features as of 2025-12-31 from 300,199 events"
    with progress_bar(console, description, TextColumn("buckets")) as progress:
        progress.advance(progress.add_task("x", total=1))
    text = out.getvalue()
    assert "…" not in text  # was "1/1 buckets 0:0… 0:0…"
    assert "1/1 buckets 0:00:00 0:00:00" in text
    assert " ".join(text.split()).count("2025-12-31 from 300,199 events") == 1  # wrapped whole
    assert max(len(line) for line in text.splitlines()) <= 80
