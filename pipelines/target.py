"""``guanxi target``: a budgeted campaign plan from the day's customer values.

``guanxi target --budget B --offers offers.yaml --as-of DATE --out plan.csv`` reads the value
table of ``--as-of`` from the store (``guanxi value`` writes it), the snapshot of that day if the
store has it, and the campaigns recorded with ``guanxi campaign record`` (their measured rates
replace the offers file's; the uplift models ``guanxi campaign uplift`` registered value an offer
where they beat the churn score), and solves the plan (:func:`models.planning.plan_from_store`).

* ``--out`` gets the plan's rows (``customer_id, offer, channel, cost, expected_value, segment,
  value_tier``), as a file or, with ``--out-table``, a database table (:mod:`pipelines.connectors`);
  beside it the summaries per segment and per offer and the "next best use of the remaining
  budget" (``<name>.summary.csv`` next to a file, table ``<out-table>_summary`` in a database),
  with a ``next_best_limit`` row per limit the next best use goes past; their money (``cost``,
  ``expected_value``, ``investment``, ``expected_return``) in cents, the ratios
  (``return_per_unit``, ``roi``) as computed;
* the store keeps the plan with its summaries for serving (:meth:`features.store.Store.write_plan`),
  replacing the plan of its day and saying which (its customers, when it was made, read checked
  against its signed manifest); an empty plan is never kept over one that contacts someone, nor
  over one the store's key does not vouch for (whom it contacts is not known): refused before
  anything is written (``--no-store`` writes it to ``--out`` alone), unless ``--keep-empty`` asks
  for it, which clears the day's plan on purpose;
* ``--report`` also prints the textbook segment ROI table and the comparison with spending the
  same budget evenly per segment or by churn score alone; without ``--budget`` and ``--offers``
  it prints that report for the plan the store holds for ``--as-of`` (the latest by default).

``--budget`` must be above 0: a budget of 0 contacts nobody, and is refused before anything is read.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from features.contracts import MISSING, counted
from features.database import DatabaseError, is_database
from features.formatting import format_percent, money_text
from features.store import PlanInfo, Store, TamperedTableError, UnsignedTableError
from models.customer_rows import RepeatedCustomersError
from models.knapsack import Method
from models.offers import OffersFileError, load_offers, not_a_number
from models.planning import NoValuesError, PlanRun, keep_plan, method_note, plan_from_store
from models.registry import configure_tracking
from models.targeting import (
    BUDGET_TOO_LARGE,
    MAX_BUDGET,
    NO_BUDGET,
    NO_CHURN_COMPARISON,
    SUMMARY_COLUMNS,
    Plan,
    in_cents,
    next_limits_note,
    summary_table,
)
from pipelines import connectors
from pipelines.campaign import read_stored_plan_with_info
from pipelines.console import fits, fitted_table, layout_table, warn_unsigned

__all__ = [
    "check_budget",
    "parse_budget",
    "print_plan",
    "print_report",
    "summary_output",
    "target_command",
]

_METHODS = ("auto", "exact", "lagrangian")


def summary_output(out: str, out_table: str | None) -> tuple[str, str | None]:
    """Return where the summaries go next to the plan's ``--out`` / ``--out-table``.

    Parameters
    ----------
    out : str
        The plan's file or database.
    out_table : str, optional
        The plan's table.

    Returns
    -------
    tuple of (str, str or None)
        ``<stem>.summary<suffix>`` beside a file, or the same database and ``<table>_summary``.
    """
    if is_database(out) and out_table:
        return out, f"{out_table}_summary"
    path = Path(out)
    return str(path.with_name(f"{path.stem}.summary{path.suffix}")), None


def _tranche(plan: Plan) -> str:
    """Say why the next best use's budget is not the one left over: a further tenth of it.

    "Next best use: by segment (budget 500.00)" under a plan spending 5,000.00 of 5,000.00 left
    the reader to find where the 500.00 came from.
    """
    left = plan.budget - plan.investment
    if math.isclose(plan.next_best.budget, left, abs_tol=0.005):
        return ""
    why = "the budget is spent" if left < 0.005 else f"the {_money(left)} left buys no contact"
    return f": a further tenth, as {why}"


def _money(value: float | None) -> str:
    return MISSING if value is None else money_text(value)


def _ratio(value: float | None) -> str:
    return MISSING if value is None else f"{value:.2f}"


_NAMES: Final = ("segment", "offer", "channel", "allocation")
"""Columns of names (left-aligned); the others hold figures."""


_LONG_NAMES: Final = ("segment", "offer")
"""Name columns whose values can be long (``cross_sell_accessories``): never broken."""


def _table(
    console: Console, title: str, rows: list[dict[str, Any]], keys: list[str]
) -> RenderableType:
    """Lay plan rows out for ``console``: boxed when they fit, else compact, else stacked.

    On a console too narrow for the boxed table (80 columns and a plan by offer), the headings
    wrap after their underscores and the figures keep their width; when even that leaves no
    room for the long names (segment, offer) on the figures' line, each name gets a line of its
    own above its figures. Names are never broken across lines and nothing is cut short with
    an ellipsis.
    """
    cells = []
    for row in rows:
        line = []
        for key in keys:
            value = row.get(key)
            if key in _NAMES:
                line.append(str(value))
            elif key in ("contacts", "customers"):
                line.append(f"{int(value or 0):,}")
            elif key in ("return_per_unit", "roi"):
                line.append(_ratio(value))
            else:
                line.append(_money(value))
        cells.append(line)
    table = fitted_table(console, title, keys, cells, _NAMES)
    if fits(console, table):
        return table
    long = [i for i, key in enumerate(keys) if key in _LONG_NAMES]
    names = ["  ".join(line[i] for i in long) for line in cells]
    blank = [[("" if i in long else cell) for i, cell in enumerate(line)] for line in cells]
    return _Stacked(layout_table(title, keys, blank, _NAMES, compact=True), names)


class _Stacked:
    """A compact table whose long names each stand on a line of their own above their figures.

    Parameters
    ----------
    table : rich.table.Table
        The compact table, its long-name cells blank; each row renders on one line.
    names : list of str
        Each row's long names, in row order.
    """

    def __init__(self, table: Table, names: list[str]) -> None:
        self.table = table
        self.names = names

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """Yield the title and headings, then each row's name line and figures line."""
        lines = console.render_lines(self.table, options, pad=False)
        head = len(lines) - len(self.names)
        for line in lines[:head]:
            yield from line
            yield Segment.line()
        for name, line in zip(self.names, lines[head:], strict=True):
            yield Text(name)
            yield from line
            yield Segment.line()


