from __future__ import annotations

import dataclasses
import json
import warnings
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shap
from hypothesis import given, settings
from hypothesis import strategies as st

from models.artifact import (
    BOOSTER_FILE,
    BUNDLE_FILE,
    MAX_INPUT,
    ModelBundle,
    apply_calibration,
)


def _threshold_rows(bundle: ModelBundle) -> pd.DataFrame:
    """Rows whose values sit exactly on the booster's split thresholds."""
    trees = bundle.booster.trees_to_dataframe()
    splits = trees[trees["Feature"] != "Leaf"]
    by_feature: dict[str, list[float]] = {}
    for feat, value in zip(splits["Feature"], splits["Split"], strict=True):
        name = bundle.feature_names[int(str(feat).lstrip("f"))]
        by_feature.setdefault(name, []).append(float(value))
    n = max(len(v) for v in by_feature.values())
    cols = {
        name: [
            by_feature.get(name, [np.nan])[i % len(by_feature.get(name, [np.nan]))]
            for i in range(n)
        ]
        for name in bundle.feature_names
    }
    return pd.DataFrame(cols)


def test_calibration_by_hand() -> None:
    m = np.array([-2.0, -1.0, 0.5, 3.0])
    iso = {"method": "isotonic", "x": [-1.0, 0.0, 1.0], "y": [0.1, 0.4, 0.9]}
    np.testing.assert_allclose(apply_calibration(iso, m), [0.1, 0.1, 0.65, 0.9])
    sig = {"method": "sigmoid", "a": 2.0, "b": -1.0}
    np.testing.assert_allclose(apply_calibration(sig, np.array([0.5])), [0.5])
    np.testing.assert_allclose(apply_calibration({"method": "none"}, np.array([0.0])), [0.5])
    with pytest.raises(ValueError, match="unknown calibration method 'platt'"):
        apply_calibration({"method": "platt"}, m)


