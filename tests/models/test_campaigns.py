"""Campaign outcomes: validation, the report computed by hand, measured rates, the bootstrap."""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from features.store import (
    CampaignInfo,
    PlanInfo,
    Store,
    TamperedTableError,
    UnsignedTableError,
)
from models.campaigns import (
    ALL_SEGMENTS,
    LATEST_PLAN_DAY,
    NO_SEGMENT,
    REPORT_COLUMNS,
    UNSAID_PLAN,
    CampaignOutcomesError,
    DrawnCosts,
    DrawnPlans,
    OutcomeValues,
    Overlap,
    RefusedValues,
    Segmenting,
    campaign_report,
    drawn_costs,
    drawn_plans,
    duplicate_of,
    expected_plan_note,
    fill_from_values,
    measured_rates,
    outcome_values,
    outcome_values_day,
    plans_holding,
    pool_campaigns,
    read_outcomes,
    segment_campaigns,
    small_cells,
    small_cells_note,
    stored_plan_offers,
    unmeasured,
    unpriced_offers,
    validate_outcomes,
    with_campaign_names,
)
from models.customer_rows import RepeatedCustomersError
from models.offers import OffersFile, parse_offers, with_measured_rates
from models.targeting import NO_GROUP_NAMES
from tests.test_quality import PACKAGES, ROOT, _string_literals

OFFERS = parse_offers(
    {
        "offers": [
            {
                "name": "ret",
                "kind": "retention",
                "channel": "email",
                "cost": 1.0,
                "response": {"default": 0.1},
            },
            {
                "name": "wb",
                "kind": "win_back",
                "channel": "email",
                "cost": 2.0,
                "response": {"default": 0.05},
            },
        ]
    }
)

OUTCOMES = pl.DataFrame(
    {
        "customer_id": [f"C{i}" for i in range(10)],
        "offer": ["ret"] * 10,
        "segment": ["at_risk"] * 6 + ["cant_lose"] * 4,
        "control": [False] * 4 + [True] * 2 + [False] * 2 + [True] * 2,
        "responded": [True, True, True, False, True, False, False, True, False, False],
        "ordered": [True, True, True, False, True, False, False, True, False, False],
        "revenue": [30.0, 30, 30, 0, 30, 0, 0, 60, 0, 0],
        "margin": [10.0, 10, 10, 0, 10, 0, 0, 20, 0, 0],
        "churn_probability": [0.5] * 4 + [0.6] * 2 + [0.25] * 2 + [0.3] * 2,
    }
)


def test_report_by_hand() -> None:
    report = campaign_report(validate_outcomes(OUTCOMES), OFFERS, n_boot=500)
    assert report.columns == list(REPORT_COLUMNS)
    rows = {r["segment"]: r for r in report.iter_rows(named=True)}
    a, b, total = rows["at_risk"], rows["cant_lose"], rows[ALL_SEGMENTS]
    assert (a["treated"], a["control"]) == (4, 2)
    assert a["response"] == pytest.approx(0.75)
    assert a["control_response"] == pytest.approx(0.5)
    assert a["incremental_response"] == pytest.approx(0.25)
    assert a["cost"] == pytest.approx(4.0)
    assert a["incremental_margin"] == pytest.approx((7.5 - 5.0) * 4)
    assert a["roi"] == pytest.approx((10 - 4) / 4)
    assert b["incremental_response"] == pytest.approx(0.5)
    assert b["incremental_margin"] == pytest.approx(20.0)
    assert b["roi"] == pytest.approx(9.0)
    assert (total["treated"], total["control"]) == (6, 4)
    assert total["incremental_response"] == pytest.approx(4 / 6 - 1 / 4)
    assert total["incremental_margin"] == pytest.approx((50 / 6 - 10 / 4) * 6)
    assert total["roi"] == pytest.approx((35 - 6) / 6)
    for r in (a, b, total):
        assert r["ci_low"] <= r["incremental_response"] <= r["ci_high"]


def test_each_offers_row_over_all_segments_comes_last_as_its_total() -> None:
    """walk28: the row over all segments sorted as a segment called "all", among the others
    (the sample campaign's between about_to_sleep and at_risk), where a reader looks for a
    total at the end; its interval is the one it had (the same draws)."""
    outcomes = pl.concat([OUTCOMES, OUTCOMES.with_columns(offer=pl.lit("wb"))])
    report = campaign_report(outcomes, OFFERS, n_boot=200)
    assert report.select("offer", "segment").rows() == [
        ("ret", "at_risk"),
        ("ret", "cant_lose"),
        ("ret", ALL_SEGMENTS),
        ("wb", "at_risk"),
        ("wb", "cant_lose"),
        ("wb", ALL_SEGMENTS),
    ]
    first = campaign_report(OUTCOMES, OFFERS, n_boot=200)
    assert first.filter(pl.col("segment") == ALL_SEGMENTS).equals(report.head(3).tail(1))


def test_report_is_seeded_and_without_offers_has_no_cost() -> None:
    one = campaign_report(OUTCOMES, seed=3)
    assert one.equals(campaign_report(OUTCOMES, seed=3))
    assert one["cost"].null_count() == one.height
    assert one["roi"].null_count() == one.height


def test_an_offers_intervals_do_not_move_when_another_offers_campaign_is_recorded() -> None:
    """qa43 L4: one generator ran across the rows, so recording another offer's campaign moved
    retention_email's interval (+9.1..+22.0 became +9.6..+21.9); each row now draws from its own
    generator, seeded from the report's seed and the row's offer and segment."""
    intervals = ["offer", "segment", "ci_low", "ci_high"]
    alone = campaign_report(OUTCOMES, OFFERS, n_boot=300, seed=5).select(intervals)
    other = OUTCOMES.with_columns(offer=pl.lit("wb"), customer_id=pl.col("customer_id") + "w")
    # "wb" sorts after "ret"; "a_first" before it, so the rows it adds are drawn first
    first = OUTCOMES.with_columns(offer=pl.lit("a_first"), customer_id=pl.col("customer_id") + "a")
    for added in (other, first):
        both = campaign_report(pl.concat([OUTCOMES, added]), n_boot=300, seed=5)
        assert both.filter(pl.col("offer") == "ret").select(intervals).equals(alone)
    # the same input twice gives the same intervals; another seed, other ones
    assert campaign_report(OUTCOMES, OFFERS, n_boot=300, seed=5).select(intervals).equals(alone)
    moved = campaign_report(OUTCOMES, OFFERS, n_boot=300, seed=6).select(intervals)
    assert not moved.equals(alone)


def test_margin_from_revenue() -> None:
    report = campaign_report(OUTCOMES.drop("margin"), OFFERS, margin_rate=0.5)
    a = report.filter(pl.col("segment") == "at_risk").row(0, named=True)
    assert a["incremental_margin"] == pytest.approx((90 / 4 - 30 / 2) * 0.5 * 4)
    with pytest.raises(ValueError, match="margin_rate"):
        campaign_report(OUTCOMES.drop("margin"), OFFERS)


def test_bootstrap_interval_covers_the_true_difference() -> None:
    rng = np.random.default_rng(5)
    n = 4000
    control = rng.random(n) < 0.5
    responded = rng.random(n) < np.where(control, 0.20, 0.26)
    frame = pl.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(n)],
            "offer": "ret",
            "control": control,
            "responded": responded,
            "ordered": responded,
            "revenue": responded * 50.0,
        }
    )
    row = campaign_report(frame, OFFERS, margin_rate=0.3).row(0, named=True)
    assert row["ci_low"] < 0.06 < row["ci_high"]
    width = row["ci_high"] - row["ci_low"]
    # normal approximation of the standard error of a difference of proportions
    se = np.sqrt(0.2 * 0.8 / (n / 2) + 0.26 * 0.74 / (n / 2))
    assert width == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_measured_rates_divide_by_the_churn_probability() -> None:
    rates = measured_rates(OUTCOMES, OFFERS, min_customers=1)
    assert rates["ret"]["at_risk"] == pytest.approx(0.25 / 0.5)
    assert rates["ret"]["cant_lose"] == pytest.approx(min(0.5 / 0.25, 1.0))  # clipped to 1
    assert measured_rates(OUTCOMES, OFFERS) == {}  # too few customers per cell
    updated = with_measured_rates(OFFERS, rates)
    assert updated.offer("ret").rates.rate("at_risk", None) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="need a 'churn_probability' column"):
        measured_rates(OUTCOMES.drop("churn_probability"), OFFERS, min_customers=1)
    win_back = OUTCOMES.drop("churn_probability").with_columns(offer=pl.lit("wb"))
    assert measured_rates(win_back, OFFERS, min_customers=1)["wb"]["at_risk"] == pytest.approx(0.25)


def test_rows_without_a_churn_probability_are_left_out_of_both_sides_of_the_rate() -> None:
    """pool27: a row without a churn probability counted in the incremental response but not in
    the mean it was divided by. At_risk without C0's (a treated responder): treated C1 to C3, 2
    of 3 respond, control 1 of 2: (2/3 - 1/2) / 0.5, where it was (3/4 - 1/2) / 0.5."""
    partial = OUTCOMES.with_columns(
        churn_probability=pl.when(pl.col("customer_id") == "C0")
        .then(None)
        .otherwise(pl.col("churn_probability"))
    )
    rates = measured_rates(partial, OFFERS, min_customers=1)
    assert rates["ret"]["at_risk"] == pytest.approx((2 / 3 - 1 / 2) / 0.5)


def test_a_report_can_leave_outcomes_without_a_margin_unvalued() -> None:
    """polish30b: the campaign page, which has no margin rate, valued them at 1 (their revenue
    as a margin). With leave_unvalued, the rows counting an outcome with revenue and no margin
    have no incremental margin nor ROI; the others keep theirs, and a row without revenue
    earned nothing whether or not it has a margin."""
    frame = pl.DataFrame(
        {
            "customer_id": ["A1", "A2", "B1", "B2", "B3"],
            "offer": ["a", "a", "b", "b", "b"],
            "control": [False, True, False, True, True],
            "responded": [True, False, True, False, False],
            "revenue": [100.0, 0.0, 100.0, 0.0, None],
            "margin": [30.0, 0.0, None, None, 0.0],
        }
    )
    offer = {"kind": "retention", "channel": "email", "cost": 1.0, "response": {"default": 0.1}}
    offers = parse_offers({"offers": [{"name": n, **offer} for n in ("a", "b")]})
    # polish30b: "1 outcome with revenue have no margin"
    with pytest.raises(ValueError, match=r"^1 outcome with revenue has no margin: give the"):
        campaign_report(frame, offers)
    report = campaign_report(frame, offers, leave_unvalued=True)
    margins = dict(report.select("offer", "incremental_margin").rows())
    assert margins == {"a": 30.0, "b": None}
    assert dict(report.select("offer", "roi").rows()) == {"a": 29.0, "b": None}


def test_pooled_outcomes_take_the_value_tables_segment_and_churn_row_by_row() -> None:
    """pool27: the readers filled a column from the value table only when every campaign lacked
    it. Each row now keeps its own value and takes the table's where it has none (an empty cell
    as a missing column); the fill counts what it filled and what still lacks one."""
    first = OUTCOMES.head(3).with_columns(
        segment=pl.Series(["at_risk", None, "at_risk"]),
        churn_probability=pl.Series([0.5, None, 0.5]),
    )
    second = OUTCOMES.tail(3).drop("segment", "churn_probability")  # C7 to C9
    pooled, _ = pool_campaigns({"a": first, "b": second})
    assert pooled is not None
    values = pl.DataFrame(
        {
            "customer_id": ["C0", "C1", "C7", "C8"],
            "rfm_segment": ["loyal", "champions", "cant_lose", "cant_lose"],
            "churn_probability": [0.9, 0.1, 0.2, None],
        }
    )
    fill = fill_from_values(pooled, values, day=date(2024, 10, 31))
    assert fill.outcomes.select("customer_id", "segment", "churn_probability").rows() == [
        ("C0", "at_risk", 0.5),  # its own first
        ("C1", "champions", 0.1),  # empty cells: the table's
        ("C2", "at_risk", 0.5),
        ("C7", "cant_lose", 0.2),
        ("C8", "cant_lose", None),  # the table has none either
        ("C9", None, None),  # not in the table
    ]
    assert fill.outcomes.columns == pooled.columns
    assert [fill.filled("segment"), fill.lacking("segment")] == [3, 1]
    assert [fill.filled("churn_probability"), fill.lacking("churn_probability")] == [2, 2]
    assert fill.said(date(2024, 10, 31), "the latest plan's day") == (
        "segments and churn probabilities from the value table as of 2024-10-31 (the latest "
        "plan's day): segments for 3 of the 4 outcome rows without one of their own (1 still "
        "lacks one); churn probabilities for 2 of the 4 outcome rows without one of their own (2 "
        "still lack one)"
    )
    # values28: "of 4" counted the outcome customers needing a fill (C1, C7, C8, C9) alone; the
    # note is of every outcome customer, C0 to C2 and C7 to C9, and says what C9 lacks
    note = fill.not_in_values(date(2024, 10, 31), {"segment": "unsegmented"})
    assert note is not None and note.startswith(
        "1 outcome customer of 6 (C9) has no segment or churn probability of their own and is "
        "not in the value table as of 2024-10-31"
    )
    assert note.endswith(": unsegmented")
    own = fill_from_values(first.head(1), values, day=date(2024, 10, 31))
    assert own.outcomes.equals(first.head(1))
    assert own.said(date(2024, 10, 31), "why") == (
        "segments and churn probabilities are the outcomes' own: none is taken from the value "
        "table as of 2024-10-31 (why)"
    )


