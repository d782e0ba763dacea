"""Hand-computed tiny fixtures for each feature family, the registry and the snapshot frame.

Every fixture takes its snapshot as of 2024-06-30 (``AS_OF``); "age" below is the number of days
from an event's day to that day, and "last N days" means age < N.
"""

from __future__ import annotations

import re
import statistics
from datetime import datetime

import polars as pl
import pytest

from features.contracts import (
    FEATURE_GROUPS,
    FEATURES,
    closest,
    counted,
    feature_info,
    feature_table_markdown,
    is_feature,
    quoted_near,
    snapshot_features,
)
from features.products import category_slugs
from features.rfm import RFM_SEGMENTS, score
from features.snapshot import build_snapshot, model_input_columns, passthrough_columns
from tests.features.conftest import AS_OF, events, order, row


def snap(
    *rows: tuple[object, ...],
    customers: pl.DataFrame | None = None,
    categories: list[str] | None = None,
) -> pl.DataFrame:
    return build_snapshot(events(*rows), customers, AS_OF, categories)


# --- RFM and rhythm ------------------------------------------------------------------------


def rfm_fixture() -> pl.DataFrame:
    return snap(
        # a: ages 0, 20, 90, 365; a fifth order after AS_OF is never seen
        order("a", "2024-06-30", 100.0, margin=30.0),  # age 0
        order("a", "2024-06-10", 50.0, margin=10.0),  # age 20
        order("a", "2024-04-01", 20.0),  # age 90: in 180d, not in 90d; no margin
        order("a", "2023-07-01", 30.0, margin=5.0),  # age 365: in no window
        order("a", "2024-07-01", 999.0),  # after AS_OF
        # b: one order at age 181 and a visit
        order("b", "2024-01-01", 10.0),  # age 181
        ("b", "2024-06-29", "visit", {"channel": "web"}),
        # c: a visit only
        ("c", "2024-06-29", "visit", {"channel": "app"}),
        # d: two orders on the same day, age 29
        order("d", "2024-06-01", 5.0),
        order("d", "2024-06-01 18:00", 5.0),
    )


def test_rfm_counts_spend_and_margin() -> None:
    a = row(rfm_fixture(), "a")
    assert a["recency_days"] == 0
    # ages 0, 20 | 90 | 365
    assert (a["orders_30d"], a["orders_90d"], a["orders_180d"], a["orders_365d"]) == (2, 2, 3, 3)
    assert a["orders_total"] == 4
    assert (a["spend_30d"], a["spend_90d"], a["spend_180d"], a["spend_365d"]) == (
        150.0,
        150.0,
        170.0,
        170.0,
    )
    assert a["spend_total"] == 200.0
    assert a["avg_order_value"] == 50.0  # 200 / 4
    assert a["margin_total"] == 45.0  # 30 + 10 + 5, the order without margin adds nothing
    assert a["margin_365d"] == 40.0
    assert a["tenure_days"] == 365  # first event at age 365


def test_rfm_rhythm_and_trends() -> None:
    s = rfm_fixture()
    a, b, d = row(s, "a"), row(s, "b"), row(s, "d")
    # a: distinct order days at ages 0, 20, 90, 365 -> gaps 20, 70, 275
    assert a["gap_mean_days"] == pytest.approx(365 / 3)
    assert a["gap_std_days"] == pytest.approx(statistics.stdev([20, 70, 275]))
    assert a["overdue_ratio"] == 0.0  # recency 0
    # last 90 days: 2 orders / 150; the 90 before: 1 order / 20
    assert a["orders_trend_90d"] == pytest.approx((2 - 1) / (2 + 1))
    assert a["spend_trend_90d"] == pytest.approx((150 - 20) / (150 + 20))
    # b: one order day -> no gaps; nothing in the last 180 days -> trend 0
    assert b["recency_days"] == 181
    assert (b["orders_180d"], b["orders_365d"]) == (0, 1)
    assert b["gap_mean_days"] is None and b["gap_std_days"] is None and b["overdue_ratio"] is None
    assert b["orders_trend_90d"] == 0.0
    # d: two orders on one day are one order day
    assert d["orders_30d"] == 2 and d["gap_mean_days"] is None


