"""A churn model trained once on generated sample data, and a real snapshot to edit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import polars as pl
import pytest

from features.events import read_customers, read_events
from features.snapshot import build_snapshot
from models.artifact import ModelBundle
from pipelines.sample import generate_sample
from training.train import TrainConfig, train_task

AS_OF = date(2025, 12, 31)


@dataclass
class Trained:
    """A trained bundle and the snapshot of its training day."""

    bundle: ModelBundle
    snapshot: pl.DataFrame


@pytest.fixture(scope="session")
def churn_model(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    out = tmp_path_factory.mktemp("behavioral_sample")
    summary = generate_sample(3000, out, seed=21)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    events = read_events(summary.events_path, now=now)
    customers = read_customers(summary.customers_path, now=now)
    result = train_task(
        events, customers, "churn", AS_OF, 90, TrainConfig(trials=5, seed=0, nthread=1)
    )
    snapshot = build_snapshot(events, customers, AS_OF, categories=result.bundle.categories or None)
    return Trained(bundle=result.bundle, snapshot=snapshot)
