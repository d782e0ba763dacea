"""A real ``guanxi serve --workers 2``: each worker listens on a socket of its own (SO_REUSEPORT).

All workers shared one listening socket, and the first worker whose event loop woke accepted
every connection waiting (asyncio accepts up to the backlog per wake-up): a client's pool of
keep-alive connections opened in a burst landed on one worker, which served all of it while the
other idled (half the machine's throughput, bench.load's ~175 requests/s against ~330/s).

The tests look at the processes as the system sees them (psutil, ``/proc/PID/fd``): which worker
holds each established connection, and which listening socket (by inode) each worker holds.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import uvicorn

from serving.supervisor import REUSE_PORT, Supervisor, listening_sockets
from tests.processes import GUANXI, child_env, guanxi_serve, listening_port, reserved_port, stop
from tests.serving.stuck_app import FACTORY
from tests.serving.test_serve_cli import SLOW_START

pytestmark = pytest.mark.skipif(
    not REUSE_PORT, reason="SO_REUSEPORT does not spread connections here"
)

REPO = Path(__file__).resolve().parents[2]

CLIENTS = 16
"""Connections one client's pool opens at once (bench.load's 16 keep-alive clients)."""


def _until(what: str, found: Callable[[], object], log: Path, attempts: int = 600) -> None:
    """Poll every 0.2 s until ``found()`` is true (bounded)."""
    for _ in range(attempts):
        if found():
            return
        time.sleep(0.2)
    raise AssertionError(f"never {what}:\n{log.read_text()[-4000:]}")


def _connections(pid: int) -> list[Any]:
    """The TCP connections of process ``pid``; none once it has exited (a worker retired while
    the children were listed: a restart's SIGHUP failed the test so under load)."""
    try:
        return list(psutil.Process(pid).net_connections("tcp"))
    except psutil.NoSuchProcess:  # ZombieProcess included
        return []


def _listening(pid: int, port: int) -> set[str]:
    """The listening sockets on ``port`` that process ``pid`` holds, as ``socket:[INODE]``."""
    found: set[str] = set()
    for conn in _connections(pid):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port:
            try:
                found.add(os.readlink(f"/proc/{pid}/fd/{conn.fd}"))
            except FileNotFoundError:  # closed meanwhile
                continue
    return found


def _established(pid: int, port: int) -> int:
    """How many connections to ``port`` process ``pid`` holds (the server's ends)."""
    return sum(
        conn.status == psutil.CONN_ESTABLISHED and conn.laddr.port == port
        for conn in _connections(pid)
    )


def _config(port: int, workers: int) -> uvicorn.Config:
    # log_config None: uvicorn's logging config is not applied to the test process
    return uvicorn.Config(FACTORY, host="127.0.0.1", port=port, workers=workers, log_config=None)


def test_one_socket_per_worker_is_bound_to_the_port_the_first_got(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Port 0: three sockets bound with SO_REUSEPORT to the port the first got, uvicorn's line
    once naming it. All three listen as soon as they are bound, before any worker has them: the
    kernel spreads 48 connections over the three (one of them would get none with odds about 3
    in 10^8)."""
    with caplog.at_level(logging.INFO, "uvicorn.error"):
        sockets = listening_sockets(_config(0, 3))
    try:
        ports = {sock.getsockname() for sock in sockets}
        assert len(sockets) == 3 and len(ports) == 1, ports
        [(host, port)] = ports
        assert host == "127.0.0.1" and port > 0
        for sock in sockets:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)  # listening
        lines = [r.getMessage() for r in caplog.records if "Uvicorn running on" in r.getMessage()]
        assert lines == [f"Uvicorn running on http://127.0.0.1:{port} (Press CTRL+C to quit)"]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(48)]
        try:
            accepted = []
            for sock in sockets:
                sock.setblocking(False)
                count = 0
                with contextlib.suppress(BlockingIOError):
                    while True:
                        sock.accept()[0].close()
                        count += 1
                accepted.append(count)
            assert sum(accepted) == 48 and all(accepted), accepted
        finally:
            for client in clients:
                client.close()
    finally:
        for sock in sockets:
            sock.close()


def test_the_shared_socket_listens_as_soon_as_it_is_bound(tmp_path: Path) -> None:
    """Where the workers share one socket (here a Unix socket, which SO_REUSEPORT does not
    spread), it listens before any worker has it: a client connects at once."""
    config = uvicorn.Config(FACTORY, uds=str(tmp_path / "serve.sock"), workers=2, log_config=None)
    [shared] = listening_sockets(config)
    try:
        assert shared.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(tmp_path / "serve.sock"))  # refused by a socket not listening
    finally:
        shared.close()


def test_a_port_taken_stops_the_start_as_uvicorn_does(caplog: pytest.LogCaptureFixture) -> None:
    """A port another socket listens on (without SO_REUSEPORT): the error is logged and the start
    fails with uvicorn's startup-failure status, 3."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(SystemExit) as exited:
            listening_sockets(_config(taken.getsockname()[1], 2))
    assert exited.value.code == 3
    assert any("Address already in use" in r.getMessage() for r in caplog.records), caplog.text


def test_the_supervisor_takes_one_socket_or_one_per_worker() -> None:
    """Two sockets for three workers: neither one the workers share nor one per worker."""
    with (
        socket.socket() as one,
        socket.socket() as two,
        pytest.raises(ValueError, match="2 sockets for 3 workers"),
    ):
        Supervisor(_config(0, 3), [one, two], stop_seconds=1)


def _sockets(workers: dict[int, set[str]]) -> list[str]:
    """The workers' listening sockets, sorted (one a worker: a socket twice if two share it)."""
    return sorted(sock for socks in workers.values() for sock in socks)


class Served:
    """A running ``guanxi serve --dev --workers 2`` of an empty store."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc, self.port, self.log = proc, port, log

    def workers(self) -> dict[int, set[str]]:
        """Each worker process (a child holding a listening socket on the port) and its sockets."""
        found = {}
        for child in psutil.Process(self.proc.pid).children():
            with_sockets = _listening(child.pid, self.port)
            if with_sockets:
                found[child.pid] = with_sockets
        return found

    def ready(self, count: int) -> dict[int, set[str]]:
        """Wait until ``count`` workers listen and have started their app; return them."""
        text = self.log.read_text

        def up() -> bool:
            workers = self.workers()
            return len(workers) == count and all(
                re.search(rf"\[{pid}\] INFO: +Application startup complete", text())
                for pid in workers
            )

        _until(f"{count} workers ready", up, self.log)
        return self.workers()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    log = tmp_path / "serve.log"
    # this checkout's code, also where the installed package is another one's (a git worktree)
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env = child_env(GUANXI_HOME=str(tmp_path), PYTHONPATH=path)
    proc, port = guanxi_serve(env, log, workers=2, args=("--dev",))
    try:
        yield Served(proc, port, log)
    finally:
        stop(proc)


@pytest.mark.slow
def test_a_burst_of_keep_alive_connections_spreads_over_both_workers(served: Served) -> None:
    """16 connections opened at once, each answered once and kept alive: both workers hold some.
    With one shared listening socket one worker took all 16 (most runs)."""
    workers = served.ready(2)
    connections = [http.client.HTTPConnection("127.0.0.1", served.port) for _ in range(CLIENTS)]
    try:
        for conn in connections:  # all queued before a worker's event loop wakes
            conn.connect()
        for conn in connections:
            conn.request("GET", "/healthz")
        for conn in connections:
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            assert not response.will_close  # kept alive: it stays with its worker
        held = {pid: _established(pid, served.port) for pid in workers}
        assert sum(held.values()) == CLIENTS, held
        assert all(held.values()), f"one worker holds every connection: {held}"
    finally:
        for conn in connections:
            conn.close()


@pytest.mark.slow
def test_each_worker_keeps_its_own_socket_when_replaced_restarted_added_and_removed(
    served: Served,
) -> None:
    """The supervisor binds one listening socket per worker; worker i always gets socket i: the
    replacement of a killed worker, the new workers of a restart (SIGHUP), and a worker added
    (SIGTTIN, with a socket bound for it); removing one (SIGTTOU) closes its socket."""
    before = served.ready(2)
    parent = _listening(served.proc.pid, served.port)
    assert len(parent) == 2, parent
    assert all(len(s) == 1 for s in before.values()), before
    assert set(_sockets(before)) == parent  # a socket each, both the parent's
    killed = min(before)
    os.kill(killed, signal.SIGKILL)
    _until("the killed worker replaced", lambda: killed not in served.workers(), served.log)
    after = served.ready(2)
    assert _sockets(after) == _sockets(before), (before, after)  # same sockets
    os.kill(served.proc.pid, signal.SIGHUP)  # uvicorn's restart: every worker replaced
    _until("every worker restarted", lambda: not set(served.workers()) & set(after), served.log)
    restarted = served.ready(2)
    assert _sockets(restarted) == _sockets(before), (before, restarted)
    os.kill(served.proc.pid, signal.SIGTTIN)  # one worker more, with a socket of its own
    added = served.ready(3)
    assert len(set(_sockets(added))) == 3, added
    assert _listening(served.proc.pid, served.port) == set(_sockets(added))
    os.kill(served.proc.pid, signal.SIGTTOU)  # the last one stops; its socket is closed
    removed = served.ready(2)
    assert _sockets(removed) == _sockets(before), (before, removed)
    _until(
        "the removed worker's socket closed",
        lambda: _listening(served.proc.pid, served.port) == parent,
        served.log,
    )


def _listening_anywhere(port: int) -> set[str]:
    """Every listening socket on ``port`` held by any process, as ``socket:[INODE]``."""
    found = set()
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                found.add(os.readlink(f"/proc/{conn.pid}/fd/{conn.fd}"))
    return found


@pytest.mark.slow
def test_a_second_server_on_the_port_of_one_still_starting_is_refused(tmp_path: Path) -> None:
    """qa47's finding 1: a second ``guanxi serve`` started on the port of one whose workers were
    still starting (after its "Uvicorn running on" line) passed the port check, because the
    first's sockets were bound but not listening until its workers listened; its SO_REUSEPORT
    sockets joined the first's, and clients were split between two servers (different stores
    and keys). The first's sockets now listen once bound: the second exits 2 with the clear
    error, and only the first's two sockets listen on the port.

    The first's workers start 120 s late (a sitecustomize that sleeps in each of them), so the
    second starts while none of them is up."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SLOW_START)
    first_home, second_home = tmp_path / "first", tmp_path / "second"
    first_home.mkdir()
    second_home.mkdir()
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    started: list[subprocess.Popen[bytes]] = []

    def serve(port: int, log: Path, **env: str) -> subprocess.Popen[bytes]:
        command = [*GUANXI, "serve", "--dev", "--port", str(port), "--workers", "2"]
        with log.open("ab") as out:
            started.append(
                subprocess.Popen(
                    command,
                    cwd=tmp_path,
                    env=child_env(**env),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        return started[-1]

    try:
        with reserved_port() as port:
            first = serve(
                port,
                first_log,
                GUANXI_HOME=str(first_home),
                SLOW_START_SECONDS="120",
                PYTHONPATH=os.pathsep.join((str(hook), str(REPO))),
            )
            assert listening_port(first, first_log) == port
        second = serve(port, second_log, GUANXI_HOME=str(second_home), PYTHONPATH=str(REPO))
        try:
            code = second.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the second server runs:\n{second_log.read_text()}") from None
        text = " ".join(second_log.read_text().split())
        assert code == 2, text
        assert f"cannot start: cannot listen on 127.0.0.1:{port} (Address already in use)" in text
        assert "Uvicorn running on" not in text, text
        assert first.poll() is None, first_log.read_text()
        mine = _listening(first.pid, port)
        assert len(mine) == 2, first_log.read_text()
        assert "Started server process" not in first_log.read_text()  # no worker up yet
        assert _listening_anywhere(port) == mine  # the first's two sockets, no other
    finally:
        for proc in started:
            stop(proc, signal.SIGKILL)


@pytest.mark.slow
def test_a_hung_worker_replaced_or_removed_is_killed_after_the_stop_bound(tmp_path: Path) -> None:
    """qa47's finding 2: a restart (SIGHUP) and a worker removed (SIGTTOU) waited for the old
    worker without a limit; a hung one (SIGSTOP stands for one) blocked the supervisor, which
    then read no signal, SIGTERM included. With a 1 s graceful timeout the wait is 1 + 5 s, as
    the stop's: each hung worker is then killed, and the log names it and why; SIGTERM stops the
    server."""
    log = tmp_path / "serve.log"
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env = child_env(GUANXI_HOME=str(tmp_path), PYTHONPATH=path)
    args = ("--dev", "--timeout-graceful-shutdown", "1")
    proc, port = guanxi_serve(env, log, workers=2, args=args)
    served = Served(proc, port, log)
    killed = r"Killed child process \[{}\]: it had not stopped 6 s after it was asked to"
    hung: list[int] = []
    try:
        before = served.ready(2)
        os.kill(proc.pid, signal.SIGHUP)
        _until("the restart begun", lambda: "Received SIGHUP" in log.read_text(), log, 3000)
        for pid in before:  # each old worker hangs before it is asked to stop
            os.kill(pid, signal.SIGSTOP)
            hung.append(pid)
        for pid in before:
            _until(
                f"{pid} killed", lambda pid=pid: re.search(killed.format(pid), log.read_text()), log
            )
        restarted = served.ready(2)
        assert not set(restarted) & set(before), (before, restarted)
        os.kill(proc.pid, signal.SIGTTIN)
        added = set(served.ready(3)) - set(restarted)
        [last] = added
        os.kill(proc.pid, signal.SIGTTOU)  # the last one added is removed
        os.kill(last, signal.SIGSTOP)
        hung.append(last)
        _until(f"{last} killed", lambda: re.search(killed.format(last), log.read_text()), log)
        assert set(served.ready(2)) == set(restarted)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()
    finally:
        for pid in hung:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        stop(proc, signal.SIGKILL)