def test_rfm_scores_and_segments() -> None:
    s = rfm_fixture()
    # n = 3 customers with orders; score = 1 + floor(5 * (rank - 1/2) / 3), rank worst -> best
    # recency b 181, d 29, a 0     -> ranks 1, 2, 3     -> 1 + floor(0.83, 2.5, 4.17) = 1, 3, 5
    # orders  b 1,   d 2,  a 4     -> ranks 1, 2, 3     -> 1, 3, 5
    # spend   b 10,  d 10, a 200   -> ranks 1.5, 1.5, 3 -> 1 + floor(1.67) = 2, 2, 5
    got = {r["customer_id"]: (r["r_score"], r["f_score"], r["m_score"]) for r in s.to_dicts()}
    assert got == {"a": (5, 5, 5), "b": (1, 1, 2), "c": (None, None, None), "d": (3, 3, 2)}
    segments = dict(zip(s["customer_id"], s["rfm_segment"], strict=True))
    assert segments == {"a": "champions", "b": "lost", "c": None, "d": "need_attention"}


def test_rfm_customer_without_orders() -> None:
    c = row(rfm_fixture(), "c")
    assert c["recency_days"] is None and c["avg_order_value"] is None
    assert c["orders_total"] == 0 and c["spend_total"] == 0.0 and c["margin_total"] == 0.0
    assert c["orders_trend_90d"] == 0.0 and c["spend_trend_90d"] == 0.0
    assert c["tenure_days"] == 1


def test_score_is_quintiles_with_ties_at_their_mid_rank() -> None:
    # 10 distinct values: each fifth gets one score
    ten = pl.DataFrame({"x": list(range(10))})
    assert ten.select(score(pl.col("x"))).to_series().to_list() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # four tied at 1 (ranks 1-4, mid-rank 2.5) and 10 (rank 5), n = 5:
    # 1 + floor(5 * 2 / 5) = 3 for the tie, 1 + floor(5 * 4.5 / 5) = 5 for the 10
    five = pl.DataFrame({"x": [1, 1, 1, 1, 10]})
    assert five.select(score(pl.col("x"))).to_series().to_list() == [3, 3, 3, 3, 5]
    # lower is better: 10 is rank 1 -> 1; the tie takes ranks 2-5, mid-rank 3.5 -> 1 + floor(3) = 4
    lower = five.select(score(pl.col("x"), higher_is_better=False)).to_series().to_list()
    assert lower == [4, 4, 4, 4, 1]
    assert pl.DataFrame({"x": [7]}).select(score(pl.col("x"))).to_series().to_list() == [3]


def test_segment_grid_covers_each_score_pair_once() -> None:
    cells = [(r, f) for _, rs, fs in RFM_SEGMENTS for r in rs for f in fs]
    assert sorted(cells) == [(r, f) for r in range(1, 6) for f in range(1, 6)]


# --- engagement ------------------------------------------------------------------------------


