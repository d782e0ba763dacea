"""Expected values, plans and the segment ROI table, computed by hand."""

from __future__ import annotations

import polars as pl
import pytest

from models.offers import OffersFile, parse_offers
from models.targeting import (
    CUSTOMER_INPUTS,
    NO_GROUP_NAMES,
    PLAN_COLUMNS,
    SUMMARY_COLUMNS,
    compare_allocations,
    next_limits_note,
    offer_values,
    plan_campaign,
    segment_roi,
    summary_table,
)

CUSTOMERS = pl.DataFrame(
    {
        "customer_id": ["A1", "B1", "L1", "S1"],
        "segment": ["at_risk", "need_attention", "lost", "need_attention"],
        "value_tier": ["top_1pct", "rest", "rest", None],
        "churn_probability": [0.5, 0.2, 0.9, 0.6],
        "clv": [1000.0, 500.0, 200.0, 300.0],
        "churn_population": [True, True, False, True],
        "lapsed": [False, False, True, False],
        "unresolved_complaints": [0, 0, 0, 1],
        "propensity_accessories": [0.2, None, 0.1, 0.05],
    }
)


def _offers(**extra: object) -> OffersFile:
    return parse_offers(
        {
            "offers": [
                {
                    "name": "ret",
                    "kind": "retention",
                    "channel": "email",
                    "cost": 1.0,
                    "response": {"default": 0.1, "segments": {"at_risk": 0.2}},
                    "eligibility": {"population": "churn"},
                },
                {
                    "name": "wb",
                    "kind": "win_back",
                    "channel": "email",
                    "cost": 5.0,
                    "response": {"default": 0.05},
                    "eligibility": {"population": "lapsed"},
                },
                {
                    "name": "xs",
                    "kind": "cross_sell",
                    "channel": "email",
                    "cost": 0.5,
                    "category": "accessories",
                    "expected_margin": 20.0,
                    "eligibility": {"population": "churn"},
                },
                {
                    "name": "sr",
                    "kind": "service_recovery",
                    "channel": "phone",
                    "cost": 10.0,
                    "response": {"default": 0.7},
                    "eligibility": {"unresolved_complaint": True},
                },
            ],
        }
        | extra
    )


def _values(frame: pl.DataFrame) -> dict[tuple[str, str], float]:
    rows = frame.iter_rows(named=True)
    return {(r["customer_id"], r["offer"]): r["expected_value"] for r in rows}


def test_customer_inputs_name_the_groups_without_a_segment_or_tier_as_the_tables_do() -> None:
    """The help of the segment and value_tier columns says what a null reads as in every table."""
    assert f"'{NO_GROUP_NAMES['rfm_segment']}'" in CUSTOMER_INPUTS["segment"]
    assert f"'{NO_GROUP_NAMES['value_tier']}'" in CUSTOMER_INPUTS["value_tier"]


def test_expected_values_by_hand() -> None:
    got = _values(offer_values(CUSTOMERS, _offers()).long())
    assert got == pytest.approx(
        {
            ("A1", "ret"): 0.5 * 0.2 * 1000 - 1,  # segment rate 0.2
            ("B1", "ret"): 0.2 * 0.1 * 500 - 1,
            ("S1", "ret"): 0.6 * 0.1 * 300 - 1,
            ("L1", "wb"): 0.05 * 200 - 5,
            ("A1", "xs"): 0.2 * 20 - 0.5,  # B1 owns accessories (null); L1 not in population
            ("S1", "xs"): 0.05 * 20 - 0.5,
            ("S1", "sr"): 0.6 * 0.7 * 300 - 10,
        }
    )


def test_uplift_replaces_the_probability() -> None:
    uplift = pl.DataFrame(
        {"customer_id": ["A1", "B1"], "offer": ["ret", "xs"], "uplift": [0.3, -0.02]}
    )
    got = _values(offer_values(CUSTOMERS, _offers(), uplift=uplift).long())
    assert got[("A1", "ret")] == pytest.approx(0.3 * 1000 - 1)
    assert got[("B1", "ret")] == pytest.approx(0.2 * 0.1 * 500 - 1)  # no estimate: the rate
    assert ("B1", "xs") not in got  # still not eligible: it owns the category


