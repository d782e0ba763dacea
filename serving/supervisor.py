"""What uvicorn's supervisor of several workers logs when it replaces one, with the reason.

With ``--workers`` above one, uvicorn's supervisor pings every worker twice a second and kills a
worker that does not answer within ``timeout_worker_healthcheck`` seconds, then starts another.
A worker still importing and loading its models on a loaded machine may not answer in time (the
thread that answers needs the CPU and the interpreter, and does not exist until the worker has
started); uvicorn then logs only "Child process [N] died", over and over, and nothing serves.
``guanxi serve`` passes ``GUANXI_WORKER_HEALTHCHECK_SECONDS`` (:class:`serving.settings.Settings`,
60 s by default) as that timeout and attaches :class:`WorkerReplacedNote` to uvicorn's
``uvicorn.error`` logger, so the line says why a worker may have been replaced and what to raise.

uvicorn's supervisor also stopped without a bound: :class:`Supervisor` is it with a stop that
kills, after ``guanxi serve --timeout-graceful-shutdown`` and :data:`SHUTDOWN_SECONDS` more, the
workers that have not stopped, and says which and why. One worker runs without a supervisor:
:class:`WatchedServer` is uvicorn's server with a watchdog that ends its process after the same
time when its event loop is blocked.

uvicorn logs a request it cancels at the graceful timeout as "Exception in ASGI application" with
the ``CancelledError``'s traceback (its protocols' ``run_asgi`` logs every ``BaseException``);
:class:`GracefulCancelNote` makes that one line naming the request and why.

uvicorn's workers shared one listening socket, and the first worker whose event loop woke
accepted every connection then waiting (asyncio accepts up to the backlog per wake-up): a client's
pool of keep-alive connections, opened in a burst, stayed with one worker while the others idled.
Where ``SO_REUSEPORT`` spreads connections (Linux: :data:`REUSE_PORT`), :func:`listening_sockets`
binds one listening socket per worker, all to the same address, and the kernel spreads new
connections over them; :class:`Supervisor` gives worker i socket i, also to the worker that
replaces it. The kernel does not know a worker is busy: one whose event loop a long call blocks
still gets its share of new connections, which wait in its socket's queue until it is free (with
one shared socket another worker took them); a hung one's, until the health check has replaced
it. The sockets listen as soon as they are bound, so a second server's port check fails while
the workers start. Elsewhere the workers share one socket, as uvicorn's do.

This module imports nothing heavy (uvicorn only): uvicorn's logging config (which names the
filters) is applied in every worker too, before the app is imported.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import re
import signal
import socket as sockets_
import sys
import threading
import time
from socket import socket
from types import FrameType

from uvicorn import Server
from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.supervisors.multiprocess import Multiprocess, Process

__all__ = [
    "GRACEFUL_CANCEL",
    "HEALTHCHECK_SETTING",
    "PROBE_SECONDS",
    "REUSE_PORT",
    "SHUTDOWN_SECONDS",
    "GracefulCancelNote",
    "Supervisor",
    "WatchedServer",
    "WorkerReplacedNote",
    "listening_sockets",
]

logger = logging.getLogger("uvicorn.error")
"""uvicorn's logger of the supervisor (its handler and :class:`WorkerReplacedNote` apply)."""

SHUTDOWN_SECONDS = 5
"""How long the supervisor waits for a worker past its graceful shutdown timeout (the time its
requests get to finish) before it kills it: the worker's own shutdown (its requests cancelled,
the app's shutdown run, the audit log sealed) gets this long."""

PROBE_SECONDS = 2.0
"""How long before its bound the one worker's watchdog asks the event loop to answer: the line
that ends the process says whether it did (the loop still ran: a slow or hung shutdown) or not (a
blocked loop). The bound is the same either way (docs/architecture.md, "One bound")."""

_STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
_POLL_SECONDS = 0.1

HEALTHCHECK_SETTING = "GUANXI_WORKER_HEALTHCHECK_SECONDS"
"""The environment variable of the supervisor's health-check timeout."""

