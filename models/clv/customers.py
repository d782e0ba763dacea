"""The customer value table: the fits and the per-customer columns ``guanxi value`` writes.

Pure: purchase summaries, snapshot columns and churn probabilities in, one row per customer out.
The columns (:data:`VALUE_COLUMNS`, then :data:`DETAIL_COLUMNS`):

* ``p_alive``: BG/NBD's probability that the customer is still an active buyer at ``as_of``;
* ``expected_purchases``: purchases (order days) expected in the next ``horizon_days``;
* ``expected_order_value``: the expected revenue of each future order, Gamma-Gamma on order
  values (the population mean for a customer without repeat purchases);
* ``clv``: probabilistic CLV, the discounted expected purchases of each 30-day step times the
  expected margin per order (``expected_margin_per_order``: Gamma-Gamma on margins when the
  basis is ``"margin"``, the expected order value times the margin rate when it is
  ``"revenue"``), :func:`models.clv.probabilistic_clv`;
* ``clv_textbook``: ``sum_{t=1..T} m r^t / (1 + d)^t`` (:func:`models.clv.textbook_clv`) over the
  same horizon cut into periods of about 30 days (``T = round(horizon / 30)``, at least 1), with
  ``m`` the customer's own margin per period over the last 365 days (``margin_365d`` times
  ``period / 365``; on the revenue basis ``revenue_365d`` times the margin rate), ``r`` the churn
  model's calibrated probability ``p`` of churning within its horizon ``H`` turned into a
  retention per period under a constant hazard, ``r = (1 - p) ^ (period / H)``
  (:func:`models.clv.retention_per_period`), and ``d`` the annual rate turned into a rate per
  period; null without a churn probability;
* ``expected_days_to_next_order``: the median time to the next purchase given alive;
* ``value_tier`` (top 1%, 5%, 20% by ``clv``, else rest), ``rfm_segment`` (the snapshot's);
* ``churn_probability``: the churn model's calibrated probability, for the customers in its
  population only (``churn_status`` says ``eligible``, or why not: ``lapsed``, ``prospect``);
* ``equity_at_risk``: ``churn_probability x clv``; null, and so adding nothing to any sum, for a
  customer outside the churn population (:func:`models.clv.equity_at_risk`).

Customers are those with at least one order on or before ``as_of`` (a purchase history is what
the models read); ``frequency``, ``recency`` and ``T`` are the summaries in days
(:func:`features.value.repeat_purchase_summary`).

Loss-making customers
---------------------
Gamma-Gamma needs positive values: a repeat buyer whose mean margin is 0 or negative (returns,
discounts) cannot enter its likelihood. They are left out of the fit (``excluded`` in the fit's
statistics) and valued by the same weighted average of the population mean and their own mean
that the model gives everyone (``shrink_nonpositive`` of
:meth:`models.clv.GammaGamma.conditional_expected_value`), so their CLV can be negative: they cost
money on every order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import polars as pl

from features.contracts import counted
from models.artifact import ModelBundle
from models.clv._mle import ModelIdentificationError
from models.clv.bgnbd import BGNBD
from models.clv.equity import equity_at_risk, value_tier
from models.clv.gamma_gamma import GammaGamma
from models.clv.value import (
    period_discount_rate,
    probabilistic_clv,
    retention_per_period,
    textbook_clv,
)
from models.scoring import score_snapshot
from models.tasks import ELIGIBLE

__all__ = [
    "BASES",
    "DETAIL_COLUMNS",
    "VALUE_COLUMNS",
    "Basis",
    "ValueFit",
    "choose_basis",
    "churn_probabilities",
    "fit_value_models",
    "textbook_periods",
    "value_table",
]

Basis = Literal["margin", "revenue"]
BASES: Final[tuple[str, ...]] = ("margin", "revenue")

VALUE_COLUMNS: Final = (
    "customer_id",
    "p_alive",
    "expected_purchases",
    "expected_order_value",
    "clv",
    "clv_textbook",
    "expected_days_to_next_order",
    "value_tier",
    "rfm_segment",
    "churn_probability",
    "equity_at_risk",
)
"""The columns every value table starts with, in order."""

DETAIL_COLUMNS: Final = (
    "churn_status",
    "expected_margin_per_order",
    "frequency",
    "recency",
    "T",
    "revenue_365d",
    "margin_365d",
)
"""The columns that follow: why a churn probability is missing, what the CLV multiplies, the
summaries in days, and the trailing year's revenue and margin."""

