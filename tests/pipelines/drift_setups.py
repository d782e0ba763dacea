"""Set-ups the drift tests share: a command's arguments, a kept score table, a cycle's drift step,
the notes of a kept report."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console

from features.store import Store
from pipelines.connectors import Inputs
from pipelines.cycle import CycleConfig, _Run
from tests.pipelines.test_cycle import SOURCES, SOURCES_WITH_CUSTOMERS

TODAY = date(2024, 12, 31)
"""The day the drift tests report on: the sample's champion (as of 2024-10-31) was tested on
2024-08-02."""


def drift_args(folder: Path, events: Path, day: date | str = TODAY) -> list[str]:
    """`guanxi drift` of churn on ``day`` with ``folder``'s customers file and ``events``."""
    return [
        "drift",
        "--tasks",
        "churn",
        "--as-of",
        str(day),
        "--customers",
        str(folder / "customers.parquet"),
        "--events",
        str(events),
    ]


def keep_scores(
    store: Store,
    day: date,
    scores: pl.DataFrame,
    *,
    version: str = "1",
    feature_set_version: str = "x",
) -> None:
    """Keep a churn score table of ``day`` scored by ``version``, explained by no feature."""
    store.write_scores(
        "churn",
        day,
        version,
        scores,
        model_name="churn",
        feature_set_version=feature_set_version,
        explain_k=0,
        snapshot_digest="-",
    )


def cycle_drift(
    home: Path,
    events: pl.DataFrame,
    customers: pl.DataFrame | None = None,
    *,
    config: CycleConfig | None = None,
    sources: Inputs | None = None,
) -> dict[str, Any]:
    """Run the drift step of a cycle of churn on :data:`TODAY` on these inputs (read already).

    ``sources`` are the files the cycle was given, which the snapshots it keeps record; by
    default the sample's, with its customers file when ``customers`` are given."""
    given = sources or (SOURCES if customers is None else SOURCES_WITH_CUSTOMERS)
    run = _Run(given, TODAY, config or CycleConfig(tasks=("churn",)), home, Console())
    run._data = (events, customers)
    return run.drift({})


def kept_notes(store: Store, day: date = TODAY) -> list[str]:
    """The notes of the store's drift report of ``day``, which must be kept."""
    record = store.read_record("drift", day)
    assert record is not None
    return list(record["notes"])
