"""``guanxi demo``: the whole cycle on the embedded default, from sample data to a running server.

Sample data -> validation -> feature snapshot in the store -> a model for every registered task
(:func:`models.tasks.task_names`) trained, tracked in MLflow (SQLite under ``GUANXI_HOME``) and
promoted through the gate -> batch scores with reasons -> every customer's value (``guanxi value``:
P(alive), CLV two ways with the churn champion's retention, value tier, equity at risk) kept in
the store -> a campaign plan with ``docs/examples/offers.yaml`` (the sample's randomised campaign
recorded first, so the plan uses the rates it measured) -> the scoring service with the reviewer
pages, which loads the value table. Every step is the same code the individual commands run;
nothing here is demo-only logic.
The console shows the steps and their results; Optuna's trials and MLflow's progress lines stay
in MLflow (:func:`pipelines.console.quiet_libraries`).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from models.labels import HORIZON_DAYS

__all__ = ["DEMO_AS_OF", "OFFERS_EXAMPLE", "demo_command", "next_steps", "promote_all"]

DEMO_AS_OF = date(2025, 12, 31)
"""The sample window's last day, so the demo never depends on the clock."""

OFFERS_EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "offers.yaml"
"""The offers file the demo plans its campaign with."""


def _budget(text: str) -> float:
    """Read ``--budget`` as ``guanxi target`` reads it (:func:`pipelines.target.parse_budget`).

    Imported here, not at the top: ``pipelines.target`` loads MLflow, and ``guanxi demo --help``
    took seconds instead of a fraction of one.
    """
    from pipelines.target import parse_budget

    return parse_budget(text)


