"""Real processes on loopback for the tests: ``guanxi serve``, ``mlflow server`` and PostgreSQL.

Every wait is bounded by a number of attempts; every process runs in its own session so the whole
group is stopped by its id. No server is given a port found free and let go before it starts
(another process could take it in between): the servers that run uvicorn bind port 0 and name the
port they got (:func:`listening_port`), and a server that must be told its port beforehand gets a
port held for it (:func:`reserved_port`). The benchmarks use these too.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "Postgres",
    "guanxi_serve",
    "listening_port",
    "mlflow_server",
    "postgres_bin",
    "reserved_port",
    "start_postgres",
    "stop",
    "stop_postgres",
    "wait_status",
]

GUANXI = [sys.executable, "-c", "from pipelines.cli import main; main()"]


LISTENING = re.compile(rb"Uvicorn running on https?://(?:\[[^\]]+\]|[^\s:/]+):(\d+)")
"""uvicorn's line naming the address it listens on (the port it got, when asked for port 0)."""


def child_env(**settings: str) -> dict[str, str]:
    """Return the environment for a child process that gets only the settings it is given.

    The test process's environment without any ``GUANXI_*`` or ``MLFLOW_*`` variable (a test's
    own monkeypatched home or tracking URI, the switches of :data:`tests.TEST_SWITCHES`), then
    ``settings``.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUANXI_", "MLFLOW_"))}
    return env | settings


def listening_port(
    proc: subprocess.Popen[Any], log: Path, start: int = 0, attempts: int = 600
) -> int:
    """Wait until a uvicorn server started on port 0 names the port it got in ``log``; return it.

    ``guanxi serve``, ``mlflow server`` and ``mlflow models serve`` run uvicorn, which binds port 0
    to a free port the system picks and logs ``Uvicorn running on http://HOST:PORT``: the port is
    the server's from the moment it is picked. ``start`` is where this run's output begins in
    ``log`` (a log may hold an earlier run's lines). Polls every 0.2 s, at most ``attempts`` times.
    """
    for _ in range(attempts):
        match = LISTENING.search(log.read_bytes()[start:]) if log.exists() else None
        if match:
            return int(match[1])
        if proc.poll() is not None:
            raise AssertionError(
                f"process exited with {proc.returncode}:\n{log.read_text()[-4000:]}"
            )
        time.sleep(0.2)
    raise AssertionError(f"no 'Uvicorn running on' line:\n{log.read_text()[-4000:]}")


@contextlib.contextmanager
def reserved_port() -> Iterator[int]:
    """Hold a free loopback port for a server that must be told its port before it starts.

    The port stays bound (``SO_REUSEADDR``, never listening) while the block runs. Linux lets a
    server that binds with ``SO_REUSEADDR`` too (uvicorn, PostgreSQL) listen on it, and gives it
    to no other socket: not to a bind to port 0 nor to an outgoing connection, and a bind to it
    without ``SO_REUSEADDR`` fails. So nobody takes it before the server binds it, nor between a
    server's stop and its restart; until a server listens, a connection to it is refused.
    """
    with socket.socket() as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held.bind(("127.0.0.1", 0))
        yield int(held.getsockname()[1])


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


def _start_listening(
    args: list[str], env: Mapping[str, str], log: Path, cwd: Path
) -> tuple[subprocess.Popen[bytes], int]:
    """Start a uvicorn server and wait for the port it names in ``log`` (stopped if it fails)."""
    start = log.stat().st_size if log.exists() else 0
    proc = _spawn(args, env, log, cwd)
    try:
        return proc, listening_port(proc, log, start)
    except BaseException:
        stop(proc)
        raise


def guanxi_serve(
    env: Mapping[str, str], log: Path, workers: int | None = 1, args: tuple[str, ...] = ()
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``guanxi serve --port 0`` with ``env`` (a full environment); return it and its port.

    One worker unless told (None: ``guanxi serve``'s default): ``/readyz`` is a worker's own
    answer, so a test that waits for it and then asks again is only sure to reach a loaded worker
    when there is one. ``args`` are more options of ``guanxi serve``. The output goes to ``log``;
    the server runs in its folder.
    """
    command = [*GUANXI, "serve", "--port", "0", *args]
    if workers is not None:
        command += ["--workers", str(workers)]
    return _start_listening(command, env, log, log.parent)


def mlflow_server(root: Path, log: Path, port: int = 0) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``mlflow server`` on 127.0.0.1, SQLite backend and artifacts in ``root``.

    On port 0 unless told (a port from :func:`reserved_port`, for a client told the URI before
    the server starts); returns the server and the port it names once it listens.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    args = [
        sys.executable, "-m", "mlflow", "server",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(root / "artifacts"),
    ]  # fmt: skip
    return _start_listening(args, env, log, root)


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


def stop(
    proc: subprocess.Popen[Any], sig: signal.Signals = signal.SIGTERM, timeout: float = 20
) -> None:
    """Send ``sig`` to the process group of ``proc`` and reap it (SIGKILL after ``timeout`` s)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=timeout)
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
    """Create a cluster in a new temporary folder and start it on a loopback port held for it.

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
    subprocess.run(
        _as_server_user([
            str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", user,
            f"--pwfile={root / 'pw'}", "--auth-local=trust", "--auth-host=scram-sha-256",
            "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
        ]),
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    with reserved_port() as port:  # held until the server listens on it
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
