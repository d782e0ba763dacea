"""Uplift learners on the sample campaign: Qini against random and churn ranking, and plans.

The churn probability and the CLV are the real ones: the churn task's calibrated model trained by
:func:`training.train.train_task` on the sample as of its last day, and the value table's
probabilistic CLV (BG/NBD and Gamma-Gamma, :func:`models.clv.customers.value_table`), as
``guanxi value`` computes them. Every campaign row is held out once (:func:`models.uplift.
cross_fit`, five folds); the segment rates of the comparison plan are measured on the other four
folds, so neither plan sees the rows it is judged on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from features.snapshot import build_snapshot
from features.value import repeat_purchase_summary
from models.campaigns import (
    measured_rates,
    realised_incremental_margin,
    validate_outcomes,
)
from models.clv.customers import churn_probabilities, fit_value_models, value_table
from models.offers import parse_offers, with_measured_rates
from models.targeting import offer_values, plan_campaign
from models.uplift import (
    TwoModelUplift,
    XLearnerUplift,
    best_ranking,
    campaign_training_frame,
    cross_fit,
    evaluate_ranking,
    fold_of,
    qini,
)
from pipelines.sample import CAMPAIGN_OFFER, DEFAULT_END, generate_sample
from training.train import TrainConfig, train_task

COST = 0.6
OFFERS = parse_offers(
    {
        "offers": [
            {
                "name": CAMPAIGN_OFFER,
                "kind": "retention",
                "channel": "email",
                "cost": COST,
                "response": {"default": 0.04},
            }
        ]
    }
)
FOLDS = 5


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out: Path = tmp_path_factory.mktemp("campaign")
    summary = generate_sample(10_000, out, seed=42, campaign=True)
    assert summary.campaign_path is not None
    events = pl.read_parquet(summary.events_path)
    customers = pl.read_parquet(summary.customers_path)
    snapshot = build_snapshot(events, customers, DEFAULT_END)
    trained = train_task(events, customers, "churn", DEFAULT_END, 90, TrainConfig(trials=5))
    churn = churn_probabilities(trained.bundle, snapshot)
    purchases = repeat_purchase_summary(events, DEFAULT_END)
    values = value_table(
        purchases,
        snapshot,
        fit_value_models(purchases),
        horizon_days=365,
        discount_rate=0.10,
        churn=churn,
        churn_horizon_days=90,
    )
    context = values.select(
        "customer_id",
        "churn_probability",
        "clv",
        "value_tier",
        segment=pl.col("rfm_segment"),
    )
    outcomes = validate_outcomes(pl.read_parquet(summary.campaign_path)).join(
        context, on="customer_id"
    )
    rows, x, treatment, y = campaign_training_frame(snapshot, outcomes, CAMPAIGN_OFFER)
    predictions = {}
    for name, learner in (("two_model", TwoModelUplift), ("x_learner", XLearnerUplift)):
        predictions[name] = cross_fit(learner, x, treatment, y, folds=FOLDS, seed=0)
    fold = fold_of(treatment, y, folds=FOLDS, seed=0)  # the folds cross_fit used
    return {
        "rows": rows,
        "treatment": treatment,
        "y": y,
        "fold": fold,
        "predictions": predictions,
    }


@pytest.mark.slow
def test_uplift_beats_random_and_churn_ranking(campaign: dict[str, object]) -> None:
    rows, t, y, predictions = (campaign[k] for k in ("rows", "treatment", "y", "predictions"))
    assert isinstance(rows, pl.DataFrame) and isinstance(predictions, dict)
    assert isinstance(t, np.ndarray) and isinstance(y, np.ndarray)
    churn = rows["churn_probability"].fill_null(0.0).to_numpy()  # outside the population: 0
    table = evaluate_ranking(y, t, predictions | {"churn_score": churn})
    print(f"\ncampaign rows, each held out once: {rows.height}\n{table.round(4).to_string()}")
    best = max(table.loc["two_model", "qini"], table.loc["x_learner", "qini"])
    assert best > table.loc["random", "qini"] + 0.03
    assert best > table.loc["churn_score", "qini"]
    assert best_ranking(table) in ("two_model", "x_learner")
    x_axis, curve = qini(y, predictions["x_learner"], t)
    assert x_axis[0] == 0 and curve[0] == 0
    assert x_axis[-1] == rows.height


@pytest.mark.slow
def test_plan_with_uplift_is_level_with_or_beats_segment_rates(
    campaign: dict[str, object],
) -> None:
    """The uplift plan realises at least 98% of the segment-rate plan's margin, and more once.

    Measured on 2026-11-30 the lead is small (+4% at a 15% budget, -0.1% at 30%), within what
    another sample could reverse: the README says so; a strict win at every budget is not claimed.
    """
    rows, t, y, fold, predictions = (
        campaign[k] for k in ("rows", "treatment", "y", "fold", "predictions")
    )
    assert isinstance(rows, pl.DataFrame) and isinstance(predictions, dict)
    assert isinstance(fold, np.ndarray)
    churn = rows["churn_probability"].fill_null(0.0).to_numpy()
    table = evaluate_ranking(y, t, predictions | {"churn_score": churn})
    chosen = best_ranking(table)
    assert chosen is not None
    customers = rows.select("customer_id", "segment", "value_tier", "churn_probability", "clv")
    by_segment = np.full(rows.height, np.nan)  # each fold valued with rates measured elsewhere
    for k in range(FOLDS):
        train = rows.filter(pl.Series(fold != k))
        offers = with_measured_rates(OFFERS, measured_rates(train, OFFERS))
        held = customers.filter(pl.Series(fold == k))
        by_segment[fold == k] = offer_values(held, offers).value[:, 0]
    uplift = customers.select(
        "customer_id", offer=pl.lit(CAMPAIGN_OFFER), uplift=pl.Series(predictions[chosen])
    )
    with_uplift = offer_values(customers, OFFERS, uplift=uplift).value[:, 0]
    ratios = []
    for share in (0.15, 0.30):  # contact at most this share of the campaign's customers
        budget = COST * share * rows.height
        realised = {}
        for name, value in (("segment_rates", by_segment), ("uplift", with_uplift)):
            values = offer_values(customers, OFFERS)
            values.value[:, 0] = value
            plan = plan_campaign(values, OFFERS, budget)
            realised[name] = realised_incremental_margin(rows, plan.rows["customer_id"], COST)
            r = realised[name]
            print(
                f"\nbudget for {share:.0%} of {rows.height} customers, {name} ({chosen}): "
                f"{int(r['customers'])} planned ({int(r['treated'])} contacted, "
                f"{int(r['control'])} held out), expected value {plan.expected_value:,.0f}, "
                f"realised incremental margin {r['incremental_margin']:,.0f}"
            )
        ratios.append(
            realised["uplift"]["incremental_margin"]
            / realised["segment_rates"]["incremental_margin"]
        )
    print(f"\nuplift plan / segment-rate plan, realised incremental margin: {ratios}")
    assert min(ratios) >= 0.98 and max(ratios) > 1.0


def test_best_ranking_needs_to_beat_the_churn_score() -> None:
    table = pd.DataFrame(
        {"qini": [0.09, 0.08, 0.07, 0.0], "auuc": [0.1, 0.1, 0.1, 0.0]},
        index=["x_learner", "two_model", "churn_score", "random"],
    )
    assert best_ranking(table) == "x_learner"
    table.loc["churn_score", "qini"] = 0.095
    assert best_ranking(table) is None


def test_cross_fit_predicts_every_row_out_of_fold() -> None:
    rng = np.random.default_rng(3)
    n = 4000
    x = rng.random((n, 2))
    t = rng.integers(0, 2, n)
    lift = np.where(x[:, 0] > 0.5, 0.4, -0.2)  # the first feature decides the effect
    y = (rng.random(n) < 0.3 + t * lift).astype(np.int64)
    fold = fold_of(t, y, folds=4, seed=1)
    assert sorted(np.unique(fold).tolist()) == [0, 1, 2, 3]
    predicted = cross_fit(TwoModelUplift, x, t, y, folds=4, seed=1)
    assert predicted.shape == (n,)
    high, low = predicted[x[:, 0] > 0.5].mean(), predicted[x[:, 0] <= 0.5].mean()
    assert high == pytest.approx(0.4, abs=0.08)
    assert low == pytest.approx(-0.2, abs=0.08)