def test_the_plan_drawn_from_segments_its_customers_when_it_holds_every_one() -> None:
    """review38 L13: a campaign drawn from one plan was segmented by the value table of the
    plan's day, whose segments are not the plan's rows' when the table was written again after
    the plan. When the plan holds every row without a segment of its own (the control held out
    of its customers), they take its rows' segment (its "no segment" too), their own first;
    when it does not, every row takes the table's, so that the contacted and the control
    customers are segmented alike (review40 H1: the plan's for the contacted and the table's for
    the control left each segment one arm), and the note counts the rows the plan gives another
    segment."""
    day, plan = date(2024, 10, 31), "the plan as of 2024-10-31 the campaign was drawn from"
    outcomes = OUTCOMES.head(5).with_columns(  # C0 its own segment; C1 to C4 none
        segment=pl.Series(["at_risk", None, None, None, None]),
        churn_probability=pl.Series([0.5, None, 0.4, None, None]),
    )
    planned = pl.DataFrame(  # C0 (its own wins) to C4; Z, whom no outcome names
        {
            "customer_id": ["C0", "C1", "C2", "C3", "C4", "Z"],
            "segment": ["loyal", "need_attention", "need_attention", NO_SEGMENT, "at_risk", "x"],
        }
    )
    values = pl.DataFrame(  # written again after the plan: segments moved; no C3
        {
            "customer_id": ["C0", "C1", "C2", "C4"],
            "rfm_segment": ["champions", "champions", "need_attention", "champions"],
            "churn_probability": [0.1, 0.2, 0.3, None],
        }
    )
    fill = fill_from_values(outcomes, values, day=day, planned=(day, planned), plan=plan)
    assert fill.outcomes.select("customer_id", "segment", "churn_probability").rows() == [
        ("C0", "at_risk", 0.5),  # its own
        ("C1", "need_attention", 0.2),  # the plan's segment, the table's churn
        ("C2", "need_attention", 0.4),
        ("C3", NO_SEGMENT, None),  # the plan's "no segment"; not in the table
        ("C4", "at_risk", None),
    ]
    assert fill.from_plan and fill.needed("segment").to_list() == [False, True, True, True, True]
    assert not fill.moved.any()
    assert [fill.filled("segment"), fill.lacking("segment")] == [0, 0]
    assert [fill.filled("churn_probability"), fill.lacking("churn_probability")] == [1, 2]
    assert fill.said(day, "why") == (
        "segments from the rows of the plan as of 2024-10-31 the campaign was drawn from, which "
        "holds every one of the 4 outcome rows without one of their own; churn probabilities "
        "from the value table as of 2024-10-31 (why): for 1 of the 3 outcome rows without one "
        "of their own (2 still lack one)"
    )
    note = fill.not_in_values(day, {"segment": "unsegmented", "churn_probability": "last"})
    assert note == (  # C3 lacks a churn probability, not a segment
        "1 outcome customer of 5 (C3) has no churn probability of their own and is not in the "
        "value table as of 2024-10-31 (no order up to that day, or customers of another store): "
        "last"
    )
    alone = fill_from_values(outcomes, values, ("segment",), day=day, planned=(day, planned))
    assert alone.said(day, "why") == (
        "segments from the rows of the plan the campaigns were drawn from, which holds every "
        "one of the 4 outcome rows without one of their own"
    )
    churn = fill_from_values(
        outcomes, values, ("churn_probability",), day=day, planned=(day, planned)
    )
    assert not churn.from_plan  # the plan gives segments alone
    # C4 not in the plan: every row the table's segment, C1 counted (C2's is the plan's, C3 has
    # none in either)
    short = (day, planned.filter(pl.col("customer_id") != "C4"))
    fill = fill_from_values(outcomes, values, ("segment",), day=day, planned=short, plan=plan)
    assert fill.outcomes["segment"].to_list() == [
        "at_risk",
        "champions",
        "need_attention",
        None,
        "champions",
    ]
    assert not fill.from_plan and fill.moved.to_list() == [False, True, False, False, False]
    assert fill.said(day, "why") == (
        "segments from the value table as of 2024-10-31 (why): for 3 of the 4 outcome rows "
        "without one of their own (1 still lacks one); the plan as of 2024-10-31 the campaign "
        "was drawn from gave another segment to 1 of the rows the table segments (the table "
        "written again after it): the plan does not hold every row without a segment of its "
        "own (as when a control was held out of it), so the contacted and the control customers "
        "are segmented alike, by the table, while the expected ROI is by the plan's segments"
    )
    # review41 L1: a table of another day than the plan's (its day had none) was not written
    # again after it
    october = (date(2024, 10, 1), short[1])
    other = fill_from_values(outcomes, values, ("segment",), day=day, planned=october)
    assert (
        "to 1 of the rows the table segments (the table is of 2024-10-31, not of the plan's day)"
        in other.said(day, "why")
    )
    # review42 L1: a planned customer the table lacks is no row the table segments: not counted
    lacked = fill_from_values(
        outcomes, values.filter(pl.col("customer_id") != "C1"), ("segment",), day=day,
        planned=short,
    )  # fmt: skip
    assert not lacked.moved.any() and "another segment" not in lacked.said(day, "why")
    # review40 L1, review41 M1: a plan listing an outcome customer twice is not one guanxi
    # target kept: its rows segment nothing, said naming the plan, and the table's are used
    twice = (day, pl.concat([planned, planned.filter(pl.col("customer_id") == "C2")]))
    fill = fill_from_values(outcomes, values, day=day, planned=twice, plan=plan)
    assert fill.outcomes["segment"].to_list() == [
        "at_risk", "champions", "need_attention", None, "champions"
    ]  # fmt: skip
    assert not fill.from_plan and not fill.moved.any()
    assert fill.plan_refused() == (
        "the plan as of 2024-10-31 the campaign was drawn from lists customer 'C2' on more than "
        "one row, so its rows segment no outcome row (a plan gives a customer one offer); plan "
        "it again (guanxi target --budget B --offers OFFERS.yaml --as-of 2024-10-31) and record "
        "the campaign again with --plan 2024-10-31"
    )
    # the one joiner of the readers' notes: the fill's, the reader's own, the refusal last
    read = OutcomeValues(day, "why", fill)
    assert read.said("X") == f"{fill.said(day, 'why')}; X; {fill.plan_refused()}"
    assert read.said(None) == read.said() == f"{fill.said(day, 'why')}; {fill.plan_refused()}"
    assert fill_from_values(outcomes, values, day=day).plan_refused() is None
    own = outcomes.with_columns(segment=pl.lit("at_risk"))  # no row needs the plan: not read
    assert fill_from_values(own, values, day=day, planned=twice).plan_refused() is None


def test_the_offers_a_plan_lacks_are_named_with_their_campaigns() -> None:
    """qa45 #1: the campaign page names each offer the stored plan's offers lack, with the
    campaigns holding it and the offer it may be a misspelling of."""
    offers = parse_offers(
        {
            "offers": [
                {"name": n, "kind": "retention", "channel": "email", "cost": 1.0,
                 "response": {"default": 0.1}}
                for n in ("retention_email", "win_back_voucher")
            ]
        }
    )  # fmt: skip
    frame = pl.DataFrame({"offer": ["retention_email", "retention_emial"]})
    assert unpriced_offers({"a": frame.head(1)}, offers) is None
    assert unpriced_offers(
        {"a": frame, "b": frame, "c": pl.DataFrame({"offer": ["sms"]})}, offers
    ) == (
        "offers 'retention_emial' (campaigns 'a', 'b'; is it 'retention_email'?), 'sms' (campaign "
        "'c') are not in the offers of the stored plan: their cost and realised ROI are not known; "
        "a campaign with a misspelt offer can be recorded again with the offer's right name; "
        "guanxi campaign report --offers FILE prices them from an offers file that has them"
    )
    # review45 M2: an offer a later plan dropped is not misspelt: no advice to record it again
    assert unpriced_offers({"c": pl.DataFrame({"offer": ["sms"]})}, offers, "the plan X") == (
        "offer 'sms' (campaign 'c') is not in the offers of the plan X: its cost and realised "
        "ROI are not known; guanxi campaign report --offers FILE prices them from an offers file "
        "that has them"
    )


def _drawn_costs_case() -> tuple[OffersFile, Callable[..., CampaignInfo], DrawnPlans]:
    """Give the latest plan's offers ('wb' at 2), a campaign's metadata, two plans it names."""
    latest = parse_offers(
        {"offers": [{"name": "wb", "kind": "win_back", "channel": "email", "cost": 2.0,
                     "response": {"default": 0.1}}]}
    )  # fmt: skip

    def info(name: str, plan: date | None) -> CampaignInfo:
        created = "2024-11-02T09:00:00+00:00"
        return CampaignInfo(date(2024, 11, 30), name, 10, f"{name}.csv", created, Path(name), plan)

    def plan_rows(*given: tuple[str, str, float]) -> pl.DataFrame:
        return pl.DataFrame(given, schema=["customer_id", "offer", "cost"], orient="row")

    as_drawn = {
        date(2024, 9, 30): plan_rows(("S1", "ret", 4.0), ("S2", "wb", 5.0), ("S3", "ret", 4.0)),
        date(2024, 8, 31): plan_rows(("A1", "old", 1.0), ("S3", "ret", 3.0), ("S4", "wb", 6.0)),
    }
    return latest, info, DrawnPlans((date(2024, 9, 30),), 1, None, "why", as_drawn=as_drawn)


def _contacted(*rows: tuple[str, str, bool]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["customer_id", "offer", "control"], orient="row")


def test_an_offer_is_priced_at_what_its_campaigns_paid_by_the_plans_they_were_drawn_from() -> None:
    """review45 M2: a campaign drawn from an older plan whose offer the latest plan renamed was
    shown without cost or ROI (the page) or refused (the report). review48 M2: an offer the
    latest plan prices otherwise was priced at the latest plan's cost, not what the campaign
    paid. The plans the campaigns were drawn from price an offer when each is stored as it was,
    gave it to the campaign's contacted customers, and all at one cost; the note says so where
    the latest plan lacks it or prices it otherwise, written as the table writes money."""
    september, august = date(2024, 9, 30), date(2024, 8, 31)
    latest, info, drawn = _drawn_costs_case()
    outcomes = {  # S0 a control: no cost, priced by no plan
        "oct": _contacted(("S1", "ret", False), ("S0", "ret", True), ("S2", "wb", False)),
        "nov": _contacted(("S3", "ret", False)),
        "aug": _contacted(("A1", "old", False), ("A2", "gone", False)),
    }
    infos = [info("oct", september), info("nov", september), info("aug", august)]
    found = drawn_costs(outcomes, infos, drawn, latest, "the latest plan")
    # ret at september's 4 for both campaigns, old at august's 1, wb at the 5 'oct' paid (the
    # latest plan's 2 gave ROI ten times the paid one's); gone: august gave it to no one of 'aug'
    gone = (
        "the plan as of 2024-08-31 that campaign 'aug' was drawn from did not give it to the "
        "campaign's contacted customers"
    )
    assert found == DrawnCosts(
        {"old": 1.0, "ret": 4.0, "wb": 5.0},
        "'old', not among the offers of the latest plan, is priced at 1.00 a contact as in the "
        "plan as of 2024-08-31 that campaign 'aug' was drawn from; 'ret', not among the offers "
        "of the latest plan, is priced at 4.00 a contact as in the plan as of 2024-09-30 that "
        "campaigns 'oct', 'nov' were drawn from; 'wb' is priced at 5.00 a contact as in the plan "
        "as of 2024-09-30 that campaign 'oct' was drawn from, not at the 2.00 of the latest plan",
        {"gone": gone},
    )
    assert unpriced_offers(outcomes, latest, "the plan X", found.costs, found.declined) == (
        f"offer 'gone' (campaign 'aug'; {gone}) is not in the offers of the plan X: its cost and "
        "realised ROI are not known; guanxi campaign report --offers FILE prices them from an "
        "offers file that has them"
    )
    # at the latest plan's own cost: priced, nothing to say of it
    same = {"oct": _contacted(("S2", "wb", False))}
    cheap = parse_offers(
        {"offers": [{"name": "wb", "kind": "win_back", "channel": "email", "cost": 5.0,
                     "response": {"default": 0.1}}]}
    )  # fmt: skip
    assert drawn_costs(same, infos, drawn, cheap) == DrawnCosts({"wb": 5.0}, None)
    # a campaign of no plan, or of a plan not stored as it was: unpriced, and why
    for nov, why in (
        (info("nov", None), "campaign 'nov' names no plan"),
        (
            info("nov", date(2024, 7, 31)),
            "the plan as of 2024-07-31 that campaign 'nov' was drawn from is not stored as it was",
        ),
    ):
        left = drawn_costs(outcomes, [infos[0], nov, infos[2]], drawn, latest)
        assert (left.costs, left.declined) == (
            {"old": 1.0, "wb": 5.0},
            {"ret": why, "gone": gone},
        ), nov
    assert drawn_costs({"aug": _contacted(("A2", "gone", False))}, infos, drawn, latest) == (
        DrawnCosts({}, None, {"gone": gone})
    )
    # the report prices them so; the costs the campaigns paid win over the offers'
    frame = pl.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(8)],
            "offer": ["ret"] * 4 + ["wb"] * 4,
            "control": [False, True] * 4,
            "responded": [True, False] * 4,
            "revenue": [10.0, 0.0] * 4,
            "margin": [10.0, 0.0] * 4,
        }
    )
    report = campaign_report(frame, latest, costs={"ret": 4.0, "wb": 9.0}, n_boot=10)
    total = report.filter(pl.col("segment") == ALL_SEGMENTS)
    # 2 contacted at 10.0 of margin more than control: 20.0; ret 2 x 4 = 8, ROI 12 / 8; wb at
    # the 9 paid, not the offers' 2: 2 x 9 = 18, ROI 2 / 18
    assert total.select("offer", "cost").rows() == [("ret", 8.0), ("wb", 18.0)]
    assert total["roi"].to_list() == pytest.approx([1.5, 2 / 18])
    with pytest.raises(ValueError, match="offer 'ret' of the outcomes is not in the offers"):
        campaign_report(frame, latest, n_boot=10)


