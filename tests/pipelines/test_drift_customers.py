"""`guanxi drift` without `--customers` keeps no snapshot without the customers' attributes."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from features.contracts import FEATURE_SET_VERSION
from features.events import read_customers, read_events
from features.snapshot import build_snapshot
from features.store import SourceFile, Store
from pipelines import connectors
from pipelines.cli import app
from pipelines.cycle import readable
from serving.settings import get_settings
from tests.pipelines.drift_setups import TODAY, cycle_drift, keep_scores, kept_notes
from tests.pipelines.test_drift_cli import _drift_runs, _snapshot_of
from tests.pipelines.test_train_cli import cli, sample  # noqa: F401  (fixtures)

REFERENCE = date(2024, 8, 2)  # the champion's test cutoff: as_of 2024-10-31 minus 90 days


def _said(result: Any) -> str:
    return " ".join(result.output.split())


def test_without_customers_nor_a_recorded_file_nothing_is_kept_and_customers_is_named(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
) -> None:
    """An exploratory test's H1: `--events` without `--customers` built the snapshots of the day
    and of the champion's test day with every customer attribute missing (signup_tenure_days
    null on every row), kept them in the store, where `guanxi serve` served them and later
    reports measured false drift against them."""
    home = get_settings().home
    args = ["drift", "--tasks", "churn", "--as-of", TODAY.isoformat()]
    result = cli.invoke(app, [*args, "--events", str(sample / "events.parquet")])
    said = _said(result)
    assert result.exit_code == 1, result.output
    assert (
        f"no drift report, nothing written: cannot build the snapshot of {TODAY} without the "
        "customers' attributes: no --customers given, and no snapshot in the store records a "
        "customers file; its profile features (is_business, "
        "is_channel_partner, signup_tenure_days, region) would all read as missing: nothing "
        "kept; pass --customers PATH"
    ) in said
    store = Store(home)
    assert store.list_snapshots() == [] and store.read_record("drift", TODAY) is None
    assert _drift_runs() == []


def test_without_customers_the_file_a_stored_snapshot_records_is_read(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
) -> None:
    """The newest stored snapshot's customers file is read for the snapshots built; none is kept
    without the customers' attributes."""
    home = get_settings().home
    store = Store(home)
    kept = date(2024, 6, 30)  # a snapshot of another day, built with the customers file
    people = sample / "customers.parquet"
    store.write_snapshot(_snapshot_of(sample, kept), kept, customers=people)
    args = ["drift", "--tasks", "churn", "--as-of", TODAY.isoformat()]
    result = cli.invoke(app, [*args, "--events", str(sample / "events.parquet")])
    assert result.exit_code == 0, result.output
    assert store.list_snapshots() == [kept, REFERENCE, TODAY]
    for day in (REFERENCE, TODAY):
        frame = store.read_snapshot(day)
        recorded = store.snapshot_info(day).customers  # for the reports after it
        assert recorded is not None and recorded.path == str(people.resolve())
        assert frame["signup_tenure_days"].null_count() < frame.height
        expected = _snapshot_of(sample, day)
        assert (
            frame.select("customer_id", "is_business")
            .sort("customer_id")
            .equals(expected.select("customer_id", "is_business").sort("customer_id"))
        )
    record = store.read_record("drift", TODAY)
    assert record is not None
    drifted = {
        r["column"]
        for f in record["features"]
        for r in f["rows"]
        if r.get("drifted") and r["column"] in ("signup_tenure_days", "is_business")
    }
    assert drifted == set()


def test_a_cycle_without_customers_compares_nothing_against_attributes_it_lacks(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
) -> None:
    """A cycle run without --customers keeps its day's snapshot without attributes; its drift
    step reads no other snapshot's customers file (the reference would have them, the day not:
    drift of every profile feature). Review46 M1: it skipped its drift step for good; it builds
    the reference without attributes, keeps it not, and leaves the profile features out, noted."""
    home = get_settings().home
    store = Store(home)
    events = read_events(sample / "events.parquet", now=datetime.now(UTC))
    older = date(2024, 6, 30)  # another day's snapshot, built with the customers file
    store.write_snapshot(_snapshot_of(sample, older), older, customers=sample / "customers.parquet")
    store.write_snapshot(build_snapshot(events, None, TODAY), TODAY, history=events)
    said = " ".join(readable(cycle_drift(home, events)))
    assert not said.startswith("skipped"), said
    assert store.list_snapshots() == [older, TODAY]  # the reference without attributes not kept
    record = store.read_record("drift", TODAY)
    assert record is not None
    [compared] = record["features"]
    assert compared["reference"] == REFERENCE.isoformat()
    columns = {r["column"] for r in compared["rows"]}
    profile = {"is_business", "is_channel_partner", "signup_tenure_days", "region"}
    assert columns and not columns & profile
    assert "recency_days" in columns
    assert (
        f"profile features (is_business, is_channel_partner, signup_tenure_days, region) not "
        f"compared against the snapshot of {REFERENCE}: the snapshot of {REFERENCE} was built "
        f"without the customers' attributes and not kept, the store's snapshot of {TODAY} was "
        "built without the customers' attributes: run the next cycle with --customers PATH"
    ) in record["notes"]
    # review48d L3: it also told to rebuild the cycle's own day, scored and valued from it already
    assert not any("guanxi features build" in n for n in record["notes"])
    # review51 L2: "run the cycle with --customers PATH": a rerun of the day says "done already"
    # for each step, and the day's comparison stays without them
    assert not any("run the cycle with" in n for n in record["notes"])


