"""Bounded load test of ``guanxi serve`` on loopback: concurrent clients, latency, server memory.

A snapshot of ``--customers`` customers is made by resampling the rows of a real snapshot of a
small sample (new ids, the registered feature columns), small XGBoost champions are registered in
a SQLite MLflow, and ``guanxi serve`` runs as its own process. Once the background worker has
explained every customer, ``--clients`` async httpx clients send requests for ``--warmup`` seconds
(not measured), then for ``--duration`` seconds: 9 in 10 ask for one customer's scores with five
reasons per task, 1 in 10 for a batch of 20 customers. Printed: requests, failures (anything but
200, or no answer), throughput, p50/p90/p99 latency, the server's resident memory (the
``guanxi serve`` process and its uvicorn workers together) after the warm-up and at the end, and
each worker's share: the CPU seconds it spent in the measured phase and the client connections it
held at its end (the clients' keep-alive connections all accepted by one of two workers halved the
throughput in sessions 44 and 46, with the other worker idle).
The server runs with ``guanxi serve``'s default workers. Every loop stops by itself (bounded in
time and in count).

Usage: ``python -m bench.load [--customers 100000] [--clients 16] [--duration 60] [--warmup 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import psutil

from bench._common import register_champions
from features.events import read_customers, read_events
from features.snapshot import build_snapshot
from features.store import Store
from pipelines.sample import generate_sample
from tests.processes import listening_port, stop

__all__ = [
    "LoadResult",
    "expand_snapshot",
    "main",
    "prepare",
    "run_load",
    "serve",
    "tree_rss",
    "workers",
]

KEY = "load-key-0123456789abcdef0123456789"
AUDIT_KEY = "load-audit-key-0123456789abcdef0123"
SESSION_KEY = "load-session-key-0123456789abcdef01"
STORE_KEY = "load-store-key-0123456789abcdef0123"
AS_OF = date(2025, 9, 30)
MAX_REQUESTS_PER_CLIENT = 1_000_000


def expand_snapshot(frame: pl.DataFrame, customers: int, seed: int = 0) -> pl.DataFrame:
    """Resample a snapshot's rows into ``customers`` customers with new ids ``L0000000``...

    Parameters
    ----------
    frame : polars.DataFrame
        A snapshot (one row per customer, a ``customer_id`` column).
    customers : int
        Rows of the result.
    seed : int
        Seed of the resampling.

    Returns
    -------
    polars.DataFrame
        Same columns and types; every row a copy of a random row of ``frame``.
    """
    rows = np.random.default_rng(seed).integers(0, frame.height, customers)
    ids = pl.Series("customer_id", [f"L{i:07d}" for i in range(customers)])
    return frame[rows].with_columns(ids)


def prepare(home: Path, customers: int) -> list[str]:
    """Store an expanded snapshot under ``home`` and register a small champion per task.

    Parameters
    ----------
    home : pathlib.Path
        ``GUANXI_HOME`` of the server (store and SQLite MLflow).
    customers : int
        Customers of the stored snapshot.

    Returns
    -------
    list of str
        The customer ids of the snapshot.
    """
    data = home / "sample"
    generate_sample(2000, data, seed=1)
    now = datetime.now(UTC)
    small = build_snapshot(
        read_events(data / "events.parquet", now=now),
        read_customers(data / "customers.parquet", now=now),
        AS_OF,
    )
    snapshot = expand_snapshot(small, customers)
    Store(home).write_snapshot(snapshot, AS_OF)
    register_champions(home, small, trees=100, depth=4, eta=0.1)
    return list(snapshot.get_column("customer_id").to_list())


@contextlib.contextmanager
def serve(env: dict[str, str], log: Path, attempts: int = 1500) -> Iterator[tuple[str, int]]:
    """Run ``guanxi serve`` on a loopback port (port 0) until its snapshot is fully explained.

    Parameters
    ----------
    env : dict
        Extra environment (``GUANXI_*``, ``MLFLOW_TRACKING_URI``); keys and audit key default to
        :data:`KEY` (admin) and :data:`AUDIT_KEY`.
    log : pathlib.Path
        Where the server's output goes.
    attempts : int
        Readiness polls, 0.2 s apart.

    Yields
    ------
    tuple of (str, int)
        The base URL and the server's process id; the process group is stopped on exit.
    """
    full = {
        **os.environ,
        "GUANXI_API_KEYS": f"{KEY}:admin",
        "GUANXI_AUDIT_KEY": AUDIT_KEY,
        "GUANXI_SESSION_KEY": SESSION_KEY,
        "GUANXI_STORE_KEY": STORE_KEY,
        **env,
    }
    args = [sys.executable, "-c", "from pipelines.cli import main; main()", "serve"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*args, "--port", "0"],
            env=full,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{listening_port(proc, log, attempts=attempts)}"
        done = 0  # polls in a row answering "all explained" (any worker may answer)
        for _ in range(attempts):
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"server exited with {proc.returncode}:\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                r = httpx.get(f"{base}/v1/models", headers={"X-API-Key": KEY}, timeout=5)
                ok = r.status_code == 200 and min(r.json()["snapshot"]["explained"].values()) == 1
                done = done + 1 if ok else 0
                if done >= 10:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{base} was not ready and explained after {attempts} polls")
        yield base, proc.pid
    finally:
        stop(proc, timeout=30)


def workers(server: psutil.Process) -> list[psutil.Process]:
    """The processes of ``guanxi serve`` that answer requests: its uvicorn workers, else itself.

    Parameters
    ----------
    server : psutil.Process
        The ``guanxi serve`` process.

    Returns
    -------
    list of psutil.Process
        Its children started by multiprocessing's spawn (the workers, not its resource tracker),
        in pid order; the server itself when it runs one worker in its own process.
    """
    spawned = []
    for child in server.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if any("spawn_main" in part for part in child.cmdline()):
                spawned.append(child)
    return sorted(spawned, key=lambda p: p.pid) or [server]


def _cpu_seconds(process: psutil.Process) -> float:
    """User and system CPU seconds of a process so far (NaN once it has exited)."""
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:  # a worker replaced meanwhile
        return float("nan")
    return times.user + times.system


def _connections(process: psutil.Process, port: int) -> int:
    """Established TCP connections a process holds on its listening ``port`` (0 once exited)."""
    try:
        held = process.net_connections(kind="tcp")
    except psutil.NoSuchProcess:
        return 0
    return sum(
        1 for c in held if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port
    )


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of a process and all its descendants (``guanxi serve`` and its workers).

    Parameters
    ----------
    process : psutil.Process
        The parent process.

    Returns
    -------
    int
        The sum of their resident set sizes (a child that exits meanwhile is left out).
    """
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += child.memory_info().rss
    return total


