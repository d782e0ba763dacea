"""What the jobs print: their own steps and results, not the libraries' progress lines.

Optuna reports every trial at INFO level (its parameters included) and MLflow reports database
migrations, signature checks and registrations; all of it is kept in MLflow already (each trial
is a nested run with its parameters and value, each registration a model version). During a job
:func:`quiet_libraries` keeps those INFO lines off the console; warnings and errors still show.
:func:`quiet_store_setup` does the same, for the whole command, with the lines MLflow prints when
it creates the tables of a new tracking store ("Creating initial MLflow database tables...",
"Updating database tables", Alembic's migration steps): the first command on a new
``GUANXI_HOME`` printed them, whichever it was.
:func:`fits` tells whether a table fits the console's width uncut, for the commands that lay a
wide table out another way on a narrow terminal; :func:`fitted_table` is the usual other way (the
boxed table when it fits, else a compact one with its headings broken into words), built by
:func:`layout_table`. :func:`warn_unsigned` is the one warning of the
commands that keep a signed table in the store when ``GUANXI_STORE_KEY`` is not set.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
from collections.abc import Collection, Iterator, Sequence

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table

__all__ = [
    "fits",
    "fitted_table",
    "layout_table",
    "quiet_libraries",
    "quiet_store_setup",
    "warn_unsigned",
]

_LIBRARY_LOGGERS = ("mlflow", "alembic")
"""Loggers whose INFO lines are progress, not results."""

_STORE_SETUP_LOGGERS = ("mlflow.store.db.utils", "alembic")
"""The loggers of a tracking store's creation: MLflow's ``mlflow.store.db.utils`` (its
``_initialize_tables`` and ``_upgrade_db``) and Alembic's, whose migrations it runs."""


def quiet_store_setup() -> None:
    """Keep a new tracking store's INFO lines off the console from now on; warnings still show.

    MLflow creates the tables of a new SQLite tracking store on its first use, which can be any
    command's first call to the registry (``guanxi models``, ``score``, ``value``, ``serve``...),
    so the CLI calls this once before the command runs rather than around each call.
    """
    for name in _STORE_SETUP_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Keep Optuna's and MLflow's INFO lines off the console while the block runs.

    Optuna's verbosity goes to WARNING; MLflow's event stream (which also prints "Successfully
    registered model ..." outside logging) is switched off, with a handler that still shows
    MLflow's warnings and errors on standard error. Everything is put back afterwards.

    Yields
    ------
    None
        Nothing; run the noisy work inside the block.
    """
    import optuna  # imported here: the commands that only lay out tables need neither library
    from mlflow.utils import logging_utils

    verbosity = optuna.logging.get_verbosity()
    levels = {name: logging.getLogger(name).level for name in _LIBRARY_LOGGERS}
    warnings = logging.StreamHandler(sys.stderr)
    warnings.setLevel(logging.WARNING)
    warnings.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    mlflow_logger = logging.getLogger("mlflow")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in _LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    mlflow_logger.addHandler(warnings)
    logging_utils.disable_logging()
    try:
        yield
    finally:
        logging_utils.enable_logging()
        mlflow_logger.removeHandler(warnings)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        optuna.logging.set_verbosity(verbosity)


def fits(console: Console, renderable: RenderableType) -> bool:
    """Tell whether ``renderable`` prints within ``console``'s width without cutting a cell.

    Parameters
    ----------
    console : rich.console.Console
        Where it would be printed.
    renderable : rich.console.RenderableType
        A table or other renderable, measured at its natural (unbounded) width.

    Returns
    -------
    bool
        True when its natural width is at most the console's.
    """
    unbounded = console.options.update_width(1_000_000)
    return console.measure(renderable, options=unbounded).maximum <= console.width


_BREAKS = re.compile(r"(?<=_)|(?<= )")
"""Where a compact table's heading may break: after an underscore or a space."""


def layout_table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    names: Collection[str],
    *,
    compact: bool = False,
) -> Table:
    """Build a boxed table, or a compact one: no box edges, headings broken into words.

    Parameters
    ----------
    title : str
        The title.
    columns : sequence of str
        The headings, kept whole (column names such as ``expected_return``).
    rows : sequence of sequence of str
        The cells, already formatted; they are never wrapped or cut.
    names : collection of str
        The headings of the columns of names, left-aligned; the others hold figures.
    compact : bool, default False
        Lay it out compactly: a rule under the headings, no vertical lines, one space of padding
        between columns, and each heading broken after its underscores and spaces
        (``expected_`` over ``return``, ``at`` over ``risk``).

    Returns
    -------
    rich.table.Table
        The table.
    """
    if compact:
        table = Table(
            title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True
        )
    else:
        table = Table(title=title)
    for column in columns:
        table.add_column(
            "\n".join(part.strip() for part in _BREAKS.split(column)) if compact else column,
            justify="left" if column in names else "right",
            no_wrap=True,
        )
    for row in rows:
        table.add_row(*row)
    return table


def fitted_table(
    console: Console,
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    names: Collection[str],
) -> Table:
    """Return the boxed table when it fits ``console`` uncut, else the compact one.

    At 80 columns (a pipe, a CI log) a boxed table a few characters too wide had its first
    column cut (``potential_loya…``); the compact layout (:func:`layout_table`) saves about three
    characters a column. A caller whose compact table may still not fit checks :func:`fits`.

    Parameters
    ----------
    console : rich.console.Console
        Where it is printed (its width decides).
    title : str
        The title.
    columns : sequence of str
        The headings.
    rows : sequence of sequence of str
        The cells, formatted.
    names : collection of str
        The headings of the left-aligned columns of names.

    Returns
    -------
    rich.table.Table
        The table to print.
    """
    table = layout_table(title, columns, rows, names)
    if fits(console, table):
        return table
    return layout_table(title, columns, rows, names, compact=True)


def warn_unsigned(console: Console, table: str, effect: str, *, skip: str | None) -> None:
    """Warn that ``table`` goes into the store unsigned, when ``GUANXI_STORE_KEY`` is not set.

    The store signs score tables, value tables, plans and campaigns with the key, and a server
    started with one (as it must be outside ``--dev``) refuses those written without it: a
    command writing them says so before it works, rather than leave it to the server's log. The
    warning names the command's own way to keep nothing (``skip``); ``guanxi cycle`` and
    ``guanxi campaign record`` have none, and the cycle's sent its users to a ``--no-store`` it
    refuses.

    Parameters
    ----------
    console : rich.console.Console
        Where the warning goes.
    table : str
        What the command keeps, e.g. ``"the value table"``.
    effect : str
        What such a server does with it, e.g. ``"does not serve it"``.
    skip : str or None
        The command's option that keeps nothing in the store, e.g. ``"--no-store"``; None for a
        command without one.
    """
    from serving.settings import get_settings

    if get_settings().store_key.get_secret_value():
        return
    console.print(
        f"[yellow]warning:[/yellow] GUANXI_STORE_KEY is not set: {table} goes into the store "
        f"unsigned, and a server started with a store key (required outside --dev) {effect}; "
        "run this with the server's GUANXI_STORE_KEY" + (f" (or {skip})" if skip else "")
    )
