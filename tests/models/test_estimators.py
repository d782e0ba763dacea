"""The logistic baseline equals scikit-learn's impute -> scale -> logistic pipeline."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import models.estimators as estimators
from models.estimators import LogisticBaseline

NAN = np.nan


def _pipeline(seed: int = 0) -> Pipeline:
    """The pipeline the baseline replaces (the reference of these tests)."""
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", add_indicator=True)),
            ("scale", StandardScaler(copy=False)),
            ("logistic", LogisticRegression(max_iter=1000, random_state=seed)),
        ]
    )


def _frame(rows: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Rows with missing values, an all-missing column and a complete one; labels; weights."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 5)) * [1.0, 3.0, 0.5, 2.0, 1.0] + [0.0, 5.0, -1.0, 0.0, 2.0]
    x[rng.random(rows) < 0.3, 0] = NAN
    x[rng.random(rows) < 0.05, 1] = NAN
    x[:, 2] = NAN  # missing everywhere: dropped, but indicated
    y = (x[:, 3] + rng.normal(size=rows) > 0.5).astype(int)
    weight = np.where(y == 1, 1.0, 4.0)
    return pd.DataFrame(x, columns=[f"f{j}" for j in range(5)]), y, weight


def test_design_by_hand() -> None:
    x = pd.DataFrame(
        {"a": [1.0, 3.0, NAN, 5.0], "b": [NAN, 2.0, 4.0, 6.0], "c": [NAN] * 4, "d": [1.0] * 4}
    )
    model = LogisticBaseline().fit(x, np.array([0, 1, 0, 1]))
    np.testing.assert_array_equal(model.medians_, [3.0, 4.0, NAN, 1.0])
    np.testing.assert_array_equal(model.indicated_, [0, 1, 2])
    expected = [
        # a, b, d (c has no median), then "missing" for a, b, c
        [1.0, 4.0, 1.0, 0.0, 1.0, 1.0],
        [3.0, 2.0, 1.0, 0.0, 0.0, 1.0],
        [3.0, 4.0, 1.0, 1.0, 0.0, 1.0],
        [5.0, 6.0, 1.0, 0.0, 0.0, 1.0],
    ]
    design = model.design(x)
    np.testing.assert_array_equal(design, expected)
    assert design.dtype == np.float64
    assert design.flags.c_contiguous


@pytest.mark.filterwarnings("ignore::UserWarning")  # the reference pipeline's own warnings
def test_predictions_equal_the_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(estimators, "DESIGN_ROWS", 97)  # several blocks, the last one short
    x, y, weight = _frame(1_000, seed=3)
    reference = _pipeline(seed=7).fit(x, y, logistic__sample_weight=weight)
    model = LogisticBaseline(seed=7).fit(x, y, sample_weight=weight)
    test, _, _ = _frame(300, seed=4)
    test.iloc[:, 4] = NAN  # missing at predict time only: imputed, no indicator
    np.testing.assert_allclose(model.logistic_.coef_, reference[-1].coef_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(
        model.logistic_.intercept_, reference[-1].intercept_, rtol=0, atol=1e-10
    )
    for rows in (x, test, test.to_numpy()):
        np.testing.assert_allclose(
            model.predict_proba(rows), reference.predict_proba(rows), rtol=0, atol=1e-10
        )
    assert np.isnan(x.to_numpy()).sum() > 1_000  # the caller's rows are left as they were


@settings(max_examples=50, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(2, 40), st.integers(1, 6)),
        elements=st.one_of(st.just(NAN), st.floats(-1e6, 1e6)),
    ),
    st.integers(1, 7),
)
def test_design_is_the_imputer_output(x: np.ndarray, block: int) -> None:
    """Medians, dropped columns and indicators are SimpleImputer's, block by block."""
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        patch.setattr(estimators, "DESIGN_ROWS", block)
        warnings.simplefilter("ignore")  # the imputer's "Skipping features without any ..."
        model = LogisticBaseline().fit(x, np.arange(len(x)) % 2)
        imputer = SimpleImputer(strategy="median", add_indicator=True).fit(x)
        np.testing.assert_array_equal(model.medians_, imputer.statistics_)
        np.testing.assert_array_equal(model.design(x), imputer.transform(x))


def test_other_columns_named() -> None:
    x, y, _ = _frame(50, seed=1)
    model = LogisticBaseline().fit(x, y)
    with pytest.raises(ValueError, match="X has 4 columns; the logistic baseline was fitted on 5"):
        model.predict_proba(x.iloc[:, :4])