def demo_command(
    customers: Annotated[int, typer.Option(min=100, help="Sample customers.")] = 5000,
    trials: Annotated[int, typer.Option(min=1, help="Optuna trials per task.")] = 10,
    horizon: Annotated[int, typer.Option(min=7, help="Label window in days.")] = HORIZON_DAYS,
    seed: Annotated[int, typer.Option(help="Seed for the sample data and training.")] = 42,
    budget: Annotated[
        float,
        typer.Option(
            parser=_budget,
            help="Budget of the campaign the demo plans, in money units; above 0, at most 1e13.",
        ),
    ] = 5000.0,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="End by starting the server.")
    ] = True,
    host: Annotated[str, typer.Option(help="Interface the server listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Server port.")] = 8000,
) -> None:
    """Run the whole cycle on sample data and end with the server running."""
    from pipelines.target import check_budget

    # was unbounded: 0 and 1e30 ran every step to the plan, and nan passed the minimum
    check_budget(budget, then="; nothing run")
    from features.contracts import counted
    from features.events import read_customers, read_events
    from features.snapshot import build_snapshot
    from features.store import Store
    from models import registry
    from models.campaigns import read_outcomes
    from models.offers import load_offers
    from models.planning import fit_campaign_uplift, keep_plan, plan_from_store
    from models.registry import check_tracking, configure_tracking, register_uplift
    from models.scoring import score_snapshot
    from models.tasks import get_task, task_names
    from pipelines.console import quiet_libraries
    from pipelines.sample import CAMPAIGN_NAME, generate_sample
    from pipelines.score import load_models, store_scores
    from pipelines.target import print_plan
    from pipelines.train import run_training
    from pipelines.value import compute_values, keep_values, print_values
    from serving.schemas import MAX_REASONS
    from serving.settings import get_settings
    from training.train import TrainConfig

    console = Console(log_time=False, log_path=False)
    home = get_settings().home
    data = home / "sample"
    console.rule("1/6 sample data")
    summary = generate_sample(customers, data, seed=seed, end=DEMO_AS_OF, campaign=True)
    console.print(f"{summary.customers:,} customers, {summary.events:,} events in {data}")

    console.rule("2/6 validation and feature snapshot")
    now = datetime.now(UTC)
    events = read_events(summary.events_path, now=now)
    people = read_customers(summary.customers_path, now=now)
    snapshot = build_snapshot(events, people, DEMO_AS_OF)
    store = Store(home)
    info = store.write_snapshot(
        snapshot,
        DEMO_AS_OF,
        events=summary.events_path,
        customers=summary.customers_path,
        history=events,
    )
    console.print(f"snapshot as of {DEMO_AS_OF}: {snapshot.height:,} customers -> {info.path}")

    console.rule("3/6 training, tracked in MLflow")
    with quiet_libraries():
        check_tracking(configure_tracking(home))
        # the demo takes no sampling option of guanxi train: its refusals name none
        config = TrainConfig(trials=trials, seed=seed, trained_by="guanxi demo")
        for task in task_names():
            outcome = run_training(
                task,
                events,
                people,
                summary.events_path,
                DEMO_AS_OF,
                horizon,
                config,
                home,
                console,
            )
            result = outcome.result
            graded = get_task(task).gate[0]  # what the grade reads: precision@3 for cross-sell
            console.print(
                f"[bold]{task}[/bold]: grade {result.grade}, held-out {graded} "
                f"{result.metrics['xgboost'][graded]:.3f} vs rule "
                f"{result.metrics['rule'][graded]:.3f} (version {outcome.version})"
            )
            if outcome.rule_version is not None and result.rule_bundle is not None:
                console.print(
                    f"{task}: the model does not pass the gate; the "
                    f"{result.rule_bundle.served_by} registered as version {outcome.rule_version}"
                )

        console.rule("4/6 promotion and batch scores")
        promote_all(console, task_names())
        # a task whose model does not pass the gate is served by its rule-backed version when it
        # has one (cross-sell: the affinity rule); one without a champion is neither scored nor
        # served, and the demo says so
        served = [t for t in task_names() if registry.get_version(t, registry.CHAMPION)]
        for task in sorted(set(task_names()) - set(served)):
            console.print(f"{task}: no champion, not scored or served")
        os.environ["GUANXI_TASKS"] = json.dumps(served)
        bundles = load_models(served, "champion")
    for task, bundle in bundles.items():
        scored = score_snapshot(bundle, snapshot, explain_k=MAX_REASONS)
        stored = store_scores(store, bundle, snapshot, DEMO_AS_OF, scored, MAX_REASONS)
        console.print(
            f"{task}: scores with {counted(stored.explain_k, 'reasons')} each -> {stored.path}"
        )

    console.rule("5/6 customer value and a campaign plan")
    with quiet_libraries():
        values = compute_values(events, snapshot, DEMO_AS_OF)
        _, kept_values = keep_values(values, home, sources={"events": str(summary.events_path)})
    print_values(console, values)
    if kept_values is not None:
        console.print(f"value table of {values.table.height:,} customers -> {kept_values.path}")
    if summary.campaign_path is not None:
        # The sample's outcomes are of the 90 days after DEMO_AS_OF, so a plan of that day could
        # not know them: the demo records them as of DEMO_AS_OF, as a test run before it would
        # be, and says so. Recorded as of today (the clock), the plan would leave them out.
        recorded = store.write_campaign(
            read_outcomes(summary.campaign_path),
            CAMPAIGN_NAME,
            str(summary.campaign_path),
            as_of=DEMO_AS_OF,
        )
        console.print(
            f"recorded the sample's randomised campaign {CAMPAIGN_NAME!r}: {recorded.rows:,} "
            "customers, half held out as control (a simulated test, recorded as of "
            f"{DEMO_AS_OF} as if run before it, so that the plan of that day can learn from it)"
        )
        with quiet_libraries():
            _, fitted, _ = fit_campaign_uplift(store, DEMO_AS_OF)
            for lift in fitted:
                uplift = register_uplift(lift, home, DEMO_AS_OF)
                console.print(
                    f"uplift model of {lift.offer} ({lift.learner}, held-out Qini "
                    f"{lift.metrics[lift.learner]['qini']:.4f} vs churn score "
                    f"{lift.metrics['churn_score']['qini']:.4f}) -> {uplift.name} "
                    f"version {uplift.version}"
                )
    run = plan_from_store(store, load_offers(OFFERS_EXAMPLE), budget, DEMO_AS_OF)
    print_plan(console, run)
    kept = keep_plan(store, run)
    console.print(f"plan with {OFFERS_EXAMPLE.name} -> {kept.path}")

    if not serve:
        console.print(serve_later(home))
    if not serve or not bundles:
        return
    console.rule("6/6 the scoring service")
    key = os.environ.get("GUANXI_API_KEYS", "").split(":")[0] or secrets.token_urlsafe(24)
    os.environ.setdefault("GUANXI_API_KEYS", f"{key}:admin")
    customer = str(values.table["customer_id"][0])  # a customer with an order has a value
    steps = next_steps(f"http://{host}:{port}", key, customer)
    from pipelines.serve import run_server

    # plain echo: rich would wrap the long lines and break them for copy and paste
    run_server(host=host, port=port, workers=1, dev=True, announce=lambda: typer.echo(steps))