def test_engagement() -> None:
    s = snap(
        # e: visits at ages 0 (web), 29 (app), 76 (store), 212 (web)
        ("e", "2024-06-30", "visit", {"channel": "web"}),
        ("e", "2024-06-01", "visit", {"channel": "app"}),
        ("e", "2024-04-15", "visit", {"channel": "store"}),
        ("e", "2023-12-01", "visit", {"channel": "web"}),
        # 4 e-mails sent in the last 90 days, 2 opened, 1 clicked
        ("e", "2024-06-01", "email_sent"),
        ("e", "2024-06-10", "email_sent"),
        ("e", "2024-06-20", "email_sent"),
        ("e", "2024-05-01", "email_sent"),
        ("e", "2024-06-02", "email_open"),
        ("e", "2024-06-21", "email_open"),
        ("e", "2024-06-21", "email_click"),
        # one more sent and opened at ages 167/166: 365d rate = 3 / 5
        ("e", "2024-01-15", "email_sent"),
        ("e", "2024-01-16", "email_open"),
        ("e", "2024-06-05", "sms_sent", {"channel": "sms"}),
        ("e", "2024-06-06", "sms_sent", {"channel": "sms"}),
        ("e", "2024-06-06", "sms_reply", {"channel": "sms"}),
        ("e", "2024-06-15", "call", {"channel": "phone"}),
        ("e", "2023-01-01", "call", {"channel": "fax"}),  # age 546: outside every window
        # f: one e-mail sent, nothing else
        ("f", "2024-06-01", "email_sent"),
        # g: an open with no e-mail sent in the window; h: more opens than sends (capped)
        ("g", "2024-06-01", "email_open"),
        ("h", "2024-06-01", "email_sent"),
        ("h", "2024-06-02", "email_open"),
        ("h", "2024-06-03", "email_open"),
    )
    e = row(s, "e")
    assert (e["visits_30d"], e["visits_90d"], e["visits_365d"]) == (2, 3, 4)
    assert (e["visits_web_90d"], e["visits_app_90d"], e["visits_store_90d"]) == (1, 1, 1)
    assert e["emails_sent_90d"] == 4
    assert e["email_open_rate_90d"] == 0.5
    assert e["email_click_rate_90d"] == 0.25
    assert e["email_open_rate_365d"] == pytest.approx(3 / 5)
    assert (e["sms_sent_90d"], e["sms_reply_rate_90d"], e["calls_90d"]) == (2, 0.5, 1)
    assert e["days_since_last_engagement"] == 0
    assert e["channels_used_365d"] == 5  # web, app, store, sms, phone (fax is too old)
    f = row(s, "f")
    assert f["email_open_rate_90d"] == 0.0
    assert f["sms_reply_rate_90d"] is None  # nothing sent
    assert f["days_since_last_engagement"] is None  # a send is not the customer engaging
    assert (f["visits_90d"], f["channels_used_365d"]) == (0, 0)
    assert row(s, "g")["email_open_rate_90d"] is None
    assert row(s, "g")["days_since_last_engagement"] == 29
    assert row(s, "h")["email_open_rate_90d"] == 1.0


# --- service ---------------------------------------------------------------------------------


def test_service() -> None:
    s = snap(
        ("s", "2024-06-01 10:00", "complaint", {"ref_id": "t1"}),  # age 29, resolved 2.5 days later
        ("s", "2024-06-03 22:00", "complaint_resolved", {"ref_id": "t1"}),
        ("s", "2024-06-10", "complaint_resolved", {"ref_id": "t1"}),  # later duplicate: ignored
        ("s", "2024-06-20", "complaint", {"ref_id": "t2"}),  # age 10, open
        ("x", "2024-06-21", "complaint_resolved", {"ref_id": "t2"}),  # another customer's ticket
        ("s", "2023-01-01", "complaint"),  # age 546, no ref_id: unresolved
        ("s", "2024-02-01", "complaint", {"ref_id": "t3"}),  # age 150
        ("s", "2024-07-05", "complaint_resolved", {"ref_id": "t3"}),  # after AS_OF: still open
        ("s", "2024-03-01", "survey", {"score": 4.0}),
        ("s", "2024-06-01 09:00", "survey", {"score": 8.0}),  # same time: the higher is last
        ("s", "2024-06-01 09:00", "survey", {"score": 6.0}),
        order("s", "2024-05-01", 100.0),
        ("s", "2024-05-10", "return", {"amount": 25.0}),  # age 51
        ("s", "2023-05-01", "return", {"amount": 15.0}),  # age 426
        ("t", "2024-06-01", "return", {"amount": 5.0}),  # a return without any order
    )
    r = row(s, "s")
    assert (r["complaints_90d"], r["complaints_365d"], r["complaints_total"]) == (2, 3, 4)
    assert r["unresolved_complaints"] == 3  # t2, t3 and the one without ref_id
    assert r["unresolved_complaints_90d"] == 1  # t2
    assert r["resolution_days_mean"] == pytest.approx(2.5)  # t1 only, first resolution
    assert r["days_since_last_complaint"] == 10
    assert (r["survey_last_score"], r["survey_mean_score"]) == (8.0, 6.0)
    assert (r["returns_365d"], r["return_amount_365d"]) == (1, 25.0)
    assert r["return_rate"] == pytest.approx(40 / 100)  # lifetime returns / lifetime spend
    t = row(s, "t")
    assert (t["returns_365d"], t["return_rate"], t["complaints_total"]) == (1, None, 0)
    assert t["resolution_days_mean"] is None and t["survey_last_score"] is None
    x = row(s, "x")  # only a resolution: no complaint of its own
    assert (x["complaints_total"], x["unresolved_complaints"]) == (0, 0)


