"""Cutoffs, the time split, data checks and point-in-time training rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from features.snapshot import build_snapshot
from models.rules import category_inputs
from models.tasks import get_task, model_feature_names, model_frame
from tests.training.conftest import AS_OF
from training.datasets import (
    InsufficientDataError,
    TaskData,
    build_task_data,
    check_split,
    eligible_customers,
    events_up_to,
    holdout_groups,
    label_rate,
    missing_summary,
    order_categories,
    plan_cutoffs,
    population_batches,
    population_snapshot,
    sample_customers,
)


def test_plan_cutoffs_by_hand() -> None:
    plan = plan_cutoffs(date(2024, 1, 1), date(2025, 12, 31), 90, n_cutoffs=3)
    assert plan.test == date(2025, 10, 2)  # D - H
    assert plan.validation == date(2025, 7, 4)  # t - 90: its labels end on the test cutoff
    assert plan.train == (date(2025, 2, 4), date(2025, 3, 6), date(2025, 4, 5))
    assert plan.train[-1] + timedelta(days=90) == plan.validation  # labels end by v
    assert plan.all[-2:] == (plan.validation, plan.test)


def test_plan_rounds_the_gap_to_whole_steps() -> None:
    plan = plan_cutoffs(date(2024, 1, 1), date(2025, 12, 31), 45, step_days=30, n_cutoffs=1)
    assert plan.test == date(2025, 11, 16)
    assert plan.validation == plan.test - timedelta(days=60)
    assert plan.train == (plan.validation - timedelta(days=60),)


def test_every_label_window_ends_by_the_next_stage() -> None:
    h = 90
    plan = plan_cutoffs(date(2023, 1, 1), date(2025, 12, 31), h, n_cutoffs=12)
    assert all(c + timedelta(days=h) <= plan.validation for c in plan.train)
    assert plan.validation + timedelta(days=h) <= plan.test
    assert plan.train[0] >= date(2023, 1, 1) + timedelta(days=90)
    assert len(plan.train) == 12


def test_short_history_says_what_to_change() -> None:
    with pytest.raises(
        InsufficientDataError, match=r"history is 200 days.*at least 450 days.*needs 630 days"
    ):
        plan_cutoffs(date(2025, 1, 1), date(2025, 7, 20), 180)
    with pytest.raises(InsufficientDataError, match=r"history is 269 days.*at least 270 days"):
        plan_cutoffs(date(2025, 4, 6), date(2025, 12, 31), 90)
    plan = plan_cutoffs(date(2025, 1, 5), date(2025, 12, 31), 90)  # 360 days: one cutoff
    assert plan.mode == "time" and "time split" in plan.describe()


def test_short_history_suggests_the_largest_horizon_that_fits_or_none() -> None:
    """qa47 L4: 70 days of history were told "use a shorter --horizon", which no horizon fits:
    the first training cutoff needs 90 days before it whatever the horizon."""
    with pytest.raises(InsufficientDataError) as caught:
        plan_cutoffs(date(2025, 10, 22), date(2025, 12, 31), 1)
    said = str(caught.value)
    assert said.startswith("history is 70 days") and "--horizon" not in said
    assert said.endswith("no horizon fits 70 days: use more history (at least 92 days)")
    # 200 days: a 55-day horizon needs 2 x 55 + 90 = 200, a 56-day one 202
    with pytest.raises(
        InsufficientDataError, match=r"use --horizon 55 or shorter, or more history$"
    ):
        plan_cutoffs(date(2025, 1, 1), date(2025, 7, 20), 180)
    assert plan_cutoffs(date(2025, 1, 1), date(2025, 7, 20), 55).mode == "customer"


def test_short_history_splits_the_last_cutoff_by_customer() -> None:
    """39 weeks of events and a 13-week horizon: 273 days, at least 2 x 91 + 90 = 272."""
    plan = plan_cutoffs(date(2025, 4, 2), date(2025, 12, 31), 91)
    assert plan.mode == "customer"
    assert plan.test == plan.validation == date(2025, 10, 1)  # D - H
    assert plan.train == (date(2025, 7, 2),)  # labels end on the test cutoff
    assert plan.all == (date(2025, 7, 2), date(2025, 10, 1))
    said = plan.describe()
    assert "customer-grouped hold-out" in said and "273 days" in said
    assert "421 days" in said  # 91 + 2 x 120 + 90


def test_a_long_history_is_said_with_thousands_separators() -> None:
    """Three years of events: "1,095 days of history", as the other console lines write counts."""
    plan = plan_cutoffs(date(2023, 1, 1), date(2025, 12, 31), 90)
    assert plan.mode == "time" and "(1,095 days of history;" in plan.describe()


def test_holdout_groups_keep_a_customer_together() -> None:
    ids = np.array(["a", "b", "a", "c", "d", "b", "e", "f"])
    test = holdout_groups(ids, seed=3)
    for c in np.unique(ids):
        assert len(set(test[ids == c])) == 1
    assert 0 < test.sum() < len(ids)
    np.testing.assert_array_equal(test, holdout_groups(ids, seed=3))


def test_check_split_messages() -> None:
    y = np.array([1] * 5 + [0] * 300)
    with pytest.raises(InsufficientDataError, match=r"validation split .* 5 positive labels"):
        check_split("validation", y, [date(2025, 1, 1)], min_rows=100, min_positives=20)
    with pytest.raises(InsufficientDataError, match=r"305 labelled rows; need at least 1,000"):
        check_split("test", y, [date(2025, 1, 1)], min_rows=1000, min_positives=1)
    # qa47 M4: "a lower min_customers" (or min_positives, or "more cutoffs"), which no option of
    # guanxi train sets; what the user can change is said instead
    for kwargs in ({"min_rows": 1000, "min_positives": 1}, {"min_rows": 1, "min_positives": 20}):
        with pytest.raises(InsufficientDataError) as caught:
            check_split("test", y, [date(2025, 1, 1)], **kwargs)
        said = str(caught.value)
        assert "min_" not in said and "cutoffs" not in said and "more customers" in said
    with pytest.raises(InsufficientDataError) as caught:
        check_split("test", y, [date(2025, 1, 1)], min_rows=1000, min_positives=1)
    assert str(caught.value).endswith(": use the events of more customers")
    # a training split short of its cutoffs gets more of them from more history
    two = [date(2025, 1, 1), date(2025, 1, 31)]
    with pytest.raises(InsufficientDataError) as caught:
        check_split("train", y, two, min_rows=1000, min_positives=1, max_cutoffs=6)
    assert str(caught.value).endswith(
        ": use the events of more customers, or more history (2 cutoffs of up to 6)"
    )
    with pytest.raises(InsufficientDataError) as caught:
        check_split("train", y, two, min_rows=1000, min_positives=1, max_cutoffs=2)
    assert str(caught.value).endswith(": use the events of more customers")
    # review49 M2: the caller says how more customers come (--max-customers when it sampled them)
    # review53 M1: and which shortage it explains: None for rows, else the label short
    asked: list[int | None] = []

    def raise_cap(label: int | None) -> str:
        asked.append(label)
        return "raise --max-customers (150; 0 keeps every customer)"

    with pytest.raises(InsufficientDataError) as caught:
        check_split("test", y, two, min_rows=1000, min_positives=1, more_customers=raise_cap)
    assert str(caught.value).endswith(": raise --max-customers (150; 0 keeps every customer)")
    with pytest.raises(InsufficientDataError) as caught:
        check_split("test", y, two, min_rows=1, min_positives=400, more_customers=raise_cap)
    assert str(caught.value).endswith(
        ": use a different --horizon, or raise --max-customers (150; 0 keeps every customer)"
    )
    mostly_positive = 1 - y
    with pytest.raises(InsufficientDataError, match="5 negative labels"):
        check_split(
            "test", mostly_positive, two, min_rows=1, min_positives=20, more_customers=raise_cap
        )
    assert asked == [None, 1, 0]
    # review51 L1: the hint is worked out only for a refusal
    check_split("test", y, two, min_rows=1, min_positives=1, more_customers=pytest.fail)
    one = np.array([1] + [0] * 1200)
    with pytest.raises(InsufficientDataError, match=r" 1 positive label among 1,201 rows; need"):
        check_split("train", one, [date(2025, 1, 1)], min_rows=100, min_positives=5)
    check_split("train", y, [date(2025, 1, 1)], min_rows=100, min_positives=5)


def test_missing_summary() -> None:
    x = pd.DataFrame({"a": [1.0, np.nan, np.nan, 4.0], "b": [1.0] * 4, "c": [np.nan, 1, 1, 1]})
    got = missing_summary(x)
    assert got["feature"].tolist() == ["a", "c"]
    assert got["missing_share"].tolist() == [0.5, 0.25]


def test_task_data_rows_and_labels(small_sample: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    events, customers = small_sample
    cutoffs = [date(2025, 3, 6), date(2025, 4, 5)]
    churn, names = build_task_data(events, customers, "churn", cutoffs, 90)
    assert churn.X.index.names == ["cutoff", "customer_id"]
    assert list(churn.X.columns) == names and "recency_days" in names
    assert set(churn.cutoffs) == set(cutoffs)
    # the churn population is active: an order within the last 365 days
    assert churn.X["recency_days"].max() < 365
    cross, cross_names = build_task_data(events, customers, "cross_sell", cutoffs[:1], 90)
    assert cross.X.index.names == ["cutoff", "customer_id", "category"]
    assert [n for n in cross_names if n.startswith("target_")] == [
        f"target_{c}" for c in order_categories(events)
    ]
    # a candidate category was never bought before the cutoff
    cats = cross.X.index.get_level_values("category")
    bought = np.array([cross.X[f"cat_{c}_orders"].iloc[i] for i, c in enumerate(cats)], dtype=float)
    assert (bought == 0).all()
    assert 0 < cross.y.mean() < 0.2


def test_the_row_cap_samples_whole_customers_and_keeps_every_positive(
    small_sample: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    """Cross-sell: a kept customer keeps all its category rows; customers with a positive stay."""
    events, customers = small_sample
    cutoffs = [date(2025, 3, 6)]
    full, names = build_task_data(events, customers, "cross_sell", cutoffs, 90)
    cap = len(full.y) // 2
    sampled, _ = build_task_data(
        events, customers, "cross_sell", cutoffs, 90, feature_names=names, max_rows_per_cutoff=cap
    )
    assert sampled.y.sum() == full.y.sum()
    assert 0.35 * len(full.y) < len(sampled.y) < 0.65 * len(full.y)
    ids = full.X.index.get_level_values("customer_id")
    kept = sampled.X.index.get_level_values("customer_id").unique()
    mine = ids.isin(kept)
    # every row of a kept customer, to the last bit
    pd.testing.assert_frame_equal(sampled.X, full.X.loc[mine], check_exact=True)
    positive = pd.Series(full.y, index=ids).groupby(level=0).max()
    assert set(positive[positive > 0].index) <= set(kept)
    assert (sampled.weight[sampled.y == 1] == 1).all()
    # weighted negatives estimate the full count
    assert sampled.weight[sampled.y == 0].sum() == pytest.approx((full.y == 0).sum(), rel=0.1)


@pytest.mark.parametrize("value_inputs", [False, True])
def test_no_feature_uses_an_event_after_its_cutoff(
    small_sample: tuple[pl.DataFrame, pl.DataFrame], value_inputs: bool
) -> None:
    """Planting events after each cutoff changes no feature row of that cutoff.

    With the ``value`` family, BG/NBD is refitted at each cutoff on the events up to it only.
    """
    events, customers = small_sample
    cutoffs = [date(2025, 2, 4), date(2025, 5, 5)]
    ids = events["customer_id"].unique().sort().head(200).to_list()
    base, names = build_task_data(
        events, customers, "repurchase", cutoffs, 90, value_inputs=value_inputs
    )
    assert ("p_alive" in names) is value_inputs
    if value_inputs:
        assert base.X["p_alive"].notna().mean() > 0.5

    def planted(after: date) -> pl.DataFrame:
        ts = datetime.combine(after + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        rows = [
            events.filter(pl.col("event_type") == kind)
            .head(1)
            .with_columns(pl.lit(cid).alias("customer_id"), pl.lit(ts).alias("ts"))
            for cid in ids
            for kind in ("order", "complaint", "visit", "cancel")
        ]
        return pl.concat([events, *rows])

    for cutoff in cutoffs:
        more, _ = build_task_data(
            planted(cutoff),
            customers,
            "repurchase",
            [cutoff],
            90,
            feature_names=names,
            value_inputs=value_inputs,
        )
        pd.testing.assert_frame_equal(more.X, base.at([cutoff]).X, check_exact=True)
        assert more.y.sum() > base.at([cutoff]).y.sum()  # the planted orders are labels


def test_events_after_as_of_change_nothing(
    small_sample: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    events, customers = small_sample
    as_of = AS_OF - timedelta(days=365)
    start = datetime.combine(as_of + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    future = events.head(2000).with_columns(
        (pl.lit(start) + pl.duration(hours=pl.int_range(pl.len()))).alias("ts")
    )
    plan = plan_cutoffs(date(2023, 1, 1), as_of, 90, n_cutoffs=1)
    a, _ = build_task_data(events_up_to(events, as_of), customers, "churn", plan.all, 90)
    b, _ = build_task_data(
        events_up_to(pl.concat([events, future]), as_of), customers, "churn", plan.all, 90
    )
    pd.testing.assert_frame_equal(a.X, b.X, check_exact=True)
    np.testing.assert_array_equal(a.y, b.y)


@pytest.mark.parametrize(("positives", "rows"), [(50, 1000), (950, 1000), (600, 1000)])
def test_subsample_keeps_the_rarer_class_and_weights_estimate_the_whole(
    positives: int, rows: int
) -> None:
    y = np.r_[np.ones(positives), np.zeros(rows - positives)]
    index = pd.Index(np.arange(rows), name="customer_id")
    data = TaskData(X=pd.DataFrame({"x": np.arange(rows)}, index=index), y=y, weight=np.ones(rows))
    part = data.subsample(200, seed=1)
    assert 100 < len(part.y) < 300
    assert 0 < part.y.sum() < len(part.y)  # both classes survive, whichever is the majority
    rare = min(positives, rows - positives)
    if rare < 100:
        assert min(part.y.sum(), len(part.y) - part.y.sum()) == rare
    # weighted counts estimate the full data's class counts
    assert part.weight[part.y == 1].sum() == pytest.approx(positives, rel=0.25)
    assert part.weight.sum() == pytest.approx(rows, rel=0.25)


def test_sampled_customers_keep_all_their_rows_and_weights_scale_back(
    small_sample: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    """A uniform customer sample: a kept customer's rows are those of the full build, unchanged."""
    events, customers = small_sample
    cutoffs = [date(2025, 3, 6), date(2025, 7, 4)]
    full, names = build_task_data(events, customers, "cross_sell", cutoffs, 90)
    ids = full.X.index.get_level_values("customer_id")
    per_cutoff = {c: ids[full.cutoffs == c].nunique() for c in cutoffs}
    cap = min(per_cutoff.values()) // 3
    sampled, sampled_names = build_task_data(
        events, customers, "cross_sell", cutoffs, 90, max_customers=cap, seed=5
    )
    assert sampled_names == names
    assert full.rates == dict.fromkeys(cutoffs, 1.0)
    for cutoff in cutoffs:
        part = sampled.at([cutoff])
        kept = part.X.index.get_level_values("customer_id").unique()
        assert 0.6 * cap < len(kept) < 1.4 * cap
        rows = full.at([cutoff])
        mine = rows.X.index.get_level_values("customer_id").isin(kept)
        # every row of a kept customer, to the last bit
        pd.testing.assert_frame_equal(part.X, rows.X.loc[mine], check_exact=True)
        np.testing.assert_array_equal(part.y, rows.y[mine])
        rate = cap / per_cutoff[cutoff]
        np.testing.assert_allclose(part.weight, 1 / rate)
        # review51 L2: the rate is kept, so a refusal can tell this sample from the row cap's
        assert part.rates[cutoff] == sampled.rates[cutoff] == pytest.approx(rate)
        # weighted counts estimate the whole cutoff's, and the positive rate needs no weights
        assert part.weight.sum() == pytest.approx(len(rows.y), rel=0.2)
        assert part.y.mean() == pytest.approx(rows.y.mean(), abs=0.03)


