"""Sample data for the training tests (generated once per session, read and validated)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from features.events import read_customers, read_events
from pipelines.sample import generate_sample

AS_OF = date(2025, 12, 31)
"""The sample generator's default last day."""

_NOW = datetime(2026, 1, 1, tzinfo=UTC)


def load_sample(
    factory: pytest.TempPathFactory, n_customers: int, seed: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Generate a sample and read it back through the validator."""
    out = factory.mktemp(f"sample{n_customers}")
    summary = generate_sample(n_customers, out, seed=seed)
    return (
        read_events(summary.events_path, now=_NOW),
        read_customers(summary.customers_path, now=_NOW),
    )


@pytest.fixture(scope="session")
def small_sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[pl.DataFrame, pl.DataFrame]:
    return load_sample(tmp_path_factory, 1500, seed=11)
