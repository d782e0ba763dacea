"""Several workers: shared backoff and reload generation, and a real ``guanxi serve --workers 2``.

The served test tells workers apart by prometheus_client's multiprocess files (one
``counter_<pid>.db`` per worker in the run directory): a connection's worker is the one whose
``/healthz`` count went up when it asked.
"""

from __future__ import annotations

import asyncio
import http.client
import multiprocessing
import os
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from starlette.requests import Request

from models import registry
from serving.deps import Backoff
from serving.workers import RunDir, prepare_run_dir
from tests.processes import child_env, guanxi_serve, stop
from tests.serving.conftest import AUDIT_KEY, KEYS, SESSION_KEY, STORE_KEY, Registry

SCORES = "/v1/customers/{customer_id}/scores"
FREE_FAILURES = 10
PINNED = httpx.Limits(keepalive_expiry=60)
"""A pinned client's connection stays open this long idle (httpx's own 5 s is shorter than the
gaps between one client's requests on a loaded machine)."""


def _request(host: str) -> Request:
    return Request({"type": "http", "client": (host, 1), "headers": []})


def test_backoff_is_shared_through_its_file(tmp_path: Path) -> None:
    now = [0.0]
    one, two = (
        Backoff(free=2, most_seconds=5, clock=lambda: now[0], path=tmp_path / "b.sqlite3")
        for _ in range(2)
    )
    client, other = _request("203.0.113.1"), _request("203.0.113.2")
    one.failed(client)
    two.failed(client)
    assert one.wait(client) == two.wait(client) == 0
    one.failed(client)  # the third failure, counted by either: both make the client wait
    assert one.wait(client) == two.wait(client) == 1
    assert two.wait(other) == 0
    two.succeeded(client)
    assert one.wait(client) == 0


def _open_backoff(path: Path, barrier: Any) -> None:
    barrier.wait()  # every process at once, as uvicorn's workers start
    Backoff(free=2, most_seconds=5, path=path).wait(_request("203.0.113.1"))  # raises: exit 1


def test_workers_starting_at_once_all_open_the_shared_backoff(tmp_path: Path) -> None:
    """Workers opening a new backoff file together each get it; none dies at start-up.

    In the CI of 0d1e4f9 a server of two workers lost one at start: both switched the new file to
    WAL at once and SQLite answered one "database is locked" (a deadlock: no busy wait).
    """
    context = multiprocessing.get_context("fork")
    for attempt in range(10):
        path = tmp_path / f"backoff-{attempt}.sqlite3"
        barrier = context.Barrier(4)
        workers = [context.Process(target=_open_backoff, args=(path, barrier)) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert [worker.exitcode for worker in workers] == [0] * 4, f"attempt {attempt}"


def test_backoff_forgets_the_oldest_clients_beyond_its_size() -> None:
    backoff = Backoff(free=0, most_seconds=5, clients=2, clock=lambda: 0.0)
    first, second, third = (_request(f"203.0.113.{i}") for i in (1, 2, 3))
    for request in (first, second, first, third):
        backoff.failed(request)
    assert backoff.wait(second) == 0  # its last failure was the oldest
    assert backoff.wait(first) == 2 and backoff.wait(third) == 1


def test_run_dir_generation_and_loaded_workers(tmp_path: Path) -> None:
    run, other = RunDir(tmp_path), RunDir(tmp_path, pid=os.getppid())
    dead = RunDir(tmp_path, pid=2**22 + 1)  # above the kernel's pid_max: never a live process
    assert run.generation() == 0
    other.mark_loaded(0, ok=True)
    dead.mark_loaded(0, ok=True)
    assert run.bump() == 1 and other.bump() == 2 and run.generation() == 2
    run.mark_loaded(2, ok=True)
    waited = asyncio.run(run.wait_loaded(2, seconds=0))
    assert (waited.loaded, waited.failed, waited.waiting) == (1, 0, 1)  # the dead one not counted
    other.mark_loaded(2, ok=False)
    waited = asyncio.run(run.wait_loaded(2, seconds=60))
    assert (waited.loaded, waited.failed, waited.waiting) == (1, 1, 0)


def test_prepare_run_dir_removes_dead_runs_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GUANXI_RUN_DIR", raising=False)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    dead = tmp_path / f"guanxi-serve-{2**22 + 1}-abc"
    live = tmp_path / f"guanxi-serve-{os.getppid()}-abc"
    for folder in (dead, live):
        (folder / "metrics").mkdir(parents=True)
    run = prepare_run_dir(tmp_path)
    assert not dead.exists() and live.exists()
    assert list(run.rglob("*")) == [run / "metrics"] and run.stat().st_mode & 0o077 == 0
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(run / "metrics")


# --- a real server with two workers ----------------------------------------------------------


def _worker_counts(metrics_dir: Path, route: str, status: str) -> dict[int, float]:
    """Requests of ``route`` answered with ``status``, by worker pid (from its own file).

    A worker counts a request as its answer starts, so every answer a client has is counted:
    read at once, no waiting for the files to settle.
    """
    counts: dict[int, float] = {}
    for path in metrics_dir.glob("counter_*.db"):
        pid = int(path.stem.removeprefix("counter_"))
        counts[pid] = sum(
            sample.value
            for metric in MultiProcessCollector.merge([str(path)], accumulate=False)
            for sample in metric.samples
            if sample.name == "guanxi_requests_total"
            and sample.labels["route"] == route
            and sample.labels["status"] == status
        )
    return counts


def _total(text: str, route: str, status: str = "200") -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "guanxi_requests_total"
        and sample.labels.get("route") == route
        and sample.labels.get("status") == status
    )


