"""``guanxi serve``: run the scoring service with uvicorn.

The settings come from ``GUANXI_*`` environment variables (:class:`serving.settings.Settings`).
Without API keys the command refuses to start unless ``--dev``, which generates one admin key
and an audit key (both printed once, the audit key for ``guanxi audit verify``) and a session key
for this run. Behind a TLS proxy,
``--proxy-headers`` with ``--forwarded-allow-ips`` makes uvicorn take the scheme and client address
from the proxy's ``X-Forwarded-*`` headers. The MLflow tracking URI is resolved here
(``MLFLOW_TRACKING_URI`` or the SQLite store under ``GUANXI_HOME``) and exported, so every
uvicorn worker loads from the same registry.

``--port 0`` takes a free port the system picks when uvicorn binds it (no other process can take it
first, as it could a port found free and let go before the server starts); uvicorn's
``Uvicorn running on http://HOST:PORT`` line names it.

Several workers (``--workers``, by default the CPU count up to :data:`MAX_DEFAULT_WORKERS`) share a
private directory made for the run before they start and removed when it stops
(:func:`serving.workers.prepare_run_dir`): ``/metrics`` sums every worker's counts, an admin reload
reaches every worker, and the authentication backoff is one for all. uvicorn's supervisor waits
``GUANXI_WORKER_HEALTHCHECK_SECONDS`` (60 s, not uvicorn's 5 s) for a worker to answer its health
check before replacing it, and says why when it does (:mod:`serving.supervisor`). On Linux each
worker listens on a socket of its own, bound with ``SO_REUSEPORT``, so that the kernel spreads new
connections over the workers (:func:`serving.supervisor.listening_sockets`).

A stop (SIGTERM, Ctrl-C) is bounded: each worker lets its requests finish for at most
``--timeout-graceful-shutdown`` seconds (:data:`GRACEFUL_SHUTDOWN_SECONDS`, uvicorn's
``timeout_graceful_shutdown``), then cancels them and shuts down; with several workers, the
supervisor kills a worker still running :data:`serving.supervisor.SHUTDOWN_SECONDS` later (one
whose event loop is blocked cannot act on the signal) and logs which and why; a second SIGTERM or
Ctrl-C kills at once (:class:`serving.supervisor.Supervisor`). One worker, which has no
supervisor, ends its own process after the same time, or at once on a second SIGTERM or Ctrl-C,
saying why (:class:`serving.supervisor.WatchedServer`). A request cancelled at the graceful timeout
is answered 503 with ``Retry-After`` (:class:`serving.middleware.RequestMetricsMiddleware`; uvicorn
answers 500) and is one log line naming it, not uvicorn's traceback
(:class:`serving.supervisor.GracefulCancelNote`).
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import secrets
import shutil
import socket
from collections.abc import Callable
from typing import Annotated, Any, Final

import typer
import uvicorn
from mlflow import MlflowClient
from pydantic import ValidationError
from rich.console import Console

from models.registry import configure_tracking
from serving.settings import Role, get_settings
from serving.supervisor import (
    SHUTDOWN_SECONDS,
    GracefulCancelNote,
    Supervisor,
    WatchedServer,
    WorkerReplacedNote,
    listening_sockets,
)
from serving.workers import prepare_run_dir

__all__ = [
    "APP_FACTORY",
    "DEFAULT_WORKERS",
    "GRACEFUL_SHUTDOWN_SECONDS",
    "KEEP_ALIVE_SECONDS",
    "LOG_DATE_FORMAT",
    "LOG_FORMAT",
    "MAX_DEFAULT_WORKERS",
    "ROOT_PATH_SEGMENT",
    "ROOT_PATH_VARIABLE",
    "check_root_path",
    "port_in_use",
    "run_server",
    "serve_command",
]

APP_FACTORY = "serving.app:create_app_from_env"
"""The app uvicorn serves (by import string, so that every worker builds its own)."""

MAX_DEFAULT_WORKERS = 4
"""The most workers ``guanxi serve`` starts without ``--workers`` (each holds its own models)."""

DEFAULT_WORKERS = max(1, min(os.cpu_count() or 1, MAX_DEFAULT_WORKERS))
"""``--workers`` by default: the CPU count, at most :data:`MAX_DEFAULT_WORKERS`."""

KEEP_ALIVE_SECONDS = 75
"""``--timeout-keep-alive`` by default. uvicorn's own 5 s equals httpx's keep-alive expiry: a
client reusing a connection just as the server closes it gets a ``ReadError`` (one in 6,910
requests of the load test, CI of 2026-12-02). The server must outlast its clients' idle
timeouts; 75 s is nginx's default and above an AWS load balancer's 60 s."""


GRACEFUL_SHUTDOWN_SECONDS = 20
"""``--timeout-graceful-shutdown`` by default: how long a worker lets its requests finish after
SIGTERM. With the supervisor's :data:`serving.supervisor.SHUTDOWN_SECONDS` after it, a stop takes
at most 25 s, under Kubernetes' default grace period (30 s) and systemd's (90 s), which kill the
whole tree without a word. uvicorn's own default waits for open requests without end."""


