"""Servers the tests and benchmarks start never race another process for their port.

A port found free and let go before the server starts can be taken in between: uvicorn servers
bind port 0 and name the port they got (``tests.processes.listening_port``); a server that must
be told its port beforehand gets one held for it (``tests.processes.reserved_port``).
"""

from __future__ import annotations

import errno
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.processes import child_env, guanxi_serve, listening_port, reserved_port, stop
from tests.serving.conftest import AUDIT_KEY, KEYS, SESSION_KEY, STORE_KEY


def test_a_reserved_port_is_refused_to_others_and_free_for_its_server() -> None:
    with reserved_port() as port:
        with pytest.raises(ConnectionRefusedError):  # held, nobody listens yet
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        with socket.socket() as other, pytest.raises(OSError) as taken:
            other.bind(("127.0.0.1", port))
        assert taken.value.errno == errno.EADDRINUSE
        # a server binding as uvicorn and PostgreSQL do (SO_REUSEADDR) listens on it
        with socket.socket() as server:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", port))
            server.listen()
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                server.accept()[0].close()


def _script(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


def test_listening_port_reads_this_runs_line(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("INFO:     Uvicorn running on http://127.0.0.1:1111 (Press CTRL+C to quit)\n")
    start = log.stat().st_size
    line = "INFO:     Uvicorn running on http://127.0.0.1:2222 (Press CTRL+C to quit)"
    code = f"import time; time.sleep(0.5); open({str(log)!r}, 'a').write({line!r}); time.sleep(30)"
    proc = _script(code)
    try:
        assert listening_port(proc, log, start) == 2222
    finally:
        proc.kill()
        proc.wait()
    died = _script("print('cannot start')")
    with pytest.raises(AssertionError, match="process exited with 0"):
        listening_port(died, log, log.stat().st_size)


@pytest.mark.slow
def test_guanxi_serve_on_port_0_names_the_port_it_got(tmp_path: Path) -> None:
    env = child_env()
    env |= {
        "GUANXI_HOME": str(tmp_path / "home"),
        "GUANXI_API_KEYS": f"{KEYS['scorer']}:scorer",
        "GUANXI_AUDIT_KEY": AUDIT_KEY,
        "GUANXI_SESSION_KEY": SESSION_KEY,
        "GUANXI_STORE_KEY": STORE_KEY,
    }
    log = tmp_path / "serve.log"
    with reserved_port() as held:  # the system picks another port
        proc, port = guanxi_serve(env, log)
        try:
            assert port != held
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30).status_code == 200
        finally:
            stop(proc)
    text = " ".join(log.read_text().split())
    assert "guanxi serving on http://127.0.0.1 on a free port" in text
