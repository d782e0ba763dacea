"""Uplift learners on the sample campaign: Qini against random and churn ranking, and plans.

The churn probability and the customer value here are STAND-INS built from the sample's own data,
until the value models (issue 11) and the renovated tasks land:

* ``churn_probability`` is an XGBoost classifier trained in this test on the sample's churn
  labels at the cutoff 90 days before the window end, scored at the window end;
* ``clv`` is the margin of one order at the customer's average order value (30% of it).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from xgboost import XGBClassifier

from features.snapshot import build_snapshot
from models.campaigns import (
    campaign_report,
    measured_rates,
    realised_incremental_margin,
    validate_outcomes,
)
from models.offers import parse_offers, with_measured_rates
from models.targeting import offer_values, plan_campaign
from models.uplift import (
    TwoModelUplift,
    XLearnerUplift,
    campaign_training_frame,
    evaluate_ranking,
    qini,
    uplift_frame,
)
from pipelines.sample import CAMPAIGN_OFFER, DEFAULT_END, generate_sample
from training.labels import churn_labels

OFFERS = parse_offers(
    {
        "offers": [
            {
                "name": CAMPAIGN_OFFER,
                "kind": "retention",
                "channel": "email",
                "cost": 0.6,
                "response": {"default": 0.04},
            }
        ]
    }
)


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out: Path = tmp_path_factory.mktemp("campaign")
    summary = generate_sample(10_000, out, seed=42, campaign=True)
    assert summary.campaign_path is not None
    events = pl.read_parquet(summary.events_path)
    customers = pl.read_parquet(summary.customers_path)
    snapshot = build_snapshot(events, customers, DEFAULT_END)

    cutoff = DEFAULT_END - dt.timedelta(days=90)
    past = build_snapshot(events, customers, cutoff)
    labels = churn_labels(events, cutoff, 90).join(past, on="customer_id")
    churn_model = XGBClassifier(n_estimators=150, max_depth=3, learning_rate=0.1, random_state=0)
    churn_model.fit(uplift_frame(past, labels), labels["label"].to_numpy())
    churn_standin = churn_model.predict_proba(uplift_frame(snapshot, snapshot))[:, 1]

    context = snapshot.select(
        "customer_id",
        segment=pl.col("rfm_segment"),
        churn_probability=pl.Series(churn_standin),
        clv=pl.col("avg_order_value").fill_null(0.0) * 0.3,
    )
    outcomes = validate_outcomes(pl.read_parquet(summary.campaign_path)).join(
        context, on="customer_id"
    )
    rows, x, treatment, y = campaign_training_frame(snapshot, outcomes, CAMPAIGN_OFFER)
    test = np.random.default_rng(0).random(rows.height) < 0.5
    return {
        "rows": rows,
        "x": x,
        "treatment": treatment,
        "y": y,
        "test": test,
        "context": context,
    }


def _fit(campaign: dict[str, object]) -> dict[str, np.ndarray]:
    x, t, y, test = (campaign[k] for k in ("x", "treatment", "y", "test"))
    assert isinstance(x, np.ndarray) and isinstance(test, np.ndarray)
    predictions = {}
    for name, learner in (("two_model", TwoModelUplift()), ("x_learner", XLearnerUplift())):
        learner.fit(x[~test], t[~test], y[~test])  # type: ignore[index]
        predictions[name] = learner.predict(x[test])
    return predictions


@pytest.fixture(scope="module")
def predictions(campaign: dict[str, object]) -> dict[str, np.ndarray]:
    return _fit(campaign)


def test_uplift_beats_random_and_churn_ranking(
    campaign: dict[str, object], predictions: dict[str, np.ndarray]
) -> None:
    rows, t, y, test = (campaign[k] for k in ("rows", "treatment", "y", "test"))
    assert isinstance(rows, pl.DataFrame) and isinstance(test, np.ndarray)
    held_out = rows.filter(pl.Series(test))
    scores = predictions | {"churn_score": held_out["churn_probability"].to_numpy()}
    table = evaluate_ranking(y[test], t[test], scores)  # type: ignore[index]
    print(f"\nheld-out campaign rows: {int(test.sum())}\n{table.round(4).to_string()}")
    best = max(table.loc["two_model", "qini"], table.loc["x_learner", "qini"])
    assert best > table.loc["random", "qini"] + 0.03
    assert best > table.loc["churn_score", "qini"] + 0.03
    x_axis, curve = qini(y[test], predictions["x_learner"], t[test])  # type: ignore[index]
    assert x_axis[0] == 0 and curve[0] == 0
    assert x_axis[-1] == test.sum()


def test_plan_with_uplift_beats_plan_with_segment_rates(
    campaign: dict[str, object], predictions: dict[str, np.ndarray]
) -> None:
    rows, context, test = (campaign[k] for k in ("rows", "context", "test"))
    assert isinstance(rows, pl.DataFrame) and isinstance(context, pl.DataFrame)
    assert isinstance(test, np.ndarray)
    train, held_out = rows.filter(~pl.Series(test)), rows.filter(pl.Series(test))
    rates = measured_rates(train, OFFERS, campaign_report(train, OFFERS))
    by_segment = with_measured_rates(OFFERS, rates)
    customers = held_out.select("customer_id", "segment", "churn_probability", "clv")
    budget = 0.6 * 0.3 * customers.height  # contact at most 30% of the held-out customers
    uplift = customers.select(
        "customer_id", offer=pl.lit(CAMPAIGN_OFFER), uplift=pl.Series(predictions["x_learner"])
    )
    plans = {
        "segment_rates": plan_campaign(offer_values(customers, by_segment), by_segment, budget),
        "uplift": plan_campaign(offer_values(customers, OFFERS, uplift=uplift), OFFERS, budget),
    }
    realised = {
        name: realised_incremental_margin(held_out, plan.rows["customer_id"], 0.6)
        for name, plan in plans.items()
    }
    for name, r in realised.items():
        print(
            f"\n{name}: {int(r['customers'])} customers planned, expected value "
            f"{plans[name].expected_value:.1f}, realised incremental margin on held-out rows "
            f"{r['incremental_margin']:.1f}"
        )
    assert (
        realised["uplift"]["incremental_margin"] > realised["segment_rates"]["incremental_margin"]
    )