def test_a_plan_that_gave_an_offer_to_other_customers_does_not_price_it() -> None:
    """review48 M1: a plan counted as giving an offer when any of its rows had it, whoever they
    were for: a campaign recorded with --plan naming the wrong plan (September's instead of
    October's) was priced at that plan's cost, without a word. Only the plan's rows of the
    campaign's own contacted customers with the offer price it."""
    september = date(2024, 9, 30)
    latest, info, drawn = _drawn_costs_case()
    # the plan of 30 Sep gave 'ret' to S1 and S3 at 4; the campaign's 'ret' customers are D1-D3
    camp = _contacted(("D1", "ret", False), ("D2", "ret", False), ("D3", "ret", True))
    found = drawn_costs({"oct": camp}, [info("oct", september)], drawn, latest)
    why = (
        "the plan as of 2024-09-30 that campaign 'oct' was drawn from did not give it to the "
        "campaign's contacted customers"
    )
    assert found.costs == {} and found.note is None  # was priced at 4, unsaid
    assert found == DrawnCosts({}, None, {"ret": why})
    # its customers S1 and S3 did get it there, but only as control here: no cost paid
    held = _contacted(("S1", "ret", True), ("S3", "ret", True), ("D1", "ret", False))
    assert drawn_costs({"oct": held}, [info("oct", september)], drawn, latest).declined == {
        "ret": why
    }
    # 'wb' to S2 at 5, to the campaign's S2: priced at the 5, not the 6 august gave S4
    assert drawn_costs(
        {"oct": _contacted(("S2", "wb", False))}, [info("oct", september)], drawn, latest
    ).costs == {"wb": 5.0}


def test_campaigns_drawn_at_different_costs_are_named_with_those_costs() -> None:
    """review48 M2, L1: campaigns of one offer drawn at different costs left it unpriced (or at
    the latest plan's cost) saying only that the latest plan lacks it, with advice to record it
    again, which helps only a misspelt name. qa44 M3: then at one cost whatever was done (the
    latest plan's, or --offers'). Each campaign's contacts are priced at the cost its own plan
    gave them, and the note names those costs, their plans and campaigns."""
    september, august = date(2024, 9, 30), date(2024, 8, 31)
    latest, info, drawn = _drawn_costs_case()
    outcomes = {
        "oct": _contacted(("S1", "ret", False), ("S2", "wb", False)),
        "nov": _contacted(("S3", "ret", False), ("S4", "wb", False)),
    }
    found = drawn_costs(
        outcomes, [info("oct", september), info("nov", august)], drawn, latest, "the latest plan"
    )
    assert found.note is not None and "5.00" in found.note and "6.00" in found.note

    def why(cheap: float, dear: float) -> str:
        return (
            f"its campaigns were drawn at different costs, {cheap:.2f} a contact (the plan as of "
            f"{'2024-08-31' if cheap == 3 else '2024-09-30'} that campaign "
            f"'{'nov' if cheap == 3 else 'oct'}' was drawn from) and {dear:.2f} a contact (the "
            f"plan as of {'2024-09-30' if cheap == 3 else '2024-08-31'} that campaign "
            f"'{'oct' if cheap == 3 else 'nov'}' was drawn from)"
        )

    # no --offers advice: that file's one cost is as wrong as the latest plan's
    assert found == DrawnCosts(
        {},
        f"'ret', not among the offers of the latest plan, is priced at the cost each campaign "
        f"paid: {why(3, 4)}; 'wb' is priced at the cost each campaign paid, not at the 2.00 a "
        f"contact of the latest plan for all: {why(5, 6)}",
        {},
        {("nov", "ret"): 3.0, ("nov", "wb"): 6.0, ("oct", "ret"): 4.0, ("oct", "wb"): 5.0},
    )
    assert found.priced == {"ret", "wb"}
    assert unpriced_offers(outcomes, latest, "the plan X", found.priced, found.declined) is None
    # review48 L3: as the table writes money, with no exponent
    dear = drawn.as_drawn[september].with_columns(cost=pl.lit(1234567.5))
    priced = drawn_costs(
        {"oct": outcomes["oct"]},
        [info("oct", september)],
        drawn._replace(as_drawn={september: dear}),
        latest,
    )
    assert "'ret', not among the offers of the latest stored plan, is priced at 1,234,567.50 a" in (
        priced.note or ""
    )


def _two_plans_at_two_costs() -> tuple[OffersFile, list[CampaignInfo], DrawnPlans]:
    """Give a latest plan's offers (retention_email at 0.80, retention_call), the metadata of
    campaigns 'june' and 'sept' drawn from the plans of 30 Jun and 30 Sep 2025, which gave
    retention_email to J0-J62 at 0.60 and to S0-S47 at 0.80, and those plans."""
    june, sept = date(2025, 6, 30), date(2025, 9, 30)
    latest = parse_offers(
        {"offers": [{"name": name, "kind": "retention", "channel": channel, "cost": cost,
                     "response": {"default": 0.1}}
                    for name, channel, cost in (("retention_email", "email", 0.8),
                                                ("retention_call", "phone", 5.0))]}
    )  # fmt: skip

    def plan_rows(prefix: str, n: int, cost: float) -> pl.DataFrame:
        ids = [f"{prefix}{i}" for i in range(n)]
        return pl.DataFrame({"customer_id": ids, "offer": "retention_email", "cost": cost})

    as_drawn = {june: plan_rows("J", 63, 0.6), sept: plan_rows("S", 48, 0.8)}
    infos = [
        CampaignInfo(june, "june", 93, "june.csv", "2025-07-31T09:00:00+00:00", Path("j"), june),
        CampaignInfo(sept, "sept", 78, "sept.csv", "2025-10-31T09:00:00+00:00", Path("s"), sept),
    ]
    return latest, infos, DrawnPlans((june, sept), 2, None, "why", as_drawn=as_drawn)


def test_each_contact_is_priced_at_the_cost_its_own_plan_gave_it() -> None:
    """qa44 M3: retention_email drawn at 0.60 in one plan (63 contacted, campaign 'june') and
    0.80 in another (48, 'sept') was priced at one cost: the latest plan's (111 x 0.80 = 88.80)
    or --offers' (111 x 0.60). Each contact is priced at the cost its campaign's plan gave it.

    By hand: 'june' contacts J0-J62 (12 respond, margin 24 each), 30 control; 'sept' contacts
    S0-S47 (8 respond), 30 control; no control responds. Over all segments: (20 x 24 / 111 - 0)
    x 111 = 480.00 of incremental margin, for 63 x 0.60 + 48 x 0.80 = 37.80 + 38.40 = 76.20 of
    cost: ROI (480 - 76.20) / 76.20 = 5.2992. June's contacts are loyal, and sept's S0-S23
    (S24-S47 at_risk): loyal 37.80 + 24 x 0.80 = 57.00, at_risk 24 x 0.80 = 19.20."""
    latest, infos, drawn = _two_plans_at_two_costs()

    def campaign(prefix: str, n: int, responders: int, loyal: int) -> pl.DataFrame:
        contacted = [f"{prefix}{i}" for i in range(n)]
        control = [f"{prefix}C{i}" for i in range(30)]
        responded = [i < responders for i in range(n)] + [False] * 30
        return pl.DataFrame(
            {
                "customer_id": contacted + control,
                "offer": "retention_email",
                "control": [False] * n + [True] * 30,
                "responded": responded,
                "revenue": [80.0 if r else 0.0 for r in responded],
                "margin": [24.0 if r else 0.0 for r in responded],
                "segment": ["loyal" if i < loyal else "at_risk" for i in range(n)]
                + ["loyal"] * 15
                + ["at_risk"] * 15,
            }
        )

    campaigns = {"june": campaign("J", 63, 12, 63), "sept": campaign("S", 48, 8, 24)}
    found = drawn_costs(campaigns, infos, drawn, latest, "the latest plan")
    assert found.costs == {} and found.declined == {}
    assert found.paid == {("june", "retention_email"): 0.6, ("sept", "retention_email"): 0.8}
    assert found.note == (
        "'retention_email' is priced at the cost each campaign paid, not at the 0.80 a contact of "
        "the latest plan for all: its campaigns were drawn at different costs, 0.60 a contact "
        "(the plan as of 2025-06-30 that campaign 'june' was drawn from) and 0.80 a contact (the "
        "plan as of 2025-09-30 that campaign 'sept' was drawn from)"
    )
    pooled, overlaps = pool_campaigns(campaigns)
    assert pooled is not None
    named = with_campaign_names(pooled, campaigns, overlaps)
    assert named["_campaign"].value_counts().sort("_campaign").rows() == [
        ("june", 93),
        ("sept", 78),
    ]
    report = campaign_report(named, latest, costs=found.costs, paid=found.paid, n_boot=10)
    rows = {r["segment"]: r for r in report.to_dicts()}
    assert rows[ALL_SEGMENTS]["cost"] == pytest.approx(76.20)  # was 88.80
    assert rows[ALL_SEGMENTS]["incremental_margin"] == pytest.approx(480.0)
    assert rows[ALL_SEGMENTS]["roi"] == pytest.approx((480.0 - 76.20) / 76.20)
    assert rows["loyal"]["cost"] == pytest.approx(57.0)
    assert rows["at_risk"]["cost"] == pytest.approx(19.2)
    # an outcome file's own _paid column is not taken for the costs joined on its campaign
    own = campaign_report(named.with_columns(_paid=pl.lit(9.0)), latest, paid=found.paid, n_boot=10)
    assert own.filter(pl.col("segment") == ALL_SEGMENTS)["cost"].item() == pytest.approx(76.2)
    # a campaign of the offer left out as a duplicate of another is not priced twice
    twice = campaigns | {"sept2": campaigns["sept"]}
    pooled, overlaps = pool_campaigns(twice)
    assert pooled is not None
    again = campaign_report(
        with_campaign_names(pooled, twice, overlaps), latest, paid=found.paid, n_boot=10
    )
    assert again.filter(pl.col("segment") == ALL_SEGMENTS)["cost"].item() == pytest.approx(76.2)
    # nor does such a duplicate, naming no plan, stop the pricing per campaign (review of qa44
    # M3): drawn_costs reads the campaigns the pool kept
    nameless = [*infos, replace(infos[1], name="sept2", plan=None)]
    twice_found = drawn_costs(twice, nameless, drawn, latest, "the latest plan", overlaps=overlaps)
    assert twice_found.paid == found.paid and twice_found.declined == {}
    again = campaign_report(
        with_campaign_names(pooled, twice, overlaps), latest, paid=twice_found.paid, n_boot=10
    )
    assert again.filter(pl.col("segment") == ALL_SEGMENTS)["cost"].item() == pytest.approx(76.2)
    # the per-contact costs need each row's campaign
    with pytest.raises(ValueError, match="campaign"):
        campaign_report(pooled, latest, paid=found.paid, n_boot=10)


