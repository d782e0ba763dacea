"""Probabilistic customer-value models, in the project's own numpy/scipy code.

* :class:`BGNBD`: repeat purchases and dropout (Fader, Hardie and Lee 2005): P(alive), expected
  purchases, probability of no purchase, time to the next purchase;
* :class:`GammaGamma`: average purchase value of repeat buyers (Fader, Hardie and Lee 2005);
* :class:`ShiftedBetaGeometric`: contract renewals by cohort (Fader and Hardie 2007): retention
  curve, survival, discounted expected residual lifetime;
* :mod:`models.clv.value`: probabilistic and textbook CLV, discounting;
* :mod:`models.clv.equity`: value tiers, customer equity, equity at risk;
* :mod:`models.clv.validation`: forecast against actual purchases on a holdout.

Every model follows scikit-learn's estimator style (``__init__`` stores settings, fitted state
ends in ``_``, ``fit`` returns ``self``), is fitted by maximum likelihood on log-parameters with an
analytic gradient, can be rebuilt from its parameters (``from_params``, no pickle), and raises
:class:`ModelIdentificationError` with a readable message when the data cannot identify it.
"""

from models.clv._mle import ModelIdentificationError
from models.clv.bgnbd import BGNBD, sample_bgnbd
from models.clv.equity import (
    EQUITY_GROUPS,
    VALUE_TIERS,
    customer_equity,
    equity_at_risk,
    equity_tables,
    top_equity_at_risk,
    value_tier,
)
from models.clv.gamma_gamma import GammaGamma, sample_gamma_gamma
from models.clv.sbg import CohortFits, ShiftedBetaGeometric, fit_by_cohort
from models.clv.validation import (
    ForecastAccuracy,
    HoldoutCheck,
    compare_forecasts,
    forecast_accuracy,
    holdout_check,
)
from models.clv.value import (
    discount_factor,
    period_discount_rate,
    probabilistic_clv,
    retention_per_period,
    textbook_clv,
)

__all__ = [
    "BGNBD",
    "EQUITY_GROUPS",
    "VALUE_TIERS",
    "CohortFits",
    "ForecastAccuracy",
    "GammaGamma",
    "HoldoutCheck",
    "ModelIdentificationError",
    "ShiftedBetaGeometric",
    "compare_forecasts",
    "customer_equity",
    "discount_factor",
    "equity_at_risk",
    "equity_tables",
    "fit_by_cohort",
    "forecast_accuracy",
    "holdout_check",
    "period_discount_rate",
    "probabilistic_clv",
    "retention_per_period",
    "sample_bgnbd",
    "sample_gamma_gamma",
    "textbook_clv",
    "top_equity_at_risk",
    "value_tier",
]