@dataclass
class LoadResult:
    """What one measured phase saw."""

    requests: int
    failed: int
    seconds: float
    latencies_ms: np.ndarray
    statuses: Counter[str]
    rss_warm_mb: float
    rss_end_mb: float
    rss_peak_mb: float
    worker_cpu_s: list[float]
    worker_connections: list[int]

    def percentile(self, q: float) -> float:
        """Latency percentile in milliseconds."""
        return float(np.percentile(self.latencies_ms, q)) if len(self.latencies_ms) else 0.0

    def report(self) -> str:
        """The figures, one per line."""
        return "\n".join(
            [
                f"requests {self.requests:,} in {self.seconds:.1f} s "
                f"({self.requests / self.seconds:,.0f}/s), failed {self.failed}",
                f"latency p50 {self.percentile(50):.1f} ms, p90 {self.percentile(90):.1f} ms, "
                f"p99 {self.percentile(99):.1f} ms, max {self.percentile(100):.1f} ms",
                f"server RSS after warm-up {self.rss_warm_mb:.1f} MB, at the end "
                f"{self.rss_end_mb:.1f} MB ({self.rss_end_mb / self.rss_warm_mb - 1:+.1%}), "
                f"peak {self.rss_peak_mb:.1f} MB",
                f"statuses {dict(self.statuses)}",
                "workers' CPU in the measured phase "
                + ", ".join(f"{s:.1f} s" for s in self.worker_cpu_s)
                + "; client connections held at its end "
                + ", ".join(str(n) for n in self.worker_connections),
            ]
        )


