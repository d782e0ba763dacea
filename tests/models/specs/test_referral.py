"""The referral task: its labels by hand, and the whole cycle on sample data from its spec alone."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from features.snapshot import build_snapshot
from features.store import Store
from models import registry
from models.specs.referral import SPEC, referral_labels
from models.tasks import get_task, task_names
from pipelines.cli import _register, app
from pipelines.sample import generate_sample
from serving.app import create_app
from serving.settings import get_settings
from tests.serving.conftest import headers, make_settings, wait_ready
from tests.training.frames import CUTOFF, at, day, events_frame

AS_OF = date(2025, 12, 31)


def test_referral_is_registered_after_the_other_tasks() -> None:
    assert get_task("referral") is SPEC and task_names()[-1] == "referral"
    assert SPEC.kind == "binary" and SPEC.population is get_task("churn").population


def test_referral_labels_by_hand() -> None:
    events = events_frame(
        [
            ("A", at(day(-10)), "order", "x"),  # active, refers in the window -> 1
            ("A", at(day(5)), "referral", None),
            ("B", at(day(-10)), "order", "x"),  # active, referred before the cutoff only -> 0
            ("B", at(day(-2)), "referral", None),
            ("C", at(day(-400)), "order", "x"),  # lapsed: outside the population
            ("C", at(day(3)), "referral", None),
            ("D", at(day(-5)), "visit", None),  # never ordered: a prospect, outside
            ("E", at(day(-30)), "order", "x"),  # refers on day c + 31: after a 30-day window -> 0
            ("E", at(day(31)), "referral", None),
        ]
    )
    population = SPEC.population.select(build_snapshot(events, None, CUTOFF), 365)
    assert population["customer_id"].to_list() == ["A", "B", "E"]
    got = referral_labels(events, CUTOFF, 30, population)
    assert dict(got.iter_rows()) == {"A": 1, "B": 0, "E": 0}
    assert dict(referral_labels(events, CUTOFF, 31, population).iter_rows())["E"] == 1


@pytest.mark.slow
def test_referral_end_to_end_on_sample_data(local_tracking: Path, tmp_path: Path) -> None:
    """Train, grade against its rule, register, promote, score in batch, serve, show its page."""
    home = local_tracking
    data = generate_sample(5000, tmp_path / "sample", seed=42, end=AS_OF)
    files = ["--events", str(data.events_path)]
    _register()
    get_settings.cache_clear()
    cli = CliRunner()
    try:
        built = cli.invoke(app, ["features", "build", *files, "--as-of", str(AS_OF)])
        assert built.exit_code == 0, built.output
        day = ["--as-of", str(AS_OF)]
        train = ["train", "--task", "referral", *files, "--customers", str(data.customers_path)]
        trained = cli.invoke(
            app, [*train, *day, "--horizon", "90", "--trials", "3", "--seed", "42"]
        )
        assert trained.exit_code == 0, trained.output
        promoted = cli.invoke(app, ["promote", "--task", "referral"])
        assert promoted.exit_code == 0, promoted.output
        out = tmp_path / "scores.parquet"
        score = ["score", *files, *day, "--out", str(out), "--tasks", "referral"]
        scored = cli.invoke(app, [*score, "--explain", "20"])
        assert scored.exit_code == 0, scored.output
    finally:
        get_settings.cache_clear()

    champion = registry.get_version("referral", registry.CHAMPION)
    assert champion is not None and champion.tags["grade"] in ("A", "B")
    # graded against its own rule, past referrals, on the held-out cutoff
    assert float(champion.tags["xgboost_roc_auc"]) > float(champion.tags["rule_roc_auc"])
    params = MlflowClient().get_run(str(champion.run_id)).data.params
    assert params["rule.name"] == "more than X referrals so far"
    everyone = pl.read_parquet(out)
    assert set(everyone["task"]) == {"referral"} and everyone.height == 5000
    # the population (active buyers) is scored and explained; every other customer has a status
    rows = everyone.filter(pl.col("status") == "eligible")
    assert rows.height > 0 and rows["reason_1_sentence"].null_count() == 0
    assert everyone.filter(pl.col("status") != "eligible")["score"].null_count() == (
        everyone.height - rows.height
    )
    assert rows["reason_1_sentence"].str.contains("referral likelihood").all()
    stored = Store(home).score_info("referral", AS_OF, str(champion.version))
    assert stored is not None and stored.explain_k == 20

    customer = str(rows["customer_id"][0])
    settings = make_settings(home, tasks=("referral",))
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        answer = client.get(
            f"/v1/customers/{customer}/scores",
            params={"tasks": "referral", "explain": 5},
            headers=headers(),
        )
        assert answer.status_code == 200, answer.text
        score = answer.json()["scores"]["referral"]
        assert score["probability"] == pytest.approx(rows["score"][0])
        assert len(score["reasons"]) == 5
        assert all("referral likelihood" in r["sentence"] for r in score["reasons"])
        page = client.get("/ui/models/referral", headers=headers("reviewer"))
        assert page.status_code == 200 and "Referral model" in page.text
        assert f"v{champion.version}" in page.text
