"""qa49 H2: ``guanxi drift`` on events that end before its day, as ``guanxi train`` takes them.

Events more than :data:`features.freshness.STALE_EVENTS_DAYS` days short are refused with nothing
written; 2 to 7 days short make the report with a warning, the day's snapshot built from them not
kept in the store (the server would serve it as the day's features); score and value tables whose
outcome window the events do not reach are not measured, the note saying why.
"""

from __future__ import annotations

import html
from datetime import UTC, date, datetime
from pathlib import Path

import mlflow
import polars as pl
import pytest
from typer.testing import CliRunner

from features.events import read_customers, read_events
from features.snapshot import build_snapshot
from features.store import Store
from models import registry
from pipelines.cli import app
from pipelines.drift import DriftInputs, drift_report, print_report, stale_events
from serving.settings import get_settings
from serving.ui.drift import render_report
from tests.pipelines.drift_setups import TODAY, drift_args
from tests.pipelines.test_drift_cli import _customers_csv, _people
from tests.pipelines.test_train_cli import cli, sample  # noqa: F401  (fixtures)

REFERENCE = date(2024, 8, 2)


def _said(output: str) -> str:
    return " ".join(output.split())


def _ending(source: Path, folder: Path, last: date) -> Path:
    """The sample's events up to ``last`` (inclusive): an extract not refreshed since."""
    path = folder / f"events-to-{last}.parquet"
    end = datetime(last.year, last.month, last.day, 23, 59, 59, tzinfo=UTC)
    pl.read_parquet(source / "events.parquet").filter(pl.col("ts") <= end).write_parquet(path)
    return path


def _drift_runs() -> list[str]:
    experiment = mlflow.get_experiment_by_name(registry.DRIFT_EXPERIMENT)
    if experiment is None:
        return []
    runs = mlflow.search_runs([experiment.experiment_id], output_format="list")
    return [r.info.run_id for r in runs]


def test_the_bound_is_trainings_week(sample: Path, tmp_path: Path) -> None:  # noqa: F811
    """8 days short is refused, 7 taken (a weekend or holidays), as `guanxi train` does."""
    now = datetime.now(UTC)
    week = read_events(_ending(sample, tmp_path, date(2024, 12, 24)), now=now)
    assert stale_events(week, TODAY, "x.parquet") is None
    more = read_events(_ending(sample, tmp_path, date(2024, 12, 23)), now=now)
    assert stale_events(more, TODAY, "x.parquet") == (
        "the events (x.parquet) end on 2024-12-23, 8 days before --as-of 2024-12-31 (more than "
        "the 7 taken for a weekend or holidays): the snapshot of 2024-12-31 built from them "
        "would take every customer for inactive since 2024-12-23, and the outcomes read from them "
        "would miss the days after it; pass the events up to 2024-12-31, or --as-of 2024-12-23"
    )
    # qa49 H2, its review: the store holds the day's snapshot: none would be built from them
    assert stale_events(more, TODAY, "x.parquet", stored=True) == (
        "the events (x.parquet) end on 2024-12-23, 8 days before --as-of 2024-12-31 (more than "
        "the 7 taken for a weekend or holidays): the outcomes read from them would miss the days "
        "after it; pass the events up to 2024-12-31, or --as-of 2024-12-23"
    )


