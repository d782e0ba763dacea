"""A test-only app for ``guanxi serve``'s stop: a worker made unresponsive or slow on request.

Every worker marks, in the folder named by ``STUCK_APP_DIR``, that it started (``started-<pid>``),
that its app shut down (``stopped-<pid>``, the lifespan's end: what a graceful stop runs), and
which request it is in (``blocked-<pid>``, ``waiting-<pid>``). The app runs behind guanxi's
request middleware, as guanxi's own app does (request ids, the access log); ``/fail`` fails as a
bug would, ``/pid`` names the worker that answers. After ``/slow-stop`` the app's shutdown awaits
ten minutes (``stopping-<pid>``): a stop that is slow, its event loop not blocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from serving.metrics import Metrics
from serving.middleware import RequestMetricsMiddleware

MARKS_ENV = "STUCK_APP_DIR"
FACTORY = "tests.serving.stuck_app:create_app"


def _mark(name: str) -> None:
    (Path(os.environ[MARKS_ENV]) / f"{name}-{os.getpid()}").touch()


async def _block(request: Request) -> PlainTextResponse:
    """Block the worker's event loop for ten minutes (a long call made on the loop): the worker
    cannot act on a stop signal, though its health-check thread still answers."""
    _mark("blocked")
    time.sleep(600)
    return PlainTextResponse("unblocked")


async def _wait(request: Request) -> PlainTextResponse:
    """Hold the request open for ten minutes without blocking the loop (a slow request)."""
    _mark("waiting")
    await asyncio.sleep(600)
    return PlainTextResponse("waited")


async def _slow_stop(request: Request) -> PlainTextResponse:
    """Make the app's shutdown slow: it awaits ten minutes (its event loop still runs)."""
    request.app.state.slow_stop = True
    return PlainTextResponse("the shutdown will be slow")


async def _pid(request: Request) -> PlainTextResponse:
    """Name the worker that answers (its process id): a test pins a connection to each worker."""
    return PlainTextResponse(str(os.getpid()))


async def _fail(request: Request) -> PlainTextResponse:
    """Fail as a bug in a handler would (a real error, whose traceback the log must keep)."""
    raise RuntimeError("a bug in a handler")


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    _mark("started")
    yield
    if getattr(app.state, "slow_stop", False):
        _mark("stopping")
        await asyncio.sleep(600)
    _mark("stopped")


def create_app() -> Starlette:
    """The app (``uvicorn --factory``)."""
    routes = [
        Route("/block", _block),
        Route("/wait", _wait),
        Route("/fail", _fail),
        Route("/pid", _pid),
        Route("/slow-stop", _slow_stop),
    ]
    app = Starlette(routes=routes, lifespan=_lifespan)
    app.add_middleware(RequestMetricsMiddleware, metrics=Metrics(), router=app.router)
    return app
