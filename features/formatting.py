"""How the CLI and the reviewer pages write a figure: the number, its sign, its share, its money.

Every layer writes figures the same way (``guanxi target``, ``guanxi campaign report``,
``guanxi drift``, ``guanxi train`` and the pages' filters), so the formatters live here, beside
:data:`features.contracts.MISSING`, where each can read them without loading the campaign
optimiser: :mod:`models.drift` loaded :mod:`models.targeting` (and with it the knapsack solver,
the offers schema and the equity code) only to write a number (review37), and ``guanxi drift``
through :mod:`models.campaigns`' repeated-customer check, :mod:`models.customer_rows`' now.

A negative figure takes the minus sign :data:`MINUS`, written by :func:`minus_signs`; a
figure that is not there is :data:`features.contracts.MISSING`.
"""

from __future__ import annotations

import math
import re
from typing import Final

from features.contracts import MISSING

__all__ = [
    "MINUS",
    "format_number",
    "format_percent",
    "format_points",
    "format_signed_percent",
    "minus_signs",
    "money_text",
]

MINUS: Final = "−"
"""The sign of a negative figure on the reviewer pages and in the signed figures of the CLI (U+2212
MINUS SIGN): one place for it; :func:`minus_signs` writes it in every formatted number."""

_NEGATIVE: Final = re.compile(r"(?<![\w.−-])-(?=\.?\d)")
"""A hyphen-minus that is a number's sign: before a digit, not inside a word or a range."""


def minus_signs(text: str) -> str:
    """Write the sign of each negative number in ``text`` as :data:`MINUS`.

    Parameters
    ----------
    text : str
        E.g. a reason, ``"order trend -0.50 (last 90 days against the 90 before)"``.

    Returns
    -------
    str
        ``"order trend −0.50 (last 90 days against the 90 before)"``; hyphens in words and
        ranges (``e-mails``, ``30-60``) are kept.
    """
    return _NEGATIVE.sub(MINUS, text)


def money_text(value: float) -> str:
    """Write an amount of money in cents, or with the digits it needs when cents show it as 0.

    Parameters
    ----------
    value : float
        The amount.

    Returns
    -------
    str
        ``1,234.50``; an amount short of half a cent that is not 0 with two significant
        digits, ``0.001``: ``guanxi target --budget 0.001`` printed "investment 0.00 of 0.00"
        and "the budget of 0.00 buys nothing", a budget that read as none.
    """
    if value == 0 or not abs(value) < 0.005:  # NaN too
        return f"{value:,.2f}"
    return f"{value:.{1 - math.floor(math.log10(abs(value)))}f}".rstrip("0")


def format_percent(value: float | None, digits: int = 1) -> str:
    """Format a share in [0, 1] as a percentage, e.g. ``0.1234`` -> ``"12.3%"``.

    A share strictly between 0 and 1 never reads as 0 or 100: one that would round to either
    reads ``"<0.1%"`` or ``">99.9%"`` (with ``digits`` 1), as a calibrated probability is
    never certain.

    Parameters
    ----------
    value : float or None
        The share; None or NaN give :data:`MISSING`.
    digits : int, default 1
        Decimals.

    Returns
    -------
    str
        The percentage.
    """
    if value is None or not math.isfinite(value):
        return MISSING
    shown = f"{100 * value:.{digits}f}"
    step = f"{10.0**-digits:.{digits}f}"  # the least the digits show: 0.1
    if 0 < value < 1 and float(shown) == 0:
        return f"<{step}%"
    if 0 < value < 1 and float(shown) == 100:
        return f">{100 - float(step):.{digits}f}%"
    return f"{shown}%"


def _written(value: float | None, digits: int, option: str) -> str:
    """Write ``value`` with ``digits`` decimals and a format option, as every figure here is.

    ``option`` is ``"+"`` (a sign) or ``","`` (thousands separators). A value that rounds to zero
    has no sign, a negative one :data:`MINUS`; None or NaN give :data:`MISSING`.
    """
    if value is None or not math.isfinite(value):
        return MISSING
    text = f"{value:{option}.{digits}f}"
    if float(text.replace(",", "")) == 0:
        text = f"{0:.{digits}f}"
    return minus_signs(text)


def _signed(value: float | None, digits: int, unit: str) -> str:
    """Format ``value`` with its sign and ``unit``; one that rounds to zero has no sign.

    Parameters
    ----------
    value : float or None
        The figure as written (points, or a share already times 100); None or NaN give
        :data:`MISSING`.
    digits : int
        Decimals.
    unit : str
        What follows the number (``" pts"``, ``"%"``).

    Returns
    -------
    str
        The signed figure (a minus sign, not a hyphen, for negatives).
    """
    text = _written(value, digits, "+")
    return text if text == MISSING else text + unit


def format_points(value: float | None, digits: int = 1) -> str:
    """Format percentage points with their sign, e.g. ``4.06`` -> ``"+4.1 pts"``.

    Parameters
    ----------
    value : float or None
        Percentage points; None or NaN give an em dash.
    digits : int, default 1
        Decimals.

    Returns
    -------
    str
        The signed points (a minus sign, not a hyphen, for negatives).
    """
    return _signed(value, digits, " pts")


def format_signed_percent(value: float | None, digits: int = 1) -> str:
    """Format a relative error with its sign, e.g. ``-0.084`` -> ``"−8.4%"``.

    The sign says whether a forecast fell short of what happened or went over it, as
    ``guanxi value`` prints it (``-8.4%``); an error that rounds to zero has no sign.

    Parameters
    ----------
    value : float or None
        The error as a share (``forecast / actual - 1``); None or NaN give :data:`MISSING`.
    digits : int, default 1
        Decimals.

    Returns
    -------
    str
        The signed percentage (a minus sign, not a hyphen, for negatives).
    """
    return _signed(None if value is None else 100 * value, digits, "%")


def format_number(value: float | None, digits: int = 0) -> str:
    """Format a number with thousands separators, e.g. ``1234.5`` -> ``"1,234.5"``.

    Parameters
    ----------
    value : float or None
        The number; None or NaN give an em dash.
    digits : int, default 0
        Decimals.

    Returns
    -------
    str
        The number; one that rounds to zero has no sign (a survey score of ``-0.0`` read
        ``"−0.0"``).
    """
    return _written(value, digits, ",")