def test_the_row_cap_after_the_customer_sample_multiplies_the_weights(
    small_sample: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    events, customers = small_sample
    cutoffs = [date(2025, 3, 6)]
    full, _ = build_task_data(events, customers, "cross_sell", cutoffs, 90)
    both, _ = build_task_data(
        events,
        customers,
        "cross_sell",
        cutoffs,
        90,
        max_customers=600,
        max_rows_per_cutoff=len(full.y) // 6,
    )
    assert len(both.y) < len(full.y) / 3
    # positives weighted by the customer rate alone, negatives by both rates: sums estimate all
    assert both.weight[both.y == 1].sum() == pytest.approx(full.y.sum(), rel=0.2)
    assert both.weight.sum() == pytest.approx(len(full.y), rel=0.2)


def test_events_up_to_returns_the_frame_itself_when_nothing_is_later(
    small_sample: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    events, _ = small_sample
    assert events_up_to(events, AS_OF) is events
    earlier = events_up_to(events, AS_OF - timedelta(days=30))
    assert earlier.height < events.height
    assert earlier["ts"].max().date() <= AS_OF - timedelta(days=30)  # type: ignore[union-attr]


@pytest.mark.parametrize("task", ["churn", "cross_sell"])
def test_the_sample_is_taken_before_the_features_and_gives_the_same_rows(
    small_sample: tuple[pl.DataFrame, pl.DataFrame], task: str
) -> None:
    """Customers sampled from a population found a bucket at a time, then snapshotted alone.

    The sample, the rows and every column (RFM scores ranked among all customers, the segment,
    the floats) equal those of the whole snapshot's population sampled afterwards.
    """
    events, customers = small_sample
    cutoff, cats = date(2025, 3, 6), order_categories(events)
    whole = build_snapshot(events, customers, cutoff, categories=cats)
    eligible = get_task(task).population.select(whole, 365)
    cap = eligible.height // 3
    expected, expected_rate = sample_customers(eligible, cap, seed=4)
    got, rate = population_snapshot(events, customers, task, cutoff, cats, 365, cap, seed=4)
    assert rate == expected_rate < 1
    assert got["customer_id"].to_list() == expected["customer_id"].to_list()
    assert_frame_equal(
        got,
        whole.join(expected, on="customer_id", how="semi", maintain_order="left"),
        check_exact=True,
    )

    population, measures = eligible_customers(events, customers, task, cutoff, cats, 365, 4)
    assert_frame_equal(population, eligible, check_exact=True)
    assert measures.height == whole.height
    rate_whole = label_rate(events, customers, task, cutoff, 90, cats, 365)
    assert label_rate(events, customers, task, cutoff, 90, cats, 365, cap) == rate_whole


@pytest.mark.parametrize("task", ["churn", "cross_sell"])
def test_population_batches_are_the_rows_of_the_whole_population(
    small_sample: tuple[pl.DataFrame, pl.DataFrame], task: str
) -> None:
    """The population at a cutoff in batches of a few customers: the rows of one model_frame of
    the sampled snapshot, in its order; cross-sell's category statistics are those of every
    customer up to the cutoff, not of a batch's."""
    events, customers = small_sample
    cats = order_categories(events)
    snapshot, _ = population_snapshot(events, customers, task, AS_OF, cats, 365, 600, seed=5)
    names = model_feature_names(task, snapshot, cats)
    ranked = get_task(task).kind == "ranked"
    stats = category_inputs(events, AS_OF, cats, 90) if ranked else None
    whole = model_frame(task, snapshot, names, cats, stats)
    batches = list(
        population_batches(
            events, customers, task, AS_OF, names, cats, 365, 600, 5, 90, batch_rows=97
        )
    )
    assert len(batches) > 3
    assert max(b.index.get_level_values("customer_id").nunique() for b in batches) <= 97
    # the snapshot is built again, a batch at a time: its sums are exact, so the same to the bit;
    # but cross-sell's two matrix products (models.tasks: BLAS), candidate_affinity_sum and
    # candidate_related_spend, round as the CPU's kernel and the batch's shape have it: the same
    # to 1e-12 (they differed in the last bits on 1-2 % of rows on a machine whose OpenBLAS
    # kernel is not the one this test was written on)
    blas = [c for c in ("candidate_affinity_sum", "candidate_related_spend") if c in whole.columns]
    got = pd.concat(batches)
    pd.testing.assert_frame_equal(
        got.drop(columns=blas), whole.drop(columns=blas), check_exact=True
    )
    pd.testing.assert_frame_equal(got[blas], whole[blas], check_exact=False, rtol=1e-12, atol=0.0)
    (empty,) = population_batches(
        events, customers, task, date(2000, 1, 1), names, cats, 365, 600, 5, 90
    )
    assert empty.empty and list(empty.columns) == names


@pytest.mark.parametrize("task", ["churn", "cross_sell"])
def test_the_row_cap_drawn_before_the_rows_are_made_keeps_the_same_rows(
    small_sample: tuple[pl.DataFrame, pl.DataFrame], task: str
) -> None:
    """Capping from the rows' keys and labels equals making every row and capping afterwards."""
    events, customers = small_sample
    cutoffs = [date(2025, 3, 6), date(2025, 5, 5)]
    full, _ = build_task_data(events, customers, task, cutoffs, 90, max_customers=900, seed=2)
    cap = len(full.at(cutoffs[:1]).y) // 3
    capped, _ = build_task_data(
        events, customers, task, cutoffs, 90, max_customers=900, max_rows_per_cutoff=cap, seed=2
    )
    expected = [full.at([c]).subsample(cap, seed=2 + i) for i, c in enumerate(cutoffs)]
    pd.testing.assert_frame_equal(capped.X, pd.concat([e.X for e in expected]), check_exact=True)
    np.testing.assert_array_equal(capped.y, np.concatenate([e.y for e in expected]))
    np.testing.assert_array_equal(capped.weight, np.concatenate([e.weight for e in expected]))
    assert len(capped.y) < 0.6 * len(full.y)
    assert len(np.unique(capped.weight)) > 1  # sampled customers weighted above the rarer kept
