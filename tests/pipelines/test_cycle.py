"""`guanxi cycle`: the same day twice does nothing new; a SIGKILL in any step resumes there.

Real components throughout: sample data, the Polars snapshot, the value fit, XGBoost training
with one Optuna trial, the promotion gate and the SQLite MLflow store under GUANXI_HOME. The
kills are real SIGKILLs of a `guanxi cycle` process (the test hook
:data:`pipelines.cycle.KILL_ENV` names the step to die in).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import mlflow
import pytest
from typer.testing import CliRunner

from features.store import Store
from models import registry
from pipelines.cli import _register, app
from pipelines.cycle import KILL_ENV, STEPS, CycleConfig, retrain_reasons
from pipelines.sample import generate_sample
from serving.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
DAY = date(2024, 10, 31)


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cycle-sample")
    generate_sample(1000, out, seed=3)
    return out


def _args(data: Path) -> list[str]:
    return [
        "cycle",
        "--events",
        str(data / "events.parquet"),
        "--customers",
        str(data / "customers.parquet"),
        "--as-of",
        DAY.isoformat(),
        "--tasks",
        "churn",
        "--trials",
        "1",
        "--value-horizon",
        "90",
    ]


def test_retrain_reasons() -> None:
    config = CycleConfig(max_model_age_days=90, max_drifted_share=0.25)
    day = date(2025, 3, 31)
    assert retrain_reasons(None, day, 0.0, False, config) == ["no champion"]
    assert retrain_reasons(date(2025, 1, 1), day, 0.25, False, config) == []
    assert retrain_reasons(date(2024, 12, 31), day, 0.3, True, config) == [
        "30.0% of features drifted",
        "scores drifted",
    ]
    reasons = retrain_reasons(date(2024, 12, 30), day, 0.3, True, config)
    assert reasons == ["model age 91 days > 90", "30.0% of features drifted", "scores drifted"]


def _runs() -> int:
    return len(mlflow.search_runs(search_all_experiments=True, output_format="list"))


@pytest.mark.slow
def test_the_same_day_twice_does_nothing_new(events: Path, local_tracking: Path) -> None:
    _register()
    get_settings.cache_clear()
    cli = CliRunner()
    first = cli.invoke(app, _args(events), env={"COLUMNS": "200"})
    assert first.exit_code == 0, first.output
    store = Store(local_tracking)
    record = store.read_record("cycle", DAY)
    assert record is not None and record["complete"] and list(record["steps"]) == list(STEPS)
    assert record["steps"]["retrain"]["summary"]["churn"]["reasons"] == ["no champion"]
    assert record["steps"]["promote"]["summary"]["churn"]["promoted"]
    assert store.read_scores("churn", DAY, "1") is not None  # rescored with the new champion
    assert store.read_values(DAY) is not None and store.read_record("drift", DAY) is not None
    runs, files = _runs(), sorted(p for p in local_tracking.rglob("*") if p.is_file())
    second = cli.invoke(app, _args(events), env={"COLUMNS": "200"})
    assert second.exit_code == 0, second.output
    for step in STEPS:
        assert f"{step}: done already" in second.output
    assert [v.version for v in registry.list_versions("churn")] == ["1"]
    assert _runs() == runs
    assert sorted(p for p in local_tracking.rglob("*") if p.is_file()) == files
    assert store.read_record("cycle", DAY) == record
    get_settings.cache_clear()


@pytest.mark.slow
def test_a_sigkill_in_each_step_resumes_from_that_step(events: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env |= {"GUANXI_HOME": str(home), "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    env["PYTHONUNBUFFERED"] = "1"  # what was printed before the SIGKILL reaches the pipe
    command = [sys.executable, "-c", "from pipelines.cli import main; main()", *_args(events)]
    store = Store(home)
    for i, step in enumerate(STEPS):
        before = store.read_record("cycle", DAY)
        proc = subprocess.run(
            command, env={**env, KILL_ENV: step}, capture_output=True, text=True, check=False
        )
        assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
        record = store.read_record("cycle", DAY) or {"steps": {}}
        # this run redid the step killed last time, then died in this one, unrecorded
        assert list(record["steps"]) == list(STEPS[:i])
        for done in STEPS[: max(i - 1, 0)]:
            assert f"{done}: done already" in proc.stdout
            assert before is not None and record["steps"][done] == before["steps"][done]
        if i > 0:
            assert f"{STEPS[i - 1]}: done already" not in proc.stdout
        assert store.list_snapshots() == [DAY]  # complete files only, nothing half written
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = store.read_record("cycle", DAY)
    assert record is not None and record["complete"] and list(record["steps"]) == list(STEPS)
    # the retrain step died after registering version 1: the resumed runs reused it
    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
    mlflow.set_registry_uri(f"sqlite:///{home / 'mlflow.db'}")
    try:
        assert [v.version for v in registry.list_versions("churn")] == ["1"]
        assert str(registry.get_version("churn", registry.CHAMPION).version) == "1"
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
    assert store.read_scores("churn", DAY, "1") is not None
