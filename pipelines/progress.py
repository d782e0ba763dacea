"""The progress bar jobs draw on standard error (``guanxi data sample``, ``features build``)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["progress_bar"]


def progress_bar(console: Console, description: str, *after_count: ProgressColumn) -> Progress:
    """Return a bar: description, bar, done of total, the given columns, elapsed and remaining.

    Parameters
    ----------
    console : rich.console.Console
        Where the bar is drawn (the jobs' status console, on standard error).
    description : str
        The text left of the bar; ``{task.description}`` and ``{task.fields[...]}`` are filled in.
    *after_count : rich.progress.ProgressColumn
        Columns shown after "done/total", e.g. a unit or a running count.

    Returns
    -------
    rich.progress.Progress
        Not started; use it as a context manager.
    """
    return Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        *after_count,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
