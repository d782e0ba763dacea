"""Drift without the customers' attributes on one side: what is compared, and what is not."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import xgboost as xgb
from typer.testing import CliRunner

from features.contracts import FEATURE_SET_VERSION
from features.events import read_events
from features.snapshot import build_snapshot
from features.store import Store
from models.artifact import ModelBundle
from pipelines.cli import app
from pipelines.cycle import CycleConfig, retrain_reasons
from pipelines.drift import DriftInputs, drift_report
from serving.settings import get_settings
from tests.pipelines.drift_setups import TODAY, cycle_drift, kept_notes
from tests.pipelines.test_drift_cli import _snapshot_of
from tests.pipelines.test_train_cli import _result, _train, cli, sample  # noqa: F401  (fixtures)

REFERENCE = date(2024, 8, 2)  # the champion's test cutoff: as_of 2024-10-31 minus 90 days
PROFILE_INPUTS = ["recency_days", "signup_tenure_days", "is_business"]


@pytest.fixture
def profile_champion(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A churn champion reading customers-file inputs, as real churn champions do: trained
    through `guanxi train` (training stubbed) on the reference day's snapshot, and promoted."""
    snapshot = _snapshot_of(sample, REFERENCE)
    x = snapshot.select(["customer_id", *PROFILE_INPUTS]).to_pandas().set_index("customer_id")
    x = x.astype(float)
    y = (x["signup_tenure_days"] > x["signup_tenure_days"].median()).astype(int).to_numpy()
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "eta": 0.3, "seed": 0, "nthread": 1},
        xgb.DMatrix(x.to_numpy(), label=y, missing=np.nan),
        num_boost_round=20,
    )
    bundle = ModelBundle(
        task="churn",
        booster=booster,
        feature_names=PROFILE_INPUTS,
        calibration={"method": "sigmoid", "a": 0.9, "b": -0.1},
        feature_set_version=FEATURE_SET_VERSION,
        categories=[],
        metadata={"grade": "B", "metrics": {"xgboost": {"roc_auc": 0.8}}},
    )
    out, _ = _train(cli, sample, monkeypatch, _result(bundle, (x, y), "B"))
    assert out.exit_code == 0, out.output
    assert cli.invoke(app, ["promote", "--task", "churn"]).exit_code == 0


def _reference_with_today_without(files: Path) -> tuple[Store, pl.DataFrame]:
    """The champion's test day stored with the customers' attributes, the day without them (a
    cycle with --customers, then one without)."""
    store = Store(get_settings().home)
    events = read_events(files / "events.parquet", now=datetime.now(UTC))
    people = files / "customers.parquet"
    store.write_snapshot(_snapshot_of(files, REFERENCE), REFERENCE, customers=people)
    store.write_snapshot(build_snapshot(events, None, TODAY), TODAY, history=events)
    return store, events


SCORES_NOT_MEASURED = (
    "churn v1: score drift not measured: it reads signup_tenure_days, is_business, which "
    f"come from the customers file, and the snapshot of {TODAY} was built without the "
    "customers' attributes: its scores would differ for that alone"
)


def test_without_attributes_tenure_days_and_a_profile_champions_scores_are_not_drift(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    profile_champion: None,
) -> None:
    """Review47 M1: tenure_days, the longer of the first event's age and signup_tenure_days,
    drifted, and so did the scores of a champion reading signup_tenure_days and is_business
    (PSI 3.87): the day lacked the customers' attributes, the reference had them."""
    store, _ = _reference_with_today_without(sample)
    report = drift_report(DriftInputs(store, TODAY), ["churn"])
    [compared] = report["features"]
    columns = {r["column"] for r in compared["rows"]}
    assert "recency_days" in columns and "tenure_days" not in columns
    assert "tenure_days" not in report["summary"]["drifted"]
    assert report["summary"]["scores_drifted"] == [] and report["scores"] == []
    assert (
        f"tenure_days not compared against the snapshot of {REFERENCE} either: the longer of "
        "the days since the first event and signup_tenure_days, it lengthens with the "
        "customers' sign-up dates"
    ) in report["notes"]
    assert SCORES_NOT_MEASURED in report["notes"]


