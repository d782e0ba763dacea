from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.artifact import ModelBundle
from models.scoring import (
    SCORE_COLUMNS,
    FeatureSetMismatchError,
    check_feature_set,
    model_rows,
    score_snapshot,
    top_rows,
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
    assert set(out["status"]) == {"eligible"}
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
    active = (x["recency_days"] < 365).to_numpy()
    assert 0 < (~active).sum() < len(x)
    scored = out.filter(pl.col("status") == "eligible")
    assert scored["customer_id"].to_list() == x.index[active].tolist()
    np.testing.assert_allclose(scored["score"].to_numpy(), tiny_bundle.predict_proba(x[active]))
    np.testing.assert_allclose(
        scored["margin"].to_numpy(), tiny_bundle.contributions(x[active]).sum(axis=1), atol=1e-5
    )
    lapsed = out.filter(pl.col("status") != "eligible")
    assert set(lapsed["status"]) == {"lapsed"}
    assert (
        lapsed.select(pl.col("score", "decile", "margin").null_count()).row(0)
        == ((~active).sum(),) * 3
    )


def test_top_rows_by_hand() -> None:
    ids = np.array(["a", "b", "a", "a", "b", "c"])
    score = np.array([0.2, 0.9, 0.5, 0.5, 0.1, 0.3])
    # a: rows 0 (0.2), 2 (0.5), 3 (0.5, tie: the earlier row 2 ranks first); b: 1, 4; c: 5
    assert top_rows(ids, score, 1).tolist() == [1, 2, 5]
    assert top_rows(ids, score, 2).tolist() == [1, 2, 3, 4, 5]


@given(
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 5)), min_size=1, max_size=40),
    st.integers(1, 4),
)
def test_top_rows_are_each_customers_best(rows: list[tuple[int, int]], n: int) -> None:
    ids = np.array([str(c) for c, _ in rows])
    score = np.array([s / 5 for _, s in rows])
    kept = set(top_rows(ids, score, n).tolist())
    for customer in set(ids.tolist()):
        mine = [i for i in range(len(rows)) if ids[i] == customer]
        best = sorted(mine, key=lambda i: (-score[i], i))[:n]  # ties: the earlier row first
        assert kept & set(mine) == set(best)


def test_cross_sell_explains_only_each_customers_top_categories(tiny_bundle: ModelBundle) -> None:
    bundle = ModelBundle(
        **{
            **tiny_bundle.__dict__,
            "task": "cross_sell",
            "feature_names": ["recency_days", "orders_90d", "target_garden"],
            "categories": ["garden", "toys", "books"],
        }
    )
    snapshot = pl.DataFrame(
        {
            "customer_id": ["a", "b"],
            "recency_days": [10, 200],
            "orders_90d": [3, 0],
            "cat_garden_orders": [0, 0],
            "cat_toys_orders": [0, 0],
            "cat_books_orders": [0, 1],
        }
    )
    full = score_snapshot(bundle, snapshot, explain_k=2, explain_categories=3)
    top = score_snapshot(bundle, snapshot, explain_k=2, explain_categories=1)
    assert full.height == top.height == 5  # a: 3 categories, b: 2
    best = full.with_row_index().filter(
        pl.col("score") == pl.col("score").max().over("customer_id")
    )
    explained = top.with_row_index().filter(pl.col("reason_1_feature").is_not_null())
    # one explained row a customer, its best category, with the reasons of the full table
    assert explained["customer_id"].to_list() == ["a", "b"]
    assert (
        explained["index"].to_list()
        == best.group_by("customer_id", maintain_order=True)
        .agg(pl.col("index").first())["index"]
        .to_list()
    )
    assert explained.drop("index").equals(full[explained["index"]])
    assert full["reason_1_feature"].null_count() == 0