def test_plan_by_hand() -> None:
    offers = _offers()
    plan = plan_campaign(offer_values(CUSTOMERS, offers), offers, budget=12.0)
    # 12 buys the service-recovery call (116) plus two retention e-mails (99, 9): 224; every
    # cheaper mix (e-mails for all, win-back) earns 130 at most.
    assert plan.rows.columns == list(PLAN_COLUMNS)
    assert dict(zip(plan.rows["customer_id"], plan.rows["offer"], strict=True)) == {
        "S1": "sr",
        "A1": "ret",
        "B1": "ret",
    }
    assert plan.expected_value == pytest.approx(116 + 99 + 9)
    assert plan.investment == pytest.approx(12.0)
    assert plan.gap == pytest.approx(0.0, abs=1e-9)
    assert plan.reason is None
    by_offer = {r["offer"]: r for r in plan.allocation.by_offer.iter_rows(named=True)}
    assert by_offer["ret"]["contacts"] == 2
    assert by_offer["ret"]["investment"] == pytest.approx(2.0)
    assert by_offer["ret"]["expected_return"] == pytest.approx(110.0)
    assert by_offer["ret"]["roi"] == pytest.approx(54.0)
    segments = {r["segment"]: r for r in plan.allocation.by_segment.iter_rows(named=True)}
    assert segments["need_attention"]["investment"] == pytest.approx(11.0)
    assert segments["need_attention"]["expected_return"] == pytest.approx(126 + 10)

    # no phone capacity: the complaint is handled by e-mail and the win-back joins
    phone_closed = _offers(channels={"phone": {"capacity": 0}})
    plan = plan_campaign(offer_values(CUSTOMERS, phone_closed), phone_closed, budget=12.0)
    assert plan.expected_value == pytest.approx(99 + 9 + 17 + 5)
    assert plan.usage["channel:phone"] == 0


def test_contact_caps() -> None:
    offers = _offers(max_contacts=1)
    plan = plan_campaign(offer_values(CUSTOMERS, offers), offers, budget=100.0)
    assert plan.rows["customer_id"].to_list() == ["S1"]
    capped = parse_offers(
        {
            "offers": [
                _offers().offers[0].model_dump(exclude_none=True) | {"max_contacts": 1},
            ]
        }
    )
    plan = plan_campaign(offer_values(CUSTOMERS, capped), capped, budget=100.0)
    assert plan.rows["customer_id"].to_list() == ["A1"]


