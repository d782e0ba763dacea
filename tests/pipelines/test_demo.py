"""The README's main job, `guanxi demo`, runs the whole cycle (the server part is tested apart).

The demo runs as a user runs it, in a process of its own, so what it prints (standard output and
standard error, the libraries' loggers included) is what a user sees.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import mlflow
import polars as pl
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from rich.console import Console
from typer.testing import CliRunner

from features.store import Store
from models import registry
from models.tasks import get_task, task_names
from pipelines import cli
from pipelines import promote as promote_module
from pipelines.demo import DEMO_AS_OF, promote_all
from pipelines.promote import Decision, decision_text
from serving.app import create_app
from serving.settings import Settings
from tests.conftest import loaded_by
from tests.processes import child_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """`guanxi demo --no-serve` on 2,000 sample customers, 2 trials; its home and its output."""
    home = tmp_path_factory.mktemp("demo") / "home"
    env = child_env(GUANXI_HOME=str(home), PYTHONPATH=str(ROOT), COLUMNS="120")
    code = "from pipelines.cli import main; main()"
    args = ["demo", "--no-serve", "--customers", "2000", "--trials", "2"]
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=home.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return home, done


@pytest.mark.slow
def test_demo_trains_promotes_and_stores_scores(
    demo: tuple[Path, subprocess.CompletedProcess[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    home, done = demo
    store = Store(home)
    assert store.latest_as_of() == DEMO_AS_OF
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    registry.configure_tracking(home)  # the demo's own SQLite store
    shown = " ".join(done.stdout.split())
    try:
        for task in task_names():
            assert f"{task}: grade" in done.stdout
            said = f"promoted {task}@champion: " in shown or f"{task}: model not promoted" in shown
            assert said and f"{task}: promoted (" not in shown, task
            # the figure the grade reads (cross-sell's ROC-AUC, far above its rule's, was shown
            # beside its grade C)
            assert f"held-out {get_task(task).gate[0]} " in shown.split(f"{task}: grade")[1][:40]
            champion = registry.get_version(task, registry.CHAMPION)
            # every task is served: cross-sell graded C against its rule by the rule itself
            assert champion is not None, task
            if registry.is_rule_backed(champion):
                # said as guanxi promote and guanxi cycle say it (pipelines.promote.decision_text)
                assert f"{task}: model not promoted: challenger grade 'C'" in shown
                assert f"serving the affinity rule, version {champion.version}" in shown
            scores = store.read_scores(task, DEMO_AS_OF, str(champion.version))
            assert scores is not None and scores.height > 0
        # the campaign planned with docs/examples/offers.yaml, after recording the sample's
        plan = store.plan_info(DEMO_AS_OF)
        assert plan is not None and plan.rows > 0 and plan.investment <= plan.budget
        assert [c.name for c in store.list_campaigns()] == ["sample_retention"]
        # of the sample's last day, not of the clock's: a plan of that day counts it
        assert store.list_campaigns()[0].as_of == DEMO_AS_OF and "left out:" not in shown
        assert "retention_email: measured rates" in shown
        assert "retention_email: uplift (" in shown  # registered, used or not by the Qini rule
        assert "-> uplift_retention_email version 1" in shown
        uplift = registry.load_uplift("retention_email")
        assert uplift.version == "1" and uplift.bundle.learner in ("two_model", "x_learner")
        tags = registry.get_version("uplift_retention_email", registry.CHALLENGER)
        assert tags is not None and tags.tags[registry.BOOSTER_DIGEST_TAG]
        assert "churn_score_qini" in tags.tags
        assert "no promoted cross-sell model" not in shown  # the offers reach people
        assert "propensity of cross_sell version" in shown
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)


@pytest.mark.slow
def test_demo_prints_its_steps_not_the_libraries_progress(
    demo: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    _, done = demo
    for step in (
        "1/6 sample data",
        "3/6 training",
        "4/6 promotion and batch scores",
        "5/6 customer value and a campaign plan",
    ):
        assert step in done.stdout
    shown = done.stdout + done.stderr
    for noise in (
        "INFO",
        "Trial 0 finished",
        "Successfully registered model",
        "Created version",
        "HighsMipSolverData",  # HiGHS's own printf during the plan (models.knapsack)
    ):
        assert noise not in shown, f"{noise!r} on the console:\n{shown}"
    assert done.stderr == ""


@pytest.mark.slow
def test_demo_values_every_buyer_and_the_server_shows_them(
    demo: tuple[Path, subprocess.CompletedProcess[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The value step stores a table; the server loads it; the segments sum to the equity."""
    home, done = demo
    assert "customer equity" in done.stdout and "Holdout" in done.stdout
    table = Store(home).read_values(DEMO_AS_OF)
    assert table is not None and table.height > 1000
    assert table["churn_probability"].null_count() < table.height  # the churn champion was read
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    registry.configure_tracking(home)
    key = "demo-test-key-0123456789"
    served = tuple(t for t in task_names() if registry.get_version(t, registry.CHAMPION))
    settings = Settings(
        home=home,
        tasks=served,
        api_keys=SecretStr(f"{key}:reviewer"),
        audit_key=SecretStr("demo-audit-key-0123456789"),
        dev=True,  # as `guanxi demo` serves: the tables it wrote are not signed
        precompute_reasons=False,
    )
    try:
        with TestClient(create_app(settings)) as client:
            for _ in range(2000):
                if client.get("/readyz").status_code == 200:
                    break
                time.sleep(0.05)
            auth = {"X-API-Key": key}
            segments = client.get("/v1/segments", headers=auth).json()
            overall = segments["overall"]
            assert overall["customers"] == table.height
            assert overall["equity"] == pytest.approx(table["clv"].sum())
            for groups in ("rfm_segments", "value_tiers"):
                for field in ("customers", "equity", "equity_at_risk"):
                    total = sum(g[field] for g in segments[groups])
                    assert total == pytest.approx(overall[field], rel=1e-9)
            for customer in table["customer_id"].head(20):
                value = client.get(f"/v1/customers/{customer}/value", headers=auth).json()
                assert value["clv"] is not None and value["p_alive"] is not None
            page = client.get(f"/ui/customers/{table['customer_id'][0]}", headers=auth)
            assert page.status_code == 200 and "Customer value" in page.text
            assert client.get("/ui/value", headers=auth).status_code == 200
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)


