"""qa43 H1: ``guanxi features build``, ``score`` and ``value`` on events that end before the day.

Given ``--events`` whose last event was weeks before ``--as-of``, each built the day's snapshot,
kept it in the store (replacing the day's, built from events that reach it) and wrote the score
or value tables with no word. They now take the rule ``guanxi train``, ``drift`` and ``cycle``
take (:class:`features.freshness.EventsEnd`): more than 7 days short is refused with nothing
written (the store as it was), 2 to 7 days short (a weekend or holidays) is said in a warning and
the command goes on, a day short or none is the usual feed, said nothing.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from pathlib import Path

import mlflow
import polars as pl
import pytest
from typer.testing import CliRunner

from features.freshness import STALE_EVENTS_DAYS, EventsEnd, StaleEventsError
from features.store import SourceFile, Store
from models import registry
from pipelines import connectors
from pipelines.cli import app
from pipelines.score import same_inputs
from serving.settings import get_settings
from tests.pipelines.test_connectors import tiny_duckdb
from tests.pipelines.test_train_cli import cli, sample  # noqa: F401  (fixtures)

TODAY = date(2024, 12, 31)
WEEKS = date(2024, 12, 11)  # 20 days before TODAY: an extract not refreshed
WEEKEND = date(2024, 12, 28)  # 3 days before: a Friday export of a feed without weekend orders
BEFORE = "more than the 7 taken for a weekend or holidays"
TAKEN = "a weekend or holidays are taken: up to 7 days"


def _said(output: str) -> str:
    return " ".join(output.split())


def _ending(source: Path, folder: Path, last: date) -> Path:
    """The sample's events up to ``last`` (inclusive): an export that ends on that day."""
    path = folder / f"events-to-{last}.parquet"
    end = datetime(last.year, last.month, last.day, 23, 59, 59, tzinfo=UTC)
    pl.read_parquet(source / "events.parquet").filter(pl.col("ts") <= end).write_parquet(path)
    return path


def _store_files(home: Path) -> dict[str, str]:
    """Every file the store holds under ``home``, by path, with a digest of its bytes.

    The MLflow database and artifacts are not the store's (``guanxi score`` sets tracking up
    before it reads the events, as it does for every refusal of its inputs).
    """
    return {
        str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(home.rglob("*"))
        if p.is_file() and not p.name.startswith("mlflow.db") and "mlruns" not in p.parts
    }


def _first(said: str, first: str, then: str) -> None:
    """Assert ``first`` is said, before ``then`` (a progress bar on stderr may come between)."""
    assert first in said and then in said, said
    assert said.index(first) < said.index(then), said


def _build(cli: CliRunner, events: Path, *extra: str) -> str:  # noqa: F811
    args = ["features", "build", "--events", str(events), "--as-of", str(TODAY), *extra]
    result = cli.invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    return _said(result.output)


def _value_runs() -> list[mlflow.entities.Run]:
    experiment = mlflow.get_experiment_by_name(registry.VALUE_EXPERIMENT)
    if experiment is None:
        return []
    return list(mlflow.search_runs([experiment.experiment_id], output_format="list"))


def test_the_rule_is_one_week_said_from_two_days() -> None:
    """The days count and the sentences every command says, computed by hand."""
    assert STALE_EVENTS_DAYS == 7
    events = pl.DataFrame(
        {"ts": [datetime(2024, 12, 1, 9, tzinfo=UTC), datetime(2024, 12, 11, 23, tzinfo=UTC)]}
    )
    end = EventsEnd.of(events, TODAY, "e.csv")
    assert end == EventsEnd(WEEKS, TODAY, "e.csv") and end.behind == 20 and end.stale
    with pytest.raises(StaleEventsError) as refused:
        end.check("the snapshot would be wrong", "unused")
    assert str(refused.value) == (
        f"the events (e.csv) end on 2024-12-11, 20 days before --as-of 2024-12-31 ({BEFORE}): the "
        "snapshot would be wrong; pass the events up to 2024-12-31, or --as-of 2024-12-11"
    )
    weekend = EventsEnd(WEEKEND, TODAY)
    assert not weekend.stale and weekend.short
    assert weekend.check("unused", "the days after it read as no activity") == (
        f"the events end on 2024-12-28, 3 days before --as-of 2024-12-31: the days after it read "
        f"as no activity ({TAKEN}); if the export is early, pass --as-of 2024-12-28"
    )
    assert EventsEnd(date(2024, 12, 24), TODAY).check("x", "y") is not None  # 7 days: taken
    with pytest.raises(StaleEventsError):
        EventsEnd(date(2024, 12, 23), TODAY).check("x", "y")  # 8 days
    for through in (date(2024, 12, 30), TODAY, date(2025, 1, 5)):  # a day short, none, past it
        assert EventsEnd(through, TODAY).check("x", "y") is None
    assert EventsEnd.of(events.clear(), TODAY) is None  # no event: the command says so


