"""Real processes on loopback for the tests: ``guanxi serve`` and ``mlflow server``.

Every wait is bounded by a number of attempts; every process runs in its own session so the whole
group is stopped by its id.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

__all__ = ["free_port", "guanxi_serve", "mlflow_server", "stop", "wait_status"]

GUANXI = [sys.executable, "-c", "from pipelines.cli import main; main()"]


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn(
    args: list[str], env: Mapping[str, str], log: Path, cwd: Path
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            args,
            cwd=cwd,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def guanxi_serve(port: int, env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``guanxi serve`` on 127.0.0.1:``port`` with ``env`` (a full environment)."""
    return _spawn([*GUANXI, "serve", "--port", str(port)], env, log, log.parent)


def mlflow_server(port: int, root: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start ``mlflow server`` on 127.0.0.1:``port``, SQLite backend and artifacts in ``root``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    args = [
        sys.executable, "-m", "mlflow", "server",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(root / "artifacts"),
    ]  # fmt: skip
    return _spawn(args, env, log, root)


def wait_status(
    url: str, status: int, proc: subprocess.Popen[Any], log: Path, attempts: int = 600
) -> httpx.Response:
    """Poll ``url`` every 0.2 s until it answers ``status`` (at most ``attempts`` polls)."""
    last = "no answer"
    for _ in range(attempts):
        if proc.poll() is not None:
            raise AssertionError(
                f"process exited with {proc.returncode}:\n{log.read_text()[-4000:]}"
            )
        with contextlib.suppress(httpx.HTTPError):
            response = httpx.get(url, timeout=5)
            if response.status_code == status:
                return response
            last = f"HTTP {response.status_code}"
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer {status} ({last}):\n{log.read_text()[-4000:]}")


def stop(proc: subprocess.Popen[Any], sig: signal.Signals = signal.SIGTERM) -> None:
    """Send ``sig`` to the process group of ``proc`` and reap it (SIGKILL after 20 s)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
