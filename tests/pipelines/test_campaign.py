"""How `guanxi campaign` lays its results out."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import polars as pl
import pytest
import typer
from rich.console import Console

from features.store import Store
from models.campaigns import UNSAID_PLAN, DrawnPlans
from models.offers import parse_offers
from pipelines.campaign import (
    _drawn_from,
    _other_ids,
    _unknown_offer_text,
    _with_segments,
    uplift_table,
)


def test_the_uplift_title_is_one_line_at_80_columns() -> None:
    """Rich wrapped the title to the three narrow columns: "retention_email: held-out campaign"
    over "rows (4,563)"."""
    figures = {"qini": 0.1005, "auuc": 0.1288}
    bundle = SimpleNamespace(
        offer="retention_email",
        metadata={"rows": 4563},
        metrics={"x_learner": figures, "two_model": figures, "churn_score": figures},
    )
    console = Console(record=True, width=80)
    console.print(uplift_table(cast(Any, bundle)))
    lines = console.export_text().splitlines()
    assert lines[0].strip() == "retention_email: held-out campaign rows (4,563)"
    assert max(len(line) for line in lines) <= 80 and "…" not in "".join(lines)
    assert any(line.split()[1:4] == ["x_learner", "│", "0.1005"] for line in lines)


def test_a_value_table_removed_since_it_was_listed_is_no_value_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """values28: guanxi campaign report asserted that the value table it listed could be read,
    so one removed in between ended the report in an AssertionError; the campaign page took it
    as no table. Both now read it through models.campaigns.outcome_values."""
    store = Store(tmp_path)
    store.write_values(
        pl.DataFrame({"customer_id": ["C1"], "rfm_segment": ["loyal"]}),
        date(2024, 10, 31),
        horizon_days=365,
        discount_rate=0.1,
        basis="revenue",
        fit={},
    )
    monkeypatch.setattr(Store, "read_values", lambda self, as_of: None)
    outcomes = pl.DataFrame({"customer_id": ["C1"], "offer": ["retention_email"]})
    drawn = DrawnPlans((), 1, None, UNSAID_PLAN)
    segmented, said = _with_segments(store, outcomes, {"oct": outcomes}, [], [], drawn)
    assert segmented.equals(outcomes)
    assert said == [
        "the outcomes have no segment column and the store has no value table: reported over all "
        "segments"
    ]


def test_outcomes_with_their_own_segments_list_no_stored_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Session 38's reread: 3743dd1 listed the stored plans (a directory listing) for the day
    segmenting the outcomes before _with_segments saw that every row has its own segment; the
    listing is made only when a row needs one."""

    def listed(self: Store) -> list[date]:
        raise AssertionError("the stored plans were listed")

    monkeypatch.setattr(Store, "list_plans", listed)
    outcomes = pl.DataFrame({"customer_id": ["C1"], "offer": ["retention_email"], "segment": ["x"]})
    drawn = DrawnPlans((), 1, None, UNSAID_PLAN)
    assert _with_segments(Store(tmp_path), outcomes, {"oct": outcomes}, [], [], drawn) == (
        outcomes,
        [],
    )


def test_an_offer_written_in_capitals_is_named_as_the_plans_offer() -> None:
    """heavy36: the note took a near offer from difflib alone, case and all, so outcomes of
    ``RETENTION_EMAIL`` listed every offer of the plan where ``retention_emial`` was asked "is
    it 'retention_email'?"; it takes the one "did you mean" of the CLI
    (features.contracts.closest), as --task and the offers file do."""
    offer = {"kind": "retention", "channel": "email", "cost": 1.0, "response": {"default": 0.1}}
    names = ("retention_email", "win_back_voucher")
    offers = parse_offers({"offers": [{**offer, "name": name} for name in names]})
    assert _unknown_offer_text("RETENTION_EMAIL", offers).startswith(
        "offer 'RETENTION_EMAIL' is not in the offers of the latest plan (is it "
        "'retention_email'?): guanxi campaign report"
    )
    assert "(retention_email, win_back_voucher)" in _unknown_offer_text("sms_blast", offers)


def test_a_campaign_several_plans_hold_is_said_and_a_later_plan_refused() -> None:
    """heavy36: guanxi campaign record keeps the plan a campaign was drawn from only when it
    is known: --plan's (a stored plan of the outcomes' day or earlier), or the one plan of such
    a day that gave every contacted customer their offer; several are said, not chosen."""
    outcomes = pl.DataFrame({"customer_id": ["C1", "C2"], "offer": ["ret"] * 2})
    outcomes = outcomes.with_columns(control=pl.Series([False, True]))
    plan = outcomes.select("customer_id", "offer")
    september, october, november = date(2024, 9, 30), date(2024, 10, 31), date(2024, 11, 30)
    by_day = {september: plan, october: plan, november: plan}
    held = _drawn_from(outcomes, by_day, None, october)  # november's is after the outcomes
    assert held.day is None and held.said.startswith(
        "the stored plans as of 2024-09-30, 2024-10-31 each gave every contacted customer their "
        "offer: record the file again under the same name with --plan DAY, which replaces this "
        "record, to say which it was drawn from"  # review37: not "give another --name" after it
    )
    assert _drawn_from(outcomes, {october: plan}, None, october).day == october
    assert _drawn_from(outcomes, {october: plan.head(0)}, None, october) == (None, "", "")
    assert _drawn_from(outcomes, by_day, september, october).day == september
    with pytest.raises(typer.BadParameter, match="the plan as of 2024-11-30 is of a day after"):
        _drawn_from(outcomes, by_day, november, october)
    with pytest.raises(typer.BadParameter, match=r"no plan as of 2024-10-31 is stored \(no plan"):
        _drawn_from(outcomes, {}, october, october)


