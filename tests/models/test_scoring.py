from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from models.artifact import ModelBundle
from models.scoring import (
    SCORE_COLUMNS,
    FeatureSetMismatchError,
    check_feature_set,
    score_snapshot,
)


def test_feature_set_mismatch_is_refused(tiny_bundle: ModelBundle) -> None:
    check_feature_set(tiny_bundle, "churn@champion")
    old = ModelBundle(**{**tiny_bundle.__dict__, "feature_set_version": "0"})
    with pytest.raises(FeatureSetMismatchError, match="churn@champion was trained on feature set"):
        check_feature_set(old, "churn@champion")


def test_cross_sell_rows_per_customer_and_unbought_category(tiny_bundle: ModelBundle) -> None:
    bundle = ModelBundle(
        **{
            **tiny_bundle.__dict__,
            "task": "cross_sell",
            "feature_names": ["recency_days", "orders_90d", "target_garden"],
            "categories": ["garden", "toys"],
            "metadata": {"registry": {"name": "cross_sell", "version": "7"}},
        }
    )
    snapshot = pl.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "recency_days": [10, 200, 400],
            "orders_90d": [3, 0, 0],
            "cat_garden_orders": [1, 0, 0],
            "cat_toys_orders": [0, 0, 2],
        }
    )
    out = score_snapshot(bundle, snapshot, explain_k=2)
    # a bought garden, c bought toys: rows a/toys, b/garden, b/toys, c/garden
    assert list(zip(out["customer_id"], out["category"], strict=True)) == [
        ("a", "toys"), ("b", "garden"), ("b", "toys"), ("c", "garden"),
    ]  # fmt: skip
    assert out.columns[: len(SCORE_COLUMNS)] == list(SCORE_COLUMNS)
    assert set(out["model_version"]) == {"7"} and set(out["task"]) == {"cross_sell"}
    assert out["reason_1_feature"].null_count() == 0
    points = out["reason_1_points"] + out["reason_2_points"]
    assert points.is_finite().all()


def test_churn_scores_match_bundle(tiny_bundle: ModelBundle, tiny_data) -> None:
    x, _ = tiny_data
    snapshot = pl.from_pandas(x.reset_index())
    out = score_snapshot(tiny_bundle, snapshot, model_name="churn", model_version="1")
    assert out["customer_id"].to_list() == x.index.tolist()
    assert out["category"].null_count() == out.height
    np.testing.assert_allclose(out["score"].to_numpy(), tiny_bundle.predict_proba(x))
    np.testing.assert_allclose(
        out["margin"].to_numpy(), tiny_bundle.contributions(x).sum(axis=1), atol=1e-5
    )