LOG_FORMAT = "%(asctime)s [%(process)d] %(levelprefix)s %(message)s"
"""The server log's line: local time with its UTC offset, process id, then uvicorn's own line
(level and message, which a search for ``WARNING:  Cancelled request`` still finds), e.g.
``2026-12-03T23:31:05+0000 [13486] INFO:     127.0.0.1 "GET /readyz" 200 1.2 ms request_id=...``."""

LOG_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
"""The time of :data:`LOG_FORMAT` (ISO 8601, to the second, with the offset from UTC)."""


def _log_config(healthcheck_seconds: int, graceful_seconds: int) -> dict[str, Any]:
    """Return uvicorn's logging config with guanxi's loggers (``serving.*``) beside it.

    uvicorn's supervisor line "Child process [N] died" is rewritten to say why a worker is
    replaced and which setting lengthens the wait (:class:`serving.supervisor.WorkerReplacedNote`),
    and the traceback of a request cancelled at the graceful shutdown timeout becomes one line
    naming it (:class:`serving.supervisor.GracefulCancelNote`).

    Each line says when and which process (:data:`LOG_FORMAT`): uvicorn's own said neither, so a
    log written to a file could not tell when a reload failed or a request was answered, nor
    which worker said what, though the supervisor's lines name workers by their process id.
    """
    config: dict[str, Any] = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["formatters"]["default"].update(fmt=LOG_FORMAT, datefmt=LOG_DATE_FORMAT)
    config["loggers"]["serving"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    config.setdefault("filters", {}).update(
        worker_replaced={"()": WorkerReplacedNote, "seconds": healthcheck_seconds},
        graceful_cancel={"()": GracefulCancelNote, "seconds": graceful_seconds},
    )
    config["loggers"].setdefault("uvicorn.error", {})["filters"] = [
        "worker_replaced",
        "graceful_cancel",
    ]
    return config


def port_in_use(host: str, port: int) -> str | None:
    """Say why ``host:port`` cannot be listened on, before the workers start (None when free).

    Uvicorn found out only after printing that it serves, each worker with a log line of its
    own; this binds a socket as uvicorn does (``SO_REUSEADDR``) and lets it go at once.

    Parameters
    ----------
    host : str
        The interface (``--host``).
    port : int
        The port (``--port``).

    Returns
    -------
    str or None
        The reason, naming the address, or None.
    """
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        return f"cannot listen on {host}:{port} ({exc.strerror or exc})"
    return None


ROOT_PATH_VARIABLE: Final = "GUANXI_ROOT_PATH"
"""The environment variable ``--root-path`` is read from when the flag is not given: the
deployment's prefix set where its ``GUANXI_*`` settings are (it had to be on the command line).
The command's, not a server setting (:mod:`serving.settings` holds none of uvicorn's options)."""

ROOT_PATH_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")
"""A part of ``--root-path`` between slashes: RFC 3986's unreserved characters, which a URL path
holds as they are (a proxy and uvicorn see the same prefix, escaped or not)."""


def check_root_path(value: str) -> str:
    """Check and normalise ``--root-path``: the path prefix a proxy serves the app under.

    uvicorn's ``root_path`` is put before every request's path as it is (``/crm`` + ``/ui``), and
    :func:`serving.deps.base_path` before every address a page, a redirect or the session cookie
    gives a browser: ``/crm/`` made ``/crm//ui``, and ``crm`` made ``crm/ui``, neither an address
    under the prefix. A trailing slash is dropped (``/`` is the root, ``""``); a part between
    slashes that is empty, ``.``, ``..`` or not :data:`ROOT_PATH_SEGMENT` (``%`` escapes, spaces,
    ``?``, non-ASCII, which uvicorn fails on in every request) is refused.

    Parameters
    ----------
    value : str
        The prefix as given (``/crm``, ``/crm/``, or ``""`` for none).

    Returns
    -------
    str
        The prefix without a trailing slash (``/crm``), or ``""``.

    Raises
    ------
    ValueError
        When it does not start with ``/`` or holds a segment that is no plain path segment,
        saying which.
    """
    if not value:
        return ""
    if not value.startswith("/"):
        raise ValueError(f"{value!r} does not start with '/': give the prefix as /{value}")
    prefix = value.rstrip("/")
    for segment in prefix.split("/")[1:]:
        if segment in ("", ".", "..") or not ROOT_PATH_SEGMENT.fullmatch(segment):
            part = f"the part {segment!r}" if segment else "an empty part (two slashes)"
            raise ValueError(
                f"{value!r} has {part}: each part between slashes must be letters, digits, '-', "
                "'.', '_' or '~', and not '.' or '..'"
            )
    return prefix


def _root_path_option(value: str) -> str:
    """``--root-path``'s callback: :func:`check_root_path`, its refusal as a usage error."""
    try:
        return check_root_path(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def serve_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            min=0,
            max=65535,
            help="Port to listen on; 0 for a free one the system picks as it binds, named in "
            "uvicorn's 'Uvicorn running on' line.",
        ),
    ] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes (each loads its own models); default the CPU count, at most "
            f"{MAX_DEFAULT_WORKERS}.",
            show_default=False,
        ),
    ] = DEFAULT_WORKERS,
    dev: Annotated[
        bool,
        typer.Option(
            "--dev",
            help="Development mode: an admin API key printed when GUANXI_API_KEYS is not set, "
            "the audit key printed (for guanxi audit verify) when GUANXI_AUDIT_KEY is not set, a "
            "generated session key, /docs served, a session cookie sent over plain HTTP too.",
        ),
    ] = False,
    proxy_headers: Annotated[
        bool,
        typer.Option(
            "--proxy-headers",
            help="Trust X-Forwarded-Proto/For from --forwarded-allow-ips (behind a TLS proxy).",
        ),
    ] = False,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            "--forwarded-allow-ips",
            help="Comma-separated proxy addresses whose forwarded headers are trusted.",
        ),
    ] = "127.0.0.1",
    timeout_keep_alive: Annotated[
        int,
        typer.Option(
            "--timeout-keep-alive",
            min=1,
            help="Seconds an idle kept-alive connection stays open. Longer than clients' and "
            "load balancers' idle timeouts (httpx 5 s, AWS ALB 60 s), so the server never closes "
            "a connection a client is about to reuse.",
        ),
    ] = KEEP_ALIVE_SECONDS,
    timeout_graceful_shutdown: Annotated[
        int,
        typer.Option(
            "--timeout-graceful-shutdown",
            min=1,
            help="Seconds a worker lets its requests finish after SIGTERM or Ctrl-C before it "
            f"cancels them and stops; a worker still running {SHUTDOWN_SECONDS} s later is killed "
            "and logged. A second SIGTERM or Ctrl-C kills at once.",
        ),
    ] = GRACEFUL_SHUTDOWN_SECONDS,
    root_path: Annotated[
        str,
        typer.Option(
            "--root-path",
            envvar=ROOT_PATH_VARIABLE,
            callback=_root_path_option,
            help="The path prefix a reverse proxy serves the app under (/crm), as uvicorn's "
            "--root-path: the proxy must strip it before passing a request on (nginx: location "
            "/crm/ { proxy_pass http://127.0.0.1:8000/; }). The pages' links, redirects and "
            "cookie are under it. Without the flag, read from the environment (a container's or "
            "a systemd unit's EnvironmentFile, beside the GUANXI_* settings).",
        ),
    ] = "",
) -> None:
    """Serve scores and reasons over HTTP (FastAPI); the API's docs at /docs with --dev."""
    run_server(
        host=host,
        port=port,
        workers=workers,
        dev=dev,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips,
        timeout_keep_alive=timeout_keep_alive,
        timeout_graceful_shutdown=timeout_graceful_shutdown,
        root_path=root_path,
    )


