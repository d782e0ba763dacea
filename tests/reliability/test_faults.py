"""Faults: an unreachable registry, bad model artifacts, SIGKILL mid-write, a tracking server that
dies during ``guanxi train``. Each checks the behaviour promised in SECURITY.md.

The serving fixtures (tiny models in a SQLite MLflow, the snapshot) come from
``tests/serving/conftest.py``; the real-process tests run ``guanxi serve``, ``guanxi train`` and
``mlflow server`` on loopback and are marked slow.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import mlflow
import polars as pl
import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from features.store import Store, is_temporary
from pipelines.sample import generate_sample
from serving.app import create_app
from serving.audit import AuditLog, verify_part
from tests.processes import (
    GUANXI,
    child_env,
    guanxi_serve,
    mlflow_server,
    reserved_port,
    stop,
    wait_status,
)
from tests.serving.conftest import (
    AS_OF,
    AUDIT_KEY,
    KEYS,
    SESSION_KEY,
    STORE_KEY,
    Registry,
    _artifact_dir,
    _register,
    headers,
    make_settings,
    train_bundle,
    until,
    wait_ready,
)

ROOT = Path(__file__).resolve().parents[2]
SCORES = "/v1/customers/c001/scores?tasks=churn&explain=2"


def _serving_env(home: Path, tracking_uri: str) -> dict[str, str]:
    return child_env(
        **{
            "GUANXI_HOME": str(home),
            "GUANXI_API_KEYS": ",".join(f"{k}:{role}" for role, k in KEYS.items()),
            "GUANXI_AUDIT_KEY": AUDIT_KEY,
            "GUANXI_SESSION_KEY": SESSION_KEY,
            "GUANXI_STORE_KEY": STORE_KEY,
            "GUANXI_RETRY_SECONDS": "0.5",
            "GUANXI_PRECOMPUTE_REASONS": "false",
            "MLFLOW_TRACKING_URI": tracking_uri,
        }
    )


# --- models that must be refused -----------------------------------------------------------


@pytest.fixture
def truncated(registry_env: Registry, snapshot: pl.DataFrame) -> str:
    """A churn version whose booster file is cut in half."""
    version = _register(train_bundle("churn", snapshot, seed=4), snapshot, registry_env.home)
    for path in _artifact_dir("churn", version).rglob("model.ubj"):
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return version


def _load_failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "serving.lifecycle" and r.levelno == logging.WARNING
    ]


def test_bad_models_are_refused_logged_and_the_old_one_serves(
    registry_env: Registry, truncated: str, caplog: pytest.LogCaptureFixture
) -> None:
    reg = registry_env
    caplog.set_level(logging.WARNING, logger="serving.lifecycle")
    with TestClient(create_app(make_settings(reg.home))) as client:
        wait_ready(client)
        expected = {
            reg.corrupt: "does not match its checksum",
            truncated: "does not match its checksum",
            reg.incompatible: "was trained on feature set version 0",
        }
        for version, reason in expected.items():
            mlflow.MlflowClient().set_registered_model_alias("churn", "champion", version)
            caplog.clear()
            r = client.post("/v1/admin/reload", headers=headers("admin"))
            assert r.status_code == 409 and "request id" in r.json()["detail"]
            assert reason not in r.text and "/" not in r.json()["detail"]  # the log has it
            [logged] = _load_failures(caplog)
            assert (
                logged.startswith("load failed, keeping the current state: ") and reason in logged
            )
            r = client.get(SCORES, headers=headers())
            assert r.status_code == 200
            assert r.json()["scores"]["churn"]["model_version"] == reg.champion["churn"]
            assert client.get("/readyz").status_code == 200


def test_bad_champion_at_start_up_is_not_ready_then_recovers(
    registry_env: Registry, truncated: str, caplog: pytest.LogCaptureFixture
) -> None:
    reg = registry_env
    caplog.set_level(logging.WARNING, logger="serving.lifecycle")
    mlflow.MlflowClient().set_registered_model_alias("churn", "champion", truncated)
    with TestClient(create_app(make_settings(reg.home))) as client:
        until(lambda: _load_failures(caplog), "no load failure logged")
        assert "does not match its checksum" in _load_failures(caplog)[0]
        assert client.get("/healthz").status_code == 200
        r = client.get("/readyz")
        # the API's 503 says the same, and why in one line (serving47 item 2)
        said = (
            "models are not loaded yet: last load failed; retrying (ValueError; the reason is in "
            "the server log)"
        )
        assert r.status_code == 503 and r.json()["detail"] == said, r.text
        assert client.get(SCORES, headers=headers()).json()["detail"] == r.json()["detail"]
        mlflow.MlflowClient().set_registered_model_alias("churn", "champion", reg.champion["churn"])
        wait_ready(client)  # by itself: the start-up loop keeps retrying
        r = client.get(SCORES, headers=headers())
        assert r.json()["scores"]["churn"]["model_version"] == reg.champion["churn"]


# --- the registry is not there at start-up ---------------------------------------------------


@pytest.mark.slow
def test_unreachable_registry_at_start_up_then_recovers(
    registry_setup: Registry, snapshot: pl.DataFrame, tmp_path: Path
) -> None:
    """Alive and not ready while the tracking server is down; ready once it comes up."""
    root = tmp_path / "mlflow"
    root.mkdir()
    shutil.copyfile(registry_setup.home / "mlflow.db", root / "mlflow.db")
    home = tmp_path / "home"
    Store(home).write_snapshot(snapshot, AS_OF)
    reserved = contextlib.ExitStack()
    port = reserved.enter_context(reserved_port())  # held for the tracking server until it ends
    env = _serving_env(home, f"http://127.0.0.1:{port}")
    server, serve_port = guanxi_serve(env, tmp_path / "serve.log")
    base = f"http://127.0.0.1:{serve_port}"
    tracking = None
    try:
        wait_status(f"{base}/healthz", 200, server, tmp_path / "serve.log")
        r = wait_status(f"{base}/readyz", 503, server, tmp_path / "serve.log")
        for _ in range(300):  # until a load attempt has failed
            if "last load failed; retrying" in r.json()["detail"]:
                break
            time.sleep(0.2)
            r = httpx.get(f"{base}/readyz")
        # the registry's failure, said as such, and the API's 503 the same (review48s M2: the
        # one check, with a real server down, of which failures are the registry's); run it with
        # PYTHONPATH set to the tree under test, which `guanxi serve` imports otherwise from the
        # editable install's
        said = (
            "models are not loaded yet: last load failed; retrying (the model registry could not "
            "be read: MlflowException; the reason is in the server log)"
        )
        assert r.status_code == 503 and r.json()["detail"] == said, r.text
        assert httpx.get(f"{base}/healthz").status_code == 200
        scores = httpx.get(f"{base}{SCORES}", headers=headers())
        assert scores.status_code == 503 and scores.json()["detail"] == said, scores.text

        t0 = time.monotonic()
        tracking, _ = mlflow_server(root, tmp_path / "mlflow.log", port)
        wait_status(f"{base}/readyz", 200, server, tmp_path / "serve.log")
        print(f"\nready {time.monotonic() - t0:.1f} s after the tracking server was started")
        r = httpx.get(f"{base}{SCORES}", headers=headers())
        assert r.status_code == 200
        assert r.json()["scores"]["churn"]["model_version"] == registry_setup.champion["churn"]
    finally:
        stop(server)
        if tracking is not None:
            stop(tracking)
        reserved.close()
    log = (tmp_path / "serve.log").read_text()
    assert "load failed, nothing served yet; retrying every " in log  # none loaded at start


# --- SIGKILL while a score table or the audit log is written ----------------------------------

_SCORE_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import numpy as np, polars as pl
    from pipelines.connectors import write_frame

    out = Path(sys.argv[1])
    rng = np.random.default_rng(0)
    big = pl.DataFrame({f"p{i}": rng.random(1_500_000) for i in range(4)})
    print("READY", flush=True)
    for n in range(1000):
        write_frame(big.with_columns(pl.lit(n).alias("generation")), out)
    """
)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_sigkill_while_writing_scores_keeps_the_previous_table(tmp_path: Path, suffix: str) -> None:
    from pipelines.connectors import write_frame

    out = tmp_path / "scores" / f"scores{suffix}"
    out.parent.mkdir()
    before = pl.DataFrame({"customer_id": ["a", "b"], "probability": [0.25, 0.5]})
    write_frame(before, out)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _SCORE_WRITER, str(out)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"

    def writing() -> bool:
        try:
            return any(is_temporary(p) and p.stat().st_size > 0 for p in out.parent.iterdir())
        except FileNotFoundError:  # renamed meanwhile
            return False

    for _ in range(100_000):
        if proc.poll() is not None or writing():
            break
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    read = pl.read_csv if suffix == ".csv" else pl.read_parquet
    after = read(out)
    if after.columns == before.columns:  # killed during the first write
        assert after.equals(before)
    else:  # a write finished before the kill: it is complete
        assert after.height == 1_500_000 and after["generation"].n_unique() == 1
    assert [p.name for p in out.parent.iterdir() if not is_temporary(p)] == [out.name]
    write_frame(before, out)  # the next write removes what the dead writer left
    assert [p.name for p in out.parent.iterdir()] == [out.name]


