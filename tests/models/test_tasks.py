"""model_frame: the rows and columns every task's model reads, from hand-made snapshots."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import polars as pl
import pytest

from models.tasks import TASKS, model_feature_names, model_frame, snapshot_categories


@pytest.fixture
def snapshot() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3"],
            "as_of": [date(2025, 3, 31)] * 3,
            "recency_days": [3, None, 40],
            "orders_90d": [2, 0, 1],
            "rfm_segment": ["champions", "lost", "at_risk"],
            "cat_garden_orders": [1, 0, None],
            "cat_toys_orders": [0, 0, 2],
            "cat_garden_share": [1.0, None, 0.0],
            "cat_toys_share": [0.0, None, 1.0],
            "region": ["north", "south", None],
            "vip": [True, False, True],  # a numeric customers-table column passes through
        }
    )


def test_feature_names(snapshot: pl.DataFrame) -> None:
    base = [
        "recency_days",
        "orders_90d",
        "cat_garden_orders",
        "cat_toys_orders",
        "cat_garden_share",
        "cat_toys_share",
        "vip",
    ]
    assert model_feature_names("churn", snapshot) == base
    assert model_feature_names("cross_sell", snapshot) == [*base, "target_garden", "target_toys"]
    assert model_feature_names("cross_sell", snapshot, ["toys"]) == [*base, "target_toys"]
    assert snapshot_categories(snapshot) == ["garden", "toys"]


def test_customer_rows(snapshot: pl.DataFrame) -> None:
    x = model_frame("repurchase", snapshot, ["orders_90d", "recency_days", "not_there"])
    assert x.index.tolist() == ["c1", "c2", "c3"] and x.index.name == "customer_id"
    assert list(x.columns) == ["orders_90d", "recency_days", "not_there"]
    assert (x.dtypes == np.float64).all()
    assert x["recency_days"].isna().tolist() == [False, True, False] and x["not_there"].isna().all()


def test_cross_sell_rows_are_unbought_categories(snapshot: pl.DataFrame) -> None:
    x = model_frame("cross_sell", snapshot)
    assert x.index.names == ["customer_id", "category"]
    # c1 bought garden, c3 bought toys (garden null counts as not bought), c2 bought nothing
    assert x.index.tolist() == [("c1", "toys"), ("c2", "garden"), ("c2", "toys"), ("c3", "garden")]
    assert x["target_garden"].tolist() == [0.0, 1.0, 0.0, 1.0]
    assert x["target_toys"].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert x.loc[("c3", "garden"), "cat_toys_share"] == 1.0


def test_cross_sell_with_a_category_the_snapshot_lacks(snapshot: pl.DataFrame) -> None:
    names = ["orders_90d", "target_garden", "target_books"]
    x = model_frame("cross_sell", snapshot, names, ["garden", "books"])
    # nobody has a books column: every customer is a candidate
    assert x.xs("books", level="category").index.tolist() == ["c1", "c2", "c3"]
    assert x.xs("books", level="category")["target_books"].tolist() == [1.0] * 3
    pd.testing.assert_index_equal(x.columns, pd.Index(names))


def test_empty_and_bad_input(snapshot: pl.DataFrame) -> None:
    assert model_frame("cross_sell", snapshot.head(0)).empty
    assert model_frame("cross_sell", snapshot, categories=[]).empty
    with pytest.raises(ValueError, match="unknown task"):
        model_frame("upsell", snapshot)
    with pytest.raises(ValueError, match="customer_id"):
        model_frame("churn", snapshot.drop("customer_id"))
    assert TASKS == ("churn", "repurchase", "cross_sell")