def print_plan(console: Console, run: PlanRun, method: Method = "auto") -> None:
    """Print a plan's totals, its summaries and the next best use of the remaining budget.

    Parameters
    ----------
    console : rich.console.Console
        Where to print.
    run : models.planning.PlanRun
        The plan.
    method : {"auto", "exact", "lagrangian"}, default "auto"
        The method asked for: a plan not solved by HiGHS as asked says why
        (:func:`models.planning.method_note`).
    """
    plan = run.plan
    console.print(
        f"plan as of {run.as_of}: {counted(plan.rows.height, 'customers contacted')}, investment "
        f"{_money(plan.investment)} of {_money(plan.budget)}, expected value after costs "
        # a share of the best plan, as the plan page shows it since 6d6c07a, not 0.00e+00
        f"{_money(plan.expected_value)} ({plan.method}, optimality gap "
        f"{format_percent(plan.gap, 2)})"
    )
    said = method_note(run, method)
    if said is not None:  # qa50: "HiGHS exactly when small" counts pairs, not contacts
        console.print(f"[yellow]note:[/yellow] {said}")
    if plan.reason:
        console.print(f"[yellow]empty plan:[/yellow] {plan.reason}")
    keys = list(SUMMARY_COLUMNS)
    shown = [("", plan.allocation)]
    if plan.next_reason:  # an empty table said nothing of why
        shown_next = f"[bold]Next best use[/bold] of the remaining budget: none; {plan.next_reason}"
    else:
        shown.append(("Next best use: ", plan.next_best))
        shown_next = ""
    for name, allocation in shown:
        budget = f" (budget {_money(allocation.budget)}{_tranche(plan)})" if name else ""
        console.print(
            _table(
                console,
                f"{name}by segment{budget}",
                allocation.by_segment.to_dicts(),
                ["segment", *keys],
            )
        )
        console.print(
            _table(
                console,
                f"{name}by offer",
                allocation.by_offer.to_dicts(),
                ["offer", "channel", *keys],
            )
        )
    if shown_next:
        console.print(shown_next)
    lifted = next_limits_note(plan.next_limits)
    if lifted is not None:  # it read as what the plan could still buy under its caps
        console.print(f"[yellow]note:[/yellow] {lifted}")
    for note in run.notes:
        console.print(f"[yellow]note:[/yellow] {note}")


