"""The ``--margin-rate`` check shared by ``guanxi value`` and ``guanxi campaign report``.

Both take the margin per unit of revenue, to value sales that carry no margin of their own: on
the revenue basis of the CLV, and for campaign outcomes without ``margin``. It is a share of
revenue above 0 and at most 1 for both. 30 (a 30% margin typed as a percentage) made every
figure 100 times that of 0.3; nan and inf made them nan. And 0 is no what-if either: it values
every sale at nothing, so every CLV and equity at risk is 0 and every campaign's ROI -100%, which
read as measured. The two commands checked this apart, and the report took 0.
"""

from __future__ import annotations

import typer

__all__ = ["check_margin_rate"]


def check_margin_rate(margin_rate: float, *, then: str = "") -> None:
    """Refuse a ``--margin-rate`` that is no share of revenue (above 0, at most 1).

    Parameters
    ----------
    margin_rate : float
        The option's value.
    then : str, default ""
        Said after the reason, e.g. ``"; nothing read"``.

    Raises
    ------
    typer.BadParameter
        If the rate is 0 or below, above 1, or not a number (nan), naming the option.
    """
    if not 0 < margin_rate <= 1:  # nan fails it too
        raise typer.BadParameter(
            f"{margin_rate:g} is not a share of revenue: the margin per unit of revenue must be "
            f"> 0 (0 values every sale at nothing) and at most 1 (0.3 for a 30% margin){then}",
            param_hint="--margin-rate",
        )
