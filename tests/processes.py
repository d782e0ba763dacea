"""Real processes on loopback for the tests: ``guanxi serve``, ``mlflow server`` and PostgreSQL.

Every wait is bounded by a number of attempts; every process runs in its own session so the whole
group is stopped by its id.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "Postgres",
    "free_port",
    "guanxi_serve",
    "mlflow_server",
    "postgres_bin",
    "start_postgres",
    "stop",
    "stop_postgres",
    "wait_status",
]

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


def guanxi_serve(
    port: int, env: Mapping[str, str], log: Path, workers: int = 1
) -> subprocess.Popen[bytes]:
    """Start ``guanxi serve`` on 127.0.0.1:``port`` with ``env`` (a full environment).

    One worker unless told: ``/readyz`` is a worker's own answer, so a test that waits for it and
    then asks again is only sure to reach a loaded worker when there is one.
    """
    args = [*GUANXI, "serve", "--port", str(port), "--workers", str(workers)]
    return _spawn(args, env, log, log.parent)


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


# --- PostgreSQL -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Postgres:
    """A PostgreSQL server started by :func:`start_postgres`."""

    root: Path
    port: int
    user: str
    password: str
    bin: Path

    def uri(self, database: str = "postgres", password: str | None = None) -> str:
        """The URI of one database on the server (with the password, or another one)."""
        secret = self.password if password is None else password
        return f"postgresql://{self.user}:{secret}@127.0.0.1:{self.port}/{database}"


def postgres_bin() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: on PATH, else Debian's newest version."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4])
    )
    return Path(versions[-1]).parent if versions else None


def _as_server_user(args: list[str]) -> list[str]:
    """Run as the ``postgres`` system user when root (initdb and postgres refuse root)."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def start_postgres(user: str = "guanxi", password: str = "s3cret-pg") -> Postgres:
    """Create a cluster in a new temporary folder and start it on a free loopback port.

    Local (socket) connections are trusted; TCP connections need the password (SCRAM), so a wrong
    password is refused as on a real server. Waits until the server accepts connections (pg_ctl -w,
    60 s at most).
    """
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL is not installed (bash tests/install.sh installs it)")
    # /tmp: a folder the server user can reach even when TMPDIR is private to root
    root = Path(tempfile.mkdtemp(prefix="guanxi-pg-", dir="/tmp" if os.geteuid() == 0 else None))
    (root / "pw").write_text(password + "\n")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(root / "pw", "postgres")
    port = free_port()
    subprocess.run(
        _as_server_user([
            str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", user,
            f"--pwfile={root / 'pw'}", "--auth-local=trust", "--auth-host=scram-sha-256",
            "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
        ]),
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off"
    )
    subprocess.run(
        _as_server_user([
            str(bin_dir / "pg_ctl"), "-D", str(root / "data"), "-o", options,
            "-l", str(root / "server.log"), "-w", "-t", "60", "start",
        ]),
        check=True, capture_output=True, timeout=90,
    )  # fmt: skip
    return Postgres(root, port, user, password, bin_dir)


def stop_postgres(server: Postgres) -> None:
    """Stop the server (fast shutdown) and remove its folder."""
    subprocess.run(
        _as_server_user([
            str(server.bin / "pg_ctl"), "-D", str(server.root / "data"), "-m", "fast", "-w", "stop",
        ]),
        capture_output=True, timeout=90,
    )  # fmt: skip
    shutil.rmtree(server.root, ignore_errors=True)