def print_report(console: Console, comparison: list[dict[str, Any]]) -> None:
    """Print the segment ROI table of each allocation (optimiser, even, churn score).

    Parameters
    ----------
    console : rich.console.Console
        Where to print.
    comparison : list of dict
        Rows of :func:`models.targeting.compare_allocations`.
    """
    keys = ["segment", "customers", "investment", "expected_return", "return_per_unit"]
    titles = {
        "optimiser": "Segment ROI: the optimiser's allocation",
        "even": "Segment ROI: the same budget spent evenly per segment",
        "churn_score": "Segment ROI: the same budget spent by churn score alone",
    }
    totals = {}
    for allocation, title in titles.items():
        rows = [r for r in comparison if r["allocation"] == allocation]
        if not rows and allocation == "churn_score":  # was the value table's order, so titled
            console.print(f"Segment ROI: {NO_CHURN_COMPARISON}")
            continue
        console.print(_table(console, title, rows, keys))
        totals[allocation] = next((r for r in rows if r["segment"] == "total"), None)
    best = totals["optimiser"]
    if best is not None:
        for other in ("even", "churn_score"):
            row = totals.get(other)
            if row is not None and row["expected_return"]:
                # the returns alone favoured a spend that costs more than it returns
                console.print(
                    f"optimiser / {other.replace('_', ' ')}: expected return "
                    f"{best['expected_return'] / row['expected_return']:.2f}x "
                    f"({_money(best['expected_return'])} against "
                    f"{_money(row['expected_return'])}), investing {_money(best['investment'])} "
                    f"against {_money(row['investment'])}: after costs "
                    f"{_money(best['expected_return'] - best['investment'])} against "
                    f"{_money(row['expected_return'] - row['investment'])}"
                )


def _stored_report(console: Console, store: Store, as_of: date | None) -> None:
    days = store.list_plans()
    day = as_of or (days[-1] if days else None)
    try:  # its figures and summaries read with its rows: shown only when the key vouches for them
        stored = read_stored_plan_with_info(store, day) if day else None
    except (UnsignedTableError, TamperedTableError) as exc:
        console.print(f"[red]cannot show the plan:[/red] {exc}")
        raise typer.Exit(1) from exc
    if stored is None:
        # was the same words when the store had a plan of another day, whose days were unsaid
        held = f"; the latest stored plan is as of {days[-1]}" if days else ""
        console.print(  # the day asked for was "--as-of DATE" in the command that plans it
            "[red]no plan in the store"
            + (f" as of {day}" if day else "")
            + ":[/red] plan one with guanxi target --budget B --offers offers.yaml --as-of "
            + (day.isoformat() if day else "DATE")
            + held
        )
        raise typer.Exit(1)
    _, info = stored
    console.print(  # as a replaced plan is named: "1 customers", and the raw ISO time, were said
        f"{_previous(info)}: investment {_money(info.investment)} of {_money(info.budget)}, "
        f"expected value after costs {_money(info.expected_value)}"
    )
    print_report(console, info.summaries.get("comparison", []))


def parse_budget(text: str) -> float:
    """Read ``--budget``, saying how to write a number it is not (``1,000``, ``500 EUR``).

    It was Typer's "Input should be a valid number, unable to parse string as a number", which
    left the thousands separator to be found, as an offers file's was (0b53473).
    """
    try:
        return float(text)
    except ValueError:
        raise typer.BadParameter(not_a_number(text), param_hint="--budget") from None


