"""The pandas reference of ``features.snapshot.build_snapshot`` for ``bench/features.py``.

A straightforward, idiomatic pandas implementation of every snapshot feature with the same
semantics as the Polars code in ``features/``: filter the events once, add ``age_days``, then per
family select its event types, add the window flags and masked amounts as columns and aggregate
them with one ``groupby("customer_id").agg(...)``; join the families on ``customer_id``. No
``groupby.apply`` with Python callbacks (that would make the reference needlessly slow).

It reads the declarations it shares with the feature code (windows, engagement event types, RFM
segments, category names, the feature registry's order, types and defaults) from ``features``
rather than restating them, so a change there cannot make the two silently diverge; the
aggregations themselves are written again in pandas, which is the point of the reference.

Scope: the sample data's tables. ``customers`` needs ``customer_id``, ``signup_ts``,
``customer_type`` and ``region``; further customers columns are not passed through.

:func:`compare_snapshots` checks a reference output against the Polars one: strings and nulls
exactly, numbers within a relative tolerance (sums differ in the last bits when added in a
different order).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import cast

import numpy as np
import pandas as pd
import polars as pl

from features.contracts import RFM_WINDOWS, feature_info, snapshot_features
from features.engagement import ENGAGEMENT_ACTIONS, ENGAGEMENT_EVENTS
from features.products import category_slugs
from features.rfm import RFM_SEGMENTS

__all__ = ["REL_TOL", "build_snapshot_pandas", "compare_snapshots"]

ID = "customer_id"
AGE = "age_days"
REL_TOL = 1e-9
"""Relative tolerance of :func:`compare_snapshots` for numeric columns."""
ABS_TOL = 1e-12
"""Absolute tolerance for values near zero (e.g. a trend of two nearly equal sums)."""

_DAY = pd.Timedelta(days=1)
_SEGMENTS = {10 * r + f: name for name, rs, fs in RFM_SEGMENTS for r in rs for f in fs}


def _seen_events(events: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """Events with ``date(ts) <= as_of`` plus their age in whole days."""
    day_after = pd.Timestamp(datetime.combine(as_of + timedelta(days=1), datetime.min.time(), UTC))
    seen = events[events["ts"] < day_after]
    as_of_ts = day_after - _DAY
    return seen.assign(**{AGE: (as_of_ts - seen["ts"].dt.floor("D")).dt.days})


def _rate(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """``numerator / denominator``, NaN where the denominator is not positive."""
    return (numerator / denominator).where(denominator > 0)


def _score(measure: pd.Series, *, higher_is_better: bool = True) -> pd.Series:
    """1-5 quintile score, mid-rank rule (see ``features.rfm``)."""
    twice_rank = (2 * measure.rank(method="average", ascending=higher_is_better)).round()
    n = len(measure)
    return 1 + (5 * (twice_rank.astype("int64") - 1)) // (2 * n)


def _trend(last: pd.Series, before: pd.Series) -> pd.Series:
    total = last + before
    return ((last - before) / total).where(total > 0, 0.0)


def _orders(orders: pd.DataFrame) -> pd.DataFrame:
    age, amount = orders[AGE], orders["amount"]
    flags = orders[[ID, AGE, "amount", "margin"]].assign(
        **{f"_in_{n}": age < n for n in RFM_WINDOWS},
        **{f"_spend_{n}": amount.where(age < n) for n in RFM_WINDOWS},
        _margin_365=orders["margin"].where(age < 365),
    )
    out = flags.groupby(ID).agg(
        recency_days=(AGE, "min"),
        **{f"orders_{n}d": (f"_in_{n}", "sum") for n in RFM_WINDOWS},
        orders_total=(AGE, "size"),
        **{f"spend_{n}d": (f"_spend_{n}", "sum") for n in RFM_WINDOWS},
        spend_total=("amount", "sum"),
        margin_total=("margin", "sum"),
        margin_365d=("_margin_365", "sum"),
    )
    days = orders[[ID, AGE]].drop_duplicates().sort_values([ID, AGE])
    days["_gap"] = days.groupby(ID)[AGE].diff()
    gaps = days.groupby(ID)["_gap"].agg(["mean", "std"])
    out["gap_mean_days"] = gaps["mean"]
    out["gap_std_days"] = gaps["std"]
    out["avg_order_value"] = _rate(out["spend_total"], out["orders_total"])
    out["r_score"] = _score(out["recency_days"], higher_is_better=False)
    out["f_score"] = _score(out["orders_total"])
    out["m_score"] = _score(out["spend_total"].round(2))
    out["overdue_ratio"] = _rate(out["recency_days"], out["gap_mean_days"])
    o90, s90 = out["orders_90d"], out["spend_90d"]
    out["orders_trend_90d"] = _trend(o90, out["orders_180d"] - o90)
    out["spend_trend_90d"] = _trend(s90, out["spend_180d"] - s90)
    out["rfm_segment"] = (10 * out["r_score"] + out["f_score"]).map(_SEGMENTS)
    return out


def _engagement(seen: pd.DataFrame) -> pd.DataFrame:
    eng = seen[seen["event_type"].isin(ENGAGEMENT_EVENTS)]
    kind, age, channel = eng["event_type"], eng[AGE], eng["channel"]
    counts = {
        **{f"visits_{n}d": (kind == "visit") & (age < n) for n in (30, 90, 365)},
        **{
            f"visits_{ch}_90d": (kind == "visit") & (age < 90) & (channel == ch)
            for ch in ("web", "app", "store")
        },
        **{
            f"_{t}_{n}": (kind == t) & (age < n)
            for t, n in [
                ("email_sent", 90),
                ("email_open", 90),
                ("email_click", 90),
                ("email_sent", 365),
                ("email_open", 365),
                ("sms_sent", 90),
                ("sms_reply", 90),
                ("call", 90),
            ]
        },
    }
    flags = pd.DataFrame(counts).assign(
        **{ID: eng[ID], "_action_age": age.where(kind.isin(ENGAGEMENT_ACTIONS))}
    )
    agg = flags.groupby(ID).agg(
        **{name: (name, "sum") for name in counts},
        days_since_last_engagement=("_action_age", "min"),
    )

    def capped(opened: str, sent: str) -> pd.Series:
        return _rate(agg[opened], agg[sent]).clip(upper=1.0)

    return agg.assign(
        emails_sent_90d=agg["_email_sent_90"],
        email_open_rate_90d=capped("_email_open_90", "_email_sent_90"),
        email_click_rate_90d=capped("_email_click_90", "_email_sent_90"),
        email_open_rate_365d=capped("_email_open_365", "_email_sent_365"),
        sms_sent_90d=agg["_sms_sent_90"],
        sms_reply_rate_90d=capped("_sms_reply_90", "_sms_sent_90"),
        calls_90d=agg["_call_90"],
    )


def _service(seen: pd.DataFrame) -> pd.DataFrame:
    kind = seen["event_type"]
    # groupby drops null ref_ids, so a complaint without one never finds a resolution
    resolved = (
        seen[kind == "complaint_resolved"]
        .groupby([ID, "ref_id"], as_index=False)
        .agg(_resolved_ts=("ts", "min"))
    )
    complaints = seen.loc[kind == "complaint", [ID, "ref_id", "ts", AGE]].merge(
        resolved, on=[ID, "ref_id"], how="left"
    )
    age, open_ = complaints[AGE], complaints["_resolved_ts"].isna()
    complaints = complaints.assign(
        _c90=age < 90,
        _c365=age < 365,
        _open=open_,
        _open90=open_ & (age < 90),
        _resolve_days=(
            (complaints["_resolved_ts"] - complaints["ts"]).dt.total_seconds() / 86_400.0
        ).clip(lower=0.0),
    )
    service = complaints.groupby(ID).agg(
        complaints_90d=("_c90", "sum"),
        complaints_365d=("_c365", "sum"),
        complaints_total=(AGE, "size"),
        unresolved_complaints=("_open", "sum"),
        unresolved_complaints_90d=("_open90", "sum"),
        resolution_days_mean=("_resolve_days", "mean"),
        days_since_last_complaint=(AGE, "min"),
    )

    surveys = seen[kind == "survey"].sort_values(["ts", "score"])
    survey = surveys.groupby(ID)["score"].agg(survey_last_score="last", survey_mean_score="mean")

    money = seen[kind.isin(("order", "return"))]
    is_return = money["event_type"] == "return"
    recent_return = is_return & (money[AGE] < 365)
    money = money[[ID]].assign(
        _r365=recent_return,
        _r365_amount=money["amount"].where(recent_return),
        _returned=money["amount"].where(is_return),
        _ordered=money["amount"].where(~is_return),
    )
    returns = money.groupby(ID).agg(
        returns_365d=("_r365", "sum"),
        return_amount_365d=("_r365_amount", "sum"),
        _returned=("_returned", "sum"),
        _ordered=("_ordered", "sum"),
    )
    returns["return_rate"] = _rate(returns.pop("_returned"), returns.pop("_ordered"))
    return service.join([survey, returns], how="outer")


def _loyalty(seen: pd.DataFrame) -> pd.DataFrame:
    events = seen[seen["event_type"].isin(("referral", "review", "subscribe", "cancel"))]
    kind = events["event_type"]
    flags = events[[ID]].assign(
        _referral=kind == "referral",
        _referral_365=(kind == "referral") & (events[AGE] < 365),
        _review=kind == "review",
        _rating=events["score"].where(kind == "review"),
        _subscribe_ts=events["ts"].where(kind == "subscribe"),
        _cancel_ts=events["ts"].where(kind == "cancel"),
        _cancel=kind == "cancel",
    )
    out = flags.groupby(ID).agg(
        referrals_total=("_referral", "sum"),
        referrals_365d=("_referral_365", "sum"),
        reviews_total=("_review", "sum"),
        review_mean_rating=("_rating", "mean"),
        _subscribe_ts=("_subscribe_ts", "max"),
        _cancel_ts=("_cancel_ts", "max"),
        cancels_total=("_cancel", "sum"),
    )
    subscribed, cancelled = out.pop("_subscribe_ts"), out.pop("_cancel_ts")
    out["is_subscribed"] = subscribed.notna() & (cancelled.isna() | (subscribed > cancelled))
    return out


def _products(orders: pd.DataFrame, slug_of: dict[str, str], cats: list[str]) -> pd.DataFrame:
    orders = orders[[ID, "amount"]].assign(_slug=orders["category"].map(slug_of))
    out = orders.groupby(ID).agg(categories_distinct=("_slug", "nunique"), _spend=("amount", "sum"))
    per_category = cast(
        pd.DataFrame, orders.groupby([ID, "_slug"])["amount"].agg(["size", "sum"]).unstack()
    )
    wanted = pd.MultiIndex.from_product([["size", "sum"], cats])
    per_category = per_category.reindex(index=out.index, columns=wanted).fillna(0)
    for c in cats:
        out[f"cat_{c}_orders"] = per_category[("size", c)]
        out[f"cat_{c}_share"] = _rate(per_category[("sum", c)], out["_spend"])
    return out.drop(columns="_spend")


def _profile(customers: pd.DataFrame | None, as_of: date) -> pd.DataFrame:
    columns = ["is_business", "is_channel_partner", "signup_tenure_days", "region"]
    if customers is None:
        return pd.DataFrame(columns=columns, index=pd.Index([], name=ID))
    as_of_ts = pd.Timestamp(datetime.combine(as_of, datetime.min.time(), UTC))
    tenure = (as_of_ts - customers["signup_ts"].dt.floor("D")).dt.days
    kind = customers["customer_type"]
    return pd.DataFrame(
        {
            "is_business": kind == "business",
            "is_channel_partner": kind == "channel_partner",
            "signup_tenure_days": tenure.where(tenure >= 0),
            "region": customers["region"],
        }
    ).set_axis(pd.Index(customers[ID], name=ID))


def _typed(column: pd.Series, name: str) -> pd.Series:
    """Fill the registry default and cast to the registered type (nullable ints keep nulls)."""
    feature = feature_info(name)
    if feature.default is not None:
        column = column.fillna(feature.default)
    if feature.dtype == "int":
        return column.astype("int64" if feature.default is not None else "Int64")
    return column if feature.dtype == "str" else column.astype("float64")


def build_snapshot_pandas(
    events: pd.DataFrame,
    customers: pd.DataFrame | None,
    as_of: date,
    categories: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Build the snapshot of ``features.snapshot.build_snapshot`` with pandas.

    Parameters
    ----------
    events : pandas.DataFrame
        Validated events (``ts`` as ``datetime64[us, UTC]``), e.g. ``pandas.read_parquet`` of
        the sample's ``events.parquet``.
    customers : pandas.DataFrame, optional
        ``customer_id``, ``signup_ts``, ``customer_type``, ``region``.
    as_of : datetime.date
        The snapshot day (UTC).
    categories : sequence of str, optional
        As in ``build_snapshot``; ``None`` takes the sanitised categories of the orders seen.

    Returns
    -------
    pandas.DataFrame
        One row per customer with an event on or before ``as_of``, sorted by ``customer_id``:
        ``customer_id``, ``as_of``, then every registered feature in registry order (per-category
        templates expanded); integer features without a default are nullable ``Int64``.
    """
    seen = _seen_events(events, as_of)
    orders = seen[seen["event_type"] == "order"]
    slug_of = {name: category_slugs([name])[0] for name in orders["category"].dropna().unique()}
    cats = sorted(set(slug_of.values())) if categories is None else category_slugs(categories)

    first_age = seen.groupby(ID)[AGE].max()
    recent = seen[seen[AGE] < 365]
    channels = recent.groupby(ID)["channel"].nunique().reindex(first_age.index)
    snapshot = pd.DataFrame({"_first_age": first_age, "channels_used_365d": channels}).join(
        [
            _orders(orders),
            _engagement(seen),
            _service(seen),
            _loyalty(seen),
            _products(orders, slug_of, cats),
            _profile(customers, as_of),
        ],
        how="left",
    )
    snapshot["tenure_days"] = snapshot[["_first_age", "signup_tenure_days"]].max(axis=1)
    columns = [
        column
        for f in snapshot_features()
        for column in ([f.column(c) for c in cats] if f.is_template else [f.name])
    ]
    out = pd.DataFrame({name: _typed(snapshot[name], name) for name in columns})
    out.insert(0, "as_of", as_of)
    return out.sort_index().reset_index()