class Served:
    """A running ``guanxi serve --workers 2`` and its run directory."""

    def __init__(self, url: str, proc: subprocess.Popen[bytes], run: Path) -> None:
        self.url, self.proc, self.run = url, proc, run

    def pinned_clients(self) -> dict[int, httpx.Client]:
        """One kept-alive connection per worker, by worker pid."""
        found: dict[int, httpx.Client] = {}
        spare = []
        for _ in range(300):
            # httpx drops a connection idle 5 s and opens another, which may reach the other
            # worker (a loaded machine leaves one client idle that long): keep it (server: 75 s)
            client = httpx.Client(base_url=self.url, timeout=30, limits=PINNED)
            before = _worker_counts(self.run / "metrics", "/healthz", "200")
            assert client.get("/healthz").status_code == 200
            # counted as its answer started: read at once
            after = _worker_counts(self.run / "metrics", "/healthz", "200")
            [pid] = [p for p, n in after.items() if n > before.get(p, 0)]
            if pid in found:
                spare.append(client)
            else:
                found[pid] = client
            if len(found) == 2:
                break
        for client in spare:
            client.close()
        assert len(found) == 2, "300 connections all went to one worker"
        return found


@pytest.fixture
def served(registry_env: Registry, tmp_path: Path) -> Iterator[Served]:
    env = child_env()
    env.update(
        GUANXI_HOME=str(registry_env.home),
        GUANXI_API_KEYS=",".join(f"{k}:{role}" for role, k in KEYS.items()),
        GUANXI_AUDIT_KEY=AUDIT_KEY,
        GUANXI_SESSION_KEY=SESSION_KEY,
        GUANXI_STORE_KEY=STORE_KEY,
        GUANXI_PRECOMPUTE_REASONS="false",
        GUANXI_AUTH_FREE_FAILURES=str(FREE_FAILURES),
        GUANXI_AUTH_MAX_BACKOFF_SECONDS="600",
        GUANXI_RELOAD_POLL_SECONDS="0.2",
        MLFLOW_TRACKING_URI=registry_env.uri,
        TMPDIR=str(tmp_path),  # the run directory is made here
    )
    log = tmp_path / "serve.log"
    proc, port = guanxi_serve(env, log, workers=2)
    try:
        for _ in range(1200):  # both workers have loaded once each wrote its loaded-<pid> file
            assert proc.poll() is None, log.read_text()
            runs = list(tmp_path.glob("guanxi-serve-*"))
            loaded = RunDir(runs[0]).workers() if runs else {}
            if len(loaded) == 2 and all(ok for _, ok in loaded.values()):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("two workers never loaded")
        yield Served(f"http://127.0.0.1:{port}", proc, runs[0])
    finally:
        stop(proc)
    assert not list(tmp_path.glob("guanxi-serve-*"))  # the run directory went with the server


