"""Recorded campaign outcomes: validation, the campaign report, measured response rates.

An outcomes table has one row per customer in a campaign (:data:`OUTCOME_COLUMNS`; one offer a
customer, as a plan gives it, so a customer listed twice or given two offers is refused): who,
which offer, whether the customer was held out at random as control, and what happened within the
campaign's horizon. Optional columns refine the report: ``campaign`` (several campaigns in one
file), ``margin`` (else ``revenue x margin_rate``), ``segment`` (an RFM segment, or empty) and
``value_tier`` (as the plan had them), ``churn_probability`` and ``propensity`` (the base
probabilities the measured rates are divided by, see :func:`measured_rates`). A row without a
segment or churn probability of its own, an empty cell as a missing column, takes the value
table's (:func:`fill_from_values`) in the plan's measured rates, the report and the campaign page;
in the report and the page, the segment the one plan the campaigns were drawn from gave the
customer first, when that plan holds every row without one.

The report
----------
Per offer and segment (and per offer over all segments, segment ``all``): treated and control
customers, the realised response of the treated, the control's response, the incremental response
(treated minus control) with a bootstrap percentile interval, the cost (treated x cost per
contact), the incremental margin ``(mean margin treated - mean margin control) x treated`` and the
ROI ``(incremental margin - cost) / cost``.

The bootstrap resamples treated and control customers independently, ``n_boot`` times, with a
seeded generator. For a 0/1 outcome the mean of a resample of ``n`` customers with response rate
``p`` is distributed as ``Binomial(n, p) / n``, so the resamples are drawn that way: the same
distribution as resampling rows, without materialising them.

Measured rates
--------------
An offer's response rate in the offers file is the share of would-be churners a contact keeps
(retention, service recovery), of lapsed customers it brings back (win-back), or a multiplier on
the propensity (cross-sell); see :mod:`models.targeting`. A campaign measures the incremental
response, which for retention is ``mean P(churn) x rate``. :func:`measured_rates` therefore
divides the incremental response by the cell's mean ``churn_probability`` (retention, service
recovery) or ``propensity`` (cross-sell), and takes it as it is for win-back.

Several campaigns
-----------------
The report and the measured rates pool every recorded campaign (:func:`pool_campaigns`). A
campaign whose outcomes are those of another (the same rows, whatever its name, e.g. one file
recorded twice) is counted once, and a note names both; ``guanxi campaign record`` refuses to
record one unless told to. A customer in two different campaigns of the same offer (two waves)
is two observations and counts in both, with a note naming the campaigns and how many customers
they share: contacted by both (two contacts), held out as control by both (no contact of
either) or contacted by one and held out by the other. Each overlap is an :class:`Overlap` (the
campaigns, the offer, the customers shared and how many of them were held out, duplicate or not)
and its note is written from it. The outcomes carry no dates, so waves are
told apart by their rows alone.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, NamedTuple

import numpy as np
import polars as pl

from features.contracts import (
    CUSTOMER_COLUMNS,
    EVENT_COLUMNS,
    OPTIONAL_OUTCOME_COLUMNS,
    OUTCOME_COLUMNS,
    closest,
    counted,
)
from features.events import long_rows
from features.formatting import format_number
from features.store import (
    CampaignInfo,
    PlanInfo,
    TamperedTableError,
    UnsignedTableError,
    vouched_for,
)
from models.customer_rows import RepeatedCustomersError, listed_twice, repeated_customers
from models.offers import (
    SEGMENTS,
    TIER_NAMES,
    InputProblemsError,
    OffersFile,
    OffersFileError,
    parse_offers,
    unknown_names,
)
from models.targeting import NO_GROUP_NAMES, summarise

if TYPE_CHECKING:
    from features.store import Store

__all__ = [
    "ALL_SEGMENTS",
    "BASE_PROBABILITY",
    "CAMPAIGN_COLUMN",
    "FILLED_FROM_VALUES",
    "LATEST_PLAN_DAY",
    "MIN_MEASURED_CUSTOMERS",
    "NO_CAMPAIGN",
    "NO_CONTROL_GROUP",
    "NO_SEGMENT",
    "NO_TREATED_CUSTOMERS",
    "OPTIONAL_OUTCOME_COLUMNS",
    "OUTCOME_COLUMNS",
    "REPORT_COLUMNS",
    "THE_DRAWN_PLAN",
    "TOO_FEW_CUSTOMERS",
    "UNSAID_PLAN",
    "UNSEGMENTED",
    "CampaignOutcomesError",
    "CampaignValues",
    "DrawnCosts",
    "DrawnPlans",
    "OutcomeValues",
    "Overlap",
    "RefusedValues",
    "SegmentedCampaigns",
    "Segmenting",
    "ValuesFill",
    "campaign_report",
    "drawn_costs",
    "drawn_plans",
    "duplicate_of",
    "expected_plan_note",
    "expected_roi",
    "fill_from_values",
    "later_note",
    "margin_missing",
    "measured_rates",
    "not_in_values",
    "outcome_values",
    "outcome_values_day",
    "plans_holding",
    "pool_campaigns",
    "pooled_campaigns",
    "read_outcomes",
    "read_recorded_campaign",
    "realised_incremental_margin",
    "recorded_campaigns",
    "segment_campaigns",
    "small_cells",
    "small_cells_note",
    "stored_plan_offers",
    "unknown_offers",
    "unmeasured",
    "unpriced_offers",
    "validate_outcomes",
    "with_campaign_names",
]

NO_CAMPAIGN: Final = (
    "no campaign recorded: record one with guanxi campaign record --file outcomes.csv"
)
"""What ``guanxi campaign report`` and ``guanxi campaign uplift`` say of a store without a
campaign, before anything else they need."""

MIN_MEASURED_CUSTOMERS: Final = 30
"""Treated and control customers an offer's segment needs for ``guanxi target`` to measure a rate
from it (:func:`measured_rates`); ``guanxi campaign report`` says the figures of one with fewer
rest on too few customers (:func:`small_cells_note`)."""

TOO_FEW_CUSTOMERS: Final = "too few customers"
"""What the campaign page's interval, margin and ROI cells of a report row with fewer than
:data:`MIN_MEASURED_CUSTOMERS` treated or control customers read (:func:`unmeasured`)."""
NO_CONTROL_GROUP: Final = "no control group"
"""What the cells that compare with the control group read in a report row without control
customers, on the campaign page and in ``guanxi campaign report``'s table (:func:`unmeasured`)."""
NO_TREATED_CUSTOMERS: Final = "no treated customers"
"""What the cells of the treated customers' figures read in a report row without them, on the
campaign page and in ``guanxi campaign report``'s table (:func:`unmeasured`)."""

REPORT_COLUMNS: Final[tuple[str, ...]] = (
    "offer",
    "segment",
    "treated",
    "control",
    "response",
    "control_response",
    "incremental_response",
    "ci_low",
    "ci_high",
    "cost",
    "incremental_margin",
    "roi",
)
CAMPAIGN_COLUMN: Final = "_campaign"
"""The column :func:`with_campaign_names` names each pooled outcome row's campaign in, which
:func:`campaign_report` joins the cost each campaign paid on (its ``paid``)."""

ALL_SEGMENTS: Final = "all"
"""Segment name of the per-offer rows that cover every segment."""
NO_SEGMENT: Final = NO_GROUP_NAMES["rfm_segment"]
"""Segment name of the outcomes without one: no segment of their own, nor in the value table (the
name every page and CLI table gives the customers without an RFM segment)."""
UNSEGMENTED: Final = (
    f"reported as {NO_SEGMENT!r} (and in the rows over all segments); guanxi target leaves them "
    "out of its measured rates"
)
"""What the report and the campaign page say of outcome customers the value table lacks
(:func:`not_in_values`)."""

BASE_PROBABILITY: Final[dict[str, str]] = {
    "retention": "churn_probability",
    "service_recovery": "churn_probability",
    "cross_sell": "propensity",
}
"""The outcomes column a measured incremental response is divided by, per offer kind (a
win-back rate is the incremental response itself)."""

_BOOL_TEXT: Final = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
_SHOWN_ROWS: Final = 5
_HALF_CENT: Final = 0.005
"""A margin above its revenue by less is a sum rounded otherwise, not a wrong column."""
_SEPARATORS: Final = {";": "semicolons", "\t": "tabs", "|": "bars"}
_OTHER_FORMATS: Final = {
    ".xlsx": "an Excel workbook",
    ".xls": "an Excel workbook",
    ".xlsm": "an Excel workbook",
    ".ods": "a spreadsheet",
    ".json": "JSON",
    ".jsonl": "JSON lines",
    ".ndjson": "JSON lines",
    ".yaml": "YAML (an offers file?)",
    ".yml": "YAML (an offers file?)",
}


class CampaignOutcomesError(InputProblemsError):
    """Outcomes that cannot be recorded; every problem names the file, column and rows.

    Parameters
    ----------
    source : str
        The file, or ``"<outcomes>"``.
    problems : list of str
        One line per problem.
    """


def _rows_text(rows: pl.Series) -> str:
    shown = ", ".join(str(r) for r in rows.head(_SHOWN_ROWS).to_list())
    more = f" and {rows.len() - _SHOWN_ROWS} more" if rows.len() > _SHOWN_ROWS else ""
    return f"row {shown}{more}" if rows.len() == 1 else f"rows {shown}{more}"


def _as_bool(column: pl.Series) -> pl.Series:
    if column.dtype == pl.Boolean:
        return column
    if column.dtype.is_integer():
        return column.replace_strict({1: True, 0: False}, default=None, return_dtype=pl.Boolean)
    text = column.cast(pl.String).str.strip_chars().str.to_lowercase()
    return text.replace_strict(_BOOL_TEXT, default=None, return_dtype=pl.Boolean)


def _typed(frame: pl.DataFrame, name: str, dtype: pl.DataType) -> pl.Series:
    column = frame[name]
    if dtype == pl.Boolean:
        return _as_bool(column)
    if dtype == pl.Float64:  # NaN and infinity are no amount: read as not a number
        # nor is a date (it was read as its days since 1970) or a flag (as 1.0) of a Parquet file
        read = column.dtype.is_numeric() or column.dtype in (pl.String, pl.Null)
        number = (
            column.cast(pl.Float64, strict=False)
            if read
            else pl.repeat(None, column.len(), dtype=pl.Float64, eager=True)
        )
        return pl.select(pl.when(number.is_finite()).then(number)).to_series().alias(name)
    return column.cast(pl.String)


def _other_table(columns: Sequence[str], missing: Sequence[str]) -> str:
    """Say what a table is when it has no outcomes column but the events' or customers' own.

    The sample's folder holds ``events``, ``customers`` and ``campaign`` files side by side; this
    names the mistake of recording one of the other two instead of only its missing columns.
    """
    if set(OUTCOME_COLUMNS) - set(missing) - {"customer_id"}:
        return ""  # some outcomes columns are there: an outcomes table with a column missing
    events = [c.name for c in EVENT_COLUMNS if c.required and c.name != "customer_id"]
    users = "of guanxi train, score, value and cycle"  # campaign record has neither option
    if all(name in columns for name in events):
        return f"; it has {', '.join(events)}: events (the --events {users}), not outcomes"
    theirs = [c.name for c in CUSTOMER_COLUMNS if c.name != "customer_id" and c.name in columns]
    if theirs:
        return f"; it has {', '.join(theirs)}: customers (the --customers {users}), not outcomes"
    return ""


def _separator(columns: Sequence[str]) -> str:
    """Say so when the header read as one column holding the names split by another separator.

    A file written with semicolons or tabs was reported only as missing every required column.
    """
    if len(columns) != 1:
        return ""
    for mark, marks in _SEPARATORS.items():
        if mark in columns[0] and set(OUTCOME_COLUMNS) & set(columns[0].split(mark)):
            return f"; its columns are separated by {marks}, not commas: save it as a comma CSV"
    return ""


def _near_names(columns: Sequence[str], missing: Sequence[str]) -> str:
    """Name the file's columns that look like a missing one (case, spaces, a misspelling).

    A column ``responsed`` or ``Customer_ID`` was reported only as the required name missing,
    leaving the reader to find which of the file's columns was meant.
    """
    unknown = [c for c in columns if c not in OUTCOME_COLUMNS | OPTIONAL_OUTCOME_COLUMNS]
    said = []
    for name in missing:
        near = next((c for c in unknown if _plain(c) == name), None)
        near = near or closest(name, unknown, cutoff=0.8)
        if near:
            said.append(f"the file has {near!r}: rename it {name} (names must match exactly)")
    return "".join(f"; {s}" for s in said)


def _unread_columns(columns: Sequence[str]) -> list[str]:
    """Say the file's columns that are an optional column's name written otherwise (case, spaces).

    Columns other than the declared ones pass through unread, so a ``Margin`` or ``Segment``
    column was recorded without a word and never used: the report valued the rows by
    ``--margin-rate`` (or refused for want of margins), the rates took the value table's segments.
    """
    said = []
    for name in OPTIONAL_OUTCOME_COLUMNS:
        if name in columns:
            continue
        for column in columns:
            if column not in OUTCOME_COLUMNS and _plain(column) == name:
                said.append(
                    f"column {column!r}: not read, as only the exact names are; rename it {name}, "
                    "the optional column it looks like (names must match exactly)"
                )
    return said


def _plain(column: str) -> str:
    """Return a column name as it would be declared (``Churn Probability``: churn_probability)."""
    return "_".join(column.strip().lower().replace("-", " ").split())


def _group_column(frame: pl.DataFrame, missing: Sequence[str]) -> str:
    """Name a column that tells the groups apart in words when ``control`` is missing.

    A CRM export's ``group`` column of ``control`` and ``treatment`` was said only as the
    ``control`` column missing.
    """
    if "control" not in missing:
        return ""
    for name in frame.columns:
        if frame[name].dtype != pl.String or name in OUTCOME_COLUMNS | OPTIONAL_OUTCOME_COLUMNS:
            continue
        words = frame[name].drop_nulls().str.strip_chars().str.to_lowercase().unique()
        if words.len() <= 3 and "control" in words.to_list():
            shown = ", ".join(repr(w) for w in sorted(words.to_list()))
            return (
                f"; the file's column {name!r} holds {shown}: add a control column, true where "
                "it is 'control' (held out, not contacted) and false elsewhere"
            )
    return ""