def test_snapshots_built_with_customers_record_it_for_a_later_drift_without(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
) -> None:
    """Review46 M2: the snapshots `guanxi drift --customers C` built recorded no customers file
    (nor the events'), so a later drift without --customers was refused as if none were built
    with attributes."""
    store = Store(get_settings().home)
    people, events = sample / "customers.parquet", sample / "events.parquet"
    args = ["drift", "--tasks", "churn", "--events", str(events)]
    first = cli.invoke(app, [*args, "--as-of", TODAY.isoformat(), "--customers", str(people)])
    assert first.exit_code == 0, first.output
    assert store.list_snapshots() == [REFERENCE, TODAY]
    for day in (REFERENCE, TODAY):
        info = store.snapshot_info(day)
        assert info.customers is not None and info.customers.path == str(people.resolve())
        assert info.events is not None and info.events.path == str(events.resolve())
    later = date(2024, 12, 30)
    second = cli.invoke(app, [*args, "--as-of", later.isoformat()])
    assert second.exit_code == 0, second.output
    assert store.list_snapshots() == [REFERENCE, later, TODAY]
    frame = store.read_snapshot(later)
    assert frame["signup_tenure_days"].null_count() < frame.height
    recorded = store.snapshot_info(later).customers
    assert recorded is not None and recorded.path == str(people.resolve())


def test_a_stored_day_without_attributes_leaves_profile_features_out_against_one_with(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
) -> None:
    """Review46 M3: the reference stored with the customers' attributes, the day without: every
    profile feature drifted, no note."""
    from pipelines.drift import DriftInputs, drift_report

    store = Store(get_settings().home)
    events = read_events(sample / "events.parquet", now=datetime.now(UTC))
    people = sample / "customers.parquet"
    store.write_snapshot(_snapshot_of(sample, REFERENCE), REFERENCE, customers=people)
    store.write_snapshot(build_snapshot(events, None, TODAY), TODAY, history=events)
    report = drift_report(DriftInputs(store, TODAY), ["churn"])
    [compared] = report["features"]
    columns = {r["column"] for r in compared["rows"]}
    assert "recency_days" in columns and not columns & {"is_business", "region"}
    assert not columns & {"is_channel_partner", "signup_tenure_days"}
    assert (
        f"profile features (is_business, is_channel_partner, signup_tenure_days, region) not "
        f"compared against the snapshot of {REFERENCE}: the store's snapshot of {TODAY} was "
        "built without the customers' attributes: build it again with them (`guanxi features "
        f"build --events PATH --customers PATH --as-of {TODAY}`)"
    ) in report["notes"]  # fix47 2: was "pass --customers PATH", which builds no stored day
    assert store.list_snapshots() == [REFERENCE, TODAY]


def test_the_cycles_drift_step_records_the_files_of_the_snapshots_it_keeps(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
) -> None:
    """fix47 1: the champion's test day's snapshot a cycle's drift step built and kept recorded
    neither its --customers nor its --events file (guanxi drift records them since review46 M2),
    so a later report without --customers could not read the customers file it was built from."""
    home = get_settings().home
    store = Store(home)
    people, events_path = sample / "customers.parquet", sample / "events.parquet"
    events = read_events(events_path, now=datetime.now(UTC))
    customers = read_customers(people, now=datetime.now(UTC))
    store.write_snapshot(build_snapshot(events, customers, TODAY), TODAY, history=events)
    sources = connectors.inputs(str(events_path), customers=str(people))
    said = " ".join(readable(cycle_drift(home, events, customers, sources=sources)))
    assert not said.startswith("skipped"), said
    assert store.list_snapshots() == [REFERENCE, TODAY]
    info = store.snapshot_info(REFERENCE)
    assert info.customers == SourceFile.of(people)  # as the snapshot step records them
    assert info.events == SourceFile.of(events_path)


