"""The task registry, and model_frame: the rows and columns every task's model reads."""

from __future__ import annotations

import dataclasses
from datetime import date

import numpy as np
import pandas as pd
import polars as pl
import pytest

from models.tasks import (
    CANDIDATE_INPUTS,
    GRADED_BASELINE,
    KINDS,
    TaskSpec,
    completed_categories,
    get_task,
    model_feature_names,
    model_frame,
    population_status,
    register,
    snapshot_categories,
    task_names,
    task_specs,
)


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
    candidate = [f.name for f in CANDIDATE_INPUTS]
    assert model_feature_names("cross_sell", snapshot) == [
        *base,
        *candidate,
        "target_garden",
        "target_toys",
    ]
    assert model_feature_names("cross_sell", snapshot, ["toys"]) == [
        *base,
        *candidate,
        "target_toys",
    ]
    assert snapshot_categories(snapshot) == ["garden", "toys"]


def test_a_category_the_snapshot_lacks_is_none_bought(snapshot: pl.DataFrame) -> None:
    """review52 H1: every reader of a stored snapshot (score, the server, the cycle, drift) reads
    a model's category the snapshot has no column of as no order by anyone, not as unknown: 0
    orders, a 0 share (null without spend), as a build given that category makes them."""
    built = snapshot.with_columns(spend_total=pl.Series([50.0, 0.0, None]))
    names = ["orders_90d", "cat_kitchen_orders", "cat_kitchen_share", "cat_toys_share"]
    assert completed_categories(built, names) == ["kitchen"]
    x = model_frame("churn", built, names)
    assert x["cat_kitchen_orders"].tolist() == [0.0, 0.0, 0.0]
    assert x["cat_kitchen_share"].iloc[0] == 0.0 and x["cat_kitchen_share"].iloc[1:].isna().all()
    assert x["cat_toys_share"].isna().tolist() == [False, True, False]  # the snapshot's own
    # a frame that is no build is not completed: without spend_total, or without as_of (the
    # features a caller sent to POST /v1/score: one not sent is unknown, and said missing)
    assert completed_categories(snapshot, names) == []
    assert model_frame("churn", snapshot, names)["cat_kitchen_orders"].isna().all()
    sent = built.drop("as_of")
    assert completed_categories(sent, names) == []
    assert model_frame("churn", sent, names)["cat_kitchen_orders"].isna().all()


