"""`guanxi drift`: a planted shift is flagged, an unshifted feature is not; live performance."""

from __future__ import annotations

import errno
import math
import os
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import mlflow
import polars as pl
import pytest
from jinja2 import Environment, StrictUndefined, UndefinedError
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from rich.console import Console
from typer.testing import CliRunner

import pipelines.drift as drift
import serving.ui.drift as ui_drift
from features.contracts import FEATURE_SET_VERSION, MISSING
from features.events import read_customers, read_events
from features.snapshot import build_snapshot
from features.store import Store, atomic_write
from models import registry
from models.artifact import ModelBundle
from models.definitions import DefinitionUnreadableError
from models.versions import ModelFilesMissingError
from pipelines.cli import app
from pipelines.days import after_today
from pipelines.drift import (
    DriftInputs,
    ReportNotKeptError,
    drift_report,
    keep_report,
    print_report,
)
from pipelines.sample import generate_sample
from serving.settings import get_settings
from tests.conftest import loaded_by
from tests.pipelines.drift_setups import TODAY
from tests.pipelines.test_train_cli import (  # noqa: F401  (fixtures)
    _result,
    _train,
    _variant,
    cli,
    sample,
)

REFERENCE = date(2024, 8, 2)  # the champion's test cutoff: as_of 2024-10-31 minus 90 days


def _people(folder: Path) -> pl.DataFrame:
    """The sample's customers, given as `--customers` is."""
    return read_customers(folder / "customers.parquet", now=datetime.now(UTC))


def _snapshot_of(folder: Path, day: date) -> pl.DataFrame:
    now = datetime.now(UTC)
    events = read_events(folder / "events.parquet", now=now)
    people = read_customers(folder / "customers.parquet", now=now)
    return build_snapshot(events, people, day)


def test_an_empty_store_names_the_commands_that_fill_it(cli: CliRunner) -> None:  # noqa: F811
    result = cli.invoke(app, ["drift", "--tasks", "churn"])
    said = " ".join(result.output.split())
    assert result.exit_code == 1 and "holds no snapshot; build one first" in said
    assert "(`guanxi features build --events PATH --as-of DAY`, or `guanxi cycle`)" in said


def test_an_out_that_is_a_directory_is_refused_before_anything_is_kept(
    cli: CliRunner,  # noqa: F811
    tmp_path: Path,
) -> None:
    """loop23: `guanxi drift --out reports/` logged the MLflow run and kept the store's record,
    then ended in an IsADirectoryError traceback."""
    args = ["drift", "--tasks", "churn", "--out", str(tmp_path)]
    result = cli.invoke(app, args, env={"COLUMNS": "200"})
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "--out" in said and "is a directory" in said
    assert not (get_settings().home / "drift").exists()  # no record kept