def test_a_cycle_without_customers_measures_past_tables_on_days_it_keeps_not(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
) -> None:
    """Review46 M1 (fix47 3): a cycle without --customers built no snapshot of a past score
    table's day, so the table's live performance went unmeasured, though its outcomes need only
    who was there; the day's snapshot is built without attributes for the report alone (not
    kept), and the profile features are left out of the comparison, the note saying so."""
    home = get_settings().home
    store = Store(home)
    events = read_events(sample / "events.parquet", now=datetime.now(UTC))
    store.write_snapshot(build_snapshot(events, None, TODAY), TODAY, history=events)
    past = date(2024, 9, 1)  # churn v1's 90 days after it are over by 2024-12-31
    ids = build_snapshot(events, None, past)["customer_id"]
    scores = pl.DataFrame({"customer_id": ids, "task": "churn", "score": 0.5})
    keep_scores(store, past, scores, feature_set_version=FEATURE_SET_VERSION)
    said = " ".join(readable(cycle_drift(home, events)))
    assert not said.startswith("skipped"), said
    assert store.list_snapshots() == [TODAY]  # neither the test day's nor the table's kept
    record = store.read_record("drift", TODAY)
    assert record is not None
    [live] = record["performance"]
    assert (live["as_of"], live["version"], live["outcomes_through"]) == (
        past.isoformat(),
        "1",
        "2024-11-30",
    )
    assert 0 < live["rows"] <= ids.len()
    assert live["metrics"]["brier"] == pytest.approx(0.25)  # 0.5 off each outcome, 0 or 1
    [compared] = record["features"]
    assert not {r["column"] for r in compared["rows"]} & {"is_business", "signup_tenure_days"}
    assert any(n.startswith("profile features (is_business, ") for n in record["notes"])
    assert not any("scores of 2024-09-01: not measured" in n for n in record["notes"])


def _recorded(data: Path, folder: Path) -> tuple[Store, Path]:
    """A store holding the snapshot of 2024-06-30, recording a copy of the sample's customers."""
    store = Store(get_settings().home)
    people = folder / "customers.parquet"
    shutil.copy(data / "customers.parquet", people)
    store.write_snapshot(_snapshot_of(data, KEPT), KEPT, customers=people)
    return store, people


KEPT = date(2024, 6, 30)
"""The day of a stored snapshot built with the customers file, before the champion's test day."""


def _drift_without_customers(runner: CliRunner, data: Path, day: date = TODAY) -> Any:
    args = ["drift", "--tasks", "churn", "--as-of", day.isoformat()]
    events = ["--events", str(data / "events.parquet")]
    return runner.invoke(app, [*args, *events], env={"COLUMNS": "400"})  # paths unbroken


