"""``guanxi campaign record``, ``list``, ``report`` and ``uplift``: the campaign loop's bookkeeping.

``record --file outcomes.csv`` validates a campaign's outcomes (who, which offer, held out as
control or not, responded, ordered, revenue; :func:`models.campaigns.read_outcomes`) and keeps
them in the store under the campaign's name: the ``campaign`` column's single value, ``--name``,
or the file's name. Nothing is stored when a row is wrong; the error names the file, column and
rows. A name recorded already is replaced, and the record says what it replaced: the same
outcomes recorded again (to name their plan, or to sign them with the store's key), or, with a
note, another campaign's day, file and customers; the other campaigns are read to check for
duplicates. Outcomes another campaign
holds already (one file recorded twice under two names) are refused unless ``--allow-duplicate``;
customers a campaign shares with another of the same offer are noted, and so are a campaign with
no customer contacted or none held out, an offer the latest plan lacks and contacted customers no
stored plan gave their offer (each once recorded without a word). The campaign keeps the day of
the plan it was drawn from: ``--plan DAY``, or the one stored plan (of its outcomes' day or
earlier) that gave every contacted customer their offer
(:func:`models.campaigns.plans_holding`); several such plans are said, not chosen between, and so
are plans of a later day that alone hold it, as no plan is kept. The plans are read through
the store: with ``GUANXI_STORE_KEY`` set, a stored plan kept without the key or changed since is
refused before anything is stored, naming its day and the ``guanxi target`` command that plans it
again. The next ``guanxi target`` reads every recorded campaign and plans with the rates they
measured, each set of outcomes once (:func:`models.campaigns.pool_campaigns`).

``report`` prints, per offer and segment (the outcomes' ``segment`` column, else the segments
of the rows of the one plan the campaigns were drawn from when it holds every such customer,
else the value table's of that plan's day or the latest plan's), the
realised response, the incremental response (treated minus control) with a bootstrap interval,
the cost, the incremental margin and the ROI
(:func:`models.campaigns.campaign_report`), beside it the expected ROI for the offer and segment,
as the campaign page sets it (:func:`models.campaigns.expected_roi`): of the plans the campaigns
were drawn from when each says (:func:`models.campaigns.drawn_plans`), else of the latest plan,
with a note saying why. Costs come
from ``--offers``, or from the offers the latest stored plan was made with (its rows and metadata
from one read, checked like the others: :func:`read_stored_plan_with_info`; its offers taken only
when they agree with its rows: :func:`models.campaigns.stored_plan_offers`), save for an offer
its campaigns' own plans gave their contacted customers, which those plans price: at their one
cost, or each campaign's contacts at the cost its own plan gave them when they differ
(:func:`models.campaigns.drawn_costs`).

``list`` lists the recorded campaigns (:meth:`features.store.Store.list_campaigns`), a row each:
name, offers, customers, the share held out as control, the day the outcomes were complete
(``record --as-of``), the day recorded and the source file; ``--json`` prints them as one JSON
list. Each campaign's outcomes are read as every reader reads them
(:func:`models.campaigns.read_recorded_campaign`): one the store's key does not vouch for is
listed from its metadata alone, with a note saying why.

``uplift --as-of DATE`` fits the uplift learners on every recorded offer with enough treated and
control customers (:func:`models.planning.fit_campaign_uplift`), judges them against ranking by
churn score on held-out campaign rows (Qini, AUUC), and registers the better learner in MLflow as
``uplift_<offer>`` (alias ``challenger``; XGBoost JSON boosters with their digest pinned, the
figures as the run's metrics). ``guanxi target`` loads it and uses it only where it beats the
churn score.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Final, Literal, NamedTuple, TypeAlias

import polars as pl
import typer
from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from features.contracts import MISSING, closest, counted
from features.formatting import format_number, format_percent, format_points
from features.store import (
    CampaignInfo,
    PlanInfo,
    Store,
    TamperedTableError,
    UnsignedTableError,
    vouched_for,
)
from models.campaigns import (
    NO_CAMPAIGN,
    NO_CONTROL_GROUP,
    NO_SEGMENT,
    NO_TREATED_CUSTOMERS,
    REPORT_COLUMNS,
    UNSEGMENTED,
    CampaignOutcomesError,
    CampaignValues,
    DrawnCosts,
    DrawnPlans,
    Overlap,
    RefusedValues,
    campaign_report,
    drawn_costs,
    drawn_plans,
    duplicate_of,
    expected_plan_note,
    expected_roi,
    margin_missing,
    plans_holding,
    pool_campaigns,
    read_outcomes,
    read_recorded_campaign,
    recorded_campaigns,
    segment_campaigns,
    small_cells_note,
    stored_plan_offers,
    unknown_offers,
    unmeasured,
    with_campaign_names,
)
from models.customer_rows import RepeatedCustomersError
from models.offers import OffersFile, OffersFileError, load_offers
from pipelines.console import fits, warn_unsigned
from pipelines.margins import check_margin_rate

if TYPE_CHECKING:  # the fitting code is imported by uplift_command alone
    from models.uplift import UpliftBundle

__all__ = [
    "list_command",
    "read_stored_plan",
    "read_stored_plan_with_info",
    "record_command",
    "report_command",
    "report_table",
    "stored_offers",
    "uplift_command",
    "uplift_table",
]


def _name(outcomes: pl.DataFrame, name: str | None, path: Path) -> str:
    if name is not None:
        return name
    if "campaign" in outcomes.columns:
        names = outcomes["campaign"].drop_nulls().unique().to_list()
        if len(names) == 1:
            return str(names[0])
        if len(names) > 1:
            raise typer.BadParameter(
                f"{path} holds {len(names)} campaigns ({', '.join(sorted(names)[:3])}"
                f"{', ...' if len(names) > 3 else ''}): "
                "record one file per campaign, or name it with --name",
                param_hint="--file",
            )
    return path.stem


def _name_source(outcomes: pl.DataFrame) -> str:
    """Say where :func:`_name` took a campaign's name from when ``--name`` is not given."""
    if "campaign" in outcomes.columns and outcomes["campaign"].drop_nulls().n_unique() == 1:
        return "its campaign column"
    return "the file's name"