def test_events_more_than_a_week_short_are_refused_and_nothing_written(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    """qa49 H2: events ending 11 days before --as-of built the day's snapshot, kept it in the
    store (served as the day's features: every customer inactive since) and the report."""
    home = get_settings().home
    store = Store(home)
    before = store.list_snapshots()
    stale = _ending(sample, tmp_path, date(2024, 12, 20))
    out = tmp_path / "drift.html"
    args = drift_args(sample, stale)
    result = cli.invoke(app, [*args, "--out", str(out)], env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    said = _said(result.output)
    assert (
        f"no drift report, nothing written: the events ({stale}) end on 2024-12-20, 11 days "
        f"before --as-of {TODAY}"
    ) in said
    assert "pass the events up to 2024-12-31, or --as-of 2024-12-20" in said
    # nothing: no snapshot, no record, no MLflow run, no page (the given one or the default)
    assert store.list_snapshots() == before and TODAY not in store.list_snapshots()
    assert store.read_record("drift", TODAY) is None
    assert _drift_runs() == []
    assert not out.exists() and not (home / "reports" / f"drift-{TODAY}.html").exists()
    # the day's page as the default writes it: refused the same
    result = cli.invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 1 and "11 days before" in _said(result.output)
    assert not (home / "reports").exists() or not any((home / "reports").iterdir())
    # the --as-of it names works
    ok = drift_args(sample, stale, "2024-12-20")
    assert cli.invoke(app, ok, env={"COLUMNS": "300"}).exit_code == 0


def test_stale_events_are_refused_before_the_tracking_store_is_made(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """qa49 H2, its review: the refusal came after require_tracking, which makes the folder of a
    SQLite MLFLOW_TRACKING_URI (and points MLflow at it): something was written. A fresh
    GUANXI_HOME stays empty."""
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    tracking = tmp_path / "tracking"
    stale = _ending(sample, tmp_path, date(2024, 12, 20))
    args = drift_args(sample, stale)
    env = {
        "COLUMNS": "300",
        "GUANXI_HOME": str(fresh),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tracking / 'mlflow.db'}",
    }
    get_settings.cache_clear()
    try:
        result = cli.invoke(app, args, env=env)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1, result.output
    assert "no drift report, nothing written: the events" in _said(result.output)
    assert list(fresh.iterdir()) == [] and not tracking.exists()


def test_the_refusal_says_no_snapshot_would_be_built_when_the_store_holds_the_days(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """qa49 H2, its review: "the snapshot of D built from them would ..." was said of a day whose
    snapshot the store holds (the report reads it, builds none)."""
    store = Store(get_settings().home)
    full = read_events(sample / "events.parquet", now=datetime.now(UTC))
    store.write_snapshot(build_snapshot(full, None, TODAY), TODAY)
    stale = _ending(sample, tmp_path, date(2024, 12, 20))
    args = drift_args(sample, stale)
    result = cli.invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert (
        f"({stale}) end on 2024-12-20, 11 days before --as-of {TODAY} (more than the 7 taken for "
        "a weekend or holidays): the outcomes read from them would miss the days after it; pass "
        f"the events up to {TODAY}, or --as-of 2024-12-20"
    ) in _said(result.output)
    assert "built from them" not in result.output


def test_drift_without_events_keeps_the_snapshots_it_builds_as_before(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
) -> None:
    """qa49 H2, its review: the rule that keeps no snapshot built from events short of its day was
    applied to the store's history too (no --events, no warning said): the reference day's
    snapshot, built from the history of the day, was no longer kept."""
    store = Store(get_settings().home)
    day = date(2024, 8, 12)
    full = read_events(sample / "events.parquet", now=datetime.now(UTC))
    # the history of the day ends on 2024-07-31, 2 days before the reference day 2024-08-02
    _stored(store, full, day, date(2024, 7, 31), sample / "customers.parquet")
    assert REFERENCE not in store.list_snapshots()
    args = ["drift", "--tasks", "churn", "--as-of", str(day)]
    result = cli.invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert REFERENCE in store.list_snapshots()  # built from the store's history and kept
    # qa43 H1: that history ends 12 days before the day: said, the report made all the same
    assert (
        f"warning: the store's snapshot of {day} was built from events ending on 2024-07-31, "
        f"12 days before {day}"
    ) in _said(result.output)


def test_events_a_few_days_short_report_with_a_warning_and_keep_no_snapshot(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    """qa49 H2: 5 days short, the report is made and says so; the day's snapshot built from them
    is not kept (the server would serve it); the reference day's, which they reach, is."""
    home = get_settings().home
    store = Store(home)
    short = _ending(sample, tmp_path, date(2024, 12, 26))
    out = tmp_path / "drift.html"
    args = drift_args(sample, short)
    result = cli.invoke(app, [*args, "--out", str(out)], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    warning = (  # the file, and "--as-of", as features build, score, value and cycle say it
        f"the events ({short}) end on 2024-12-26, 5 days before --as-of {TODAY}: the days after "
        "it read as no "
        "activity (recency longer, counts short) in what is built and read from them, the "
        "feature drift figures too (recency-type features read the missing days as inactivity, "
        f"not drift); the snapshot of {TODAY} built from them is not kept in the store (it would "
        "be served as that day's features): build it from events that reach "
        f"{TODAY} (`guanxi features build --events PATH --as-of {TODAY}`, PATH an export up to "
        f"{TODAY}, not these events); if the export is early, pass --as-of 2024-12-26"
    )
    assert f"warning: {warning}" in _said(result.output)
    assert TODAY not in store.list_snapshots() and REFERENCE in store.list_snapshots()
    report = store.read_record("drift", TODAY)
    assert report is not None and report["events_warning"] == warning
    assert report["champions"] == {"churn": "1"}
    assert warning in _said(html.unescape(out.read_text()))
    assert "data-events-warning" in out.read_text()
    # not said twice by the partial-extract note of their end
    assert not [n for n in report["notes"] if "they end on" in n]
    # a day short (an export of the morning of the day) is the usual feed: kept, no word
    day = _ending(sample, tmp_path, date(2024, 12, 30))
    args = drift_args(sample, day)
    result = cli.invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output and TODAY in store.list_snapshots()
    report = store.read_record("drift", TODAY)
    assert report is not None and report["events_warning"] is None
    # with the store's snapshot of the day, the partial-extract note of their end is not said
    # again beside the warning, and the store's snapshot is read, not replaced
    kept = store.read_snapshot(TODAY)
    events = read_events(short, now=datetime.now(UTC))
    report = drift_report(DriftInputs(store, TODAY, events, _people(sample)), ["churn"])
    assert report["events_warning"].startswith(  # no file given: none named
        "the events end on 2024-12-26, 5 days before --as-of 2024-12-31: "
    )
    assert "not kept" not in report["events_warning"]
    assert not [n for n in report["notes"] if "they end on" in n], report["notes"]
    assert store.read_snapshot(TODAY).equals(kept)


def test_an_old_report_without_the_warning_still_renders() -> None:
    report = {
        "as_of": "2024-12-31",
        "created": "2024-12-31T08:00:00+00:00",
        "thresholds": {"psi": 0.1, "ks": 0.1, "wasserstein": 0.1, "alpha": 0.01},
        "champions": {},
        "features": [],
        "scores": [],
        "performance": [],
        "value": [],
        "summary": {"features_compared": 0, "features_drifted": 0, "drifted_share": 0.0,
                    "drifted": [], "scores_drifted": []},
        "notes": [],
    }  # fmt: skip
    assert "data-events-warning" not in render_report(report)


def _events(path: Path) -> Path:
    """Four customers; the events end on 2024-09-26."""
    rows = [
        *[(c, "2024-06-01 10:00:00", "order", "10") for c in "ABCD"],
        ("A", "2024-07-15 10:00:00", "order", "10"),
        ("C", "2024-07-10 10:00:00", "order", "5"),
        ("C", "2024-08-20 10:00:00", "order", "5"),
        ("B", "2024-07-01 10:00:00", "visit", ""),
        ("D", "2024-09-26 10:00:00", "order", "7"),  # D ordered: in the window of 06-30 (to 09-28)
    ]
    lines = ["customer_id,ts,event_type,amount", *(",".join(r) for r in rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_tables_whose_outcomes_the_events_do_not_reach_are_not_measured(
    cli: CliRunner,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    """qa49 H2: a table whose 90 days end after the events' last day was measured on them, the
    days missing read as no order (a churner of everyone who would have ordered then)."""
    day = date(2024, 10, 1)  # the events end 5 days before: the report is made
    events = read_events(_events(tmp_path / "events.csv"), now=datetime.now(UTC))
    store = Store(get_settings().home)
    scores = pl.DataFrame(
        {"customer_id": ["A", "B", "C", "D"], "task": ["churn"] * 4, "score": [0.3, 0.9, 0.2, 0.6]}
    )
    values = pl.DataFrame(
        {"customer_id": ["A", "B", "C", "D"], "expected_purchases": [1.0, 0.5, 2.0, 1.0]}
    )
    # 06-20: its window (06-20, 09-18] the events reach; 06-28 and 06-30: theirs end on 09-26
    # (the events' last day: reached) and 09-28 (not); value tables the same
    for cutoff in (date(2024, 6, 20), date(2024, 6, 28), date(2024, 6, 30)):
        store.write_scores(
            "churn", cutoff, "1", scores, model_name="churn", feature_set_version="x",
            explain_k=0, snapshot_digest="-",
        )  # fmt: skip
        store.write_values(
            values, cutoff, horizon_days=90, discount_rate=0.1, basis="revenue", fit={}
        )
    report = drift_report(DriftInputs(store, day, events, _abcd(tmp_path)), ["churn"])
    measured = [(p["as_of"], p["outcomes_through"]) for p in report["performance"]]
    assert measured == [("2024-06-20", "2024-09-18"), ("2024-06-28", "2024-09-26")]
    # 06-20: churned B and D (no order in (06-20, 09-18]): positives 0.9, 0.6 above 0.3, 0.2
    assert report["performance"][0]["metrics"]["roc_auc"] == pytest.approx(1.0)
    # 06-28: D ordered on 09-26, in its window: churned B alone
    assert report["performance"][1]["metrics"]["positive_rate"] == pytest.approx(0.25)
    assert [v["as_of"] for v in report["value"]] == ["2024-06-20", "2024-06-28"]
    # 06-20: A 1 (07-15), C 2 (07-10, 08-20), B and D none: 3 of the forecast 4.5
    assert report["value"][0]["accuracy"]["actual_total"] == 3
    assert (
        "churn v1 scores of 2024-06-30: not measured: their 90-day outcomes run to 2024-09-28, "
        "after the events' last day 2024-09-26: the days after it would read as no activity; "
        "measured once the events reach 2024-09-28"
    ) in report["notes"]
    assert (
        "value table of 2024-06-30: not checked: its 90-day purchases run to 2024-09-28, after "
        "the events' last day 2024-09-26: the days after it would read as no activity; checked "
        "once the events reach 2024-09-28"
    ) in report["notes"]
    assert (
        "the events end on 2024-09-26, 5 days before --as-of 2024-10-01" in report["events_warning"]
    )


def test_tables_the_events_do_not_reach_are_said_in_one_note(
    cli: CliRunner,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    """A daily cycle keeps a table a day: the ones past the events' end are one note."""
    events = read_events(_events(tmp_path / "events.csv"), now=datetime.now(UTC))
    store = Store(get_settings().home)
    scores = pl.DataFrame({"customer_id": ["A"], "task": ["churn"], "score": [0.3]})
    for cutoff in (date(2024, 6, 29), date(2024, 6, 30), date(2024, 7, 1)):
        store.write_scores(
            "churn", cutoff, "1", scores, model_name="churn", feature_set_version="x",
            explain_k=0, snapshot_digest="-",
        )  # fmt: skip
    report = drift_report(DriftInputs(store, date(2024, 10, 1), events, _abcd(tmp_path)), ["churn"])
    assert report["performance"] == []
    assert (
        "churn v1 scores of 3 days (2024-06-29, 2024-06-30 and 2024-07-01): not measured: their "
        "90-day outcomes run to between 2024-09-27 and 2024-09-29, after the events' last day "
        "2024-09-26: the days after it would read as no activity; measured once the events "
        "reach 2024-09-29"
    ) in report["notes"]


def test_the_warning_is_printed() -> None:
    from rich.console import Console

    console = Console(record=True, width=300)
    report = {
        "features": [],
        "as_of": "2024-12-31",
        "summary": {"features_drifted": 0, "features_compared": 0, "drifted_share": 0.0},
        "scores": [],
        "performance": [],
        "value": [],
        "notes": [],
        "events_warning": "the events end on 2024-12-26",
    }
    print_report(console, report)
    assert "warning: the events end on 2024-12-26" in console.export_text()


def _abcd(folder: Path) -> pl.DataFrame:
    """The customers of :func:`_events`, as `--customers` gives them."""
    return read_customers(_customers_csv(folder / "customers.csv"), now=datetime.now(UTC))


def _stored(store: Store, events: pl.DataFrame, day: date, through: date, people: Path) -> None:
    """Keep the snapshot of ``day`` built from the events up to ``through`` and the customers
    file ``people``, with that history and that file recorded: what guanxi features build, score
    or value keep of a short export."""
    history = events.filter(pl.col("ts").dt.date() <= through)
    frame = build_snapshot(history, read_customers(people, now=datetime.now(UTC)), day)
    store.write_snapshot(frame, day, history=history, customers=people)


def test_drift_without_events_warns_of_a_store_history_a_few_days_short(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
) -> None:
    """qa43 H1: without --events the report reads the store's history of the day; when it ends
    days before (a snapshot built from a short export) the report said nothing."""
    store = Store(get_settings().home)
    full = read_events(sample / "events.parquet", now=datetime.now(UTC))
    _stored(store, full, TODAY, date(2024, 12, 28), sample / "customers.parquet")
    args = ["drift", "--tasks", "churn", "--as-of", str(TODAY)]
    result = cli.invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    warning = (
        f"the store's history of {TODAY} (the events its snapshot was built from) ends on "
        f"2024-12-28, 3 days before {TODAY}: the days after it read as no activity (recency "
        "longer, counts short) in that snapshot and what is read from them, the feature drift "
        "figures too (recency-type features read the missing days as inactivity, not drift): "
        f"build the snapshot of {TODAY} again from events that reach {TODAY} (`guanxi features "
        f"build --events PATH --as-of {TODAY}`, PATH an export up to {TODAY})"
    )
    assert f"warning: {warning}" in _said(result.output)
    report = store.read_record("drift", TODAY)
    assert report is not None and report["events_warning"] == warning
    # a day short (an export of the morning of the day): no word
    _stored(store, full, TODAY, date(2024, 12, 30), sample / "customers.parquet")
    assert DriftInputs(store, TODAY).events_warning() is None


def test_drift_without_events_says_the_stores_snapshot_was_built_from_events_a_week_short(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
) -> None:
    """qa43 H1: beyond the 7 days guanxi drift takes of --events, the store's snapshot of the day
    (what the server serves) is said to be built from events ending on their last day."""
    store = Store(get_settings().home)
    full = read_events(sample / "events.parquet", now=datetime.now(UTC))
    _stored(store, full, TODAY, date(2024, 12, 20), sample / "customers.parquet")
    result = cli.invoke(app, ["drift", "--tasks", "churn", "--as-of", str(TODAY)])
    assert result.exit_code == 0, result.output
    report = store.read_record("drift", TODAY)
    assert report is not None
    assert report["events_warning"] == (
        f"the store's snapshot of {TODAY} was built from events ending on 2024-12-20, 11 days "
        f"before {TODAY} (more than the 7 taken for a weekend or holidays): it is what the "
        "server serves as that day's features, every customer inactive since 2024-12-20, and "
        "the feature drift figures read those days as inactivity (recency-type features), not "
        f"drift: build it again from events that reach {TODAY} (`guanxi features build --events "
        f"PATH --as-of {TODAY}`, PATH an export up to {TODAY})"
    )


def test_tables_the_stores_history_does_not_reach_are_not_measured(
    cli: CliRunner,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    """qa43 H1: the outcome tables are "not measured" through the store's history's last day, as
    through that of --events."""
    day = date(2024, 10, 1)
    events = read_events(_events(tmp_path / "events.csv"), now=datetime.now(UTC))
    store = Store(get_settings().home)
    _stored(
        store, events, day, day, _customers_csv(tmp_path / "customers.csv")
    )  # the history ends on 2024-09-26, its last event
    scores = pl.DataFrame(
        {"customer_id": ["A", "B", "C", "D"], "task": ["churn"] * 4, "score": [0.3, 0.9, 0.2, 0.6]}
    )
    for cutoff in (date(2024, 6, 28), date(2024, 6, 30)):  # to 09-26 (reached), 09-28 (not)
        store.write_scores(
            "churn", cutoff, "1", scores, model_name="churn", feature_set_version="x",
            explain_k=0, snapshot_digest="-",
        )  # fmt: skip
    report = drift_report(DriftInputs(store, day), ["churn"])
    assert [p["as_of"] for p in report["performance"]] == ["2024-06-28"]
    assert (
        "churn v1 scores of 2024-06-30: not measured: their 90-day outcomes run to 2024-09-28, "
        "after the events' last day 2024-09-26: the days after it would read as no activity; "
        "measured once the events reach 2024-09-28"
    ) in report["notes"]
    assert report["events_warning"].startswith(
        f"the store's history of {day} (the events its snapshot was built from) ends on "
        f"2024-09-26, 5 days before {day}"
    )


def test_the_note_of_events_a_day_short_says_1_day_and_the_cycle_only_in_a_cycle(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    """qa43 L1: "they end on 2024-12-30, 1 days before ... (the day's, in guanxi cycle)" was said
    in a guanxi drift run: one day, and the cycle's snapshot only in the cycle's report."""
    store = Store(get_settings().home)
    full = read_events(sample / "events.parquet", now=datetime.now(UTC))
    _stored(store, full, TODAY, TODAY, sample / "customers.parquet")
    events = read_events(_ending(sample, tmp_path, date(2024, 12, 30)), now=datetime.now(UTC))
    ended = [
        n
        for n in DriftInputs(store, TODAY, events, _people(sample)).partial()
        if "they end on" in n
    ]
    assert ended == [
        f"partial --events: they end on 2024-12-30, 1 day before {TODAY}: the days after it read "
        "as no activity, in the snapshots built from them and the outcomes read from them; pass "
        f"the events up to {TODAY}"
    ]
    cycle = DriftInputs(store, TODAY, events, cycle=True).partial()
    assert [n for n in cycle if "they end on" in n] == [
        f"partial --events: they end on 2024-12-30, 1 day before {TODAY}: the days after it read "
        "as no activity, in the snapshots built from them (the day's, by this cycle's snapshot "
        f"step) and the outcomes read from them; pass the events up to {TODAY}"
    ]