def test_a_planted_shift_is_flagged_and_an_unshifted_feature_is_not(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion_store: Store,
    tmp_path: Path,
) -> None:
    champion_store.write_snapshot(_snapshot_of(sample, REFERENCE), REFERENCE)
    # today's customers: another draw of the same generator, with one feature shifted
    other = tmp_path / "other"
    generate_sample(300, other, seed=4)
    current = _snapshot_of(other, REFERENCE).with_columns(pl.col("tenure_days") + 200)
    champion_store.write_snapshot(current, TODAY)
    out = tmp_path / "drift.html"
    result = cli.invoke(
        app,
        ["drift", "--tasks", "churn", "--out", str(out)],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "feature drift: 2024-08-02" in result.output
    report = champion_store.read_record("drift", TODAY)
    assert report is not None and report["as_of"] == TODAY.isoformat()
    (group,) = report["features"]
    assert group["reference"] == REFERENCE.isoformat() and group["tasks"] == ["churn"]
    rows = {r["column"]: r for r in group["rows"]}
    assert rows["tenure_days"]["drifted"] and "wasserstein" in rows["tenure_days"]["fired"]
    for unshifted in ("orders_total", "spend_total", "recency_days"):
        assert not rows[unshifted]["drifted"], rows[unshifted]
    assert rows["recency_days"]["model_input"] and not rows["tenure_days"]["model_input"]
    assert [r["column"] for r in report["scores"]] == ["churn"]
    # the HTML page holds the same figures; the MLflow run the same numbers
    page = out.read_text()
    assert 'data-feature="tenure_days" data-drifted="yes"' in page
    assert 'data-feature="orders_total" data-drifted="no"' in page
    run = mlflow.get_run(report["run_id"])
    assert run.data.metrics["psi_tenure_days"] == pytest.approx(rows["tenure_days"]["psi"])
    assert mlflow.get_experiment(run.info.experiment_id).name == registry.DRIFT_EXPERIMENT
    assert report["performance"] == []


def _events_csv(path: Path) -> Path:
    rows = [
        # everyone ordered before the cutoff 2024-06-30: all four are active buyers
        *[(c, "2024-06-01 10:00:00", "order", "10") for c in "ABCD"],
        ("A", "2024-07-15 10:00:00", "order", "10"),
        ("C", "2024-07-10 10:00:00", "order", "5"),
        ("C", "2024-08-20 10:00:00", "order", "5"),
        ("B", "2024-07-01 10:00:00", "visit", ""),
        ("D", "2024-10-30 10:00:00", "order", "7"),  # after the horizon: still churned
    ]
    lines = ["customer_id,ts,event_type,amount", *(",".join(r) for r in rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _customers_csv(path: Path) -> Path:
    """The customers of :func:`_events_csv`, each signed up on 2024-01-01."""
    rows = [f"{c},2024-01-01 00:00:00,consumer,east" for c in "ABCD"]
    path.write_text("\n".join(["customer_id,signup_ts,customer_type,region", *rows]) + "\n")
    return path


def test_live_performance_matches_earlier_scores_with_what_happened(
    cli: CliRunner,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    cutoff, today = date(2024, 6, 30), date(2024, 9, 28)  # the champion's horizon: 90 days
    events_path = _events_csv(tmp_path / "events.csv")
    events = read_events(events_path, now=datetime.now(UTC))
    store = Store(get_settings().home)
    store.write_snapshot(build_snapshot(events, None, cutoff), cutoff, history=events)
    # the scores of version 1 on that day; churned: B and D (no order in the 90 days after)
    scores = pl.DataFrame(
        {
            "customer_id": ["A", "B", "C", "D"],
            "task": ["churn"] * 4,
            "score": [0.3, 0.9, 0.2, 0.25],
        }
    )
    store.write_scores(
        "churn",
        cutoff,
        "1",
        scores,
        model_name="churn",
        feature_set_version="x",
        explain_k=0,
        snapshot_digest="-",
    )
    store.write_values(
        pl.DataFrame(
            {"customer_id": ["A", "B", "C", "D"], "expected_purchases": [1.0, 0.5, 2.0, 0.0]}
        ),
        cutoff,
        horizon_days=90,
        discount_rate=0.1,
        basis="revenue",
        fit={},
    )
    recent = date(2024, 9, 18)  # its 90 days are not over by the report's day
    store.write_scores(
        "churn",
        recent,
        "1",
        scores,
        model_name="churn",
        feature_set_version="x",
        explain_k=0,
        snapshot_digest="-",
    )
    args = ["drift", "--tasks", "churn", "--as-of", today.isoformat()]
    people = ["--customers", str(_customers_csv(tmp_path / "customers.csv"))]
    result = cli.invoke(app, [*args, *people, "--events", str(events_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    report = store.read_record("drift", today)
    assert report is not None
    (live,) = report["performance"]
    assert (live["task"], live["as_of"], live["version"]) == ("churn", "2024-06-30", "1")
    assert live["outcomes_through"] == "2024-09-28" and live["rows"] == 4
    m = live["metrics"]
    # positives B (0.9) and D (0.25), negatives A (0.3) and C (0.2): 3 of 4 pairs ordered
    assert m["roc_auc"] == pytest.approx(0.75)
    assert m["positive_rate"] == pytest.approx(0.5)
    assert m["brier"] == pytest.approx((0.3**2 + 0.1**2 + 0.2**2 + 0.75**2) / 4)
    # the card's bins (an inner edge falls in the lower bin): (0.1, 0.2]: C; (0.2, 0.3]: D 0.25
    # and A 0.3 -> predicted 0.275, observed 0.5; (0.8, 0.9]: B
    assert m["ece"] == pytest.approx((0.2 + 2 * 0.225 + 0.1) / 4)
    version = registry.get_version("churn", "champion")
    assert version is not None
    assert live["card"]["roc_auc"] == pytest.approx(float(version.tags["xgboost_roc_auc"]))
    (value,) = report["value"]
    assert value["accuracy"]["forecast_total"] == 3.5 and value["accuracy"]["actual_total"] == 3
    assert value["accuracy"]["mae"] == pytest.approx(0.125)
    assert "live performance" in result.output and "0.750" in result.output
    # the table not measured says why, with its days (it said "outcomes known on 2024-12-17")
    assert (
        "churn v1 scores of 2024-09-18: not measured yet, their 90-day outcomes are complete on "
        "2024-12-17, after 2024-09-28" in " ".join(result.output.split())
    )
    # version 1 was trained as of 2024-10-31: the outcomes it is measured on were its labels
    assert (
        "churn v1 scores of 2024-06-30: trained as of 2024-10-31, after 2024-06-30: it has seen "
        "events that followed this day, so its scores of 2024-06-30 and their live performance "
        "look better than they are; judge it by the scores of days on or after 2024-10-31"
    ) in report["notes"]
    # dups28: a value table listing A twice counted A's forecast and purchases twice (5
    # customers, forecast 4.5); it is not checked, and the report says why
    store.write_values(
        pl.DataFrame(
            {"customer_id": ["A", "B", "C", "D", "A"], "expected_purchases": [1.0, 0.5, 2.0, 0, 1]}
        ),
        cutoff,
        horizon_days=90,
        discount_rate=0.1,
        basis="revenue",
        fit={},
    )
    people = ["--customers", str(_customers_csv(tmp_path / "customers.csv"))]
    result = cli.invoke(app, [*args, *people, "--events", str(events_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    report = store.read_record("drift", today)
    assert report is not None and not report["value"]
    assert (
        "value table of 2024-06-30: not checked: the value table as of 2024-06-30 lists customer "
        "'A' on more than one row: which row's expected purchases are theirs is not known, and "
        "the forecast error would count their purchases once a row; write it again (guanxi "
        "value --events PATH --as-of 2024-06-30 --out PATH)"
    ) in report["notes"]


def _report(
    rows: list[dict[str, Any]] | None = None,
    *,
    groups: list[dict[str, Any]] | None = None,
    as_of: str = "2025-12-31",
    performance: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A drift report as `print_report` reads it: ``rows`` compared for churn against the snapshot
    of 2025-10-02 (or ``groups``), its summary counted from them, no score or value checks."""
    groups = groups or [{"reference": "2025-10-02", "tasks": ["churn"], "rows": rows or []}]
    compared = [row for group in groups for row in group["rows"]]
    drifted = sum(bool(row["drifted"]) for row in compared)
    return {
        "features": groups,
        "as_of": as_of,
        "summary": {
            "features_drifted": drifted,
            "features_compared": len(compared),
            "drifted_share": drifted / len(compared),
        },
        "scores": [],
        "performance": performance or [],
        "value": [],
        "notes": [],
    }


def test_the_features_not_shown_are_counted() -> None:
    """cycle30: the table shows the first rows (five in `guanxi cycle`) and left the others out
    without a word, drifted ones too, under "15 of 82 feature comparisons drifted"."""
    row = {"ks": 0.1, "wasserstein_std": 0.2, "fired": "psi"}
    rows = [{**row, "column": f"f{i}", "psi": 1 - i / 10, "drifted": i < 3} for i in range(7)]
    report = _report(rows)
    console = Console(width=120, record=True, force_terminal=False)
    print_report(console, report, limit=2)
    text = " ".join(console.export_text().split())
    assert "5 more features not shown (1 of them drifted): the HTML report lists every one" in text
    console = Console(width=120, record=True, force_terminal=False)
    print_report(console, report, limit=6)
    assert "1 more feature not shown (0 of them drifted)" in console.export_text()
    console = Console(width=120, record=True, force_terminal=False)
    print_report(console, report, limit=7)
    assert "not shown" not in console.export_text()


def test_the_table_title_says_what_its_first_day_is() -> None:
    """light35: the title read "feature drift: 2025-10-02 (tested on, churn, repurchase) ->
    2025-12-31"; it says, as the HTML report does, that the first day is the snapshot the
    champions were tested on."""
    row = {
        "column": "f0",
        "psi": 0.5,
        "ks": 0.1,
        "wasserstein_std": 0.2,
        "drifted": False,
        "fired": "",
    }
    groups = [
        {"reference": "2025-10-02", "tasks": ["churn", "repurchase"], "rows": [row]},
        {"reference": "2025-09-01", "tasks": ["referral"], "rows": [row]},
    ]
    report = _report(groups=groups)
    console = Console(width=200, record=True, force_terminal=False)
    print_report(console, report)
    text = " ".join(console.export_text().split())
    assert "tested on," not in text
    assert (
        "feature drift: 2025-10-02 -> 2025-12-31 (reference: the snapshot the churn, repurchase "
        "champions were tested on)"
    ) in text
    assert (
        "feature drift: 2025-09-01 -> 2025-12-31 (reference: the snapshot the referral champion "
        "was tested on)"
    ) in text


def test_feature_names_are_never_cut_at_80_columns() -> None:
    # the table showed "days_since_last_com…" on an 80-column terminal
    row = {"psi": 0.156, "ks": 0.101, "wasserstein_std": 0.212, "drifted": True}
    rows = [
        {**row, "column": "days_since_last_engagement", "fired": "psi,ks,wasserstein"},
        {**row, "column": "email_click_rate_90d", "drifted": False, "fired": ""},
    ]
    report = _report(rows, as_of="2025-03-31")
    console = Console(width=80, record=True, force_terminal=False)
    print_report(console, report)
    text = console.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    words = text.split()
    assert {"days_since_last_engagement", "email_click_rate_90d", "wasserstein"} <= set(words)


def test_an_empty_cell_is_the_dash_every_other_table_prints() -> None:
    """cli33: a feature no test fired and a figure not known were "-" here, "—" in the campaign
    report, the plan and the value table beside it."""
    rows = [
        {
            "column": "email_click_rate_90d",
            "psi": 0.012,
            "ks": float("nan"),
            "wasserstein_std": None,
            "drifted": False,
            "fired": "",
        }
    ]
    performance = {
        "task": "churn",
        "as_of": "2025-01-31",
        "version": "1",
        "rows": 1200,
        "metrics": {"roc_auc": 0.71},
        "card": {},
    }
    report = _report(rows, performance=[performance])
    console = Console(width=120, record=True, force_terminal=False)
    print_report(console, report)
    rows = [line.split() for line in console.export_text().splitlines()]
    lines = {words[0]: words for words in rows if words}
    feature = ["email_click_rate_90d", "0.012", MISSING, MISSING, "no", MISSING]
    assert lines["email_click_rate_90d"] == feature
    assert lines["churn"] == ["churn", "2025-01-31", "1", "1,200", "0.710", *[MISSING] * 4]
    assert "-" not in lines["email_click_rate_90d"] + lines["churn"]


def test_an_infinite_distance_reads_as_on_the_page() -> None:
    """light36: a column constant in the reference that moved is infinitely many reference
    standard deviations away; the table printed "inf" where the page showed the missing mark
    (models.drift.format_measure writes "∞" for both)."""
    row = {
        "column": "complaints_90d",
        "psi": 9.21,
        "ks": 1.0,
        "wasserstein_std": math.inf,
        "drifted": True,
        "fired": "psi,ks,wasserstein",
    }
    report = _report([row])
    console = Console(width=120, record=True, force_terminal=False)
    print_report(console, report)
    rows = [line.split() for line in console.export_text().splitlines()]
    lines = {words[0]: words for words in rows if words}
    assert lines["complaints_90d"][:5] == ["complaints_90d", "9.210", "1.000", "∞", "yes"]


def test_a_task_without_a_champion_is_noted_as_the_caller_says(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
) -> None:
    """`guanxi cycle`'s drift step said "train and promote one" of the model its retrain step
    trains next; it says so instead (`guanxi drift` keeps the registry's advice)."""
    store = Store(get_settings().home)
    store.write_snapshot(_snapshot_of(sample, TODAY), TODAY)
    now = datetime.now(UTC)
    inputs = DriftInputs(store, TODAY, read_events(sample / "events.parquet", now=now))
    report = drift_report(inputs, ["churn"])
    assert report["notes"][0].startswith("churn: no registered model 'churn' with alias")
    assert report["notes"][0].endswith("train and promote one")
    later = "no champion to compare yet; this cycle's retrain step trains one"
    report = drift_report(inputs, ["churn"], no_model=later)
    assert report["notes"][0] == f"churn: {later}"
    # cycle31: said once for them all, not four times over in the first cycle's drift step
    report = drift_report(inputs, ["churn", "repurchase", "referral"], no_model=later)
    assert [n for n in report["notes"] if later in n] == [f"churn, repurchase, referral: {later}"]


# keep_report is all or nothing: a failure at any step leaves the store's record, the reports
# folder and MLflow as they were (the record was kept, and the run logged, before the page was
# written: a failing page left a report in the store, and on /ui/drift, that nobody got)


@pytest.fixture
def unkept(cli: CliRunner, sample: Path) -> tuple[dict[str, Any], Path]:  # noqa: F811
    """A real report of TODAY (no champion: its notes say so), computed but not kept yet."""
    home = get_settings().home
    store = Store(home)
    store.write_snapshot(_snapshot_of(sample, TODAY), TODAY)
    inputs = DriftInputs(
        store, TODAY, read_events(sample / "events.parquet", now=datetime.now(UTC))
    )
    return drift_report(inputs, ["churn"]), home


def _drift_runs() -> list[str]:
    """The ids of the drift experiment's runs that are not deleted."""
    experiment = mlflow.get_experiment_by_name(registry.DRIFT_EXPERIMENT)
    if experiment is None:
        return []
    runs = MlflowClient().search_runs([experiment.experiment_id])
    return [r.info.run_id for r in runs]


def _an_earlier_report(report: dict[str, Any], home: Path) -> tuple[bytes, bytes]:
    """Keep the day's report once (an earlier run); return its page and record, as bytes."""
    run_id, page = keep_report(dict(report), home)
    assert _drift_runs() == [run_id]
    return page.read_bytes(), Store(home).record_path("drift", TODAY).read_bytes()


def _as_before(home: Path, before: tuple[bytes, bytes] | None, runs: list[str]) -> None:
    page = home / "reports" / f"drift-{TODAY.isoformat()}.html"
    record = Store(home).record_path("drift", TODAY)
    if before is None:
        assert not page.exists() and not record.exists()
    else:
        assert (page.read_bytes(), record.read_bytes()) == before
    assert [p.name for p in page.parent.glob("*")] == ([page.name] if before else [])
    assert _drift_runs() == runs


@pytest.mark.parametrize("earlier", [False, True], ids=["first", "again"])
def test_a_disk_error_writing_the_page_keeps_nothing(
    unkept: tuple[dict[str, Any], Path], monkeypatch: pytest.MonkeyPatch, earlier: bool
) -> None:
    report, home = unkept
    before = _an_earlier_report(report, home) if earlier else None
    runs = _drift_runs()

    def full(path: Path, write: Any) -> Path:
        if path.suffix == ".html":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return atomic_write(path, write)

    monkeypatch.setattr(drift, "atomic_write", full)
    with pytest.raises(ReportNotKeptError) as raised:
        keep_report(report, home)
    said = str(raised.value)
    assert said.startswith(f"could not write the HTML page {home / 'reports'}")
    assert "No space left on device" in said and "nothing kept" in said
    assert "the store's drift record is as before" in said and "deleted" in said
    _as_before(home, before, runs)
    assert "run_id" not in report


def test_a_template_error_keeps_nothing(
    unkept: tuple[dict[str, Any], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    report, home = unkept
    before = _an_earlier_report(report, home)
    runs = _drift_runs()
    broken = Environment(undefined=StrictUndefined).from_string("{{ report.nothing.here }}")
    monkeypatch.setattr(ui_drift, "render_report", lambda r: broken.render(report=r))
    with pytest.raises(ReportNotKeptError, match="could not render the HTML page") as raised:
        keep_report(report, home)
    assert isinstance(raised.value.__cause__, UndefinedError)
    _as_before(home, before, runs)


@pytest.mark.parametrize("earlier", [False, True], ids=["first", "again"])
def test_a_failing_record_puts_the_page_back(
    unkept: tuple[dict[str, Any], Path], monkeypatch: pytest.MonkeyPatch, earlier: bool
) -> None:
    report, home = unkept
    before = _an_earlier_report(report, home) if earlier else None
    runs = _drift_runs()

    def fail(*args: Any) -> Path:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Store, "write_record", fail)
    with pytest.raises(ReportNotKeptError, match="could not keep the report in the store") as r:
        keep_report(report, home)
    assert ("put back" if earlier else "removed") in str(r.value)
    _as_before(home, before, runs)


@pytest.mark.parametrize("earlier", [False, True], ids=["first", "again"])
def test_an_interrupt_after_the_run_undoes_it_and_goes_on(
    unkept: tuple[dict[str, Any], Path], monkeypatch: pytest.MonkeyPatch, earlier: bool
) -> None:
    """drift24: Ctrl-C after the MLflow run was logged left that run behind (and the new page)."""
    report, home = unkept
    before = _an_earlier_report(report, home) if earlier else None
    runs = _drift_runs()

    def interrupted(*args: Any) -> Path:
        raise KeyboardInterrupt

    monkeypatch.setattr(Store, "write_record", interrupted)
    with pytest.raises(KeyboardInterrupt) as raised:
        keep_report(report, home)
    (note,) = raised.value.__notes__
    assert note.startswith("drift report interrupted: nothing kept: the store's drift record")
    assert ("put back" if earlier else "removed") in note and "deleted" in note
    _as_before(home, before, runs)
    assert "run_id" not in report


def test_an_interrupt_while_logging_leaves_no_run(
    unkept: tuple[dict[str, Any], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C inside the MLflow log: the run MLflow ended as FAILED stayed."""
    report, home = unkept

    def interrupted(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(registry, "log_tables", interrupted)
    with pytest.raises(KeyboardInterrupt) as raised:
        keep_report(report, home)
    assert "drift report interrupted: nothing kept; MLflow run" in raised.value.__notes__[0]
    _as_before(home, None, [])


def test_mlflow_failing_half_way_leaves_no_run(
    unkept: tuple[dict[str, Any], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run was started, then its tables failed to log: a FAILED run stayed in MLflow."""
    report, home = unkept

    def refused(*args: Any, **kwargs: Any) -> None:
        raise MlflowException("artifact store refused the upload")

    monkeypatch.setattr(registry, "log_tables", refused)
    with pytest.raises(ReportNotKeptError, match="could not log the report to MLflow") as raised:
        keep_report(report, home)
    assert "artifact store refused the upload" in str(raised.value)
    assert "deleted" in str(raised.value)
    _as_before(home, None, [])


def test_a_tracking_uri_that_fails_says_so_and_keeps_nothing(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The tracking store went away between the probe and the log: a traceback."""
    home = get_settings().home
    Store(home).write_snapshot(_snapshot_of(sample, TODAY), TODAY)

    def gone(*args: Any, **kwargs: Any) -> str:
        raise MlflowException("sqlite3.OperationalError: unable to open database file")

    monkeypatch.setattr(registry, "log_drift_report", gone)
    args = [
        "drift",
        "--tasks",
        "churn",
        "--customers",
        str(sample / "customers.parquet"),
        "--events",
        str(sample / "events.parquet"),
    ]
    result = cli.invoke(app, args, env={"COLUMNS": "200"})
    said = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert "drift report not kept: could not log the report to MLflow" in said
    assert "unable to open database file" in said and "nothing kept" in said
    _as_before(home, None, [])


def test_an_out_in_a_missing_folder_is_refused_before_the_run(
    cli: CliRunner,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The folder was created without a word (a mistyped path went unnoticed)."""
    out = tmp_path / "reprots" / "drift.html"
    result = cli.invoke(app, ["drift", "--tasks", "churn", "--out", str(out)])
    said = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2 and "--out" in said
    assert "does not exist: create it (`mkdir -p" in said
    assert not out.parent.exists() and not (get_settings().home / "drift").exists()


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [("--psi", "-1", "psi must be a non-negative number"), ("--alpha", "2", "alpha must be in")],
)
def test_a_threshold_out_of_range_is_refused_by_its_option_before_anything_is_read(
    cli: CliRunner,  # noqa: F811
    tmp_path: Path,
    option: str,
    value: str,
    said: str,
) -> None:
    """walk28: `--psi -1` was said "no drift report, nothing written: psi must be ...", after
    the events were read, naming no option."""
    events = tmp_path / "missing.parquet"  # read before the check: "file not found" was said
    args = ["drift", "--tasks", "churn", "--events", str(events), option, value]
    result = cli.invoke(app, args, env={"COLUMNS": "200"})
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and f"Invalid value for {option}: {said}" in text, text


@pytest.mark.parametrize("name", ["drift.pdf", "drift"])
def test_an_out_that_is_no_html_file_name_is_refused_before_the_run(
    cli: CliRunner,  # noqa: F811
    tmp_path: Path,
    name: str,
) -> None:
    """walk28: `--out drift.pdf` wrote the HTML page into drift.pdf, which no PDF reader opens."""
    out = tmp_path / name
    result = cli.invoke(app, ["drift", "--tasks", "churn", "--out", str(out)])
    said = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2 and "--out" in said
    assert "the report is one HTML page; give a file name ending in .html" in said
    assert not out.exists() and not (get_settings().home / "drift").exists()


def test_an_out_under_a_file_is_refused_as_that(
    cli: CliRunner,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Its folder was said not to exist, and the `mkdir -p` offered could not make it."""
    report = tmp_path / "report.html"
    report.write_text("kept")
    result = cli.invoke(app, ["drift", "--tasks", "churn", "--out", str(report / "drift.html")])
    said = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2 and "--out" in said
    assert "is a file: give the HTML file in a folder" in said and "mkdir" not in said
    assert report.read_text() == "kept" and not (get_settings().home / "drift").exists()


def test_an_out_in_a_folder_not_writable_is_refused_before_the_run(
    cli: CliRunner,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A PermissionError traceback after the run and the record were kept (the tests run as
    root, who may write anywhere: os.access says what it says to a user)."""
    folder = tmp_path / "theirs"
    folder.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != folder and real(p, mode))
    result = cli.invoke(app, ["drift", "--tasks", "churn", "--out", str(folder / "d.html")])
    said = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2 and "--out" in said and "cannot write into the folder" in said
    assert not (get_settings().home / "drift").exists()


def test_a_disk_error_in_the_command_says_what_was_undone(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    home = get_settings().home
    Store(home).write_snapshot(_snapshot_of(sample, TODAY), TODAY)

    def full(path: Path, write: Any) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(drift, "atomic_write", full)
    out = tmp_path / "drift.html"
    args = [
        "drift",
        "--tasks",
        "churn",
        "--customers",
        str(sample / "customers.parquet"),
        "--events",
        str(sample / "events.parquet"),
    ]
    result = cli.invoke(app, [*args, "--out", str(out)], env={"COLUMNS": "300"})
    said = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert f"drift report not kept: could not write the HTML page {out}" in said
    assert "the store's drift record is as before" in said and "deleted" in said
    assert not out.exists() and Store(home).read_record("drift", TODAY) is None
    assert _drift_runs() == []


def test_an_interrupt_in_the_command_says_what_was_undone(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C said only "Aborted!": not whether the report, its page or its run were kept."""
    home = get_settings().home
    Store(home).write_snapshot(_snapshot_of(sample, TODAY), TODAY)

    def interrupted(*args: Any) -> Path:
        raise KeyboardInterrupt

    monkeypatch.setattr(Store, "write_record", interrupted)
    args = [
        "drift",
        "--tasks",
        "churn",
        "--customers",
        str(sample / "customers.parquet"),
        "--events",
        str(sample / "events.parquet"),
    ]
    result = cli.invoke(app, args, env={"COLUMNS": "300"})
    said = " ".join(result.output.split())
    assert result.exit_code == 130, result.output  # interrupted, as Ctrl-C ends a command
    assert "drift report interrupted: nothing kept: the store's drift record is as before" in said
    assert not (home / "reports" / f"drift-{TODAY}.html").exists() and _drift_runs() == []


# the usual mistakes: each message names the file or field and the command that fixes it


def _said(result: Any) -> str:
    return " ".join(result.output.split())


def test_a_store_with_no_model_keeps_no_empty_report(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
) -> None:
    """An empty report ("0 of 0 feature comparisons drifted") was logged, written and kept, and
    became the newest one on /ui/drift."""
    home = get_settings().home
    Store(home).write_snapshot(_snapshot_of(sample, TODAY), TODAY)
    result = cli.invoke(app, ["drift", "--tasks", "churn"], env={"COLUMNS": "300"})
    said = _said(result)
    assert result.exit_code == 1, result.output
    assert "no drift report, nothing written: nothing to measure on 2024-12-31 (churn: no " in said
    assert (
        "`guanxi train --task churn --events PATH --as-of DAY`, then `guanxi promote --task churn`"
        in said
    )
    assert not (home / "drift").exists() and not (home / "reports").exists()
    assert _drift_runs() == []


def test_the_untrained_task_is_told_by_the_registry_not_by_the_notes_wording(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """drift24: the task to train was the one a note began with "<task>: "; a note worded
    otherwise lost the `guanxi train` advice."""
    Store(get_settings().home).write_snapshot(_snapshot_of(sample, TODAY), TODAY)
    real = drift.drift_report

    def reworded(*args: Any, **kwargs: Any) -> dict[str, Any]:
        report = real(*args, **kwargs)
        report["notes"] = [f"not compared ({note})" for note in report["notes"]]
        return report

    monkeypatch.setattr(drift, "drift_report", reworded)
    result = cli.invoke(app, ["drift", "--tasks", "churn"], env={"COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert "`guanxi train --task churn --events PATH --as-of DAY`" in _said(result)


def test_a_day_before_the_champion_was_tested_is_not_compared_backwards(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
) -> None:
    """The snapshot the champion was tested on (2024-08-02) was compared with an earlier day's,
    as if the earlier one had drifted from it, and kept as a report."""
    home = get_settings().home
    args = ["drift", "--tasks", "churn", "--as-of", "2024-05-01"]
    result = cli.invoke(
        app,
        [
            *args,
            "--customers",
            str(sample / "customers.parquet"),
            "--events",
            str(sample / "events.parquet"),
        ],
    )
    said = _said(result)
    assert result.exit_code == 1, result.output
    assert (
        "churn v1: not compared: it was tested on the snapshot of 2024-08-02, after 2024-05-01"
        in said
    )
    assert "give an --as-of on or after the day its champion was tested on" in said
    assert "pass --customers PATH" not in said  # the advice of the other cause
    assert Store(home).read_record("drift", date(2024, 5, 1)) is None and _drift_runs() == []


def test_a_day_the_champion_has_seen_in_training_is_noted(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    """drift24: a day between the champion's test day (2024-08-02) and its training day
    (2024-10-31) was compared without a word that the model had seen what followed it; only
    `guanxi cycle` said so, of its scores."""
    home, out = get_settings().home, tmp_path / "drift.html"
    args = ["drift", "--tasks", "churn", "--as-of", "2024-09-30", "--out", str(out)]
    result = cli.invoke(
        app,
        [
            *args,
            "--customers",
            str(sample / "customers.parquet"),
            "--events",
            str(sample / "events.parquet"),
        ],
    )
    assert result.exit_code == 0, result.output
    note = (
        "churn v1: trained as of 2024-10-31, after 2024-09-30: it has seen events that followed "
        "this day, so its scores of 2024-09-30 and their live performance look better than they "
        "are; give an --as-of on or after 2024-10-31"
    )
    assert f"note: {note}" in _said(result)
    record = Store(home).read_record("drift", date(2024, 9, 30))
    assert record is not None and note in record["notes"] and record["champions"] == {"churn": "1"}
    assert note in " ".join(out.read_text().split())
    # on or after its training day there is nothing to say
    events = read_events(sample / "events.parquet", now=datetime.now(UTC))
    report = drift_report(DriftInputs(Store(home), TODAY, events, _people(sample)), ["churn"])
    assert not any("trained as of" in n for n in report["notes"])


def test_events_with_none_by_the_day_keep_no_empty_snapshot(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    """cycle30: `--events` with none on or before the day (a later extract) built an empty
    snapshot of the day and of the champion's test day, kept both in the store, where every later
    report (and `guanxi score`) read them, and said "nothing written" with "column
    'recency_days': cannot measure drift with 0 reference and 0 current rows"."""
    home = get_settings().home
    late = tmp_path / "late.parquet"
    start = datetime(2025, 1, 1, tzinfo=UTC)
    pl.read_parquet(sample / "events.parquet").filter(pl.col("ts") >= start).write_parquet(late)
    args = [
        "drift",
        "--tasks",
        "churn",
        "--as-of",
        TODAY.isoformat(),
        "--customers",
        str(sample / "customers.parquet"),
        "--events",
        str(late),
    ]
    result = cli.invoke(app, args, env={"COLUMNS": "300"})
    said = _said(result)
    assert result.exit_code == 1, result.output
    assert (
        f"no drift report, nothing written: cannot build the snapshot of {TODAY}: no customer "
        f"has an event on or before {TODAY} (the first event is on 2025-01-01) in --events: "
        f"nothing kept; pass --events reaching back to {TODAY}, or a later --as-of"
    ) in said
    assert "cannot measure drift" not in said
    store = Store(home)
    assert store.list_snapshots() == [] and store.read_record("drift", TODAY) is None
    # one kept empty (by a cycle before cycle30) is named with its file and the command
    empty = _snapshot_of(sample, TODAY).head(0)
    store.write_snapshot(empty, TODAY)
    result = cli.invoke(app, args[:-2], env={"COLUMNS": "300"})
    said = _said(result)
    assert result.exit_code == 1, result.output
    assert (
        f"the store's snapshot of {TODAY} holds no customer ({store.snapshot_path(TODAY)}): "
        f"build it again from the events up to {TODAY} (`guanxi features build --events PATH "
        f"--as-of {TODAY}`)"
    ) in said
    assert store.read_record("drift", TODAY) is None and _drift_runs() == []


def test_a_champion_of_another_feature_set_is_not_compared(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tiny_bundle: ModelBundle,
    tiny_data: Any,
) -> None:
    """cycle30: a champion trained on another feature set (before an upgrade of guanxi) was
    scored on this one's snapshots for its score drift, which `guanxi score` and the server
    refuse, and the report kept; the refusal said "give an --as-of on or after" its test day."""
    old = _variant(tiny_bundle, feature_set_version="0")
    _train(cli, sample, monkeypatch, _result(old, tiny_data, "B"))
    assert cli.invoke(app, ["promote", "--task", "churn"]).exit_code == 0
    args = ["drift", "--tasks", "churn", "--as-of", TODAY.isoformat()]
    result = cli.invoke(
        app,
        [
            *args,
            "--customers",
            str(sample / "customers.parquet"),
            "--events",
            str(sample / "events.parquet"),
        ],
    )
    said = _said(result)
    assert result.exit_code == 1, result.output
    assert (
        f"no drift report, nothing written: nothing to measure on {TODAY} (churn v1: not "
        "compared: model churn@champion (version 1) was trained on feature set version 0, but "
        f"this guanxi builds feature set version {FEATURE_SET_VERSION}; retrain it (`guanxi "
        "train`) and promote the new version before scoring)"
    ) in said
    assert "give an --as-of" not in said
    assert Store(get_settings().home).read_record("drift", TODAY) is None and _drift_runs() == []


def test_an_as_of_without_a_snapshot_names_the_days_there_are_and_the_command(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
) -> None:
    home = get_settings().home
    Store(home).write_snapshot(_snapshot_of(sample, TODAY), TODAY)
    args = ["drift", "--tasks", "churn", "--as-of", "2024-05-01"]
    result = cli.invoke(app, args, env={"COLUMNS": "300"})
    said = _said(result)
    assert result.exit_code == 1, result.output
    assert "the store holds no snapshot of 2024-05-01, nor the history to build it" in said
    assert "(`guanxi features build --events PATH --as-of 2024-05-01`)" in said
    assert "the store's snapshots: 2024-12-31" in said


def test_a_score_table_of_a_day_the_events_miss_is_noted_and_the_rest_reported(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    """cycle30: `--events` of a rolling extract (from 2024-06-01) missing the day of an old score
    table built its snapshot empty and kept it; the table is noted, the report kept."""
    home, old = get_settings().home, date(2024, 5, 1)
    rolling = tmp_path / "rolling.parquet"
    start = datetime(2024, 6, 1, tzinfo=UTC)
    pl.read_parquet(sample / "events.parquet").filter(pl.col("ts") >= start).write_parquet(rolling)
    first = pl.read_parquet(rolling)["ts"].min()
    store = Store(home)
    scores = pl.DataFrame({"task": ["churn"], "customer_id": ["A"], "score": [0.5]})
    store.write_scores(
        "churn", old, "1", scores, model_name="churn", feature_set_version="x", explain_k=0,
        snapshot_digest="-",
    )  # fmt: skip
    args = [
        "drift",
        "--tasks",
        "churn",
        "--as-of",
        TODAY.isoformat(),
        "--customers",
        str(sample / "customers.parquet"),
        "--events",
        str(rolling),
    ]
    result = cli.invoke(app, [*args, "--out", str(tmp_path / "d.html")], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    report = store.read_record("drift", TODAY)
    assert report is not None and report["champions"] == {"churn": "1"}
    assert (
        f"churn v1 scores of {old}: not measured: cannot build the snapshot of {old}: no customer "
        f"has an event on or before {old} (the first event is on {first:%Y-%m-%d}) in --events: "
        f"nothing kept; pass --events reaching back to {old}"
    ) in report["notes"]
    assert old not in store.list_snapshots()


def test_an_as_of_after_today_is_refused_as_such(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
) -> None:
    """cycle30: a day to come was told to build its snapshot (`guanxi features build --as-of`),
    which refuses a day after today. cycle31: in the words guanxi cycle refuses it with
    (:func:`pipelines.days.after_today`), each said it apart and differently."""
    Store(get_settings().home).write_snapshot(_snapshot_of(sample, TODAY), TODAY)
    later = datetime.now(UTC).date() + timedelta(days=30)
    result = cli.invoke(app, ["drift", "--as-of", later.isoformat()], env={"COLUMNS": "300"})
    said = _said(result)
    assert result.exit_code == 1, result.output
    assert f"no drift report, nothing written: {after_today(later)}" in said
    assert "guanxi features build" not in said


def test_a_newest_snapshot_after_today_is_refused_as_such(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
) -> None:
    """cycle31: `guanxi drift` without --as-of reports the newest snapshot's day, and one of a
    day to come (`guanxi score --as-of` keeps it) was reported on since 3d88a67 moved the
    refusal of a day after today to the --as-of given."""
    later = datetime.now(UTC).date() + timedelta(days=30)
    Store(get_settings().home).write_snapshot(_snapshot_of(sample, TODAY), later)
    result = cli.invoke(app, ["drift", "--tasks", "churn"], env={"COLUMNS": "300"})
    said = _said(result)
    assert result.exit_code == 1, result.output
    assert (
        f"no drift report, nothing written: the store's newest snapshot is of {later}, after "
        f"today ({datetime.now(UTC).date()} UTC): give --as-of "
    ) in said


def test_an_as_of_after_today_is_said_before_a_missing_home(
    cli: CliRunner,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """cycle31: a day to come in a GUANXI_HOME not made yet was told to set GUANXI_HOME or
    build a store, and, once that was done, that the day was in the future."""
    home = tmp_path / "not-a-home"
    monkeypatch.setenv("GUANXI_HOME", str(home))
    get_settings.cache_clear()
    later = datetime.now(UTC).date() + timedelta(days=30)
    result = cli.invoke(app, ["drift", "--as-of", later.isoformat()], env={"COLUMNS": "300"})
    said = _said(result)
    assert result.exit_code == 1, result.output
    assert f"no drift report, nothing written: {after_today(later)}" in said
    assert "GUANXI_HOME" not in said and not home.exists()


def test_a_home_that_does_not_exist_is_named(
    cli: CliRunner,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It said "the store holds no snapshot" (or, with --as-of, "no history for DAY" under the
    missing folder), as if a store were there."""
    home = tmp_path / "not-a-home"
    monkeypatch.setenv("GUANXI_HOME", str(home))
    get_settings.cache_clear()
    for extra in ([], ["--as-of", "2024-12-31"]):
        result = cli.invoke(app, ["drift", "--tasks", "churn", *extra], env={"COLUMNS": "300"})
        said = _said(result)
        assert result.exit_code == 1, result.output
        assert f"GUANXI_HOME is {home}, which does not exist" in said
        assert "(`export GUANXI_HOME=...`)" in said and not home.exists()


def test_a_page_that_cannot_be_read_is_said_before_anything_is_logged(
    unkept: tuple[dict[str, Any], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The day's page is read (to put back on a failure) before the MLflow run is logged: an
    unreadable one stops the report with nothing kept, not after the run was logged."""
    report, home = unkept
    page = home / "reports" / f"drift-{TODAY.isoformat()}.html"
    page.parent.mkdir()
    page.write_text("the old page")

    def unreadable(self: Path) -> bytes:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    with monkeypatch.context() as patch:
        patch.setattr(Path, "read_bytes", unreadable)
        with pytest.raises(ReportNotKeptError, match=r"could not read the HTML page .* kept$"):
            keep_report(report, home)
    assert page.read_text() == "the old page" and _drift_runs() == []
    assert Store(home).read_record("drift", TODAY) is None


def test_a_champion_whose_files_are_gone_is_said_with_where_and_what_to_run(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
    train_churn: Callable[[], None],
) -> None:
    """cycle26: with the champion's files moved away, `guanxi drift` ended in MLflow's traceback
    ("No such artifact: 'MLmodel'"); had the load said "not found", it advised a later --as-of.
    Its first advice, "retrain it, then guanxi promote", ended in that traceback again (promote
    loads the champion to compare), and "promote another version" has no guanxi command; what it
    says now (the README's steps) is followed to the end here."""
    home = get_settings().home
    uri = MlflowClient().get_model_version_download_uri("churn", "1")
    files = Path(uri.removeprefix("file://"))
    files.rename(tmp_path / "moved")
    args = ["drift", "--tasks", "churn", "--as-of", str(TODAY)]
    result = cli.invoke(
        app,
        [
            *args,
            "--customers",
            str(sample / "customers.parquet"),
            "--events",
            str(sample / "events.parquet"),
        ],
        env={"COLUMNS": "1000"},
    )
    said = _said(result)
    assert result.exit_code == 1, result.output
    assert (
        f"nothing to measure on {TODAY} (churn v1: not compared: the champion's files are "
        f"missing (looked in {files}): put them back there, or promote another version whose "
        "files exist (`guanxi promote --task churn --version N`), or train again (`guanxi train "
        "--task churn --events PATH --as-of DAY`, then `guanxi promote --task churn`))" in said
    )
    assert "--as-of on or after" not in said and "Traceback" not in said
    assert Store(home).read_record("drift", TODAY) is None and _drift_runs() == []
    train_churn()
    promoted = cli.invoke(app, ["promote", "--task", "churn"])
    assert promoted.exit_code == 0, promoted.output
    champion_now = registry.get_version("churn", registry.CHAMPION)
    assert champion_now is not None and str(champion_now.version) == "2"


def test_a_score_table_whose_version_files_are_gone_is_noted_not_measured(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """cycle26: the live performance of a stored table loads the version that scored it; a
    version whose files were gone was a traceback, and the report of every other table lost."""
    store = Store(get_settings().home)
    scores = pl.DataFrame({"customer_id": ["A"], "task": ["churn"], "score": [0.3]})
    store.write_scores(
        "churn",
        REFERENCE,
        "2",
        scores,
        model_name="churn",
        feature_set_version="x",
        explain_k=0,
        snapshot_digest="-",
    )
    real = drift.load_version

    def gone(task: str, alias: str | None = None, version: str | None = None) -> Any:
        if version is not None:  # version 2 scored the table; version 1 is the champion
            raise ModelFilesMissingError(task, version, "/nowhere")
        return real(task, alias=alias)

    monkeypatch.setattr(drift, "load_version", gone)
    frame = read_events(sample / "events.parquet", now=datetime.now(UTC))
    report = drift_report(DriftInputs(store, TODAY, frame, _people(sample)), ["churn"])
    assert report["champions"] == {"churn": "1"} and report["performance"] == []
    assert (
        f"churn v2 scores of {REFERENCE}: not measured: the files of churn version 2 are missing "
        "(looked in /nowhere)" in report["notes"]
    )


def test_tables_of_days_after_the_report_are_left_out(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
) -> None:
    """cycle26: a report of a past day (a cycle backfilling 2024-09-30 after one of 2025-03-31)
    noted the later day's tables as "not measured yet, their 90-day outcomes are complete on
    2025-06-29, after 2024-09-30", as if they were waiting for that day's outcomes."""
    store, later = Store(get_settings().home), date(2025, 3, 31)
    scores = pl.DataFrame({"customer_id": ["A"], "task": ["churn"], "score": [0.3]})
    store.write_scores(
        "churn",
        later,
        "1",
        scores,
        model_name="churn",
        feature_set_version="x",
        explain_k=0,
        snapshot_digest="-",
    )
    values = pl.DataFrame({"customer_id": ["A"], "expected_purchases": [1.0]})
    store.write_values(values, later, horizon_days=90, discount_rate=0.1, basis="revenue", fit={})
    frame = read_events(sample / "events.parquet", now=datetime.now(UTC))
    report = drift_report(DriftInputs(store, TODAY, frame, _people(sample)), ["churn"])
    assert report["champions"] == {"churn": "1"}
    assert not [n for n in report["notes"] if str(later) in n], report["notes"]


def test_a_score_table_of_a_deleted_version_is_noted_not_measured(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
) -> None:
    """cycle26: a stored table of a version no longer registered ended `guanxi drift` in a
    ModelNotFoundError traceback, the report of every other table lost."""
    store = Store(get_settings().home)
    scores = pl.DataFrame({"customer_id": ["A"], "task": ["churn"], "score": [0.3]})
    store.write_scores(
        "churn",
        REFERENCE,
        "7",
        scores,
        model_name="churn",
        feature_set_version="x",
        explain_k=0,
        snapshot_digest="-",
    )
    frame = read_events(sample / "events.parquet", now=datetime.now(UTC))
    report = drift_report(DriftInputs(store, TODAY, frame, _people(sample)), ["churn"])
    assert report["champions"] == {"churn": "1"}
    assert (
        f"churn v7 scores of {REFERENCE}: not measured: no registered model version churn/7"
        in report["notes"]
    )


def test_a_partial_extract_is_said_with_counts(cli: CliRunner, sample: Path) -> None:  # noqa: F811
    """cycle31: --events of some customers or of the last months, or --customers of some
    customers, gave no word: the snapshots built and the outcomes read from them were the
    extract's, and a reviewer read drift that was only its shape. cycle31b: it said drift showed
    the extract when every snapshot was the store's, only the outcomes read from the extract;
    it says which snapshots were built from it, or that none was."""
    store, now = Store(get_settings().home), datetime.now(UTC)
    events = read_events(sample / "events.parquet", now=now)
    people = read_customers(sample / "customers.parquet", now=now)
    snapshot = build_snapshot(events, people, TODAY)
    store.write_snapshot(snapshot, TODAY, history=events)
    assert DriftInputs(store, TODAY, events, people).partial() == []  # the whole extract
    gone = snapshot["customer_id"].head(10)
    whose = f"of the {snapshot.height:,} customers of the store's snapshot of {TODAY}"
    fewer = events.filter(~pl.col("customer_id").is_in(gone.implode()))
    said = DriftInputs(store, TODAY, fewer, _people(sample)).partial()
    assert said == [
        f"partial --events: 10 customers {whose} have no event in them up to {TODAY} "
        f"({', '.join(gone.head(3))} and 7 more); drift compares the store's snapshots, none "
        "built from them; what is read from them (the outcomes of live performance, the value "
        "forecast's error) shows the extract, not those customers: pass the events of every "
        "customer"
    ]
    report = drift_report(DriftInputs(store, TODAY, fewer, _people(sample)), ["churn"])
    assert report["notes"][0] == said[0]  # kept with the report, on the page too
    first = events["ts"].min()
    assert isinstance(first, datetime)
    late = events.filter(pl.col("ts") >= datetime(2024, 6, 1, tzinfo=UTC))
    assert (
        f"partial --events: they start on 2024-06-01, the events the snapshot of {TODAY} was "
        f"built from on {first:%Y-%m-%d} ({(date(2024, 6, 1) - first.date()).days:,} days "
        "before); drift compares the store's snapshots, none built from them; what is read "
        "from them (the outcomes of live performance, the value forecast's error) shows the "
        "extract, not those customers: pass the events from the first day"
    ) in DriftInputs(store, TODAY, late, _people(sample)).partial()
    inputs = DriftInputs(store, TODAY, late, _people(sample))
    inputs.snapshot(REFERENCE)  # the store holds none: built from the extract, and kept
    assert (
        f"the snapshots built from them ({REFERENCE}), and drift and live performance measured "
        "on them, show the extract, not those customers: pass the events from the first day"
    ) in " ".join(inputs.partial())
    early = events.filter(pl.col("ts") < datetime(2024, 12, 1, tzinfo=UTC))
    ended = [
        n for n in DriftInputs(store, TODAY, early, _people(sample)).partial() if "they end" in n
    ]
    assert ended == [
        f"partial --events: they end on 2024-11-30, 31 days before {TODAY}: the days after it "
        "read as no activity, in the snapshots built from them and the outcomes read from them; "
        f"pass the events up to {TODAY}"
    ]
    some = people.filter(~pl.col("customer_id").is_in(gone.implode()))
    named = f"{', '.join(gone.head(3))} and 7 more"
    listed = f"partial --customers: 10 customers {whose} are not in it ({named})"
    assert DriftInputs(store, TODAY, events, some).partial() == [
        f"{listed}: no snapshot was built with it (the store's were read), so nothing here lacks "
        "their attributes; a snapshot built with it would: pass every customer"
    ]
    inputs = DriftInputs(store, TODAY, events, some)
    inputs.snapshot(date(2024, 9, 30))  # not REFERENCE, which the store now holds
    assert inputs.partial() == [
        f"{listed}: the snapshots built with it (2024-09-30) lack their attributes; drift and "
        "live performance measured on them show the extract, not those customers: pass every "
        "customer"
    ]


def test_tables_waiting_for_their_outcomes_are_said_in_one_note(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
) -> None:
    """cycle31: each table was noted apart, and a daily cycle keeps a score table a task and a
    value table a day: its report printed some ninety "not measured yet" notes a task and 365
    "not checked yet" ones, the day's log lost in them (two monthly cycles printed fifteen)."""
    store = Store(get_settings().home)
    scores = pl.DataFrame({"customer_id": ["A"], "task": ["churn"], "score": [0.3]})
    for day in (date(2024, 11, 1), date(2024, 12, 1), TODAY):
        store.write_scores(
            "churn",
            day,
            "1",
            scores,
            model_name="churn",
            feature_set_version="x",
            explain_k=0,
            snapshot_digest="-",
        )
    values = pl.DataFrame({"customer_id": ["A"], "expected_purchases": [1.0]})
    for day in (date(2024, 10, 15), date(2024, 11, 1), date(2024, 12, 1), TODAY):
        store.write_values(values, day, horizon_days=90, discount_rate=0.1, basis="revenue", fit={})
    frame = read_events(sample / "events.parquet", now=datetime.now(UTC))
    notes = drift_report(DriftInputs(store, TODAY, frame, _people(sample)), ["churn"])["notes"]
    assert [n for n in notes if "yet" in n] == [
        "churn v1 scores of 3 days (2024-11-01, 2024-12-01 and 2024-12-31): not measured yet, "
        "their 90-day outcomes are complete between 2025-01-30 and 2025-03-31, after 2024-12-31",
        "value tables of 4 days (2024-10-15 to 2024-12-31): not checked yet, their 90-day "
        "purchases are complete between 2025-01-13 and 2025-03-31, after 2024-12-31",
    ]


def test_drift_command_loads_no_optimiser() -> None:
    """review38 M4: guanxi drift checks the purchase forecasts' value tables for repeated
    customers, and took the refusal from models.campaigns, which loads the offers schema and the
    plan's knapsack solver; the refusal is models.customer_rows' now."""
    loaded = loaded_by("pipelines.drift")
    assert not {"models.campaigns", "models.targeting", "models.knapsack"} & loaded


def test_an_old_version_whose_recorded_horizon_is_unreadable_is_a_note_of_the_report(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tiny_bundle: ModelBundle,
    tiny_data: Any,
) -> None:
    """`guanxi drift` (and the cycle's drift step) ended in float("ninety")'s traceback on a
    stored score table of a version recording a horizon that is no whole number of days; then
    one such old version, replaced since (trained again, `promote --version 2`), refused the
    whole report on every later day: its tables are noted as not measured, the report made."""
    odd = {**tiny_bundle.metadata, "params": {"horizon": "ninety"}}
    _train(cli, sample, monkeypatch, _result(_variant(tiny_bundle, metadata=odd), tiny_data, "B"))
    assert cli.invoke(app, ["promote", "--task", "churn"]).exit_code == 0
    scores = pl.DataFrame({"customer_id": ["A"], "task": ["churn"], "score": [0.3]})
    Store(get_settings().home).write_scores(
        "churn",
        REFERENCE,
        "1",
        scores,
        model_name="churn",
        feature_set_version="x",
        explain_k=0,
        snapshot_digest="-",
    )
    _train(cli, sample, monkeypatch, _result(tiny_bundle, tiny_data, "B"))
    promoted = cli.invoke(app, ["promote", "--task", "churn", "--version", "2"])
    assert promoted.exit_code == 0, promoted.output
    args = ["drift", "--tasks", "churn", "--as-of", str(TODAY)]
    result = cli.invoke(
        app,
        [
            *args,
            "--customers",
            str(sample / "customers.parquet"),
            "--events",
            str(sample / "events.parquet"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        f"churn v1 scores of {REFERENCE}: not measured: churn version 1's recorded horizon "
        "(metadata params.horizon) is 'ninety', not a whole number of days"
    ) in " ".join(result.output.split())
    assert "no drift report" not in result.output
    assert (get_settings().home / "reports" / f"drift-{TODAY}.html").is_file()


def test_a_horizon_tag_that_is_no_whole_number_of_days_is_said_naming_it() -> None:
    """A version recording its horizon only as a tag ("ninety") was int(float(tag))'s
    traceback when its test day was read from it; the report leaves it out, naming it."""
    model = SimpleNamespace(
        name="churn",
        version="3",
        bundle=SimpleNamespace(metadata={"params": {}}),
        tags={"as_of": "2024-10-31", "horizon": "ninety"},
    )
    with pytest.raises(DefinitionUnreadableError) as raised:
        drift.reference_day(model)  # type: ignore[arg-type]
    assert str(raised.value) == (
        "churn version 3's recorded horizon (tag horizon) is 'ninety', not a whole number of days"
    )
    model.tags["horizon"] = "90"
    assert drift.reference_day(model) == REFERENCE  # type: ignore[arg-type]