def _dev_secrets(root_path: str = "") -> None:
    """Generate the secrets ``--dev`` lets go unset, for this run, and print the ones a user needs.

    The admin API key (when ``GUANXI_API_KEYS`` is not set) is for ``X-API-Key`` and the reviewer
    pages' login (``/ui/login``), which the line names as the demo's own server names the pages
    (``guanxi demo --no-serve`` ends with ``guanxi serve --dev``), and under a ``root_path`` (a
    checked ``--root-path``) at its address through the proxy too (``/crm/ui/login``); the audit key
    (when ``GUANXI_AUDIT_KEY`` is not set) is the one the audit log of this run is written with,
    which ``guanxi audit verify`` needs, so it is printed too, once, labelled dev only. The
    session key is generated silently (sessions end with the run). Outside ``--dev`` nothing is
    generated or printed: the server refuses to start without every secret set.
    """
    os.environ["GUANXI_DEV"] = "1"
    if not os.environ.get("GUANXI_API_KEYS"):
        key = secrets.token_urlsafe(24)
        os.environ["GUANXI_API_KEYS"] = f"{key}:admin"
        proxied = f"; through the proxy: {root_path}/ui/login" if root_path else ""
        typer.echo(
            f"dev mode: generated admin API key (X-API-Key): {key} (it also logs in to the "
            f"reviewer pages at /ui/login{proxied})"
        )
    if not os.environ.get("GUANXI_AUDIT_KEY"):
        os.environ["GUANXI_AUDIT_KEY"] = audit = secrets.token_urlsafe(32)
        typer.echo(
            "dev mode only: generated audit key of this run's audit log (GUANXI_AUDIT_KEY, for "
            f"guanxi audit verify): {audit}"
        )
    if not os.environ.get("GUANXI_SESSION_KEY"):
        os.environ["GUANXI_SESSION_KEY"] = secrets.token_urlsafe(32)