# --- loyalty ---------------------------------------------------------------------------------


def test_loyalty() -> None:
    s = snap(
        ("l", "2024-06-01", "referral"),
        ("l", "2023-01-01", "referral"),  # age 546
        ("l", "2024-05-01", "review", {"score": 4.0}),
        ("l", "2024-05-02", "review", {"score": 5.0}),
        ("l", "2023-01-01", "subscribe"),
        ("l", "2024-01-01", "cancel"),
        ("l", "2024-03-01", "subscribe"),  # resubscribed after the cancel
        ("m", "2024-01-01", "subscribe"),
        ("m", "2024-02-01", "cancel"),
        ("n", "2024-01-01 12:00", "subscribe"),
        ("n", "2024-01-01 12:00", "cancel"),  # same instant: not "after"
        ("o", "2024-01-01", "subscribe"),
        ("o", "2024-07-02", "cancel"),  # after AS_OF: unseen
        ("q", "2024-06-01", "visit"),
    )
    l_ = row(s, "l")
    assert (l_["referrals_total"], l_["referrals_365d"]) == (2, 1)
    assert (l_["reviews_total"], l_["review_mean_rating"]) == (2, 4.5)
    assert (l_["is_subscribed"], l_["cancels_total"]) == (1, 1)
    subscribed = dict(zip(s["customer_id"], s["is_subscribed"], strict=True))
    assert subscribed == {"l": 1, "m": 0, "n": 0, "o": 1, "q": 0}
    q = row(s, "q")
    assert (q["referrals_total"], q["reviews_total"], q["review_mean_rating"]) == (0, 0, None)


# --- products --------------------------------------------------------------------------------


def product_events() -> tuple[tuple[object, ...], ...]:
    return (
        order("p", "2024-06-01", 30.0, category="Home & Garden"),
        order("p", "2024-06-02", 10.0, category="home-garden"),  # same sanitised category
        order("p", "2024-06-03", 60.0, category="Toys"),
        order("p", "2024-06-04", 100.0),  # no category: counts in the spend only
        order("p", "2024-07-04", 100.0, category="Books"),  # after AS_OF
        ("q", "2024-06-01", "visit"),
    )


def test_products_default_categories() -> None:
    s = snap(*product_events())
    assert [c for c in s.columns if c.startswith("cat_")] == [
        "cat_home_garden_orders",
        "cat_toys_orders",
        "cat_home_garden_share",
        "cat_toys_share",
    ]
    p = row(s, "p")
    assert p["categories_distinct"] == 2
    assert (p["cat_home_garden_orders"], p["cat_home_garden_share"]) == (2, 40 / 200)
    assert (p["cat_toys_orders"], p["cat_toys_share"]) == (1, 60 / 200)
    q = row(s, "q")
    assert (q["categories_distinct"], q["cat_toys_orders"], q["cat_toys_share"]) == (0, 0, None)