_DIED = re.compile(r"Child process \[(\d+)\] died")

GRACEFUL_CANCEL = "Task cancelled, timeout graceful shutdown exceeded"
"""The message uvicorn (0.54, ``Server.shutdown``) cancels a request's task with when its graceful
shutdown timeout runs out: what tells that ``CancelledError`` from any other."""


class WorkerReplacedNote(logging.Filter):
    """Say, on uvicorn's "Child process [N] died" line, why and what the timeout was.

    uvicorn logs that line both for a worker that exited and for one it killed because it did not
    answer the health check in time; the record does not say which, so the line names both causes
    and the setting that lengthens the wait.

    Parameters
    ----------
    seconds : int
        The supervisor's health-check timeout (``timeout_worker_healthcheck``).
    """

    def __init__(self, seconds: int) -> None:
        super().__init__()
        self.seconds = seconds

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the "died" line (every record passes)."""
        match = _DIED.fullmatch(record.getMessage())
        if match:
            record.msg = (
                f"Child process [{match[1]}] was replaced: it exited, or it did not answer the "
                f"supervisor's health check within {self.seconds} s (a worker still starting on "
                f"a loaded machine; raise {HEALTHCHECK_SETTING} if this repeats)"
            )
            record.args = ()
        return True


class GracefulCancelNote(logging.Filter):
    """Log a request cancelled at the graceful shutdown timeout as one line, without a traceback.

    uvicorn logs each request it cancels when ``timeout_graceful_shutdown`` runs out as "Exception
    in ASGI application" with the ``CancelledError``'s traceback: an expected, bounded end of a
    stop reads as a crash. This filter rewrites exactly those records (the exception is a
    ``CancelledError`` with uvicorn's message :data:`GRACEFUL_CANCEL`) to a warning that names the
    request, from the notes the app's middleware adds to the exception
    (:class:`serving.middleware.RequestMetricsMiddleware`: method, route template, request id), and
    says why. Every other record passes unchanged, tracebacks included.

    Parameters
    ----------
    seconds : int
        The graceful shutdown timeout (``--timeout-graceful-shutdown``).
    """

    def __init__(self, seconds: int) -> None:
        super().__init__()
        self.seconds = seconds

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite a graceful-timeout cancel (every record passes)."""
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, asyncio.CancelledError) and exc.args == (GRACEFUL_CANCEL,):
            request = "; ".join(getattr(exc, "__notes__", ())) or "a request"
            record.msg = (
                f"Cancelled {request}: still running when the graceful shutdown timeout "
                f"({self.seconds} s, --timeout-graceful-shutdown) ran out after the stop signal"
            )
            record.args = ()
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


REUSE_PORT = sys.platform.startswith("linux") and hasattr(sockets_, "SO_REUSEPORT")
"""Whether each worker gets a listening socket of its own: where ``SO_REUSEPORT`` spreads the
connections over the sockets bound to one address (Linux). macOS and the BSDs have the option but
give every connection to one of the sockets (FreeBSD's spreading one is ``SO_REUSEPORT_LB``)."""


