"""Stopping ``guanxi serve`` with a stuck worker: bounded, and said in the log.

Real servers serve a test-only app (:mod:`tests.serving.stuck_app`) under guanxi's supervisor
(``--workers 2``) or alone (``--workers 1``). A request to ``/block`` blocks its worker's event
loop, so that worker cannot act on SIGTERM (its health-check thread still answers); a request to
``/wait`` holds a worker open. uvicorn's own supervisor waited for both without end after SIGTERM
(nothing was cancelled, nothing killed), and read no second signal while it waited; one worker
alone waited for its blocked loop without end, and for its request after a second SIGTERM. A
request cancelled at the graceful timeout was logged with uvicorn's ``CancelledError`` traceback
and answered uvicorn's 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
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
from starlette.responses import PlainTextResponse
from starlette.routing import Route, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.metrics import Metrics
from serving.middleware import RETRY_AFTER_SECONDS, RequestMetricsMiddleware, stopping_detail
from serving.supervisor import GRACEFUL_CANCEL, GracefulCancelNote
from tests.processes import GUANXI, child_env, listening_port, stop
from tests.serving.stuck_app import FACTORY, MARKS_ENV

REPO = Path(__file__).resolve().parents[2]


class Answer:
    """The answer to a request sent by :meth:`Stuck.ask`, once it came (or the connection ended)."""

    def __init__(self) -> None:
        self.response: httpx.Response | None = None
        self.done = threading.Event()

    def get(self) -> httpx.Response:
        """The response (a generous bound on the wait: only stops a hang)."""
        assert self.done.wait(300), "the request never ended"
        assert self.response is not None, "the connection ended without an answer"
        return self.response


class Stuck:
    """A running ``guanxi serve`` of the stuck app (``--workers 2``: one worker blocked, one
    waiting)."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path, marks: Path, url: str) -> None:
        self.proc, self.log, self.marks, self.url = proc, log, marks, url
        self.waiting_answer: Answer | None = None  # the answer to /wait sent by stuck()

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

    def ask(self, path: str, client: httpx.Client | None = None) -> Answer:
        """Send a request that does not answer until stopped (in a thread), on a connection of its
        own or ``client``'s; return its answer's holder (empty when the connection ended without
        one)."""
        answer = Answer()

        def send() -> None:
            try:
                with contextlib.suppress(httpx.HTTPError):
                    if client is None:
                        answer.response = httpx.get(self.url + path, timeout=None)
                    else:
                        answer.response = client.get(path)
            finally:
                answer.done.set()

        threading.Thread(target=send, daemon=True).start()
        return answer

    def pinned(self) -> list[httpx.Client]:
        """A client whose kept-alive connection one worker holds, for each of the two workers.

        Each worker listens on a socket of its own (SO_REUSEPORT) and the kernel picks the socket
        of each new connection: one to a blocked worker waits in its socket's queue, so a request
        is sent to the worker it is meant for on a connection that worker already holds.
        """
        found: dict[int, httpx.Client] = {}
        for _ in range(300):
            client = httpx.Client(
                base_url=self.url, timeout=None, limits=httpx.Limits(keepalive_expiry=600)
            )
            pid = int(client.get("/pid").text)
            if pid in found:
                client.close()
            else:
                found[pid] = client
            if len(found) == 2:
                return list(found.values())
        raise AssertionError(f"300 connections all went to one worker: {found}")

    def stuck(self) -> tuple[int, int]:
        """Block one worker and hold a request open in the other; return their pids."""
        self.wait_for("two workers started", lambda: len(self.pids("started")) == 2)
        first, second = self.pinned()
        self.ask("/block", first)
        self.wait_for("a worker blocked", lambda: self.pids("blocked"))
        self.waiting_answer = self.ask("/wait", second)
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
def serve_stuck(tmp_path: Path) -> Iterator[Callable[..., Stuck]]:
    started: list[Stuck] = []

    def start(graceful_seconds: int, workers: int = 2) -> Stuck:
        marks = tmp_path / "marks"
        marks.mkdir()
        home = tmp_path / "home"
        home.mkdir()
        env = child_env()
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        env.update(
            GUANXI_HOME=str(home), PYTHONPATH=path, TMPDIR=str(tmp_path), **{MARKS_ENV: str(marks)}
        )
        log = tmp_path / "serve.log"
        args = ("--dev", "--timeout-graceful-shutdown", str(graceful_seconds))
        # guanxi serve, serving the stuck app instead of guanxi's (the workers import it by name)
        code = f"import pipelines.serve; pipelines.serve.APP_FACTORY = {FACTORY!r}; {GUANXI[-1]}"
        command = [
            sys.executable, "-c", code, "serve", "--port", "0", "--workers", str(workers), *args
        ]  # fmt: skip
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
    serve_stuck: Callable[..., Stuck], tmp_path: Path
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
    assert server.waiting_answer is not None and server.waiting_answer.get().status_code == 503
    assert re.search(
        rf"Killed child process \[{blocked}\]: it had not stopped 6 s after it was asked to",
        text,
    ), text
    assert len(re.findall(r"Killed child process", text)) == 1, text
    assert "timeout graceful shutdown exceeded" in text, text  # the waiting worker's cancel
    # said in one line naming the request, not with uvicorn's CancelledError traceback
    assert re.search(r'WARNING: +Cancelled request "GET /wait" request_id=[0-9a-f]{32}: ', text)
    assert "Traceback" not in text, text
    assert server.pids("stopped") == {waiting}  # it shut its app down; the killed one could not
    assert server.gone()
    assert not list(tmp_path.glob("guanxi-serve-*"))


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_a_second_stop_signal_kills_at_once(
    serve_stuck: Callable[..., Stuck], sig: signal.Signals
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


@pytest.mark.slow
def test_one_worker_logs_a_request_cancelled_at_the_graceful_timeout_in_one_line(
    serve_stuck: Callable[..., Stuck],
) -> None:
    """``--workers 1``: a request still running 1 s after SIGTERM is cancelled, answered 503 with
    ``Retry-After`` and the API's error body naming its request id (uvicorn answered 500), logged
    as 503 by the access log and as one warning naming it (route template and request id) and why,
    with no traceback; a real error in a handler still answers 500 and logs its traceback. The app
    shuts down and the process ends by the signal, as uvicorn's."""
    server = serve_stuck(1, workers=1)
    server.wait_for("the worker started", lambda: server.pids("started"))
    assert httpx.get(server.url + "/fail", timeout=60).status_code == 500
    answer = server.ask("/wait")
    server.wait_for("a request waiting", lambda: server.pids("waiting"))
    os.kill(server.proc.pid, signal.SIGTERM)
    assert server.proc.wait(timeout=300) == -signal.SIGTERM  # a generous bound: only stops a hang
    text = server.log.read_text()
    # its client is told to retry (elsewhere), with the API's error body, not uvicorn's 500
    response = answer.get()
    request_id = response.headers["x-request-id"]
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    assert response.json() == {"detail": stopping_detail(request_id)}
    [access] = re.findall(r'"GET /wait" 503 [\d.]+ ms request_id=([0-9a-f]{32})', text)
    assert access == request_id
    cancelled = (
        rf'WARNING: +Cancelled request "GET /wait" request_id={access}: still running when the '
        r"graceful shutdown timeout \(1 s, --timeout-graceful-shutdown\) ran out after the stop "
        r"signal\n"
    )
    assert len(re.findall(cancelled, text)) == 1, text
    assert "CancelledError" not in text, text
    # the handler's bug keeps its traceback: the only one in the log
    assert text.count("Traceback (most recent call last)") == 1, text
    assert "RuntimeError: a bug in a handler" in text, text
    assert server.pids("stopped") == server.pids("started")  # the app shut down
    assert server.gone()


@pytest.mark.slow
def test_one_blocked_worker_exits_after_the_graceful_timeout(
    serve_stuck: Callable[..., Stuck],
) -> None:
    """``--workers 1`` has no supervisor: with its event loop blocked, SIGTERM did nothing until
    the call returned (ten minutes here). The watchdog ends the process 6 s after the signal
    (the graceful timeout, 1 s, and 5 s) with status 143, and the log says why."""
    server = serve_stuck(1, workers=1)
    server.wait_for("the worker started", lambda: server.pids("started"))
    server.ask("/block")
    server.wait_for("the worker blocked", lambda: server.pids("blocked"))
    os.kill(server.proc.pid, signal.SIGTERM)
    assert server.proc.wait(timeout=300) == 128 + signal.SIGTERM  # far under the ten minutes
    text = server.log.read_text()
    assert re.search(
        rf"ERROR: +Exiting server process \[{server.proc.pid}\] with status 143: it had not "
        r"stopped 6 s after SIGTERM, and its event loop did not answer within 2 s \(blocked by a "
        r"long call on it, or hung\); its shutdown did not finish\n",
        text,
    ), text
    assert not server.pids("stopped")  # its app could not shut down
    assert server.gone()


@pytest.mark.slow
def test_one_worker_whose_shutdown_is_slow_exits_at_the_same_bound(
    serve_stuck: Callable[..., Stuck],
) -> None:
    """``--workers 1`` whose app's shutdown awaits ten minutes, its event loop free: the same
    bound ends it (one bound, as gunicorn's, Kubernetes' and systemd's), and the line says that
    its loop still ran, not that it was blocked."""
    server = serve_stuck(1, workers=1)
    server.wait_for("the worker started", lambda: server.pids("started"))
    assert httpx.get(server.url + "/slow-stop", timeout=60).status_code == 200
    os.kill(server.proc.pid, signal.SIGTERM)
    assert server.proc.wait(timeout=300) == 128 + signal.SIGTERM  # far under the ten minutes
    text = server.log.read_text()
    assert re.search(
        rf"ERROR: +Exiting server process \[{server.proc.pid}\] with status 143: it had not "
        r"stopped 6 s after SIGTERM, though its event loop still ran \(its shutdown slow, or "
        r"awaiting a call that does not return\); its shutdown did not finish\n",
        text,
    ), text
    assert server.pids("stopping") == server.pids("started")  # its shutdown had begun
    assert not server.pids("stopped")
    assert server.gone()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_one_worker_stops_at_once_on_a_second_stop_signal(
    serve_stuck: Callable[..., Stuck], sig: signal.Signals
) -> None:
    """``--workers 1`` with a 10-minute graceful timeout and a request open: after the first
    SIGTERM (or Ctrl-C) uvicorn waits for the request; a second one ends the process at once with
    status 128 + the signal (uvicorn's waited on after a second SIGTERM), logged in one line. The
    app does not shut down, as when the supervisor kills a worker."""
    server = serve_stuck(600, workers=1)
    server.wait_for("the worker started", lambda: server.pids("started"))
    server.ask("/wait")
    server.wait_for("a request waiting", lambda: server.pids("waiting"))
    os.kill(server.proc.pid, sig)
    server.wait_for(
        "the server waiting for its request",
        lambda: "Waiting for connections to close" in server.log.read_text(),
    )
    os.kill(server.proc.pid, sig)
    assert server.proc.wait(timeout=300) == 128 + sig  # a generous bound, far under the 605 s
    text = server.log.read_text()
    line = (
        rf"ERROR: +Exiting server process \[{server.proc.pid}\] with status {128 + sig}: a second "
        rf"stop signal \({sig.name}\) asked to stop at once; its app did not shut down\n"
    )
    assert len(re.findall(line, text)) == 1, text
    assert "Traceback" not in text, text
    assert not server.pids("stopped")
    assert server.gone()


def _serve_once(app: ASGIApp) -> tuple[list[Message], Metrics, BaseException | None]:
    """Run one ``GET /wait`` through the request middleware around ``app``; return what it sent,
    the metrics and what it raised."""
    metrics = Metrics()
    router = Router([Route("/wait", PlainTextResponse("never"))])
    middleware = RequestMetricsMiddleware(app, metrics=metrics, router=router)
    scope = {"type": "http", "method": "GET", "path": "/wait", "headers": [], "client": ("c", 1)}
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    raised = None
    try:
        asyncio.run(middleware(scope, receive, send))
    except BaseException as exc:  # the test reads what the middleware raised
        raised = exc
    return sent, metrics, raised


def _count(metrics: Metrics, status: int) -> float | None:
    return metrics.registry.get_sample_value(
        "guanxi_requests_total", {"route": "/wait", "method": "GET", "status": str(status)}
    )


def test_a_request_cancelled_at_the_graceful_timeout_is_answered_503_and_stays_cancelled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The middleware answers uvicorn's graceful-timeout cancel 503 (counted in the metrics and
    logged as 503) and raises the cancel on; any other cancel, an error, and a cancel after the
    answer started pass unchanged, answered by nobody here."""

    async def cancelled(scope: Scope, receive: Receive, send: Send) -> None:
        raise asyncio.CancelledError(GRACEFUL_CANCEL)

    caplog.set_level(logging.INFO, logger="serving.access")
    sent, metrics, raised = _serve_once(cancelled)
    assert isinstance(raised, asyncio.CancelledError) and raised.args == (GRACEFUL_CANCEL,)
    start, body = sent
    headers = dict(start["headers"])
    request_id = headers[b"x-request-id"].decode()
    assert start["status"] == 503
    assert headers[b"retry-after"] == str(RETRY_AFTER_SECONDS).encode()
    assert headers[b"connection"] == b"close"
    assert json.loads(body["body"]) == {"detail": stopping_detail(request_id)}
    assert _count(metrics, 503) == 1 and _count(metrics, 500) is None
    assert re.search(rf'"GET /wait" 503 [\d.]+ ms request_id={request_id}$', caplog.text, re.M)

    async def started(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise asyncio.CancelledError(GRACEFUL_CANCEL)

    for exc in (asyncio.CancelledError(), asyncio.CancelledError("other"), RuntimeError("bug")):

        async def failing(scope: Scope, receive: Receive, send: Send, exc: BaseException = exc):
            raise exc

        sent, metrics, raised = _serve_once(failing)
        assert raised is exc and sent == []
        assert _count(metrics, 503) is None
    sent, metrics, raised = _serve_once(started)
    assert isinstance(raised, asyncio.CancelledError)
    assert [m["status"] for m in sent] == [200] and _count(metrics, 503) is None


def _record(exc: BaseException) -> logging.LogRecord:
    """uvicorn's record of a request that raised ``exc`` (its protocols' ``run_asgi``)."""
    return logging.LogRecord(
        "uvicorn.error", logging.ERROR, __file__, 1, "Exception in ASGI application\n", (),
        (type(exc), exc, None),
    )  # fmt: skip


def test_only_the_graceful_timeout_cancel_loses_its_traceback() -> None:
    """The note rewrites a ``CancelledError`` with uvicorn's graceful-timeout message, named by
    the middleware's note or not; any other cancel, and any error, passes unchanged."""
    note = GracefulCancelNote(20)
    named = asyncio.CancelledError(GRACEFUL_CANCEL)
    named.add_note('request "GET /v1/models" request_id=abc')
    record = _record(named)
    assert note.filter(record)
    assert record.exc_info is None and record.levelname == "WARNING"
    assert record.getMessage() == (
        'Cancelled request "GET /v1/models" request_id=abc: still running when the graceful '
        "shutdown timeout (20 s, --timeout-graceful-shutdown) ran out after the stop signal"
    )
    unnamed = _record(asyncio.CancelledError(GRACEFUL_CANCEL))
    assert note.filter(unnamed) and unnamed.getMessage().startswith("Cancelled a request: ")
    for exc in (asyncio.CancelledError(), asyncio.CancelledError("other"), RuntimeError("bug")):
        record = _record(exc)
        assert note.filter(record)
        assert record.exc_info is not None and record.levelname == "ERROR"
        assert record.getMessage() == "Exception in ASGI application\n"