def validate_outcomes(frame: pl.DataFrame, source: str = "<outcomes>") -> pl.DataFrame:
    """Check an outcomes table and return it with the declared column types.

    Parameters
    ----------
    frame : polars.DataFrame
        The outcomes as read (booleans may be ``true``/``false``, ``1``/``0``, ``yes``/``no``).
    source : str, default "<outcomes>"
        Where it came from, for messages.

    Returns
    -------
    polars.DataFrame
        The outcomes, typed; other columns pass through.

    Raises
    ------
    CampaignOutcomesError
        Listing every problem at once with its column and rows (1 = first data row): a missing
        column (naming a column of the file that looks like it, or the separator the file uses
        instead of commas), an optional column's name written otherwise (``Margin``, ``Churn
        Probability``: it would pass through unread), no rows, an empty or unreadable value
        (``NaN`` or an infinity in a number column included), a negative revenue, a revenue
        above 0 where ``ordered`` is false, a ``margin`` above its row's revenue, a
        ``segment`` that is no RFM segment (:data:`models.offers.SEGMENTS`) or a ``value_tier``
        that is no tier ``guanxi value`` writes (:data:`models.offers.TIER_NAMES`), naming its
        rows and the nearest name, a customer listed twice or given two offers in one campaign. An
        empty ``segment`` is one the file does not give: the readers take the value table's, as
        for a missing column, or, in the campaign report and page, the segment the rows of the
        plan the campaign was drawn from give the customer when that plan holds every such row
        (:func:`fill_from_values`). An empty ``revenue`` is 0 where
        ``ordered`` is false (nothing was ordered), and refused where it is true or itself empty
        or unreadable.
    """
    missing = [name for name in OUTCOME_COLUMNS if name not in frame.columns]
    if missing:
        said = f"missing {counted(len(missing), 'required columns')}: {', '.join(missing)}"
        hints = _separator(frame.columns) or (
            _near_names(frame.columns, missing) + _group_column(frame, missing)
        )
        raise CampaignOutcomesError(
            source, [said + (hints or _other_table(frame.columns, missing))]
        )
    if frame.height == 0:  # was recorded as a campaign of 0 customers
        raise CampaignOutcomesError(source, ["no rows: the header alone, no outcomes to record"])
    problems = _unread_columns(frame.columns)
    typed = frame.clone()
    row = pl.Series("row", np.arange(1, frame.height + 1))
    # a CRM export leaves revenue empty where nothing was ordered: 0 there, refused elsewhere
    no_order = (~_as_bool(frame["ordered"])).fill_null(False)
    declared = OUTCOME_COLUMNS | OPTIONAL_OUTCOME_COLUMNS
    for name, dtype in declared.items():
        if name not in frame.columns:
            continue
        value = _typed(frame, name, dtype)
        bad = value.is_null() & frame[name].is_not_null()
        if bad.any():
            what = "true or false" if dtype == pl.Boolean else "a number"
            found = ", ".join(
                repr(str(v))
                for v in frame[name].filter(bad).unique(maintain_order=True).head(3).to_list()
            )
            read = " (true/false, 1/0 or yes/no)" if dtype == pl.Boolean else ""
            problems.append(
                f"column {name}: not {what} at {_rows_text(row.filter(bad))}: {found}{read}"
            )
        empty = frame[name].is_null()
        if name == "revenue":
            value = pl.select(pl.when(empty & no_order).then(0.0).otherwise(value)).to_series()
            empty = empty & ~no_order
        if name in OUTCOME_COLUMNS and empty.any():
            where = " (0 is taken only where ordered is false)" if name == "revenue" else ""
            problems.append(f"column {name}: empty at {_rows_text(row.filter(empty))}{where}")
        typed = typed.with_columns(value.alias(name))
    problems += _amounts(typed, row)
    for name in ("churn_probability", "propensity"):
        if name in typed.columns:
            out = ~typed[name].is_between(0.0, 1.0).fill_null(True)
            if out.any():
                problems.append(f"column {name}: outside [0, 1] at {_rows_text(row.filter(out))}")
    problems += _padded(typed, row)
    problems += _unknown_names(typed, row)
    problems += _customers_twice(typed, row)
    if problems:
        raise CampaignOutcomesError(source, problems)
    return typed


def _amounts(typed: pl.DataFrame, row: pl.Series) -> list[str]:
    """Say the rows whose revenue is negative or disagrees with their order flag or margin.

    Refused as the mirror of an order without revenue is: revenue above 0 where ``ordered`` is
    false, and a ``margin`` above the row's revenue (swapped or mis-scaled columns), or above 0
    where ``ordered`` is false, were recorded without a word and read as an incremental margin
    above the revenue. A margin below 0 (a loss), equal to the revenue or above it by less than
    half a cent (a sum rounded otherwise) is let be; a row is said once, by its revenue when
    that is wrong, and an unreadable value is said as unreadable.
    """
    revenue = typed["revenue"]
    unordered = ~typed["ordered"]
    problems = []
    negative = (revenue < 0).fill_null(False)
    if negative.any():
        problems.append(f"column revenue: negative at {_rows_text(row.filter(negative))}")
    sold = (unordered & (revenue > 0)).fill_null(False)
    if sold.any():
        problems.append(
            f"column revenue: above 0 at {_rows_text(row.filter(sold))}, where ordered is "
            "false (no order, no revenue: is the ordered or the revenue column wrong?)"
        )
    if "margin" in typed.columns:
        margin, said = typed["margin"], negative | sold
        free = (unordered & (margin > _HALF_CENT) & ~said).fill_null(False)
        if free.any():
            problems.append(
                f"column margin: above 0 at {_rows_text(row.filter(free))}, where ordered is "
                "false (no order, no margin: is the ordered or the margin column wrong?)"
            )
        above = (~unordered & (margin > revenue + _HALF_CENT) & ~said).fill_null(False)
        if above.any():
            problems.append(
                f"column margin: above the row's revenue at {_rows_text(row.filter(above))} (a "
                "margin is part of the revenue: are the columns swapped or mis-scaled?)"
            )
    return problems


def _padded(typed: pl.DataFrame, row: pl.Series) -> list[str]:
    """Say the customer ids and offer names with spaces around them, with their rows.

    A spreadsheet's padding (``"C0006 "``) was recorded as it stood: the id matched no customer
    of any plan or value table, the offer no offer, and only a note said so.
    """
    problems = []
    for name, what in (("customer_id", "customer"), ("offer", "offer")):
        value = typed[name]
        padded = (value != value.str.strip_chars()).fill_null(False)
        if padded.any():
            found = ", ".join(
                repr(v) for v in value.filter(padded).unique(maintain_order=True).head(3)
            )
            problems.append(
                f"column {name}: spaces around the value at {_rows_text(row.filter(padded))}: "
                f"{found} (a spreadsheet's padding?), which matches no {what} as it stands: "
                "remove the spaces"
            )
    return problems


def _unknown_names(typed: pl.DataFrame, row: pl.Series) -> list[str]:
    """Say the outcomes' segments and value tiers guanxi does not write, with rows and nearest name.

    The rates are measured per segment and a plan's customers take them by their RFM segment
    (:data:`models.offers.SEGMENTS`): a rate measured under a misspelt or home-made name ("A")
    applied to nobody, without a word. An empty segment takes the value table's (or the drawn
    plan's, :func:`fill_from_values`). A ``value_tier``
    (the plan's, kept as recorded) is one of the tiers ``guanxi value`` writes
    (:data:`models.offers.TIER_NAMES`); another ("gold") was recorded unsaid. An empty one is
    allowed, as before.
    """
    problems = []
    for column, what, known, consequence in (
        (
            "segment",
            "RFM segment",
            SEGMENTS,
            "a rate measured under another name applies to no customer (leave it empty to take "
            "the value table's; the campaign report and page take the segment the plan the "
            "campaign was drawn from gives the customer, when that plan holds every such row)",
        ),
        (
            "value_tier",
            "value tier",
            TIER_NAMES,
            "guanxi value writes no other (or leave it empty)",
        ),
    ):
        if column not in typed.columns:
            continue
        value = typed[column]
        unknown = value.is_not_null() & ~value.is_in(known)
        if not unknown.any():
            continue
        names = value.filter(unknown).unique(maintain_order=True).to_list()
        shown = names[:_SHOWN_ROWS]
        where = {name: _rows_text(row.filter(value == name)) for name in shown}
        said = unknown_names(
            shown, what=what, known=known, where=where, more=len(names) - len(shown)
        )
        problems.append(f"column {column}: {said}: {consequence}")
    return problems


def _customers_twice(typed: pl.DataFrame, row: pl.Series) -> list[str]:
    """Say the customers a campaign lists twice with one offer, and those it gives two offers.

    A campaign gives a customer one offer, as a plan does (:func:`models.targeting.plan_campaign`):
    the customer's one response cannot be credited to two offers, and the report, the measured
    rates and the uplift models would count it for each. Two waves, or two campaigns of other
    offers, are recorded each under its own name. An empty id or offer is said once, as empty,
    not as every such row being the same customer.
    """
    keys = ["campaign", "customer_id"] if "campaign" in typed.columns else ["customer_id"]
    known = pl.col("customer_id").is_not_null() & pl.col("offer").is_not_null()
    flags = typed.select(
        twice=pl.struct(*keys, "offer").is_duplicated() & known,
        offers=(pl.col("offer").drop_nulls().n_unique().over(keys) > 1) & known,
    )
    problems = []
    twice, offers = flags["twice"], flags["offers"]
    if twice.any():
        ids = typed["customer_id"].filter(twice).unique(maintain_order=True)
        problems.append(
            f"customer listed twice in one campaign at {_rows_text(row.filter(twice))} "
            f"(customer_id {', '.join(ids.head(_SHOWN_ROWS).to_list())})"
        )
    if offers.any():
        given = (
            typed.filter(offers)
            .group_by("customer_id", maintain_order=True)
            .agg(pl.col("offer").unique(maintain_order=True))
            .head(_SHOWN_ROWS)
        )
        who = "; ".join(f"{c}: {', '.join(o)}" for c, o in given.iter_rows())
        problems.append(
            f"customer given two offers in one campaign at {_rows_text(row.filter(offers))} "
            f"(customer_id {who}): a campaign gives a customer one offer, as a plan does, and "
            "one response cannot be credited to two; record each offer's rows as a campaign of "
            "its own (--name) if they were two campaigns"
        )
    return problems


def read_outcomes(path: str | Path) -> pl.DataFrame:
    """Read an outcomes file (CSV or Parquet) and validate it.

    Parameters
    ----------
    path : str or pathlib.Path
        The file; ``.parquet`` is read as Parquet, a spreadsheet or JSON file is refused by
        name, anything else is read as CSV (UTF-8).

    Returns
    -------
    polars.DataFrame
        The validated outcomes (:func:`validate_outcomes`).

    Raises
    ------
    CampaignOutcomesError
        If the file cannot be read or its content is invalid.
    """
    path = Path(path)
    if path.is_dir():  # Polars said "expanded paths were empty (... glob: true)"
        raise CampaignOutcomesError(
            str(path), ["cannot read the file: a directory, not an outcomes file"]
        )
    kind = _OTHER_FORMATS.get(path.suffix.lower())
    if kind is not None:  # read as CSV, it was said to miss every required column
        said = f"cannot read the file: {kind}, not CSV or Parquet; save the outcomes as CSV"
        raise CampaignOutcomesError(str(path), [said])
    sep_line = _separator_line(path)
    if sep_line:
        raise CampaignOutcomesError(str(path), [sep_line])
    try:
        # through a handle: Polars expands a path's * ? [ as a glob, reading other files
        with path.open("rb") as handle:
            if path.suffix == ".parquet":
                frame = pl.read_parquet(handle)
            else:
                frame = pl.read_csv(handle, infer_schema=False)
    except FileNotFoundError:
        raise CampaignOutcomesError(str(path), ["cannot read the file: no such file"]) from None
    except pl.exceptions.NoDataError:
        raise CampaignOutcomesError(str(path), ["cannot read the file: it is empty"]) from None
    except (OSError, pl.exceptions.PolarsError) as exc:
        # else Polars' words, on one line
        hint = _header_separator(path) or _not_utf8(path) or _long_row(path)
        said = hint.removeprefix("; ") or f"cannot read the file ({' '.join(str(exc).split())})"
        raise CampaignOutcomesError(str(path), [said]) from None
    twice = _columns_twice(frame.columns)
    if twice:
        raise CampaignOutcomesError(str(path), twice)
    return validate_outcomes(frame, str(path))


def _columns_twice(columns: Sequence[str]) -> list[str]:
    """Say the outcomes columns a CSV header names twice, with their positions.

    Polars reads the second ``revenue`` of a header as ``revenue_duplicated_0``, which passed
    through unread: the first was recorded, whichever of the two was right.
    """
    said = []
    for name in OUTCOME_COLUMNS | OPTIONAL_OUTCOME_COLUMNS:
        if name not in columns:
            continue
        again = [
            i + 1 for i, column in enumerate(columns) if column.startswith(f"{name}_duplicated_")
        ]
        if again:
            where = ", ".join(str(i) for i in [columns.index(name) + 1, *again])
            times = "twice" if len(again) == 1 else f"{len(again) + 1} times"
            said.append(
                f"column {name} is given {times} (columns {where}): only one can be read, so "
                "the file is refused rather than one kept unseen"
            )
    return said


def _not_utf8(path: Path) -> str:
    """Name the first row of a CSV that is not UTF-8 (Polars said "invalid utf-8 sequence")."""
    if path.suffix == ".parquet":
        return ""
    try:
        raw = path.read_bytes()
        raw.decode("utf-8")
    except OSError:
        return ""
    except UnicodeDecodeError as exc:
        row = raw[: exc.start].count(b"\n")  # the header is line 1, so this is the data row
        where = f"row {row}" if row else "the header"
        return (
            f"; cannot read the file: not UTF-8 text at {where} (Latin-1 or Windows-1252 from a "
            "spreadsheet?); save it as CSV UTF-8"
        )
    return ""


def _long_row(path: Path) -> str:
    """Name the first row of a CSV with more fields than its header.

    Polars said "found more fields than defined in 'Schema'", and to consider its own
    ``truncate_ragged_lines``, without the row: usually a value with a comma and no quotes
    (:func:`features.events.long_rows` finds it, as for the events).
    """
    found = None if path.suffix == ".parquet" else long_rows(path)
    if found is None:
        return ""
    return (
        f"; cannot read the file: row {found.rows[0]} has {found.fields} fields where "
        f"the header has {found.header} (a value with a comma, not in quotes?)"
    )


def _separator_line(path: Path) -> str:
    """Name a spreadsheet's ``sep=,`` first line, which is no header.

    Excel reads and writes it to say the separator; taken as the header, the file was said to
    have a row longer than its header (``sep=,``) or to miss every required column (``sep=;``).
    """
    if path.suffix == ".parquet":
        return ""
    try:
        with path.open("rb") as handle:
            first = handle.readline(64).decode("utf-8-sig", errors="replace").strip()
    except OSError:
        return ""
    if len(first) != 5 or not first.lower().startswith("sep="):
        return ""
    comma = "" if first.endswith(",") else ", and save it as a comma CSV"
    return (
        f"cannot read the file: its first line, {first!r}, is a spreadsheet's separator line, "
        f"not the header: remove it (the column names must be the first line){comma}"
    )


