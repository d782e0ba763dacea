"""Exactness of models.treeshap against a hand-computed tree, the Shapley definition,
XGBoost's ``pred_contribs`` and ``shap.TreeExplainer``, on boosters like the registered ones."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import shap
import xgboost as xgb
from hypothesis import given, settings
from hypothesis import strategies as st

from features.events import read_customers, read_events
from features.snapshot import build_snapshot
from models.artifact import ModelBundle
from models.estimators import xgb_params
from models.tasks import TARGET_PREFIX, get_task, model_frame, task_names
from models.treeshap import BLOCK, ROW_KERNEL_MAX, tree_shap
from pipelines.sample import generate_sample

TOL = 1e-4


def _booster_from_tree(tree: dict[str, list[Any]], base_score: float = 0.5) -> xgb.Booster:
    """A one-tree, two-feature ``binary:logistic`` booster with the given node arrays."""
    x = np.array([[0.0, 0.0], [1.0, 2.0]], dtype=np.float32)
    template = xgb.train(
        {"objective": "binary:logistic", "max_depth": 1, "base_score": base_score, "nthread": 1},
        xgb.DMatrix(x, label=[0, 1]),
        num_boost_round=1,
    )
    model = json.loads(bytes(template.save_raw("json")))
    old = model["learner"]["gradient_booster"]["model"]["trees"][0]
    n = len(tree["left_children"])
    parents = [2147483647] * n
    for i in range(n):
        if tree["left_children"][i] >= 0:
            parents[tree["left_children"][i]] = parents[tree["right_children"][i]] = i
    model["learner"]["gradient_booster"]["model"]["trees"][0] = {
        **old,
        **tree,
        "parents": parents,
        "base_weights": [0.0] * n,
        "loss_changes": [0.0] * n,
        "split_type": [0] * n,
        "tree_param": {**old["tree_param"], "num_nodes": str(n)},
    }
    booster = xgb.Booster()
    booster.load_model(bytearray(json.dumps(model).encode()))
    return booster


# root: x0 < 0.5 (cover 10, missing goes right) -> node 1, else leaf c = -2 (cover 4)
# node 1: x1 < 1 (cover 6, missing goes left) -> leaf a = 1 (cover 2), else leaf b = 3 (cover 4)
HAND_TREE = {
    "left_children": [1, 3, -1, -1, -1],
    "right_children": [2, 4, -1, -1, -1],
    "split_indices": [0, 1, 0, 0, 0],
    "split_conditions": [0.5, 1.0, -2.0, 1.0, 3.0],
    "default_left": [0, 1, 0, 0, 0],
    "sum_hessian": [10.0, 6.0, 4.0, 2.0, 4.0],
}


def test_hand_computed_tree() -> None:
    # E[f] = (2*1 + 4*3 + 4*(-2)) / 10 = 0.6; base_score 0.5 is margin 0.
    # Row (0, 2) ends in leaf b = 3: v({}) = 0.6, v({0}) = (2*1 + 4*3) / 6 = 7/3,
    # v({1}) = 0.6*3 + 0.4*(-2) = 1, v({0,1}) = 3, so
    # phi0 = ((7/3 - 0.6) + (3 - 1)) / 2 = 28/15 and phi1 = ((1 - 0.6) + (3 - 7/3)) / 2 = 8/15.
    # Row (0.5, nan) sits on the root threshold (goes right, leaf -2; x1 is never used there):
    # v({}) = 0.6, v({0}) = -2, v({1}) = x1 missing goes left: 0.6*1 + 0.4*(-2) = -0.2,
    # v({0,1}) = -2: phi0 = ((-2 - 0.6) + (-2 + 0.2)) / 2 = -2.2, phi1 = ((-0.2 - 0.6) + 0) / 2.
    booster = _booster_from_tree(HAND_TREE)
    x = np.array([[0.0, 2.0], [0.5, np.nan]], dtype=np.float32)
    expected = np.array([[28 / 15, 8 / 15, 0.6], [-2.2, -0.4, 0.6]])
    np.testing.assert_allclose(tree_shap(booster).contributions(x), expected, atol=1e-6)
    xgb_values = booster.predict(xgb.DMatrix(x, missing=np.nan), pred_contribs=True)
    np.testing.assert_allclose(xgb_values, expected, atol=1e-6)


def _nodes(booster: xgb.Booster) -> list[dict[str, list[Any]]]:
    return json.loads(bytes(booster.save_raw("json")))["learner"]["gradient_booster"]["model"][
        "trees"
    ]


def _expectation(tree: dict[str, Any], x: np.ndarray, known: set[int], node: int = 0) -> float:
    """E[tree | features in ``known`` fixed to ``x``], weighting unknown splits by cover."""
    left, right = tree["left_children"][node], tree["right_children"][node]
    if left < 0:
        return float(np.float32(tree["split_conditions"][node]))
    f = tree["split_indices"][node]
    if f in known:
        v = x[f]
        goes_left = (
            bool(tree["default_left"][node])
            if np.isnan(v)
            else bool(v < np.float32(tree["split_conditions"][node]))
        )
        return _expectation(tree, x, known, left if goes_left else right)
    cover = tree["sum_hessian"]
    return (
        cover[left] * _expectation(tree, x, known, left)
        + cover[right] * _expectation(tree, x, known, right)
    ) / cover[node]


def _shapley_by_definition(booster: xgb.Booster, x: np.ndarray) -> np.ndarray:
    """Shapley values of the cover-weighted conditional expectation, over every subset."""
    trees = _nodes(booster)
    p = x.shape[0]

    def value(known: set[int]) -> float:
        return sum(_expectation(t, x, known) for t in trees)

    phi = np.zeros(p + 1)
    values = {s: value(set(s)) for k in range(p + 1) for s in combinations(range(p), k)}
    for j in range(p):
        others = [i for i in range(p) if i != j]
        for k in range(p):
            w = math.factorial(k) * math.factorial(p - k - 1) / math.factorial(p)
            for s in combinations(others, k):
                phi[j] += w * (values[tuple(sorted((*s, j)))] - values[s])
    phi[p] = values[()]
    return phi


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    p=st.integers(2, 5),
    depth=st.integers(1, 6),
    rounds=st.integers(1, 4),
    missing=st.sampled_from([0.0, 0.2]),
)
def test_random_boosters_match_definition_and_xgboost(
    seed: int, p: int, depth: int, rounds: int, missing: float
) -> None:
    rng = np.random.default_rng(seed)
    n = 60
    x = rng.normal(size=(n, p)).astype(np.float32)
    x[:, 0] = np.round(x[:, 0])  # ties: many rows on the same value
    x[rng.random(x.shape) < missing] = np.nan
    y = (np.nan_to_num(x[:, 0]) + rng.normal(size=n) > 0).astype(int)
    y[:2] = [0, 1]
    booster = xgb.train(
        {
            "objective": "binary:logistic",
            "max_depth": depth,
            "min_child_weight": 0,
            "seed": 0,
            "nthread": 1,
        },
        xgb.DMatrix(x, label=y, missing=np.nan),
        num_boost_round=rounds,
    )
    rows = x[:4]
    ours = tree_shap(booster).contributions(rows)
    base = math.log(_base_score(booster) / (1 - _base_score(booster)))
    for i, row in enumerate(rows):
        expected = _shapley_by_definition(booster, row)
        expected[-1] += base
        np.testing.assert_allclose(ours[i], expected, atol=1e-6)
    xgb_values = booster.predict(xgb.DMatrix(rows, missing=np.nan), pred_contribs=True)
    np.testing.assert_allclose(ours, xgb_values, atol=TOL)


def _base_score(booster: xgb.Booster) -> float:
    model = json.loads(bytes(booster.save_raw("json")))
    return float(model["learner"]["learner_model_param"]["base_score"].strip("[]"))


@pytest.fixture(scope="module")
def sample_frames(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    """Model inputs of the three tasks on a small generated sample (real features, NaNs)."""
    out: Path = tmp_path_factory.mktemp("treeshap-sample")
    summary = generate_sample(600, out, seed=3)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    events = read_events(summary.events_path, now=now)
    customers = read_customers(summary.customers_path, now=now)
    snapshot = build_snapshot(events, customers, date(2025, 9, 30))
    return {task: model_frame(task, snapshot) for task in task_names()}


def _train(x: pd.DataFrame, depth: int, rounds: int, seed: int) -> xgb.Booster:
    """A booster as training makes them (its base parameters and a draw from the search space)."""
    rng = np.random.default_rng(seed)
    values = x.to_numpy(dtype=np.float32, na_value=np.nan)
    score = np.nan_to_num(values[:, :3]).sum(axis=1)
    y = (score + rng.normal(0, score.std() + 1, len(x)) > np.median(score)).astype(int)
    params = {
        "max_depth": depth,
        "learning_rate": 0.1,
        "min_child_weight": float(rng.choice([1.0, 5.0])),
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "reg_lambda": 1.0,
        "reg_alpha": 0.01,
    }
    return xgb.train(
        xgb_params(params, seed=seed, nthread=1),
        xgb.DMatrix(values, label=y, missing=np.nan),
        num_boost_round=rounds,
    )


def _on_thresholds(booster: xgb.Booster, x: np.ndarray, seed: int) -> np.ndarray:
    """Rows of ``x`` with values moved exactly onto split thresholds, and one float32 step off."""
    rng = np.random.default_rng(seed)
    splits = [
        (int(f), np.float32(c))
        for tree in _nodes(booster)
        for f, c, left in zip(
            tree["split_indices"], tree["split_conditions"], tree["left_children"], strict=True
        )
        if left >= 0
    ]
    rows = x[rng.integers(0, len(x), 3 * len(splits))].copy()
    for i, (f, c) in enumerate(splits):
        rows[3 * i, f] = c
        rows[3 * i + 1, f] = np.nextafter(c, np.float32(-np.inf))
        rows[3 * i + 2, f] = np.nextafter(c, np.float32(np.inf))
    return rows


@pytest.mark.parametrize("task", task_names())
@pytest.mark.parametrize(("depth", "rounds"), [(2, 50), (4, 40), (6, 60), (7, 30)])
def test_registered_model_types_match_xgboost_and_shap(
    sample_frames: dict[str, pd.DataFrame], task: str, depth: int, rounds: int
) -> None:
    frame = sample_frames[task]
    if get_task(task).kind == "ranked":  # cross-sell: the target-category indicators
        assert any(c.startswith(TARGET_PREFIX) for c in frame.columns)
    booster = _train(frame, depth, rounds, seed=depth)
    if depth == 6:  # training keeps the best round: a sliced booster
        booster = booster[:45]
    x = frame.to_numpy(dtype=np.float32, na_value=np.nan)
    rows = np.concatenate([x[:300], _on_thresholds(booster, x, seed=depth)])
    assert np.isnan(rows).any()
    ours = tree_shap(booster).contributions(rows)
    dmat = xgb.DMatrix(rows, missing=np.nan)
    xgb_values = booster.predict(dmat, pred_contribs=True)
    assert np.abs(ours - xgb_values).max() <= TOL
    explainer = shap.TreeExplainer(booster)  # hands XGBoost boosters to pred_contribs
    assert np.abs(ours[:, :-1] - np.asarray(explainer.shap_values(rows))).max() <= TOL
    assert abs(ours[0, -1] - float(np.ravel(explainer.expected_value)[0])) <= TOL
    # shap's own C++ TreeSHAP (float64, its own parse of the booster): an independent reference
    explainer.model.model_type = "internal"
    own = np.asarray(explainer.shap_values(rows))
    assert np.abs(ours[:, :-1] - own).max() <= 1e-6
    margin = booster.predict(dmat, output_margin=True)
    assert np.abs(ours.sum(axis=1) - margin).max() <= TOL


@pytest.mark.slow
def test_design_size_model_matches_xgboost() -> None:
    """The DESIGN.md model: 300 trees of depth 6 over 40 features, rows with missing values."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2000, 40)).astype(np.float32)
    x[:, :10] = np.round(x[:, :10])
    x[:, 10:15] = x[:, 10:15] > 0
    x[rng.random(x.shape) < 0.1] = np.nan
    y = (np.nan_to_num(x[:, :5]).sum(axis=1) + rng.normal(size=len(x)) > 0).astype(int)
    booster = xgb.train(
        xgb_params({"max_depth": 6, "learning_rate": 0.05}, nthread=1),
        xgb.DMatrix(x, label=y, missing=np.nan),
        num_boost_round=300,
    )
    rows = np.concatenate([x[:200], _on_thresholds(booster, x, seed=1)[:400]])
    ours = tree_shap(booster).contributions(rows)
    dmat = xgb.DMatrix(rows, missing=np.nan)
    assert np.abs(ours - booster.predict(dmat, pred_contribs=True)).max() <= TOL
    assert np.abs(ours.sum(axis=1) - booster.predict(dmat, output_margin=True)).max() <= TOL