def test_save_load_roundtrip_without_pickle(tiny_bundle: ModelBundle, tiny_data, tmp_path: Path):
    x, _ = tiny_data
    bundle = ModelBundle(
        **{**tiny_bundle.__dict__, "metadata": {"as_of": date(2024, 3, 31), "auc": np.float32(0.5)}}
    )
    bundle.save(tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [BUNDLE_FILE, BOOSTER_FILE]
    meta = json.loads((tmp_path / "b" / BUNDLE_FILE).read_text())
    assert meta["metadata"] == {"as_of": "2024-03-31", "auc": 0.5}
    loaded = ModelBundle.load(tmp_path / "b")
    assert loaded.feature_names == bundle.feature_names
    assert loaded.calibration == bundle.calibration
    assert loaded.task == "churn" and loaded.categories == []
    np.testing.assert_array_equal(loaded.predict_margin(x), bundle.predict_margin(x))
    np.testing.assert_array_equal(loaded.contributions(x), bundle.contributions(x))
    np.testing.assert_array_equal(loaded.predict_proba(x), bundle.predict_proba(x))


def test_load_rejects_newer_format_and_missing_files(tiny_bundle: ModelBundle, tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=BUNDLE_FILE):
        ModelBundle.load(tmp_path)
    tiny_bundle.save(tmp_path)
    meta = json.loads((tmp_path / BUNDLE_FILE).read_text())
    (tmp_path / BUNDLE_FILE).write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(ValueError, match="format_version 99"):
        ModelBundle.load(tmp_path)


def test_missing_column_is_named(tiny_bundle: ModelBundle, tiny_data) -> None:
    x, _ = tiny_data
    with pytest.raises(KeyError, match="orders_90d"):
        tiny_bundle.predict_margin(x.drop(columns="orders_90d"))


def test_column_order_and_extra_columns_do_not_matter(tiny_bundle: ModelBundle, tiny_data):
    x, _ = tiny_data
    shuffled = x[x.columns[::-1]].assign(extra=1.0)
    np.testing.assert_array_equal(
        tiny_bundle.predict_margin(shuffled), tiny_bundle.predict_margin(x)
    )


def test_contributions_sum_to_margin_including_split_thresholds(tiny_bundle, tiny_data) -> None:
    x, _ = tiny_data
    rows = pd.concat([x.reset_index(drop=True), _threshold_rows(tiny_bundle)], ignore_index=True)
    contrib = tiny_bundle.contributions(rows)
    assert contrib.shape == (len(rows), len(tiny_bundle.feature_names) + 1)
    np.testing.assert_allclose(contrib.sum(axis=1), tiny_bundle.predict_margin(rows), atol=1e-5)


def test_contributions_match_shap_tree_explainer(tiny_bundle: ModelBundle, tiny_data) -> None:
    x, _ = tiny_data
    rows = pd.concat([x.reset_index(drop=True), _threshold_rows(tiny_bundle)], ignore_index=True)
    ours = tiny_bundle.contributions(rows)
    explainer = shap.TreeExplainer(tiny_bundle.booster)
    theirs = explainer.shap_values(rows[tiny_bundle.feature_names].to_numpy(dtype=np.float32))
    assert np.abs(ours[:, :-1] - theirs).max() <= 1e-4
    assert np.abs(ours[:, -1] - float(np.ravel(explainer.expected_value)[0])).max() <= 1e-4


def test_empty_input(tiny_bundle: ModelBundle, tiny_data) -> None:
    x, _ = tiny_data
    assert tiny_bundle.predict_proba(x.iloc[:0]).shape == (0,)
    assert tiny_bundle.contributions(x.iloc[:0]).shape == (0, 4)


@settings(max_examples=25, deadline=None)
@given(st.permutations(list(range(30))))
def test_row_order_changes_nothing(tiny_bundle: ModelBundle, tiny_data, order) -> None:
    x = tiny_data[0].iloc[:30]
    base = tiny_bundle.predict_proba(x)
    np.testing.assert_array_equal(tiny_bundle.predict_proba(x.iloc[order]), base[order])


def test_predict_is_the_probability_of_a_classifier_and_the_value_of_a_regression(
    tiny_bundle: ModelBundle, tiny_data, tmp_path: Path
) -> None:
    x, _ = tiny_data
    np.testing.assert_array_equal(tiny_bundle.predict(x), tiny_bundle.predict_proba(x))
    value = dataclasses.replace(tiny_bundle, kind="regression")
    np.testing.assert_array_equal(value.predict(x), value.predict_margin(x))
    value.save(tmp_path / "value")
    assert ModelBundle.load(tmp_path / "value").kind == "regression"
    tiny_bundle.save(tmp_path / "churn")
    meta = json.loads((tmp_path / "churn" / BUNDLE_FILE).read_text())
    del meta["kind"]  # a bundle written before kinds existed is a classifier
    (tmp_path / "churn" / BUNDLE_FILE).write_text(json.dumps(meta))
    assert ModelBundle.load(tmp_path / "churn").kind == "binary"


def test_an_array_of_the_model_columns_is_the_frame(tiny_bundle: ModelBundle, tiny_data) -> None:
    """Rows kept as an array (the model's columns in order) predict and explain as the frame."""
    x, _ = tiny_data
    values = x[tiny_bundle.feature_names].to_numpy(dtype=np.float64, na_value=np.nan)
    np.testing.assert_array_equal(tiny_bundle.predict_margin(values), tiny_bundle.predict_margin(x))
    np.testing.assert_array_equal(tiny_bundle.contributions(values), tiny_bundle.contributions(x))
    with pytest.raises(ValueError, match=r"shape \(200, 2\), expected \(rows, 3\)"):
        tiny_bundle.predict_margin(values[:, :2])


def test_an_input_beyond_float32_goes_where_the_value_itself_would(
    tiny_bundle: ModelBundle, tiny_data
) -> None:
    """A value too large for float32 (a feature worked out from huge amounts) is read as an
    infinite one, beyond every split threshold like the value itself, and the cast reports no
    overflow (the fuzz run's ``RuntimeWarning: overflow encountered in cast``)."""
    x, _ = tiny_data
    rows = x[tiny_bundle.feature_names].iloc[:20].reset_index(drop=True)
    for column in tiny_bundle.feature_names:
        for sign in (1.0, -1.0):
            huge, infinite, largest = rows.copy(), rows.copy(), rows.copy()
            huge[column], infinite[column] = sign * 1e300, sign * np.inf
            largest[column] = sign * MAX_INPUT
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                margin = tiny_bundle.predict_margin(huge)
                by_array = tiny_bundle.predict_margin(huge.to_numpy(dtype=np.float64))
                contributions = tiny_bundle.contributions(huge)
            np.testing.assert_array_equal(margin, tiny_bundle.predict_margin(infinite))
            np.testing.assert_array_equal(margin, tiny_bundle.predict_margin(largest))
            np.testing.assert_array_equal(by_array, margin)
            np.testing.assert_array_equal(contributions, tiny_bundle.contributions(infinite))
            assert np.isfinite(margin).all()