@pytest.mark.slow
def test_two_workers_share_metrics_reload_and_backoff(
    served: Served, registry_env: Registry
) -> None:
    clients = served.pinned_clients()
    scorer, admin = {"X-API-Key": KEYS["scorer"]}, {"X-API-Key": KEYS["admin"]}

    # /metrics counts every worker's requests, whichever worker answers it
    n = 0
    for client in clients.values():
        for i in range(25):
            r = client.get(f"/v1/customers/c{i + 1:03d}/scores?tasks=churn", headers=scorer)
            assert r.status_code == 200, r.text
            n += 1
    by_worker = _worker_counts(served.run / "metrics", SCORES, "200")
    assert sorted(by_worker.values()) == [25, 25]
    for client in clients.values():
        assert _total(client.get("/metrics").text, SCORES) == n

    # a reload reaches every worker before the admin call answers
    registry.set_alias("churn", registry.CHAMPION, registry_env.good)
    first, second = clients.values()
    r = first.post("/v1/admin/reload", headers=admin)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert (answer["generation"], answer["workers_loaded"], answer["workers_failed"]) == (1, 2, 0)
    assert {m["task"]: m["version"] for m in answer["models"]}["churn"] == registry_env.good

    def version(client: httpx.Client) -> str:
        got = client.get("/v1/customers/c001/scores?tasks=churn", headers=scorer)
        return str(got.json()["scores"]["churn"]["model_version"])

    assert {version(second) for _ in range(20)} == {registry_env.good}
    with ThreadPoolExecutor(8) as pool:  # new connections, over both workers
        fresh = list(pool.map(lambda _: version(httpx.Client(base_url=served.url)), range(40)))
    assert set(fresh) == {registry_env.good}

    # failures spread over the workers count together: the client waits after FREE_FAILURES + 1
    bad = {"X-API-Key": "guess-" + "x" * 40}
    codes = []
    for i in range(4 * FREE_FAILURES):
        code = (first, second)[i % 2].get("/v1/models", headers=bad).status_code
        codes.append(code)
        if code == 429:
            break
    assert codes[-1] == 429
    # one process per worker would have let 2 * FREE_FAILURES + 1 through; a stalled machine
    # lets one more through each time a wait (1 s, then 2 s, 4 s...) runs out before the next try
    assert FREE_FAILURES + 1 <= codes.count(401) < 2 * FREE_FAILURES + 1
    unauthorized = _worker_counts(served.run / "metrics", "/v1/models", "401")
    assert sum(unauthorized.values()) == codes.count(401)
    assert all(unauthorized.get(pid, 0) >= FREE_FAILURES // 2 for pid in clients)
    for client in clients.values():
        client.close()


@pytest.mark.slow
def test_an_idle_kept_alive_connection_outlasts_a_clients_expiry(served: Served) -> None:
    """A connection idle longer than httpx's 5 s keep-alive expiry still answers on reuse:
    uvicorn's default would have closed it at 5 s, racing a client that reuses it then.

    Each answer is read whole (status line, headers, body): uvicorn writes the head and the body
    apart, and a single ``recv`` may return the head alone, leaving the body to be read as the
    next answer. The same socket must carry both requests (``http.client`` would open another
    only if the first were closed).
    """
    host, port = served.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.connect()
        sock = conn.sock
        for idle in (0, 6):
            time.sleep(idle)
            try:
                conn.request("GET", "/healthz")
                response = conn.getresponse()
                response.read()
            except (http.client.HTTPException, ConnectionError) as error:
                raise AssertionError(f"closed after {idle} s idle: {error!r}") from error
            assert response.status == 200 and not response.will_close, idle
            assert conn.sock is sock, f"a new connection after {idle} s idle"
    finally:
        conn.close()