@pytest.mark.parametrize(
    "n", [1, ROW_KERNEL_MAX, ROW_KERNEL_MAX + 1, BLOCK - 1, BLOCK, BLOCK + 1, 5 * BLOCK + 3]
)
def test_kernels_threads_and_batch_sizes_agree(tiny_bundle: ModelBundle, tiny_data, n: int):
    x_frame, _ = tiny_data
    x = np.tile(x_frame.to_numpy(dtype=np.float32), (3, 1))[:n]
    explainer = tree_shap(tiny_bundle.booster)
    one_by_one = np.concatenate([explainer.contributions(x[i : i + 1]) for i in range(n)])
    together = explainer.contributions(x, threads=1)
    np.testing.assert_array_equal(together, one_by_one)  # bit for bit: stored = served
    np.testing.assert_array_equal(explainer.contributions(x, threads=2), together)


def test_bundle_contributions_use_the_fast_path(tiny_bundle: ModelBundle, tiny_data) -> None:
    x, _ = tiny_data
    c = tiny_bundle.contributions(x)
    assert c.dtype == np.float64 and c.shape == (len(x), len(tiny_bundle.feature_names) + 1)
    np.testing.assert_allclose(c.sum(axis=1), tiny_bundle.predict_margin(x), atol=TOL)
    dmat = xgb.DMatrix(x.to_numpy(dtype=np.float32), missing=np.nan)
    np.testing.assert_allclose(
        c, tiny_bundle.booster.predict(dmat, pred_contribs=True), rtol=0, atol=TOL
    )
    assert tree_shap(tiny_bundle.booster) is tree_shap(tiny_bundle.booster)  # parsed once
    assert tiny_bundle.contributions(x.iloc[:0]).shape == (0, len(tiny_bundle.feature_names) + 1)


