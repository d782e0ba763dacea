"""Behavioural tests of the churn model: edit real snapshot rows, compare the scores."""

from __future__ import annotations

import numpy as np
import polars as pl

from models.tasks import model_frame
from tests.behavioral.conftest import Trained

_TROUBLE = {  # fresh unresolved complaints ...
    "complaints_90d": 2,
    "unresolved_complaints": 2,
    "unresolved_complaints_90d": 2,
    "days_since_last_complaint": 3,
    # ... and fading engagement
    "visits_30d": 0,
    "visits_90d": 0,
    "visits_web_90d": 0,
    "visits_app_90d": 0,
    "visits_store_90d": 0,
    "email_open_rate_90d": 0.0,
    "email_click_rate_90d": 0.0,
    "sms_reply_rate_90d": 0.0,
    "calls_90d": 0,
    "days_since_last_engagement": 75,
}


def _calm_active(snapshot: pl.DataFrame, n: int = 60) -> pl.DataFrame:
    """Active customers without complaints who still engage."""
    return snapshot.filter(
        (pl.col("recency_days") < 120)
        & (pl.col("complaints_365d") == 0)
        & (pl.col("visits_90d") > 0)
        & (pl.col("email_open_rate_90d").fill_null(0) > 0.2)
    ).head(n)


def _troubled(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.with_columns(
        pl.lit(v).cast(rows.schema[k]).alias(k) for k, v in _TROUBLE.items()
    ).with_columns(
        (pl.col("complaints_365d") + 2).alias("complaints_365d"),
        (pl.col("complaints_total") + 2).alias("complaints_total"),
    )


def test_complaints_and_fading_engagement_raise_churn(churn_model: Trained) -> None:
    bundle = churn_model.bundle
    calm = _calm_active(churn_model.snapshot)
    assert len(calm) >= 20
    before = model_frame("churn", calm, bundle.feature_names)
    after = model_frame("churn", _troubled(calm), bundle.feature_names)
    # trees are not monotone, so allow the odd customer; across seeds of the sample and of
    # training 97-100 % of the customers scored higher, by 0.13-0.25 in probability on average
    m_before, m_after = bundle.predict_margin(before), bundle.predict_margin(after)
    assert np.mean(m_after > m_before) >= 0.9
    p_before, p_after = bundle.predict_proba(before), bundle.predict_proba(after)
    assert np.mean(p_after > p_before) >= 0.9
    assert p_after.mean() > p_before.mean() + 0.05


def test_display_only_columns_change_nothing(churn_model: Trained) -> None:
    bundle = churn_model.bundle
    rows = churn_model.snapshot.head(50)
    edited = rows.with_columns(pl.lit("lost").alias("rfm_segment"), pl.lit("x").alias("region"))
    np.testing.assert_array_equal(
        bundle.predict_proba(model_frame("churn", rows, bundle.feature_names)),
        bundle.predict_proba(model_frame("churn", edited, bundle.feature_names)),
    )