def _header_separator(path: Path) -> str:
    """Name the separator of a CSV's header when it is not commas (:func:`_separator`).

    Semicolons with decimal commas in the rows (``12,50``) split the rows but not the header,
    and the file was said unreadable for ragged lines alone.
    """
    if path.suffix == ".parquet":
        return ""
    try:
        with path.open("rb") as handle:
            header = handle.readline(64 * 1024).decode("utf-8-sig", errors="replace")
    except OSError:
        return ""
    return _separator([header.rstrip("\r\n")]) if "," not in header else ""


def margin_missing(outcomes: pl.DataFrame) -> int:
    """Count the outcomes that earned revenue but have no margin (none, or no ``margin`` column).

    Parameters
    ----------
    outcomes : polars.DataFrame
        Validated outcomes, of one campaign or of several (:func:`pool_campaigns` leaves
        ``margin`` null on the rows of a campaign recorded without it).

    Returns
    -------
    int
        Rows whose margin must come from a margin rate; a row without revenue earned nothing.
    """
    unknown = pl.col("revenue").fill_null(0.0) > 0
    if "margin" in outcomes.columns:
        unknown = unknown & pl.col("margin").is_null()
    return int(outcomes.select(unknown.sum()).item())


def _with_margin(
    outcomes: pl.DataFrame, margin_rate: float | None, *, leave_unvalued: bool = False
) -> pl.DataFrame:
    """Give every row a margin: its own, else revenue x ``margin_rate``; refuse to guess one.

    A row without a margin was once taken as earning 0 whenever the column existed (a campaign
    recorded without ``margin`` beside one with it), whatever ``margin_rate`` said. With
    ``leave_unvalued``, a row with revenue and no margin keeps none (null) instead of refusing.
    """
    if margin_rate is not None:
        by_rate = pl.col("revenue") * margin_rate
        if "margin" not in outcomes.columns:
            return outcomes.with_columns(margin=by_rate)
        return outcomes.with_columns(pl.col("margin").fill_null(by_rate))
    missing = margin_missing(outcomes)
    if missing and not leave_unvalued:
        raise ValueError(
            f"{counted(missing, 'outcomes')} with revenue {'has' if missing == 1 else 'have'} no "
            "margin: give the margin per unit of revenue (--margin-rate, margin_rate) to value them"
        )
    # a row without revenue earned nothing; one with revenue is left unvalued (none refused)
    none_earned = pl.when(pl.col("revenue").fill_null(0.0) > 0).then(None).otherwise(0.0)
    if "margin" not in outcomes.columns:
        return outcomes.with_columns(margin=none_earned.cast(pl.Float64))
    return outcomes.with_columns(pl.col("margin").fill_null(none_earned))


def _row_generator(seed: int, offer: str, segment: str) -> np.random.Generator:
    """Return the bootstrap generator of one report row, from the report's seed and the row's key.

    Each row draws from its own generator, so its interval depends on its own counts only: one
    generator across the rows moved an offer's interval whenever another offer's campaign was
    recorded (qa43 L4). The key is hashed with BLAKE2b, the same in every process (Python's
    ``hash`` of a string is not).
    """
    digest = hashlib.blake2b(f"{offer}\0{segment}".encode(), digest_size=16).digest()
    words = np.frombuffer(digest, dtype="<u4").tolist()
    return np.random.default_rng(np.random.SeedSequence([seed, *words]))


def _interval(
    rng: np.random.Generator,
    n_t: int,
    p_t: float,
    n_c: int,
    p_c: float,
    n_boot: int,
    confidence: float,
) -> tuple[float | None, float | None]:
    if n_t == 0 or n_c == 0:
        return None, None
    diff = rng.binomial(n_t, p_t, n_boot) / n_t - rng.binomial(n_c, p_c, n_boot) / n_c
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(diff, [tail, 1.0 - tail])
    return float(low), float(high)