def test_nothing_lacking_runs_no_query(
    snapshot: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """review54 L1: a build with every category a model reads returns before the polars query
    of the categories it lacks, which cost ~0.4 ms per task of a POST /v1/score with events."""
    import models.tasks

    def query(*_: object) -> list[str]:
        raise AssertionError("queried")

    monkeypatch.setattr(models.tasks, "lacking_categories", query)
    built = snapshot.with_columns(spend_total=pl.lit(1.0))
    assert completed_categories(built, ["orders_90d", *built.columns]) == []


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


def test_candidate_inputs_by_hand(snapshot: pl.DataFrame) -> None:
    """c1 bought garden (all its spend), c3 toys, c2 nothing. 40 % of garden's buyers bought toys,
    25 % of toys' buyers garden; both are bought by half the buyers; garden sells 1.5 times its
    yearly share in the season ahead (toys: unknown, 1). Who bought nothing gets the popularity
    as the affinity, as the rule scores it."""
    stats = {
        "popularity": {"garden": 0.5, "toys": 0.5},
        "co_bought": {"garden": {"toys": 0.4}, "toys": {"garden": 0.25}},
        "season": {"garden": 1.5},
    }
    names = [f.name for f in CANDIDATE_INPUTS]
    x = model_frame("cross_sell", snapshot, names, ["garden", "toys"], stats)
    assert x.index.tolist() == [("c1", "toys"), ("c2", "garden"), ("c2", "toys"), ("c3", "garden")]
    assert x.to_numpy().tolist() == [
        # popularity, affinity (the rule's score), affinity sum, related spend, season
        [0.5, 0.4, 0.4, 0.4, 1.0],
        [0.5, 0.5, 0.0, 0.0, 1.5],
        [0.5, 0.5, 0.0, 0.0, 1.0],
        [0.5, 0.25, 0.25, 0.25, 1.5],
    ]
    assert model_frame("cross_sell", snapshot, names).isna().all().all()  # no statistics
    for f in CANDIDATE_INPUTS:  # the reasons' words read with any value, or none
        for v in (0, 1, 2, None):
            text = f.describe(v)
            assert "{" not in text and "nan" not in text and "None" not in text, text


def test_who_bought_nothing_gets_the_rules_popularity(snapshot: pl.DataFrame) -> None:
    """c2 bought nothing: its affinity is the rule's popularity over the rule's window
    (``recent_popularity``); ``candidate_popularity`` stays the share over all time. Statistics
    saved without ``recent_popularity`` (models trained before it) give the rows they gave then:
    the test above."""
    stats = {
        "popularity": {"garden": 0.5, "toys": 0.5},
        "recent_popularity": {"garden": 0.3, "toys": 0.6},
        "co_bought": {"garden": {"toys": 0.4}, "toys": {"garden": 0.25}},
        "season": {"garden": 1.5},
    }
    x = model_frame(
        "cross_sell", snapshot, ["candidate_popularity", "candidate_affinity"], None, stats
    )
    assert x.to_numpy().tolist() == [[0.5, 0.4], [0.5, 0.3], [0.5, 0.6], [0.5, 0.25]]
    # heavy35: c2's reason said "buyers of a category this customer bought who also bought the
    # one ranked: 30%" of a customer who bought none; it now says what 30% is for them
    (affinity,) = [f for f in CANDIDATE_INPUTS if f.name == "candidate_affinity"]
    assert affinity.describe(x.loc[("c2", "garden"), "candidate_affinity"]) == (
        "buyers of a category this customer bought who also bought the one ranked (for a "
        "customer who bought none: recent buyers who bought it): 30%"
    )


def test_ranked_rows_made_a_few_customers_at_a_time(
    snapshot: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows made one customer at a time (FRAME_ROWS under the categories): the same frame, one
    float64 block; the statistics are over every customer, not over a slice's."""
    stats = {
        "popularity": {"garden": 0.5, "toys": 0.5},
        "co_bought": {"garden": {"toys": 0.4}, "toys": {"garden": 0.25}},
        "season": {"garden": 1.5},
    }
    names = model_feature_names("cross_sell", snapshot, ["garden", "toys"])
    whole = model_frame("cross_sell", snapshot, names, ["garden", "toys"], stats)
    monkeypatch.setattr("models.tasks.FRAME_ROWS", 1)
    sliced = model_frame("cross_sell", snapshot, names, ["garden", "toys"], stats)
    pd.testing.assert_frame_equal(sliced, whole, check_exact=True)
    assert len(sliced) == 4 and (sliced.dtypes == np.float64).all()
    assert np.shares_memory(sliced.to_numpy(), sliced.to_numpy())  # one block, read as a view


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


def test_registry_lists_every_spec_in_display_order() -> None:
    specs = task_specs()
    assert task_names()[:3] == ("churn", "repurchase", "cross_sell")
    assert [s.order for s in specs] == sorted(s.order for s in specs)
    for spec in specs:
        assert get_task(spec.name) is spec
        assert spec.kind in KINDS and spec.title and spec.outcome
        assert spec.rules[0].key == GRADED_BASELINE
        assert "{horizon}" in spec.purpose
    assert get_task("cross_sell").kind == "ranked" and get_task("cross_sell").title == "Cross-sell"
    with pytest.raises(ValueError, match="unknown task 'upsell'; expected one of churn"):
        get_task("upsell")


def test_a_misspelt_task_is_named_with_the_task_meant(snapshot: pl.DataFrame) -> None:
    """heavy36: get_task said "unknown task 'chrun'; expected one of ..." where --task
    and GUANXI_TASKS say "(is it 'churn'?)"; a caller of the library (model_frame,
    population_status) met it with the name as given."""
    said = r"unknown task 'chrun' \(is it 'churn'\?\); expected one of churn, repurchase"
    with pytest.raises(ValueError, match=said):
        get_task("chrun")
    with pytest.raises(ValueError, match=r"unknown task 'Cross_Sell' \(is it 'cross_sell'\?\)"):
        model_frame("Cross_Sell", snapshot)


def test_register_refuses_a_second_spec_of_a_name() -> None:
    churn = get_task("churn")
    assert register(churn) is churn  # the same spec again is harmless
    with pytest.raises(ValueError, match="registered twice"):
        register(dataclasses.replace(churn))


def test_a_spec_checks_its_declaration() -> None:
    churn = get_task("churn")
    with pytest.raises(ValueError, match="kind"):
        dataclasses.replace(churn, kind="forecast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lower-case"):
        dataclasses.replace(churn, name="Churn Risk")
    with pytest.raises(ValueError, match="graded"):
        dataclasses.replace(churn, rules=())
    assert isinstance(churn, TaskSpec)


def test_a_row_without_the_columns_a_population_reads_gets_a_status() -> None:
    """A POST /v1/score body with no features: churn reads recency_days twice, no duplicate."""
    row = pl.DataFrame({"customer_id": ["a"]})
    for task in task_names():
        status = population_status(task, row)
        assert status.columns == ["customer_id", "status"] and status.height == 1