class _AnnouncingServer(WatchedServer):
    """The one worker's server that calls ``announce`` once it listens, after uvicorn's lines."""

    def __init__(
        self, config: uvicorn.Config, stop_seconds: float, announce: Callable[[], None]
    ) -> None:
        super().__init__(config, stop_seconds)
        self.announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.announce()


def _supervise(config: uvicorn.Config, stop_seconds: int) -> None:
    """Run several workers as ``uvicorn.run`` does, under guanxi's bounded-stop supervisor."""
    sockets = listening_sockets(config)  # one per worker where it can; "Uvicorn running on ..."
    with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run
        Supervisor(config, sockets, stop_seconds=stop_seconds).run()


def _run_one(
    app: str, stop_seconds: int, announce: Callable[[], None] | None, **options: Any
) -> None:
    """Run one worker as ``uvicorn.run`` does, under a watchdog and with ``announce``.

    The watchdog bounds a stop that a blocked event loop ignores
    (:class:`serving.supervisor.WatchedServer`); ``announce`` is called once the server listens.
    """
    config = uvicorn.Config(app, **options)
    server = (
        WatchedServer(config, stop_seconds)
        if announce is None
        else _AnnouncingServer(config, stop_seconds, announce)
    )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C stops it, as uvicorn.run
        server.run()
    if not server.started:
        raise typer.Exit(uvicorn.config.STARTUP_FAILURE)


