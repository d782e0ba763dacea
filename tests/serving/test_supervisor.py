"""Stopping ``guanxi serve --workers 2`` with a stuck worker: bounded, and said in the log.

Real servers serve a test-only app (:mod:`tests.serving.stuck_app`) under guanxi's supervisor. A
request to ``/block`` blocks its worker's event loop, so that worker cannot act on SIGTERM (its
health-check thread still answers); a request to ``/wait`` holds the other worker open. uvicorn's
own supervisor waited for both without end after SIGTERM (nothing was cancelled, nothing killed),
and read no second signal while it waited.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import GUANXI, listening_port, stop
from tests.serving.stuck_app import FACTORY, MARKS_ENV

REPO = Path(__file__).resolve().parents[2]


class Stuck:
    """A running ``guanxi serve --workers 2`` of the stuck app, one worker blocked, one waiting."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path, marks: Path, url: str) -> None:
        self.proc, self.log, self.marks, self.url = proc, log, marks, url

    def pids(self, mark: str) -> set[int]:
        """Workers that made ``mark`` (started, stopped, blocked, waiting)."""
        return {int(p.name.rsplit("-", 1)[1]) for p in self.marks.glob(f"{mark}-*")}

    def wait_for(self, what: str, found: Callable[[], object], attempts: int = 1500) -> None:
        """Poll every 0.2 s until ``found()`` is true (bounded; fails if the server exits)."""
        for _ in range(attempts):
            if found():
                return
            assert self.proc.poll() is None, self.log.read_text()
            time.sleep(0.2)
        raise AssertionError(f"never {what}:\n{self.log.read_text()[-4000:]}")

    def ask(self, path: str) -> None:
        """Send a request that never answers (in a thread; its error ends it when stopped)."""

        def send() -> None:
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(self.url + path, timeout=None)

        threading.Thread(target=send, daemon=True).start()

    def stuck(self) -> tuple[int, int]:
        """Block one worker and hold a request open in the other; return their pids."""
        self.wait_for("two workers started", lambda: len(self.pids("started")) == 2)
        self.ask("/block")
        self.wait_for("a worker blocked", lambda: self.pids("blocked"))
        # the blocked worker's loop accepts nothing more: the other one takes this request
        self.ask("/wait")
        self.wait_for("a worker waiting", lambda: self.pids("waiting"))
        [blocked], [waiting] = self.pids("blocked"), self.pids("waiting")
        assert blocked != waiting and {blocked, waiting} == self.pids("started")
        return blocked, waiting

    def gone(self) -> bool:
        """Whether no process of the server's process group is left (bounded wait)."""
        for _ in range(300):
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.1)
        return False


@pytest.fixture
def serve_stuck(tmp_path: Path) -> Iterator[Callable[[int], Stuck]]:
    started: list[Stuck] = []

    def start(graceful_seconds: int) -> Stuck:
        marks = tmp_path / "marks"
        marks.mkdir()
        home = tmp_path / "home"
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GUANXI_", "MLFLOW_"))}
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        env.update(
            GUANXI_HOME=str(home), PYTHONPATH=path, TMPDIR=str(tmp_path), **{MARKS_ENV: str(marks)}
        )
        log = tmp_path / "serve.log"
        args = ("--dev", "--timeout-graceful-shutdown", str(graceful_seconds))
        # guanxi serve, serving the stuck app instead of guanxi's (the workers import it by name)
        code = f"import pipelines.serve; pipelines.serve.APP_FACTORY = {FACTORY!r}; {GUANXI[-1]}"
        command = [sys.executable, "-c", code, "serve", "--port", "0", "--workers", "2", *args]
        with log.open("ab") as out:
            proc = subprocess.Popen(
                command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        try:
            port = listening_port(proc, log)
        except BaseException:
            stop(proc, signal.SIGKILL)
            raise
        started.append(Stuck(proc, log, marks, f"http://127.0.0.1:{port}"))
        return started[-1]

    yield start
    for server in started:
        stop(server.proc, signal.SIGKILL)


@pytest.mark.slow
def test_sigterm_stops_a_stuck_worker_within_the_graceful_timeout(
    serve_stuck: Callable[[int], Stuck], tmp_path: Path
) -> None:
    """SIGTERM to the supervisor alone (as Kubernetes sends it): the waiting worker cancels its
    request after the graceful timeout (1 s) and shuts its app down; the blocked one is killed
    5 s later, and the log names it and why. guanxi serve exits 0, as uvicorn's; no process of
    the tree is left, and the run's private directory is removed."""
    server = serve_stuck(1)
    blocked, waiting = server.stuck()
    os.kill(server.proc.pid, signal.SIGTERM)
    assert server.proc.wait(timeout=300) == 0  # a generous bound: only stops a hang
    text = server.log.read_text()
    assert re.search(
        rf"Killed child process \[{blocked}\]: it had not stopped 6 s after it was asked to",
        text,
    ), text
    assert len(re.findall(r"Killed child process", text)) == 1, text
    assert "timeout graceful shutdown exceeded" in text, text  # the waiting worker's cancel
    assert server.pids("stopped") == {waiting}  # it shut its app down; the killed one could not
    assert server.gone()
    assert not list(tmp_path.glob("guanxi-serve-*"))


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_a_second_stop_signal_kills_at_once(
    serve_stuck: Callable[[int], Stuck], sig: signal.Signals
) -> None:
    """With a 10-minute graceful timeout, a second SIGTERM (or Ctrl-C: SIGINT to the whole
    process group, as a terminal sends it) while the supervisor waits kills the workers left,
    and the log says it was the second signal."""
    server = serve_stuck(600)
    blocked, _ = server.stuck()

    def send() -> None:
        if sig == signal.SIGINT:
            os.killpg(server.proc.pid, sig)
        else:
            os.kill(server.proc.pid, sig)

    send()
    server.wait_for(
        "the supervisor waiting", lambda: "Waiting up to 605 s" in server.log.read_text()
    )
    send()
    assert server.proc.wait(timeout=300) == 0  # a generous bound, far under the 605 s wait
    text = server.log.read_text()
    assert re.search(
        rf"Killed child process \[{blocked}\]: a second stop signal asked to stop at once", text
    ), text
    assert server.gone()
