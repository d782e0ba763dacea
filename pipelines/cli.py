"""The ``guanxi`` command line.

Each command lives with its job in a module of :mod:`pipelines`; this module only assembles them.
"""

from __future__ import annotations

import os

import typer

__all__ = ["app", "main"]

app = typer.Typer(
    name="guanxi",
    help="guanxi: churn and propensity scores for CRM teams.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
data_app = typer.Typer(help="Sample data and validation of events files.", no_args_is_help=True)
features_app = typer.Typer(
    help="Point-in-time feature snapshots in the store.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
app.add_typer(features_app, name="features")


def _register() -> None:
    """Attach every job's command to the app (imports stay out of module import time)."""
    from pipelines import demo, promote, sample, score, serve, snapshot, train, validate

    data_app.command("validate")(validate.validate_command)
    data_app.command("sample")(sample.sample_command)
    features_app.command("build")(snapshot.build_command)
    features_app.command("export")(snapshot.export_command)
    app.command("train")(train.train_command)
    app.command("promote")(promote.promote_command)
    app.command("models")(promote.models_command)
    app.command("score")(score.score_command)
    app.command("serve")(serve.serve_command)
    app.command("demo")(demo.demo_command)


def main() -> None:
    """Run the ``guanxi`` CLI."""
    # XGBoost's OpenMP threads spin while they wait; on a shared 2-core host that made 2 threads
    # 3-8x slower than 1. Passive waiting removes it (must be set before xgboost is imported).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    _register()
    app()
