"""Bounded load on loopback: 16 clients for 60 s against a 100k-customer snapshot, no failure,
p99 latency printed, and the server's resident memory flat after warm-up (no leak).

The server is a separate ``guanxi serve`` process (its own RSS); the models are the serving
tests' registry, the snapshot is the serving tests' snapshot resampled to 100k customers.
``GUANXI_LOAD_SECONDS`` and ``GUANXI_LOAD_CUSTOMERS`` change the size; ``python -m bench.load``
runs the same measurement with options.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from bench.load import expand_snapshot, run_load, serve
from features.store import Store
from tests.serving.conftest import AS_OF, Registry

pytestmark = pytest.mark.slow

CUSTOMERS = int(os.environ.get("GUANXI_LOAD_CUSTOMERS", "100000"))
SECONDS = float(os.environ.get("GUANXI_LOAD_SECONDS", "60"))
WARMUP = 10.0
CLIENTS = 16


def test_16_clients_no_failure_no_leak(
    registry_setup: Registry, snapshot: pl.DataFrame, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    frame = expand_snapshot(snapshot, CUSTOMERS)
    Store(home).write_snapshot(frame, AS_OF)
    env = {"GUANXI_HOME": str(home), "MLFLOW_TRACKING_URI": registry_setup.uri}
    ids = frame.get_column("customer_id").to_list()
    with serve(env, tmp_path / "server.log") as (base, pid):
        result = run_load(base, pid, ids, CLIENTS, SECONDS, WARMUP)
    print(f"\n{CUSTOMERS:,} customers, {CLIENTS} clients\n{result.report()}")
    assert result.failed == 0, result.statuses
    assert result.requests >= CLIENTS
    assert result.rss_end_mb <= 1.10 * result.rss_warm_mb