@pytest.mark.slow
def test_demo_churn_bands_hold_no_lapsed_or_never_ordered_customer(
    demo: tuple[Path, subprocess.CompletedProcess[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's stored churn scores rank the active buyers only: a customer without an order in
    the model's window is 'lapsed', one who never ordered 'prospect', neither has a decile."""
    home, _ = demo
    store = Store(home)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    registry.configure_tracking(home)
    try:
        champion = registry.get_version("churn", registry.CHAMPION)
        assert champion is not None
        bundle = registry.load_model("churn", registry.CHAMPION).bundle
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
    days = get_task("churn").population.active_days_of(bundle.metadata)
    assert bundle.metadata["population"]["active_days"] == days  # recorded at training
    scores = store.read_scores("churn", DEMO_AS_OF, str(champion.version))
    assert scores is not None
    snapshot = store.read_snapshot(DEMO_AS_OF).select("customer_id", "recency_days")
    rows = scores.join(snapshot, on="customer_id", how="left")
    assert rows.height == snapshot.height  # one row per snapshot customer
    ranked = rows.filter(pl.col("decile").is_not_null())
    assert ranked.height > 0 and (ranked["recency_days"] < days).all()
    assert set(ranked["status"]) == {"eligible"}
    outside = rows.filter(pl.col("decile").is_null())
    expected = pl.when(pl.col("recency_days").is_null()).then(pl.lit("prospect"))
    expected = expected.otherwise(pl.lit("lapsed"))
    assert outside.height > 0 and outside["score"].null_count() == outside.height
    assert (outside["status"] == outside.select(expected).to_series()).all()
    print(
        f"demo churn: {ranked.height} scored, statuses",
        dict(outside["status"].value_counts().iter_rows()),
    )


def test_the_demo_says_its_promotions_as_guanxi_promote_and_cycle_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The demo printed `churn: promoted (...)` and `cross_sell: kept (...)` of its own, where
    `guanxi promote` and `guanxi cycle` print `pipelines.promote.decision_text`'s sentence."""
    decisions = {
        "churn": Decision(True, "grade B passes and there is no comparable champion"),
        "repurchase": Decision(False, "version 3 is already the repurchase champion", already=True),
        "cross_sell": Decision(
            False,
            "challenger grade 'C' does not pass (needs one of A, B); serving the affinity rule, "
            "version 1",
            rule_version="1",
        ),
        "upsell": Decision(False, "challenger grade 'D' does not pass (needs one of A, B)"),
    }
    asked: list[str] = []

    def gate(task: str, console: Console) -> Decision:
        asked.append(task)
        return decisions[task]

    monkeypatch.setattr(promote_module, "promote", gate)
    console = Console(record=True, width=200)
    promote_all(console, list(decisions))
    assert asked == list(decisions)
    lines = console.export_text().splitlines()
    assert lines == [decision_text(t, d, named=True) for t, d in decisions.items()]
    assert lines == [
        "promoted churn@champion: grade B passes and there is no comparable champion",
        "version 3 is already the repurchase champion",
        "cross_sell: model not promoted: challenger grade 'C' does not pass (needs one of A, B); "
        "serving the affinity rule, version 1",
        "upsell: not promoted: challenger grade 'D' does not pass (needs one of A, B)",
    ]


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("0", "0 buys nothing"),
        ("-5", "-5 buys nothing"),
        ("nan", "nan is not an amount of money"),
        ("1e30", "1e+30 is more than a campaign can spend"),
        ("1,000", "'1,000' is not a number"),
    ],
)
def test_a_budget_no_campaign_can_spend_is_refused_before_any_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str, said: str
) -> None:
    """cycle32: `guanxi demo --budget` took anything from 0 up (nan too): 0 and 1e30 ran every
    step up to the plan (0 contacts nobody; 1e30 is float noise), -5 was Typer's range error and
    "1,000" its "not a valid float"; `guanxi target --budget` refuses each
    (:func:`pipelines.target.check_budget`, :func:`pipelines.target.parse_budget`) in these
    words, and so does the demo now, before its first step."""
    home = tmp_path / "home"
    monkeypatch.setenv("GUANXI_HOME", str(home))
    cli._register("demo")
    result = CliRunner().invoke(
        cli.app, ["demo", "--no-serve", "--budget", given], env={"COLUMNS": "300"}
    )
    output = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert f"Invalid value for --budget: {said}" in output, output
    assert "; nothing run" in output or given == "1,000"  # read before any check
    assert not home.exists()  # no sample, snapshot or model


