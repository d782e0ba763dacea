"""Tables keyed by customer that list a customer on more than one row.

A value table (and every table joined to it by ``customer_id``: a plan, campaign outcomes) has
one row a customer. Several readers refuse one that does not, with one message: the campaign
report, the plan, the server's lookups and ``guanxi drift``'s check of the purchase forecasts.
The refusal lives here, apart from :mod:`models.campaigns`, so that a reader that only checks a
table (``guanxi drift``) does not load the campaign report and the plan's optimiser with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import polars as pl

from features.contracts import counted

__all__ = [
    "RepeatedCustomersError",
    "listed_twice",
    "refuse_repeated_customers",
    "repeated_customers",
]


class RepeatedCustomersError(ValueError):
    """A value table (or another table joined to it by customer) lists a customer twice.

    :func:`models.campaigns.fill_from_values` joins the outcomes to the table by
    ``customer_id``: each such row would repeat the customer's outcome row, counting it again in
    the report and the measured rates, with one segment or churn probability of several. A plan
    would offer the customer once a row (:func:`models.planning.plan_values`), and the server
    would answer a lookup of them with an error (:func:`serving.values.load_values`).
    ``guanxi value`` writes one row a customer; a store without a key reads any file at a value
    table's path.
    """


def listed_twice(table: str, repeated: Sequence[object] | pl.Series, among: str = "") -> str:
    """Say that a table lists a customer on more than one row, and how many others it does.

    Parameters
    ----------
    table : str
        The table as the sentence names it, e.g. ``"the value table as of 2024-10-31"``.
    repeated : sequence or polars.Series
        The ids of the customers listed on more than one row (strings, or numbers where a
        server's snapshot keeps them so), the first to be named first (not empty).
    among : str, default ""
        Of whom the others are counted (``" of the outcomes"``), when not of the whole table.

    Returns
    -------
    str
        E.g. ``"the value table as of 2024-10-31 lists customer 'C2' on more than one row, as
        it does 3 other customers of the outcomes"``: the subject of :func:`repeated_customers`'
        message and of :meth:`models.campaigns.ValuesFill.plan_refused`'s note.
    """
    others = len(repeated) - 1
    also = f", as it does {counted(others, 'other customers')}{among}" if others else ""
    return f"{table} lists customer {repeated[0]!r} on more than one row{also}"


def repeated_customers(
    repeated: pl.Series,
    day: date,
    *,
    what: str,
    consequence: str,
    among: str = "",
    table: str = "the value table",
    again: str | None = None,
) -> RepeatedCustomersError:
    """Say that a table (the value table by default) lists customers on more than one row.

    Parameters
    ----------
    repeated : polars.Series
        The customers listed on more than one row, the first to be named first (not empty).
    day : datetime.date
        The table's day.
    what : str
        The columns of which one row of several cannot be told to be the customer's.
    consequence : str
        What using the table would do, after "and".
    among : str, default ""
        Of whom the others are counted (" of the outcomes"), when not of the whole table.
    table : str, default "the value table"
        The table, as the message names it before "as of".
    again : str, optional
        What makes the table again; default the ``guanxi value`` command of ``day``.

    Returns
    -------
    RepeatedCustomersError
        Naming the table, its day, the first customer, how many others, and the command that
        makes the table again.
    """
    again = again or f"write it again (guanxi value --events PATH --as-of {day} --out PATH)"
    return RepeatedCustomersError(
        f"{listed_twice(f'{table} as of {day}', repeated, among)}: which row's {what} "
        f"are theirs is not known, and {consequence}; {again}"
    )


def refuse_repeated_customers(
    values: pl.DataFrame, day: date, *, what: str, consequence: str
) -> None:
    """Refuse a value table listing a customer on more than one row.

    The ids are counted once (``n_unique``); the repeated ones are listed only when there are
    some.

    Parameters
    ----------
    values : polars.DataFrame
        The value table (its ``customer_id``).
    day : datetime.date
        The table's day.
    what, consequence : str
        As :func:`repeated_customers` says them.

    Raises
    ------
    RepeatedCustomersError
        If a customer is on more than one row; the message names the day and the first such
        customer (:func:`repeated_customers`).
    """
    ids = values["customer_id"]
    if ids.n_unique() == ids.len():
        return
    repeated = ids.filter(ids.is_duplicated()).unique(maintain_order=True)
    raise repeated_customers(repeated, day, what=what, consequence=consequence)