def test_products_given_categories() -> None:
    s = snap(*product_events(), categories=["Toys", "Books"])
    assert [c for c in s.columns if c.startswith("cat_")] == [
        "cat_toys_orders",
        "cat_books_orders",
        "cat_toys_share",
        "cat_books_share",
    ]
    p = row(s, "p")
    assert (p["cat_books_orders"], p["cat_books_share"]) == (0, 0.0)
    assert p["cat_toys_share"] == 60 / 200
    assert p["categories_distinct"] == 2  # still every category bought


def test_category_names_are_sanitised() -> None:
    raw = ["Home & Garden", "Crème Brûlée", "  ", "A_b--C_", "toys", "Toys", "2-for-1"]
    assert category_slugs(raw) == [
        "home_garden",
        "creme_brulee",
        "other",
        "a_b_c",
        "toys",
        "2_for_1",
    ]
    assert category_slugs(["home_garden"]) == ["home_garden"]  # idempotent
    assert feature_info("cat_home_garden_share").extra["category"] == "home_garden"


# --- profile and pass-through columns ------------------------------------------------------------


def customers() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": ["a", "b", "z"],
            "signup_ts": [datetime(2023, 6, 30, 8), datetime(2024, 8, 1), datetime(2020, 1, 1)],
            "customer_type": ["business", None, "channel_partner"],
            "region": ["North", "South", None],
            "credit_limit": [1000.0, None, 5.0],
            "account_manager": ["Ann", "Bo", None],
        },
        schema_overrides={"signup_ts": pl.Datetime("us", "UTC")},
    )


def test_profile_and_passthrough() -> None:
    s = snap(
        order("a", "2024-06-01", 10.0),  # age 29
        ("b", "2024-01-01", "visit"),  # age 181
        ("c", "2024-06-01", "visit"),  # not in the customers table
        customers=customers(),  # z has no events: absent
    )
    assert s["customer_id"].to_list() == ["a", "b", "c"]
    a, b, c = row(s, "a"), row(s, "b"), row(s, "c")
    assert (a["is_business"], a["is_channel_partner"], a["region"]) == (1, 0, "North")
    assert a["signup_tenure_days"] == 366  # 2023-06-30 -> 2024-06-30 spans 29 February
    assert a["tenure_days"] == 366  # the signup is earlier than the first event
    assert b["signup_tenure_days"] is None  # signed up after AS_OF
    assert b["tenure_days"] == 181
    assert (c["is_business"], c["signup_tenure_days"], c["region"]) == (0, None, None)
    assert (a["credit_limit"], a["account_manager"]) == (1000.0, "Ann")
    assert s.columns[-2:] == ["credit_limit", "account_manager"]
    assert passthrough_columns(s) == ["credit_limit"]
    inputs = model_input_columns(s)
    assert "credit_limit" in inputs and "recency_days" in inputs
    assert not {"region", "rfm_segment", "account_manager", "customer_id", "as_of"} & set(inputs)


def test_customers_table_errors_name_the_problem() -> None:
    ev = events(order("a", "2024-06-01", 10.0))
    twice = pl.concat([customers(), customers().head(1)])
    with pytest.raises(ValueError, match=r"customer_id values repeat, e\.g\. a"):
        build_snapshot(ev, twice, AS_OF)
    with pytest.raises(ValueError, match="recency_days"):
        build_snapshot(ev, customers().with_columns(recency_days=pl.lit(1)), AS_OF)
    with pytest.raises(ValueError, match="customer_id"):
        build_snapshot(ev, customers().drop("customer_id"), AS_OF)
    with pytest.raises(TypeError, match="as_of"):
        build_snapshot(ev, None, datetime(2024, 6, 30))  # a datetime is a date subclass


# --- the snapshot frame and the registry ---------------------------------------------------------


def test_empty_events_give_the_full_schema() -> None:
    s = build_snapshot(events(), None, AS_OF)
    assert s.height == 0
    expected = {"customer_id": pl.String(), "as_of": pl.Date()} | {
        f.name: f.polars_dtype for f in snapshot_features() if not f.is_template
    }
    assert dict(s.schema) == expected