def test_booster_trained_further_is_parsed_again(tiny_data) -> None:
    x, y = tiny_data
    dtrain = xgb.DMatrix(x.to_numpy(), label=y, missing=np.nan)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2, "nthread": 1}, dtrain, 3)
    first = tree_shap(booster)
    booster.update(dtrain, 3)
    assert tree_shap(booster) is not first and tree_shap(booster).num_trees == 4
    rows = x.to_numpy(dtype=np.float32)
    np.testing.assert_allclose(
        tree_shap(booster).contributions(rows),
        booster.predict(xgb.DMatrix(rows, missing=np.nan), pred_contribs=True),
        atol=TOL,
    )


@pytest.mark.parametrize(
    "objective",
    ["reg:squarederror", "reg:pseudohubererror", "count:poisson", "reg:gamma", "binary:logitraw"],
)
def test_other_objectives_start_from_their_base_margin(tiny_data, objective: str) -> None:
    """A regression task's booster: the bias adds the base score through the objective's link."""
    x, y = tiny_data
    rows = x.to_numpy(dtype=np.float32)
    label = y if objective.startswith("binary") else 1.0 + x["recency_days"].to_numpy() / 100
    dtrain = xgb.DMatrix(rows, label=label, missing=np.nan)
    booster = xgb.train({"objective": objective, "max_depth": 3, "nthread": 1}, dtrain, 10)
    dmat = xgb.DMatrix(rows, missing=np.nan)
    ours = tree_shap(booster).contributions(rows)
    np.testing.assert_allclose(ours, booster.predict(dmat, pred_contribs=True), atol=TOL)
    np.testing.assert_allclose(
        ours.sum(axis=1), booster.predict(dmat, output_margin=True), atol=TOL
    )