_AUDIT_WRITER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    import serving.audit
    from serving.audit import AuditLog

    real_write = serving.audit._write

    def slow_write(fd, data):
        # The write this test guards, slowed: half the request's bytes on disk, then the kill.
        if len(data) > 100_000:
            real_write(fd, data[: len(data) // 2])
            print("WRITING", flush=True)
            time.sleep(600)
        real_write(fd, data)

    serving.audit._write = slow_write
    log = AuditLog(Path(sys.argv[1]), b"k" * 32, flush_seconds=0.01)
    for n in range(3):  # small requests, whole: the timer fsyncs them
        served = [(f"c{i}", "churn", "1", 0.5) for i in range(10)]
        log.record(f"r{n}", "scorer", served, key_fingerprint="f")
    time.sleep(0.1)
    log.record(
        "big", "scorer", [(f"c{i}", "churn", "1", 0.5) for i in range(5000)], key_fingerprint="f"
    )
    """
)


def test_sigkill_while_appending_audit_leaves_whole_requests(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _AUDIT_WRITER, str(home)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "WRITING"
    [part] = (home / "audit").glob("part-*.jsonl")
    written = part.stat().st_size
    proc.send_signal(signal.SIGKILL)  # inside the write of request "big"
    proc.wait()
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    text = part.read_text()
    assert not text.endswith("\n") or "big" in text  # half a request on disk
    with caplog.at_level(logging.WARNING, logger="serving.audit"):
        AuditLog(home, b"k" * 32)  # what a restarted server does first
    assert list((home / "audit").glob("*.pending")) == []
    text = part.read_text()
    assert text.endswith("\n")
    per_request = Counter(json.loads(line)["request_id"] for line in text.splitlines())
    assert per_request == {"r0": 10, "r1": 10, "r2": 10}  # nothing served before is lost
    assert verify_part(part, b"k" * 32) == (30, None)
    [cut] = [r.getMessage() for r in caplog.records if " cut " in f" {r.getMessage()}"]
    assert f"from {written} to {len(text.encode())} bytes" in cut


# --- the tracking server dies during `guanxi train` ----------------------------------------


@pytest.mark.slow
def test_tracking_server_killed_mid_train(tmp_path: Path) -> None:
    sample = generate_sample(1200, tmp_path / "sample", seed=5)
    root = tmp_path / "mlflow"
    root.mkdir()
    tracking, port = mlflow_server(root, tmp_path / "mlflow.log")
    uri = f"http://127.0.0.1:{port}"
    wait_status(f"{uri}/health", 200, tracking, tmp_path / "mlflow.log")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
        "MLFLOW_TRACKING_URI": uri,
        "GUANXI_HOME": str(tmp_path / "home"),
        "COLUMNS": "200",
    }
    args = [
        "train", "--task", "churn",
        "--events", str(sample.events_path), "--customers", str(sample.customers_path),
        "--as-of", "2024-10-31", "--horizon", "90", "--trials", "40", "--seed", "1",
    ]  # fmt: skip
    train = subprocess.Popen(
        [*GUANXI, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    started = threading.Event()

    def read() -> None:
        assert train.stdout is not None
        for line in train.stdout:
            lines.append(line)
            if line.startswith("MLflow run "):
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(timeout=300), "".join(lines)
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        [experiment] = [e for e in client.search_experiments() if e.name == "guanxi-churn"]
        for _ in range(600):  # kill once trials are being logged: mid-training
            if client.search_runs([experiment.experiment_id], "tags.mlflow.parentRunId != ''"):
                break
            time.sleep(0.2)
        stop(tracking, signal.SIGKILL)
        code = train.wait(timeout=600)
    finally:
        if train.poll() is None:
            train.kill()
            train.wait()
    reader.join(timeout=10)
    output = " ".join("".join(lines).split())
    print(f"\nguanxi train exited {code}: {output[-700:]}")
    assert code not in (0, None), output
    assert "MLflow" in output and uri.removeprefix("http://") in output, output
    assert "Max retries exceeded" in output and "Traceback" not in output, output

    tracking, port = mlflow_server(root, tmp_path / "mlflow-again.log")
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_status(f"{uri}/health", 200, tracking, tmp_path / "mlflow-again.log")
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        assert client.search_registered_models() == []
        assert client.search_model_versions("name = 'churn'") == []
    finally:
        stop(tracking)
