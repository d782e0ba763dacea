"""bench/explain.py runs end to end on a tiny model and projects by the stated formula."""

from __future__ import annotations

import pytest

from bench.explain import measure, projection
from models.artifact import ModelBundle


def test_projection_by_hand() -> None:
    # 1M churn rows at 1,000/s + 1M repurchase rows at 1,000/s + 3M cross-sell rows at 3,000/s
    rates = {"churn": 1000.0, "repurchase": 1000.0, "cross_sell": 3000.0}
    assert projection(rates) == pytest.approx(3000.0)
    # wording at 2,000 rows/s adds 500 + 500 + 1,500 s
    assert projection(rates, dict.fromkeys(rates, 2000.0)) == pytest.approx(5500.0)


def test_measure_runs_and_checks_exactness(tiny_bundle: ModelBundle, tiny_data) -> None:
    x, _ = tiny_data
    m = measure(tiny_bundle, x, "tiny", repeat=1, latency_rows=3)
    assert (m.trees, m.features, m.rows) == (20, 3, len(x))
    assert max(m.diff_xgboost, m.diff_shap, m.diff_margin) <= 1e-4
    assert all(r > 0 for by_threads in m.rate.values() for r in by_threads.values())
    assert set(m.p50_ms) == {
        "models.treeshap",
        "ModelBundle.contributions",
        "shap.TreeExplainer",
        "pred_contribs",
    }
    assert m.reasons_rate > 0