def record_command(
    file: Annotated[Path, typer.Option("--file", help="The outcomes: a .csv or .parquet file.")],
    name: Annotated[
        str | None,
        typer.Option(help="The campaign's name (default: its campaign column, or the file name)."),
    ] = None,
    allow_duplicate: Annotated[
        bool,
        typer.Option(
            "--allow-duplicate",
            help="Record it even when another campaign holds the same outcomes (counted once).",
        ),
    ] = False,
    as_of: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="The day the campaign's outcomes were complete: plans and uplift fits of an "
            "earlier day leave it out (default: today, UTC).",
        ),
    ] = None,
    plan: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="The day of the stored plan the campaign was drawn from, whose expected ROI "
            "the report sets beside it (default: the one stored plan that gave every contacted "
            "customer their offer).",
        ),
    ] = None,
) -> None:
    """Validate a campaign's outcomes and keep them in the store."""
    from pipelines.days import after_today
    from serving.settings import get_settings

    console = Console()
    future = after_today(as_of.date()) if as_of is not None else None
    if future is not None:  # its outcomes cannot be complete yet
        console.print(f"[red]cannot record the campaign, nothing stored:[/red] {future}")
        raise typer.Exit(1)
    try:
        outcomes = read_outcomes(file)
    except CampaignOutcomesError as exc:
        console.print(f"[red]cannot record the campaign, nothing stored:[/red] {exc}")
        raise typer.Exit(1) from exc
    campaign = _name(outcomes, name, file)
    settings = get_settings()
    # one store with GUANXI_STORE_KEY: the plans checked, as every reader does, and the outcomes
    # kept with a signed manifest, as plans, scores and values are
    store = settings.store()
    try:  # a bad name was said only after the duplicate check had read every campaign
        store.campaign_path(campaign)
    except ValueError as exc:  # said again with where the name came from (--name or the file)
        given = name is not None
        came = "" if given else f" (from {_name_source(outcomes)}; give another with --name)"
        raise typer.BadParameter(
            f"{campaign!r}{came} cannot name a stored campaign: use letters, digits, '.', '_' or "
            "'-'",
            param_hint="--name" if given else "--file",
        ) from exc
    # recording it again replaces it, and is no duplicate of itself: the others are checked for
    # duplicates, the one replaced compared below (_replacing)
    try:  # a damaged file of that name is what recording it again mends: replaced unread
        replaced = next((i for i in store.list_campaigns() if i.name == campaign), None)
    except TamperedTableError as exc:
        replaced = None
        if exc.what != f"the recorded campaign {campaign!r}":
            console.print(f"[red]cannot record the campaign, nothing stored:[/red] {exc}")
            raise typer.Exit(1) from exc
    try:  # the others checked with GUANXI_STORE_KEY before they decide the duplicate check
        others = recorded_campaigns(store, exclude={campaign})
    except (UnsignedTableError, TamperedTableError) as exc:
        console.print(f"[red]cannot record the campaign, nothing stored:[/red] {exc}")
        raise typer.Exit(1) from exc
    # the same outcomes recorded again under their name (as the advice below says, to name the
    # plan they were drawn from, or as a refusal says, to sign them) replace nothing another
    # --name would keep: it is refused
    again = _replacing(store, replaced, outcomes) if replaced is not None else None
    same = duplicate_of(outcomes, others)
    if same is not None and not allow_duplicate:
        console.print(
            f"[red]cannot record the campaign, nothing stored:[/red] campaign {same!r} holds the "
            f"same outcomes ({counted(outcomes.height, 'customers')}), recorded already; the "
            "report and guanxi target would count them once. Give --allow-duplicate to keep "
            f"them under {campaign!r} too"
        )
        raise typer.Exit(1)
    try:  # checked before the write: a plan the key does not vouch for stores nothing
        by_day, planned = _stored_plans(store)
    except (UnsignedTableError, TamperedTableError) as exc:
        console.print(f"[red]cannot record the campaign, nothing stored:[/red] {exc}")
        raise typer.Exit(1) from exc
    complete = as_of.date() if as_of is not None else datetime.now(UTC).date()
    drawn = _drawn_from(outcomes, by_day, plan.date() if plan is not None else None, complete)
    # after the refusals, which keep nothing: a server with a store key refused the campaign
    # unsigned, and with it every campaign, without a word here
    warn_unsigned(console, "the campaign", "reports no campaign on its campaign page", skip=None)
    try:
        info = store.write_campaign(
            outcomes, campaign, str(file), as_of.date() if as_of is not None else None, drawn.day
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--name") from exc
    control = int(outcomes["control"].sum())
    console.print(
        f"recorded campaign {campaign!r}: {counted(info.rows, 'customers')} "
        f"({info.rows - control:,} contacted, {control:,} held out as control), kept in the "
        f"store ({info.path})"
    )
    if drawn.said:  # which plan's expected ROI the report sets beside it, or why none yet
        console.print(drawn.said if drawn.day else f"[yellow]note:[/yellow] {drawn.said}")
    if drawn.note:  # a --plan mistyped was kept without a word
        console.print(f"[yellow]note:[/yellow] {drawn.note}")
    if control in (0, info.rows):  # recorded without a word, then measured nothing
        none = "no customer held out as control" if control == 0 else "no customer contacted"
        console.print(
            f"[yellow]note:[/yellow] {none}: the report cannot measure what the campaign returned "
            "(treated minus control) and guanxi target takes no rate from it; check the control "
            "column (true = held out, not contacted)"
        )
    if replaced is not None and again is not None:  # recorded again: the same, or to sign it
        console.print(_replaced_text(replaced, again, drawn.day, complete))
    elif replaced is not None:  # a name reused by mistake replaced the campaign without a word
        console.print(
            f"[yellow]note:[/yellow] it replaces campaign {campaign!r} recorded on "
            f"{replaced.created[:10]} from {replaced.source} "
            f"({counted(replaced.rows, 'customers')}); "
            "give another --name to keep both"
        )
    _, overlaps = pool_campaigns(others | {campaign: outcomes})
    for overlap in overlaps:
        if overlap.involves(campaign):
            console.print(f"[yellow]note:[/yellow] {overlap.note}")
    if planned is not None:  # a misspelt offer was taken without a word
        unknown = unknown_offers(outcomes, planned)
        for offer in unknown:
            console.print(f"[yellow]note:[/yellow] {_unknown_offer_text(offer, planned)}")
        known = outcomes.filter(~pl.col("offer").is_in(unknown))
        plans = pl.concat(list(by_day.values())).unique() if by_day else None
        unplanned = _unplanned(plans, known)
        if unplanned.len():  # a customer id mistyped, or no plan of ours, was not said either
            shown = ", ".join(unplanned.head(3).to_list())
            more = ", ..." if unplanned.len() > 3 else ""
            console.print(
                f"[yellow]note:[/yellow] {counted(unplanned.len(), 'contacted customers')} "
                f"({shown}{more}) {'is' if unplanned.len() == 1 else 'are'} in no stored plan "
                "with their offer: a customer id or offer "
                "mistyped, or a campaign planned outside guanxi (then this is as it should be)"
                + _other_ids(plans, outcomes)
            )


_Again: TypeAlias = Literal["same", "unvouched"]
"""Why a record replaces the campaign of its name on purpose, not by a name reused: it holds the
same outcomes, or the stored ones are not vouched for by the store's key (:func:`_replacing`)."""


def _replacing(store: Store, replaced: CampaignInfo, outcomes: pl.DataFrame) -> _Again | None:
    """Say why the campaign being replaced is recorded again, if it is: ``outcomes`` again.

    It is read only when it has as many rows: a campaign replaced by other outcomes is not read
    only to be dropped. Returns ``"same"`` when it holds these outcomes, ``"unvouched"`` when
    the store's key does not vouch for it (kept without the key, or changed since: every reader
    refuses it and says to record it again, which this does), None when it holds others (a name
    reused).
    """
    if replaced.rows != outcomes.height:
        return None
    try:
        recorded = store.read_campaign(replaced.name)
    except (UnsignedTableError, TamperedTableError):  # recording it again is what mends it
        return "unvouched"
    same = recorded is not None and duplicate_of(outcomes, {replaced.name: recorded}) is not None
    return "same" if same else None


def _replaced_text(replaced: CampaignInfo, why: _Again, day: date | None, complete: date) -> str:
    """Say what recording the same campaign again replaced, and the plan it is drawn from now.

    A record that named a plan, recorded again without one found, goes back to the latest
    plan's expected ROI: said, with the ``--plan`` that keeps it, unless that plan is of a day
    after the outcomes were complete (``complete``), which ``--plan`` refuses.
    """
    customers = counted(replaced.rows, "customers")
    text = f"it replaces campaign {replaced.name!r} recorded on {replaced.created[:10]}, " + (
        f"the same outcomes ({customers})"
        if why == "same"
        else f"{customers}, which the store's key did not vouch for (kept without it, or "
        "changed since)"
    )
    if day is not None and day != replaced.plan:
        return f"{text}, now drawn from the plan as of {day}"
    if day is None and replaced.plan is not None:
        keep = (
            f"give --plan {replaced.plan} to keep that plan"
            if replaced.plan <= complete
            else f"a plan of a day after its outcomes were complete ({complete}, --as-of)"
        )
        return (
            f"{text}; it is no longer drawn from the plan as of {replaced.plan}, as it was: {keep}"
        )
    return text


class _Drawn(NamedTuple):
    """The stored plan a campaign is recorded as drawn from, and what the record says of it."""

    day: date | None
    said: str
    note: str = ""
    """A doubt the record states as a note: a ``--plan`` that gave contacted customers no such
    offer."""


_DRAWN_ROI: Final = (
    "guanxi campaign report and the campaign page set its expected ROI beside the campaign's "
    "realised one"
)


def _drawn_from(
    outcomes: pl.DataFrame, by_day: Mapping[date, pl.DataFrame], named: date | None, complete: date
) -> _Drawn:
    """Find the stored plan a campaign was drawn from: ``--plan``'s, else the one that holds it.

    A recorded campaign did not say which plan it came from, so the report and the campaign
    page set the latest plan's expected ROI beside it, whichever plan it was drawn from. Only a
    plan of the outcomes' day (``complete``) or earlier can be the one; several that hold the
    campaign alike (:func:`models.campaigns.plans_holding`) are said, not chosen between, and so
    are plans of a later day that hold it when none of an earlier one does: a campaign whose
    only such plans came after its ``--as-of`` kept no plan without a word.

    A ``--plan`` that gave some contacted customers no such offer is kept, with a note: a day
    mistyped set the ROI of a plan that never planned those contacts beside the campaign's
    without a word.

    Raises
    ------
    typer.BadParameter
        ``named`` is no stored plan's day, or a day after ``complete``.
    """
    if named is not None:
        if named not in by_day:
            stored = ", ".join(str(day) for day in by_day)
            of = f"the stored plans are of {stored}" if stored else "no plan is stored"
            raise typer.BadParameter(
                f"no plan as of {named} is stored ({of}); nothing stored", param_hint="--plan"
            )
        if named > complete:
            raise typer.BadParameter(
                f"the plan as of {named} is of a day after the campaign's outcomes were complete "
                f"({complete}, --as-of): a campaign is drawn from a plan of that day or earlier; "
                "nothing stored",
                param_hint="--plan",
            )
        said = f"drawn from the stored plan as of {named} (--plan): {_DRAWN_ROI}"
        missed = _unplanned(by_day[named], outcomes).len()
        if not missed:
            return _Drawn(named, said)
        contacted = counted(int((~outcomes["control"]).sum()), "contacted customers")
        return _Drawn(
            named,
            said,
            f"the plan as of {named} gave {missed:,} of the {contacted} no such offer: is "
            "it the plan the campaign was drawn from? Record the file again under the same "
            "name with the right --plan, which replaces this record",
        )
    every = plans_holding(outcomes, by_day)
    holding = [day for day in every if day <= complete]
    if len(holding) == 1:
        return _Drawn(
            holding[0],
            f"drawn from the stored plan as of {holding[0]}, the one that gave every contacted "
            f"customer their offer: {_DRAWN_ROI}",
        )
    if holding:
        days = ", ".join(str(day) for day in holding)
        return _Drawn(
            None,
            f"the stored plans as of {days} each gave every contacted customer their offer: "
            "record the file again under the same name with --plan DAY, which replaces this "
            "record, to say which it was drawn from; until then guanxi campaign report and the "
            "campaign page set the latest stored plan's expected ROI beside it",
        )
    if every:  # only plans after the outcomes' day hold it: kept none, once without a word
        one = len(every) == 1
        days = ", ".join(str(day) for day in every)
        return _Drawn(
            None,
            f"the stored plan{'' if one else 's'} as of {days} "
            f"{'' if one else 'each '}gave every contacted customer their offer but "
            f"{'is of a day' if one else 'are of days'} after the campaign's outcomes were "
            f"complete ({complete}, --as-of): a campaign is drawn from a plan of that day or "
            "earlier, so no plan is kept and guanxi campaign report and the campaign page set the "
            "latest stored plan's expected ROI beside it; if --as-of is wrong, record the file "
            "again under the same name with the right one, which replaces this record"
            + (
                "; if it was drawn from an earlier plan, with --plan DAY"
                if any(d <= complete for d in by_day)
                else ""
            ),
        )
    return _Drawn(None, "")


def _other_ids(plans: pl.DataFrame | None, outcomes: pl.DataFrame) -> str:
    """Say so when no customer of the outcomes is in any stored plan, and what it may mean.

    Ids written another way (``6`` for ``C0006``, a spreadsheet's number) were said only as
    "in no stored plan", like a few mistyped ones; the report then had every row unsegmented.
    The question is asked only when the ids differ in form from the plans' (:func:`_id_forms`):
    a campaign planned outside guanxi, with ids written as the plans' are (``C0095`` beside
    ``C0396``), was asked it too, and is said to keep no plan instead, with what the report
    then does.
    """
    if (
        plans is None
        or plans.is_empty()
        or outcomes["customer_id"].is_in(plans["customer_id"].implode()).any()
    ):
        return ""
    like = plans["customer_id"][0]
    planned = plans["customer_id"].unique().cast(pl.String)
    ids = outcomes["customer_id"].unique().cast(pl.String)
    if _id_forms(ids, planned) & _id_forms(planned, ids):
        return (
            f"; none of the file's {counted(ids.len(), 'customers')} is in any stored plan, "
            f"though their ids are written as the plans' are (like {like!r}): a campaign planned "
            "outside guanxi keeps no plan, so guanxi campaign report and the campaign page "
            "segment its rows by their own segment or the value table (customers it lacks are "
            "unsegmented), price its offers at the latest stored plan's costs (the report's "
            "--offers gives others) and set the latest stored plan's expected ROI beside its "
            "realised one, though it was not planned by it"
        )
    return (
        f"; no customer of the file is in any stored plan, whose ids read like "
        f"{like!r}: are the ids written another way?"
    )


def _id_forms(ids: pl.Series, beside: pl.Series) -> set[str]:
    """Write each id's form, to tell whether two sets of ids are written the same way.

    The form keeps an id's characters before the first digit as they are, then writes each
    digit ``9``, each letter ``a`` or ``A`` by case, other characters as they are. A number's
    width counts only when ids of ``ids`` or ``beside`` pad theirs with zeros (``C0095``,
    where ``C95`` is written another way); unpadded numbers are each one ``9``, so ``C7`` and
    ``C396`` have one form.
    """
    padded = pl.concat([ids, beside]).str.contains(r"(^|\D)0\d").any()
    rest = (
        ids.str.extract(r"^\D*(.*)$", 1)
        .str.replace_all(r"\d", "9")
        .str.replace_all(r"[A-Z]", "A")
        .str.replace_all(r"[a-z]", "a")
    )
    if not padded:
        rest = rest.str.replace_all(r"9+", "9")
    return set((ids.str.extract(r"^(\D*)", 1) + rest).unique().to_list())


def _stored_plans(store: Store) -> tuple[dict[date, pl.DataFrame], OffersFile | None]:
    """Read who each stored plan gave which offer, by day, and the offers the latest was made with.

    Each plan is read once and checked by :func:`read_stored_plan`, the latest with its metadata
    (:func:`read_stored_plan_with_info`); its offers are those its checked rows agree with
    (:func:`_plan_offers`).

    Raises
    ------
    features.store.UnsignedTableError, features.store.TamperedTableError
        With a key: a plan kept without it, or changed since it was kept; with or without one,
        a latest plan whose metadata is not its rows'.
    """
    days = store.list_plans()
    if not days:
        return {}, None
    plans = {day: read_stored_plan(store, day) for day in days[:-1]}
    latest = read_stored_plan_with_info(store, days[-1])
    plans[days[-1]] = latest[0] if latest is not None else None
    found = {
        day: plan.select("customer_id", "offer") for day, plan in plans.items() if plan is not None
    }
    offers = _plan_offers(days[-1], *latest) if latest is not None else None
    return found, offers


def _plan_offers(day: date, rows: pl.DataFrame, info: PlanInfo) -> OffersFile:
    """Return the offers a stored plan was made with, as far as its checked ``rows`` vouch.

    ``rows`` and ``info`` come from one checked read (:func:`read_stored_plan_with_info`); the
    offers are still refused unless they agree with the rows
    (:func:`models.campaigns.stored_plan_offers`): without a key nothing else checks them.

    Raises
    ------
    features.store.TamperedTableError
        The metadata is not the rows'; the message names the plan's day and the command that
        plans it again.
    """
    with vouched_for(f"the plan as of {day}", _plan_again(day, info)):
        return stored_plan_offers(info, rows)


def read_stored_plan(store: Store, day: date) -> pl.DataFrame | None:
    """Read the stored plan of a day, checked against its signed manifest when the store has a key.

    Parameters
    ----------
    store : features.store.Store
        The store; with a key (``GUANXI_STORE_KEY``) it reads a plan only when it matches its
        signed manifest (:meth:`features.store.Store.read_plan`).
    day : datetime.date
        The plan's day.

    Returns
    -------
    polars.DataFrame or None
        The plan's rows; None when the store has no plan of the day.

    Raises
    ------
    features.store.UnsignedTableError, features.store.TamperedTableError
        With a key: a plan kept without it, or changed since it was kept; the message names the
        plan's day and the ``guanxi target`` command that plans it again.
    """
    with vouched_for(f"the plan as of {day}", _plan_again(day)):
        return store.read_plan(day)


def read_stored_plan_with_info(store: Store, day: date) -> tuple[pl.DataFrame, PlanInfo] | None:
    """Read the stored plan of a day with its metadata, both from one checked read of its file.

    Parameters
    ----------
    store : features.store.Store
        The store; with a key (``GUANXI_STORE_KEY``) it reads a plan only when it matches its
        signed manifest (:meth:`features.store.Store.read_plan_with_info`), its metadata too.
    day : datetime.date
        The plan's day.

    Returns
    -------
    tuple of (polars.DataFrame, features.store.PlanInfo) or None
        The plan's rows and metadata; None when the store has no plan of the day.

    Raises
    ------
    features.store.UnsignedTableError, features.store.TamperedTableError
        As :func:`read_stored_plan`.
    """
    with vouched_for(f"the plan as of {day}", _plan_again(day)):
        return store.read_plan_with_info(day)


def _plan_again(day: date, info: PlanInfo | None = None) -> str:
    """Return the command that plans ``day`` again, with the budget of a checked read's ``info``.

    A plan the store refused gives no budget (``B``): its metadata is what the key does not
    vouch for.
    """
    budget = format(info.budget, ".15g") if info is not None else "B"
    return f"guanxi target --budget {budget} --offers OFFERS.yaml --as-of {day}"


def _unplanned(planned: pl.DataFrame | None, outcomes: pl.DataFrame) -> pl.Series:
    """List the contacted customers of ``outcomes`` that no ``planned`` pair gave their offer."""
    contacted = outcomes.filter(~pl.col("control")).select("customer_id", "offer")
    if planned is None or contacted.is_empty():
        return pl.Series("customer_id", [], dtype=pl.String)
    return contacted.join(planned, on=["customer_id", "offer"], how="anti")["customer_id"]


def _unknown_offer_text(offer: str, offers: OffersFile) -> str:
    """Say that ``offer`` is not in ``offers``, and which of them it may be a misspelling of."""
    names = [o.name for o in offers.offers]
    near = closest(offer, names, cutoff=0.8)
    maybe = f" (is it {near!r}?)" if near else f" ({', '.join(names)})"
    return (
        f"offer {offer!r} is not in the offers of the latest plan{maybe}: guanxi campaign report "
        "and guanxi target cannot use its outcomes; record the file again with the offer's name"
    )


def stored_offers(store: Store) -> OffersFile | None:
    """Return the offers the latest stored plan was made with, if any.

    Parameters
    ----------
    store : features.store.Store
        The store.

    Returns
    -------
    models.offers.OffersFile or None
        The offers, None without a stored plan.

    Raises
    ------
    features.store.UnsignedTableError, features.store.TamperedTableError
        With a key: the latest plan is not signed with it, or changed since
        (:func:`read_stored_plan_with_info`); with or without one, its metadata is not its
        rows' (:func:`models.campaigns.stored_plan_offers`).
    """
    latest = _latest_plan(store)
    return latest.offers if latest is not None else None


class _LatestPlan(NamedTuple):
    """The latest stored plan's day, rows, offers and metadata, from one checked read."""

    day: date
    rows: pl.DataFrame
    offers: OffersFile
    info: PlanInfo


def _latest_plan(store: Store) -> _LatestPlan | None:
    """Read the latest stored plan's rows and the offers they agree with, None without a plan.

    Raises
    ------
    features.store.UnsignedTableError, features.store.TamperedTableError
        As :func:`stored_offers`.
    """
    days = store.list_plans()
    latest = read_stored_plan_with_info(store, days[-1]) if days else None  # rows and offers
    if latest is None:
        return None
    return _LatestPlan(days[-1], latest[0], _plan_offers(days[-1], *latest), latest[1])


_SHOWN: Final = (
    *(key for key in REPORT_COLUMNS if key not in ("ci_low", "ci_high")),
    "expected_roi",
)
"""The report's figures as the table shows them: the interval beside the incremental response,
the plan's expected ROI (:func:`models.campaigns.expected_roi`) beside the realised one."""
_HEADINGS: Final = {"incremental_response": "incremental_response (95% CI)"}


_LACKING: Final = {
    NO_CONTROL_GROUP: ("control_response", "incremental_response", "incremental_margin", "roi"),
    NO_TREATED_CUSTOMERS: ("response", "incremental_response", "incremental_margin", "roi"),
}
"""The figures a report row without control (or treated) customers has not got, as the
campaign page names them (:func:`models.campaigns.unmeasured`)."""


def _lacking(key: str, row: Mapping[str, object]) -> str:
    """Say why a report row has no ``key``: the group it lacks, else :data:`MISSING`.

    The report printed — where the campaign page says "no control group" or "no treated
    customers" (qa50-1, its review).
    """
    if row.get("treated") is None or row.get("control") is None:
        return MISSING
    why = unmeasured(row)
    return why if why is not None and key in _LACKING.get(why, ()) else MISSING


def _cell(key: str, row: Mapping[str, object]) -> str:
    """Format one figure of a report row as the campaign page shows it.

    Responses are percentages, the incremental response percentage points with its interval,
    money and ROI two decimals: the report printed ``0.585`` and ``16.942`` where the page
    showed ``58.5%`` and ``16.94``.
    """
    value = row.get(key)  # a row without the plan's expected ROI shows none
    if value is None:
        return _lacking(key, row)
    if key in ("offer", "segment"):
        return str(value)
    number = float(value)  # type: ignore[arg-type]
    if key in ("treated", "control"):
        return format_number(number)
    if key in ("response", "control_response"):
        return format_percent(number)
    if key == "incremental_response":
        low, high = (
            format_points(None if row[end] is None else 100 * float(row[end]))  # type: ignore[arg-type]
            for end in ("ci_low", "ci_high")
        )
        return f"{format_points(100 * number)} ({low} to {high})"
    return format_number(number, 2)  # cost, incremental_margin, roi, expected_roi


_LACKS_MARK: Final = "*"
"""The mark of a figure a row lacking a group has not got, where the table says why once."""
_LACKS_NOTE: Final = (
    "no figure: the row has no control group or no treated customers, as its "
    "incremental_response says"
)
"""The footnote of :data:`_LACKS_MARK`."""


def _marked_cell(key: str, row: Mapping[str, object]) -> str:
    """Format a figure as :func:`_cell`, the group a row lacks said once, in its increment.

    The other figures the row has not got for that reason read ``—*`` (:data:`_LACKS_MARK`).
    """
    cell = _cell(key, row)
    if cell in _LACKING and key != "incremental_response":
        return f"{MISSING}{_LACKS_MARK}"
    return cell


def _one_table(
    title: str, rows: list[dict[str, object]], cell: Callable[[str, Mapping[str, object]], str]
) -> Table:
    """Lay the report out as one table, each figure formatted by ``cell``."""
    table = Table(title=title)
    for key in _SHOWN:
        heading = _HEADINGS.get(key, key)
        table.add_column(heading, justify="left" if key in ("offer", "segment") else "right")
    for row in rows:
        table.add_row(*(cell(key, row) for key in _SHOWN))
    return table


def report_table(console: Console, title: str, rows: list[dict[str, object]]) -> RenderableType:
    """Lay the campaign report out for ``console``: one table when it fits, else a block a row.

    Parameters
    ----------
    console : rich.console.Console
        Where it is printed (its width decides).
    title : str
        The title.
    rows : list of dict
        Rows of :func:`models.campaigns.campaign_report` (:data:`REPORT_COLUMNS`), each with
        the plan's ``expected_roi`` for its offer and segment where known
        (:func:`models.campaigns.expected_roi`; shown as :data:`features.contracts.MISSING`
        otherwise).

    Returns
    -------
    rich.console.RenderableType
        The boxed table when it fits the console. Where a row lacks a control group (or
        treated customers), the figures it lacks read "no control group" (or "no treated
        customers"); when those words make the table too wide, each such row says them once, in
        its incremental response, its other such figures read ``—*`` and a footnote says why
        (a 200-column terminal fell to the blocks, qa43 L5). Otherwise, for each offer and
        segment, its names on a line and its figures as name-value pairs two to a line beneath
        (the incremental response and its interval on a line of their own), so that a narrow
        terminal (80 columns) cuts no heading or figure short. Figures read as on the
        campaign page: responses as percentages, the incremental response in percentage points
        with its 95% interval, money and both ROIs (realised, the plan's expected) to two
        decimals.
    """
    table = _one_table(title, rows, _cell)
    if fits(console, table):
        return table
    if any(_cell(key, row) in _LACKING for row in rows for key in _SHOWN):
        # qa43 L5: the words of a row lacking a group, in four cells, widened the narrow
        # response, margin and ROI columns past a 200-column terminal; said once a row, in its
        # incremental response (the widest column), they widen none
        table = _one_table(title, rows, _marked_cell)
        table.caption = f"{_LACKS_MARK} {_LACKS_NOTE}"
        if fits(console, table):
            return table
    # the incremental response with its interval, wider than any other pair, on a line of its
    # own after the responses; the pairs above and below it aligned as one grid
    above = ("treated", "control", "response", "control_response")
    below = ("cost", "incremental_margin", "roi", "expected_roi")
    blocks: list[RenderableType] = [Text(title, style="italic", justify="center")]
    for row in rows:
        pairs = [
            [[c for key in keys[i : i + 2] for c in (key, _cell(key, row))] for i in (0, 2)]
            for keys in (above, below)
        ]
        widths = [
            max(len(cells[j]) for part in pairs for cells in part if j < len(cells))
            for j in range(4)
        ]
        grids = []
        for part in pairs:  # each cell padded to its column's width over both grids
            grid = Table.grid(padding=(0, 2), pad_edge=True)
            for _ in range(4):
                grid.add_column(no_wrap=True)
            for cells in part:
                if cells:
                    cells = [*cells, *([""] * (4 - len(cells)))]
                    grid.add_row(
                        *(
                            c.rjust(widths[j]) if j % 2 else c.ljust(widths[j])
                            for j, c in enumerate(cells)
                        )
                    )
            grids.append(grid)
        wide = Table.grid(padding=(0, 2), pad_edge=True)
        wide.add_column(no_wrap=True)
        wide.add_column(no_wrap=True)
        for key, heading in _HEADINGS.items():
            wide.add_row(heading, _cell(key, row))
        header = Text(f"offer {row['offer']}, segment {row['segment']}", style="bold")
        blocks += [header, grids[0], wide, grids[1]]
    return Group(*blocks)


def _check_offers(
    campaigns: dict[str, pl.DataFrame],
    offers: OffersFile | None,
    source: str,
    priced: Collection[str] = (),
    why: Mapping[str, str] = MappingProxyType({}),
    planned: Collection[str] = (),
) -> None:
    """Refuse offers the offers file lacks, naming the campaign that holds each.

    The report said only "offer 'x' of the outcomes is not in the offers file", leaving the
    campaign to record again to be found among all of them. ``priced`` are offers the file
    lacks that the plans their campaigns were drawn from price, ``why`` says why they do not
    price the others (:class:`DrawnCosts`): recording again helps only a misspelt offer, and
    ``--offers`` prices every campaign's offer at one cost (review48 L1). ``planned`` are
    offers a plan their campaigns were drawn from gave: real ones, never advised to be recorded
    again (qa44 L2: one near another offer's name was).
    """
    for name, frame in campaigns.items():
        unknown = [offer for offer in unknown_offers(frame, offers) if offer not in priced]
        if unknown and offers is not None:
            offer, names = unknown[0], [o.name for o in offers.offers]
            because = (
                f", and the plans its campaigns were drawn from do not price it ({why[offer]})"
                if offer in why
                else ""
            )
            again = (
                "record the campaign again with the offer's name, or "
                if offer not in planned and closest(offer, names, cutoff=0.8) is not None
                else ""
            )
            raise ValueError(
                f"offer {offer!r} of campaign {name!r} is not in {source} ({', '.join(names)})"
                f"{because}: {again}give --offers with it (that file prices every campaign's "
                "offers)"
            )


def report_command(
    offers: Annotated[
        Path | None,
        typer.Option(
            help="Offers file for the costs of every campaign (default: the cost each offer's "
            "campaigns paid, from the plans they were drawn from, else the latest stored plan's "
            "offers)."
        ),
    ] = None,
    margin_rate: Annotated[
        float | None,
        typer.Option(
            help="Margin per unit of revenue (above 0, at most 1: 0.3 for a 30% margin), for "
            "outcomes without margin."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the bootstrap (0 or more).")] = 0,
) -> None:
    """Report what the recorded campaigns returned, per offer and segment."""
    from serving.settings import get_settings

    if margin_rate is not None:
        check_margin_rate(margin_rate, then="; nothing read")

    console = Console()
    settings = get_settings()
    store = settings.store()  # the latest plan's offers checked with GUANXI_STORE_KEY
    try:  # each file read once, checked with GUANXI_STORE_KEY: pooled and checked below
        campaigns = recorded_campaigns(store)
    except (UnsignedTableError, TamperedTableError) as exc:
        console.print(f"[red]cannot report:[/red] {exc}")
        raise typer.Exit(1) from exc
    outcomes, overlaps = pool_campaigns(campaigns)
    if outcomes is None:
        console.print(f"[red]cannot report:[/red] {NO_CAMPAIGN}")
        raise typer.Exit(1)
    if margin_rate is None:
        lacking = [name for name, frame in campaigns.items() if margin_missing(frame)]
        if lacking:
            console.print(
                f"[red]cannot report:[/red] campaign {', '.join(repr(n) for n in lacking)} has "
                "outcomes with revenue and no margin (no margin column, or empty cells): give "
                "--margin-rate, the margin per unit of revenue, to value them"
            )
            raise typer.Exit(1)
    # the plans the campaigns were drawn from when they say, as the latest plan's read as theirs
    # whichever they came from; read first, as the outcomes are segmented by that plan
    infos = [c for c in store.list_campaigns() if c.name in campaigns]
    drawn = drawn_plans(infos, partial(read_stored_plan_with_info, store))
    outcomes, segmented = _with_segments(store, outcomes, campaigns, overlaps, infos, drawn)
    refused: Exception | None = None
    try:  # the latest plan: its offers the costs (without --offers), its ROI the expected one
        latest = _latest_plan(store)
    except (UnsignedTableError, TamperedTableError) as exc:
        if offers is None:  # no costs without it
            console.print(f"[red]cannot report:[/red] {exc}; or give --offers for the costs")
            raise typer.Exit(1) from exc
        latest, refused = None, exc
    try:
        offers_file = (
            load_offers(offers)
            if offers is not None
            else (latest.offers if latest is not None else None)
        )
        where = f"the offers file {offers}" if offers else "the offers of the latest plan"
        # without --offers, an offer takes the cost its campaigns paid, from the plans they were
        # drawn from, when those gave it at one cost (the latest plan's priced it, or nothing)
        drawn_cost = (
            drawn_costs(
                campaigns,
                infos,
                drawn,
                latest.offers,
                f"the latest plan, as of {latest.day}",
                overlaps=overlaps,
            )
            if offers is None and latest is not None
            else DrawnCosts({}, None)
        )
        _check_offers(
            campaigns,
            offers_file,
            where,
            drawn_cost.priced,
            drawn_cost.declined,
            drawn_cost.planned,
        )
        report = campaign_report(  # each contact of an offer drawn at different costs at its own
            with_campaign_names(outcomes, campaigns, overlaps),
            offers_file,
            margin_rate=margin_rate,
            costs=drawn_cost.costs,
            paid=drawn_cost.paid,
            seed=seed,
        )
    except (OffersFileError, ValueError) as exc:
        console.print(f"[red]cannot report:[/red] {exc}")
        raise typer.Exit(1) from exc
    title = f"Campaigns: {', '.join(campaigns)}"
    # the plan's ROI beside the realised one, as the campaign page sets them: the report had
    # the realised ROI alone, with nothing to read it against
    used = drawn.rows if drawn.rows is not None else latest.rows if latest is not None else None
    expected = expected_roi(used)
    rows = [
        {**row, "expected_roi": expected.get((row["offer"], row["segment"]))}
        for row in report.to_dicts()
    ]
    console.print(report_table(console, title, rows))
    small = small_cells_note(rows)
    if small is not None:
        console.print(f"[yellow]note:[/yellow] {small}")
    for overlap in overlaps:
        console.print(f"[yellow]note:[/yellow] {overlap.note}")
    for said in segmented:  # one a plan whose campaigns are segmented by its day
        console.print(f"[yellow]note:[/yellow] {said}")
    if drawn_cost.note is not None:
        console.print(f"[yellow]note:[/yellow] {drawn_cost.note}")
    if offers_file is None:
        console.print(  # was "no cost, no ROI" alone, not saying how to get them
            "[yellow]note:[/yellow] no offers file and no stored plan: no cost, no ROI; give "
            "--offers with the offers file, which holds each offer's cost"
        )
    if refused is not None:
        unused = "no expected ROI" if drawn.rows is None else "the latest plan is not used"
        console.print(f"[yellow]note:[/yellow] {unused}: {refused}")
    if drawn.refused is not None:  # the plan a campaign was drawn from, refused by the key
        console.print(f"[yellow]note:[/yellow] {drawn.refused}")
    known = (
        expected_plan_note(latest.info, infos, drawn.unused)
        if latest is not None and drawn.rows is None
        else None
    )
    if known is not None:  # the plan made after the campaign read as the one it was drawn from
        console.print(f"[yellow]note:[/yellow] {known}")
    console.print(
        "incremental response: treated minus control response, in percentage points, with its "
        "95% bootstrap interval in brackets; incremental margin: (mean margin treated - "
        "control) x treated; roi: (incremental margin - cost) / cost; expected roi: "
        + _expected_said(latest, refused, drawn)
    )


def _expected_said(latest: _LatestPlan | None, refused: Exception | None, drawn: DrawnPlans) -> str:
    """Say where the report's expected ROI comes from, or why it has none."""
    if drawn.rows is not None:
        return (
            f"expected value after costs / investment of {drawn.said()}, for the offer and "
            f"segment ({MISSING} where it planned no such contact)"
        )
    if latest is not None:
        return (
            f"expected value after costs / investment of the latest stored plan, as of "
            f"{latest.day}, for the offer and segment ({MISSING} where it planned no such "
            "contact)"
        )
    if refused is not None:
        return "none, the latest plan is not used (see the note above)"
    return "none, no plan is stored (guanxi target keeps one)"


def _with_segments(
    store: Store,
    outcomes: pl.DataFrame,
    campaigns: Mapping[str, pl.DataFrame],
    overlaps: Sequence[Overlap],
    infos: Sequence[CampaignInfo],
    drawn: DrawnPlans,
) -> tuple[pl.DataFrame, list[str]]:
    """Give outcome rows without a segment of their own the plan's or table's, and say which.

    The report showed such a campaign over all segments alone, while ``guanxi target`` measured its
    rates per segment of the value table and the campaign page reported it per segment; and a
    campaign without segments pooled with one with them was all unsegmented. Each row takes its own
    segment first (:func:`models.campaigns.fill_from_values`), then that of the rows of the one plan
    the campaigns were drawn from, whose segments key its expected ROI, when it holds every row
    without one (contacted and control alike), else the value table's. The value table is that of
    the day :meth:`DrawnPlans.segmenting <models.campaigns.DrawnPlans.segmenting>` gives (the one
    plan's, else the latest plan's), else the latest, as on the campaign page
    (:func:`models.campaigns.outcome_values`), read as every reader does (with ``GUANXI_STORE_KEY``,
    only when it matches its signed manifest); the plan's rows are used beside a usable value
    table only. Campaigns drawn from plans of several days, all used, are each segmented by their
    own plan, with a note per plan (:func:`models.campaigns.segment_campaigns`, the campaign
    page's too; before, they all took the latest plan's day). The stored plans are listed
    only when a row has no segment of its own.
    """
    if "segment" in outcomes.columns and not outcomes["segment"].null_count():
        return outcomes, []
    latest = max(store.list_plans(), default=None)
    segmented = segment_campaigns(store, campaigns, overlaps, infos, drawn, latest, ("segment",))
    return segmented.outcomes, [_segments_said(part) for part in segmented.parts]


def _segments_said(part: CampaignValues) -> str:
    """Say what gave the segments of one plan's campaigns (or of every one), or why nothing did."""
    outcomes = part.outcomes
    absent = "segment" not in outcomes.columns
    without = outcomes.height if absent else outcomes["segment"].null_count()
    unfilled = (
        "the outcomes have no segment column"
        if absent
        else f"{counted(without, 'outcome rows')} of {outcomes.height:,} have no segment"
    )
    if part.plan is not None:  # one plan's campaigns among others'
        named = ", ".join(repr(name) for name in part.names)
        campaign = f"campaign{'s' if len(part.names) > 1 else ''} {named}"
        unfilled = f"{unfilled} ({campaign}, drawn from the plan as of {part.plan})"
    instead = "reported over all segments" if absent else f"reported as {NO_SEGMENT!r}"
    read = part.read
    if read is None:
        return f"{unfilled} and the store has no value table: {instead}"
    if isinstance(read, RefusedValues):
        return (
            f"{unfilled} and the value table as of {read.day} is not used ({read.error}): {instead}"
        )
    lacking = read.not_in_values({"segment": UNSEGMENTED})
    if lacking is None and read.fill.from_table("segment").any():  # the table's, not the plan's
        lacking = f"customers the value table lacks are {NO_SEGMENT!r}"
    return read.said(lacking)


@dataclass(frozen=True)
class _Listed:
    """One recorded campaign as ``guanxi campaign list`` shows it.

    ``offers`` and ``control`` (customers held out) are None when its outcomes are not read:
    the store's key does not vouch for them, or they were removed since they were listed.
    """

    info: CampaignInfo
    offers: list[str] | None
    control: int | None

    @classmethod
    def read(cls, info: CampaignInfo, outcomes: pl.DataFrame | None) -> _Listed:
        """Take what the list shows from the campaign's metadata and outcomes (None: unread)."""
        if outcomes is None:
            return cls(info, None, None)
        offers = sorted(outcomes["offer"].unique().to_list())
        return cls(info, offers, int(outcomes["control"].sum()))

    @property
    def control_share(self) -> float | None:
        """The share of its customers held out as control, None when not read."""
        if self.control is None or not self.info.rows:
            return None
        return self.control / self.info.rows

    def as_json(self) -> dict[str, object]:
        """Return the campaign as ``--json`` prints it."""
        return {
            "name": self.info.name,
            "offers": self.offers,
            "customers": self.info.rows,
            "control": self.control,
            "control_share": self.control_share,
            "as_of": self.info.as_of.isoformat(),
            "plan": self.info.plan.isoformat() if self.info.plan is not None else None,
            "recorded": self.info.created,
            "source": self.info.source,
            "path": str(self.info.path),
        }

    def line(self) -> str:
        """Return the campaign in a sentence, as ``guanxi campaign record`` said it."""
        recorded = f"recorded {self.info.created[:10]} from {self.info.source}"
        complete = f"outcomes complete {self.info.as_of}" + (
            f", drawn from the plan as of {self.info.plan}" if self.info.plan is not None else ""
        )
        customers = counted(self.info.rows, "customers")
        if self.offers is None or self.control is None:
            return (
                f"{self.info.name}: {customers}; {complete}, {recorded} (offers and control not "
                "read: see the note)"
            )
        return (
            f"{self.info.name}: {customers} ({self.info.rows - self.control:,} contacted, "
            f"{self.control:,} held out as control: {format_percent(self.control_share)}), "
            f"offers {', '.join(self.offers)}; {complete}, {recorded}"
        )

    def cells(self) -> tuple[str, ...]:
        """Return the campaign's row of the table (:data:`_LIST_COLUMNS`)."""
        return (
            self.info.name,
            ", ".join(self.offers) if self.offers is not None else MISSING,
            format_number(self.info.rows),
            format_percent(self.control_share),
            self.info.as_of.isoformat(),
            self.info.plan.isoformat() if self.info.plan is not None else MISSING,
            self.info.created[:10],
            self.info.source,
        )


_LIST_COLUMNS: Final = (
    "campaign",
    "offers",
    "customers",
    "control",
    "as of",
    "plan",
    "recorded",
    "source",
)
"""The headings of ``guanxi campaign list``'s table: ``control`` the share held out as control,
``as of`` the day the outcomes were complete (``guanxi campaign record --as-of``), ``plan`` the
day of the stored plan it was drawn from (:attr:`features.store.CampaignInfo.plan`; the page and
``--json`` said it, the table not), ``recorded`` the day (UTC) the campaign was recorded."""


def _list_layout(console: Console, campaigns: list[_Listed]) -> RenderableType:
    """Lay the recorded campaigns out for ``console``: a table when it fits, else a line each.

    The table has a row a campaign (:data:`_LIST_COLUMNS`), nothing wrapped or cut; on a
    terminal too narrow for it (80 columns and a source path, say) each campaign is a sentence
    instead (:meth:`_Listed.line`), which wraps between words.
    """
    table = Table(title="recorded campaigns", box=box.SIMPLE_HEAD)
    for heading in _LIST_COLUMNS:
        right = heading in ("customers", "control")
        table.add_column(heading, justify="right" if right else "left", no_wrap=True)
    for campaign in campaigns:
        table.add_row(*campaign.cells())
    if fits(console, table):
        return table
    return Group(*(Text(campaign.line()) for campaign in campaigns))


def list_command(
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the campaigns as one JSON list, for scripts."),
    ] = False,
) -> None:
    """List the recorded campaigns, a row each.

    Offers, customers, control share, as of (the day the outcomes were complete), plan (the day of
    the plan it was drawn from), recorded, source.
    """
    from serving.settings import get_settings

    console = Console()
    notes = Console(stderr=True) if as_json else console  # the JSON alone on standard output
    store = get_settings().store()  # outcomes read only when GUANXI_STORE_KEY vouches for them
    try:
        listed = store.list_campaigns()
    except TamperedTableError as exc:  # a file whose metadata cannot be read: named, with the fix
        notes.print(f"[red]cannot list the campaigns:[/red] {exc}")
        raise typer.Exit(1) from exc
    campaigns, refused = [], []
    for info in listed:
        try:
            outcomes = read_recorded_campaign(store, info)
        except (UnsignedTableError, TamperedTableError) as exc:  # listed still, from its metadata
            outcomes = None
            refused.append(str(exc))
        campaigns.append(_Listed.read(info, outcomes))
    if as_json:
        typer.echo(json.dumps([campaign.as_json() for campaign in campaigns]))
    elif not campaigns:
        console.print(NO_CAMPAIGN)
    else:
        console.print(_list_layout(console, campaigns))
    for note in refused:
        notes.print(f"[yellow]note:[/yellow] {note}; its offers and control share are not shown")


def uplift_table(bundle: UpliftBundle) -> Table:
    """Lay out an uplift model's held-out Qini and AUUC per ranking, under a one-line title.

    Parameters
    ----------
    bundle : models.uplift.UpliftBundle
        The fitted models of one offer.

    Returns
    -------
    rich.table.Table
        One row per ranking; the table is at least as wide as its title, which Rich otherwise
        wrapped to the three narrow columns (``retention_email: held-out campaign`` over
        ``rows (4,563)``).
    """
    title = f"{bundle.offer}: held-out campaign rows ({bundle.metadata['rows']:,})"
    table = Table(title=title, min_width=len(title))
    for key in ("ranking", "qini", "auuc"):
        table.add_column(key, justify="left" if key == "ranking" else "right")
    for name, figures in bundle.metrics.items():
        table.add_row(name, f"{figures['qini']:.4f}", f"{figures['auuc']:.4f}")
    return table


def uplift_command(
    as_of: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="Day of the snapshot and value table describing the campaign's customers "
            "(the day it was planned); the latest value table by default.",
        ),
    ] = None,
) -> None:
    """Fit uplift models on the recorded campaigns and register them in MLflow."""
    from features.store import SnapshotNotFoundError
    from models.planning import NoValuesError, fit_campaign_uplift
    from models.registry import register_uplift
    from pipelines.console import quiet_libraries
    from pipelines.days import after_today
    from pipelines.score import require_tracking
    from serving.settings import get_settings

    console = Console(log_path=False)  # progress lines need the width, not the source line
    future = after_today(as_of.date()) if as_of is not None else None
    if future is not None:  # was told to run `guanxi value --as-of` that day, which refuses it
        console.print(f"[red]cannot fit uplift, nothing registered:[/red] {future}")
        raise typer.Exit(1)
    settings = get_settings()
    # before the fit (minutes on a large campaign), as guanxi train does: a server down was a
    # traceback once every offer's learners had been fitted
    require_tracking(console, settings.home, "fit uplift, nothing registered")
    store = settings.store()
    try:
        day, bundles, notes = fit_campaign_uplift(
            store, as_of.date() if as_of else None, progress=console.log
        )
    except (
        NoValuesError,
        SnapshotNotFoundError,
        LookupError,
        TamperedTableError,
        RepeatedCustomersError,
    ) as exc:
        console.print(f"[red]cannot fit uplift, nothing registered:[/red] {exc}")
        raise typer.Exit(1) from exc
    for note in notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    with quiet_libraries():
        for bundle in bundles:
            registered = register_uplift(bundle, settings.home, day)
            console.print(uplift_table(bundle))
            use = "plans use it" if bundle.beats_churn_score else "plans keep the rates"
            console.print(
                f"registered {registered.name} version {registered.version} ({bundle.learner}); "
                f"{'beats' if bundle.beats_churn_score else 'does not beat'} the churn score on "
                f"the Qini: {use}"
            )