def run_server(
    *,
    host: str,
    port: int,
    workers: int,
    dev: bool,
    proxy_headers: bool = False,
    forwarded_allow_ips: str = "127.0.0.1",
    timeout_keep_alive: int = KEEP_ALIVE_SECONDS,
    timeout_graceful_shutdown: int = GRACEFUL_SHUTDOWN_SECONDS,
    root_path: str = "",
    announce: Callable[[], None] | None = None,
) -> None:
    """Run the scoring service until stopped: ``guanxi serve``, and the end of ``guanxi demo``.

    Parameters
    ----------
    host, port, workers, dev, proxy_headers, forwarded_allow_ips, timeout_keep_alive,
    timeout_graceful_shutdown, root_path
        As ``guanxi serve``'s options of those names (``root_path`` is checked and normalised
        by :func:`check_root_path`).
    announce : callable, optional
        Called once the server listens (after uvicorn's "Application startup complete" and
        "Uvicorn running on" lines), to tell the user what to do next; one worker only.

    Raises
    ------
    ValueError
        When ``announce`` is given with more than one worker.
    typer.Exit
        With code 2 when the settings are incomplete, ``GUANXI_DEV`` is set without ``dev`` or
        the port is taken; with uvicorn's
        startup-failure code (3) when one worker's server did not start.
    """
    if announce is not None and workers != 1:
        raise ValueError("announce needs one worker (uvicorn's own process serves)")
    root_path = check_root_path(root_path)
    console = Console(stderr=True)
    if dev:
        _dev_secrets(root_path)
    get_settings.cache_clear()
    try:
        settings = get_settings().check_serving()
    except ValidationError as exc:
        for error in exc.errors():
            console.print(f"[red]cannot start:[/red] {error['msg'].removeprefix('Value error, ')}")
        raise typer.Exit(2) from None
    except ValueError as exc:
        console.print(f"[red]cannot start:[/red] {exc}")
        raise typer.Exit(2) from None
    if settings.dev and not dev:
        # GUANXI_DEV is how --dev reaches the workers, not a switch of its own: one left in a
        # production environment started the server without any secret checked, silently
        console.print(
            "[red]cannot start:[/red] GUANXI_DEV is set but --dev was not given: dev mode lets "
            "every secret go unchecked (a random audit key, session cookies without Secure, "
            "public API docs); unset GUANXI_DEV, or start with --dev on a machine of your own"
        )
        raise typer.Exit(2)
    if dev and Role.admin not in settings.keys.values():
        typer.echo(
            "dev mode: GUANXI_API_KEYS holds no admin key, so POST /v1/admin/reload answers 403; "
            "add one as key:admin, or unset GUANXI_API_KEYS to have one generated"
        )
    taken = port_in_use(host, port)
    if taken:
        console.print(f"[red]cannot start:[/red] {taken}; stop it or choose another --port")
        raise typer.Exit(2)
    os.environ["MLFLOW_TRACKING_URI"] = uri = configure_tracking(settings.home)
    run_dir = None
    if workers > 1:
        run_dir = prepare_run_dir()
        if uri.startswith("sqlite:"):
            # MLflow creates the tables of an empty SQLite store without a lock between
            # processes: create them once here, not in every worker at the same time
            client = MlflowClient(uri, uri)
            client.search_experiments(max_results=1)
            client.search_registered_models(max_results=1)
    # port 0: uvicorn binds a port the system picks and names it in its "Uvicorn running on" line
    address = f"http://{host}:{port}" if port else f"http://{host} on a free port"
    # the proxy's prefix: the server answers /ui as /crm/ui, and a proxy passing /crm/ui on
    # unstripped reaches /crm/crm/ui, which no route has
    under = f" under the path prefix {root_path} (a proxy strips it)" if root_path else ""
    console.print(
        f"guanxi serving on {address}{under} (store {settings.home}, {workers} worker"
        f"{'s' * (workers > 1)})"
    )
    options: dict[str, Any] = dict(
        factory=True,
        host=host,
        port=port,
        workers=workers,
        server_header=False,
        log_level="info",
        # uvicorn's access log writes raw paths and queries (customer ids, searches); the
        # middleware's (logger serving.access) writes route templates and request ids instead
        access_log=False,
        log_config=_log_config(settings.worker_healthcheck_seconds, timeout_graceful_shutdown),
        # uvicorn's 5 s kills workers still starting on a loaded machine, forever (several workers)
        timeout_worker_healthcheck=settings.worker_healthcheck_seconds,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips,
        timeout_keep_alive=timeout_keep_alive,
        # a worker cancels the requests still open this long after SIGTERM; uvicorn's default
        # (None) waits for them without end
        timeout_graceful_shutdown=timeout_graceful_shutdown,
        root_path=root_path,
    )
    stop_seconds = timeout_graceful_shutdown + SHUTDOWN_SECONDS
    try:
        if workers > 1:
            _supervise(uvicorn.Config(APP_FACTORY, **options), stop_seconds)
        else:
            _run_one(APP_FACTORY, stop_seconds, announce, **options)
    finally:
        if run_dir is not None:
            shutil.rmtree(run_dir, ignore_errors=True)
