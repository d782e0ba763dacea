"""Benchmark the reviewer customer page for a customer with 5,000 events (target: 1 s).

Builds seeded events (``--customers`` customers with about ten events each, plus one customer
with ``--heavy-events`` events), a stored snapshot with its history (the events sorted by customer,
:meth:`features.store.Store.write_history`), and a 200-tree depth-6 XGBoost model per task, then
serves the real app in process (TestClient, one reviewer session, no background explanations) and
times ``GET /ui/customers/<heavy>``: the first request (explanations computed) and repeated ones.
Also timed alone, for the heavy customer and for an ordinary one: reading a customer's history from
the store against the reference, scanning and validating the raw events file for that customer
(what the page did before the store kept the history). Printed as p50/max against the 1 s target,
and the lookup's ratio to the reference.

Usage: ``python -m bench.ui [--customers 20000] [--heavy-events 5000] [--repeats 15]
[--format parquet|csv]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
from fastapi.testclient import TestClient
from pydantic import SecretStr

from bench._common import synthetic_bundles
from features.contracts import FEATURE_SET_VERSION, event_schema
from features.events import validate_events
from features.snapshot import build_snapshot
from features.store import Store
from models.versions import ModelFilesMissingError
from serving.app import create_app
from serving.settings import Settings
from serving.state import LoadedSnapshot, ServedModel

__all__ = ["main"]

AS_OF = date(2025, 6, 30)
HEAVY = "HEAVY"
KEY = "bench-reviewer-key-0123456789abcdef"
TARGET_SECONDS = 1.0
KINDS = ["order", "visit", "email_sent", "email_open", "complaint", "survey", "return", "call"]
WEIGHTS = [0.3, 0.3, 0.15, 0.1, 0.04, 0.03, 0.04, 0.04]


def _events(customers: int, heavy: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    per = rng.integers(1, 20, customers)
    ids = np.repeat([f"C{i:06d}" for i in range(customers)], per).tolist() + [HEAVY] * heavy
    n = len(ids)
    kinds = rng.choice(KINDS, size=n, p=WEIGHTS)
    start = datetime(AS_OF.year, AS_OF.month, AS_OF.day, tzinfo=UTC) - timedelta(days=700)
    seconds = rng.integers(0, 700 * 86400, n)
    is_money = np.isin(kinds, ["order", "return"])
    frame = pl.DataFrame(
        {
            "customer_id": ids,
            "ts": [start + timedelta(seconds=int(s)) for s in seconds],
            "event_type": kinds,
            "channel": rng.choice(["web", "app", "store"], n),
            "amount": np.where(is_money, rng.integers(5, 400, n).astype(float), np.nan),
            "margin": None,
            "quantity": np.where(is_money, 1.0, np.nan),
            "category": rng.choice(["garden", "kitchen", "toys"], n),
            "score": np.where(kinds == "survey", rng.integers(0, 11, n).astype(float), np.nan),
            "ref_id": [f"r{i}" for i in range(n)],
        },
        schema_overrides={"margin": pl.Float64},
    )
    money = pl.col("event_type").is_in(["order", "return"])
    return frame.with_columns(
        pl.col(pl.Float64).fill_nan(None), category=pl.when(money).then(pl.col("category"))
    ).select(list(event_schema()))


class _Source:
    def __init__(self, models: dict[str, ServedModel], snapshot: LoadedSnapshot) -> None:
        self.models, self.snapshot = models, snapshot

    def load_models(
        self,
        tasks: Sequence[str],
        alias: str,
        gone: dict[str, ModelFilesMissingError] | None = None,
    ) -> dict[str, ServedModel]:
        return {t: self.models[t] for t in tasks}  # in memory: no files to lose, gone stays empty

    def load_snapshot(self) -> LoadedSnapshot:
        return self.snapshot


def _models(snapshot: pl.DataFrame) -> dict[str, ServedModel]:
    return {
        task: ServedModel(bundle=bundle, name=task, version="1", aliases=("champion",))
        for task, bundle in synthetic_bundles(snapshot, trees=200, depth=6).items()
    }


def _scan_and_validate(path: Path, customer: str) -> pl.DataFrame:
    """The reference: one customer's rows scanned from the raw events file and validated."""
    scan = pl.scan_csv(path, infer_schema=False) if path.suffix == ".csv" else pl.scan_parquet(path)
    rows = scan.filter(pl.col("customer_id").cast(pl.String) == customer)
    frame = validate_events(rows, now=datetime.now(UTC)).frame
    return frame.filter(pl.col("ts").dt.date() <= AS_OF)


def _timed(repeats: int, call: Callable[[], object]) -> list[float]:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return seconds


def _report(name: str, seconds: list[float]) -> None:
    p50 = statistics.median(seconds)
    print(
        f"{name:<46} p50 {p50 * 1000:8.1f} ms  max {max(seconds) * 1000:8.1f} ms  "
        f"p50/target {p50 / TARGET_SECONDS:5.2f}"
    )


def main() -> None:
    """Run the benchmark and print the timings against the 1 s target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--heavy-events", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="guanxi-bench-ui-") as tmp:
        home = Path(tmp) / "home"
        events = _events(args.customers, args.heavy_events)
        path = Path(tmp) / f"events.{args.format}"
        if args.format == "csv":
            events.write_csv(path)
        else:
            events.write_parquet(path, row_group_size=100_000)
        snapshot = build_snapshot(events, None, AS_OF)
        store = Store(home)
        store.write_snapshot(snapshot, AS_OF, events=path, history=events)
        source = _Source(_models(snapshot), LoadedSnapshot(AS_OF, FEATURE_SET_VERSION, snapshot))
        print(
            f"{events.height:,} events ({args.format}, {path.stat().st_size / 1e6:.1f} MB), "
            f"{snapshot.height:,} customers; {HEAVY} has {args.heavy_events:,} events; "
            f"target {TARGET_SECONDS:.1f} s per page"
        )
        for customer in (HEAVY, "C000500"):
            lookup = _timed(args.repeats, lambda c=customer: store.read_history(AS_OF, c))
            scan = _timed(args.repeats, lambda c=customer: _scan_and_validate(path, c))
            _report(f"history of {customer}: store lookup", lookup)
            _report(f"history of {customer}: reference, scan + validate", scan)
            ratio = statistics.median(lookup) / statistics.median(scan)
            print(f"{'':<46} lookup / reference {ratio:.3f}")

        settings = Settings(
            home=home,
            api_keys=SecretStr(f"{KEY}:reviewer"),
            audit_key=SecretStr("bench-audit-key-0123456789abcdef"),
            session_key=SecretStr("bench-session-key-0123456789abcdef"),
            store_key=SecretStr("bench-store-key-0123456789abcdef"),
            cookie_secure=False,  # the test client speaks plain http
            precompute_reasons=False,
        )
        with TestClient(create_app(settings, source)) as client:
            while client.get("/readyz").status_code != 200:
                time.sleep(0.05)
            client.post("/ui/login", data={"api_key": KEY}, headers={"Origin": "http://testserver"})
            start = time.perf_counter()
            first = client.get(f"/ui/customers/{HEAVY}")
            cold = time.perf_counter() - start
            assert first.status_code == 200 and 'id="orders"' in first.text, first.text[-500:]
            warm = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                response = client.get(f"/ui/customers/{HEAVY}")
                warm.append(time.perf_counter() - start)
                assert response.status_code == 200
        _report("customer page, first request (explains)", [cold])
        _report("customer page, repeated", warm)


if __name__ == "__main__":
    main()