def test_a_campaign_only_plans_after_its_outcomes_hold_keeps_no_plan_with_a_note() -> None:
    """qa45 #4: outcomes of a day before the only plans that gave their offers (--as-of
    mistyped, or the plan made again for a later day) kept no plan without a word, when every
    other campaign without a plan says why. The later plans are named, with the day they are
    after; a plan of the outcomes' day or earlier holding them is taken as before, unsaid."""
    outcomes = pl.DataFrame({"customer_id": ["C1", "C2"], "offer": ["ret"] * 2})
    outcomes = outcomes.with_columns(control=pl.Series([False, True]))
    plan = outcomes.select("customer_id", "offer")
    june, october, november = date(2024, 6, 30), date(2024, 10, 31), date(2024, 11, 30)
    other = pl.DataFrame({"customer_id": ["C1"], "offer": ["wb"]})
    drawn = _drawn_from(outcomes, {june: other, november: plan}, None, october)
    assert drawn == (
        None,
        "the stored plan as of 2024-11-30 gave every contacted customer their offer but is of a "
        "day after the campaign's outcomes were complete (2024-10-31, --as-of): a campaign is "
        "drawn from a plan of that day or earlier, so no plan is kept and guanxi campaign report "
        "and the campaign page set the latest stored plan's expected ROI beside it; if --as-of "
        "is wrong, record the file again under the same name with the right one, which "
        "replaces this record; if it was drawn from an earlier plan, with --plan DAY",
        "",
    )  # review47 L5: june's plan, of the outcomes' day or earlier, may be the one
    two = _drawn_from(outcomes, {october: plan, november: plan}, None, june)
    assert two.day is None and two.said.startswith(
        "the stored plans as of 2024-10-31, 2024-11-30 each gave every contacted customer their "
        "offer but are of days after the campaign's outcomes were complete (2024-06-30, "
        "--as-of): "
    )
    assert _drawn_from(outcomes, {june: plan, november: plan}, None, october) == (
        june,
        "drawn from the stored plan as of 2024-06-30, the one that gave every contacted customer "
        "their offer: guanxi campaign report and the campaign page set its expected ROI beside "
        "the campaign's realised one",
        "",
    )
    assert _drawn_from(outcomes, {november: other}, None, october) == (None, "", "")


def test_a_plan_named_that_gave_the_contacted_customers_no_such_offer_is_noted() -> None:
    """review37: --plan DAY of a stored plan that never gave the contacted customers their
    offer (a day mistyped) was kept without a word, and the report set that plan's expected ROI
    beside the campaign; it is kept (a plan may be followed loosely) with a note."""
    outcomes = pl.DataFrame(
        {"customer_id": ["C1", "C2", "C3"], "offer": ["ret"] * 3, "control": [False, False, True]}
    )
    october, september = date(2024, 10, 31), date(2024, 9, 30)
    by_day = {
        september: pl.DataFrame({"customer_id": ["C1"], "offer": ["wb"]}),
        october: outcomes.select("customer_id", "offer"),
    }
    assert _drawn_from(outcomes, by_day, october, october).note == ""
    drawn = _drawn_from(outcomes, by_day, september, october)
    assert drawn.day == september and drawn.said.startswith("drawn from the stored plan as of")
    assert drawn.note == (
        "the plan as of 2024-09-30 gave 2 of the 2 contacted customers no such offer: is it the "
        "plan the campaign was drawn from? Record the file again under the same name with the "
        "right --plan, which replaces this record"
    )


def test_ids_written_as_the_plans_are_are_not_asked_about() -> None:
    """A campaign planned outside guanxi, whose ids (C0095, C0112) are written as the stored
    plans' (C0396) are, was asked "are the ids written another way?"; the question is asked
    only when the ids differ in form (letters before the number, its width, the kinds of
    character), and ids of the same form are said to be in no stored plan, with what that
    means for the report."""
    plans = pl.DataFrame({"customer_id": ["C0396", "C0401"], "offer": ["ret"] * 2})
    outside = pl.DataFrame({"customer_id": ["C0095", "C0112", "C0120"]})
    said = _other_ids(plans, outside)
    assert "written another way" not in said
    assert said == (
        "; none of the file's 3 customers is in any stored plan, though their ids are written "
        "as the plans' are (like 'C0396'): a campaign planned outside guanxi keeps no plan, so "
        "guanxi campaign report and the campaign page segment its rows by their own segment or "
        "the value table (customers it lacks are unsegmented), price its offers at the latest "
        "stored plan's costs (the report's --offers gives others) and set the latest stored "
        "plan's expected ROI beside its realised one, though it was not planned by it"
    )
    for other in (["95", "112"], ["c0095", "c0112"], ["C95", "C112"], ["K0095", "K0112"]):
        asked = _other_ids(plans, pl.DataFrame({"customer_id": other}))
        assert asked == (
            "; no customer of the file is in any stored plan, whose ids read like 'C0396': are "
            "the ids written another way?"
        ), other
    # unpadded numbers of another width are written the same way: C7 and C12 as C396
    unpadded = pl.DataFrame({"customer_id": ["C396", "C401"]})
    assert "though their ids are written" in _other_ids(
        unpadded, pl.DataFrame({"customer_id": ["C7", "C12"]})
    )
    assert _other_ids(plans, pl.DataFrame({"customer_id": ["C0396", "X1"]})) == ""
    assert _other_ids(None, outside) == "" and _other_ids(plans.head(0), outside) == ""
