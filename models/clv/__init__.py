"""Probabilistic customer-value models, in the project's own numpy/scipy code.

* :class:`BGNBD`: repeat purchases and dropout (Fader, Hardie and Lee 2005);

Every model follows scikit-learn's estimator style (``__init__`` stores settings, fitted state
ends in ``_``, ``fit`` returns ``self``), is fitted by maximum likelihood on log-parameters with an
analytic gradient, and raises :class:`ModelIdentificationError` with a readable message when the
data cannot identify it.
"""

from models.clv._mle import ModelIdentificationError
from models.clv.bgnbd import BGNBD, sample_bgnbd

__all__ = ["BGNBD", "ModelIdentificationError", "sample_bgnbd"]
