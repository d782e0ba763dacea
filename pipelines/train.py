"""``guanxi train``: train one task's model, track the run in MLflow and register a challenger.

One MLflow parent run per invocation (experiment ``guanxi-<task>``) with a nested run per Optuna
trial. The parent run holds the parameters (task, as-of, horizon, cutoffs, seed, feature-set
version, best parameters, git commit), the held-out metrics prefixed by model (``xgboost_``,
``logistic_``, ``rule_``, ``popularity_``), the figures (``plots/``), the evaluation tables as CSV
and JSON (``evaluation/``), the model card (``model_card.md``), the held-out rows
(:data:`models.registry.HOLDOUT_ARTIFACT`, used by ``guanxi promote``) and the model (a pyfunc
from code with signature and input example). The model is then registered as ``<task>`` with the
alias ``challenger``; the version's tags carry the grade, the feature-set version and the held-out
metrics, and the run's and the version's the warning of events a few days short of the training
day (``events_warning``, :attr:`training.train.TrainResult.events_warning`).

For a task with a rule-backed version (:attr:`models.tasks.TaskSpec.rule_backing`: cross-sell's
affinity rule) whose model's grade does not pass (:data:`pipelines.promote.PASSING_GRADES`), the
run also logs the rule-backed bundle (:data:`models.registry.RULE_ARTIFACT`, its card
``rule_model_card.md``) and registers it as a version of its own with the alias ``rule`` and the
tag ``backing=rule`` (:func:`models.registry.register_rule`); ``guanxi promote`` serves it when
the model is not promoted.

Registration is the last step: an error or Ctrl-C before it registers nothing and leaves the run
``FAILED`` or ``KILLED``; if the challenger cannot be registered after the rule-backed version,
that version is deleted again and ``rule`` points where it pointed before. The tracking server is
checked before any data is read (:func:`models.registry.check_tracking`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import mlflow
import polars as pl
import typer
from mlflow.exceptions import MlflowException
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from features.events import EventsValidationError
from features.formatting import format_number
from models import registry
from models.labels import HORIZON_DAYS
from models.registry import (
    TrackingUnavailableError,
    check_tracking,
    configure_tracking,
    flatten_metrics,
    log_holdout,
    log_tables,
)
from models.tasks import get_task, task_names
from pipelines import connectors
from pipelines.console import fits, quiet_libraries
from pipelines.engine import DEFAULT_MASTER, EngineOption, SparkMasterOption
from pipelines.promote import PASSING_GRADES
from pipelines.score import check_task
from training.datasets import compact_events
from training.tracking import (
    experiment_id,
    git_commit,
    log_dict_params,
    training_run,
    trial_logger,
)
from training.train import BoosterFit, TrainConfig, TrainResult, train_task
from training.tuning import NoTrialCompletedError

__all__ = ["TrainOutcome", "check_timeout", "run_training", "train_command"]


@dataclass(frozen=True)
class TrainOutcome:
    """What ``guanxi train`` produced.

    Parameters
    ----------
    result : training.train.TrainResult
        The trained model and its evaluation.
    run_id : str
        The MLflow parent run.
    version : str
        The registered model version (alias ``challenger``).
    tracking_uri : str
        Where the run was tracked.
    rule_version : str, optional
        The rule-backed version registered beside it (alias ``rule``), when the model's grade
        does not pass and the task has one; None otherwise.
    """

    result: TrainResult
    run_id: str
    version: str
    tracking_uri: str
    rule_version: str | None = None


def _warned(result: TrainResult) -> dict[str, str]:
    """Return the run's and the version's tag of a warning about the events (none without one)."""
    return {} if result.events_warning is None else {"events_warning": result.events_warning}


def _log_result(result: TrainResult, extra: dict[str, Any]) -> dict[str, float]:
    """Log params, metrics, figures, tables, card and held-out rows on the active run."""
    log_dict_params({**result.params, **extra, "rule": result.rule})
    metrics = flatten_metrics(result.metrics)
    mlflow.log_metrics(metrics)
    mlflow.set_tags({"grade": result.grade, "task": result.bundle.task, **_warned(result)})
    mlflow.log_dict(
        {"grade": result.grade, "metrics": result.metrics, "rule": result.rule},
        registry.evaluation_path("metrics"),
    )
    for name, figure in result.figures.items():
        mlflow.log_figure(figure, f"plots/{name}.png")
    log_tables(result.tables)
    mlflow.log_text(result.model_card, "model_card.md")
    log_holdout(result.holdout.X, result.holdout.y)
    return metrics


def _trial_progress(
    log_trial: Callable[[Any, dict[str, Any]], None],
    task: str,
    config: TrainConfig,
    console: Console,
) -> Callable[[Any, dict[str, Any]], None]:
    """Log each Optuna trial to MLflow and say it on the console, one line a trial.

    Tuning is most of a training run's time (minutes a trial at scale): a line a trial shows
    it moving, with the trial's validation metric and the best so far.
    """

    def on_trial(trial: Any, info: dict[str, Any]) -> None:
        log_trial(trial, info)
        value, best = info.get("value"), info.get("best_value")
        done = (
            f"validation {info.get('metric', 'metric')} {value:.4f}"
            if value is not None
            else str(info.get("state", "")).lower()
        )
        line = f"{task}: trial {trial.number + 1} of {config.trials}: {done}"
        if info.get("duration") is not None:
            line += f" in {info['duration']:.1f} s"
        console.log(line + (f" (best {best:.4f})" if best is not None else ""))

    return on_trial


def run_training(
    task: str,
    events: pl.DataFrame,
    customers: pl.DataFrame | None,
    events_path: Path | str,
    as_of: date,
    horizon: int,
    config: TrainConfig,
    home: Path,
    console: Console,
    final_fit: BoosterFit | None = None,
) -> TrainOutcome:
    """Train with tracking and register the challenger.

    The caller reads the data once (several tasks can share it) after checking the tracking
    server with :func:`models.registry.check_tracking`, so a dead server fails before any data
    is read.

    Parameters
    ----------
    task : str
        A registered task (:func:`models.tasks.task_names`).
    events, customers : polars.DataFrame
        Validated events and the optional customers table.
    events_path : pathlib.Path or str
        Where the events came from (logged as a parameter; a database URI's password masked).
    as_of : datetime.date
        Training day.
    horizon : int
        Label window in days.
    config : training.train.TrainConfig
        Training settings.
    home : pathlib.Path
        ``GUANXI_HOME``.
    console : rich.console.Console
        Progress output.
    final_fit : callable, optional
        Refit of the tuned booster elsewhere (``guanxi train --engine spark``:
        :class:`training.spark.SparkFit`); see :func:`training.train.train_task`.

    Returns
    -------
    TrainOutcome
        Result, run id and registered version.
    """
    uri = configure_tracking(home)
    experiment = experiment_id(task, home)
    with training_run(experiment, f"{task} as of {as_of}", {"task": task}) as run:
        run_id = run.info.run_id
        console.print(f"MLflow run {run_id} ({uri})")
        result = train_task(
            events,
            customers,
            task,
            as_of,
            horizon,
            config,
            on_trial=_trial_progress(trial_logger(experiment, run_id), task, config, console),
            progress=console.log,
            final_fit=final_fit,
        )
        extra = {"events": str(events_path), "git_commit": git_commit() or "unknown"}
        metrics = _log_result(result, extra)
        model_uri = registry.log_bundle(result.bundle, result.holdout.X.head(5))
        tags = {
            "grade": result.grade,
            "feature_set_version": result.bundle.feature_set_version,
            "as_of": as_of.isoformat(),
            "horizon": horizon,
            **_warned(result),  # events days short of as_of: the version keeps the warning
            **metrics,
        }
        rule_version, before = None, None
        if result.rule_bundle is not None and result.grade not in PASSING_GRADES:
            rule_version, before = _register_rule(result, tags)
        try:
            version = registry.register_challenger(task, model_uri, tags)
        except BaseException:
            if rule_version is not None:  # nothing registered: the rule version goes too
                registry.delete_version(task, rule_version)
                if before is not None:
                    registry.set_alias(task, registry.RULE, before)
            raise
    return TrainOutcome(
        result=result, run_id=run_id, version=version, tracking_uri=uri, rule_version=rule_version
    )


def _register_rule(result: TrainResult, tags: dict[str, Any]) -> tuple[str, str | None]:
    """Log and register the rule-backed bundle; return its version and ``rule``'s previous one."""
    bundle = result.rule_bundle
    if bundle is None or result.rule_card is None:  # pragma: no cover - checked by the caller
        raise ValueError("no rule-backed bundle to register")
    task = bundle.task
    previous = registry.get_version(task, registry.RULE)
    mlflow.log_text(result.rule_card, "rule_model_card.md")
    uri = registry.log_bundle(bundle, result.holdout.X.head(5), name=registry.RULE_ARTIFACT)
    rule_tags = {
        **tags,
        "grade": bundle.metadata.get("grade", "-"),
        "model_grade": result.grade,
        "backing_name": bundle.served_by,
        "backing_input": ",".join(bundle.feature_names),
    }
    version = registry.register_rule(task, uri, rule_tags)
    return version, None if previous is None else str(previous.version)


def _figures_table(outcome: TrainOutcome, console: Console) -> Table:
    """Lay out the held-out figures per model, headings broken at underscores when too wide.

    At 80 columns the plain headings were cut (``top_de…``, ``max_bi…``); broken after their
    underscores they fit whole.
    """
    result = outcome.result
    shown = tuple(dict.fromkeys((*get_task(result.bundle.task).metrics[:5], "ece", "max_bin_gap")))
    first = [m for m in ("xgboost", "logistic", "rule") if m in result.metrics]
    for compact in (False, True):
        table = Table(title=f"{result.bundle.task}: held-out test cutoff (grade {result.grade})")
        table.add_column("model", no_wrap=True)
        for metric in shown:
            table.add_column(metric.replace("_", "_\n") if compact else metric, justify="right")
        for name in [*first, *(m for m in result.metrics if m not in first)]:
            values = result.metrics[name]
            # a figure a model has not got (a baseline's calibration, an ECE of no populated
            # bin) read "nan": it is the tables' — (features.contracts.MISSING)
            table.add_row(name, *(format_number(values.get(m), 4) for m in shown))
        if fits(console, table):
            break
    return table


def _spark_fit(master: str, workers: int, seed: int) -> BoosterFit:
    """Start the session of ``--spark-master``; return the final fit on it (``--engine spark``)."""
    from pipelines.spark import spark_session
    from training.spark import SparkFit

    return SparkFit(spark_session(master), num_workers=workers or None, seed=seed)


def check_timeout(timeout: float | None) -> float | None:
    """Read ``--timeout``: seconds above 0, or None when the option is left out.

    0 or less started no Optuna trial, after the data, the rows and the baselines had been built,
    and ended in a traceback; it is refused before any work.

    Parameters
    ----------
    timeout : float or None
        The option's value.

    Returns
    -------
    float or None
        ``timeout``.

    Raises
    ------
    typer.BadParameter
        If it is 0 or below, or not a number (nan, said so), naming the option.
    """
    if timeout is not None and not timeout > 0:  # nan fails it too
        # was "nan s would start no trial"
        said = (
            "nan is not a number" if math.isnan(timeout) else f"{timeout:g} s would start no trial"
        )
        raise typer.BadParameter(
            f"{said}: pass seconds above 0, or leave --timeout out to run every --trials; "
            "nothing read",
            param_hint="--timeout",
        )
    return timeout


def train_command(
    task: Annotated[
        str, typer.Option(help=f"One of {', '.join(task_names())}.", callback=check_task)
    ],
    events: connectors.Events,
    as_of: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], help="Training day (UTC).")],
    horizon: Annotated[
        int,
        typer.Option(
            min=1,
            help="Label window in days after each cutoff, what the task predicts in it: churn no "
            "order (or a cancel), repurchase an order, cross-sell a first order in a category, "
            "referral a referral; the time split needs about 3 x horizon + 90 days of history "
            "(90 by default, as in the cycle and the demo).",
        ),
    ] = HORIZON_DAYS,
    customers: connectors.Customers = None,
    trials: Annotated[int, typer.Option(min=1, help="Optuna trials.")] = 20,
    timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds after which no new trial starts (above 0).", callback=check_timeout
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for sampling, tuning and models.")] = 0,
    prune: Annotated[bool, typer.Option("--prune/--no-prune", help="Prune weak trials.")] = True,
    active_days: Annotated[
        int,
        typer.Option(
            min=1,
            help="Activity window of the task's population in days (churn, referral: customers "
            "with an order in the last N days); recorded in the model's metadata.",
        ),
    ] = TrainConfig.active_days,
    max_rows_per_cutoff: Annotated[
        int,
        typer.Option(
            min=0,
            help="Rows kept of one training cutoff: whole customers, those with a positive kept, "
            "the others sampled and weighted (0: all).",
        ),
    ] = TrainConfig.max_rows_per_cutoff or 0,
    max_customers: Annotated[
        int,
        typer.Option(
            min=0, help="Customers kept of every cutoff, a uniform random sample (0: all)."
        ),
    ] = TrainConfig.max_customers or 0,
    events_table: connectors.EventsTable = None,
    events_query: connectors.EventsQuery = None,
    customers_table: connectors.CustomersTable = None,
    customers_query: connectors.CustomersQuery = None,
    mapping: connectors.MappingFile = None,
    engine: EngineOption = "polars",
    spark_master: SparkMasterOption = DEFAULT_MASTER,
    spark_workers: Annotated[
        int,
        typer.Option(
            min=0,
            help="XGBoost workers of the final fit with --engine spark, one Spark task each "
            "(0: the session's default parallelism).",
        ),
    ] = 0,
) -> None:
    """Train a model, log the run to MLflow and register it as the task's challenger.

    With --engine spark, the rows, the baselines and the Optuna search stay in this process and
    only the final booster is fitted on Spark.
    """
    from serving.settings import get_settings

    sources = connectors.inputs(
        events, events_table, events_query, customers, customers_table, customers_query, mapping
    )
    console = Console(log_path=False)  # progress lines need the width, not train.py:257
    config = TrainConfig(
        trials=trials,
        timeout=timeout,
        seed=seed,
        prune=prune,
        active_days=active_days,
        max_rows_per_cutoff=max_rows_per_cutoff or None,
        max_customers=max_customers or None,
    )
    home = get_settings().home
    try:
        check_tracking(configure_tracking(home))
        final_fit = _spark_fit(spark_master, spark_workers, seed) if engine == "spark" else None
        frame, people = sources.read(datetime.now(UTC))
        frame = compact_events(frame)  # the text columns freed: ~2 GB at 60M events
        label = sources.events.label
        with quiet_libraries():  # each trial and registration is in MLflow, not the console
            outcome = run_training(
                task, frame, people, label, as_of.date(), horizon, config, home, console, final_fit
            )
    except TrackingUnavailableError as exc:
        console.print(f"[red]cannot train:[/red] {exc}")
        raise typer.Exit(2) from exc
    except (EventsValidationError, ValueError, ImportError, NoTrialCompletedError) as exc:
        # the run of a refusal after it started ends FAILED (training.tracking.training_run)
        console.print(f"[red]cannot train:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    except MlflowException as exc:
        console.print(
            f"[red]training stopped, nothing registered:[/red] the tracking store at "
            f"{mlflow.get_tracking_uri()} failed: {exc.message}\nCheck that it is up (or unset "
            "MLFLOW_TRACKING_URI to use the local store) and run `guanxi train` again."
        )
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        console.print("[red]interrupted:[/red] run marked KILLED, nothing registered")
        raise typer.Exit(130) from None
    console.print(_figures_table(outcome, console))
    console.print(
        f"run {outcome.run_id}: registered {task} version {outcome.version} "
        f"as @{registry.CHALLENGER} (grade {outcome.result.grade}); "
        f"promote it with `guanxi promote --task {task}`"
    )
    if outcome.rule_version is not None and outcome.result.rule_bundle is not None:
        console.print(
            f"the model does not pass the gate: registered the "
            f"{outcome.result.rule_bundle.served_by} as {task} version {outcome.rule_version} "
            f"(@{registry.RULE}, backing=rule), which `guanxi promote --task {task}` serves "
            "when no model is champion"
        )