def test_orders_only_history_end_to_end() -> None:
    s = snap(order("a", "2024-06-01", 10.0), order("b", "2024-05-01", 20.0, category="Toys"))
    assert s.height == 2
    b = row(s, "b")
    assert (b["recency_days"], b["orders_total"], b["cat_toys_share"]) == (60, 1, 1.0)
    assert (b["visits_90d"], b["complaints_total"], b["referrals_total"]) == (0, 0, 0)
    assert b["email_open_rate_90d"] is None and b["survey_mean_score"] is None
    assert b["return_rate"] == 0.0 and b["is_subscribed"] == 0
    for name, dtype in s.schema.items():
        if is_feature(name):
            assert dtype == feature_info(name).polars_dtype, name


def test_snapshot_columns_and_order() -> None:
    s = snap(order("b", "2024-06-01", 1.0), order("a", "2024-06-01", 1.0))
    assert s.columns[:3] == ["customer_id", "as_of", "recency_days"]
    assert s["customer_id"].to_list() == ["a", "b"]
    assert s["as_of"].to_list() == [AS_OF, AS_OF]
    assert all(is_feature(c) for c in s.columns[2:])
    assert row(s, "a")["tenure_days"] == 29


def test_registry_reads_well() -> None:
    assert FEATURES["unresolved_complaints_90d"].describe(3) == (
        "3 unresolved complaints in the last 90 days"
    )
    assert FEATURES["recency_days"].describe(12) == "12 days since the last order"
    assert (
        FEATURES["email_open_rate_90d"].describe(0.4) == "40% of e-mails opened in the last 90 days"
    )
    assert FEATURES["spend_total"].describe(1234.5) == "1,234.50 spent in total"
    assert FEATURES["is_subscribed"].describe(1) == "subscribed: yes"
    assert FEATURES["orders_trend_90d"].describe(-0.5).startswith("order trend -0.50")
    assert FEATURES["recency_days"].describe(None) == "no order yet"
    assert feature_info("cat_toys_orders").describe(2) == "2 orders in toys"
    with pytest.raises(KeyError):
        feature_info("cat_")
    for f in FEATURES.values():
        assert "{value}" in f.description, f.name
        assert f.name == f.name.lower() and " " not in f.name
        assert f.model_input == (f.dtype != "str"), f.name


def test_feature_table_lists_every_feature() -> None:
    table = feature_table_markdown()
    lines = table.strip().splitlines()
    assert len(lines) == 2 + len(FEATURES)
    assert "| `unresolved_complaints_90d` | service |" in table
    assert "| `cat_{category}_share` | products |" in table


def test_the_feature_groups_are_those_of_the_features() -> None:
    """FEATURE_GROUPS is read off the FeatureGroup type: every group has features, and no other."""
    assert FEATURE_GROUPS[:2] == ("rfm", "engagement")
    assert {f.group for f in FEATURES.values()} == set(FEATURE_GROUPS)


def test_every_feature_that_can_be_missing_says_so_in_words() -> None:
    from features.contracts import FEATURES, WHEN_MISSING, feature_info

    can_be_missing = {f.name for f in FEATURES.values() if f.default is None and f.model_input}
    assert can_be_missing == set(WHEN_MISSING)
    assert feature_info("gap_mean_days").describe(None) == (
        "fewer than two order days, so no usual gap between orders"
    )
    assert feature_info("cat_garden_share").describe(float("nan")) == (
        "no spend, so no share of spend in garden"
    )


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_every_description_reads_with_0_1_2_and_missing(name: str) -> None:
    """Plurals and units read correctly: "1 order", "2 orders", "0 orders", "1 day"; a missing
    value is said in words, never "unknown orders"."""
    f = (
        feature_info(name.replace("{category}", "garden"))
        if "{category}" in name
        else FEATURES[name]
    )
    if f.dtype == "str":
        assert f.describe("x") == f.description.replace("{value}", "x")
        return
    texts = {v: f.describe(v) for v in (0, 1, 2, None)}
    for v, text in texts.items():
        assert "{" not in text and "nan" not in text and "None" not in text, (v, text)
        assert "  " not in text and text == text.strip(), (v, text)
    one, two = texts[1], texts[2]
    # no count of one with a plural noun right after it (or after one adjective)
    assert not re.search(r"(?<![\d.,])1 (?:[\w-]+ )?[\w-]+s\b", one), one
    if f.unit in ("count", "days"):
        assert re.search(r"\b1 ", one) and re.search(r"\b2 ", two), (one, two)
        assert one.replace("1 ", "2 ", 1) != two  # the noun changes with the number
        assert re.search(r"\b2 (?:[\w-]+ )?[\w-]+s\b", two), two
        assert re.search(r"\b0 (?:[\w-]+ )?[\w-]+s\b", texts[0]), texts[0]
    assert "unknown" not in texts[None] or not re.search(r"unknown [\w-]+s\b", texts[None])