def test_the_next_best_use_names_the_caps_and_capacities_it_lifts() -> None:
    """qa45 #2: the next best use of the remaining budget is bought as if no capacity or
    contact cap bound (the module docstring), while every output headed it as what the budget
    left over would buy: a plan of no contact under a campaign cap of 0 showed what it "could"
    still buy. The plan names the limits the next best use goes past (its contacts with the
    plan's), and the note says it lifts them; review45 M1: not those the plan merely reaches, a
    capacity no offer uses, or any when the next best use buys nothing."""
    offers = _offers(max_contacts=0)
    plan = plan_campaign(offer_values(CUSTOMERS, offers), offers, budget=100.0)
    assert plan.rows.height == 0 and plan.next_best.rows.height > 0
    assert plan.next_limits == ("the campaign's contact cap (0)",)
    assert next_limits_note(plan.next_limits) == (
        "the next best use goes past the campaign's contact cap (0): it is what its budget would "
        "buy were that limit lifted (what more capacity would be worth), not what the "
        "plan can still buy"
    )
    capped = _offers(channels={"phone": {"capacity": 1}})
    offers = parse_offers(
        capped.model_dump(exclude_none=True)
        | {
            "offers": [
                o.model_dump(exclude_none=True) | ({"max_contacts": 1} if o.name == "ret" else {})
                for o in capped.offers
            ]
        }
    )
    plan = plan_campaign(offer_values(CUSTOMERS, offers), offers, budget=100.0)
    # S1 took the phone's one contact, A1 ret's one: the next best use gives B1 ret, past ret's
    # cap; the phone's capacity, reached, it does not use
    assert plan.rows["customer_id"].to_list() == ["S1", "A1", "L1"]
    assert plan.next_best.rows.select("customer_id", "offer").rows() == [("B1", "ret")]
    assert plan.next_limits == ("the contact cap of offer 'ret' (1)",)
    # review45 L5: plan.summary.csv kept the next best use's rows without the limits it lifts
    summary = summary_table(plan)
    assert summary.columns == ["table", "group", "channel", *SUMMARY_COLUMNS]  # as they were
    limits = summary.filter(pl.col("table") == "next_best_limit")
    assert limits["group"].to_list() == ["the contact cap of offer 'ret' (1)"]
    assert limits.drop("table", "group").null_count().row(0) == (1,) * (1 + len(SUMMARY_COLUMNS))
    assert summary.filter(pl.col("table") == "next_best_offer")["group"].to_list() == ["ret"]
    for offers, budget in (
        (_offers(), 12.0),  # no limit
        (_offers(max_contacts=4), 100.0),  # reached, and the next best use buys nothing
        (_offers(channels={"sms": {"capacity": 0}}), 12.0),  # a channel no offer uses
    ):
        plan = plan_campaign(offer_values(CUSTOMERS, offers), offers, budget=budget)
        assert plan.next_limits == () and next_limits_note(plan.next_limits) is None
        assert "next_best_limit" not in summary_table(plan)["table"].to_list()


@pytest.mark.parametrize(
    ("budget", "customers", "offers", "reason"),
    [
        (0.4, CUSTOMERS, _offers(), "the budget of 0.40 buys nothing: the cheapest contact"),
        (
            100.0,
            CUSTOMERS.with_columns(
                churn_population=pl.lit(False),
                lapsed=pl.lit(False),
                unresolved_complaints=pl.lit(0),
            ),
            _offers(),
            "no customer is eligible for any offer",
        ),
        (100.0, CUSTOMERS.with_columns(clv=pl.lit(0.0)), _offers(), "no eligible customer has"),
        (
            100.0,
            CUSTOMERS,
            _offers(max_contacts=0),
            "the capacities and contact caps allow no worthwhile contact (contacts at 0)",
        ),
    ],
)
def test_empty_plan_says_why(
    budget: float, customers: pl.DataFrame, offers: OffersFile, reason: str
) -> None:
    if "no eligible customer" in reason:
        customers = customers.with_columns(propensity_accessories=pl.lit(0.0))
    plan = plan_campaign(offer_values(customers, offers), offers, budget=budget)
    assert plan.rows.height == 0
    assert plan.rows.columns == list(PLAN_COLUMNS)
    assert plan.reason is not None
    assert plan.reason.startswith(reason)


def test_an_empty_plan_counts_the_customers_given_as_every_note_does() -> None:
    """cli33: a plan nobody was eligible for said "1 customers given" of one customer, and
    "12345 customers given" without the separator every other count has."""
    nobody = CUSTOMERS.with_columns(
        churn_population=pl.lit(False), lapsed=pl.lit(False), unresolved_complaints=pl.lit(0)
    )
    for customers, given in ((nobody.head(1), "1 customer given"), (nobody, "4 customers given")):
        plan = plan_campaign(offer_values(customers, _offers()), _offers(), budget=100.0)
        assert plan.reason is not None and plan.reason.endswith(f"; {given})"), plan.reason


def test_missing_column_names_the_offer() -> None:
    with pytest.raises(ValueError, match="offer 'ret' needs the customers column 'clv'"):
        offer_values(CUSTOMERS.drop("clv"), _offers())
    with pytest.raises(ValueError, match="'A1' appears more than once"):
        offer_values(pl.concat([CUSTOMERS, CUSTOMERS]), _offers())
    with pytest.raises(ValueError, match="budget must be a non-negative"):
        plan_campaign(offer_values(CUSTOMERS, _offers()), _offers(), budget=-1.0)