_YEAR_DAYS: Final = 365.0
_PERIOD_DAYS: Final = 30.0


def choose_basis(summary: pl.DataFrame) -> Basis:
    """Return ``"margin"`` when every repeat buyer's margins are known, else ``"revenue"``.

    Parameters
    ----------
    summary : polars.DataFrame
        :func:`features.value.repeat_purchase_summary` (``frequency``, ``margin_value``).

    Returns
    -------
    str
        The basis the CLV earns on.
    """
    repeat = summary.filter(pl.col("frequency") > 0)
    known = repeat.height > 0 and repeat["margin_value"].null_count() == 0
    return "margin" if known else "revenue"


@dataclass(frozen=True)
class ValueFit:
    """The models a value table is computed with.

    Attributes
    ----------
    bgnbd : BGNBD
        Purchases and dropout, fitted on the summaries in days.
    order_value : GammaGamma
        Order values (revenue) of the repeat buyers.
    margin : GammaGamma or None
        Margins per order of the repeat buyers whose mean margin is positive (basis ``margin``).
    basis : {"margin", "revenue"}
        What a purchase earns in the CLV.
    margin_rate : float
        Margin per unit of revenue on the revenue basis (1.0 values revenue itself); not used on
        the margin basis.
    excluded : int
        Repeat buyers left out of the margin fit (mean margin <= 0).
    """

    bgnbd: BGNBD
    order_value: GammaGamma
    margin: GammaGamma | None
    basis: Basis
    margin_rate: float
    excluded: int

    def summary(self) -> dict[str, Any]:
        """Return the parameters and fit statistics, nested by model (for MLflow and the store).

        Returns
        -------
        dict
            ``basis``, ``margin_rate``, ``excluded`` and per model its parameters,
            log-likelihood, customers, and for Gamma-Gamma the spend-frequency correlation and
            the population mean.
        """
        out: dict[str, Any] = {
            "basis": self.basis,
            "margin_rate": self.margin_rate if self.basis == "revenue" else None,
            "excluded": self.excluded,
            "bgnbd": {
                **self.bgnbd.params_,
                "log_likelihood": self.bgnbd.log_likelihood_,
                "customers": self.bgnbd.n_customers_,
                "repeat_buyers": self.bgnbd.n_repeat_buyers_,
            },
        }
        for key, model in (
            ("gamma_gamma_revenue", self.order_value),
            ("gamma_gamma_margin", self.margin),
        ):
            if model is not None:
                out[key] = {
                    **model.params_,
                    "log_likelihood": model.log_likelihood_,
                    "customers": model.n_customers_,
                    "spend_frequency_correlation": model.spend_frequency_correlation_,
                    "population_mean": model.mean_value_,
                }
        return out


def churn_probabilities(bundle: ModelBundle, snapshot: pl.DataFrame) -> pl.DataFrame:
    """Score a snapshot with the churn model, keeping probabilities inside its population only.

    Parameters
    ----------
    bundle : ModelBundle
        The churn model (:func:`models.scoring.score_snapshot` scores its population only, with
        the activity window it was trained with, and gives every other customer a status).
    snapshot : polars.DataFrame
        A feature snapshot.

    Returns
    -------
    polars.DataFrame
        ``customer_id``, ``churn_probability`` (the calibrated probability, null outside the
        population) and ``churn_status`` (``eligible``, or the population's name for the others,
        e.g. ``lapsed``, ``prospect``), in snapshot order.
    """
    scored = score_snapshot(bundle, snapshot)
    return scored.select(
        "customer_id",
        pl.when(pl.col("status") == ELIGIBLE).then(pl.col("score")).alias("churn_probability"),
        pl.col("status").alias("churn_status"),
    )