def test_the_recorded_customers_file_read_is_named(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    """Review46 L1 (fix47 4): the customers file the lookup found was read without a word."""
    store, people = _recorded(sample, tmp_path)
    result = _drift_without_customers(cli, sample)
    assert result.exit_code == 0, result.output
    line = (
        f"customers' attributes read from {people.resolve()}, the customers file recorded with "
        f"the store's snapshot of {KEPT} (no --customers given; unchanged since)"
    )
    assert line in _said(result)
    assert line in kept_notes(store)


def test_a_recorded_customers_file_changed_since_is_not_read(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    """Review46 L1 (fix47 4): the file recorded was read as it is now, not checked against the
    size and modification time recorded (guanxi score's _same_source checks them): snapshots
    built from another file than the store's were kept, their attributes compared with its."""
    store, people = _recorded(sample, tmp_path)
    pl.read_parquet(people).head(10).write_parquet(people)  # rewritten: 10 customers left
    result = _drift_without_customers(cli, sample)
    assert result.exit_code == 1, result.output
    assert (
        f"the newest customers file the store records cannot be read: {people.resolve()} "
        f"(recorded with the store's snapshot of {KEPT}) has changed since (its size or "
        "modification time is not the one recorded)"
    ) in _said(result)
    assert "pass --customers PATH" in _said(result)
    assert store.list_snapshots() == [KEPT] and store.read_record("drift", TODAY) is None


def test_a_recorded_customers_file_that_fails_validation_is_named_as_recorded(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion_store: Store,
    tmp_path: Path,
) -> None:
    """Review46 L1 (fix47 4): its validation errors read as if the user had passed it."""
    people = tmp_path / "customers.parquet"
    pl.DataFrame({"name": ["A"]}).write_parquet(people)  # no customer_id
    champion_store.write_snapshot(_snapshot_of(sample, KEPT), KEPT, customers=people)
    result = _drift_without_customers(cli, sample)
    assert result.exit_code == 1, result.output
    assert (
        f"no drift report, nothing written: the customers file recorded with the store's "
        f"snapshot of {KEPT} ({people.resolve()}), read as no --customers was given: 1 error"
    ) in _said(result)
    assert champion_store.list_snapshots() == [KEPT]


@pytest.mark.parametrize(
    ("recorded", "why"),
    [
        ("mapping", "was read with a column mapping (--mapping), which guanxi drift does not take"),
        ("database", "is a database table or query, which guanxi drift does not read"),
        ("gone", "is gone"),
    ],
)
def test_the_refusal_says_why_a_recorded_customers_file_was_not_read(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
    recorded: str,
    why: str,
) -> None:
    """Review46 L2 (fix47 5): a customers file recorded with a column mapping, or a database
    source, was skipped and the refusal said no snapshot recorded a file still there."""
    store = Store(get_settings().home)
    people = SourceFile.of(sample / "customers.parquet")
    if recorded == "mapping":
        source = replace(people, mapping="sha256:0123456789ab")
    elif recorded == "database":
        source = SourceFile.now("postgresql://guanxi:***@db/crm table customers")
    else:  # review48d L4: recorded, then removed
        copy = tmp_path / "customers.parquet"
        shutil.copy(sample / "customers.parquet", copy)
        source = SourceFile.of(copy)
        copy.unlink()
    store.write_snapshot(_snapshot_of(sample, KEPT), KEPT, customers=source)
    result = _drift_without_customers(cli, sample)
    assert result.exit_code == 1, result.output
    assert f"{source.path} (recorded with the store's snapshot of {KEPT}) {why}" in _said(result)
    assert store.list_snapshots() == [KEPT]


def test_no_event_by_the_day_is_said_before_missing_customers(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
) -> None:
    """Review46 L5 (fix47 5): with neither customers nor an event by the day, the refusal named
    --customers, and passing it met the other refusal next."""
    day = date(2020, 1, 31)
    result = _drift_without_customers(cli, sample, day)
    assert result.exit_code == 1, result.output
    said = _said(result)
    assert f"cannot build the snapshot of {day}: no customer has an event on or before {day}" in (
        said
    )
    assert "--customers" not in said


def test_an_older_recorded_customers_file_is_not_read_for_a_newer_one_that_cannot_be(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    """Review48d M1: the newest snapshot recording a customers file records one rewritten since;
    the lookup fell back to an older snapshot's file, built the day's snapshot from its stale
    attributes and kept it, its note not saying the newer file was skipped."""
    store, people = _recorded(sample, tmp_path)  # the newest: 2024-06-30
    old = tmp_path / "old.parquet"
    shutil.copy(sample / "customers.parquet", old)
    older = date(2024, 5, 1)
    store.write_snapshot(_snapshot_of(sample, older), older, customers=old)  # unchanged since
    pl.read_parquet(people).head(10).write_parquet(people)  # the newer one rewritten
    result = _drift_without_customers(cli, sample)
    said = _said(result)
    assert result.exit_code == 1, result.output
    assert (
        f"{people.resolve()} (recorded with the store's snapshot of {KEPT}) has changed since"
    ) in said
    assert str(old.resolve()) not in said
    assert store.list_snapshots() == [older, KEPT] and store.read_record("drift", TODAY) is None


def test_the_refusal_of_a_changed_recorded_file_names_it_for_customers_and_counts_its_days(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    """Review48d M2: a customers export rewritten daily at one path was refused with 'pass
    --customers PATH', the user left to guess that this very path is fine, and the message listed
    every snapshot recording it (a year of daily snapshots: 365 days)."""
    store, people = _recorded(sample, tmp_path)
    for day in (date(2024, 6, 28), date(2024, 6, 29)):
        store.write_snapshot(_snapshot_of(sample, day), day, customers=people)
    pl.read_parquet(people).write_parquet(people)  # the same rows, written again
    result = _drift_without_customers(cli, sample)
    said = _said(result)
    assert result.exit_code == 1, result.output
    assert (
        f"{people.resolve()} (recorded with the store's snapshots of {KEPT} and 2 older days)"
        " has changed since"
    ) in said
    assert "2024-06-28" not in said
    assert f"pass --customers PATH (--customers {people.resolve()} reads it as it is now)" in said
    assert store.read_record("drift", TODAY) is None


def test_a_cycles_input_removed_after_it_was_read_records_no_source_and_ends_in_no_traceback(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    """Review48d L2: the drift step described the --events and --customers files at its start,
    before knowing whether it keeps a snapshot; one removed after it was read raised OSError
    there, and the cycle ended in a traceback. The snapshot kept records neither file (it is
    then told by its rows, as one stored before sources were recorded)."""
    from pipelines.drift import DriftInputs

    home = get_settings().home
    store = Store(home)
    people, events_path = tmp_path / "customers.parquet", tmp_path / "events.parquet"
    shutil.copy(sample / "customers.parquet", people)
    shutil.copy(sample / "events.parquet", events_path)
    events = read_events(events_path, now=datetime.now(UTC))
    customers = read_customers(people, now=datetime.now(UTC))
    store.write_snapshot(build_snapshot(events, customers, TODAY), TODAY, history=events)
    sources = connectors.inputs(str(events_path), customers=str(people))
    people.unlink()  # removed after the cycle read it
    done = cycle_drift(home, events, customers, sources=sources)
    said = " ".join(readable(done))
    assert not said.startswith("skipped"), said
    assert store.list_snapshots() == [REFERENCE, TODAY]
    info = store.snapshot_info(REFERENCE)
    assert info.customers is None and info.events is None
    assert not DriftInputs(store, TODAY).without_attributes(REFERENCE)  # told by its rows
    # review51 L4: nothing said it, and later drift judges those snapshots by their rows
    assert done["note"] == (
        f"the snapshots kept record no source: {people} could not be described: FileNotFoundError"
    )
    assert f"note: the snapshots kept record no source: {people} could not be" in said


def _a_cycles_report_without_customers(
    folder: Path, home: Path, champions: dict[str, str] | None = None
) -> dict[str, Any]:
    """Keep the report of a cycle run without --customers on TODAY: it compared churn v1 on a
    test day built without the attributes, and measured a table scored on a day the store holds
    built with the customers file; a `guanxi drift` of that day refuses to build the test day.
    With ``champions``, the report kept says it compared those (task: version) instead."""
    store = Store(home)
    events = read_events(folder / "events.parquet", now=datetime.now(UTC))
    store.write_snapshot(build_snapshot(events, None, TODAY), TODAY, history=events)
    scored = date(2024, 9, 1)  # its 90-day outcomes are complete on 2024-11-30: measured
    # scored on the store's snapshot of that day, built with the customers file (qa46's of
    # 2024-10-31): a refused drift measures their live performance, and keeps that alone
    store.write_snapshot(
        _snapshot_of(folder, scored), scored, customers=folder / "customers.parquet"
    )
    ids = store.read_snapshot(scored)["customer_id"].head(40)
    scores = pl.DataFrame(
        {"customer_id": ids, "task": "churn", "score": [i / 40 for i in range(40)]}
    )
    keep_scores(store, scored, scores, feature_set_version=FEATURE_SET_VERSION)
    cycle_drift(home, events)
    kept = store.read_record("drift", TODAY)
    assert kept is not None and kept["champions"] == {"churn": "1"} and kept["performance"]
    if champions is not None:
        kept["champions"] = champions
        store.write_record("drift", TODAY, kept)
    return kept


def test_a_report_comparing_no_champion_does_not_replace_the_days_report_that_compared_one(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
) -> None:
    """qa46 M2: after a cycle without --customers, whose drift step compared the champion on a
    test day built without the attributes, `guanxi drift` of that day refuses to build it so and
    compares no champion; it kept its report anyway (live performance alone), over the cycle's,
    and /ui/drift showed "no champion compared". The cycle's report stays, and it says so."""
    home = get_settings().home
    store = Store(home)
    kept = _a_cycles_report_without_customers(sample, home)
    page = home / "reports" / f"drift-{TODAY}.html"
    before = page.read_bytes()
    runs = _drift_runs()
    result = cli.invoke(app, ["drift", "--tasks", "churn", "--as-of", TODAY.isoformat()])
    said = _said(result)
    assert result.exit_code == 1, result.output
    assert "churn v1: not compared: cannot build the snapshot of" in said  # its notes, printed
    compared = kept["summary"]["features_compared"]
    drifted = kept["summary"]["features_drifted"]
    assert (
        f"drift report not kept: it compared no champion, and the store's report of {TODAY} "
        f"(run {kept['run_id']}) compared churn v1 ({drifted} of {compared} feature comparisons "
        "drifted): that report stays, on /ui/drift too; pass --customers PATH to compare the "
        "champion"
    ) in said
    assert store.read_record("drift", TODAY) == kept
    assert page.read_bytes() == before and _drift_runs() == runs
    # review50 L6: an --out FILE given is not written, and the message says so
    out = home / "mine.html"
    args = ["drift", "--tasks", "churn", "--as-of", TODAY.isoformat(), "--out", str(out)]
    result = cli.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert f"the champion; no HTML written to {out}" in _said(result)
    assert not out.exists() and _drift_runs() == runs


def test_the_refusals_fix_is_told_by_its_flag_not_by_the_notes_wording(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """review50 L7: whether the refusal came of the customers' attributes was found by matching
    "no --customers given" in the notes; a note worded otherwise lost "pass --customers PATH"."""
    import pipelines.drift as drift

    home = get_settings().home
    kept = _a_cycles_report_without_customers(sample, home)
    real = drift.drift_report

    def reworded(*args: Any, **kwargs: Any) -> dict[str, Any]:
        report = real(*args, **kwargs)
        report["notes"] = [
            note.replace("no --customers given", "none given") for note in report["notes"]
        ]
        return report

    monkeypatch.setattr(drift, "drift_report", reworded)
    result = cli.invoke(app, ["drift", "--tasks", "churn", "--as-of", TODAY.isoformat()])
    said = _said(result)
    assert result.exit_code == 1, result.output
    assert "no --customers given" not in said
    assert (
        "that report stays, on /ui/drift too; pass --customers PATH to compare the champion" in said
    )
    assert Store(home).read_record("drift", TODAY) == kept


def test_a_refused_drift_replaces_the_days_report_of_a_champion_replaced_since(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    challenger: None,
) -> None:
    """review50 L5: the day's report compared churn v1; v2 promoted by hand since cannot be
    compared without the customers' attributes. The report of v1 stayed on /ui/drift, said as
    the day's, and the new one, which measures the live performance of the scores, was refused
    without a word that v1 is no longer the champion. The new one is kept, and says so."""
    home = get_settings().home
    store = Store(home)
    kept = _a_cycles_report_without_customers(sample, home)
    promoted = cli.invoke(app, ["promote", "--task", "churn", "--version", "2"])
    assert promoted.exit_code == 0, promoted.output
    result = cli.invoke(app, ["drift", "--tasks", "churn", "--as-of", TODAY.isoformat()])
    said = _said(result)
    assert result.exit_code == 0, result.output
    assert "churn v2: not compared: cannot build the snapshot of" in said
    assert (
        f"the store's report of {TODAY} (run {kept['run_id']}) compared churn v1; the champion "
        "now is churn v2: replaced"
    ) in said
    now = store.read_record("drift", TODAY)
    assert now is not None and now["champions"] == {} and now["performance"]
    assert now["run_id"] != kept["run_id"]
    # review52 L1: the kept report says so too (/ui/drift showed "no champion compared" alone)
    assert (
        f"the store's report of {TODAY} (run {kept['run_id']}) compared churn v1; the champion "
        "now is churn v2: replaced by this one, which compares no champion (the notes above say "
        "why)"
    ) in kept_notes(store)


def test_nothing_to_measure_for_want_of_the_customers_attributes_says_to_pass_them(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
) -> None:
    """The refusal of a report with nothing to measure ended "give an --as-of on or after the
    day its champion was tested on" when the champion's test day was refused for want of the
    customers' attributes, a day already after it."""
    store = Store(get_settings().home)
    events = read_events(sample / "events.parquet", now=datetime.now(UTC))
    store.write_snapshot(build_snapshot(events, None, TODAY), TODAY, history=events)
    result = cli.invoke(app, ["drift", "--tasks", "churn", "--as-of", TODAY.isoformat()])
    said = _said(result)
    assert result.exit_code == 1, result.output
    assert f"no drift report, nothing written: nothing to measure on {TODAY}" in said
    assert f"churn v1: not compared: cannot build the snapshot of {REFERENCE}" in said
    # review52 L4: its note's advice alone, not twice ("PATH): pass --customers PATH to ...")
    assert said.endswith("nothing kept; pass --customers PATH)"), said
    assert said.count("pass --customers PATH") == 1, said
    assert "give an --as-of" not in said
    assert store.read_record("drift", TODAY) is None


def test_a_stored_day_recording_no_customers_file_is_said_so_not_as_a_file_gone(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    """qa46 L1: the store's snapshot of the day, built without a customers file (a cycle's
    without --customers), was said to record "no customers file that is still there", as if
    one recorded had gone; L2: a file recorded by two snapshots was "recorded with the store's
    snapshots of the newest <day> and 1 older"."""
    store = Store(get_settings().home)
    events = read_events(sample / "events.parquet", now=datetime.now(UTC))
    store.write_snapshot(build_snapshot(events, None, TODAY), TODAY, history=events)
    args = ["drift", "--tasks", "churn", "--as-of", TODAY.isoformat()]
    said = _said(cli.invoke(app, args))
    assert (
        f"no --customers given, and the store's snapshot of {TODAY} records no customers file "
        "(one built with their attributes would measure drift against it)"
    ) in said
    assert "still there" not in said
    # a file recorded by two snapshots, gone: "and one older day"
    people = tmp_path / "customers.parquet"
    shutil.copy(sample / "customers.parquet", people)
    later = date(2025, 1, 31)
    for day in (date(2025, 1, 30), later):
        store.write_snapshot(_snapshot_of(sample, day), day, customers=people)
    people.unlink()
    # wide enough that the path is not folded inside (past 80 columns, _said split it in two:
    # failed so once pytest's temporary folders reached pytest-1000)
    wide = {"COLUMNS": "400"}
    said = _said(
        cli.invoke(
            app, [*args[:-1], "2025-02-28", "--events", str(sample / "events.parquet")], env=wide
        )
    )
    assert (
        f"{people.resolve()} (recorded with the store's snapshots of {later} and one older day) "
        "is gone"
    ) in said


def test_a_kept_report_stays_only_over_the_tasks_current_champions() -> None:
    """review50 L5, pure: each task whose champion changed since the kept report is named, one
    with none now too; the kept report stays only while every champion it compared is current.
    review52 L2: only the tasks looked up (--tasks) decide; the comparisons dropped with it, of
    champions still current, are said; items are told apart by "; " (they hold commas)."""
    from pipelines.drift import champions_replaced, compared_before

    kept = {"as_of": "2024-12-31", "champions": {"churn": "1", "referral": "3"}}
    both = ["churn", "referral"]
    assert champions_replaced(kept, {"churn": "1", "referral": "3"}.get, both) is None
    assert champions_replaced(kept, {"churn": "2", "referral": "3"}.get, both) == (
        "compared churn v1 and referral v3; the champion now is churn v2; referral v3 is still "
        "the champion (its comparison goes too)"
    )
    assert champions_replaced(kept, {"churn": "2", "referral": None}.get, both) == (
        "compared churn v1 and referral v3; the champion now is churn v2; referral has no "
        "champion now"
    )
    one = {"as_of": "2024-12-31", "champions": {"churn": "1"}}
    assert champions_replaced(one, {"churn": "2"}.get, ["churn"]) == (
        "compared churn v1; the champion now is churn v2"
    )
    assert (
        champions_replaced(one, {}.get, ["churn"]) == "compared churn v1; churn has no champion now"
    )
    # (a) a task outside --tasks decides nothing, and is not looked up then
    asked: list[str] = []

    def current(task: str) -> str | None:
        asked.append(task)
        return {"churn": "1"}.get(task)

    assert champions_replaced(kept, current, ["churn"]) is None
    assert asked == ["churn"]
    # it is looked up, and said, once a task of --tasks decided
    assert champions_replaced(kept, {"churn": "2", "referral": "4"}.get, ["churn"]) == (
        "compared churn v1 and referral v3; the champion now is churn v2; the champion now is "
        "referral v4"
    )
    report = {"as_of": "2024-12-31", "champions": {}}
    assert compared_before(report, kept, None) is not None
    assert compared_before(report, kept, "compared churn v1; the champion now is churn v2") is None


def test_a_task_outside_tasks_does_not_replace_the_kept_report(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
) -> None:
    """review52 L2 (a): the kept report compared churn v1, still the champion, and referral v3,
    a task with no champion now; `guanxi drift --tasks churn` without --customers replaced it
    for referral's sake, dropping churn v1's comparison, still valid. It stays."""
    home = get_settings().home
    store = Store(home)
    kept = _a_cycles_report_without_customers(sample, home, {"churn": "1", "referral": "3"})
    result = cli.invoke(app, ["drift", "--tasks", "churn", "--as-of", TODAY.isoformat()])
    said = _said(result)
    assert result.exit_code == 1, result.output
    assert "compared churn v1, referral v3 (" in said and "that report stays" in said
    assert "replaced by this one" not in said
    assert store.read_record("drift", TODAY) == kept


def _registry_fails_after_the_report(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the registry's look-ups fail once the report is computed (a hiccup after it)."""
    from mlflow.exceptions import MlflowException

    import pipelines.drift as drift
    from models import registry

    real = drift.drift_report

    def then_fails(*args: Any, **kwargs: Any) -> dict[str, Any]:
        report = real(*args, **kwargs)

        def fails(*_: Any, **__: Any) -> None:
            raise MlflowException("unreachable: http://user:secret@tracking.example")

        monkeypatch.setattr(registry, "get_version", fails)
        return report

    monkeypatch.setattr(drift, "drift_report", then_fails)


def test_a_registry_failure_after_a_report_comparing_a_champion_keeps_it(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """review52 M1: the kept report's champions were looked up in the registry again after the
    report was printed, even when the new one compared a champion (then they decide nothing); a
    registry hiccup there ended in a traceback and the new report was not kept."""
    home = get_settings().home
    kept = _a_cycles_report_without_customers(sample, home)
    _registry_fails_after_the_report(monkeypatch)
    args = ["drift", "--tasks", "churn", "--as-of", TODAY.isoformat()]
    result = cli.invoke(app, [*args, "--customers", str(sample / "customers.parquet")])
    assert result.exit_code == 0, result.output
    now = Store(home).read_record("drift", TODAY)
    assert now is not None and now["champions"] == {"churn": "1"}
    assert now["run_id"] != kept["run_id"]


def test_a_registry_failure_of_another_task_once_tasks_decided_does_not_keep_the_report(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """review53 L-d: the kept report compared churn v0, replaced since (churn v1 now, as the
    report just looked up), and referral v3, a task outside --tasks. churn decided the
    replacement, but the registry failing for referral kept the old report and said churn's
    champion could not be read, which it was. The new report is kept, its note saying that
    referral's champion now could not be read (the error's type alone: its text may hold the
    tracking URI and its credentials)."""
    home = get_settings().home
    store = Store(home)
    # churn v0 replaced since
    kept = _a_cycles_report_without_customers(sample, home, {"churn": "0", "referral": "3"})
    _registry_fails_after_the_report(monkeypatch)
    result = cli.invoke(app, ["drift", "--tasks", "churn", "--as-of", TODAY.isoformat()])
    said = _said(result)
    assert result.exit_code == 0, result.output
    assert (
        f"the store's report of {TODAY} (run {kept['run_id']}) compared churn v0 and referral "
        "v3; the champion now is churn v1; referral: its champion now could not be read "
        "(MlflowException): replaced by this one"
    ) in said
    assert "taken as still" not in said and "secret" not in said
    now = store.read_record("drift", TODAY)
    assert now is not None and now["run_id"] != kept["run_id"] and now["champions"] == {}


def test_the_tasks_champions_come_from_the_reports_look_ups_not_the_registry_again(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """review53 L-e: the kept report compared churn v0 alone, replaced since; `guanxi drift
    --tasks churn` tells churn's champion now (v1) from the look-up its report made, with the
    registry failing after the report: the new report is kept, with the replacement's note."""
    home = get_settings().home
    store = Store(home)
    kept = _a_cycles_report_without_customers(sample, home, {"churn": "0"})
    _registry_fails_after_the_report(monkeypatch)
    result = cli.invoke(app, ["drift", "--tasks", "churn", "--as-of", TODAY.isoformat()])
    said = _said(result)
    assert result.exit_code == 0, result.output
    assert (
        f"the store's report of {TODAY} (run {kept['run_id']}) compared churn v0; the champion "
        "now is churn v1: replaced by this one"
    ) in said
    assert "could not be read" not in said
    now = store.read_record("drift", TODAY)
    assert now is not None and now["run_id"] != kept["run_id"]


def test_nothing_to_measure_tells_the_untrained_tasks_from_the_reports_look_ups(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """review53 L-f: nothing to measure asked the registry again which task has no champion,
    unhandled: a registry failing after the report ended in a traceback. The report's own
    look-ups tell it (churn v1, tested after the day asked for): the advice is the --as-of."""
    _registry_fails_after_the_report(monkeypatch)
    args = ["drift", "--tasks", "churn", "--as-of", "2024-05-01"]
    people, events = sample / "customers.parquet", sample / "events.parquet"
    result = cli.invoke(app, [*args, "--customers", str(people), "--events", str(events)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "give an --as-of on or after the day its champion was tested on" in _said(result)


def test_a_failure_reading_a_tasks_champion_is_raised_and_another_tasks_said() -> None:
    """review53 L-d, pure: a champion of --tasks that cannot be read decides nothing (the
    caller keeps the kept report, naming that task alone); one of another task, read only once
    --tasks decided, is said in the replacement, not raised."""
    from pipelines.drift import ChampionUnreadableError, champions_replaced

    kept = {"as_of": "2024-12-31", "champions": {"churn": "1", "referral": "3"}}

    def current(task: str) -> str | None:
        if task == "referral":
            raise ChampionUnreadableError(task, "MlflowException")
        return "2"

    assert champions_replaced(kept, current, ["churn"]) == (
        "compared churn v1 and referral v3; the champion now is churn v2; referral: its "
        "champion now could not be read (MlflowException)"
    )
    with pytest.raises(ChampionUnreadableError) as raised:
        champions_replaced(kept, current, ["churn", "referral"])
    assert (raised.value.task, raised.value.error) == ("referral", "MlflowException")


def test_a_past_tables_refused_day_does_not_make_the_fix_the_customers(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
) -> None:
    """review52 L3: a past score table's day refused for want of the customers' attributes set
    the flag of the champion's refusal; a champion not compared for another reason (a day before
    its test day) then got "pass --customers PATH" alone, not the advice of its own cause."""
    store = Store(get_settings().home)
    events = read_events(sample / "events.parquet", now=datetime.now(UTC))
    day = date(2024, 7, 31)  # before the champion's test day, 2024-08-02
    store.write_snapshot(build_snapshot(events, None, day), day, history=events)
    scored = date(2024, 3, 1)  # its 90-day outcomes complete on 2024-05-30; no snapshot kept
    ids = build_snapshot(events, None, scored)["customer_id"].head(20)
    keep_scores(store, scored, pl.DataFrame({"customer_id": ids, "task": "churn", "score": 0.5}))
    result = cli.invoke(app, ["drift", "--tasks", "churn", "--as-of", day.isoformat()])
    said = _said(result)
    assert result.exit_code == 1, result.output
    assert f"churn v1 scores of {scored}: not measured: cannot build the snapshot" in said
    assert f"it was tested on the snapshot of {REFERENCE}, after {day}" in said
    assert said.endswith(": give an --as-of on or after the day its champion was tested on"), said