# --- the textbook table: A, B and C return 2.5, 1.5 and 0.5 per unit invested -----------------

ABC_OFFERS = parse_offers(
    {
        "offers": [
            {
                "name": "call",
                "kind": "retention",
                "channel": "phone",
                "cost": 1.0,
                "response": {"default": 1.0},
            }
        ]
    }
)


def _abc() -> pl.DataFrame:
    rows = []
    for seg, churn, clv in (("A", 0.2, 12.5), ("B", 0.5, 3.0), ("C", 0.8, 0.625)):
        rows += [
            {"customer_id": f"{seg}{i:03d}", "segment": seg, "churn_probability": churn, "clv": clv}
            for i in range(100)
        ]
    return pl.DataFrame(rows)


def test_segment_roi_textbook_table() -> None:
    values = offer_values(_abc(), ABC_OFFERS)
    even_rows = values.long().group_by("segment").head(50)  # 50 per segment: 150 spent evenly
    table = segment_roi(even_rows)
    assert table["segment"].to_list() == ["A", "B", "C", "total"]
    assert table["customers"].to_list() == [50, 50, 50, 150]
    assert table["investment"].to_list() == pytest.approx([50, 50, 50, 150])
    assert table["expected_return"].to_list() == pytest.approx([125, 75, 25, 225])
    assert table["return_per_unit"].to_list() == pytest.approx([2.5, 1.5, 0.5, 1.5])


def test_optimiser_moves_money_from_c_to_a() -> None:
    values = offer_values(_abc(), ABC_OFFERS)
    plan = plan_campaign(values, ABC_OFFERS, budget=150.0)
    table = compare_allocations(values, ABC_OFFERS, plan)
    total = {
        r["allocation"]: r for r in table.filter(pl.col("segment") == "total").iter_rows(named=True)
    }
    # optimiser: all of A (250) and 50 of B (75); C loses money and gets nothing
    assert total["optimiser"]["expected_return"] == pytest.approx(325.0)
    assert total["optimiser"]["investment"] == pytest.approx(150.0)
    # evenly: 50 per segment, 125 + 75 + 25
    assert total["even"]["expected_return"] == pytest.approx(225.0)
    # by churn score alone: C first (100 x 0.5), then 50 of B
    assert total["churn_score"]["expected_return"] == pytest.approx(50.0 + 75.0)
    # the budget is spent, so the next best use is a further tenth of it: 15 more B customers
    assert plan.next_best.budget == pytest.approx(15.0)
    assert plan.next_reason is None  # it buys something: no reason to give
    nxt = plan.next_best.by_segment.row(0, named=True)
    assert (nxt["segment"], nxt["contacts"]) == ("B", 15)
    assert nxt["expected_return"] == pytest.approx(22.5)


def test_no_churn_probability_leaves_the_churn_score_allocation_out() -> None:
    """cycle32b: with no churn champion when guanxi value ran, the spend "by churn score alone"
    took the customers in the value table's order, and guanxi target --report printed it as
    such beside the even spend; it is left out."""
    offers = parse_offers(
        {
            "offers": [
                {
                    "name": "voucher",
                    "kind": "win_back",
                    "channel": "email",
                    "cost": 1.0,
                    "response": {"default": 0.5},
                }
            ]
        }
    )
    customers = _abc().with_columns(
        churn_probability=pl.lit(None, dtype=pl.Float64), lapsed=pl.lit(True)
    )
    values = offer_values(customers, offers)
    plan = plan_campaign(values, offers, budget=150.0)
    assert plan.rows.height > 0  # the win-back offer needs no churn probability
    table = compare_allocations(values, offers, plan)
    assert set(table["allocation"]) == {"optimiser", "even"}