def fit_value_models(
    summary: pl.DataFrame, *, basis: Basis | None = None, margin_rate: float = 1.0
) -> ValueFit:
    """Fit BG/NBD and Gamma-Gamma on purchase summaries in days.

    Parameters
    ----------
    summary : polars.DataFrame
        :func:`features.value.repeat_purchase_summary` with ``time_unit_days=1``.
    basis : {"margin", "revenue"}, optional
        What a purchase earns; :func:`choose_basis` when omitted.
    margin_rate : float, default 1.0
        Margin per unit of revenue on the revenue basis (> 0; 1.0 values revenue itself).

    Returns
    -------
    ValueFit
        The fitted models.

    Raises
    ------
    ValueError
        If the margin basis is asked for and a repeat buyer has no margin, or the margin rate is
        not positive.
    models.clv.ModelIdentificationError
        If a model cannot be identified (no repeat buyer, values that do not vary), or the
        revenue basis has a value distribution without a mean (``q <= 1``).
    """
    if not (np.isfinite(margin_rate) and margin_rate > 0):
        raise ValueError(f"the margin rate must be a positive number, got {margin_rate!r}")
    chosen = basis or choose_basis(summary)
    repeat = summary.filter(pl.col("frequency") > 0)
    missing = repeat["margin_value"].null_count()
    if chosen == "margin" and missing:
        raise ValueError(
            f"margin_value: {counted(missing, 'repeat buyers')} "
            f"{'has' if missing == 1 else 'have'} no margin on their repeat orders; "
            "value on revenue times a margin rate instead"
        )
    bgnbd = BGNBD().fit(summary["frequency"], summary["recency"], summary["T"])
    order_value = GammaGamma().fit(repeat["frequency"], repeat["monetary_value"])
    margin = None
    excluded = 0
    if chosen == "margin":
        positive = repeat.filter(pl.col("margin_value") > 0)
        excluded = repeat.height - positive.height
        margin = GammaGamma().fit(positive["frequency"], positive["margin_value"])
        if margin.q_ <= 1.0:
            raise ModelIdentificationError(
                f"Gamma-Gamma on margins: q = {margin.q_:.3g} <= 1, the fitted margins have no "
                "population mean; value on revenue times a margin rate instead"
            )
    elif order_value.q_ <= 1.0:
        raise ModelIdentificationError(
            f"Gamma-Gamma on order values: q = {order_value.q_:.3g} <= 1, the fitted values have "
            "no population mean, so customers without repeat purchases cannot be valued; value "
            "on margins if the events carry them"
        )
    return ValueFit(bgnbd, order_value, margin, chosen, float(margin_rate), excluded)


def textbook_periods(horizon_days: float) -> tuple[int, float]:
    """Return the periods of the textbook CLV over a horizon: their number and length in days.

    Parameters
    ----------
    horizon_days : float
        The horizon (> 0).

    Returns
    -------
    tuple of (int, float)
        ``T = max(1, round(horizon / 30))`` periods of ``horizon / T`` days each.
    """
    periods = max(1, round(horizon_days / _PERIOD_DAYS))
    return periods, horizon_days / periods


