"""The ``guanxi`` command line.

Each command lives with its job in a module of :mod:`pipelines`; this module only assembles them.
"""

from __future__ import annotations

import calendar
import importlib
import os
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Final, get_args

import typer
from typer.core import TyperArgument, TyperCommand, TyperOption

from pipelines.console import quiet_store_setup

__all__ = ["DAY_FORM", "DAY_FORMAT", "app", "main", "parse_day"]

app = typer.Typer(
    name="guanxi",
    help="guanxi: churn and propensity scores for CRM teams.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
data_app = typer.Typer(help="Sample data and validation of events files.", no_args_is_help=True)
features_app = typer.Typer(
    help="Point-in-time feature snapshots in the store.", no_args_is_help=True
)
campaign_app = typer.Typer(
    help="Recorded campaigns: outcomes with a control group, and what they returned.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")
app.add_typer(campaign_app, name="campaign")
audit_app = typer.Typer(help="The service's tamper-evident audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


class _Argument(TyperArgument):
    """A positional argument whose help reads as the options' does: ``PATH``, ``<path>...``.

    Typer 0.29 writes a required argument in braces on the usage line (``{PATH}``) and a list
    of paths' type as ``<list[Path]>``; this writes ``PATH`` (``[PATH]...`` when optional and
    repeated, as before) and ``<path>...``, like ``--mapping <path>``.
    """

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        """Write the argument on the usage line: ``PATH``, ``[PATH]`` if optional, ``...`` if many.

        Parameters
        ----------
        ctx : typer.Context
            The command's context.

        Returns
        -------
        list of str
            The one usage piece.
        """
        name = self.display_name_raw.upper()
        name = name if self.required else f"[{name}]"
        return [f"{name}..." if self.nargs != 1 else name]

    def display_type(self, ctx: Any) -> str:
        """Write the type column: for a list of paths, one element's type, then ``...``.

        Parameters
        ----------
        ctx : typer.Context
            The command's context.

        Returns
        -------
        str
            ``<path>...`` for a list of paths; otherwise Typer's own (``<str>``).
        """
        descriptor = self.type_descriptor
        elements = get_args(descriptor.annotation) if descriptor.is_list else ()
        if elements and isinstance(elements[0], type) and issubclass(elements[0], Path):
            return "<path>..."
        return super().display_type(ctx)


DAY_FORMAT: Final = "%Y-%m-%d"
"""The ``formats`` a day option declares (``typer.Option(formats=[DAY_FORMAT])``)."""

DAY_FORM: Final = "YYYY-MM-DD"
"""How help and errors write the form of a day."""

_EXAMPLE_DAY: Final = "2025-01-31"
_DIGITS: Final = re.compile(r"(\d+)-(\d+)-(\d+)")


def _why_not_a_day(text: str) -> str:
    """Say why text in the form of a day is not one (no month 13, February's 29th), or ""."""
    parts = _DIGITS.fullmatch(text.strip())
    if parts is None:
        return ""
    year, month, day = (int(p) for p in parts.groups())
    if len(parts[1]) != 4 or len(parts[2]) > 2 or len(parts[3]) > 2:
        return ""  # not the form: said as such
    if year < 1:
        return "there is no year 0000"
    if not 1 <= month <= 12:
        return f"there is no month {parts[2]} (months are 01 to 12)"
    if day < 1:
        return f"there is no day {parts[3]} (days start at 01)"
    days = calendar.monthrange(year, month)[1]
    return f"{calendar.month_name[month]} {year} has {days} days" if day > days else ""


def parse_day(text: str) -> datetime:
    """Read a day option's value (``--as-of 2025-12-31``), or say in our words why not.

    Typer's own message ("'2025-13-01' does not match the formats '%Y-%m-%d'") named a format
    code rather than the form, and not what was wrong with a date that is impossible.

    Parameters
    ----------
    text : str
        The value given.

    Returns
    -------
    datetime.datetime
        Midnight of the day, as Typer's ``formats`` gives it.

    Raises
    ------
    typer.BadParameter
        Naming the value, the form (YYYY-MM-DD) and, for an impossible date, why (no month 13,
        February 2025 has 28 days); Typer prefixes the option ("Invalid value for '--as-of'").
    """
    try:
        return datetime.strptime(text, DAY_FORMAT)
    except ValueError:
        pass
    why = _why_not_a_day(text)
    if why:
        raise typer.BadParameter(
            f"{text!r} is not a date: {why}; the form is {DAY_FORM}, e.g. {_EXAMPLE_DAY}."
        )
    raise typer.BadParameter(
        f"{text!r} is not a date in the form {DAY_FORM} (e.g. {_EXAMPLE_DAY})."
    )


class _DayOption(TyperOption):
    """A day option (``formats=[DAY_FORMAT]``) read by :func:`parse_day`, shown as a day's form.

    One type for every command's day options (``--as-of``, ``--start``, ``--end``): the commands
    declare ``datetime`` with ``formats=[DAY_FORMAT]`` as Typer documents it, and
    :class:`_Command` makes each such option this one.
    """

    def process_value(self, ctx: Any, value: Any) -> Any:
        """Read a given day with :func:`parse_day`; a default (already a datetime) as it is.

        Parameters
        ----------
        ctx : typer.Context
            The command's context.
        value : Any
            The value given (text), or the default.

        Returns
        -------
        Any
            Typer's processing of the day (a datetime, or None when not given).
        """
        if isinstance(value, str):
            value = parse_day(value)
        return super().process_value(ctx, value)

    def display_type(self, ctx: Any) -> str:
        """Write the type column as the form of a day.

        Parameters
        ----------
        ctx : typer.Context
            The command's context.

        Returns
        -------
        str
            ``<YYYY-MM-DD>`` (Typer writes the format code, ``<%Y-%m-%d>``).
        """
        return f"<{DAY_FORM}>"


def _is_day(param: Any) -> bool:
    """Whether a parameter is a day option: a datetime read with ``formats=[DAY_FORMAT]``."""
    descriptor = getattr(param, "type_descriptor", None)
    return (
        type(param) is TyperOption
        and descriptor is not None
        and descriptor.is_datetime
        and list(descriptor.parameter_info.formats or ()) == [DAY_FORMAT]
    )


class _Command(TyperCommand):
    """A Typer command with :class:`_Argument` arguments and :class:`_DayOption` day options.

    Its positional arguments are shown as :class:`_Argument` shows them, and its day options are
    read and shown as :class:`_DayOption` does.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if type(param) is TyperArgument:
                param.__class__ = _Argument
            elif _is_day(param):
                param.__class__ = _DayOption


_COMMANDS: tuple[tuple[str, typer.Typer, str, str, str], ...] = (
    # (first command-line word, Typer app, command name, module, function)
    ("data", data_app, "validate", "pipelines.validate", "validate_command"),
    ("data", data_app, "sample", "pipelines.sample", "sample_command"),
    ("features", features_app, "build", "pipelines.snapshot", "build_command"),
    ("features", features_app, "export", "pipelines.snapshot", "export_command"),
    ("train", app, "train", "pipelines.train", "train_command"),
    ("promote", app, "promote", "pipelines.promote", "promote_command"),
    ("models", app, "models", "pipelines.promote", "models_command"),
    ("score", app, "score", "pipelines.score", "score_command"),
    ("value", app, "value", "pipelines.value", "value_command"),
    ("target", app, "target", "pipelines.target", "target_command"),
    ("campaign", campaign_app, "record", "pipelines.campaign", "record_command"),
    ("campaign", campaign_app, "list", "pipelines.campaign", "list_command"),
    ("campaign", campaign_app, "report", "pipelines.campaign", "report_command"),
    ("campaign", campaign_app, "uplift", "pipelines.campaign", "uplift_command"),
    ("drift", app, "drift", "pipelines.drift", "drift_command"),
    ("cycle", app, "cycle", "pipelines.cycle", "cycle_command"),
    ("serve", app, "serve", "pipelines.serve", "serve_command"),
    ("demo", app, "demo", "pipelines.demo", "demo_command"),
    ("audit", audit_app, "verify", "pipelines.audit", "verify_command"),
)
_registered: set[tuple[str, str]] = set()


def _register(first_word: str | None = None) -> None:
    """Attach job commands to the app, importing only the job modules that are needed.

    Parameters
    ----------
    first_word : str, optional
        The first command-line argument. When it names a command or group, only that one's job
        modules are imported, so ``guanxi data validate`` does not pay for loading MLflow and
        XGBoost; otherwise (``--help``, a typo) every command is attached.
    """
    known = {word for word, *_ in _COMMANDS}
    for word, parent, name, module, function in _COMMANDS:
        if first_word in known and word != first_word:
            continue
        if (word, name) in _registered:
            continue
        parent.command(name, cls=_Command)(getattr(importlib.import_module(module), function))
        _registered.add((word, name))


HELP_WIDTH: Final = 120
"""Columns of ``--help`` (and Typer's error panels) off a terminal, unless COLUMNS is set."""


def _help_width() -> None:
    """Lay ``--help`` out at :data:`HELP_WIDTH` columns in a pipe or a CI log.

    Off a terminal Rich falls back to 80 columns, where an option's help had about 20 and a
    database URI was cut (``duckdb:///path/fi…``). A terminal keeps its own width, and
    ``COLUMNS`` (or Typer's ``TERMINAL_WIDTH``) still decides when set.
    """
    import typer.rich_utils

    if sys.stdout.isatty() or os.environ.get("COLUMNS") or os.environ.get("TERMINAL_WIDTH"):
        return
    typer.rich_utils.MAX_WIDTH = HELP_WIDTH


def main() -> None:
    """Run the ``guanxi`` CLI."""
    # XGBoost's OpenMP threads spin while they wait; on a shared 2-core host that made 2 threads
    # 3-8x slower than 1. Passive waiting removes it (must be set before xgboost is imported).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    quiet_store_setup()
    _help_width()
    _register(next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None))
    app()
