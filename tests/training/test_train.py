"""train_task end to end on generated sample data."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from models.artifact import ModelBundle
from models.labels import known_customers, order_categories
from models.tasks import get_task, task_names
from tests.training.conftest import AS_OF, load_sample
from training.datasets import InsufficientDataError
from training.train import TrainConfig, TrainResult, train_task

FAST = TrainConfig(trials=3, seed=1, nthread=1, shap_rows=200)


@pytest.fixture(scope="module")
def churn(small_sample: tuple[pl.DataFrame, pl.DataFrame]) -> tuple[TrainResult, list]:
    events, customers = small_sample
    trials: list[dict] = []
    messages: list[str] = []
    result = train_task(
        events,
        customers,
        "churn",
        AS_OF,
        90,
        FAST,
        on_trial=lambda trial, info: trials.append(info),
        progress=messages.append,
    )
    return result, [trials, messages]


def test_result_is_complete(churn: tuple[TrainResult, list]) -> None:
    result, (trials, messages) = churn
    assert set(result.metrics) == {"xgboost", "logistic", "rule"}
    assert result.grade in ("A", "B", "C")
    assert result.rule["threshold_days"] > 0
    assert set(result.figures) == {"gains", "reliability", "shap_beeswarm", "shap_bar"}
    assert set(result.tables) >= {"gains", "reliability", "missing", "trials"}
    assert set(result.tables["gains"]["model"]) == {"xgboost", "logistic", "rule"}
    assert len(trials) == 3 and messages
    params = result.params
    assert params["cutoffs"]["test"] == date(2025, 10, 2)
    assert params["cutoffs"]["validation"] == date(2025, 7, 4)
    assert params["seed"] == 1 and "max_depth" in params["best_params"]
    assert "## Grade" in result.model_card and "2025-10-02" in result.model_card


def test_fast_churn_beats_its_rule(churn: tuple[TrainResult, list]) -> None:
    result, _ = churn
    xgb_m, rule_m = result.metrics["xgboost"], result.metrics["rule"]
    assert xgb_m["roc_auc"] > rule_m["roc_auc"]
    assert xgb_m["pr_auc"] > rule_m["pr_auc"]


def test_bundle_scores_the_holdout_and_round_trips(
    churn: tuple[TrainResult, list], tmp_path: Path
) -> None:
    result, _ = churn
    bundle = result.bundle
    x, y = result.holdout
    assert len(x) == len(y) == result.metrics["xgboost"]["n"]
    assert x.index.get_level_values("cutoff").unique().tolist() == [date(2025, 10, 2)]
    assert bundle.calibration["method"] in ("isotonic", "sigmoid")
    p = bundle.predict_proba(x)
    assert ((p >= 0) & (p <= 1)).all()
    bundle.save(tmp_path / "m")
    loaded = ModelBundle.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict_proba(x), p)
    meta = json.loads((tmp_path / "m" / "bundle.json").read_text())["metadata"]
    assert meta["grade"] == result.grade and meta["params"]["as_of"] == "2025-12-31"


def test_short_history_is_refused(small_sample: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    events, customers = small_sample
    with pytest.raises(InsufficientDataError, match="history is"):
        train_task(events, customers, "churn", date(2023, 9, 1), 90, FAST)
    with pytest.raises(ValueError, match="unknown task"):
        train_task(events, customers, "upsell", AS_OF, 90, FAST)


def test_a_39_week_history_trains_with_a_13_week_horizon(
    small_sample: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    """Shops with under a year of data train: the last cutoff is split by customer."""
    events, customers = small_sample
    first = AS_OF - timedelta(weeks=39)
    short = events.filter(pl.col("ts").dt.date() >= first)
    messages: list[str] = []
    config = TrainConfig(trials=2, seed=1, nthread=1, shap_rows=100, active_days=120)
    result = train_task(
        short, customers, "repurchase", AS_OF, 13 * 7, config, progress=messages.append
    )
    cutoffs = result.params["cutoffs"]
    assert cutoffs["split"] == "customer"
    assert cutoffs["validation"] == cutoffs["test"] == AS_OF - timedelta(weeks=13)
    assert cutoffs["train"][-1] == AS_OF - timedelta(weeks=26)
    assert any("customer-grouped hold-out" in m and "421 days" in m for m in messages)
    assert "customer-grouped hold-out" in result.model_card
    held = set(result.holdout.X.index.get_level_values("customer_id"))
    n_valid, n_test = result.bundle.metadata["data"]["rows"][1:]
    assert len(held) == n_test and 0.4 < n_test / (n_valid + n_test) < 0.6
    assert np.isfinite(result.metrics["xgboost"]["roc_auc"])
    assert result.bundle.metadata["population"]["active_days"] == 120
    assert result.params["active_days"] == 120


@pytest.fixture(scope="module")
def sample_5k(tmp_path_factory: pytest.TempPathFactory) -> tuple[pl.DataFrame, pl.DataFrame]:
    return load_sample(tmp_path_factory, 5000, seed=42)


@pytest.mark.slow
@pytest.mark.parametrize("task", task_names())
def test_every_task_beats_its_rule_on_sample_data(
    task: str, sample_5k: tuple[pl.DataFrame, pl.DataFrame]
) -> None:
    events, customers = sample_5k
    result = train_task(events, customers, task, AS_OF, 90, TrainConfig(trials=10, nthread=1))
    xgb_m, rule_m = result.metrics["xgboost"], result.metrics["rule"]
    assert xgb_m["roc_auc"] > rule_m["roc_auc"] + 0.02
    assert xgb_m["pr_auc"] > rule_m["pr_auc"]
    assert result.grade in ("A", "B")
    if get_task(task).kind == "ranked":
        assert xgb_m["recall@3"] > result.metrics["popularity"]["recall@3"]


@pytest.mark.parametrize("task", task_names())
def test_a_history_of_orders_only_trains_every_task(
    small_sample: tuple[pl.DataFrame, pl.DataFrame], task: str
) -> None:
    """Many shops have nothing but orders: every family without data is empty, nothing fails.

    A task labelled from events the history lacks has no positive label at all; it stops with the
    data check's message instead of training on one class.
    """
    events, _ = small_sample
    orders = events.filter(pl.col("event_type") == "order")
    cutoff = AS_OF - timedelta(days=90)
    labels = get_task(task).labels(
        orders, cutoff, 90, known_customers(orders, cutoff), order_categories(orders)
    )
    config = TrainConfig(trials=2, seed=1, nthread=1)
    if labels["label"].sum() == 0:
        with pytest.raises(InsufficientDataError, match="0 positive labels"):
            train_task(orders, None, task, AS_OF, 90, config)
        return
    result = train_task(orders, None, task, AS_OF, 90, config)
    assert result.grade in ("A", "B", "C")
    assert np.isfinite(result.metrics["xgboost"]["roc_auc"])