def _expected_values(model: GammaGamma, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Return the expected value per order; NaN without repeat purchases when q <= 1."""
    if model.q_ > 1.0:
        return model.conditional_expected_value(x, m, shrink_nonpositive=True)
    out = np.full(x.size, np.nan)
    repeat = x > 0
    out[repeat] = model.conditional_expected_value(x[repeat], m[repeat], shrink_nonpositive=True)
    return out


def value_table(
    summary: pl.DataFrame,
    snapshot: pl.DataFrame,
    fit: ValueFit,
    *,
    horizon_days: int,
    discount_rate: float,
    churn: pl.DataFrame | None = None,
    churn_horizon_days: float | None = None,
) -> pl.DataFrame:
    """Compute every customer's value as of the summaries' day.

    Parameters
    ----------
    summary : polars.DataFrame
        :func:`features.value.repeat_purchase_summary` in days (the customers of the table).
    snapshot : polars.DataFrame
        The feature snapshot of the same day (``customer_id``, ``rfm_segment``, ``spend_365d``,
        ``margin_365d``).
    fit : ValueFit
        The fitted models (:func:`fit_value_models`).
    horizon_days : int
        Days the expected purchases and both CLVs cover.
    discount_rate : float
        Annual discount rate.
    churn : polars.DataFrame, optional
        ``customer_id``, ``churn_probability`` (null outside the population) and
        ``churn_status``; without it the churn columns, ``clv_textbook`` and ``equity_at_risk``
        are null.
    churn_horizon_days : float, optional
        The churn model's horizon (needed with ``churn``).

    Returns
    -------
    polars.DataFrame
        One row per summary customer, sorted by ``customer_id``: :data:`VALUE_COLUMNS` then
        :data:`DETAIL_COLUMNS`.

    Raises
    ------
    ValueError
        If ``churn`` is given without ``churn_horizon_days``, or an input is out of range.
    """
    if churn is not None and not churn_horizon_days:
        raise ValueError("churn probabilities need the churn model's horizon (churn_horizon_days)")
    features = snapshot.select(
        "customer_id",
        "rfm_segment",
        pl.col("spend_365d").cast(pl.Float64).alias("revenue_365d"),
        pl.col("margin_365d").cast(pl.Float64),
    )
    rows = summary.sort("customer_id").join(features, on="customer_id", how="left")
    if churn is None:
        churn = rows.select(
            "customer_id",
            pl.lit(None, pl.Float64).alias("churn_probability"),
            pl.lit(None, pl.String).alias("churn_status"),
        )
    rows = rows.join(
        churn.select("customer_id", "churn_probability", "churn_status"),
        on="customer_id",
        how="left",
    )
    x = rows["frequency"].to_numpy().astype(np.float64)
    tx, t = rows["recency"].to_numpy(), rows["T"].to_numpy()
    bgnbd = fit.bgnbd
    order_value = _expected_values(
        fit.order_value, x, rows["monetary_value"].fill_null(np.nan).to_numpy()
    )
    if fit.margin is not None:
        per_order = _expected_values(
            fit.margin, x, rows["margin_value"].fill_null(np.nan).to_numpy()
        )
        trailing = rows["margin_365d"].fill_null(0.0).to_numpy()
    else:
        per_order = order_value * fit.margin_rate
        trailing = rows["revenue_365d"].fill_null(0.0).to_numpy() * fit.margin_rate
    clv = probabilistic_clv(
        bgnbd, x, tx, t, per_order, horizon_days=horizon_days, annual_discount_rate=discount_rate
    )
    textbook = np.full(x.size, np.nan)
    p_churn = rows["churn_probability"].to_numpy().astype(np.float64)
    scored = np.isfinite(p_churn)
    if scored.any() and churn_horizon_days:
        periods, period_days = textbook_periods(horizon_days)
        retention = retention_per_period(p_churn[scored], churn_horizon_days, period_days)
        textbook[scored] = textbook_clv(
            trailing[scored] * period_days / _YEAR_DAYS,
            retention,
            period_discount_rate(discount_rate, period_days),
            periods,
        )
    return (
        rows.with_columns(
            pl.Series("p_alive", bgnbd.p_alive(x, tx, t)),
            pl.Series(
                "expected_purchases", bgnbd.conditional_expected_purchases(horizon_days, x, tx, t)
            ),
            pl.Series("expected_order_value", order_value).fill_nan(None),
            pl.Series("expected_margin_per_order", per_order).fill_nan(None),
            pl.Series("clv", clv).fill_nan(None),
            pl.Series("clv_textbook", textbook).fill_nan(None),
            pl.Series("expected_days_to_next_order", bgnbd.median_time_to_next_purchase(x, t)),
        )
        .with_columns(
            value_tier(pl.col("clv")),
            equity_at_risk(pl.col("churn_probability"), pl.col("clv")).alias("equity_at_risk"),
        )
        .select(*VALUE_COLUMNS, *DETAIL_COLUMNS)
    )