def test_a_campaign_naming_no_plan_takes_the_latest_cost_alone() -> None:
    """Review of qa44 M3: with one campaign of an offer naming no plan (or a plan not stored as
    it was), every contact of the offer was priced at the latest plan's cost, without a note.
    Only that campaign's contacts are; the others keep what their plans gave, and the note says
    which campaign and why.

    By hand: 'june' (drawn from the plan of 30 Jun 2025) contacted J0-J62, given
    retention_email at 0.60; 'sept' names no plan and contacted S0-S47, at the latest plan's
    0.80. Cost 63 x 0.60 + 48 x 0.80 = 37.80 + 38.40 = 76.20 (was 111 x 0.80 = 88.80)."""
    latest, infos, drawn = _two_plans_at_two_costs()
    infos = [infos[0], replace(infos[1], plan=None)]

    def campaign(prefix: str, n: int) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "customer_id": [f"{prefix}{i}" for i in range(n)]
                + [f"{prefix}C{i}" for i in range(30)],
                "offer": "retention_email",
                "control": [False] * n + [True] * 30,
                "responded": False,
                "revenue": 0.0,
                "margin": 0.0,
            }
        )

    campaigns = {"june": campaign("J", 63), "sept": campaign("S", 48)}
    found = drawn_costs(campaigns, infos, drawn, latest, "the latest plan")
    assert found.costs == {} and found.declined == {}
    assert found.paid == {("june", "retention_email"): 0.6, ("sept", "retention_email"): 0.8}
    assert found.note == (
        "'retention_email' is priced at the cost each campaign paid: 0.60 a contact (the plan "
        "as of 2025-06-30 that campaign 'june' was drawn from); campaign 'sept' at the 0.80 a "
        "contact of the latest plan, as campaign 'sept' names no plan"
    )
    pooled, overlaps = pool_campaigns(campaigns)
    assert pooled is not None
    report = campaign_report(
        with_campaign_names(pooled, campaigns, overlaps), latest, paid=found.paid, n_boot=10
    )
    assert report.filter(pl.col("segment") == ALL_SEGMENTS)["cost"].item() == pytest.approx(76.2)


def test_a_real_offer_its_plans_gave_is_not_called_a_misspelling() -> None:
    """qa44 L2: an offer the latest plan lacks, which the plans its campaigns were drawn from
    gave, unpriced for a reason said beside it (here a campaign naming no plan), was asked "is
    it 'retention_call'?" on the page and told to record its campaign again by the report: no
    such hint for an offer a plan gave. A misspelt one no plan gave keeps it."""
    latest, infos, drawn = _two_plans_at_two_costs()
    dropped = latest.model_copy(update={"offers": latest.offers[1:]})  # retention_call alone
    june = pl.DataFrame(
        {"customer_id": ["J0", "J1"], "offer": "retention_email", "control": [False, True]}
    )
    wave = june.with_columns(customer_id=pl.Series(["W0", "W1"]))
    no_plan = CampaignInfo(date(2025, 9, 30), "wave3", 2, "w.csv", "2025-10-01", Path("w"), None)
    campaigns = {"june": june, "wave3": wave}
    found = drawn_costs(campaigns, [infos[0], no_plan], drawn, dropped)
    assert found.declined == {"retention_email": "campaign 'wave3' names no plan"}
    assert found.planned == frozenset({"retention_email"})
    said = unpriced_offers(
        campaigns, dropped, "the plan X", found.priced, found.declined, found.planned
    )
    assert said is not None and "is it" not in said and "recorded again" not in said
    assert said.startswith(
        "offer 'retention_email' (campaigns 'june', 'wave3'; campaign 'wave3' names no plan) is "
        "not in the offers of the plan X"
    )
    # misspelt, in a campaign naming no plan: no plan gave it, the hint stays
    typo = {"wave3": wave.with_columns(offer=pl.lit("retention_cal"))}
    found = drawn_costs(typo, [no_plan], drawn, dropped)
    assert found.planned == frozenset()
    said = unpriced_offers(typo, dropped, "the plan X", found.priced, found.declined, found.planned)
    assert said is not None and "is it 'retention_call'?" in said


def test_the_note_on_customers_the_table_lacks_says_what_each_lacks() -> None:
    """review40 L4, review41 L6: one sentence said every customer the table lacks had "no
    segment or churn probability of their own ...: unsegmented; last", C0 with a segment of its
    own too. One clause per set of columns the rows lack, with its consequences."""
    day = date(2024, 10, 31)
    outcomes = OUTCOMES.head(3).with_columns(  # C0 its own segment; C1 and C2 neither
        segment=pl.Series(["at_risk", None, None]),
        churn_probability=pl.Series([None, None, None], dtype=pl.Float64),
    )
    values = pl.DataFrame(
        {"customer_id": ["C2"], "rfm_segment": ["loyal"], "churn_probability": [0.2]}
    )  # C0 and C1 not in it
    fill = fill_from_values(outcomes, values, day=day)
    assert fill.not_in_values(day, {"segment": "unsegmented", "churn_probability": "last"}) == (
        "1 outcome customer of 3 (C1) has no segment or churn probability of their own and is "
        "not in the value table as of 2024-10-31 (no order up to that day, or customers of "
        "another store): unsegmented; last; 1 outcome customer of 3 (C0) has no churn "
        "probability of their own and is not in the value table as of 2024-10-31 (no order up "
        "to that day, or customers of another store): last"
    )


def test_a_value_table_listing_an_outcome_customer_twice_is_refused() -> None:
    """values28: fill_from_values left-joined the outcomes to the value table by customer_id, so
    a table listing an outcome customer on two rows repeated their outcome row (counted twice in
    the report and the measured rates). It is refused, naming the day and the first such
    customer; a customer repeated whom no outcome names changes nothing, and is let be."""
    day = date(2024, 10, 31)
    values = pl.DataFrame(
        {
            "customer_id": ["C0", "C5", "C1", "C5", "C1", "Z", "Z"],
            "rfm_segment": ["loyal"] * 7,
            "churn_probability": [0.5] * 7,
        }
    )
    with pytest.raises(
        RepeatedCustomersError,
        match=r"^the value table as of 2024-10-31 lists customer 'C5' on more than one row, as it "
        r"does 1 other customer of the outcomes: ",
    ):
        fill_from_values(OUTCOMES, values, day=day)
    once = values.filter(~pl.col("customer_id").is_in(["C1", "C5"]))  # Z twice: no outcome's
    fill = fill_from_values(OUTCOMES.drop("segment"), once, day=day)
    assert fill.outcomes.height == OUTCOMES.height


def test_customers_without_a_segment_measure_no_rate() -> None:
    """plan26: the report's 'unsegmented' cell (customers without an RFM segment: no orders) got
    a measured rate, which no customer of a plan can have: every one has a segment. Segment
    cant_lose without its names is that cell; at_risk keeps its rate of 0.25 / 0.5."""
    unnamed = OUTCOMES.with_columns(
        segment=pl.when(pl.col("segment") == "cant_lose").then(None).otherwise(pl.col("segment"))
    )
    report = campaign_report(unnamed, OFFERS, n_boot=10)
    assert "unsegmented" in report["segment"].to_list()  # still reported
    assert measured_rates(unnamed, OFFERS, min_customers=1) == {
        "ret": {"at_risk": pytest.approx(0.5)}
    }


def test_validation_names_column_and_rows(tmp_path: Path) -> None:
    bad = pl.DataFrame(
        {
            "customer_id": ["C1", "C2", "C2", "C4"],
            "offer": ["ret", "ret", "ret", None],
            "control": ["true", "maybe", "0", "1"],
            "responded": ["1", "0", "0", "0"],
            "ordered": ["yes", "no", "no", "no"],
            "revenue": ["10", "-5", "x", "0"],
        }
    )
    with pytest.raises(CampaignOutcomesError) as info:
        validate_outcomes(bad, "outcomes.csv")
    text = str(info.value)
    assert text.startswith("outcomes.csv: ")
    assert "column offer: empty at row 4" in text
    assert "column control: not true or false at row 2" in text
    assert "column revenue: not a number at row 3" in text
    assert "column revenue: negative at row 2" in text
    assert "customer listed twice in one campaign at rows 2, 3" in text
    with pytest.raises(CampaignOutcomesError, match=r"missing 1 required column: revenue$"):
        validate_outcomes(bad.drop("revenue"))
    # the sample's events or customers recorded by mistake: said what they are
    events = pl.DataFrame({"customer_id": ["c1"], "ts": ["2024-01-01"], "event_type": ["visit"]})
    with pytest.raises(CampaignOutcomesError) as info:
        validate_outcomes(events, "events.parquet")
    assert str(info.value) == (
        "events.parquet: missing 5 required columns: offer, control, responded, ordered, revenue; "
        "it has ts, event_type: events (the --events of guanxi train, score, value and cycle), "
        "not outcomes"
    )
    customers = pl.DataFrame({"customer_id": ["c1"], "region": ["north"]})
    with pytest.raises(CampaignOutcomesError) as info:
        validate_outcomes(customers, "customers.parquet")
    assert str(info.value).endswith(
        "it has region: customers (the --customers of guanxi train, score, value and cycle), "
        "not outcomes"
    )
    path = tmp_path / "outcomes.csv"
    OUTCOMES.write_csv(path)
    read = read_outcomes(path)
    assert read["control"].dtype == pl.Boolean
    assert read.drop("churn_probability").equals(OUTCOMES.drop("churn_probability"))
    with pytest.raises(CampaignOutcomesError, match="cannot read the file"):
        read_outcomes(tmp_path / "missing.csv")


def test_revenue_without_an_order_and_a_margin_above_the_revenue_are_refused() -> None:
    """qa45 #5: rows that contradict themselves were recorded without a word: revenue above 0
    where ordered is false (the mirror of an order without revenue, refused), and a margin above
    its row's revenue (swapped or mis-scaled columns), which the report then counted as an
    incremental margin above the revenue. Both are refused naming the column and rows; a revenue
    of 0 without an order, a margin equal to the revenue or below 0 (a loss) are not."""
    bad = OUTCOMES.with_columns(
        revenue=pl.Series([30.0, 30, 30, 55, 30, 0, 0, 60, 0, 12.5]),
        margin=pl.Series([10.0, 31, 10, 0, 10, 0, 0, 60, 0, 0]),
    )
    with pytest.raises(CampaignOutcomesError) as info:
        validate_outcomes(bad, "outcomes.csv")
    assert str(info.value) == (
        "outcomes.csv: column revenue: above 0 at rows 4, 10, where ordered is false (no order, "
        "no revenue: is the ordered or the revenue column wrong?); column margin: above the "
        "row's revenue at row 2 (a margin is part of the revenue: are the columns swapped or "
        "mis-scaled?)"
    )
    many = OUTCOMES.with_columns(margin=pl.col("revenue") * 2 + 1)  # every row
    with pytest.raises(CampaignOutcomesError) as info:
        validate_outcomes(many, "outcomes.csv")
    assert str(info.value) == (  # review47 L4: an order-less row's margin is said as such
        "outcomes.csv: column margin: above 0 at rows 4, 6, 7, 9, 10, where ordered is false (no "
        "order, no margin: is the ordered or the margin column wrong?); column margin: above "
        "the row's revenue at rows 1, 2, 3, 5, 8 (a margin is part of the revenue: are the "
        "columns swapped or mis-scaled?)"
    )
    once = OUTCOMES.with_columns(  # review47 L3: a wrong revenue is said, not its margin too
        revenue=pl.Series([-10.0, 30, 30, 5, 30, 0, 0, 60, 0, 0]),
        margin=pl.Series([0.0, 10, 10, 5, 10, 0, 0, 20, 0, 0]),
    )
    with pytest.raises(CampaignOutcomesError) as info:
        validate_outcomes(once, "outcomes.csv")
    assert str(info.value) == (
        "outcomes.csv: column revenue: negative at row 1; column revenue: above 0 at row 4, where "
        "ordered is false (no order, no revenue: is the ordered or the revenue column wrong?)"
    )
    fine = OUTCOMES.with_columns(  # review47 L2: a margin one rounding step above is a sum
        revenue=pl.Series([0.3, 30, 30, 0, 30, 0, 0, 60, 0, 0]),
        margin=pl.Series([0.1 + 0.2, -5, 10, 0, 10, 0, -1, 60, 0, 0]),
    )
    assert 0.1 + 0.2 > 0.3
    assert validate_outcomes(fine).height == OUTCOMES.height
    assert validate_outcomes(OUTCOMES.drop("margin")).height == OUTCOMES.height