def test_unsupported_boosters_and_inputs_are_named(tiny_bundle: ModelBundle, tiny_data) -> None:
    x, y = tiny_data
    dtrain = xgb.DMatrix(x.to_numpy(), label=y, missing=np.nan)
    with pytest.raises(ValueError, match="gbtree"):
        tree_shap(xgb.train({"booster": "gblinear", "nthread": 1}, dtrain, 2))
    with pytest.raises(ValueError, match="single-output"):
        tree_shap(xgb.train({"objective": "multi:softprob", "num_class": 2}, dtrain, 2))
    with pytest.raises(ValueError, match="survival:cox"):
        tree_shap(xgb.train({"objective": "survival:cox", "nthread": 1}, dtrain, 2))
    categorical = pd.DataFrame({"c": pd.Categorical(["a", "b", "c"] * 20), "v": range(60)})
    with pytest.raises(ValueError, match="categorical"):
        tree_shap(
            xgb.train(
                {"objective": "binary:logistic", "max_cat_to_onehot": 1, "nthread": 1},
                xgb.DMatrix(categorical, label=[0, 1] * 30, enable_categorical=True),
                2,
            )
        )
    with pytest.raises(ValueError, match=r"shape \(rows, 3\)"):
        tree_shap(tiny_bundle.booster).contributions(np.zeros((2, 4), dtype=np.float32))
