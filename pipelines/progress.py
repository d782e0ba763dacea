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
from rich.table import Column

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
        Not started; use it as a context manager. In a narrow terminal the description wraps;
        the count, the given columns and the times stay whole.
    """
    clock = Column(min_width=len("0:00:00"))
    return Progress(
        # a long description wraps, so that the count and the times are never cut (0:0…)
        TextColumn(description, table_column=Column(overflow="fold")),
        BarColumn(),
        MofNCompleteColumn(),
        *after_count,
        TimeElapsedColumn(table_column=clock),
        TimeRemainingColumn(table_column=clock),
        console=console,
    )