def test_counts_of_one_are_singular() -> None:
    assert FEATURES["orders_total"].describe(1) == "1 order in total"
    assert FEATURES["visits_90d"].describe(1) == "1 visit in the last 90 days"
    assert FEATURES["unresolved_complaints"].describe(1) == "1 unresolved complaint"
    assert FEATURES["categories_distinct"].describe(1) == "1 product category bought"
    assert FEATURES["recency_days"].describe(1) == "1 day since the last order"
    assert FEATURES["tenure_days"].describe(1.0) == "customer for 1 day"
    assert FEATURES["orders_total"].describe(11) == "11 orders in total"
    assert FEATURES["gap_mean_days"].describe(1.5) == "1.5 days between order days on average"
    assert feature_info("cat_toys_orders").describe(1) == "1 order in toys"
    assert FEATURES["orders_total"].describe(None) == "an unknown number of orders in total"
    assert FEATURES["spend_total"].describe(None) == "an unknown amount spent in total"


def test_a_count_in_a_message_is_singular_for_one() -> None:
    """Console lines and errors say "1 segment", "2 segments" (as "1 reason" when scores are
    kept: the demo's cross-sell, served by its one-input rule-backed version, keeps 1 reason)."""
    assert counted(1, "segments") == "1 segment"
    assert counted(2, "segments") == "2 segments"
    assert counted(1, "repeat buyers") == "1 repeat buyer"
    assert counted(2, "repeat buyers") == "2 repeat buyers"
    assert counted(1, "categories") == "1 category"
    assert [counted(k, "reasons") for k in (0, 1, 3)] == ["0 reasons", "1 reason", "3 reasons"]
    assert counted(1_234, "attempts") == "1,234 attempts"


def test_a_misspelt_name_in_capitals_is_named_as_the_one_meant() -> None:
    """review37: the "did you mean" compared a misspelt name with the known ones case and all,
    so ``RETENTION_EMIAL``, ``CHRUN`` or ``ACCESORIES`` (a spreadsheet's shouted column, a
    caps-lock ``--task``) shared no letter with ``retention_email``, ``churn`` or
    ``accessories`` and were refused with no "is it ...?", where the same names in lower case,
    or in capitals and spelt right, were asked about."""
    tasks = ["churn", "repurchase", "cross_sell", "referral"]
    assert quoted_near("CHRUN", tasks) == "'CHRUN' (is it 'churn'?)"
    assert quoted_near("chrun", tasks) == "'chrun' (is it 'churn'?)"  # as before
    assert closest("RETENTION_EMIAL", ["retention_email", "win_back_voucher"], 0.8) == (
        "retention_email"
    )
    assert closest("ACCESORIES", ["accessories", "shoes"]) == "accessories"
    assert closest(" Churn ", tasks) == "churn"  # case and spaces alone: the name itself
    assert closest("Customer_ID", ["customer_id", "Customer_Id"]) == "customer_id"  # the first
    assert quoted_near("upsell", tasks) == "'upsell'" and closest("UPSELL", tasks) is None