def check_budget(budget: float, *, then: str = "") -> None:
    """Refuse a ``--budget`` that is no amount a campaign can spend (``guanxi target``, ``demo``).

    Parameters
    ----------
    budget : float
        The option's value.
    then : str, default ""
        Said after the reason, e.g. ``"; nothing read or written"``.

    Raises
    ------
    typer.BadParameter
        Naming ``--budget``: for nan and inf (not an amount of money), 0 or less
        (:data:`models.targeting.NO_BUDGET`) and above :data:`models.targeting.MAX_BUDGET`.
    """
    if not math.isfinite(budget):  # inf passed min=0 and ended in a traceback
        raise typer.BadParameter(f"{budget} is not an amount of money{then}", param_hint="--budget")
    if budget <= 0:  # 0 passed min=0 and replaced the day's stored plan with an empty one
        raise typer.BadParameter(f"{budget:g} {NO_BUDGET}{then}", param_hint="--budget")
    if budget > MAX_BUDGET:  # 1e30 was planned, and printed as float noise
        raise typer.BadParameter(f"{budget:g} {BUDGET_TOO_LARGE}{then}", param_hint="--budget")


def target_command(
    out: Annotated[
        str | None,
        typer.Option(
            "--out", help="The plan: a .csv or .parquet file, or a database URI with --out-table."
        ),
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(
            parser=parse_budget,
            help="What the campaign may spend, in money units; above 0, at most 1e13.",
        ),
    ] = None,
    offers: Annotated[
        Path | None, typer.Option(help="The offers file (YAML); see docs/examples/offers.yaml.")
    ] = None,
    as_of: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="Day of the value table to plan from (guanxi value); the latest by default.",
        ),
    ] = None,
    report: Annotated[
        bool,
        typer.Option(
            "--report",
            help="Also print the segment ROI table and the comparison with an even spend and "
            "with churn score alone; alone, print it for the plan in the store.",
        ),
    ] = False,
    method: Annotated[
        str, typer.Option(help="Knapsack method: auto, exact (HiGHS) or lagrangian.")
    ] = "auto",
    keep: Annotated[
        bool, typer.Option("--store/--no-store", help="Also keep the plan in the store.")
    ] = True,
    uplift: Annotated[
        bool,
        typer.Option(
            "--uplift/--no-uplift",
            help="Use the uplift models registered by guanxi campaign uplift where they beat the "
            "churn score on the Qini.",
        ),
    ] = True,
    out_table: connectors.OutTable = None,
    keep_empty: Annotated[
        bool,
        typer.Option(
            "--keep-empty",
            help="Keep a plan that contacts nobody over the day's stored plan: clears that one "
            "on purpose.",
        ),
    ] = False,
) -> None:
    """Plan a budgeted campaign: who gets which offer, through which channel, and its return."""
    from pipelines.days import after_today
    from serving.settings import get_settings

    console = Console()
    day = as_of.date() if as_of is not None else None
    future = after_today(day) if day is not None else None
    if future is not None:  # was told to run `guanxi value --as-of` that day, which refuses it
        shown = budget is None and offers is None and report
        said = "cannot show the plan" if shown else "cannot plan, nothing written"
        console.print(f"[red]{said}:[/red] {future}")
        raise typer.Exit(1)
    store = get_settings().store()  # plans signed with GUANXI_STORE_KEY when it is set
    if budget is None and offers is None:
        if not report:
            raise typer.BadParameter(
                "give --budget and --offers to plan, or --report to show the stored plan",
                param_hint="--budget",
            )
        _stored_report(console, store, day)
        return
    if budget is None or offers is None:
        missing = "--budget" if budget is None else "--offers"
        raise typer.BadParameter("planning needs both --budget and --offers", param_hint=missing)
    check_budget(budget, then="; nothing read or written")
    if method not in _METHODS:
        raise typer.BadParameter(f"{method!r}: choose {', '.join(_METHODS)}", param_hint="--method")
    if out is not None:
        connectors.check_output(out, out_table)
        summary = Path(summary_output(out, out_table)[0])
        if not is_database(out) and summary.is_dir():  # the plan was written, then a traceback
            raise typer.BadParameter(
                f"{summary}, where the summaries go beside the plan, is a directory: move it or "
                "give another --out; nothing read or written",
                param_hint="--out",
            )
    elif out_table is not None:
        raise typer.BadParameter("--out-table needs --out", param_hint="--out-table")
    try:
        offers_file = load_offers(offers)
    except OffersFileError as exc:
        console.print(f"[red]cannot plan, nothing written:[/red] {exc}")
        raise typer.Exit(1) from exc
    configure_tracking(get_settings().home)  # registered uplift and cross-sell models
    try:
        run = plan_from_store(store, offers_file, budget, day, _method(method), uplift)
    except NoValuesError as exc:
        console.print(f"[red]cannot plan, nothing written:[/red] {exc}")
        raise typer.Exit(1) from exc
    except (UnsignedTableError, TamperedTableError, RepeatedCustomersError) as exc:
        console.print(f"[red]cannot plan, nothing written:[/red] {exc}")  # names table, command
        raise typer.Exit(1) from exc
    print_plan(console, run, _method(method))
    previous, refused = _stored(store, run.as_of) if keep else (None, None)
    stored = _previous(previous) if previous is not None else _refused(run.as_of, refused)
    kept_customers = refused is not None or (previous is not None and previous.rows > 0)
    if kept_customers and run.plan.rows.is_empty() and not keep_empty:
        # an empty plan replaced the day's plan in the store, so serving lost it without a word
        console.print(
            f"[red]cannot keep the plan, nothing written:[/red] it contacts nobody and would "
            f"replace the stored {stored}; the store keeps that one. Give "
            "--no-store to write the empty plan to --out alone, or --keep-empty to clear the "
            "stored plan with it"
        )
        raise typer.Exit(1)
    if report:
        print_report(console, run.comparison.to_dicts())
    if out is not None:
        summary_out, summary_table_name = summary_output(out, out_table)
        try:
            where = connectors.write_output(in_cents(run.plan.rows), out, out_table)
            summary_where = connectors.write_output(
                in_cents(summary_table(run.plan)), summary_out, summary_table_name
            )
        except DatabaseError as exc:
            console.print(f"[red]cannot write the plan:[/red] {exc}")
            raise typer.Exit(1) from exc
        console.print(
            f"wrote {counted(run.plan.rows.height, 'rows')} to {where}; the summaries to "
            f"{summary_where}"
        )
    if keep:  # was said first, before a refusal ("no value table") that keeps nothing
        warn_unsigned(console, "the plan", "does not show it on its plan page", skip="--no-store")
        info = keep_plan(store, run)
        replaced = f"; it replaces the {stored}" if stored is not None else ""
        console.print(f"kept in the store ({info.path}){replaced}")