def test_a_cycle_without_customers_retrains_no_profile_champion_for_its_scores(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    profile_champion: None,
) -> None:
    """Review47 M1, the cycle: its drift step gave scores_drifted ['churn'], and the retrain
    step turned that into "scores drifted": a retrain caused by the missing attributes alone."""
    home = get_settings().home
    store, events = _reference_with_today_without(sample)
    config = CycleConfig(tasks=("churn",))
    done = cycle_drift(home, events, config=config)
    assert done["scores_drifted"] == [] and "tenure_days" not in done["drifted"]
    reasons = retrain_reasons(
        date(2024, 10, 31), TODAY, done["drifted_share"], "churn" in done["scores_drifted"], config
    )
    assert "scores drifted" not in reasons
    assert SCORES_NOT_MEASURED in kept_notes(store)


def test_a_customers_file_without_sign_up_dates_nor_regions_gives_attributes(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    champion: None,
    tmp_path: Path,
) -> None:
    """Review47 L1: signup_ts and region are optional columns, so a snapshot built with such a
    customers file, every customer a consumer, had its profile features left out, a note
    saying it was built without the customers' attributes and to pass the --customers given."""
    people = tmp_path / "customers.parquet"
    ids = pl.read_parquet(sample / "customers.parquet").select("customer_id")
    ids.with_columns(customer_type=pl.lit("consumer")).write_parquet(people)
    args = ["drift", "--tasks", "churn", "--as-of", TODAY.isoformat()]
    args += ["--events", str(sample / "events.parquet"), "--customers", str(people)]
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    store = Store(get_settings().home)
    record = store.read_record("drift", TODAY)
    assert record is not None
    [compared] = record["features"]
    columns = {r["column"] for r in compared["rows"]}
    assert {"is_business", "signup_tenure_days", "tenure_days", "recency_days"} <= columns
    assert not [n for n in record["notes"] if "without the customers' attributes" in n]
    # a later report reads them from the store, as recorded: the same
    again = cli.invoke(app, ["drift", "--tasks", "churn", "--as-of", TODAY.isoformat()])
    assert again.exit_code == 0, again.output
    assert "without the customers' attributes" not in " ".join(again.output.split())


def test_a_report_on_the_champions_test_day_names_that_day_once(
    cli: CliRunner,  # noqa: F811
    sample: Path,  # noqa: F811
    profile_champion: None,
) -> None:
    """Review47 L2: a report on the champion's test day itself (allowed) listed the day twice
    among those without the customers' attributes, and the note said its clause twice."""
    store = Store(get_settings().home)
    events = read_events(sample / "events.parquet", now=datetime.now(UTC))
    store.write_snapshot(build_snapshot(events, None, REFERENCE), REFERENCE, history=events)
    report = drift_report(DriftInputs(store, REFERENCE), ["churn"])
    [profile] = [n for n in report["notes"] if n.startswith("profile features")]
    assert profile.count(f"snapshot of {REFERENCE} was built without") == 1, profile
    assert (
        "churn v1: score drift not measured: it reads signup_tenure_days, is_business, which "
        f"come from the customers file, and the snapshot of {REFERENCE} was built without the "
        "customers' attributes: its scores would differ for that alone"
    ) in report["notes"]


def test_lacks_attributes_is_public() -> None:
    """Review47 L5: public, documented and used by name, but not in the module's __all__."""
    import pipelines.drift as drift

    assert "lacks_attributes" in drift.__all__


def test_champion_unreadable_error_is_public() -> None:
    """review54 L4: champions_replaced says it raises ChampionUnreadableError and the tests
    import it, but it was not in the module's __all__."""
    import pipelines.drift as drift

    assert "ChampionUnreadableError" in drift.__all__