def campaign_report(
    outcomes: pl.DataFrame,
    offers: OffersFile | None = None,
    *,
    margin_rate: float | None = None,
    leave_unvalued: bool = False,
    leave_unpriced: bool = False,
    costs: Mapping[str, float] | None = None,
    paid: Mapping[tuple[str, str], float] | None = None,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pl.DataFrame:
    """Report realised and incremental response, cost, incremental margin and ROI.

    Parameters
    ----------
    outcomes : polars.DataFrame
        Validated outcomes (:func:`validate_outcomes`).
    offers : OffersFile, optional
        Gives the cost per contact; without it cost and ROI are null.
    margin_rate : float, optional
        Margin as a share of revenue, when the outcomes have no ``margin`` column.
    leave_unvalued : bool, default False
        Without ``margin_rate``, leave the incremental margin and ROI of each row counting an
        outcome with revenue and no margin empty (null) rather than refuse the report (the
        campaign page, which has no rate to value them at, shows no margin for them).
    leave_unpriced : bool, default False
        Leave the cost and ROI of an offer ``offers`` lacks empty (null) rather than refuse the
        report: the campaign page, which names the offer (:func:`unpriced_offers`), showed no ROI
        for any offer when one campaign held a misspelt one.
    costs : mapping of str to float, optional
        Costs per contact by offer name that win over ``offers``: those the campaigns paid,
        from the plans they were drawn from (:func:`drawn_costs`); also price offers ``offers``
        lacks. ``guanxi campaign report --offers FILE`` passes none: the file prices every one.
    paid : mapping of (str, str) to float, optional
        Costs per contact by campaign and offer name, for offers whose campaigns were drawn at
        different costs (:attr:`DrawnCosts.paid`): each contacted customer of such an offer is
        priced at the cost its own campaign paid, joined on the outcomes' campaign
        (:data:`CAMPAIGN_COLUMN`, :func:`with_campaign_names`), and the cost is their sum; they
        win over ``costs`` and ``offers`` and price offers ``offers`` lacks. One cost for every
        campaign priced some of them at a cost they did not pay (qa44 M3).
    n_boot : int, default 2000
        Bootstrap resamples.
    confidence : float, default 0.95
        Coverage of the interval.
    seed : int, default 0
        Seed of the bootstrap. Each row draws from its own generator, seeded from ``seed`` and
        the row's offer and segment: a row's interval depends on its own outcomes only, not on
        the other offers' campaigns recorded beside it.

    Returns
    -------
    polars.DataFrame
        :data:`REPORT_COLUMNS`, one row per offer and segment and one per offer over all segments
        (segment :data:`ALL_SEGMENTS`), sorted by offer then segment, each offer's row over all
        segments last, as a total.

    Raises
    ------
    ValueError
        If an offer is not in the offers file (without ``leave_unpriced``), margins cannot be
        computed (some outcomes have revenue and no margin, without ``margin_rate`` or
        ``leave_unvalued``), or ``paid`` is given for outcomes without their campaigns' names.
    """
    # an outcome file's own _paid column is not the cost each campaign paid, joined below
    frame = _with_margin(outcomes, margin_rate, leave_unvalued=leave_unvalued).drop(
        "_paid", strict=False
    )
    split = {offer for _, offer in paid or {}}  # priced contact by contact, by their campaign
    if split and CAMPAIGN_COLUMN not in frame.columns:
        raise ValueError(
            "the costs each campaign paid need each outcome row's campaign: name them with "
            "with_campaign_names"
        )
    if split:
        table = pl.DataFrame(
            [(name, offer, cost) for (name, offer), cost in (paid or {}).items()],
            schema={CAMPAIGN_COLUMN: pl.String, "offer": pl.String, "_paid": pl.Float64},
            orient="row",
        )
        frame = frame.join(table, on=[CAMPAIGN_COLUMN, "offer"], how="left")
    else:
        frame = frame.with_columns(_paid=pl.lit(None, dtype=pl.Float64))
    if "segment" in frame.columns:
        frame = frame.with_columns(pl.col("segment").fill_null(NO_SEGMENT))
        frame = pl.concat([frame, frame.with_columns(segment=pl.lit(ALL_SEGMENTS))])
    else:
        frame = frame.with_columns(segment=pl.lit(ALL_SEGMENTS))
    cost_of: dict[str, float] = {}
    if offers is not None:
        unknown = [
            offer
            for offer in unknown_offers(frame, offers)
            if offer not in (costs or {}) and offer not in split
        ]
        if unknown and not leave_unpriced:
            raise ValueError(f"offer {unknown[0]!r} of the outcomes is not in the offers file")
        cost_of = {o.name: o.cost for o in offers.offers}
    cost_of |= costs or {}  # what the campaigns paid, over the latest plan's (review48 M2)
    cells = frame.group_by("offer", "segment", "control").agg(
        n=pl.len(),
        responded=pl.col("responded").cast(pl.Float64).mean(),
        margin=pl.col("margin").mean(),
        unvalued=pl.col("margin").is_null().any(),
        paid=pl.col("_paid").sum(),
        unpaid=pl.col("_paid").is_null().any(),
    )
    treated = cells.filter(~pl.col("control")).drop("control")
    control = cells.filter(pl.col("control")).drop("control")
    joined = treated.join(
        control, on=["offer", "segment"], how="full", coalesce=True, suffix="_c"
    ).sort("offer", "segment")
    rows = []
    for r in joined.iter_rows(named=True):
        n_t, n_c = r["n"] or 0, r["n_c"] or 0
        p_t, p_c = r["responded"], r["responded_c"]
        rng = _row_generator(seed, r["offer"], r["segment"])
        low, high = _interval(rng, n_t, p_t or 0.0, n_c, p_c or 0.0, n_boot, confidence)
        both = n_t > 0 and n_c > 0
        if r["offer"] in split:  # each contact at what its campaign paid (none: 0 contacts)
            cost = None if r["unpaid"] else r["paid"] or 0.0
        else:
            cost = cost_of[r["offer"]] * n_t if r["offer"] in cost_of else None
        valued = both and not (r["unvalued"] or r["unvalued_c"])
        margin = (r["margin"] - r["margin_c"]) * n_t if valued else None
        rows.append(
            {
                "offer": r["offer"],
                "segment": r["segment"],
                "treated": n_t,
                "control": n_c,
                "response": p_t,
                "control_response": p_c,
                "incremental_response": p_t - p_c if both else None,
                "ci_low": low,
                "ci_high": high,
                "cost": cost,
                "incremental_margin": margin,
                "roi": (margin - cost) / cost if margin is not None and cost else None,
            }
        )
    schema = {
        "offer": pl.String,
        "segment": pl.String,
        "treated": pl.Int64,
        "control": pl.Int64,
    } | {name: pl.Float64 for name in REPORT_COLUMNS[4:]}
    # the total last (it sat among the segments, between about_to_sleep and at_risk); each row
    # has its own generator, so the order it is drawn in changes none of its draws
    total_last = [pl.col("offer"), pl.col("segment") == ALL_SEGMENTS]
    return pl.DataFrame(rows, schema=schema, orient="row").sort(total_last, maintain_order=True)


def _counts(row: Mapping[str, object]) -> tuple[int, int]:
    return int(row["treated"]), int(row["control"])  # type: ignore[call-overload]


def unmeasured(row: Mapping[str, object]) -> str | None:
    """Say why a report row's incremental figures cannot be relied on, None when they can.

    The campaign page showed a segment of 13 treated customers' interval, margin and ROI as
    firmly as the rest (``guanxi campaign report`` notes it, :func:`small_cells_note`), and a
    segment without a control group (or without treated customers) as blanks.

    Parameters
    ----------
    row : mapping
        A row of :func:`campaign_report` (its ``treated`` and ``control`` counts).

    Returns
    -------
    str or None
        :data:`NO_CONTROL_GROUP` without control customers, :data:`NO_TREATED_CUSTOMERS` without
        treated ones, :data:`TOO_FEW_CUSTOMERS` with fewer than :data:`MIN_MEASURED_CUSTOMERS` of
        either, else None.
    """
    treated, control = _counts(row)
    if control == 0:
        return NO_CONTROL_GROUP
    if treated == 0:
        return NO_TREATED_CUSTOMERS
    return TOO_FEW_CUSTOMERS if min(treated, control) < MIN_MEASURED_CUSTOMERS else None


def small_cells(rows: Iterable[Mapping[str, object]]) -> list[Mapping[str, object]]:
    """Return the report rows with fewer than :data:`MIN_MEASURED_CUSTOMERS` treated or control.

    ``guanxi target`` measures no rate from such an offer's segment (:func:`measured_rates`);
    a row without control or treated customers is among them.

    Parameters
    ----------
    rows : iterable of mapping
        Rows of :func:`campaign_report` (their ``offer``, ``segment``, ``treated`` and
        ``control``).

    Returns
    -------
    list of mapping
        Those rows, in their order.
    """
    return [row for row in rows if min(_counts(row)) < MIN_MEASURED_CUSTOMERS]


def small_cells_note(
    rows: Iterable[Mapping[str, object]], name: Callable[[str], str] = str
) -> str | None:
    """Name the offers' segments too small to rely on, or None when there is none.

    A segment of 13 treated customers printed an ROI of -157 with nothing to say it rests on a
    handful of customers (the ROI has no interval); ``guanxi target`` measures no rate from such
    a segment (:data:`MIN_MEASURED_CUSTOMERS`). ``guanxi campaign report`` prints this note, and
    the campaign page shows it (qa50-1: the page showed those figures as solid).

    Parameters
    ----------
    rows : iterable of mapping
        Rows of :func:`campaign_report` (:func:`small_cells` picks the small ones).
    name : callable, default str
        How a segment is written: the page names them as its table does (``at risk``), the
        report as its table (``at_risk``).

    Returns
    -------
    str or None
        The note, without the ``note:`` mark nor a full stop; None when no segment is small.
    """
    small: dict[str, list[str]] = {}
    for row in small_cells(rows):
        treated, control = _counts(row)
        small.setdefault(str(row["offer"]), []).append(
            f"{name(str(row['segment']))} ({treated:,} treated, {control:,} control)"
        )
    if not small:
        return None
    listed = "; ".join(f"{offer}: {', '.join(cells)}" for offer, cells in small.items())
    return (
        f"fewer than {MIN_MEASURED_CUSTOMERS} treated or control customers in {listed}: their "
        "response, incremental response and ROI rest on too few customers to rely on (the ROI "
        "has no interval), and guanxi target measures no rate from them"
    )


def unknown_offers(outcomes: pl.DataFrame, offers: OffersFile | None) -> list[str]:
    """List the offers of ``outcomes`` that ``offers`` lacks, sorted (none without offers).

    Parameters
    ----------
    outcomes : polars.DataFrame
        Outcomes (their ``offer`` column).
    offers : OffersFile or None
        The offers file; None lacks nothing.

    Returns
    -------
    list of str
        The offer names the file does not hold, sorted.
    """
    if offers is None:
        return []
    known = {o.name for o in offers.offers}
    return sorted(set(outcomes["offer"].unique().to_list()) - known)


def unpriced_offers(
    campaigns: Mapping[str, pl.DataFrame],
    offers: OffersFile,
    plan: str = "the stored plan",
    priced: Collection[str] = (),
    why: Mapping[str, str] = MappingProxyType({}),
    planned: Collection[str] = (),
) -> str | None:
    """Say which offers of the recorded campaigns an offers file lacks, and in which campaigns.

    ``guanxi campaign report`` refuses such outcomes, naming the first; the campaign page shows
    them without cost or ROI (:func:`campaign_report`'s ``leave_unpriced``) and says this.

    Parameters
    ----------
    campaigns : mapping of str to polars.DataFrame
        Each recorded campaign's outcomes, by name.
    offers : OffersFile
        The offers that give the costs (the stored plan's).
    plan : str, default "the stored plan"
        Names the plan whose offers they are, e.g. ``"the latest stored plan, as of 31 Dec
        2025"``: an offer a later plan renamed is in the plan its campaign was drawn from.
    priced : collection of str, default ()
        Offers ``offers`` lacks that are priced even so, not named: by the plans their
        campaigns were drawn from (:func:`drawn_costs`).
    why : mapping of str to str, default empty
        Why the plans their campaigns were drawn from do not price an offer, by name
        (:attr:`DrawnCosts.declined`), said beside it.
    planned : collection of str, default ()
        Offers a plan their campaigns were drawn from gave (:attr:`DrawnCosts.planned`): real
        ones, asked no "is it ...?" (qa44 L2: one drawn at different costs was asked "is it
        'retention_call'?").

    Returns
    -------
    str or None
        E.g. ``"offer 'retention_emial' (campaign 'wave2'; is it 'retention_email'?) is not in
        the offers of the stored plan: its cost and realised ROI are not known; a campaign with
        a misspelt offer can be recorded again with the offer's right name"``, the advice only
        when an offer is near a known one (review45 M2: an offer the latest plan no longer has
        is not misspelt); None when the offers hold every one.
    """
    holding: dict[str, list[str]] = {}
    for name, frame in campaigns.items():
        for offer in unknown_offers(frame, offers):
            if offer not in priced:
                holding.setdefault(offer, []).append(name)
    if not holding:
        return None
    said, misspelt = [], False
    for offer, names in sorted(holding.items()):
        near = None if offer in planned else closest(offer, [o.name for o in offers.offers], 0.8)
        misspelt = misspelt or near is not None
        maybe = f"; is it {near!r}?" if near else ""
        maybe += f"; {why[offer]}" if offer in why else ""
        held = ", ".join(repr(name) for name in names)
        said.append(f"{offer!r} (campaign{'s' if len(names) > 1 else ''} {held}{maybe})")
    one = len(said) == 1
    advice = (
        "; a campaign with a misspelt offer can be recorded again with the offer's right name"
        if misspelt
        else ""
    ) + "; guanxi campaign report --offers FILE prices them from an offers file that has them"
    return (
        f"offer{'' if one else 's'} {', '.join(said)} {'is' if one else 'are'} not in the offers "
        f"of {plan}: {'its' if one else 'their'} cost and realised ROI are not known{advice}"
    )


def expected_roi(plan: pl.DataFrame | None) -> dict[tuple[str, str], float | None]:
    """Return a plan's expected ROI per offer and segment, and per offer over all segments.

    The figure :func:`campaign_report`'s realised ROI is read against: ``guanxi campaign
    report`` and the campaign page (``/ui/campaign``) both set it beside each row.

    Parameters
    ----------
    plan : polars.DataFrame or None
        A plan's rows (:data:`models.targeting.PLAN_COLUMNS`); None without a plan.

    Returns
    -------
    dict of (str, str) to float or None
        The plan's expected value after costs per unit invested
        (:func:`models.targeting.summarise`'s ``roi``), keyed by offer and segment, and by offer
        and :data:`ALL_SEGMENTS` for the offer over every segment; empty without plan rows. A
        row of the report takes the figure of its own offer and segment: the page once set each
        campaign row beside the plan's ROI of its segment over every offer, so a retention
        e-mail's realised ROI stood beside that of the win-back vouchers the plan sent there.
    """
    if plan is None or plan.is_empty():
        return {}
    cells = pl.concat([plan, plan.with_columns(segment=pl.lit(ALL_SEGMENTS))])
    return {
        (r["offer"], r["segment"]): r["roi"]
        for r in summarise(cells, ["offer", "segment"]).iter_rows(named=True)
    }


def measured_rates(
    outcomes: pl.DataFrame,
    offers: OffersFile,
    report: pl.DataFrame | None = None,
    *,
    min_customers: int = MIN_MEASURED_CUSTOMERS,
    segments: Sequence[str] | None = None,
) -> dict[str, dict[str, float]]:
    """Turn a campaign's incremental responses into response rates for the offers file.

    Parameters
    ----------
    outcomes : polars.DataFrame
        Validated outcomes.
    offers : OffersFile
        The offers (their kinds decide the base probability).
    report : polars.DataFrame, optional
        :func:`campaign_report` of the outcomes it keeps (those with the base probability their
        offer's rate is divided by); computed when not given.
    min_customers : int, default 30
        A segment needs at least this many treated and this many control customers.
    segments : sequence of str, optional
        Only these segments.

    Returns
    -------
    dict of str to dict of str to float
        ``{offer: {segment: rate}}``, for :func:`models.offers.with_measured_rates`; rates are
        clipped to [-1, 1]. The customers without a segment (:data:`NO_SEGMENT`: no order by the
        value table's day, or not in it) give no rate: every customer a plan reaches has a
        segment, so it would apply to nobody; they count in the report's rows over all segments.
        The rows of a retention, service-recovery or cross-sell offer without a base probability
        are left out of both the incremental response and the mean it is divided by.

    Raises
    ------
    ValueError
        If a retention, service-recovery or cross-sell offer has outcomes but the base probability
        column (``churn_probability`` or ``propensity``) is missing.
    """
    # a row without its base probability counted in the incremental response but not in the
    # mean it was divided by: it is left out of both
    for offer in offers.offers:
        column = BASE_PROBABILITY.get(offer.kind)
        if column is not None and column in outcomes.columns:
            outcomes = outcomes.filter(
                (pl.col("offer") != offer.name) | pl.col(column).is_not_null()
            )
    if report is None:  # the rates read responses only: no margin is needed (nor guessed)
        report = campaign_report(outcomes.drop("margin", strict=False), offers, margin_rate=0.0)
    frame = (
        outcomes
        if "segment" in outcomes.columns
        else outcomes.with_columns(segment=pl.lit(ALL_SEGMENTS))
    )
    rates: dict[str, dict[str, float]] = {}
    # the customers without a segment had no order by the value table's day: no customer a plan
    # reaches is without one, so their rate would apply to nobody (Response.rate)
    cells = report.filter(~pl.col("segment").is_in([ALL_SEGMENTS, NO_SEGMENT]))
    for row in cells.iter_rows(named=True):
        if row["treated"] < min_customers or row["control"] < min_customers:
            continue
        if segments is not None and row["segment"] not in segments:
            continue
        offer = offers.offer(row["offer"])
        base = 1.0
        column = BASE_PROBABILITY.get(offer.kind)
        if column is not None:
            if column not in frame.columns:
                raise ValueError(
                    f"offer {offer.name!r} ({offer.kind}): the outcomes need a {column!r} column "
                    "to turn the incremental response into a rate"
                )
            cell = frame.filter(
                (pl.col("offer") == offer.name)
                & (pl.col("segment") == row["segment"])
                & ~pl.col("control")
            )
            mean = cell[column].mean()
            if not isinstance(mean, float) or mean <= 0:
                continue
            base = mean
        rate = float(np.clip(row["incremental_response"] / base, -1.0, 1.0))
        rates.setdefault(offer.name, {})[row["segment"]] = rate
    return rates


def not_in_values(
    outcomes: pl.DataFrame,
    lacking: pl.Series,
    day: date,
    what: str,
    consequence: str,
    write: Callable[[date], str] = str,
) -> str | None:
    """Say how many outcome customers lack what the value table of a day lacks too, and so what.

    ``guanxi target``, ``guanxi campaign report`` and the campaign page take the segment (and
    churn probability) of outcomes without one from the value table; a customer it lacks had no
    order up to its day, or is a customer of another store. The plan's rates dropped such
    customers without a word, while the report and the page showed them as unsegmented.

    Parameters
    ----------
    outcomes : polars.DataFrame
        Validated outcomes: every customer the note counts them among.
    lacking : polars.Series
        A boolean per outcome row: true where the row has no value of its own that it needs
        and the value table lacks its customer.
    day : datetime.date
        The table's day.
    what : str
        What those rows have none of, e.g. ``"segment"`` or ``"segment or churn probability"``.
    consequence : str
        What the reader of the note gets instead, e.g. ``"left out of the measured rates"``.
    write : callable, default str
        Writes the day (ISO 8601 by default; the campaign page writes ``31 Oct 2024``).

    Returns
    -------
    str or None
        The note, ``"N outcome customers of M (first three) have no <what> of their own and are
        not in the value table as of <day> (...): <consequence>"``: N the customers of the
        ``lacking`` rows, M every outcome customer, each once whatever their campaigns; None
        when no row is ``lacking``. (M counted the customers of the rows without a value of
        their own alone, so "100 outcome customers of 100" was said of a campaign of 200.)
    """
    every = outcomes["customer_id"].n_unique()
    named = outcomes.filter(lacking)["customer_id"].unique(maintain_order=True)
    if named.is_empty():
        return None
    shown = ", ".join(named.head(3).to_list()) + (", ..." if named.len() > 3 else "")
    have, are = ("has", "is") if named.len() == 1 else ("have", "are")
    return (
        f"{counted(named.len(), 'outcome customers')} of {every:,} ({shown}) {have} no {what} of "
        f"their own and {are} not in the value table as of {write(day)} (no order up to that "
        f"day, or customers of another store): {consequence}"
    )


LATEST_PLAN_DAY: Final = "the latest plan's day"
"""How :func:`outcome_values_day` says the day of the latest plan, whose expected ROI a report
sets beside its campaigns when they do not say which plan they were drawn from."""


def outcome_values_day(
    values: Sequence[date],
    plan: date | None,
    said: str = LATEST_PLAN_DAY,
    write: Callable[[date], str] = str,
) -> tuple[date, str] | None:
    """Pick the day of the value table that fills recorded outcomes' segment and churn probability.

    ``guanxi campaign report`` and the campaign page (``/ui/campaign``) both call it: the report
    fell back to the latest value table when the latest plan's day had none, while the page then
    filled nothing, so the two showed one campaign segmented differently.

    Parameters
    ----------
    values : sequence of datetime.date
        The days of the store's value tables, oldest first
        (:meth:`features.store.Store.list_values`).
    plan : datetime.date or None
        The day of the plan whose expected ROI is set beside the outcomes: the latest plan
        (shown or not), or the one plan the campaigns were drawn from (:meth:`DrawnPlans.one`);
        None without one.
    said : str, default :data:`LATEST_PLAN_DAY`
        How the note says that day, e.g. ``"the day of the plan the campaign was drawn from"``.
    write : callable, default str
        Writes a day in the note (ISO 8601 by default; the campaign page writes ``31 Oct
        2024``, as beside it).

    Returns
    -------
    tuple or None
        The day and why it is that day, for a note: the plan's day (the segments the plan's
        expected ROI is of) when the store has its value table, else the latest value table
        (``"the latest, as no plan is kept"``, ``"the latest, as the latest plan's day,
        2024-11-30, has none"``); None without a value table.
    """
    if not values:
        return None
    if plan is None:
        return values[-1], "the latest, as no plan is kept"
    if plan in values:
        return plan, said
    return values[-1], f"the latest, as {said}, {write(plan)}, has none"


FILLED_FROM_VALUES: Final[dict[str, str]] = {
    "segment": "rfm_segment",
    "churn_probability": "churn_probability",
}
"""The outcome columns the value table fills (:func:`fill_from_values`), with its column of each."""

_FILLED_NAMES: Final = {"segment": "segments", "churn_probability": "churn probabilities"}


THE_DRAWN_PLAN: Final = "the plan the campaigns were drawn from"
"""How :class:`ValuesFill` names the plan whose rows gave segments when it is not told which."""


@dataclass(frozen=True, eq=False)  # frames: no equality of their own
class ValuesFill:
    """Outcomes given a segment and churn probability row by row: the plan's, the value table's.

    Made by :func:`fill_from_values`; the readers of the recorded campaigns write their notes
    from it.

    Attributes
    ----------
    outcomes : polars.DataFrame
        The outcomes, each filled column holding the row's own value, else the segment the plan
        drawn from gave the customer (``from_plan``), else the value table's (null when none
        has one).
    own : polars.DataFrame
        One boolean column per filled column, a row per outcome: true where the row had a value
        of its own.
    in_values : polars.Series
        A boolean per outcome row: true where the value table holds its customer.
    from_plan : bool
        True when the rows without a segment of their own took theirs from the rows of the one
        plan the campaigns were drawn from (``fill_from_values``' ``planned``): every such row
        does, or none.
    moved : polars.Series
        A boolean per outcome row: true where the row took the table's segment while that plan
        gave its customer another (the table written again after the plan, or of another day),
        as not every row without a segment is in the plan. A customer the table lacks is not
        counted: :meth:`not_in_values` says it.
    plan : str
        Names that plan in the notes (:meth:`DrawnPlans.said`).
    plan_day : datetime.date or None
        That plan's day (None without one): the table of another day differs from it without
        being written again.
    plan_repeated : tuple of str
        The outcome customers the plan lists on more than one row, first found first: a plan
        ``guanxi target`` keeps gives a customer one offer, so its rows segment nothing then
        (:meth:`plan_refused`).
    """

    outcomes: pl.DataFrame
    own: pl.DataFrame
    in_values: pl.Series
    from_plan: bool
    moved: pl.Series
    plan: str = THE_DRAWN_PLAN
    plan_day: date | None = None
    plan_repeated: tuple[str, ...] = ()

    def needed(self, column: str | None = None) -> pl.Series:
        """Return which rows had no value of their own in ``column`` (in any, when None)."""
        columns = [column] if column is not None else self.own.columns
        return ~self.own.select(pl.all_horizontal(columns)).to_series()

    def from_table(self, column: str) -> pl.Series:
        """Return which rows needed ``column`` from the table: none of their own, nor the plan's."""
        needed = self.needed(column)
        if column == "segment" and self.from_plan:  # the plan gave every such row its segment
            return pl.repeat(False, needed.len(), eager=True)
        return needed

    def filled(self, column: str) -> int:
        """Return how many rows took ``column`` from the value table."""
        return int((self.from_table(column) & self.outcomes[column].is_not_null()).sum())

    def lacking(self, column: str) -> int:
        """Return how many rows have no ``column``: not their own, the plan's nor the table's."""
        return self.outcomes[column].null_count()

    def said(self, day: date, why: str, write: Callable[[date], str] = str) -> str:
        """Say what filled what, as many rows as it filled and as many as still lack one.

        Parameters
        ----------
        day : datetime.date
            The value table's day.
        why : str
            Why that day (:func:`outcome_values_day`).
        write : callable, default str
            Writes the day (ISO 8601 by default).

        Returns
        -------
        str
            E.g. ``"segments from the value table as of 2024-10-31 (the latest plan's day): for
            60 of the 80 outcome rows without one of their own (20 still lack one)"``; when no
            row lacked a value the table was not needed, and it says so. Segments from the plan
            are said as ``"segments from the rows of <plan>, which holds every one of the 80
            outcome rows without one of their own"``; rows the table segments while the plan
            gives them another are counted after the table's counts (``"<plan> gave another
            segment to 3 of the rows the table segments (the table written again after it): ..."``);
            a plan not used says why in :meth:`plan_refused`.
        """
        used = [c for c in self.own.columns if self.needed(c).any()]
        table = f"the value table as of {write(day)} ({why})"
        if not used:
            names = " and ".join(_FILLED_NAMES[c] for c in self.own.columns)
            return f"{names} are the outcomes' own: none is taken from {table}"
        if self.from_plan:
            needed = int(self.needed("segment").sum())
            parts = [
                f"segments from the rows of {self.plan}, which holds "
                f"{'the' if needed == 1 else 'every one of the'} "
                f"{counted(needed, 'outcome rows')} without one of their own"
            ]
            used = [c for c in used if c != "segment"]
            if not used:
                return parts[0]
        else:
            parts = []
        counts = []
        for column in used:
            needed, lacking = int(self.needed(column).sum()), self.lacking(column)
            still = (
                f" ({lacking:,} still {'lacks' if lacking == 1 else 'lack'} one)" if lacking else ""
            )
            counts.append(
                f"{_FILLED_NAMES[column] + ' ' if len(used) > 1 else ''}for "
                f"{self.filled(column):,} of the {counted(needed, 'outcome rows')} without one "
                f"of their own{still}"
            )
        names = " and ".join(_FILLED_NAMES[c] for c in used)
        parts.append(f"{names} from {table}: {'; '.join(counts)}")
        moved = int(self.moved.sum())
        if moved:
            why = (
                "the table written again after it"
                if self.plan_day == day
                else f"the table is of {write(day)}, not of the plan's day"
            )
            parts.append(
                f"{self.plan} gave another segment to {moved:,} of the rows the table segments "
                f"({why}): the plan does not hold every row without a segment of its own (as "
                "when a control was held out of it), so the contacted and the control customers "
                "are segmented alike, by the table, while the expected ROI is by the plan's "
                "segments"
            )
        return "; ".join(parts)

    def plan_refused(self) -> str | None:
        """Say why the plan's rows segment no outcome row, None when nothing refused them.

        The plan is named as :attr:`plan` says it; the commands write its day in ISO 8601.

        Returns
        -------
        str or None
            E.g. ``"the plan as of 2024-10-01 the campaign was drawn from lists customer 'C2'
            on more than one row, so its rows segment no outcome row (a plan gives a customer
            one offer); plan it again (guanxi target --budget B --offers OFFERS.yaml --as-of
            2024-10-01) and record the campaign again with --plan 2024-10-01"``.
        """
        if not self.plan_repeated or self.plan_day is None:
            return None
        day = self.plan_day.isoformat()
        return (
            f"{listed_twice(self.plan, self.plan_repeated, ' of the outcomes')}, so its rows "
            "segment no outcome row (a plan gives a customer one offer); plan it "
            f"again (guanxi target --budget B --offers OFFERS.yaml --as-of {day}) and record "
            f"the campaign again with --plan {day}"
        )

    def not_in_values(
        self, day: date, consequences: Mapping[str, str], write: Callable[[date], str] = str
    ) -> str | None:
        """Say the customers needing a value from the value table whom it lacks.

        Parameters
        ----------
        day : datetime.date
            The day of the value table that filled the outcomes.
        consequences : mapping of str to str
            What follows, per filled column, for a row that has no value in it.
        write : callable, default str
            Writes the day (ISO 8601 by default).

        Returns
        -------
        str or None
            :func:`not_in_values` of the rows needing a value from the table (none of their
            own, nor a segment from the plan's rows) whose customer the table lacks, among every
            outcome customer, one clause per set of columns such rows lack, with those columns'
            consequences: a row lacking a churn probability alone is not said to be unsegmented
            beside one lacking both (review40 L4); None when the table holds every such customer.
        """
        absent = ~self.in_values
        lacks = pl.DataFrame({c: self.from_table(c) & absent for c in self.own.columns})
        clauses = []
        for still in sorted(
            {
                tuple(c for c in lacks.columns if row[c])
                for row in lacks.unique().iter_rows(named=True)
            },
            key=lambda cols: (-len(cols), [self.own.columns.index(c) for c in cols]),
        ):
            if not still:  # rows the table filled, or needing nothing from it
                continue
            rows = lacks.select(
                pl.all_horizontal(pl.col(c) == (c in still) for c in lacks.columns)
            ).to_series()
            what = " or ".join(c.replace("_", " ") for c in still)
            said = "; ".join(consequences[c] for c in still if c in consequences)
            clauses.append(not_in_values(self.outcomes, rows, day, what, said, write))
        return "; ".join(c for c in clauses if c) or None


def fill_from_values(
    outcomes: pl.DataFrame,
    values: pl.DataFrame,
    columns: Sequence[str] = tuple(FILLED_FROM_VALUES),
    *,
    day: date,
    planned: tuple[date, pl.DataFrame] | None = None,
    plan: str = THE_DRAWN_PLAN,
) -> ValuesFill:
    """Give outcome rows without a segment or churn probability of their own the plan's or table's.

    The one filler of the recorded outcomes, for ``guanxi target`` (the measured rates),
    ``guanxi campaign report`` and the campaign page. Pooled campaigns
    (:func:`pool_campaigns`) hold nulls where a campaign had no such column: the readers filled
    a column only when every campaign lacked it, so a campaign without segments pooled with one
    that had them was all ``unsegmented``, and one without churn probabilities measured its
    retention rate from the incremental response of every row divided by the mean churn
    probability of the others. An empty value in a recorded file (an empty ``segment``: a
    customer the file gives none) is filled the same way, as a missing column is: it is what
    the file does not say; a customer the value table lacks too stays without one.

    Parameters
    ----------
    outcomes : polars.DataFrame
        Validated (and pooled) outcomes.
    values : polars.DataFrame
        The value table (``customer_id`` and the columns of :data:`FILLED_FROM_VALUES`).
    columns : sequence of str, default every column of :data:`FILLED_FROM_VALUES`
        The outcome columns to fill.
    day : datetime.date
        The value table's day, for the error naming it.
    planned : tuple of (datetime.date, polars.DataFrame) or None, default None
        The day and rows of the one plan the campaigns were drawn from (:attr:`DrawnPlans.rows`),
        whose segments key the expected ROI set beside the outcomes. When it holds every row without
        a segment of its own (the control held out of the plan's customers), those rows take
        its segments (:data:`NO_SEGMENT` as the plan names it), not the table's, which may have
        been written again since the plan (review38: the realised ROI of one segment was set
        beside the expected ROI of another). When it does not, every row takes the table's, so
        that the contacted and the control customers of a segment are segmented alike (the
        realised figures are treated minus control within a segment), and the rows whose
        customer the plan gives another segment are counted (``moved``), for the note. A plan
        listing an outcome customer on more than one row segments nothing (``plan_repeated``).
    plan : str, default :data:`THE_DRAWN_PLAN`
        Names that plan in the notes (:meth:`DrawnPlans.said`).

    Returns
    -------
    ValuesFill
        The outcomes, the row's own value first, else the plan's segment, else the value
        table's, and which rows had their own, whether those without a segment took the plan's,
        which the plan gives another segment and which customers the table holds, for the
        readers' notes.

    Raises
    ------
    RepeatedCustomersError
        If the value table lists an outcome customer on more than one row (the join would
        repeat the customer's outcome rows); the message names the day and a customer. A plan
        doing so segments nothing (:meth:`ValuesFill.plan_refused`).
    """
    context = values.select(
        pl.col("customer_id").cast(pl.String),
        *(pl.col(FILLED_FROM_VALUES[c]).alias(c) for c in columns),
        in_values=pl.lit(True),
    )
    # the table's columns are read beside the outcomes, not joined into them: a helper column
    # there (``_values_segment``) was renamed by a file's own of that name, read as the table's,
    # then dropped; the join's left side is the customers alone, so no name can clash
    table = outcomes.select("customer_id").join(
        context, on="customer_id", how="left", maintain_order="left"
    )
    if table.height != outcomes.height:  # a customer on two rows of the table: rows repeated
        raise repeated_customers(
            _repeated_among(context, outcomes),
            day,
            what="segment and churn probability",
            consequence="each row would count their outcome again",
            among=" of the outcomes",
        )
    own = pl.DataFrame(  # a column no outcome has is False on every row
        {
            c: outcomes[c].is_not_null()
            if c in outcomes.columns
            else pl.repeat(False, outcomes.height, eager=True)
            for c in columns
        }
    )
    taken = {c: table[c] for c in columns}  # each row's value from the table, or the plan's
    moved = pl.repeat(False, outcomes.height, eager=True)
    from_plan = False
    repeated: tuple[str, ...] = ()
    if planned is not None and "segment" in columns and (needs := ~own["segment"]).any():
        keyed = planned[1].select(pl.col("customer_id").cast(pl.String), "segment")
        repeated = tuple(_repeated_among(keyed, outcomes).to_list())
        if not repeated:  # else not a plan guanxi target kept: its rows segment nothing
            segment = outcomes.select("customer_id").join(
                keyed, on="customer_id", how="left", maintain_order="left"
            )["segment"]
            held, values_segment = segment.is_not_null(), taken["segment"]
            if (needs & ~held).any():  # the table segments both arms alike; said if it differs
                moved = needs & held & values_segment.is_not_null() & (segment != values_segment)
            else:  # every row without a segment of its own is planned: the plan's segments
                from_plan = True
                taken["segment"] = segment
    filled = outcomes.with_columns(
        (pl.coalesce(c, pl.lit(taken[c])) if c in outcomes.columns else pl.lit(taken[c])).alias(c)
        for c in columns
    )
    return ValuesFill(
        outcomes=filled,
        own=own,
        in_values=table["in_values"].fill_null(False),
        from_plan=from_plan,
        moved=moved,
        plan=plan,
        plan_day=planned[0] if planned is not None else None,
        plan_repeated=repeated,
    )


def _repeated_among(table: pl.DataFrame, outcomes: pl.DataFrame) -> pl.Series:
    """Return the outcome customers ``table`` lists on more than one row, first found first."""
    return table.filter(
        pl.col("customer_id").is_duplicated()
        & pl.col("customer_id").is_in(outcomes["customer_id"].implode())
    )["customer_id"].unique(maintain_order=True)


@dataclass(frozen=True, eq=False)  # frames: no equality of their own
class OutcomeValues:
    """The value table that filled recorded outcomes (:func:`outcome_values`).

    Attributes
    ----------
    day : datetime.date
        The table's day.
    why : str
        Why that day (:func:`outcome_values_day`), for a note.
    fill : ValuesFill
        The outcomes filled from it.
    write : callable, default str
        Writes the day in its notes (:func:`outcome_values`' ``write``).
    """

    day: date
    why: str
    fill: ValuesFill
    write: Callable[[date], str] = str

    def said(self, *between: str | None) -> str:
        """Say what filled what, for how many rows, and why the plan segments nothing, if so.

        The one joiner of the notes ``guanxi campaign report`` and the campaign page write.

        Parameters
        ----------
        *between : str or None
            Notes of the reader's own to set between the two, e.g. the report's on the
            customers the value table lacks; None is left out.

        Returns
        -------
        str
            :meth:`ValuesFill.said`, ``between`` and :meth:`ValuesFill.plan_refused` (last: it
            ends on the commands that mend the plan), joined by ``"; "``.
        """
        parts = (self.fill.said(self.day, self.why, self.write), *between, self.fill.plan_refused())
        return "; ".join(part for part in parts if part)

    def not_in_values(self, consequences: Mapping[str, str]) -> str | None:
        """Say the customers lacking a value of their own whom the table lacks too.

        Parameters
        ----------
        consequences : mapping of str to str
            What follows, per filled column, for a row that has no value in it.

        Returns
        -------
        str or None
            :meth:`ValuesFill.not_in_values` of this table; None when it holds every such
            customer.
        """
        return self.fill.not_in_values(self.day, consequences, self.write)


class RefusedValues(NamedTuple):
    """The value table picked for recorded outcomes, not used: not vouched for, or repeating."""

    day: date
    """The table's day."""
    error: UnsignedTableError | TamperedTableError | RepeatedCustomersError
    """Why: kept without the key, changed since, or an outcome customer on two of its rows."""


def outcome_values(
    store: Store,
    outcomes: pl.DataFrame,
    segmenting: Segmenting,
    columns: Sequence[str] = tuple(FILLED_FROM_VALUES),
    write: Callable[[date], str] = str,
) -> OutcomeValues | RefusedValues | None:
    """Fill recorded outcomes from the value table of :func:`outcome_values_day`, read checked.

    ``guanxi campaign report`` and the campaign page each picked the day, read the table with
    the same refusal handling and filled the outcomes (:func:`fill_from_values`) in a copy of
    their own; each writes its own notes from what this returns. The rows of the one plan the
    campaigns were drawn from segment them first when it holds every customer without a segment
    of their own (:func:`fill_from_values`); they are used beside a usable value table only (the
    plan was made from it): without one, or with one refused, no row takes the plan's segment
    either.

    Parameters
    ----------
    store : features.store.Store
        The store; with a key (``GUANXI_STORE_KEY``) it reads a value table only when it matches
        its signed manifest.
    outcomes : polars.DataFrame
        Validated (and pooled) outcomes.
    segmenting : Segmenting
        The day of the plan whose expected ROI is set beside the outcomes (the latest, shown or
        not, or the one the campaigns were drawn from; None without one), how the note says it
        (:func:`outcome_values_day`), and the one plan drawn from, whose rows segment the
        outcomes when it holds every row without a segment of its own
        (:meth:`DrawnPlans.segmenting`).
    columns : sequence of str, default every column of :data:`FILLED_FROM_VALUES`
        The outcome columns to fill.
    write : callable, default str
        Writes a day in the notes (ISO 8601 by default; the campaign page writes ``31 Oct 2024``,
        as beside them).

    Returns
    -------
    OutcomeValues or RefusedValues or None
        The table's day, why and the fill; the day and the refusal when the store's
        key does not vouch for the table, or the :class:`RepeatedCustomersError` when it lists
        an outcome customer on more than one row; None when the store has no value table (or it
        was removed since it was listed).
    """
    picked = outcome_values_day(store.list_values(), segmenting.day, segmenting.said, write)
    if picked is None:
        return None
    day, why = picked
    try:
        values = store.read_values(day)
    except (UnsignedTableError, TamperedTableError) as exc:
        return RefusedValues(day, exc)
    if values is None:  # removed since it was listed
        return None
    drawn, planned = segmenting.drawn, None
    if drawn is not None and drawn.rows is not None and segmenting.day is not None:
        planned = (segmenting.day, drawn.rows)
    plan = drawn.said(write) if drawn is not None else THE_DRAWN_PLAN
    try:
        fill = fill_from_values(outcomes, values, columns, day=day, planned=planned, plan=plan)
    except RepeatedCustomersError as exc:
        return RefusedValues(day, exc)
    return OutcomeValues(day, why, fill, write)


def realised_incremental_margin(
    outcomes: pl.DataFrame, customers: pl.Series, cost_per_contact: float
) -> dict[str, float]:
    """Estimate what contacting ``customers`` returned, from a randomised campaign's rows.

    The campaign contacted some of these customers and held the others out at random, so the
    difference of their mean margins estimates the effect of contact on this group; times the
    group's size, less the cost of contacting all of them, it is the incremental margin a plan
    selecting exactly this group would have realised.

    Parameters
    ----------
    outcomes : polars.DataFrame
        Validated outcomes with a ``margin`` column, one offer.
    customers : polars.Series
        The customer ids a plan selected (those not in the outcomes are ignored).
    cost_per_contact : float
        The offer's cost per contact.

    Returns
    -------
    dict of str to float
        ``customers`` (selected and in the outcomes), ``treated``, ``control``,
        ``incremental_margin`` (after costs; 0 for an empty selection).
    """
    rows = outcomes.filter(pl.col("customer_id").is_in(customers.implode()))
    treated = rows.filter(~pl.col("control"))["margin"]
    control = rows.filter(pl.col("control"))["margin"]
    size = rows.height
    effect = 0.0
    if treated.len() and control.len():
        effect = float(treated.mean()) - float(control.mean())  # type: ignore[arg-type]
    return {
        "customers": float(size),
        "treated": float(treated.len()),
        "control": float(control.len()),
        "incremental_margin": (effect - cost_per_contact) * size,
    }


def _same_rows(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    """Tell whether two campaigns hold the same outcomes, whatever their name and row order."""
    a, b = a.drop("campaign", strict=False), b.drop("campaign", strict=False)
    if a.height != b.height or set(a.columns) != set(b.columns):
        return False
    order = sorted(a.columns)
    keys = ["offer", "customer_id"]
    return a.select(order).sort(keys).equals(b.select(order).sort(keys))


def duplicate_of(outcomes: pl.DataFrame, campaigns: Mapping[str, pl.DataFrame]) -> str | None:
    """Name the recorded campaign whose outcomes are ``outcomes``, if one is.

    Parameters
    ----------
    outcomes : polars.DataFrame
        Validated outcomes about to be recorded.
    campaigns : mapping of str to polars.DataFrame
        The recorded campaigns by name: the others, or the one being replaced, to tell whether
        it is recorded again.

    Returns
    -------
    str or None
        The first such campaign by name: the same rows in every column but ``campaign``,
        whatever their order; None when none is.
    """
    return next((n for n in sorted(campaigns) if _same_rows(outcomes, campaigns[n])), None)


def _shared(a: pl.DataFrame, b: pl.DataFrame) -> dict[str, tuple[int, int, int]]:
    """Count the customers in both campaigns, per offer they share.

    Each offer's count is ``(customers, held_out, mixed)``: every customer in both, those held
    out as control by both, and those contacted by one and held out by the other (the rest were
    contacted by both). Rows without a ``control`` column (outcomes not validated) are taken as
    contacted.
    """
    keys = ["offer", "customer_id"]

    def rows(frame: pl.DataFrame) -> pl.DataFrame:
        control = pl.col("control") if "control" in frame.columns else pl.lit(False)
        return frame.select(*keys, control.alias("control")).unique(keys, keep="first")

    both = rows(a).join(rows(b), on=keys, suffix="_other")
    counts = (
        both.group_by("offer")
        .agg(
            pl.len().alias("customers"),
            (pl.col("control") & pl.col("control_other")).sum().alias("held_out"),
            (pl.col("control") != pl.col("control_other")).sum().alias("mixed"),
        )
        .sort("offer")
    )
    return {
        row["offer"]: (row["customers"], row["held_out"], row["mixed"])
        for row in counts.iter_rows(named=True)
    }


@dataclass(frozen=True)
class Overlap:
    """Two recorded campaigns with customers in common (:func:`pool_campaigns`).

    Parameters
    ----------
    first : str
        The campaign kept, first by name.
    second : str
        The other campaign.
    customers : int
        Customers in both: every row of ``second`` when it is a duplicate, else those of
        ``offer`` in both.
    offer : str or None, default None
        The offer they share; None for a duplicate (every offer).
    duplicate : bool, default False
        ``second`` holds the same outcomes as ``first`` and is left out of the pool.
    held_out : int, default 0
        Of ``customers``, those both campaigns held out as control: counted in both control
        groups, and no contact of either.
    mixed : int, default 0
        Of ``customers``, those one campaign contacted and the other held out: a contact in
        one, a control in the other.
    """

    first: str
    second: str
    customers: int
    offer: str | None = None
    duplicate: bool = False
    held_out: int = 0
    mixed: int = 0

    @property
    def contacted(self) -> int:
        """Of ``customers``, those both campaigns contacted: two contacts (0 for a duplicate)."""
        return 0 if self.duplicate else self.customers - self.held_out - self.mixed

    def involves(self, campaign: str) -> bool:
        """Tell whether ``campaign`` is one of the two.

        Parameters
        ----------
        campaign : str
            A campaign's name.

        Returns
        -------
        bool
            True when it is ``first`` or ``second``.
        """
        return campaign in (self.first, self.second)

    @property
    def note(self) -> str:
        """The overlap in words, as ``guanxi campaign`` and ``guanxi target`` print it."""
        pair = f"campaigns {self.first!r} and {self.second!r}"
        if self.duplicate:
            return (
                f"{pair} hold the same outcomes ({counted(self.customers, 'customers')}): "
                f"counted once, as {self.first!r}"
            )
        shared = f"{pair} share {counted(self.customers, 'customers')} of offer {self.offer!r}"
        once = "(if it is one campaign recorded twice, record it once)"
        if not self.held_out and not self.mixed:
            return f"{shared}: they count in both, as two contacts {once}"
        kinds = [  # each kind's words once, no bracket in a bracket (review45 L3)
            (self.contacted, "as two contacts"),
            (self.held_out, "in both control groups (held out by both, not contacted)"),
            (self.mixed, "as a contact in one and a control in the other"),
        ]
        said = [f"{n:,} {kind}" for n, kind in kinds if n]
        listed = ", ".join(said[:-1]) + " and " + said[-1] if len(said) > 1 else said[0]
        return (
            f"{shared}: they count in both: {listed}; if it is one campaign recorded twice, "
            "record it once"
        )


def pool_campaigns(
    campaigns: Mapping[str, pl.DataFrame],
) -> tuple[pl.DataFrame | None, list[Overlap]]:
    """Pool recorded campaigns, each set of outcomes once, and say where they overlap.

    Parameters
    ----------
    campaigns : mapping of str to polars.DataFrame
        Validated outcomes by campaign name.

    Returns
    -------
    tuple
        The pooled outcomes (columns missing from some campaigns are null there; None without a
        campaign) and the overlaps: a campaign holding the same outcomes as one before it by
        name is left out (one file recorded twice would count its customers twice; a duplicate
        :class:`Overlap`), and every pair of the others sharing customers of an offer is an
        :class:`Overlap` of that offer, those customers counting in both (two waves of an offer
        are two observations).
    """
    kept: dict[str, pl.DataFrame] = {}
    overlaps: list[Overlap] = []
    for name in sorted(campaigns):
        frame = campaigns[name]
        same = duplicate_of(frame, kept)
        if same is not None:
            overlaps.append(Overlap(same, name, frame.height, duplicate=True))
            continue
        for other, earlier in kept.items():
            for offer, (n, held_out, mixed) in _shared(earlier, frame).items():
                overlaps.append(Overlap(other, name, n, offer, held_out=held_out, mixed=mixed))
        kept[name] = frame
    if not kept:
        return None, overlaps
    return pl.concat(list(kept.values()), how="diagonal_relaxed"), overlaps


def with_campaign_names(
    outcomes: pl.DataFrame, campaigns: Mapping[str, pl.DataFrame], overlaps: Sequence[Overlap]
) -> pl.DataFrame:
    """Name each pooled outcome row's campaign, in :data:`CAMPAIGN_COLUMN`.

    :func:`campaign_report` prices the contacts of an offer whose campaigns were drawn at
    different costs at the cost each campaign paid (its ``paid``), by this column.

    Parameters
    ----------
    outcomes : polars.DataFrame
        The pooled outcomes, in :func:`pool_campaigns`' order (as :func:`segment_campaigns`
        keeps them): each kept campaign's rows in turn, by name, a duplicate left out.
    campaigns : mapping of str to polars.DataFrame
        The outcomes pooled, by campaign name.
    overlaps : sequence of Overlap
        :func:`pool_campaigns`' overlaps, which name the campaigns left out as duplicates.

    Returns
    -------
    polars.DataFrame
        ``outcomes`` with :data:`CAMPAIGN_COLUMN`.

    Raises
    ------
    ValueError
        If ``outcomes`` has not the rows of the campaigns kept (not pooled from them).
    """
    left_out = {overlap.second for overlap in overlaps if overlap.duplicate}
    kept = [name for name in sorted(campaigns) if name not in left_out]
    if sum(campaigns[name].height for name in kept) != outcomes.height:
        raise ValueError(
            f"{outcomes.height:,} outcome rows are not those of the campaigns pooled "
            f"({', '.join(map(repr, kept))})"
        )
    names = [pl.repeat(name, campaigns[name].height, dtype=pl.String, eager=True) for name in kept]
    return outcomes.with_columns(
        pl.concat(names).alias(CAMPAIGN_COLUMN) if names else pl.lit(None, dtype=pl.String)
    )


def recorded_campaigns(
    store: Store, exclude: Collection[str] = (), until: date | None = None
) -> dict[str, pl.DataFrame]:
    """Read every recorded campaign's outcomes from the store, each file once.

    The one reader of the recorded campaigns: pool what it returns (:func:`pool_campaigns`)
    rather than reading the files again.

    Parameters
    ----------
    store : features.store.Store
        The store.
    exclude : collection of str, default ()
        Campaigns not to read (``guanxi campaign record`` replacing one reads only the others).
    until : datetime.date, optional
        Read only the campaigns whose outcomes were complete on or before this day
        (:attr:`features.store.CampaignInfo.as_of`); every one when omitted.

    Returns
    -------
    dict of str to polars.DataFrame
        The outcomes by campaign name, in the store's order (by name), but those excluded;
        empty when nothing is recorded.

    Raises
    ------
    features.store.UnsignedTableError, features.store.TamperedTableError
        With a key (``GUANXI_STORE_KEY``): a campaign recorded without it, or changed since;
        the message names the campaign and the ``guanxi campaign record`` command that records
        it again. With or without one: a campaign file whose metadata cannot be read.
    """
    return _campaigns_until(store, store.list_campaigns(exclude), until)[0]


def _campaigns_until(
    store: Store, listed: list[CampaignInfo], until: date | None
) -> tuple[dict[str, pl.DataFrame], list[CampaignInfo]]:
    """Read the ``listed`` campaigns complete on or before ``until``; list the later ones."""
    campaigns, later = {}, []
    for info in listed:
        if until is not None and info.as_of > until:  # a plan of that day could not know it
            later.append(info)
            continue
        outcomes = read_recorded_campaign(store, info)
        if outcomes is not None:  # None: removed since it was listed
            campaigns[info.name] = outcomes
    return campaigns, later


def read_recorded_campaign(store: Store, info: CampaignInfo) -> pl.DataFrame | None:
    """Read one listed campaign's outcomes, checked as :func:`recorded_campaigns` checks each.

    For a reader that goes on past a campaign the store's key does not vouch for
    (``guanxi campaign list``); the others read every campaign with :func:`recorded_campaigns`.

    Parameters
    ----------
    store : features.store.Store
        The store.
    info : features.store.CampaignInfo
        The campaign, as :meth:`features.store.Store.list_campaigns` lists it.

    Returns
    -------
    polars.DataFrame or None
        The outcomes; None when the campaign was removed since it was listed.

    Raises
    ------
    features.store.UnsignedTableError, features.store.TamperedTableError
        As :func:`recorded_campaigns`, naming the campaign and the ``guanxi campaign record``
        command that records it again.
    """
    again = f"guanxi campaign record --file {shlex.quote(info.source)} --name {info.name}"
    with vouched_for(f"the recorded campaign {info.name!r}", again):
        return store.read_campaign(info.name)


def later_note(later: Sequence[CampaignInfo], day: date) -> str | None:
    """Say which recorded campaigns a plan or uplift fit of ``day`` leaves out, and why.

    Parameters
    ----------
    later : sequence of features.store.CampaignInfo
        The campaigns whose outcomes were complete after ``day``.
    day : datetime.date
        The plan's (or fit's) day.

    Returns
    -------
    str or None
        The note; None when ``later`` is empty.
    """
    if not later:
        return None
    named = ", ".join(f"{info.name!r} (outcomes of {info.as_of})" for info in later)
    return (
        f"{counted(len(later), 'recorded campaigns')} left out: {named}: their outcomes were "
        f"complete after {day}, so a plan of that day could not have known them (the day is "
        "guanxi campaign record's --as-of, by default the day it was recorded)"
    )


UNSAID_PLAN: Final = "a recorded campaign does not say which plan it came from"
"""Why the latest stored plan's expected ROI is set beside campaigns none of which says the plan
it was drawn from (:class:`DrawnPlans`): recorded before guanxi kept it, or planned outside
guanxi."""


def plans_holding(outcomes: pl.DataFrame, plans: Mapping[date, pl.DataFrame]) -> list[date]:
    """Return the stored plans that gave every contacted customer of a campaign their offer.

    ``guanxi campaign record`` takes a campaign to be drawn from the plan when exactly one
    holds it (:attr:`features.store.CampaignInfo.plan`): a campaign that contacted part of a
    plan's customers is drawn from it, one that contacted a customer with an offer no plan gave
    them is not known to be drawn from any, and one that several plans hold alike is not said
    to be drawn from one of them.

    Parameters
    ----------
    outcomes : polars.DataFrame
        Validated outcomes.
    plans : mapping of datetime.date to polars.DataFrame
        Each stored plan's rows (``customer_id`` and ``offer`` at least), by its day.

    Returns
    -------
    list of datetime.date
        The days of the plans whose rows hold every contacted customer (``control`` false) with
        the offer the outcomes give them, oldest first; none when nobody was contacted, whom
        every plan would hold alike.
    """
    keys = ["customer_id", "offer"]
    contacted = outcomes.filter(~pl.col("control")).select(keys).unique()
    if contacted.is_empty():
        return []
    return [
        day
        for day in sorted(plans)
        if contacted.join(plans[day].select(keys), on=keys, how="anti").is_empty()
    ]


class DrawnPlans(NamedTuple):
    """The stored plans the reported campaigns were drawn from (:func:`drawn_plans`).

    Attributes
    ----------
    days : tuple of datetime.date
        The days of the plans the campaigns name, oldest first; empty when none names one.
    campaigns : int
        How many campaigns are reported.
    rows : polars.DataFrame or None
        The plans' rows together, whose expected ROI (:func:`expected_roi`) is set beside the
        campaigns' realised one; None when a campaign names no plan, or one it names is not
        stored as it was when the campaign was recorded.
    unused : str
        Why ``rows`` is None, said in the note on the latest plan's expected ROI set instead
        (:func:`expected_plan_note`): :data:`UNSAID_PLAN` when no campaign names a plan, else
        every reason, joined by ``"; "``; empty when ``rows`` is not None.
    refused : Exception or None
        The store's refusal of a plan named (its key does not vouch for it), the first when
        several are refused, if that is among the reasons.
    as_drawn : mapping of datetime.date to polars.DataFrame
        The rows of each plan named that is stored as it was, by day, even when ``rows`` is
        None: they price an offer the latest plan lacks (:func:`drawn_costs`).
    names : tuple of str
        The campaigns drawn from the one plan of ``days``, named in the notes when campaigns of
        several plans are each segmented by their own (:func:`segment_campaigns`); empty
        otherwise ("the campaign was drawn from").
    """

    days: tuple[date, ...]
    campaigns: int
    rows: pl.DataFrame | None
    unused: str
    refused: Exception | None = None
    as_drawn: Mapping[date, pl.DataFrame] = MappingProxyType({})
    names: tuple[str, ...] = ()

    def _drawn(self) -> str:
        """Say who was drawn: ``the campaign was``, ``campaigns 'aug', 'sep' were``."""
        if self.names:
            one = len(self.names) == 1
            named = ", ".join(repr(name) for name in self.names)
            return f"campaign{'' if one else 's'} {named} {'was' if one else 'were'}"
        return "the campaign was" if self.campaigns == 1 else "the campaigns were"

    def said(self, day: Callable[[date], str] = str) -> str:
        """Name the plans the campaigns were drawn from, for the expected ROI's heading.

        Parameters
        ----------
        day : callable, default str
            Writes a day (ISO 8601 by default; the pages write ``31 Oct 2024``).

        Returns
        -------
        str
            E.g. ``"the plan as of 2024-10-31 the campaign was drawn from"``, ``"the plans as
            of 2024-09-30 and 2024-10-31 the campaigns were drawn from, together"``; for plans
            used (``rows`` not None), of which there is at least one.
        """
        many = len(self.days) > 1
        days = ", ".join(day(d) for d in self.days[:-1])
        days = f"{days} and {day(self.days[-1])}" if many else day(self.days[-1])
        return f"the plan{'s' if many else ''} as of {days} {self._drawn()} drawn from" + (
            ", together" if many else ""
        )

    def one(self) -> tuple[date, str] | None:
        """Return the one plan used and how to say its day, to segment the outcomes by.

        The expected ROI per segment is keyed by the segments of the plan's rows, those of its
        day; outcome rows without a segment of their own took the value table of the latest
        plan's day, so a campaign drawn from an earlier plan set "realised ROI of the customers
        at risk at the latest plan" beside "expected ROI of those at risk at its own"
        (:func:`outcome_values`). They take the segments of its rows when it holds every one of
        them (contacted and control), else those of the value table of its day, both arms
        alike (:meth:`segmenting`, :func:`fill_from_values`): the table's differ from the rows'
        when it was written again after the plan, which the note then says.

        Returns
        -------
        tuple of (datetime.date, str) or None
            The plan's day and ``"the day of the plan the campaign was drawn from"``; None
            when the plans are not used (``rows`` None) or are several, whose campaigns are
            each segmented by their own (:func:`segment_campaigns`).
        """
        if self.rows is None or len(self.days) != 1:
            return None
        return self.days[0], f"the day of the plan {self._drawn()} drawn from"

    def segmenting(self, latest: date | None) -> Segmenting:
        """Return what segments the outcomes without a segment of their own.

        Parameters
        ----------
        latest : datetime.date or None
            The latest plan's day (None: the store has no plan).

        Returns
        -------
        Segmenting
            The one plan's day and how to say it (:meth:`one`), with these plans, whose rows
            segment the outcomes when they hold every row without a segment of its own (else
            the value table of that day does); else ``latest`` and :data:`LATEST_PLAN_DAY`, as
            ``guanxi campaign report`` and the campaign page read it
            (:func:`outcome_values`); campaigns of several plans used are each segmented by
            their own (:func:`segment_campaigns`).
        """
        one = self.one()
        return Segmenting(*one, self) if one is not None else Segmenting(latest)


class Segmenting(NamedTuple):
    """What segments recorded outcomes without a segment of their own (:func:`outcome_values`)."""

    day: date | None
    """The day of the plan whose expected ROI is set beside them, None without a plan: its value
    table segments them (:func:`outcome_values_day`)."""
    said: str = LATEST_PLAN_DAY
    """How a note says that day."""
    drawn: DrawnPlans | None = None
    """The one plan the campaigns were drawn from (:meth:`DrawnPlans.segmenting`), whose rows
    segment the outcomes when it holds every one without a segment of its own, before the
    value table (:func:`fill_from_values`); None when they are not used."""


def _names(campaigns: Sequence[CampaignInfo]) -> str:
    """``campaign 'october'``, ``campaigns 'may', 'october'``."""
    named = ", ".join(repr(info.name) for info in campaigns)
    return f"campaign{'s' if len(campaigns) > 1 else ''} {named}"


def drawn_plans(
    campaigns: Sequence[CampaignInfo],
    read: Callable[[date], tuple[pl.DataFrame, PlanInfo] | None],
    day: Callable[[date], str] = str,
) -> DrawnPlans:
    """Read the stored plans the reported campaigns were drawn from, if they say and still are.

    ``guanxi campaign report`` and the campaign page set these plans' expected ROI beside the
    campaigns' realised one. They set the latest stored plan's instead when a campaign does not
    say which plan it came from (:attr:`features.store.CampaignInfo.plan`), or the plan it names
    is not stored as it was (:attr:`DrawnPlans.unused` says why): a plan made again since a
    campaign drawn from it was recorded (``guanxi target`` of its day, perhaps with the rates
    the campaign measured) is not the one it was drawn from.

    Parameters
    ----------
    campaigns : sequence of features.store.CampaignInfo
        The recorded campaigns reported.
    read : callable
        Reads a stored plan's rows and metadata from one checked read, None when the store has
        no plan of the day (:meth:`features.store.Store.read_plan_with_info`); a refusal of the
        store's key (:class:`features.store.UnsignedTableError`,
        :class:`features.store.TamperedTableError`) is kept in :attr:`DrawnPlans.refused`.
    day : callable, default str
        Writes a day in :attr:`DrawnPlans.unused` (ISO 8601 by default; the campaign page
        writes ``31 Oct 2024``, as beside it).

    Returns
    -------
    DrawnPlans
        The plans, their rows together, or why they are not used, every reason joined by
        ``"; "`` (the first refusal of the store's key kept); :data:`UNSAID_PLAN` alone when no
        campaign names a plan.
    """
    if not campaigns:  # nothing to read: polars refuses to concatenate no plan
        return DrawnPlans((), 0, None, UNSAID_PLAN)
    days = tuple(sorted({info.plan for info in campaigns if info.plan is not None}))
    unsaid = [info for info in campaigns if info.plan is None]
    # every reason, not the first: a campaign naming no plan hid that the plan the others
    # were drawn from was made again since, whose ROI was then set beside them unsaid (qa45 #3)
    unused: list[str] = []
    if unsaid:
        one = len(unsaid) == 1
        unused.append(
            UNSAID_PLAN
            if not days
            else f"{_names(unsaid)} {'does' if one else 'do'} not say which plan "
            f"{'it' if one else 'they'} came from"
        )
    found: dict[date, pl.DataFrame] = {}
    refused = None
    for plan_day in days:
        drawn = [info for info in campaigns if info.plan == plan_day]
        one = len(drawn) == 1
        of = f"the plan as of {day(plan_day)} {_names(drawn)} {'was' if one else 'were'} drawn from"
        try:
            read_plan = read(plan_day)
        except (UnsignedTableError, TamperedTableError) as exc:
            unused.append(f"{of} is not one the store's key vouches for")
            refused = refused or exc
            continue
        if read_plan is None:
            unused.append(f"{of} is no longer stored")
            continue
        recorded = min(datetime.fromisoformat(info.created) for info in drawn)
        if datetime.fromisoformat(read_plan[1].created) > recorded:
            unused.append(f"{of} was made again since {'it was' if one else 'they were'} recorded")
            continue
        found[plan_day] = read_plan[0]
    if unused:
        return DrawnPlans(days, len(campaigns), None, "; ".join(unused), refused, found)
    rows = pl.concat(list(found.values()), how="diagonal_relaxed")
    return DrawnPlans(days, len(campaigns), rows, "", as_drawn=found)


class CampaignValues(NamedTuple):
    """The campaigns drawn from one plan, filled by it (:func:`segment_campaigns`)."""

    names: tuple[str, ...]
    """The campaigns, by name."""
    plan: date | None
    """The day of the plan they were drawn from when each plan's campaigns are filled apart;
    None when every campaign is filled as one."""
    outcomes: pl.DataFrame
    """Their outcomes pooled as recorded, before any fill: what the readers count as lacking."""
    read: OutcomeValues | RefusedValues | None
    """The fill and what it used (:func:`outcome_values`), a refused table, or None when the
    store has no value table."""


class SegmentedCampaigns(NamedTuple):
    """Pooled outcomes filled, each campaign by its own plan's day when there are several."""

    outcomes: pl.DataFrame
    """Every campaign kept by :func:`pool_campaigns` pooled, in its order, each row with its own
    value first, else its plan's segment, else its table's."""
    parts: tuple[CampaignValues, ...]
    """One per plan whose campaigns lack a value of their own (one for every campaign when they
    are not segmented plan by plan), oldest plan first: each says its note."""


def segment_campaigns(
    store: Store,
    campaigns: Mapping[str, pl.DataFrame],
    overlaps: Sequence[Overlap],
    infos: Sequence[CampaignInfo],
    drawn: DrawnPlans,
    latest: date | None,
    columns: Sequence[str] = tuple(FILLED_FROM_VALUES),
    write: Callable[[date], str] = str,
) -> SegmentedCampaigns:
    """Give pooled campaigns' rows without a segment (or churn probability) their plan's.

    The one segmenter of ``guanxi campaign report`` and the campaign page, so that the two cannot
    drift. Campaigns drawn from plans of several days, all used (:attr:`DrawnPlans.rows`), were
    all segmented by the latest plan's day, beside an expected ROI keyed by each plan's own
    segments: a campaign of an earlier plan was reported in segments its customers did not have
    when drawn. Each such campaign is now filled by its own plan, as one plan's
    campaigns are (:meth:`DrawnPlans.segmenting`, :func:`outcome_values`), and says so in a note
    of its own. Otherwise (one plan, or plans not used, whose expected ROI is then the latest
    plan's) every campaign is filled as one, by :meth:`DrawnPlans.segmenting`.

    Parameters
    ----------
    store : features.store.Store
        The store (its value tables read checked, as :func:`outcome_values` reads them).
    campaigns : mapping of str to polars.DataFrame
        The recorded campaigns' validated outcomes by name (:func:`recorded_campaigns`).
    overlaps : sequence of Overlap
        What :func:`pool_campaigns` found among them, on the outcomes as recorded: a duplicate
        campaign it left out is left out here too.
    infos : sequence of features.store.CampaignInfo
        The campaigns as listed, for the plan each names (:attr:`CampaignInfo.plan`).
    drawn : DrawnPlans
        The plans they were drawn from (:func:`drawn_plans`).
    latest : datetime.date or None
        The latest plan's day (None: the store has no plan).
    columns : sequence of str, default every column of :data:`FILLED_FROM_VALUES`
        The outcome columns to fill.
    write : callable, default str
        Writes a day in the notes (ISO 8601 by default; the campaign page writes ``31 Oct 2024``).

    Returns
    -------
    SegmentedCampaigns
        The pooled outcomes filled, in :func:`pool_campaigns`' order, and one part per plan
        whose campaigns lack a value in ``columns`` (none when every row has its own).
    """
    left_out = {overlap.second for overlap in overlaps if overlap.duplicate}
    kept = [name for name in sorted(campaigns) if name not in left_out]
    plan_of = {info.name: info.plan for info in infos}
    several = drawn.rows is not None and len(drawn.days) > 1
    groups: dict[date | None, list[str]] = {}
    for name in kept:
        groups.setdefault(plan_of.get(name) if several else None, []).append(name)
    start, places = 0, {}
    for name in kept:  # each row's place in the pool, to put the filled groups back in order
        places[name] = pl.int_range(start, start + campaigns[name].height, eager=True)
        start += campaigns[name].height
    filled, parts = [], []
    placed: list[pl.Series] = []  # the places of the rows of ``filled``, in its order
    for day, names in sorted(groups.items(), key=lambda item: (item[0] is not None, item[0])):
        pooled = pl.concat([campaigns[name] for name in names], how="diagonal_relaxed")
        # the places stay beside the rows, not in a column of them (a "_row" column was left in
        # each part's fill, and replaced a file's own): the fill keeps the rows' order
        placed.extend(places[name] for name in names)
        if day is None or day not in drawn.as_drawn:
            day, segmenting = None, drawn.segmenting(latest)
        else:  # its own plan: its day's table, its rows' segments
            one = DrawnPlans((day,), len(names), drawn.as_drawn[day], "", names=tuple(names))
            segmenting = one.segmenting(latest)
        if all(c in pooled.columns and not pooled[c].null_count() for c in columns):
            filled.append(pooled)  # every row has its own: no table read, nothing said
            continue
        read = outcome_values(store, pooled, segmenting, columns, write)
        filled.append(read.fill.outcomes if isinstance(read, OutcomeValues) else pooled)
        parts.append(CampaignValues(tuple(names), day, pooled, read))
    if not filled:  # nothing recorded: polars refuses to concatenate no frame
        return SegmentedCampaigns(pl.DataFrame(), ())
    outcomes = pl.concat(filled, how="diagonal_relaxed")[pl.concat(placed).arg_sort()]
    order = list(dict.fromkeys(c for name in kept for c in campaigns[name].columns))  # the pool's
    return SegmentedCampaigns(
        outcomes.select(*order, *(c for c in outcomes.columns if c not in order)), tuple(parts)
    )


class DrawnCosts(NamedTuple):
    """The costs the campaigns paid, from the plans they were drawn from.

    Attributes
    ----------
    costs : dict of str to float
        The cost per contact of each offer so priced, by name (:func:`campaign_report`'s
        ``costs``, which win over the latest plan's offers).
    note : str or None
        Says which offers are priced so where the latest plan lacks them or prices them
        otherwise, and which the latest plan prices though their campaigns were drawn at
        different costs; None when there is nothing to say.
    declined : mapping of str to str, default empty
        Why each offer the latest plan lacks is not priced so, by name (e.g. ``"campaign
        'wave3' names no plan"``), for the texts naming it (:func:`unpriced_offers`).
    paid : mapping of (str, str) to float, default empty
        The cost per contact each campaign paid, by campaign and offer name, for the offers
        whose campaigns were drawn at different costs (:func:`campaign_report`'s ``paid``).
    planned : frozenset of str, default empty
        The offers of ``declined`` that a plan their campaigns were drawn from gave to the
        campaign's contacted customers: real offers, not misspelt ones (the texts naming them
        ask no "is it ...?").
    """

    costs: dict[str, float]
    note: str | None
    declined: Mapping[str, str] = MappingProxyType({})
    paid: Mapping[tuple[str, str], float] = MappingProxyType({})
    planned: frozenset[str] = frozenset()

    @property
    def priced(self) -> set[str]:
        """The offers priced as their campaigns paid: at one cost (``costs``) or per campaign."""
        return set(self.costs) | {offer for _, offer in self.paid}


def _drawn_from(paid: Sequence[tuple[str, date]], day: Callable[[date], str]) -> str:
    """Name the plans campaigns were drawn from: ``the plan as of 2024-10-01 that campaign ...``."""
    days = sorted({plan_day for _, plan_day in paid})
    names = list(dict.fromkeys(name for name, _ in paid))
    one = len(names) == 1
    return (
        f"the plan{'s' if len(days) > 1 else ''} as of {' and '.join(map(day, days))} that "
        f"campaign{'' if one else 's'} {', '.join(map(repr, names))} {'was' if one else 'were'} "
        "drawn from"
    )


def drawn_costs(
    campaigns: Mapping[str, pl.DataFrame],
    infos: Sequence[CampaignInfo],
    drawn: DrawnPlans,
    offers: OffersFile,
    plan: str = "the latest stored plan",
    day: Callable[[date], str] = str,
    *,
    overlaps: Sequence[Overlap] = (),
) -> DrawnCosts:
    """Price each offer at the cost its campaigns paid, from the plans they were drawn from.

    ``guanxi campaign report`` and the campaign page took every cost from the latest stored
    plan's offers: an offer it renamed or dropped since was refused (the report) or shown
    without cost and ROI (the page), and one it prices otherwise than the plan its campaign was
    drawn from gave a realised ROI at a cost the campaign did not pay (review48 M2). An offer is
    priced so when every campaign that contacted customers with it names a plan still stored as
    it was (:attr:`DrawnPlans.as_drawn`) that gave it to those customers: at that cost per
    contact when all gave one (``costs``), else each campaign's contacts at the cost its own
    plan gave them (``paid``; qa44 M3: one cost for all, the latest plan's or ``--offers``',
    priced some contacts at a cost they did not pay). Only the plan's rows of the campaign's own
    contacted customers with that offer count (review48 M1: a plan that gave it to others, say
    one named by mistake, priced it). A campaign naming no plan, or one not stored as it was,
    has its own contacts priced at the latest plan's cost, said in the note, when the other
    campaigns' plans each gave theirs one cost. Otherwise the latest plan's offers price it, or
    nothing does.

    Parameters
    ----------
    campaigns : mapping of str to polars.DataFrame
        Each recorded campaign's outcomes (``customer_id``, ``offer``, ``control``), by name.
    infos : sequence of features.store.CampaignInfo
        Their metadata (:attr:`features.store.CampaignInfo.plan`, the plan each was drawn from).
    drawn : DrawnPlans
        The plans they were drawn from (:func:`drawn_plans`).
    offers : models.offers.OffersFile
        The latest plan's offers, which price the others.
    plan : str, default "the latest stored plan"
        Names the plan ``offers`` are of, in the note.
    day : callable, default str
        Writes a day in the note (ISO 8601 by default; the page writes ``31 Oct 2024``).
    overlaps : sequence of Overlap, default ()
        :func:`pool_campaigns`' overlaps: a campaign it left out as a duplicate is not read (a
        duplicate naming no plan stopped the pricing per campaign).

    Returns
    -------
    DrawnCosts
        The costs, the note, e.g. ``"'retention_email', not among the offers of the latest
        stored plan, is priced at 4.00 a contact as in the plan as of 2024-10-01 that campaign
        'october' was drawn from"``, why an offer ``offers`` lacks is not priced so, each
        campaign's cost of an offer drawn at different costs, and the offers not priced that a
        plan gave.
    """
    plan_of = {info.name: info.plan for info in infos}
    latest = {o.name: o.cost for o in offers.offers}
    left_out = {overlap.second for overlap in overlaps if overlap.duplicate}
    contacted = {
        name: frame.filter(~pl.col("control")).select("customer_id", "offer")
        for name, frame in campaigns.items()
        if name not in left_out
    }
    holding: dict[str, list[str]] = {}
    for name, mine in contacted.items():
        for offer in mine["offer"].unique().sort().to_list():
            holding.setdefault(offer, []).append(name)
    costs: dict[str, float] = {}
    by_campaign: dict[tuple[str, str], float] = {}
    said: list[str] = []
    declined: dict[str, str] = {}
    planned: set[str] = set()
    for offer, names in sorted(holding.items()):
        paid: dict[float, list[tuple[str, date]]] = {}
        each: dict[tuple[str, str], float] = {}  # the one cost each campaign's plan gave it
        why = None  # the first reason; every campaign is still read, to know if a plan gave it
        unknown: dict[str, str] = {}  # the campaigns whose plan is not known, and why
        for name in names:
            plan_day = plan_of.get(name)
            rows = drawn.as_drawn.get(plan_day) if plan_day is not None else None
            if plan_day is None or rows is None:
                unknown[name] = (
                    f"campaign {name!r} names no plan"
                    if plan_day is None
                    else f"the plan as of {day(plan_day)} that campaign {name!r} was drawn from "
                    "is not stored as it was"
                )
                why = why or unknown[name]
                continue
            given = contacted[name].filter(pl.col("offer") == offer)
            cost = rows.join(given, on=["customer_id", "offer"], how="semi")["cost"]
            if cost.is_empty():
                why = why or (
                    f"the plan as of {day(plan_day)} that campaign {name!r} was drawn from did "
                    "not give it to the campaign's contacted customers"
                )
                continue
            gave = sorted({float(each) for each in cost.to_list()})
            for each_cost in gave:
                paid.setdefault(each_cost, []).append((name, plan_day))
            if len(gave) == 1:
                each[(name, offer)] = gave[0]
        if why is None and len(paid) == 1:
            ((costs[offer], drawers),) = paid.items()
            at = f"is priced at {format_number(costs[offer], 2)} a contact as in"
            if offer not in latest:
                said.append(
                    f"{offer!r}, not among the offers of {plan}, {at} {_drawn_from(drawers, day)}"
                )
            elif latest[offer] != costs[offer]:
                said.append(
                    f"{offer!r} {at} {_drawn_from(drawers, day)}, not at the "
                    f"{format_number(latest[offer], 2)} of {plan}"
                )
            continue
        different = "its campaigns were drawn at different costs, " + " and ".join(
            f"{format_number(cost, 2)} a contact ({_drawn_from(drawers, day)})"
            for cost, drawers in sorted(paid.items())
        )
        if why is None and len(each) == len(names):  # each campaign at its own plan's cost
            by_campaign |= each
            said.append(
                f"{offer!r}, not among the offers of {plan}, is priced at the cost each campaign "
                f"paid: {different}"
                if offer not in latest
                else f"{offer!r} is priced at the cost each campaign paid, not at the "
                f"{format_number(latest[offer], 2)} a contact of {plan} for all: {different}"
            )
            continue
        known = [name for name in names if name not in unknown]
        if unknown and offer in latest and known and all((name, offer) in each for name in known):
            # only the campaigns whose plan is not known take the latest plan's cost (review of
            # qa44 M3: every contact of the offer did, unsaid)
            by_campaign |= each | {(name, offer): latest[offer] for name in unknown}
            drawn_at = " and ".join(
                f"{format_number(cost, 2)} a contact ({_drawn_from(drawers, day)})"
                for cost, drawers in sorted(paid.items())
            )
            at_latest = "; ".join(
                f"campaign {name!r} at the {format_number(latest[offer], 2)} a contact of "
                f"{plan}, as {reason}"
                for name, reason in unknown.items()
            )
            said.append(
                f"{offer!r} is priced at the cost each campaign paid: {drawn_at}; {at_latest}"
            )
            continue
        # the --offers advice is not part of the reason: the report's refusal and the page's
        # note give it after the reason (it came twice)
        if why is None:  # a plan that gave one campaign's contacts several costs
            why = different
            if offer in latest:
                said.append(
                    f"{offer!r} is priced at the {format_number(latest[offer], 2)} a contact of "
                    f"{plan}: {why}"
                )
        if offer not in latest:
            declined[offer] = why
            if paid:  # a plan gave it: a real offer, not a misspelt one
                planned.add(offer)
    return DrawnCosts(costs, "; ".join(said) or None, declined, by_campaign, frozenset(planned))


def expected_plan_note(
    plan: PlanInfo,
    campaigns: Sequence[CampaignInfo],
    unused: str = UNSAID_PLAN,
    day: Callable[[date], str] = str,
) -> str | None:
    """Say which recorded campaigns the latest plan, whose ROI a report expects, knew already.

    ``guanxi campaign report`` and the campaign page set the latest stored plan's expected ROI
    beside each campaign's realised one when the campaigns do not say which plan they were
    drawn from, or the plans they name are not stored as they were (``unused``, from
    :func:`drawn_plans`). A plan made after a campaign was recorded, of a day on or after its
    outcomes were complete, pooled it (:func:`pooled_campaigns`): its expected ROI may rest on
    the rates that campaign measured, not on those it was planned with, and the report read as
    though the forecast had held.

    Parameters
    ----------
    plan : features.store.PlanInfo
        The latest stored plan.
    campaigns : sequence of features.store.CampaignInfo
        The recorded campaigns reported.
    unused : str, default :data:`UNSAID_PLAN`
        Why the plans the campaigns were drawn from are not the ones used
        (:attr:`DrawnPlans.unused`).
    day : callable, default str
        Writes a day (ISO 8601 by default; the campaign page writes ``31 Oct 2024``: its note
        read "as of 2024-10-31" under "Expected ROI is the latest stored plan's, as of 31 Oct
        2024").

    Returns
    -------
    str or None
        The note; None when the plan knew none of the campaigns and none of them names a plan.
    """
    made = datetime.fromisoformat(plan.created)
    known = [
        info
        for info in campaigns
        if info.as_of <= plan.as_of and datetime.fromisoformat(info.created) < made
    ]
    if not known:  # a plan named and not used is said even so: the ROI would read as its
        if unused == UNSAID_PLAN:
            return None
        return f"the expected ROI is the latest stored plan's, as of {day(plan.as_of)}: {unused}"
    named = ", ".join(f"{info.name!r} (outcomes of {day(info.as_of)})" for info in known)
    one = len(known) == 1
    return (
        f"the expected ROI is the latest stored plan's, as of {day(plan.as_of)}, made after "
        f"{named} {'was' if one else 'were'} recorded: it may plan with the rates "
        f"{'that campaign' if one else 'those campaigns'} measured rather than those "
        f"{'it was' if one else 'they were'} planned with ({unused})"
    )


def pooled_campaigns(
    store: Store, until: date | None = None
) -> tuple[pl.DataFrame | None, list[Overlap], list[CampaignInfo]]:
    """Read the recorded campaigns from the store and pool them (:func:`pool_campaigns`).

    Parameters
    ----------
    store : features.store.Store
        The store.
    until : datetime.date, optional
        Pool only the campaigns whose outcomes were complete on or before this day (a plan of
        a day pooled campaigns recorded after it); every one when omitted.

    Returns
    -------
    tuple
        The pooled outcomes (None when nothing is recorded, or nothing on or before ``until``),
        the overlaps, and the campaigns left out as complete after ``until``
        (:func:`later_note` says them).

    Raises
    ------
    features.store.UnsignedTableError, features.store.TamperedTableError
        With a key: a campaign the key does not vouch for (:func:`recorded_campaigns`).
    """
    campaigns, later = _campaigns_until(store, store.list_campaigns(), until)
    outcomes, overlaps = pool_campaigns(campaigns)
    return outcomes, overlaps, later


def stored_plan_offers(info: PlanInfo, rows: pl.DataFrame) -> OffersFile:
    """Return the offers a stored plan was made with, refused unless its rows agree.

    ``info`` and ``rows`` are to come from one read of the plan's file
    (:meth:`features.store.Store.read_plan_with_info`): with a key, that read checks both against
    the signed manifest; without one nothing does, and a file edited by hand could give offers
    its rows were not planned with. So the metadata must count the rows, and every offer the rows
    give must be in its offers with the rows' channel and cost per contact (the names and costs
    the campaign record and report take from it). The segment and value tier names are not
    checked again (``parse_offers(..., stored=True)``): a plan kept before such a check stays
    readable.

    Parameters
    ----------
    info : features.store.PlanInfo
        The plan's metadata.
    rows : polars.DataFrame
        The plan's rows, from the same read.

    Returns
    -------
    models.offers.OffersFile
        The offers.

    Raises
    ------
    features.store.TamperedTableError
        The metadata is not the rows' (its count or an offer disagrees) or holds no valid offers;
        the message names the plan's file, and the offer and what each side says.
    """
    name = info.path.name
    try:
        offers = parse_offers(info.offers, name, stored=True)
    except OffersFileError as exc:
        raise TamperedTableError(f"its offers are not valid offers ({exc})") from None
    if info.rows != rows.height:
        raise TamperedTableError(
            f"{name}: its metadata counts {counted(info.rows, 'rows')}, its checked rows are "
            f"{rows.height:,}"
        )
    by_name = {offer.name: offer for offer in offers.offers}
    for offer, channel, cost in (
        rows.select("offer", "channel", "cost").unique().sort("offer", "channel", "cost").rows()
    ):
        said = by_name.get(offer)
        if said is None or (said.channel, said.cost) != (channel, cost):
            kept = "no such offer" if said is None else f"{said.channel} at {said.cost:g}"
            raise TamperedTableError(
                f"{name}: its checked rows give offer {offer!r} by {channel} at {cost:g} a "
                f"contact, its offers say {kept}"
            )
    return offers