def test_a_segment_that_is_no_rfm_segment_is_refused_with_its_rows_and_the_nearest_name() -> None:
    """loop27: the outcomes' own segment names were not checked against the RFM segments, as the
    offers file's are: a campaign recorded with segment "A" or "at_rsk" measured rates under a
    name no customer of a plan has, which applied to nobody, without a word."""
    bad = OUTCOMES.with_columns(
        segment=pl.Series(["A", "A", "at_rsk", *["at_risk"] * 3, "Cant_Lose", None, *["A"] * 2])
    )
    with pytest.raises(CampaignOutcomesError) as info:
        validate_outcomes(bad, "outcomes.csv")
    assert str(info.value) == (
        "outcomes.csv: column segment: no RFM segment is called 'A' (rows 1, 2, 9, 10), "
        "'at_rsk' (row 3; is it 'at_risk'?), 'Cant_Lose' (row 7; is it 'cant_lose'?); the value "
        "table's RFM segments are champions, loyal, potential_loyalist, new, promising, "
        "need_attention, about_to_sleep, at_risk, cant_lose, hibernating, lost: a rate measured "
        "under another name applies to no customer (leave it empty to take the value table's; "
        "the campaign report and page take the segment the plan the campaign was drawn from "
        "gives the customer, when that plan holds every such row)"
    )
    many = OUTCOMES.with_columns(segment=pl.Series([f"S{i}" for i in range(10)]))
    with pytest.raises(CampaignOutcomesError, match=r"'S4' \(row 5\) and 5 more names; the"):
        validate_outcomes(many, "outcomes.csv")
    known = bad.filter(pl.col("segment").fill_null("at_risk") == "at_risk")
    assert validate_outcomes(known)["segment"].to_list() == ["at_risk"] * 3 + [None]  # empty: none


def test_the_value_table_of_the_outcomes_is_the_plans_days_else_the_latest() -> None:
    """loop27: guanxi campaign report fell back to the latest value table when the latest plan's
    day had none, the campaign page filled nothing; both now call outcome_values_day."""
    sept, october, november = date(2024, 9, 30), date(2024, 10, 31), date(2024, 11, 30)
    assert outcome_values_day([], october) is None
    assert outcome_values_day([sept, october], None) == (october, "the latest, as no plan is kept")
    assert outcome_values_day([sept, october], sept) == (sept, "the latest plan's day")
    assert outcome_values_day([sept, october], november) == (
        october,
        "the latest, as the latest plan's day, 2024-11-30, has none",
    )
    # review37: the day of the plan a campaign was drawn from, whose rows' segments key the
    # expected ROI set beside it, said as such
    drawn = "the day of the plan the campaign was drawn from"
    assert outcome_values_day([sept, october], sept, drawn) == (sept, drawn)
    assert outcome_values_day([october], sept, drawn) == (
        october,
        "the latest, as the day of the plan the campaign was drawn from, 2024-09-30, has none",
    )


EARLY, LATE = date(2024, 10, 1), date(2024, 10, 31)
"""The days of the two plans of :func:`_campaigns_of_two_plans`."""


def _campaigns_of_two_plans(
    tmp_path: Path,
) -> tuple[Store, dict[str, pl.DataFrame], list[Overlap], list[CampaignInfo], DrawnPlans]:
    """Campaigns 'a' (plan of 31 Oct), 'b' (plan of 1 Oct) and 'c' (the same rows as 'a') in a
    store with a value table of each day: the store, the campaigns, their overlaps, their infos
    and the plans drawn from (every plan used)."""
    early, late = EARLY, LATE
    store = Store(tmp_path)
    ids = ["A1", "A2", "B1", "B2"]
    for day in (early, late):
        store.write_values(
            pl.DataFrame({"customer_id": ids, "rfm_segment": ["table"] * 4}),
            day,
            horizon_days=365,
            discount_rate=0.1,
            basis="revenue",
            fit={},
        )
    a = pl.DataFrame(
        {"customer_id": ["A1", "A2"], "offer": ["ret", "ret"], "segment": ["own", None]}
    )
    b = pl.DataFrame({"customer_id": ["B1", "B2"], "offer": ["ret", "ret"]})
    campaigns = {"a": a, "b": b, "c": a}
    _, overlaps = pool_campaigns(campaigns)
    plans = {
        late: pl.DataFrame({"customer_id": ["A1", "A2"], "segment": ["late", "late"]}),
        early: pl.DataFrame({"customer_id": ["B1", "B2"], "segment": ["early", "early"]}),
    }
    drawn = DrawnPlans(
        (early, late), 3, pl.concat(plans.values()), "", as_drawn=plans
    )  # as drawn_plans gives them, every plan used
    infos = [
        CampaignInfo(
            as_of=late, name=n, rows=2, source=f"{n}.csv", created="", path=Path(n), plan=day
        )
        for n, day in (("a", late), ("b", early), ("c", early))
    ]
    return store, campaigns, overlaps, infos, drawn


def test_campaigns_of_several_plans_are_each_segmented_by_their_own(tmp_path: Path) -> None:
    """Campaigns drawn from plans of two days were all segmented by the latest
    plan's day. ``segment_campaigns`` fills each plan's campaigns by that plan, keeps the pool's
    order and leaves out a duplicate found on the outcomes as recorded (before any fill).

    'a' (plan of 31 Oct: A1, A2 'late'), its A1 with a segment of its own, 'own'; 'b' (plan of
    1 Oct: B1, B2 'early'); 'c' the same rows as 'a', left out. The value tables of both days
    call everyone 'table': the plans hold every row without a segment, so their rows give it."""
    early, late = EARLY, LATE
    store, campaigns, overlaps, infos, drawn = _campaigns_of_two_plans(tmp_path)
    b, plans = campaigns["b"], drawn.as_drawn
    segmented = segment_campaigns(store, campaigns, overlaps, infos, drawn, late, ("segment",))
    assert segmented.outcomes.columns == ["customer_id", "offer", "segment"]
    assert segmented.outcomes.rows() == [
        ("A1", "ret", "own"),
        ("A2", "ret", "late"),
        ("B1", "ret", "early"),
        ("B2", "ret", "early"),
    ]
    assert [(part.names, part.plan) for part in segmented.parts] == [
        (("b",), early),
        (("a",), late),
    ]
    said = [part.read.said() for part in segmented.parts if isinstance(part.read, OutcomeValues)]
    assert said == [
        "segments from the rows of the plan as of 2024-10-01 campaign 'b' was drawn from, which "
        "holds every one of the 2 outcome rows without one of their own",
        "segments from the rows of the plan as of 2024-10-31 campaign 'a' was drawn from, which "
        "holds the 1 outcome row without one of their own",
    ]
    # one plan (or plans not used): every campaign as one, by the latest plan's day as before
    only = drawn._replace(days=(early,), campaigns=1, rows=plans[early])
    one = segment_campaigns(store, {"b": b}, [], infos[1:2], only, late, ("segment",))
    assert [part.plan for part in one.parts] == [None]
    assert one.outcomes["segment"].to_list() == ["early", "early"]
    read = one.parts[0].read
    assert isinstance(read, OutcomeValues) and read.said().startswith(
        "segments from the rows of the plan as of 2024-10-01 the campaign was drawn from"
    )


def test_segmented_campaigns_carry_no_private_column(tmp_path: Path) -> None:
    """segment_campaigns numbered each pooled row in a private ``_row`` column to put the plans'
    groups back in order, and left it in each part's filled outcomes (``read.fill.outcomes``):
    no frame a caller gets holds a column of its own making."""
    store, campaigns, overlaps, infos, drawn = _campaigns_of_two_plans(tmp_path)
    several = segment_campaigns(store, campaigns, overlaps, infos, drawn, LATE, ("segment",))
    only = drawn._replace(days=(EARLY,), campaigns=1, rows=drawn.as_drawn[EARLY])
    one = segment_campaigns(store, {"b": campaigns["b"]}, [], infos[1:2], only, LATE, ("segment",))
    for segmented in (several, one):
        reads = [part.read for part in segmented.parts]
        assert reads and all(isinstance(read, OutcomeValues) for read in reads)
        frames = [
            segmented.outcomes,
            *(part.outcomes for part in segmented.parts),
            *(read.fill.outcomes for read in reads if isinstance(read, OutcomeValues)),
            *(read.fill.own for read in reads if isinstance(read, OutcomeValues)),
        ]
        assert [c for frame in frames for c in frame.columns if c.startswith("_")] == []
    # the parts' fills, as their notes count them: b's two rows from its plan, a's one
    fills = [part.read.fill for part in several.parts if isinstance(part.read, OutcomeValues)]
    assert [f.outcomes.rows() for f in fills] == [
        [("B1", "ret", "early"), ("B2", "ret", "early")],
        [("A1", "ret", "own"), ("A2", "ret", "late")],
    ]


def test_outcome_values_fills_from_the_picked_table_read_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """values28: guanxi campaign report and the campaign page each picked the value table's day,
    read it with the same refusal handling and filled the outcomes, in two near-copies; one
    function now does it for both, and says which table, why, or the store's refusal."""
    day = date(2024, 10, 31)
    outcomes = OUTCOMES.with_columns(segment=pl.Series(["at_risk"] * 9 + [None]))
    keyed = Store(tmp_path, b"k" * 32)
    assert outcome_values(keyed, outcomes, Segmenting(None)) is None  # no value table
    values = pl.DataFrame(
        {"customer_id": ["C9"], "rfm_segment": ["loyal"], "churn_probability": [0.4]}
    )
    Store(tmp_path).write_values(
        values, day, horizon_days=365, discount_rate=0.1, basis="revenue", fit={}
    )  # unsigned
    refused = outcome_values(keyed, outcomes, Segmenting(day))
    assert isinstance(refused, RefusedValues) and refused.day == day
    assert isinstance(refused.error, UnsignedTableError)
    keyed.write_values(values, day, horizon_days=365, discount_rate=0.1, basis="revenue", fit={})
    read = outcome_values(keyed, outcomes, Segmenting(None), ("segment",))
    assert isinstance(read, OutcomeValues)
    assert (read.day, read.why) == (day, "the latest, as no plan is kept")
    assert read.fill.outcomes["segment"].to_list() == ["at_risk"] * 9 + ["loyal"]
    assert read.said() == (
        "segments from the value table as of 2024-10-31 (the latest, as no plan is kept): for 1 "
        "of the 1 outcome row without one of their own"
    )
    assert read.not_in_values({"segment": "unsegmented"}) is None
    # review40 L6: the one plan drawn from (DrawnPlans.segmenting) reaches the fill and its note
    rows = pl.DataFrame({"customer_id": ["C9"], "segment": ["need_attention"]})
    drawn = DrawnPlans((day,), 1, rows, "")
    read = outcome_values(keyed, outcomes, drawn.segmenting(None), ("segment",))
    assert isinstance(read, OutcomeValues)
    assert read.fill.outcomes["segment"].to_list() == ["at_risk"] * 9 + ["need_attention"]
    assert read.said() == (
        "segments from the rows of the plan as of 2024-10-31 the campaign was drawn from, which "
        "holds the 1 outcome row without one of their own"
    )
    monkeypatch.setattr(Store, "read_values", lambda self, as_of: None)  # removed since listed
    assert outcome_values(keyed, outcomes, Segmenting(day)) is None


def test_unknown_offer() -> None:
    with pytest.raises(ValueError, match="offer 'nope' of the outcomes is not in the offers file"):
        campaign_report(OUTCOMES.with_columns(offer=pl.lit("nope")), OFFERS)


def _wave_two() -> pl.DataFrame:
    """A second wave of ``ret``: C0-C2 (segment at_risk) contacted again, none responds; C10 and C11
    new, held out, none responds."""
    return validate_outcomes(
        pl.DataFrame(
            {
                "customer_id": ["C0", "C1", "C2", "C10", "C11"],
                "offer": ["ret"] * 5,
                "segment": ["at_risk"] * 5,
                "control": [False, False, False, True, True],
                "responded": [False] * 5,
                "ordered": [False] * 5,
                "revenue": [0.0] * 5,
                "margin": [0.0] * 5,
                "churn_probability": [0.5] * 5,
            }
        )
    )


def test_one_outcome_file_recorded_under_two_names_counts_once() -> None:
    """newuser19 F11: the same outcomes recorded as spring01 and springtf were counted twice in
    the report and in the rates guanxi target plans with, without a word."""
    once = validate_outcomes(OUTCOMES)
    again = once.reverse().with_columns(campaign=pl.lit("springtf"))  # order and name differ
    assert duplicate_of(again, {"spring01": once}) == "spring01"
    assert duplicate_of(_wave_two(), {"spring01": once}) is None
    pooled, overlaps = pool_campaigns({"springtf": again, "spring01": once})
    assert pooled is not None and pooled.height == 10
    assert overlaps == [Overlap("spring01", "springtf", 10, duplicate=True)]
    assert [o.note for o in overlaps] == [
        "campaigns 'spring01' and 'springtf' hold the same outcomes (10 customers): counted "
        "once, as 'spring01'"
    ]
    total = campaign_report(pooled, OFFERS, n_boot=50).filter(pl.col("segment") == ALL_SEGMENTS)
    assert total.select("treated", "control").row(0) == (6, 4)  # 12 and 8 when counted twice
    assert measured_rates(pooled, OFFERS, min_customers=1) == measured_rates(
        once, OFFERS, min_customers=1
    )