def compare_snapshots(expected: pl.DataFrame, actual: pl.DataFrame) -> list[str]:
    """Compare a reference snapshot with a ``build_snapshot`` output.

    Parameters
    ----------
    expected : polars.DataFrame
        The ``build_snapshot`` output.
    actual : polars.DataFrame
        The reference output as Polars (``polars.from_pandas(..., nan_to_null=True)`` or read
        back from Parquet); each column is cast to the expected column's type.

    Returns
    -------
    list of str
        One line per differing column (names, row count, key order, nulls, values); empty when
        they agree: strings and null positions exactly, numbers within ``REL_TOL`` relative
        (``ABS_TOL`` absolute near zero).
    """
    if expected.columns != actual.columns:
        return [f"columns differ: {expected.columns} vs {actual.columns}"]
    if expected.height != actual.height:
        return [f"rows differ: {expected.height} vs {actual.height}"]
    problems = []
    for name, dtype in expected.schema.items():
        want = expected[name]
        try:
            got = actual[name].cast(dtype)
        except pl.exceptions.PolarsError as exc:
            problems.append(f"{name}: cannot cast {actual[name].dtype} to {dtype}: {exc}")
            continue
        got = got.fill_nan(None) if dtype.is_float() else got
        nulls = (want.is_null() != got.is_null()).sum()
        if nulls:
            problems.append(f"{name}: {nulls} rows null on one side only")
            continue
        if dtype.is_float():
            a, b = want.to_numpy(), got.to_numpy()
            differ = ~(np.isnan(a) | np.isclose(a, b, rtol=REL_TOL, atol=ABS_TOL))
        else:
            differ = (want != got).fill_null(False).to_numpy()
        if differ.any():
            i = int(np.flatnonzero(differ)[0])
            problems.append(
                f"{name}: {int(differ.sum())} rows differ, e.g. row {i} "
                f"({expected[i, 0]}): {want[i]!r} vs {got[i]!r}"
            )
    return problems