def test_only_the_population_is_scored_and_ranked(tiny_bundle: ModelBundle) -> None:
    """Churn scores customers with an order in the window the model recorded; the rest get a
    status and no score, and deciles rank the scored ones only."""
    snapshot = pl.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e"],
            "recency_days": [10, None, 400, 364, 365],
            "orders_90d": [3, 0, 0, 0, 0],
            "unresolved_complaints": [0, 0, 1, 2, 0],
        }
    )
    out = score_snapshot(tiny_bundle, snapshot, explain_k=2)  # no window recorded: 365 days
    assert out["status"].to_list() == ["eligible", "prospect", "lapsed", "eligible", "lapsed"]
    assert out["score"].is_null().to_list() == [False, True, True, False, True]
    assert out["reason_1_feature"].is_null().to_list() == [False, True, True, False, True]
    # two scored rows: the higher is decile 1, the lower 1 + floor(10 * 1 / 2) = 6
    scored = out.filter(pl.col("status") == "eligible")
    high = int(scored["score"].arg_max())  # type: ignore[arg-type]
    assert scored["decile"][high] == 1 and scored["decile"][1 - high] == 6

    recorded = ModelBundle(
        **{**tiny_bundle.__dict__, "metadata": {"population": {"active_days": 30}}}
    )
    out = score_snapshot(recorded, snapshot)
    assert out["status"].to_list() == ["eligible", "prospect", "lapsed", "lapsed", "lapsed"]
    assert out.filter(pl.col("status") == "eligible")["decile"].to_list() == [1]


@pytest.mark.parametrize("task", ["churn", "cross_sell"])
def test_batches_of_customers_give_the_same_table(
    tiny_bundle: ModelBundle, tiny_data, task: str
) -> None:
    """Scored and explained 1, 7 or every customer at a time, the table is the same: deciles rank
    every row (not each batch's), and a ranked task's top categories are each customer's own."""
    x, _ = tiny_data
    rng = np.random.default_rng(3)
    bundle = tiny_bundle
    snapshot = pl.from_pandas(x.reset_index())
    if task == "cross_sell":
        bundle = ModelBundle(
            **{
                **tiny_bundle.__dict__,
                "task": "cross_sell",
                "feature_names": ["recency_days", "orders_90d", "target_garden"],
                "categories": ["garden", "toys", "books"],
            }
        )
        snapshot = snapshot.with_columns(
            pl.Series(f"cat_{c}_orders", rng.poisson(0.7, snapshot.height))
            for c in ("garden", "toys", "books")
        )
    whole = score_snapshot(bundle, snapshot, explain_k=2, batch_customers=snapshot.height)
    assert whole["status"].n_unique() > 1 and whole["reason_1_feature"].null_count() > 0
    for size in (1, 7):
        batched = score_snapshot(bundle, snapshot, explain_k=2, batch_customers=size)
        assert batched.equals(whole), size
    with pytest.raises(ValueError, match="batch_customers must be >= 1"):
        score_snapshot(bundle, snapshot, batch_customers=0)


def test_a_cross_sell_model_saved_before_the_rules_fallback_scores_as_before(
    tiny_bundle: ModelBundle, tmp_path: Path
) -> None:
    """A bundle whose category statistics lack ``recent_popularity`` (saved before it existed)
    loads, and a customer who bought nothing gets the popularity over all time as its
    ``candidate_affinity``, as it was trained with; a newer bundle gets the rule's own."""
    saved = {
        "popularity": {"garden": 0.5, "toys": 0.2},
        "co_bought": {"garden": {"toys": 0.4}},
        "season": {},
    }
    bundle = ModelBundle(
        **{
            **tiny_bundle.__dict__,
            "task": "cross_sell",
            "feature_names": ["recency_days", "candidate_affinity", "target_garden"],
            "categories": ["garden", "toys"],
            "metadata": {"category_inputs": saved},
        }
    )
    bundle.save(tmp_path / "old")
    loaded = ModelBundle.load(tmp_path / "old")
    snapshot = pl.DataFrame(
        {
            "customer_id": ["bought", "nothing"],
            "recency_days": [10, None],
            "cat_garden_orders": [1, 0],
            "cat_toys_orders": [0, 0],
        }
    )
    rows = model_rows(loaded, snapshot)
    assert rows["candidate_affinity"].to_dict() == {
        ("bought", "toys"): 0.4,
        ("nothing", "garden"): 0.5,
        ("nothing", "toys"): 0.2,
    }
    assert score_snapshot(loaded, snapshot).equals(score_snapshot(bundle, snapshot))
    newer = {**saved, "recent_popularity": {"garden": 0.1, "toys": 0.3}}
    bundle.metadata["category_inputs"] = newer
    rows = model_rows(bundle, snapshot)
    assert rows["candidate_affinity"].tolist() == [0.4, 0.1, 0.3]
