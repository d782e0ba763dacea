"""Reference child of ``bench/value.py``: the archived ``lifetimes`` package on the same summaries.

Run by ``bench/value.py`` with the Python of a throw-away virtualenv where ``lifetimes`` is
installed (it is not a dependency of guanxi), with the project root on ``PYTHONPATH`` so that it
measures itself with :mod:`bench._measure`. Prints one JSON line.

    <venv>/bin/python bench/_lifetimes_child.py SUMMARIES.npz HORIZON_DAYS
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter

from bench._measure import measured

__all__ = ["main"]


def main() -> None:
    """Fit BG/NBD and Gamma-Gamma with ``lifetimes``, score, and print the figures as JSON."""
    path, horizon = sys.argv[1], float(sys.argv[2])
    data = np.load(path)
    x, tx, t = (pd.Series(data[k]) for k in ("frequency", "recency", "T"))
    repeat = x > 0
    value = pd.Series(data["monetary_value"])
    bg, fit_bg = measured(lambda: BetaGeoFitter().fit(x, tx, t))
    gg, fit_gg = measured(lambda: GammaGammaFitter().fit(x[repeat], value[repeat]))

    def score() -> dict[str, Any]:
        alive = bg.conditional_probability_alive(x, tx, t)
        purchases = bg.conditional_expected_number_of_purchases_up_to_time(horizon, x, tx, t)
        order_value = gg.conditional_expected_average_profit(x, value.fillna(0.0))
        return {"alive": alive, "purchases": purchases, "order_value": order_value}

    scores, scoring = measured(score)
    out = {
        "engine": "lifetimes",
        "fit_bgnbd": fit_bg,
        "fit_gamma_gamma": fit_gg,
        "score": scoring,
        "bgnbd": {k: float(v) for k, v in bg.params_.items()},
        "gamma_gamma": {
            "p": float(gg.params_["p"]),
            "q": float(gg.params_["q"]),
            "gamma": float(gg.params_["v"]),
        },
        "sample": {k: [float(v) for v in np.asarray(s)[:1000]] for k, s in scores.items()},
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
