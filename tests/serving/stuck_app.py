"""A test-only app for ``guanxi serve``'s supervisor: a worker made unresponsive on request.

Every worker marks, in the folder named by ``STUCK_APP_DIR``, that it started (``started-<pid>``),
that its app shut down (``stopped-<pid>``, the lifespan's end: what a graceful stop runs), and
which request it is in (``blocked-<pid>``, ``waiting-<pid>``).
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


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    _mark("started")
    yield
    _mark("stopped")


def create_app() -> Starlette:
    """The app (``uvicorn --factory``)."""
    return Starlette(routes=[Route("/block", _block), Route("/wait", _wait)], lifespan=_lifespan)