def test_two_waves_of_an_offer_count_in_both_and_are_named() -> None:
    first = validate_outcomes(OUTCOMES)
    win_back = _wave_two().with_columns(offer=pl.lit("wb"))  # other offer: not an overlap
    pooled, overlaps = pool_campaigns({"may": _wave_two(), "april": first, "june": win_back})
    assert overlaps == [Overlap("april", "may", 3, "ret")]
    assert [o.note for o in overlaps] == [
        "campaigns 'april' and 'may' share 3 customers of offer 'ret': they count in both, as "
        "two contacts (if it is one campaign recorded twice, record it once)"
    ]
    assert pooled is not None and pooled.height == 20
    a = campaign_report(pooled, OFFERS, n_boot=50).filter(
        (pl.col("offer") == "ret") & (pl.col("segment") == "at_risk")
    )
    # segment at_risk: treated 4 + 3 (3 respond, all in april), control 2 + 2 (1 responds)
    row = a.row(0, named=True)
    assert (row["treated"], row["control"]) == (7, 4)
    assert row["incremental_response"] == pytest.approx(3 / 7 - 1 / 4)
    assert pool_campaigns({}) == (None, [])


def test_an_offer_named_like_a_campaign_is_not_an_overlap_of_that_campaign() -> None:
    """record picked its notes by looking for the campaign's name, quoted, in each note's text:
    recording a campaign named like an offer of two other campaigns' overlap showed that note."""
    first = validate_outcomes(OUTCOMES).with_columns(offer=pl.lit("spring"))
    second = _wave_two().with_columns(offer=pl.lit("spring"))
    other = _wave_two().with_columns(
        offer=pl.lit("wb"), customer_id=pl.lit("Z") + pl.col("customer_id")
    )
    _, overlaps = pool_campaigns({"april": first, "may": second, "spring": other})
    assert overlaps == [Overlap("april", "may", 3, "spring")]
    assert "'spring'" in overlaps[0].note  # the offer's name, quoted as the campaign's would be
    assert not overlaps[0].involves("spring")
    assert overlaps[0].involves("april") and overlaps[0].involves("may")


def test_a_misnamed_column_or_another_separator_is_named(tmp_path: Path) -> None:
    """loop23: `responsed`, `Customer_ID` or ` control` and a semicolon or tab file were said as
    the required columns missing alone; the file's near column and its separator are named."""
    typo = OUTCOMES.rename({"responded": "responsed", "customer_id": "Customer_ID"})
    with pytest.raises(CampaignOutcomesError) as info:
        validate_outcomes(typo.rename({"control": " control"}), "outcomes.csv")
    assert str(info.value) == (
        "outcomes.csv: missing 3 required columns: customer_id, control, responded; "
        "the file has 'Customer_ID': rename it customer_id (names must match exactly); "
        "the file has ' control': rename it control (names must match exactly); "
        "the file has 'responsed': rename it responded (names must match exactly)"
    )
    for separator, said in ((";", "semicolons"), ("\t", "tabs")):
        path = tmp_path / "outcomes.csv"
        OUTCOMES.write_csv(path, separator=separator)
        with pytest.raises(CampaignOutcomesError) as info:
            read_outcomes(path)
        assert str(info.value) == (
            f"{path}: missing 6 required columns: customer_id, offer, control, responded, "
            f"ordered, revenue; its columns are separated by {said}, not commas: save it as a "
            "comma CSV"
        )
    # semicolons with decimal commas split the rows, not the header: Polars said ragged lines
    money = OUTCOMES.with_columns(pl.col("revenue").cast(pl.String).str.replace(r"\.", ","))
    money.write_csv(path, separator=";")
    with pytest.raises(CampaignOutcomesError) as info:
        read_outcomes(path)
    assert str(info.value) == (
        f"{path}: its columns are separated by semicolons, not commas: save it as a comma CSV"
    )


def test_an_optional_column_named_otherwise_is_refused_not_passed_through() -> None:
    """polish30: `Margin` or `Churn Probability` passed through unread like any other column:
    the campaign was recorded, its margins and churn probabilities never used (the report asked
    for --margin-rate, the rates took the value table's). Other columns still pass through."""
    named = OUTCOMES.rename({"margin": "Margin", "churn_probability": "Churn Probability"})
    with pytest.raises(CampaignOutcomesError) as info:
        validate_outcomes(named.with_columns(group=pl.lit("a")), "outcomes.csv")
    assert str(info.value) == (
        "outcomes.csv: column 'Margin': not read, as only the exact names are; rename it margin, "
        "the optional column it looks like (names must match exactly); column 'Churn "
        "Probability': not read, as only the exact names are; rename it churn_probability, the "
        "optional column it looks like (names must match exactly)"
    )
    kept = validate_outcomes(OUTCOMES.with_columns(Segment=pl.lit("x"), group=pl.lit("a")))
    assert kept["Segment"].to_list() == ["x"] * 10  # segment is there: Segment is another column


def test_a_row_with_more_fields_than_the_header_is_named(tmp_path: Path) -> None:
    """polish30: a value with a comma and no quotes was said as Polars' "found more fields than
    defined in 'Schema'", with its advice to truncate ragged lines and no row."""
    path = tmp_path / "outcomes.csv"
    OUTCOMES.write_csv(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].replace("at_risk", "at_risk,maybe")
    path.write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")  # a BOM too
    with pytest.raises(CampaignOutcomesError) as info:
        read_outcomes(path)
    assert str(info.value) == (
        f"{path}: cannot read the file: row 3 has 10 fields where the header has 9 (a value "
        "with a comma, not in quotes?)"
    )


def test_an_outcomes_column_given_twice_in_the_header_is_refused(tmp_path: Path) -> None:
    """polish30: Polars read a second `revenue` as `revenue_duplicated_0`, which passed through
    unread: the first was recorded, whichever was right."""
    path = tmp_path / "outcomes.csv"
    OUTCOMES.with_columns(
        pl.col("revenue").alias("revenue_2"), pl.col("margin").alias("margin_2")
    ).write_csv(path)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("revenue_2", "revenue").replace("margin_2", "margin"), "utf-8")
    with pytest.raises(CampaignOutcomesError) as info:
        read_outcomes(path)
    assert str(info.value) == (
        f"{path}: column revenue is given twice (columns 7, 10): only one can be read, so the "
        "file is refused rather than one kept unseen; column margin is given twice (columns 8, "
        "11): only one can be read, so the file is refused rather than one kept unseen"
    )