def _stored(
    store: Store, day: date
) -> tuple[PlanInfo | None, UnsignedTableError | TamperedTableError | None]:
    """Return the stored plan of ``day`` that a new plan replaces, or the store's refusal of it.

    Its metadata comes from the read of its rows checked against its signed manifest
    (:func:`pipelines.campaign.read_stored_plan_with_info`): read unchecked, a plan changed
    behind the store's back said how many customers it holds, and one whose metadata claimed
    none was replaced by an empty plan without ``--keep-empty``.
    """
    try:
        stored = read_stored_plan_with_info(store, day)
    except (UnsignedTableError, TamperedTableError) as exc:
        return None, exc
    return (stored[1] if stored is not None else None), None


def _refused(day: date, refused: UnsignedTableError | TamperedTableError | None) -> str | None:
    """Name a stored plan the store's key does not vouch for, whose customers are not known.

    None when ``refused`` is None: no plan was refused.
    """
    if refused is None:
        return None
    how = (
        "kept without GUANXI_STORE_KEY"
        if isinstance(refused, UnsignedTableError)
        else "changed since guanxi kept it"
    )
    return (
        f"plan as of {day}, which the store's key does not vouch for ({how}): how many "
        "customers it holds is not known"
    )


def _previous(info: PlanInfo) -> str:
    """Name a stored plan by its day, size and making (``guanxi target --report`` alone, too)."""
    made = info.created[:16].replace("T", " ")
    return f"plan as of {info.as_of} ({counted(info.rows, 'customers')}, made {made} UTC)"


def _method(name: str) -> Method:
    return "exact" if name == "exact" else "lagrangian" if name == "lagrangian" else "auto"