def promote_all(console: Console, tasks: Sequence[str]) -> None:
    """Run the promotion gate for each task and say each decision as ``guanxi promote`` does.

    The demo said ``churn: promoted (<reason>)`` or ``cross_sell: kept (<reason>)`` of its own;
    the sentence is now :func:`pipelines.promote.decision_text`'s, as ``guanxi promote`` and
    ``guanxi cycle`` print it, naming the task where the sentence does not.

    Parameters
    ----------
    console : rich.console.Console
        Where to print.
    tasks : sequence of str
        The tasks, each with a challenger.
    """
    from pipelines.promote import decision_text, promote

    for task in tasks:
        console.print(decision_text(task, promote(task, console), markup=True, named=True))


def serve_later(home: Path) -> str:
    """Say how to serve the demo's store once ``--no-serve`` has stopped before the server.

    Parameters
    ----------
    home : pathlib.Path
        The demo's store (``GUANXI_HOME``).

    Returns
    -------
    str
        The line to print: ``guanxi serve --dev``, with ``GUANXI_HOME`` when it is not the
        default ``.guanxi`` of the current directory.
    """
    from serving.settings import Settings

    default = Settings.model_fields["home"].default  # the one place the default is declared
    env = "" if home == default else f"GUANXI_HOME={shlex.quote(str(home))} "
    return f"not serving (--no-serve); to serve this store: {env}guanxi serve --dev"


def next_steps(base: str, key: str, customer: str) -> str:
    """Say where to go once the demo's server listens, and that ``/readyz`` says when to.

    The server loads the models in the background after it starts listening, so the calls
    answer 503 until ``/readyz`` answers 200.

    Parameters
    ----------
    base : str
        The server's address (``http://host:port``).
    key : str
        The admin API key the demo serves with.
    customer : str
        A customer with a value, for the example calls.

    Returns
    -------
    str
        The lines to print, one command a line (for copy and paste).
    """
    return (
        f"The server is up on {base} and loads the models in the background: "
        f"`curl {base}/readyz` answers 200 once they are loaded (503 while loading).\n"
        "Then call it with:\n"
        f"  curl -H 'X-API-Key: {key}' '{base}/v1/customers/{customer}/scores?explain=5'\n"
        f"  curl -H 'X-API-Key: {key}' {base}/v1/customers/{customer}/value\n"
        f"  curl -H 'X-API-Key: {key}' {base}/v1/segments\n"
        f"  curl -H 'X-API-Key: {key}' {base}/v1/models\n"
        f"Reviewer pages: {base}/ui/login (API key: {key}); API docs: {base}/docs\n"
        "Stop it with Ctrl-C."
    )
