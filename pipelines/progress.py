"""The progress bar jobs draw on standard error (``guanxi data sample``, ``features build``)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column
from rich.text import Text

__all__ = ["progress_bar"]


class _Description(TextColumn):
    """The description: shortened with an ellipsis to the width the other columns leave."""

    def render(self, task: Task) -> Text:
        text = super().render(task)
        # cut to the width its column gets instead of wrapping onto more lines, which a terminal
        # redraws below each other rather than in place
        text.no_wrap, text.overflow = True, "ellipsis"
        return text


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
        Not started; use it as a context manager. One line as wide as the terminal: the
        description (shortened with an ellipsis when it does not fit) and the bar share what the
        count, the given columns and the times leave; those stay whole.
    """
    clock = Column(min_width=len("0:00:00"))
    return Progress(
        # a long description is cut to the terminal's width (one line a bar, redrawn in place),
        # never the count and the times (0:0…)
        _Description(description, table_column=Column(ratio=2)),
        BarColumn(bar_width=None, table_column=Column(ratio=1)),
        MofNCompleteColumn(table_column=Column(no_wrap=True)),
        *after_count,
        TimeElapsedColumn(table_column=clock),
        TimeRemainingColumn(table_column=clock),
        console=console,
        expand=True,  # the description and the bar share what the count and the times leave
    )