@pytest.mark.parametrize("separator", [",", ";"])
def test_a_spreadsheets_separator_line_is_named(tmp_path: Path, separator: str) -> None:
    """polish30: Excel's `sep=,` first line was read as the header: the file was said to have a
    row of 9 fields where the header has 2 (`sep=;`: to miss every required column)."""
    path = tmp_path / "outcomes.csv"
    OUTCOMES.write_csv(path, separator=separator)
    path.write_text(f"sep={separator}\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(CampaignOutcomesError) as info:
        read_outcomes(path)
    comma = "" if separator == "," else ", and save it as a comma CSV"
    assert str(info.value) == (
        f"{path}: cannot read the file: its first line, 'sep={separator}', is a spreadsheet's "
        f"separator line, not the header: remove it (the column names must be the first "
        f"line){comma}"
    )


def test_a_required_column_written_with_spaces_is_named() -> None:
    """polish30: `Customer ID` (a CRM export's heading) was said as customer_id missing alone,
    where `Customer_ID` was named; both are the column written otherwise."""
    with pytest.raises(CampaignOutcomesError) as info:
        validate_outcomes(OUTCOMES.rename({"customer_id": "Customer ID"}), "outcomes.csv")
    assert str(info.value) == (
        "outcomes.csv: missing 1 required column: customer_id; the file has 'Customer ID': "
        "rename it customer_id (names must match exactly)"
    )


def test_an_id_or_an_offer_with_spaces_around_it_is_refused_with_its_rows() -> None:
    """polish30: a spreadsheet's padding (`C3 `, ` ret`) was recorded as it stood: the id
    matched no customer of any plan or value table, the offer no offer; a note alone said so."""
    padded = OUTCOMES.with_columns(
        customer_id=pl.col("customer_id").str.replace("C3", "C3 "),
        offer=pl.col("offer").str.replace(r"^ret$", " ret"),
    )
    with pytest.raises(CampaignOutcomesError) as info:
        validate_outcomes(padded, "outcomes.csv")
    assert str(info.value).split("; ") == [
        "outcomes.csv: column customer_id: spaces around the value at row 4: 'C3 ' (a "
        "spreadsheet's padding?), which matches no customer as it stands: remove the spaces",
        "column offer: spaces around the value at rows 1, 2, 3, 4, 5 and 5 more: ' ret' (a "
        "spreadsheet's padding?), which matches no offer as it stands: remove the spaces",
    ]


def test_an_empty_file_a_header_alone_and_a_directory_are_refused_by_name(
    tmp_path: Path,
) -> None:
    """loop23: a header without rows was recorded as a campaign of 0 customers; a directory was
    said as "expanded paths were empty (... glob: true)"."""
    path = tmp_path / "outcomes.csv"
    OUTCOMES.head(0).write_csv(path)
    with pytest.raises(CampaignOutcomesError) as info:
        read_outcomes(path)
    assert str(info.value) == f"{path}: no rows: the header alone, no outcomes to record"
    path.write_text("", encoding="utf-8")
    with pytest.raises(
        CampaignOutcomesError, match=r"outcomes.csv: cannot read the file: it is empty$"
    ):
        read_outcomes(path)
    folder = tmp_path / "october.csv"
    folder.mkdir()
    with pytest.raises(CampaignOutcomesError) as info:
        read_outcomes(folder)
    assert str(info.value) == f"{folder}: cannot read the file: a directory, not an outcomes file"
    with pytest.raises(
        CampaignOutcomesError, match=r"missing.csv: cannot read the file: no such file$"
    ):
        read_outcomes(tmp_path / "missing.csv")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_name_with_a_wildcard_is_read_as_that_file_alone(
    tmp_path: Path, suffix: str
) -> None:
    """loop23: Polars expanded `a*.csv` as a glob, reading every matching file as one campaign
    (refused as customers listed twice, or worse recorded)."""
    path = tmp_path / f"a*{suffix}"
    other = tmp_path / f"another{suffix}"
    for file, frame in ((path, OUTCOMES), (other, OUTCOMES.head(3))):
        frame.write_parquet(file) if suffix == ".parquet" else frame.write_csv(file)
    read = read_outcomes(path)
    assert read.drop("churn_probability").equals(OUTCOMES.drop("churn_probability"))


def test_flags_not_true_or_false_name_their_values_and_empty_ids_are_not_duplicates() -> None:
    """loop23: a Y/N flag was refused without saying what was found or what is read; every row
    without a customer id was also "a customer listed twice"; a duplicate named no customer."""
    flags = OUTCOMES.with_columns(
        control=pl.when("control").then(pl.lit("Y")).otherwise(pl.lit("N"))
    )
    with pytest.raises(CampaignOutcomesError) as info:
        validate_outcomes(flags, "outcomes.csv")
    assert str(info.value) == (
        "outcomes.csv: column control: not true or false at rows 1, 2, 3, 4, 5 and 5 more: "
        "'N', 'Y' (true/false, 1/0 or yes/no)"
    )
    no_ids = OUTCOMES.with_columns(customer_id=pl.lit(None, pl.String))
    with pytest.raises(CampaignOutcomesError) as info:
        validate_outcomes(no_ids, "outcomes.csv")
    assert str(info.value) == (
        "outcomes.csv: column customer_id: empty at rows 1, 2, 3, 4, 5 and 5 more"
    )
    twice = pl.concat([OUTCOMES, OUTCOMES.slice(2, 1)])
    with pytest.raises(CampaignOutcomesError) as info:
        validate_outcomes(twice, "outcomes.csv")
    assert str(info.value) == (
        "outcomes.csv: customer listed twice in one campaign at rows 3, 11 (customer_id C2)"
    )
    # every spelling the docs promise is read
    for true, false in (("yes", "no"), ("1", "0"), ("TRUE", "False")):
        spelt = OUTCOMES.with_columns(
            control=pl.when("control").then(pl.lit(true)).otherwise(pl.lit(false))
        )
        assert validate_outcomes(spelt)["control"].equals(OUTCOMES["control"])


def test_a_group_column_in_words_is_named_when_control_is_missing() -> None:
    """walk28: a CRM export's ``group`` column of ``control`` and ``treatment`` was said only as
    "missing 1 required column: control"."""
    grouped = OUTCOMES.with_columns(
        group=pl.when("control").then(pl.lit("Control")).otherwise(pl.lit("treatment"))
    ).drop("control")
    with pytest.raises(CampaignOutcomesError) as info:
        validate_outcomes(grouped, "outcomes.csv")
    assert str(info.value) == (
        "outcomes.csv: missing 1 required column: control; the file's column 'group' holds "
        "'control', 'treatment': add a control column, true where it is 'control' (held out, "
        "not contacted) and false elsewhere"
    )
    with pytest.raises(CampaignOutcomesError) as info:  # no such column: nothing more said
        validate_outcomes(OUTCOMES.drop("control"), "outcomes.csv")
    assert str(info.value) == "outcomes.csv: missing 1 required column: control"


def test_nan_or_an_infinity_in_a_number_column_is_not_a_number(tmp_path: Path) -> None:
    """walk28: a CSV's ``NaN`` or ``inf`` read as a float and was recorded: one NaN margin made
    the report's incremental margin and ROI of its offer and segment ``nan``, and ``guanxi
    campaign uplift`` a traceback (XGBoost: "Label contains NaN")."""
    text = OUTCOMES.with_columns(pl.col("revenue", "margin").cast(pl.String)).with_columns(
        revenue=pl.when(pl.int_range(pl.len()) == 1).then(pl.lit("inf")).otherwise("revenue"),
        margin=pl.when(pl.int_range(pl.len()) == 4).then(pl.lit("NaN")).otherwise("margin"),
    )
    path = tmp_path / "outcomes.csv"
    text.write_csv(path)
    with pytest.raises(CampaignOutcomesError) as info:
        read_outcomes(path)
    assert str(info.value) == (
        f"{path}: column revenue: not a number at row 2: 'inf'; "
        "column margin: not a number at row 5: 'NaN'"
    )
    floats = OUTCOMES.with_columns(
        churn_probability=pl.when(pl.int_range(pl.len()) == 0)
        .then(float("nan"))
        .otherwise("churn_probability")
    )
    with pytest.raises(CampaignOutcomesError) as info:
        validate_outcomes(floats, "outcomes.parquet")
    assert str(info.value) == (
        "outcomes.parquet: column churn_probability: not a number at row 1: 'nan'"
    )


def test_a_date_or_a_flag_in_a_number_column_is_not_a_number() -> None:
    """polish30: a Parquet revenue column of dates was recorded as their days since 1970
    (20,089.0 for 2025-01-01), a margin column of flags as 1.0 and 0.0."""
    typed = OUTCOMES.with_columns(
        revenue=pl.lit(date(2025, 1, 1)), margin=pl.col("responded"), churn_probability=None
    )
    with pytest.raises(CampaignOutcomesError) as info:
        validate_outcomes(typed, "outcomes.parquet")
    assert str(info.value).split("; ") == [
        "outcomes.parquet: column revenue: not a number at rows 1, 2, 3, 4, 5 and 5 more: "
        "'2025-01-01'",
        "column margin: not a number at rows 1, 2, 3, 4, 5 and 5 more: 'True', 'False'",
    ]


def test_a_spreadsheet_json_or_latin_1_file_is_named_as_such(tmp_path: Path) -> None:
    """loop23: an .xlsx or .json export was read as CSV and said to miss every required column;
    a Latin-1 CSV was said "invalid utf-8 sequence", naming no row."""
    # polish30: an offers file was said to have "row 1 of 2 fields where the header has 1"
    for name, said in (
        ("october.xlsx", "an Excel workbook"),
        ("october.json", "JSON"),
        ("offers.yaml", "YAML (an offers file?)"),
    ):
        path = tmp_path / name
        OUTCOMES.write_json(path)  # the bytes do not matter: the suffix says what it is
        with pytest.raises(CampaignOutcomesError) as info:
            read_outcomes(path)
        assert str(info.value) == (
            f"{path}: cannot read the file: {said}, not CSV or Parquet; save the outcomes as CSV"
        )
    path = tmp_path / "october.csv"
    text = OUTCOMES.with_columns(customer_id=pl.col("customer_id").str.replace("C3", "Ç3"))
    path.write_bytes(text.write_csv().encode("latin-1"))
    with pytest.raises(CampaignOutcomesError) as info:
        read_outcomes(path)
    assert str(info.value) == (
        f"{path}: cannot read the file: not UTF-8 text at row 4 (Latin-1 or Windows-1252 from a "
        "spreadsheet?); save it as CSV UTF-8"
    )
    path.write_bytes(text.write_csv().encode("utf-8"))
    assert read_outcomes(path)["customer_id"][3] == "Ç3"


def test_a_customer_given_two_offers_in_one_campaign_is_refused_as_that() -> None:
    """loop24: a customer with two offers in one campaign was refused as "listed twice", as if a
    row were repeated. A campaign gives a customer one offer, as a plan does (one response
    cannot be credited to two offers, which the report, the rates and the uplift models would
    each count): refused as two offers, naming them, with the way to record two campaigns; the
    same customer with one offer in each of two campaigns of one file is no problem."""
    two = pl.concat([OUTCOMES, OUTCOMES.slice(2, 1).with_columns(offer=pl.lit("wb"))])
    with pytest.raises(CampaignOutcomesError) as info:
        validate_outcomes(two, "outcomes.csv")
    assert str(info.value) == (
        "outcomes.csv: customer given two offers in one campaign at rows 3, 11 (customer_id C2: "
        "ret, wb): a campaign gives a customer one offer, as a plan does, and one response "
        "cannot be credited to two; record each offer's rows as a campaign of its own (--name) "
        "if they were two campaigns"
    )
    both = pl.concat([two, OUTCOMES.slice(2, 1)])  # C2's row repeated too: both said
    with pytest.raises(CampaignOutcomesError) as info:
        validate_outcomes(both, "outcomes.csv")
    text = str(info.value)
    assert "customer listed twice in one campaign at rows 3, 12 (customer_id C2)" in text
    assert "customer given two offers in one campaign at rows 3, 11, 12 (customer_id C2: " in text
    waves = two.with_columns(
        campaign=pl.when(pl.int_range(pl.len()) == 10)
        .then(pl.lit("may"))
        .otherwise(pl.lit("april"))
    )
    assert validate_outcomes(waves).height == 11


def _plan_info(rows: int, offers: dict[str, object]) -> PlanInfo:
    return PlanInfo(
        as_of=date(2024, 10, 31),
        rows=rows,
        budget=3.0,
        investment=3.0,
        expected_value=1.0,
        gap=0.0,
        method="exact",
        reason=None,
        offers=offers,
        summaries={},
        uplift=None,
        created="2024-10-31T00:00:00+00:00",
        path=Path("as_of=2024-10-31.parquet"),
    )


def test_a_stored_plans_offers_must_agree_with_its_checked_rows() -> None:
    """The metadata is read apart from the checked rows: its offers and count must be theirs."""
    rows = pl.DataFrame({"offer": ["ret", "wb"], "channel": ["email"] * 2, "cost": [1.0, 2.0]})
    kept = OFFERS.model_dump(mode="json")
    assert stored_plan_offers(_plan_info(2, kept), rows) == OFFERS
    with pytest.raises(TamperedTableError, match="its metadata counts 3 rows, its checked rows"):
        stored_plan_offers(_plan_info(3, kept), rows)
    other = rows.with_columns(offer=pl.lit("xs"))
    with pytest.raises(TamperedTableError, match=r"give offer 'xs' by email at 1 .* no such offer"):
        stored_plan_offers(_plan_info(2, kept), other)
    dearer = rows.with_columns(cost=pl.lit(100.0))
    with pytest.raises(TamperedTableError, match=r"at 100 a contact, its offers say email at 1$"):
        stored_plan_offers(_plan_info(2, kept), dearer)
    one = rows.head(1)
    assert stored_plan_offers(_plan_info(1, kept), one) == OFFERS  # an offer nobody got: fine
    bad = {"offers": [{"name": "ret"}]}
    with pytest.raises(TamperedTableError, match="its offers are not valid offers"):
        stored_plan_offers(_plan_info(2, bad), rows)


def test_the_expected_roi_names_the_campaigns_its_plan_knew() -> None:
    """light35: the campaign report set the latest plan's expected ROI beside each campaign's
    realised one without a word when that plan was made after the campaign, from the rates it
    measured: the expectation read as a forecast that had held."""

    def campaign(name: str, as_of: date, created: str) -> CampaignInfo:
        return CampaignInfo(
            as_of=as_of, name=name, rows=80, source=f"{name}.csv", created=created, path=Path(name)
        )

    plan = _plan_info(2, {})  # as of 2024-10-31, made at midnight
    day = date(2024, 10, 31)
    before = "2024-10-30T12:00:00.500000+00:00"
    known = campaign("september", date(2024, 9, 30), before)
    after = campaign("november", date(2024, 11, 30), before)  # complete after the plan's day
    later = campaign("october", day, "2024-11-02T09:00:00+00:00")  # recorded after the plan
    assert expected_plan_note(plan, [after, later]) is None
    assert expected_plan_note(plan, [known, after, later]) == (
        "the expected ROI is the latest stored plan's, as of 2024-10-31, made after 'september' "
        "(outcomes of 2024-09-30) was recorded: it may plan with the rates that campaign "
        "measured rather than those it was planned with (a recorded campaign does not say which "
        "plan it came from)"
    )
    both = expected_plan_note(plan, [known, campaign("august", day, before)])
    assert both is not None
    assert "'september' (outcomes of 2024-09-30), 'august' (outcomes of 2024-10-31) were" in both
    assert "the rates those campaigns measured rather than those they were planned with" in both


def test_a_campaign_is_drawn_from_the_one_plan_holding_every_contacted_customer() -> None:
    """heavy36: a recorded campaign did not say which plan it came from. The plans that gave
    every contacted customer (C0-C3, C6, C7) their offer are found; nobody contacted is no
    evidence, and a plan holding part of them, or them with another offer, is not one."""
    contacted = ["C0", "C1", "C2", "C3", "C6", "C7"]
    whole = pl.DataFrame({"customer_id": [*contacted, "C9"], "offer": ["ret"] * 7})
    september, october, november = date(2024, 9, 30), date(2024, 10, 31), date(2024, 11, 30)
    others = {september: whole.with_columns(offer=pl.lit("wb")), november: whole.head(3)}
    assert plans_holding(OUTCOMES, {october: whole, **others}) == [october]
    assert plans_holding(OUTCOMES, {november: whole, october: whole}) == [october, november]
    assert plans_holding(OUTCOMES, others) == []
    assert plans_holding(OUTCOMES.filter(pl.col("control")), {october: whole}) == []


def test_the_expected_roi_is_that_of_the_plans_the_campaigns_were_drawn_from() -> None:
    """heavy36: the report and the campaign page set the latest stored plan's expected ROI
    beside every campaign, whichever plan it came from; the plans campaigns name are read and
    used when every one names one still stored as it was, and why not is said otherwise."""
    october, september = date(2024, 10, 31), date(2024, 9, 30)

    def campaign(
        name: str, plan: date | None, created: str = "2024-11-02T09:00:00+00:00"
    ) -> CampaignInfo:
        return CampaignInfo(
            as_of=date(2024, 11, 30),
            name=name,
            rows=10,
            source=f"{name}.csv",
            created=created,
            path=Path(name),
            plan=plan,
        )

    rows = pl.DataFrame({"customer_id": ["C0"], "offer": ["ret"], "expected_value": [9.0]})
    earlier = replace(_plan_info(1, {}), as_of=september, created="2024-09-30T00:00:00+00:00")
    stored = {october: (rows, _plan_info(1, {})), september: (rows.head(0), earlier)}
    reads: list[date] = []

    def read(day: date) -> tuple[pl.DataFrame, PlanInfo] | None:
        reads.append(day)
        return stored.get(day)

    old = campaign("old", None)  # recorded before campaigns kept their plan: today's wording
    assert drawn_plans([old], read) == DrawnPlans((), 1, None, UNSAID_PLAN)
    assert reads == []
    drawn = drawn_plans([campaign("october", october)], read)
    assert drawn.rows is not None and drawn.rows.equals(rows) and drawn.unused == ""
    assert drawn.said() == "the plan as of 2024-10-31 the campaign was drawn from"
    # review37: the one plan used gives the day whose value table segments the outcomes
    its_day = "the day of the plan the campaign was drawn from"
    assert drawn.one() == (october, its_day)
    # whatever the latest plan's day; its rows segment the customers it planned
    assert drawn.segmenting(None) == Segmenting(october, its_day, drawn)
    assert drawn_plans([old], read).one() is None  # the latest plan's day, as before
    assert drawn_plans([old], read).segmenting(october) == Segmenting(october, LATEST_PLAN_DAY)
    both = drawn_plans([campaign("october", october), campaign("september", september)], read)
    assert both.rows is not None and both.rows.equals(rows)
    assert both.said(lambda day: day.strftime("%d %b")) == (
        "the plans as of 30 Sep and 31 Oct the campaigns were drawn from, together"
    )
    # several: each plan's campaigns are segmented by that plan (segment_campaigns)
    assert both.one() is None
    assert both.segmenting(october) == Segmenting(october, LATEST_PLAN_DAY, None)
    said = {
        "campaign 'old' does not say which plan it came from": [campaign("o", october), old],
        "the plan as of 2024-08-31 campaign 'august' was drawn from is no longer stored": [
            campaign("august", date(2024, 8, 31))
        ],
        "the plan as of 2024-10-31 campaign 'early' was drawn from was made again since it was "
        "recorded": [campaign("early", october, created="2024-10-30T12:00:00+00:00")],
    }
    for unused, campaigns in said.items():
        found = drawn_plans(campaigns, read)
        assert (found.rows, found.unused) == (None, unused)
    # qa45 #3: every reason, not the first (the plan made again was hidden behind 'old')
    found = drawn_plans(
        [
            campaign("august", date(2024, 8, 31)),
            old,
            campaign("early", october, created="2024-10-30T12:00:00+00:00"),
        ],
        read,
    )
    assert found.unused == (
        "campaign 'old' does not say which plan it came from; the plan as of 2024-08-31 campaign "
        "'august' was drawn from is no longer stored; the plan as of 2024-10-31 campaign 'early' "
        "was drawn from was made again since it was recorded"
    )

    def refuse(day: date) -> tuple[pl.DataFrame, PlanInfo] | None:
        raise UnsignedTableError("as_of=2024-10-31.parquet has no signed manifest")

    refused = drawn_plans([campaign("october", october)], refuse)
    assert refused.rows is None and isinstance(refused.refused, UnsignedTableError)
    assert refused.unused == (
        "the plan as of 2024-10-31 campaign 'october' was drawn from is not one the store's key "
        "vouches for"
    )
    # the latest plan's ROI set instead: said even when that plan knew none of the campaigns
    assert expected_plan_note(_plan_info(1, {}), [campaign("o", october)], refused.unused) == (
        f"the expected ROI is the latest stored plan's, as of 2024-10-31: {refused.unused}"
    )
    assert expected_plan_note(_plan_info(1, {}), [old]) is None
    # review37: no campaign was a polars ValueError (no plan to concatenate), not "none named"
    assert drawn_plans([], read) == DrawnPlans((), 0, None, UNSAID_PLAN)
    # the page writes its days as beside the note ("31 Oct 2024"), the CLI ISO 8601
    paged = drawn_plans([campaign("august", date(2024, 8, 31))], read, lambda d: f"{d:%d %b}")
    assert paged.unused == (
        "the plan as of 31 Aug campaign 'august' was drawn from is no longer stored"
    )
    note = expected_plan_note(
        _plan_info(1, {}), [campaign("o", october)], paged.unused, lambda d: f"{d:%d %b}"
    )
    assert note == f"the expected ROI is the latest stored plan's, as of 31 Oct: {paged.unused}"


def test_a_value_tier_guanxi_does_not_write_is_refused_with_its_rows_and_the_tiers() -> None:
    """store29: the outcomes' value_tier was declared (OPTIONAL_OUTCOME_COLUMNS) but never
    checked: a campaign recorded with tier "gold" or "top_5" was taken as it stood."""
    tiers = ["gold", "top_5", *["rest"] * 5, None, "top_1pct", "gold"]
    bad = OUTCOMES.with_columns(value_tier=pl.Series(tiers, dtype=pl.String))
    with pytest.raises(CampaignOutcomesError) as info:
        validate_outcomes(bad, "outcomes.csv")
    said = str(info.value)
    assert said.startswith(
        "outcomes.csv: column value_tier: no value tier is called 'gold' (rows 1, 10)"
    )
    assert "'top_5' (row 2; is it 'top_5pct'?)" in said
    assert "top_1pct, top_5pct, top_20pct, rest" in said
    good = bad.filter(pl.col("value_tier").fill_null("rest") != "gold").filter(
        pl.col("value_tier").fill_null("rest") != "top_5"
    )
    assert validate_outcomes(good)["value_tier"].null_count() == 1  # empty: allowed, as before


def test_one_name_for_the_customers_without_a_segment() -> None:
    """ui32: the campaign report's "unsegmented" and the pages' and CLI tables' were two constants
    (models/campaigns.py and models/targeting.py) that one edit could part; it is written once."""
    assert NO_SEGMENT == NO_GROUP_NAMES["rfm_segment"] == "unsegmented"
    found = [
        f"{path.relative_to(ROOT).as_posix()}:{line}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, value in _string_literals(ast.parse(path.read_text(encoding="utf-8")))
        if value == NO_SEGMENT
    ]
    assert [where.split(":")[0] for where in found] == ["models/targeting.py"], found


def test_small_cells_and_their_note_are_the_reports_and_the_pages() -> None:
    """qa50-1: guanxi campaign report built the note of the segments with fewer than 30 treated
    or control customers itself, and the campaign page had none; both take it from here. 30 of
    each is enough, 29 is not; a row without either group is small and says which it lacks."""
    rows = [
        {"offer": "ret", "segment": "at_risk", "treated": 30, "control": 30},
        {"offer": "ret", "segment": "cant_lose", "treated": 1200, "control": 29},
        {"offer": "ret", "segment": ALL_SEGMENTS, "treated": 1230, "control": 59},
        {"offer": "wb", "segment": "lost", "treated": 5, "control": 0},
        {"offer": "wb", "segment": ALL_SEGMENTS, "treated": 0, "control": 7},
    ]
    assert small_cells(rows) == [rows[1], rows[3], rows[4]]
    assert [unmeasured(r) for r in rows] == [
        None,
        "too few customers",
        None,
        "no control group",
        "no treated customers",
    ]
    said = (
        "fewer than 30 treated or control customers in ret: {} (1,200 treated, 29 control); wb: "
        "lost (5 treated, 0 control), all (0 treated, 7 control): their response, incremental "
        "response and ROI rest on too few customers to rely on (the ROI has no interval), and "
        "guanxi target measures no rate from them"
    )
    assert small_cells_note(rows) == said.format("cant_lose")
    assert small_cells_note(rows, lambda s: s.replace("_", " ")) == said.format("cant lose")
    assert small_cells_note(rows[:1]) is None and small_cells(rows[:1]) == []


def test_an_outcome_file_s_own_underscore_column_passes_through_the_segmenting(
    tmp_path: Path,
) -> None:
    """An outcomes file's columns other than the declared ones pass through unread; one named
    ``_row`` was overwritten by segment_campaigns' own numbering of the pooled rows, then dropped,
    and the pool's column order named it still: segment_campaigns, the one segmenter of the
    campaign report and page, failed (ColumnNotFoundError). The numbering is kept beside the
    rows now."""
    store, campaigns, overlaps, infos, drawn = _campaigns_of_two_plans(tmp_path)
    own = {**campaigns, "b": campaigns["b"].with_columns(_row=pl.Series(["x", "y"]))}
    segmented = segment_campaigns(store, own, overlaps, infos, drawn, LATE, ("segment",))
    assert segmented.outcomes.columns == ["customer_id", "offer", "segment", "_row"]
    assert segmented.outcomes.rows() == [
        ("A1", "ret", "own", None),
        ("A2", "ret", "late", None),
        ("B1", "ret", "early", "x"),
        ("B2", "ret", "early", "y"),
    ]


def test_an_outcome_file_s_own_columns_named_like_the_fill_s_pass_through_it(
    tmp_path: Path,
) -> None:
    """fill_from_values joined the value table's segment and churn probability on the outcomes
    as ``_values_segment`` and ``_values_churn_probability``, with ``_in_values``: an outcomes
    file with a column of such a name had it renamed, read as the table's, then dropped, and
    segment_campaigns (the campaign report's and page's) failed (ColumnNotFoundError). The
    table's columns are kept beside the outcomes now: a file's own such columns pass through
    as they were, and the fill is the one without them."""
    store, campaigns, overlaps, infos, drawn = _campaigns_of_two_plans(tmp_path)
    mine = {"_values_segment": ["x", None], "_in_values": [False, None]}
    own = {
        **campaigns,
        "b": campaigns["b"].with_columns(**{c: pl.Series(v) for c, v in mine.items()}),
    }
    segmented = segment_campaigns(store, own, overlaps, infos, drawn, LATE, ("segment",))
    plain = segment_campaigns(store, campaigns, overlaps, infos, drawn, LATE, ("segment",))
    assert segmented.outcomes.columns == [*plain.outcomes.columns, *mine]
    assert segmented.outcomes.rows() == [
        ("A1", "ret", "own", None, None),
        ("A2", "ret", "late", None, None),
        ("B1", "ret", "early", "x", False),
        ("B2", "ret", "early", None, None),
    ]
    assert segmented.outcomes.drop(*mine).equals(plain.outcomes)
    notes = [
        [part.read.said() for part in s.parts if isinstance(part.read, OutcomeValues)]
        for s in (segmented, plain)
    ]
    assert notes[0] == notes[1] and len(notes[0]) == 2
    # the table's churn probability too, and whether the table holds the customer: C1 is not
    # in it, whatever the file's _in_values says
    outcomes = OUTCOMES.head(2).with_columns(
        churn_probability=pl.Series([None, None], dtype=pl.Float64),
        _values_churn_probability=pl.Series([0.7, 0.8]),
        _values_segment=pl.Series(["y", "z"]),
        _in_values=pl.Series([False, True]),
    )
    values = pl.DataFrame(
        {"customer_id": ["C0"], "rfm_segment": ["loyal"], "churn_probability": [0.4]}
    )
    fill = fill_from_values(outcomes, values, day=LATE)
    assert fill.outcomes.columns == outcomes.columns
    assert fill.outcomes.select(
        "segment", "churn_probability", "_values_churn_probability", "_values_segment", "_in_values"
    ).rows() == [("at_risk", 0.4, 0.7, "y", False), ("at_risk", None, 0.8, "z", True)]
    assert fill.in_values.to_list() == [True, False]
    assert fill.own.rows() == [(True, False), (True, False)]


def test_shared_control_customers_are_not_said_as_contacts() -> None:
    """A note said every customer two waves of an offer share counted "as two contacts", the
    control customers too, who were held out and not contacted. By hand: april is OUTCOMES
    (C0-C3, C6, C7 contacted, C4, C5, C8, C9 held out); may contacts C0, C1, C8 and holds out
    C4, C5, C6, C20. They share C0, C1, C4, C5, C6, C8: C0 and C1 contacted by both, C4 and C5
    held out by both, C6 and C8 contacted by one and held out by the other."""
    may = validate_outcomes(
        OUTCOMES.filter(pl.col("customer_id").is_in(["C0", "C1", "C4", "C5", "C6", "C8"]))
        .vstack(OUTCOMES.head(1).with_columns(customer_id=pl.lit("C20")))
        .with_columns(control=pl.col("customer_id").is_in(["C4", "C5", "C6", "C20"]))
    )
    pooled, overlaps = pool_campaigns({"april": validate_outcomes(OUTCOMES), "may": may})
    assert overlaps == [Overlap("april", "may", 6, "ret", held_out=2, mixed=2)]
    assert overlaps[0].contacted == 2
    assert overlaps[0].note == (
        "campaigns 'april' and 'may' share 6 customers of offer 'ret': they count in both: 2 "
        "as two contacts, 2 in both control groups (held out by both, not contacted) and 2 as "
        "a contact in one and a control in the other; if it is one campaign recorded twice, "
        "record it once"
    )
    assert pooled is not None
    total = campaign_report(pooled, OFFERS, n_boot=50).filter(pl.col("segment") == ALL_SEGMENTS)
    assert total.select("treated", "control").row(0) == (6 + 3, 4 + 4)  # contacts: 9, not 9 + 2
    # only controls shared: none is said as a contact
    controls = may.filter(pl.col("customer_id").is_in(["C4", "C5", "C20"]))
    (only,) = pool_campaigns({"april": validate_outcomes(OUTCOMES), "may": controls})[1]
    assert only == Overlap("april", "may", 2, "ret", held_out=2) and only.contacted == 0
    assert only.note == (
        "campaigns 'april' and 'may' share 2 customers of offer 'ret': they count in both: 2 "
        "in both control groups (held out by both, not contacted); if it is one campaign "
        "recorded twice, record it once"
    )