def test_the_demo_module_loads_no_mlflow() -> None:
    """cycle32: the demo's --budget check, imported from pipelines.target at the top, loaded
    MLflow with it, so `guanxi demo --help` took seconds; the demo imports its steps when run."""
    assert "mlflow" not in loaded_by("pipelines.demo")


def test_the_demo_trains_as_guanxi_demo_so_its_refusals_name_no_train_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """review53 L2: the demo takes none of guanxi train's sampling options (--max-customers,
    --max-rows-per-cutoff, --active-days), yet its refusals for too few rows or labels named
    them; it trains as ``guanxi demo``, whose refusals say the defaults it trained with."""
    import models.registry as registry_module
    import pipelines.train as train_job

    class StopError(Exception):
        """Ends the demo at its first training."""

    configs: list[Any] = []

    def first_training(*args: Any) -> None:
        configs.append(args[6])
        raise StopError

    monkeypatch.setenv("GUANXI_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(registry_module, "configure_tracking", lambda home: "")
    monkeypatch.setattr(registry_module, "check_tracking", lambda uri: None)
    monkeypatch.setattr(train_job, "run_training", first_training)
    cli._register("demo")
    result = CliRunner().invoke(cli.app, ["demo", "--no-serve", "--customers", "100"])
    assert isinstance(result.exception, StopError), result.output
    assert configs[0].trained_by == "guanxi demo"