def test_features_build_refuses_events_weeks_short_and_keeps_the_days_snapshot(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The day's snapshot, built from events that reach it, was replaced by one taking every
    customer for inactive since the stale export's last day."""
    home = get_settings().home
    _build(cli, sample / "events.parquet")  # events that reach the day (and go on): no word
    before = _store_files(home)
    stale = _ending(sample, tmp_path, WEEKS)
    args = ["features", "build", "--events", str(stale), "--as-of", str(TODAY)]
    result = cli.invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert _said(result.output) == (
        f"cannot build the snapshot, nothing stored: the events ({stale}) end on 2024-12-11, 20 "
        f"days before --as-of 2024-12-31 ({BEFORE}): the snapshot of 2024-12-31 built from them "
        "would take every customer for inactive since 2024-12-11, and be served as that day's "
        "features; pass the events up to 2024-12-31, or --as-of 2024-12-11"
    )
    assert _store_files(home) == before
    # an empty store stays empty
    fresh = tmp_path / "fresh"
    result = cli.invoke(app, args, env={"COLUMNS": "300", "GUANXI_HOME": str(fresh)})
    assert result.exit_code == 1 and not fresh.exists()


def test_features_build_warns_of_events_a_weekend_short_and_says_nothing_of_a_day(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    store = Store(get_settings().home)
    weekend = _ending(sample, tmp_path, WEEKEND)
    said = _build(cli, weekend)
    _first(
        said,
        f"warning: the events ({weekend}) end on 2024-12-28, 3 days before --as-of 2024-12-31: the "
        f"snapshot of 2024-12-31 reads the days after it as no activity ({TAKEN}); if the export "
        "is early, pass --as-of 2024-12-28 ",
        "snapshot as of 2024-12-31: ",
    )
    assert TODAY in store.list_snapshots()  # built and kept all the same
    for last in (date(2024, 12, 30), TODAY):
        said = _build(cli, _ending(sample, tmp_path, last))
        assert "warning" not in said and "end on" not in said
        assert "snapshot as of 2024-12-31: " in said


def test_score_refuses_events_weeks_short_with_nothing_written(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    """The day's snapshot was built from them, kept (replacing the store's) and scored."""
    home = get_settings().home
    _build(cli, sample / "events.parquet")
    before = _store_files(home)
    stale = _ending(sample, tmp_path, WEEKS)
    out = tmp_path / "scores.parquet"
    args = ["score", "--events", str(stale), "--as-of", str(TODAY), "--tasks", "churn"]
    for store in ([], ["--no-store"]):
        result = cli.invoke(app, [*args, *store, "--out", str(out)], env={"COLUMNS": "300"})
        assert result.exit_code == 1, result.output
        assert _said(result.output).endswith(
            f"cannot score, nothing written: the events ({stale}) end on 2024-12-11, 20 days "
            f"before --as-of 2024-12-31 ({BEFORE}): the snapshot of 2024-12-31 built from them "
            "would take every customer for inactive since 2024-12-11, and so would its scores; "
            "pass the events up to 2024-12-31, or --as-of 2024-12-11"
        )
        assert not out.exists()
        assert _store_files(home) == before  # the snapshot built from the complete events


def test_score_warns_of_events_a_weekend_short_and_says_nothing_of_a_day(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion_store: Store,
    tmp_path: Path,
) -> None:
    weekend = _ending(sample, tmp_path, WEEKEND)
    out = tmp_path / "scores.parquet"
    args = ["score", "--as-of", str(TODAY), "--tasks", "churn", "--out", str(out)]
    result = cli.invoke(app, [*args, "--events", str(weekend)], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    _first(
        _said(result.output),
        f"warning: the events ({weekend}) end on 2024-12-28, 3 days before --as-of 2024-12-31: the "
        f"snapshot of 2024-12-31 reads the days after it as no activity, and so do its scores "
        f"({TAKEN}); if the export is early, pass --as-of 2024-12-28 ",
        "snapshot as of 2024-12-31: ",
    )
    assert out.exists() and champion_store.read_scores("churn", TODAY, "1") is not None
    for last in (date(2024, 12, 30), TODAY):
        events = _ending(sample, tmp_path, last)
        result = cli.invoke(app, [*args, "--events", str(events)], env={"COLUMNS": "300"})
        assert result.exit_code == 0, result.output
        assert "end on" not in result.output and "GUANXI_STORE_KEY" in result.output


def test_value_refuses_events_weeks_short_with_nothing_written(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The day's snapshot was built from them and kept, the value models fitted on them (every
    customer's P(alive) read as of the day, weeks after their last order) and the table kept."""
    home = get_settings().home
    _build(cli, sample / "events.parquet")
    before = _store_files(home)
    stale = _ending(sample, tmp_path, WEEKS)
    out = tmp_path / "values.parquet"
    args = ["value", "--events", str(stale), "--as-of", str(TODAY), "--out", str(out)]
    refusal = (
        f"cannot value customers, nothing written: the events ({stale}) end on 2024-12-11, 20 days "
        f"before --as-of 2024-12-31 ({BEFORE}): the snapshot of 2024-12-31 built from them would "
        "take every customer for inactive since 2024-12-11, and so would the values fitted on "
        "them; pass the events up to 2024-12-31, or --as-of 2024-12-11"
    )
    result = cli.invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert _said(result.output).endswith(refusal)
    assert not out.exists() and _store_files(home) == before and _value_runs() == []
    # the store's snapshot of the day built from these very events (before the rule): the
    # values are still fitted on them, refused the same
    store = Store(home)
    store.write_snapshot(store.read_snapshot(TODAY), TODAY, events=SourceFile.of(stale))
    assert same_inputs(store.snapshot_info(TODAY), connectors.inputs(str(stale)))
    result = cli.invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 1 and _said(result.output).endswith(refusal)
    assert not out.exists() and _value_runs() == []


def test_value_warns_of_events_a_weekend_short_and_tags_its_run(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """As guanxi train tags its run with the warning (events_warning), value's run is."""
    store = Store(get_settings().home)
    weekend = _ending(sample, tmp_path, WEEKEND)
    out = tmp_path / "values.parquet"
    args = ["value", "--as-of", str(TODAY), "--out", str(out)]
    warning = (
        f"the events ({weekend}) end on 2024-12-28, 3 days before --as-of 2024-12-31: the snapshot "
        "of 2024-12-31 reads the days after it as no activity, and so do the values fitted on "
        f"them ({TAKEN}); if the export is early, pass --as-of 2024-12-28"
    )
    result = cli.invoke(app, [*args, "--events", str(weekend)], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    _first(_said(result.output), f"warning: {warning} ", "2024-12-31: 238 customers, built from")
    assert out.exists() and store.value_info(TODAY) is not None
    (run,) = _value_runs()
    assert run.data.tags["events_warning"] == warning
    # the store's snapshot is now built from them: value reads it, and says it again
    result = cli.invoke(app, [*args, "--events", str(weekend)], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    _first(_said(result.output), f"warning: {warning} ", "2024-12-31: 238 customers, store (")
    for last in (date(2024, 12, 30), TODAY):
        events = _ending(sample, tmp_path, last)
        result = cli.invoke(app, [*args, "--events", str(events)], env={"COLUMNS": "300"})
        assert result.exit_code == 0, result.output
        assert "end on" not in result.output
    assert "events_warning" not in max(_value_runs(), key=lambda r: r.info.start_time).data.tags


def test_value_on_spark_refuses_events_weeks_short_of_its_stored_snapshot(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """``--engine spark`` read the day's stored snapshot built from the same stale events without
    the check (the polars path checks): the refusal comes before any Spark work, none started."""
    home = get_settings().home
    _build(cli, sample / "events.parquet")
    stale = _ending(sample, tmp_path, WEEKS)
    store = Store(home)  # the store's snapshot of the day built from these events, before the rule
    store.write_snapshot(store.read_snapshot(TODAY), TODAY, events=SourceFile.of(stale))
    assert same_inputs(store.snapshot_info(TODAY), connectors.inputs(str(stale)))
    before = _store_files(home)
    out = tmp_path / "values.parquet"
    args = ["value", "--events", str(stale), "--as-of", str(TODAY), "--out", str(out)]
    result = cli.invoke(app, [*args, "--engine", "spark"], env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert _said(result.output).endswith(
        f"cannot value customers, nothing written: the events ({stale}) end on 2024-12-11, 20 days "
        f"before --as-of 2024-12-31 ({BEFORE}): the snapshot of 2024-12-31 built from them would "
        "take every customer for inactive since 2024-12-11, and so would the values fitted on "
        "them; pass the events up to 2024-12-31, or --as-of 2024-12-11"
    )
    assert "Spark" not in result.output  # refused before a session was started
    assert not out.exists() and _store_files(home) == before and _value_runs() == []


def test_score_of_the_stored_snapshot_warns_as_its_build_did(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    """``features build`` warned of events 3 days short; ``score`` of the same events read the
    snapshot it kept and said nothing (``value`` repeats the warning)."""
    weekend = _ending(sample, tmp_path, WEEKEND)
    assert "warning: the events" in _build(cli, weekend)
    out = tmp_path / "scores.parquet"
    args = ["score", "--events", str(weekend), "--as-of", str(TODAY), "--tasks", "churn"]
    result = cli.invoke(app, [*args, "--out", str(out)], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    _first(
        _said(result.output),
        f"warning: the events ({weekend}) end on 2024-12-28, 3 "
        "days before --as-of 2024-12-31: the snapshot of 2024-12-31 reads the days after it as no "
        f"activity, and so do its scores ({TAKEN}); if the export is early, pass --as-of "
        "2024-12-28 ",
        "snapshot as of 2024-12-31: ",
    )
    assert "store (" in _said(result.output) and out.exists()  # the stored snapshot, scored


def test_score_refuses_the_stored_snapshot_of_events_weeks_short(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    """A snapshot of events 20 days short, kept by a version before the rule, and scored with
    the same events: refused as a build of them is (nothing written), not scored with a word."""
    home = get_settings().home
    _build(cli, sample / "events.parquet")
    stale = _ending(sample, tmp_path, WEEKS)
    store = Store(home)  # as an older version kept it: built from the stale events, their history
    snapshot = store.read_snapshot(TODAY)
    store.write_snapshot(
        snapshot, TODAY, events=SourceFile.of(stale), history=pl.read_parquet(stale)
    )
    assert same_inputs(store.snapshot_info(TODAY), connectors.inputs(str(stale)))
    before = _store_files(home)
    out = tmp_path / "scores.parquet"
    args = ["score", "--events", str(stale), "--as-of", str(TODAY), "--tasks", "churn"]
    result = cli.invoke(app, [*args, "--out", str(out)], env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert _said(result.output).endswith(
        f"cannot score, nothing written: the events ({stale}) "
        f"end on 2024-12-11, 20 days before --as-of 2024-12-31 ({BEFORE}): the store's snapshot "
        "of 2024-12-31, built from them, takes every customer for inactive since 2024-12-11, and "
        "so would its scores; pass the events up to 2024-12-31, or --as-of 2024-12-11"
    )
    assert not out.exists() and _store_files(home) == before


def test_score_of_the_stored_snapshot_takes_events_going_on_after_a_gap_as_its_build_did(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    """Events to 2024-12-20, none until 2025-01-03, then on: the build, measuring every event,
    said nothing; ``score`` of the snapshot it kept measured the stored history (which ends at
    the day, so on 2024-12-20) and refused, 11 days short, with advice that could not be
    followed (the events given do reach the day)."""
    events = pl.read_parquet(sample / "events.parquet")
    gap = tmp_path / "events-with-a-gap.parquet"
    events.filter(
        (pl.col("ts") < datetime(2024, 12, 21, tzinfo=UTC))
        | (pl.col("ts") >= datetime(2025, 1, 3, tzinfo=UTC))
    ).write_parquet(gap)
    assert "end on" not in _build(cli, gap)
    out = tmp_path / "scores.parquet"
    args = ["score", "--events", str(gap), "--as-of", str(TODAY), "--tasks", "churn"]
    result = cli.invoke(app, [*args, "--out", str(out)], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "end on" not in result.output
    assert "store (" in _said(result.output) and out.exists()  # the stored snapshot, scored


TINY = Path(__file__).parents[1] / "data" / "events_tiny.csv"  # its last event: 2024-03-07


@pytest.mark.parametrize(
    ("command", "source", "in_memory"),
    [
        ("build", "file", 0),  # staged: a scan of the staged files (Staged)
        ("build", "database", 8_000_000),  # a database's events, validated in memory
        ("build", "database", 0),  # a database's events, staged batch by batch
        ("value", "file", 0),  # the stored snapshot's inputs: the orders staged (StagedOrders)
    ],
)
def test_events_weeks_short_are_refused_from_every_reading(
    cli: CliRunner,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    source: str,
    in_memory: int,
) -> None:
    """Where the events end is read from each way they are validated: staged (above
    ``GUANXI_FEATURES_IN_MEMORY_EVENTS``), from a database, and as the orders alone with their
    last event's time (value, the day's stored snapshot built from the same file)."""
    monkeypatch.setenv("GUANXI_FEATURES_IN_MEMORY_EVENTS", str(in_memory))
    get_settings.cache_clear()
    home = get_settings().home
    events = (
        ["--events", str(TINY)]
        if source == "file"
        else ["--events", tiny_duckdb(tmp_path / "db.duckdb"), "--events-table", "events"]
    )
    label = connectors.inputs(*events[1::2]).events.label
    day = date(2024, 3, 31)  # 24 days after the last event
    if command == "value":  # the store's snapshot of the day recorded as built from the file
        fresh = ["features", "build", *events, "--as-of", "2024-03-08"]  # a day short: silent
        assert cli.invoke(app, fresh).exit_code == 0
        store = Store(home)
        built = store.read_snapshot(date(2024, 3, 8))
        store.write_snapshot(built, day, events=SourceFile.of(TINY))
        assert same_inputs(store.snapshot_info(day), connectors.inputs(str(TINY)))
    before = _store_files(home) if home.exists() else {}
    out = tmp_path / "values.parquet"
    args = (
        ["features", "build", *events, "--as-of", str(day)]
        if command == "build"
        else ["value", *events, "--as-of", str(day), "--out", str(out)]
    )
    result = cli.invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    refused = (
        "cannot build the snapshot, nothing stored"
        if command == "build"
        else ("cannot value customers, nothing written")
    )
    _first(
        _said(result.output),
        f"{refused}: the events ({label}) end on 2024-03-07, 24 days before --as-of 2024-03-31 "
        f"({BEFORE}): the snapshot of 2024-03-31 built from them would take every customer for "
        "inactive since 2024-03-07",
        "pass the events up to 2024-03-31, or --as-of 2024-03-07",
    )
    assert (_store_files(home) if home.exists() else {}) == before and not out.exists()
