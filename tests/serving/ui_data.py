"""Data behind the reviewer-page tests: an events file, a stored snapshot that records it, and a
SQLite MLflow registry with a champion (v1) and a challenger (v2) per task whose training runs
carry metrics, gains and reliability tables, as ``guanxi train`` logs them.

Built once per test session (cached by base directory) and shared by the TestClient tests and the
browser tests.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mlflow
import numpy as np
import polars as pl

from features.contracts import event_schema
from features.snapshot import build_snapshot
from features.store import Store
from models import registry
from models.artifact import ModelBundle
from models.registry import configure_tracking, flatten_metrics, log_tables
from models.tasks import model_frame, task_names
from tests.serving.conftest import AS_OF, CATEGORIES, tiny_events, train_bundle
from training.evaluation import gains_table, reliability_curve
from training.tracking import experiment_id, log_dict_params

BUSY = "c900"
"""A customer with many events of every kind (history tables, open and resolved complaints)."""


@dataclass(frozen=True)
class UIWorld:
    home: Path
    uri: str
    events: Path
    snapshot: pl.DataFrame
    versions: dict[str, tuple[str, str]]  # task -> (champion, challenger)
    run_ids: dict[tuple[str, str], str]  # (task, version) -> run id


def busy_events(customer: str = BUSY, n: int = 400, seed: int = 7) -> pl.DataFrame:
    """``n`` events of one customer over the year before AS_OF, complaints half resolved."""
    rng = np.random.default_rng(seed)
    kinds = ["order", "visit", "email_sent", "email_open", "complaint", "survey", "return"]
    end = datetime(AS_OF.year, AS_OF.month, AS_OF.day, 12, tzinfo=UTC)
    rows = []
    for j in range(n):
        kind = str(rng.choice(kinds, p=[0.25, 0.3, 0.2, 0.1, 0.05, 0.05, 0.05]))
        ts = end - timedelta(days=int(rng.integers(0, 365)), minutes=int(rng.integers(0, 600)))
        rows.append(
            {
                "customer_id": customer,
                "ts": ts,
                "event_type": kind,
                "channel": str(rng.choice(["web", "app", "store"])),
                "amount": float(rng.integers(5, 300)) if kind in ("order", "return") else None,
                "margin": None,
                "quantity": 1.0 if kind in ("order", "return") else None,
                "category": str(rng.choice(CATEGORIES)) if kind in ("order", "return") else None,
                "score": float(rng.integers(0, 11)) if kind == "survey" else None,
                "ref_id": f"t{j}" if kind == "complaint" else f"o{j}",
            }
        )
        if kind == "complaint" and j % 2 == 0:
            rows.append({**rows[-1], "event_type": "complaint_resolved", "ts": ts + timedelta(2)})
    # one event after the snapshot day: never shown
    rows.append({**rows[0], "event_type": "visit", "ts": end + timedelta(days=3), "amount": None})
    return pl.DataFrame(rows, schema=event_schema())


def _metrics(seed: int) -> dict[str, dict[str, float]]:
    shift = 0.02 * seed
    return {
        "xgboost": {
            "n": 3535.0,
            "roc_auc": 0.74 + shift,
            "pr_auc": 0.41 + shift,
            "top_decile_lift": 2.1 + shift,
            "brier": 0.19 - shift / 4,
            "log_loss": 0.55 - shift / 2,
        },
        "logistic": {"roc_auc": 0.70, "pr_auc": 0.36, "top_decile_lift": 1.8, "brier": 0.2},
        "rule": {"roc_auc": 0.65 + shift / 2, "pr_auc": 0.33, "top_decile_lift": 1.5},
    }


def _version(
    task: str, snapshot: pl.DataFrame, seed: int, home: Path
) -> tuple[str, str, ModelBundle]:
    bundle = train_bundle(task, snapshot, seed=seed)
    X = model_frame(task, snapshot, bundle.feature_names, bundle.categories)  # noqa: N806
    metrics = _metrics(seed)
    bundle.metadata = {
        "metrics": metrics,
        "grade": "B" if seed == 0 else "A",
        "params": {
            "as_of": "2024-03-31",
            "horizon": 90,
            "active_days": 365,
            "cutoffs": {
                "train": ["2023-11-02", "2023-12-02", "2024-01-01"],
                "validation": "2024-01-31",
                "test": "2024-03-31",
            },
            "seed": seed,
        },
        "data": {"first_day": "2024-01-01", "rows": [400, 80, 80]},
        "calibration": {"method": bundle.calibration["method"]},
    }
    rng = np.random.default_rng(seed)
    proba = bundle.predict_proba(X)
    y = (rng.random(len(X)) < proba).astype(int)
    rule = rng.random(len(X))
    tables = {
        "gains": pl.concat(
            [
                pl.from_pandas(gains_table(y, proba)).with_columns(model=pl.lit("xgboost")),
                pl.from_pandas(gains_table(y, rule)).with_columns(model=pl.lit("rule")),
            ]
        ).to_pandas(),
        "reliability": reliability_curve(y, proba).assign(model="xgboost"),
    }
    flat = flatten_metrics(metrics)
    with mlflow.start_run(experiment_id=experiment_id(task, home)) as run:
        mlflow.log_metrics(flat)
        log_dict_params(bundle.metadata["params"])  # as guanxi train: held-out day, definition
        mlflow.set_tags({"grade": bundle.metadata["grade"], "task": task})
        log_tables(tables)
        uri = registry.log_bundle(bundle, X.head(3))
    tags = {"grade": bundle.metadata["grade"], "feature_set_version": bundle.feature_set_version}
    version = registry.register_challenger(task, uri, {**tags, **flat})
    return version, run.info.run_id, bundle


@functools.cache
def build_ui_world(base: Path) -> UIWorld:
    """Events file, stored snapshot and registry under ``base`` (built once per base)."""
    home = base / "home"
    events = pl.concat([tiny_events(), busy_events()]).sort("ts")
    path = base / "events.parquet"
    events.write_parquet(path)
    seen = events.filter(pl.col("ts").dt.date() <= AS_OF)
    snapshot = build_snapshot(seen, None, AS_OF, categories=CATEGORIES)
    Store(home).write_snapshot(snapshot, AS_OF, events=path, history=events)
    uri = configure_tracking(home)
    versions, run_ids = {}, {}
    try:
        for task in task_names():
            champion, run_a, _ = _version(task, snapshot, 0, home)
            challenger, run_b, _ = _version(task, snapshot, 1, home)
            registry.set_alias(task, registry.CHAMPION, champion)
            versions[task] = (champion, challenger)
            run_ids[task, champion], run_ids[task, challenger] = run_a, run_b
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
    return UIWorld(home, uri, path, snapshot, versions, run_ids)
