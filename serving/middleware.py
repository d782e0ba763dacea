"""Pure ASGI middleware: request ids and per-route metrics."""

from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.metrics import Metrics

__all__ = ["RequestMetricsMiddleware"]


class RequestMetricsMiddleware:
    """Give each request an id (``X-Request-ID``) and record its count and latency per route.

    The route label is the matched path template (``/v1/customers/{customer_id}/scores``), never
    the raw path, so ids do not become label values.

    Parameters
    ----------
    app : ASGIApp
        The wrapped application.
    metrics : Metrics
        Where counts and latencies go.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the wrapped app, timing it and tagging the response with the request id."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status_code = 500
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.observe_request(
                _route_template(scope), scope["method"], status_code, time.perf_counter() - start
            )


def _route_template(scope: Scope) -> str:
    """Return the path template of the route that handled ``scope``, or ``"unmatched"``."""
    route: Any = scope.get("route")
    return str(getattr(route, "path", "unmatched"))
