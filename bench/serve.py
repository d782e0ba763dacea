"""Benchmark ``guanxi serve`` against ``mlflow models serve`` with the same churn model.

Both servers run on 127.0.0.1; MLflow with one worker, guanxi with ``--workers`` uvicorn worker
processes (default ``guanxi serve``'s: the CPU count, at most 4; each loads and explains the
snapshot itself). guanxi answers a
single-customer request for every served task (referral included) with five reasons each, and
for the three tasks churn, repurchase and cross-sell alone (``tasks=...``); MLflow answers a
churn probability alone for one row.
Printed: p50/p90 latency of one client (a customer's first request once the background worker has
explained the snapshot, a repeated one, and a first request to a second guanxi without background
explanations: a customer never explained before) and throughput at 16 concurrent clients (every
customer explained; and on the second guanxi, a mix of customers asked before and never asked),
with the ratios against MLflow (targets: p50 <= 1/5 for explained customers, <= 1/2 for customers
never explained before; throughput >= 5x).
Models are 300-tree depth-6 XGBoost boosters on sample data (synthetic labels: only speed is
measured). Request loops are bounded in count.

Usage: ``python -m bench.serve [--customers 5000] [--requests 300] [--clients 16] [--workers N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import numpy as np

from bench._common import register_champions
from features.events import read_customers, read_events
from features.snapshot import build_snapshot
from features.store import Store
from models import registry
from models.registry import configure_tracking
from models.tasks import model_frame
from pipelines.sample import generate_sample
from pipelines.serve import DEFAULT_WORKERS
from tests.processes import child_env, listening_port, reserved_port, stop

__all__ = ["main"]

KEY = "bench-key-0123456789abcdef0123456789"
THREE = ("churn", "repurchase", "cross_sell")
AS_OF = date(2025, 9, 30)


def _prepare(home: Path, customers: int) -> list[str]:
    """Sample data, a stored snapshot and a champion per task; returns the customer ids."""
    data = home / "data"
    generate_sample(customers, data)
    now = datetime.now(UTC)
    snapshot = build_snapshot(
        read_events(data / "events.parquet", now=now),
        read_customers(data / "customers.parquet", now=now),
        AS_OF,
    )
    Store(home).write_snapshot(snapshot, AS_OF)
    register_champions(home, snapshot, trees=300, depth=6)
    return list(snapshot.get_column("customer_id").to_list())


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path, attempts: int = 1200) -> None:
    for _ in range(attempts):
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise SystemExit(f"server for {url} exited with {proc.returncode}:\n{tail}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"{url} did not answer 200")


def _latencies(call, payloads: list) -> np.ndarray:  # type: ignore[no-untyped-def]
    out = []
    with httpx.Client(timeout=30) as client:
        for p in payloads:
            t0 = time.perf_counter()
            r = call(client, p)
            out.append(time.perf_counter() - t0)
            r.raise_for_status()
    return np.array(out) * 1000


def _throughput(call, payloads: list, clients: int) -> float:  # type: ignore[no-untyped-def]
    chunks = [payloads[i::clients] for i in range(clients)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda c: _latencies(call, c), chunks))
    return len(payloads) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--workers", type=int, default=DEFAULT_WORKERS, help="guanxi's uvicorn workers"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        t0 = time.perf_counter()
        ids = _prepare(home, args.customers)
        print(f"prepared {len(ids):,} customers, 3 models in {time.perf_counter() - t0:.0f} s")
        uri = configure_tracking(home)
        env = child_env(MLFLOW_TRACKING_URI=uri, GUANXI_HOME=str(home))
        # mlflow models serve runs `uvicorn` from PATH
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        # guanxi binds port 0 and names the port it got; `mlflow models serve` takes no port 0
        # (it would serve on uvicorn's 8000), so its port is held for it until it listens
        held = contextlib.ExitStack()
        ml_port = held.enter_context(reserved_port())
        keys = {
            "GUANXI_API_KEYS": f"{KEY}:scorer",
            "GUANXI_AUDIT_KEY": f"audit-{KEY}",
            "GUANXI_SESSION_KEY": f"session-{KEY}",
            "GUANXI_STORE_KEY": f"store-{KEY}",
        }
        serve = [str(Path(sys.executable).with_name("guanxi")), "serve", "--workers"]
        serve.append(str(args.workers))
        guanxi = _start(
            [*serve, "--port", "0"],
            env | keys,
            Path(tmp) / "guanxi.log",
        )
        cold = _start(
            [*serve, "--port", "0"],
            env | keys | {"GUANXI_PRECOMPUTE_REASONS": "false"},
            Path(tmp) / "cold.log",
        )
        ml = _start(
            [
                str(Path(sys.executable).with_name("mlflow")),
                "models",
                "serve",
                "-m",
                "models:/churn@champion",
                "--env-manager",
                "local",
                "--host",
                "127.0.0.1",
                "--port",
                str(ml_port),
                "-w",
                "1",
            ],
            env,
            Path(tmp) / "mlflow.log",
        )
        try:
            gx_port = listening_port(guanxi, Path(tmp) / "guanxi.log", attempts=1200)
            cold_port = listening_port(cold, Path(tmp) / "cold.log", attempts=1200)
            gx, mlu = f"http://127.0.0.1:{gx_port}", f"http://127.0.0.1:{ml_port}"
            _wait(f"{gx}/readyz", guanxi, Path(tmp) / "guanxi.log")
            ready = time.perf_counter()
            _wait(f"{mlu}/ping", ml, Path(tmp) / "mlflow.log")
            held.close()
            _wait(f"http://127.0.0.1:{cold_port}/readyz", cold, Path(tmp) / "cold.log")
            done = 0  # polls in a row answering "all explained" (any worker may answer)
            for _ in range(2400):  # until the background workers have explained everyone
                answer = httpx.get(f"{gx}/v1/models", headers={"X-API-Key": KEY})
                models = answer.json()  # a 503 from a worker still loading counts as not done
                explained = models.get("snapshot", {}).get("explained", {0: 0.0})
                done = done + 1 if answer.is_success and min(explained.values()) == 1.0 else 0
                if done >= 1 + 9 * (args.workers > 1):
                    break
                time.sleep(0.25)
            explained_after = time.perf_counter() - ready
            served = list(models["snapshot"]["explained"])
            snapshot = Store(home).read_snapshot(AS_OF)
            churn = registry.load_model("churn", alias=registry.CHAMPION).bundle
            X = model_frame("churn", snapshot, churn.feature_names)  # noqa: N806
            rows = {cid: X.loc[[cid]].astype(float) for cid in X.index[: args.requests]}

            def gx_call(
                client: httpx.Client, cid: str, base: str = gx, query: str = ""
            ) -> httpx.Response:
                return client.get(
                    f"{base}/v1/customers/{cid}/scores?explain=5{query}",
                    headers={"X-API-Key": KEY},
                )

            def three_call(client: httpx.Client, cid: str) -> httpx.Response:
                return gx_call(client, cid, query=f"&tasks={','.join(THREE)}")

            def cold_call(client: httpx.Client, cid: str) -> httpx.Response:
                return gx_call(client, cid, f"http://127.0.0.1:{cold_port}")

            def ml_call(client: httpx.Client, cid: str) -> httpx.Response:
                frame = rows[cid].replace({np.nan: None})
                body = {"dataframe_split": frame.to_dict(orient="split", index=False)}
                return client.post(f"{mlu}/invocations", json=body)

            sample = random.Random(0).sample(list(rows), len(rows))
            never = [str(c) for c in X.index[args.requests : 2 * args.requests]]
            unexplained = _latencies(cold_call, sample)
            mixed = [c for pair in zip(sample, never, strict=False) for c in pair]
            mix_rps = _throughput(cold_call, mixed, args.clients)  # half asked before, half never
            stop(cold, timeout=30)
            first = _latencies(three_call, sample)
            others = [str(c) for c in X.index[2 * args.requests : 3 * args.requests]]
            first_all = _latencies(gx_call, others)  # customers asked for the first time
            repeat = _latencies(three_call, sample)
            repeat_all = _latencies(gx_call, sample)
            ml_lat = _latencies(ml_call, sample)
            _latencies(ml_call, sample)  # warm both equally before throughput
            gx_rps = _throughput(gx_call, sample * 2, args.clients)
            ml_rps = _throughput(ml_call, sample * 2, args.clients)
        finally:
            held.close()
            for proc in (guanxi, cold, ml):
                stop(proc, timeout=30)
    p = np.percentile
    ml50 = p(ml_lat, 50)
    print(
        f"requests per measure        {len(sample):,}; load average {os.getloadavg()[0]:.1f}; "
        f"guanxi workers {args.workers}"
    )
    print(f"background explained all   {explained_after:7.1f} s after ready")
    for name, values in (
        (f"never explained, {len(served)} tasks", unexplained),
        ("explained, first, 3 tasks", first),
        (f"explained, first, {len(served)} tasks", first_all),
        ("explained, repeat, 3 tasks", repeat),
        (f"explained, repeat, {len(served)} tasks", repeat_all),
        ("mlflow, churn only", ml_lat),
    ):
        print(
            f"{name:<34} p50 {p(values, 50):7.2f} ms   p90 {p(values, 90):7.2f} ms   "
            f"p50 / mlflow {p(values, 50) / ml50:5.2f}"
        )
    print("targets: p50 / mlflow <= 0.20 explained, <= 0.50 never explained")
    print(
        f"throughput, {args.clients} clients, explained    guanxi {gx_rps:,.0f}/s, "
        f"mlflow {ml_rps:,.0f}/s, ratio {gx_rps / ml_rps:.2f}x   (target >= 5x)"
    )
    print(
        f"throughput, {args.clients} clients, half never asked  guanxi {mix_rps:,.0f}/s, "
        f"ratio {mix_rps / ml_rps:.2f}x"
    )


if __name__ == "__main__":
    main()