def _bind_reusing_port(family: int, host: str, port: int, backlog: int) -> socket:
    """Bind a socket to ``host:port`` as uvicorn binds its one, with ``SO_REUSEPORT``, and listen.

    Every socket so bound to one address listens (the kernel spreads the connections over them);
    ``SO_REUSEADDR`` and inheritable (the workers get it), as uvicorn's. It listens at once
    (``backlog``, as uvicorn's worker would): see :func:`listening_sockets`.
    """
    sock = socket(family=family)
    try:
        sock.setsockopt(sockets_.SOL_SOCKET, sockets_.SO_REUSEADDR, 1)
        sock.setsockopt(sockets_.SOL_SOCKET, sockets_.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def listening_sockets(config: Config) -> list[socket]:
    """Bind the listening sockets of ``config.workers`` workers: one each where the system can.

    With ``SO_REUSEPORT`` (Linux, :data:`REUSE_PORT`) and a host and port to listen on, one socket
    per worker, all bound to the same address (port 0: the port the system picked for the first);
    the kernel spreads new connections over the workers' sockets, so a client's pool of
    keep-alive connections opened at once lands on every worker, not on the one that woke first.
    Elsewhere, or for a Unix socket or file descriptor, uvicorn's one shared socket
    (``Config.bind_socket``). Either way uvicorn's "Uvicorn running on" line is logged once, with
    the port bound; a socket that cannot be bound is logged and exits with uvicorn's startup
    failure status (3), as uvicorn's own.

    Every socket listens as soon as it is bound (``config.backlog``, as each worker's
    ``create_server`` would), not only once a worker has started: Linux lets a socket bound with
    ``SO_REUSEADDR`` share a port with sockets bound but not listening, so a second ``guanxi
    serve`` on the same port, started in the seconds the workers take to start, passed
    :func:`pipelines.serve.port_in_use` and joined this server's ``SO_REUSEPORT`` group (same
    user), and the kernel split the clients between two servers. Connections that arrive before
    a worker accepts wait in its socket's queue.

    Parameters
    ----------
    config : uvicorn.Config
        The workers' config.

    Returns
    -------
    list of socket.socket
        One socket per worker (worker i listens on socket i), or the one the workers share.
    """
    if not REUSE_PORT or config.uds is not None or config.fd is not None:
        shared = config.bind_socket()
        try:
            shared.listen(config.backlog)
        except OSError as exc:  # as uvicorn's bind_socket
            shared.close()
            logger.error(exc)
            sys.exit(STARTUP_FAILURE)
        return [shared]
    family, where = sockets_.AF_INET, "%s://%s:%d"
    if config.host and ":" in config.host:  # IPv6, as uvicorn tells it
        family, where = sockets_.AF_INET6, "%s://[%s]:%d"
    bound: list[socket] = []
    try:
        bound.append(_bind_reusing_port(family, config.host, config.port, config.backlog))
        port = bound[0].getsockname()[1]
        bound += [
            _bind_reusing_port(family, config.host, port, config.backlog)
            for _ in range(config.workers - 1)
        ]
    except OSError as exc:  # as uvicorn's bind_socket
        for sock in bound:
            sock.close()
        logger.error(exc)
        sys.exit(STARTUP_FAILURE)
    protocol = "https" if config.is_ssl else "http"
    logger.info(f"Uvicorn running on {where} (Press CTRL+C to quit)", protocol, config.host, port)
    return bound


class Supervisor(Multiprocess):
    """uvicorn's supervisor of several workers, with a stop that is bounded and says what it did.

    uvicorn's own (0.54) stops unbounded: on SIGTERM or Ctrl-C it signals every worker and then
    waits for each without a limit, and no later signal is read while it waits. A worker whose
    event loop is blocked (a long call made on it) cannot act on the signal, and one that holds a
    connection waits for it without end unless ``timeout_graceful_shutdown`` is set; the signal
    itself is read only after the health check of an unresponsive worker has waited out its whole
    timeout (``GUANXI_WORKER_HEALTHCHECK_SECONDS``). An orchestrator then kills the whole tree
    (systemd after 90 s, Kubernetes after 30 s) and nothing says why.

    This supervisor reads a stop signal while it waits for a health check, then asks every worker
    to stop (SIGTERM) and waits at most ``stop_seconds`` for them; a worker still running then is
    killed (SIGKILL), logged with its pid and the reason. A second SIGTERM or Ctrl-C while it waits
    kills the workers left at once. It returns as uvicorn's does (``guanxi serve`` exits 0).

    Given one socket per worker (:func:`listening_sockets`), worker i listens on socket i only:
    the worker started in place of one that died or hung, and the new one of a restart (SIGHUP),
    gets its socket, where the connections the kernel sent to it since wait. SIGTTIN (one worker
    more) binds a socket for the new worker; SIGTTOU (one fewer) closes the last worker's socket
    as it stops it (connections waiting in that socket's queue, not yet accepted, are reset).
    A worker retired by a restart or SIGTTOU gets ``stop_seconds`` to stop too, then is killed
    and said, as at a stop.

    Parameters
    ----------
    config : uvicorn.Config
        The workers' config (``workers`` > 1).
    sockets : list of socket.socket
        The bound listening sockets: one the workers share, or one per worker (``workers`` of
        them, worker i's at i).
    stop_seconds : float
        The longest wait for the workers after the stop signal.

    Raises
    ------
    ValueError
        When there are several sockets but not one per worker.
    """

    def __init__(self, config: Config, sockets: list[socket], stop_seconds: float) -> None:
        if len(sockets) > 1 and len(sockets) != config.workers:
            raise ValueError(
                f"{len(sockets)} sockets for {config.workers} workers: give one socket the "
                "workers share, or one per worker"
            )
        super().__init__(config, sockets)
        self.stop_seconds = stop_seconds
        self._stops = 0  # stop signals handled (SIGINT, SIGTERM)
        self._own_sockets = len(sockets) > 1  # worker i listens on sockets[i]

    def _process(self, idx: int) -> Process:
        """Start a worker for place ``idx``, listening on its socket (or the shared one)."""
        process = Process(self.config, [self.sockets[idx]] if self._own_sockets else self.sockets)
        process.start()
        return process

    def init_processes(self) -> None:
        """Start the workers as uvicorn does, each on its socket."""
        self.processes = [self._process(idx) for idx in range(self.processes_num)]

    def restart_all(self) -> None:
        """Replace each worker as uvicorn does (SIGHUP), the new one on the old one's socket.

        The replacement is brought into service before the old worker is retired; one not ready
        within ``timeout_worker_healthcheck`` is killed and the restart aborted, as uvicorn's. The
        old worker gets ``stop_seconds`` to stop, then is killed and said (uvicorn's waited
        without a limit); a stop signal that came meanwhile ends the restart.
        """
        for idx, old_process in enumerate(self.processes):
            if self.should_exit.is_set() or self._stop_waiting():  # the main loop stops next
                return
            new_process = self._process(idx)
            timeout = self.config.timeout_worker_healthcheck
            if not new_process.wait_until_ready(timeout, self.should_exit):
                new_process.kill()
                new_process.join()
                if not self.should_exit.is_set():
                    logger.error(
                        f"New child process [{new_process.pid}] was not ready in time; "
                        f"keeping worker [{old_process.pid}] and aborting the restart."
                    )
                return
            old_process.terminate()
            self._wait_for_one(old_process)
            self.processes[idx] = new_process

    def handle_ttin(self) -> None:
        """Start one worker more (SIGTTIN), as uvicorn does, on a socket bound for it.

        When that socket cannot be bound, the line says why and no worker is added.
        """
        if self._own_sockets:
            first = self.sockets[0]
            host, port = first.getsockname()[:2]
            try:
                self.sockets.append(
                    _bind_reusing_port(first.family, host, port, self.config.backlog)
                )
            except OSError as exc:
                logger.error(f"Received SIGTTIN, but no socket could be bound for a worker: {exc}")
                return
        logger.info("Received SIGTTIN, increasing the number of processes.")
        self.processes_num += 1
        self.processes.append(self._process(len(self.processes)))

    def handle_ttou(self) -> None:
        """Stop the last worker (SIGTTOU), as uvicorn does, and close its socket.

        The wait for it is bounded as the stop's: killed after ``stop_seconds``, and said.
        """
        if self.processes_num <= 1:
            super().handle_ttou()  # says that one worker is the least
            return
        logger.info("Received SIGTTOU, decreasing number of processes.")
        self.processes_num -= 1
        process = self.processes.pop()
        if self._own_sockets:
            # closed here first: once the worker lets go of it too, the kernel sends it no more
            self.sockets.pop().close()
        process.terminate()
        self._wait_for_one(process)

    def _wait_for_one(self, process: Process) -> None:
        """Wait for one worker asked to stop (restart, SIGTTOU) as :meth:`join_all` waits.

        uvicorn's waited without a limit: a hung worker (or a stopped one) blocked the supervisor,
        which then read no signal, SIGTERM included.
        """
        logger.info(
            f"Waiting up to {self.stop_seconds:g} s for child process [{process.pid}] to stop"
        )
        self._wait_or_kill([process])

    def _stop_waiting(self) -> bool:
        """Whether a stop signal is waiting to be handled."""
        return any(sig in _STOP_SIGNALS for sig in self.signal_queue)

    def handle_int(self) -> None:
        """Count the stop signal, then stop as uvicorn does."""
        self._stops += 1
        super().handle_int()

    def handle_term(self) -> None:
        """Count the stop signal, then stop as uvicorn does."""
        self._stops += 1
        super().handle_term()

    def _answers(self, process: Process) -> bool | None:
        """Ping a worker as uvicorn's health check does, in short polls.

        Returns True when it answers within ``timeout_worker_healthcheck``, False when it does not
        (or has exited), None when a stop signal came first (the worker is left alone).
        """
        if not process.process.is_alive():
            return False
        try:
            process.parent_conn.send(b"ping")
            deadline = time.monotonic() + self.config.timeout_worker_healthcheck
            while not process.parent_conn.poll(_POLL_SECONDS):
                if self._stop_waiting():
                    return None
                if time.monotonic() >= deadline:
                    return False
            process.parent_conn.recv()
        except (OSError, EOFError, pickle.UnpicklingError):
            return False
        return True

    def keep_subprocess_alive(self) -> None:
        """Check every worker's health as uvicorn does, except that a stop signal ends the wait.

        A worker that does not answer is killed and replaced as uvicorn does (its line says why:
        :class:`WorkerReplacedNote`); uvicorn's own waits out the whole timeout of an unresponsive
        worker before it reads a SIGTERM.
        """
        if self.should_exit.is_set():
            return
        for idx, process in enumerate(self.processes):
            answered = self._answers(process)
            if answered is None:  # stopping: the main loop handles the signal next
                return
            if answered:
                continue
            process.kill()
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                logger.error(
                    f"Child process [{process.pid}] failed to start, stopping the parent process."
                )
                self.should_exit.set()
                return
            logger.info(f"Child process [{process.pid}] died")
            self.processes[idx] = self._process(idx)

    def join_all(self) -> None:
        """Wait at most ``stop_seconds`` for the workers (signalled to stop), then kill the rest.

        A second stop signal while waiting kills the workers left at once. Each worker killed is
        logged with its pid and why.
        """
        left = [p for p in self.processes if p.process.is_alive()]
        if left:
            logger.info(
                f"Waiting up to {self.stop_seconds:g} s for {len(left)} child process"
                f"{'es' * (len(left) > 1)} to stop (a second Ctrl-C or SIGTERM kills them now)"
            )
        self._wait_or_kill(self.processes)

    def _wait_or_kill(self, processes: list[Process]) -> None:
        """Wait at most ``stop_seconds`` for ``processes`` (asked to stop), then kill the rest.

        A second stop signal while waiting kills them at once; each one killed is logged with its
        pid and why.
        """
        left = [p for p in processes if p.process.is_alive()]
        deadline = time.monotonic() + self.stop_seconds
        reason = ""
        while left:
            if self._stops + sum(sig in _STOP_SIGNALS for sig in self.signal_queue) > 1:
                reason = "a second stop signal asked to stop at once"
                break
            if time.monotonic() >= deadline:
                reason = (
                    f"it had not stopped {self.stop_seconds:g} s after it was asked to (blocked "
                    "by a long call on its event loop, or hung)"
                )
                break
            left[0].process.join(_POLL_SECONDS)
            left = [p for p in left if p.process.is_alive()]
        for process in left:
            logger.warning(f"Killed child process [{process.pid}]: {reason}")
            process.kill()
        for process in processes:
            process.process.join()


class WatchedServer(Server):
    """uvicorn's server run alone (one worker), with a stop that is bounded even when it is blocked.

    A worker whose event loop a long call blocks cannot act on a stop signal: uvicorn's handler
    only marks that it should exit, and the loop that would read the mark waits for the call. With
    several workers :class:`Supervisor` kills such a worker; with one there is no supervisor. Here
    the first SIGTERM or Ctrl-C also starts a watchdog thread: if :meth:`run` has not returned
    ``stop_seconds`` later, it logs why and ends the process with status 128 + the signal's number
    (143 after SIGTERM, 130 after Ctrl-C: what a shell reports for a process the signal ended;
    uvicorn itself ends a SIGTERM stop by the signal). The app's shutdown does not run then. A
    second SIGTERM or Ctrl-C before the server has stopped ends the process at once the same way.

    The bound ends a stop that is slow as one that is blocked (a loop that answers is not thereby
    making progress, and the orchestrator's own deadline comes anyway); what it cut short is said:
    :data:`PROBE_SECONDS` before the bound the watchdog asks the event loop to answer, and its
    line says whether the loop still ran or was blocked.

    A call that holds the interpreter (a C extension that never releases the GIL) delays the
    signal's handler too, so no watchdog starts: only the orchestrator's SIGKILL ends it.

    Parameters
    ----------
    config : uvicorn.Config
        The server's config (one worker).
    stop_seconds : float
        The longest wait, after the first stop signal, for :meth:`run` to return.
    """

    def __init__(self, config: Config, stop_seconds: float) -> None:
        super().__init__(config)
        self.stop_seconds = stop_seconds
        self._returned = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket] | None = None) -> None:
        """Serve as uvicorn's, noting the event loop the watchdog asks to answer."""
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def run(self, sockets: list[socket] | None = None) -> None:
        """Serve until stopped, as uvicorn's; the watchdog stands down once this returns."""
        try:
            super().run(sockets)
        finally:
            self._returned.set()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Mark that the server should exit, as uvicorn's; the first signal starts the watchdog.

        A second SIGTERM or Ctrl-C before :meth:`run` returns ends the process at once, with
        status 128 + that signal's number and a line saying so (as a second signal makes the
        supervisor of several workers kill them); uvicorn's own would wait on after a second
        SIGTERM, and after a second Ctrl-C only skip the waits its event loop runs.
        """
        if self._watchdog is not None and not self._returned.is_set():
            status = 128 + sig
            logger.error(
                f"Exiting server process [{os.getpid()}] with status {status}: a second stop "
                f"signal ({signal.Signals(sig).name}) asked to stop at once; its app did not "
                "shut down"
            )
            os._exit(status)
        super().handle_exit(sig, frame)
        if self._watchdog is None and not self._returned.is_set():
            self._watchdog = threading.Thread(
                target=self._watch, args=(sig,), name="guanxi-stop-watchdog", daemon=True
            )
            self._watchdog.start()

    def _watch(self, sig: int) -> None:
        """Wait ``stop_seconds`` for :meth:`run` to return; if it has not, log why and exit.

        :data:`PROBE_SECONDS` before the end (at most half the wait) the event loop is asked to
        answer; the line says whether it did.
        """
        probe = min(PROBE_SECONDS, self.stop_seconds / 2)
        if self._returned.wait(self.stop_seconds - probe):
            return
        answered = threading.Event()
        ended = False
        try:
            if self._loop is None:
                raise RuntimeError("no event loop")
            self._loop.call_soon_threadsafe(answered.set)
        except RuntimeError:  # none, or closed (asyncio.run's teardown)
            ended = True
        if self._returned.wait(probe):
            return
        if answered.is_set():
            why = (
                "though its event loop still ran (its shutdown slow, or awaiting a call that "
                "does not return)"
            )
        elif ended:
            why = "and its event loop had ended (asyncio's teardown, waiting for a thread)"
        else:
            why = (
                f"and its event loop did not answer within {probe:g} s (blocked by a long call "
                "on it, or hung)"
            )
        status = 128 + sig
        logger.error(
            f"Exiting server process [{os.getpid()}] with status {status}: it had not stopped "
            f"{self.stop_seconds:g} s after {signal.Signals(sig).name}, {why}; its shutdown did "
            "not finish"
        )
        os._exit(status)