async def _phase(
    base: str, ids: list[str], clients: int, seconds: float, seed: int, rss: psutil.Process
) -> tuple[list[float], Counter[str], float, float, list[int]]:
    """Run ``clients`` request loops for ``seconds``.

    Returns latencies, statuses, time, peak RSS and each worker's client connections (sampled
    last while the clients still hold them).
    """
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    peak = 0
    held: list[int] = []
    port = httpx.URL(base).port or 80
    deadline = time.monotonic() + seconds

    async def one(client: httpx.AsyncClient, rng: random.Random) -> None:
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            if time.monotonic() >= deadline:
                return
            start = time.perf_counter()
            try:
                if rng.random() < 0.9:
                    r = await client.get(f"/v1/customers/{rng.choice(ids)}/scores?explain=5")
                else:
                    body = {"customer_ids": rng.sample(ids, 20), "explain": 3}
                    r = await client.post("/v1/scores", json=body)
                statuses[str(r.status_code)] += 1
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1
            latencies.append(time.perf_counter() - start)

    async def watch() -> None:
        nonlocal peak, held
        while time.monotonic() < deadline:
            peak = max(peak, tree_rss(rss))
            held = [_connections(worker, port) for worker in workers(rss)]
            await asyncio.sleep(0.5)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"X-API-Key": KEY}
    async with httpx.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=60
    ) as client:
        started = time.monotonic()
        rngs = [random.Random(seed * 1000 + i) for i in range(clients)]
        await asyncio.gather(watch(), *(one(client, rng) for rng in rngs))
        elapsed = time.monotonic() - started
    return latencies, statuses, elapsed, peak, held


def run_load(
    base: str,
    pid: int,
    ids: list[str],
    clients: int = 16,
    duration: float = 60.0,
    warmup: float = 10.0,
) -> LoadResult:
    """Warm the server up, then measure ``clients`` concurrent clients for ``duration`` seconds.

    Parameters
    ----------
    base : str
        The server's base URL (loopback).
    pid : int
        The server's process id (its resident memory and its workers' is measured).
    ids : list of str
        Customer ids of the loaded snapshot to ask for.
    clients : int
        Concurrent clients.
    duration, warmup : float
        Seconds of the measured phase and of the warm-up before it.

    Returns
    -------
    LoadResult
        Counts, latencies, the server's memory (after warm-up, at the end, peak) and each
        worker's CPU seconds and client connections in the measured phase.
    """
    server = psutil.Process(pid)
    asyncio.run(_phase(base, ids, clients, warmup, 0, server))
    warm = tree_rss(server)
    serving = workers(server)
    cpu = [_cpu_seconds(worker) for worker in serving]
    latencies, statuses, elapsed, peak, held = asyncio.run(
        _phase(base, ids, clients, duration, 1, server)
    )
    end = tree_rss(server)
    spent = [_cpu_seconds(worker) - before for worker, before in zip(serving, cpu, strict=True)]
    return LoadResult(
        requests=sum(statuses.values()),
        failed=sum(n for status, n in statuses.items() if status != "200"),
        seconds=elapsed,
        latencies_ms=np.array(latencies) * 1000,
        statuses=statuses,
        rss_warm_mb=warm / 2**20,
        rss_end_mb=end / 2**20,
        rss_peak_mb=max(peak, end) / 2**20,
        worker_cpu_s=spent,
        worker_connections=held,
    )


def main() -> None:
    """Prepare a store and registry, start ``guanxi serve``, load it and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=10.0, help="unmeasured seconds first")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="guanxi-load-") as tmp:
        home = Path(tmp) / "home"
        t0 = time.perf_counter()
        ids = prepare(home, args.customers)
        print(f"prepared {len(ids):,} customers in {time.perf_counter() - t0:.1f} s")
        env = {"GUANXI_HOME": str(home)}
        with serve(env, Path(tmp) / "server.log") as (base, pid):
            print(f"serving at {base}, pid {pid}; {args.clients} clients")
            result = run_load(base, pid, ids, args.clients, args.duration, args.warmup)
        print(result.report())


if __name__ == "__main__":
    main()
