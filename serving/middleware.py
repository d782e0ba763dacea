"""Pure ASGI middleware: body limit, request ids, metrics, access log and security headers.

The access log (logger ``serving.access``, INFO; ``guanxi serve`` turns uvicorn's own off) names
the route *template*, never the raw path or the query, so no customer id or search term reaches
it: ``203.0.113.7 "GET /v1/customers/{customer_id}/scores" 200 3.1 ms request_id=...``. A request
cancelled (as at the graceful shutdown timeout) carries the same naming in a note on its
``CancelledError``, which uvicorn's log line of the cancel says (:mod:`serving.supervisor`); one
cancelled at the graceful shutdown timeout before its answer started is answered 503 with
``Retry-After`` (:func:`stopping_detail`), so its client retries elsewhere.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Final

from fastapi import HTTPException, status
from fastapi.responses import JSONResponse
from fastapi.routing import RouteContext, iter_route_contexts
from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import BaseRoute, Mount, Router, compile_path, get_route_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.metrics import Metrics
from serving.supervisor import GRACEFUL_CANCEL

__all__ = [
    "CLIENT_REQUEST_ID",
    "NOT_UTF8",
    "RETRY_AFTER_SECONDS",
    "SECURITY_HEADERS",
    "SEND_JSON",
    "SEND_UNCOMPRESSED",
    "BodyLimitMiddleware",
    "RequestMetricsMiddleware",
    "SecurityHeadersMiddleware",
    "allowed_methods",
    "body_too_large",
    "request_id_of",
    "route_template",
    "security_headers",
    "stopping_detail",
    "takes_body",
]

access_log = logging.getLogger("serving.access")

RETRY_AFTER_SECONDS = 1
"""The ``Retry-After`` of a request cancelled because the server stops: at once, elsewhere (this
server accepts no more connections; a load balancer sends the retry to another instance)."""


CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
"""A client's own ``X-Request-ID`` that is kept (its whole value): 1 to 128 ASCII letters,
digits, ``.``, ``_``, ``:`` and ``-`` (a UUID, a ULID, a W3C trace id). Nothing else: no space,
no ``=``, no control character, so it cannot forge a field or a line of the access log, nor a
header; one that breaks the rule, or sent twice, is replaced by the server's own."""


def request_id_of(scope: Scope) -> str:
    """Name a request: the client's own ``X-Request-ID`` if it is safe, else a new one.

    An integrator correlating its calls with the server's answers, access log and audit log
    sends its own id; the server keeps it when it matches :data:`CLIENT_REQUEST_ID` and is sent
    once, and otherwise makes one (32 hex digits), as it does when none is sent.

    Parameters
    ----------
    scope : starlette.types.Scope
        The request's ASGI scope (its headers).

    Returns
    -------
    str
        The id the answer's ``X-Request-ID``, the access log and the audit log carry.
    """
    given = Headers(scope=scope).getlist("x-request-id")
    if len(given) == 1 and CLIENT_REQUEST_ID.fullmatch(given[0]):
        return given[0]
    return uuid.uuid4().hex


def stopping_detail(request_id: str) -> str:
    """Say that a request was cancelled because the server stops, and to retry it.

    Parameters
    ----------
    request_id : str
        The request's id (``X-Request-ID``), as a 500's ``detail`` names it.

    Returns
    -------
    str
        The 503's ``detail``.
    """
    return (
        "the server is stopping and cancelled this request (still running at its graceful "
        f"shutdown timeout): retry it (request id {request_id})"
    )


def _stopping_answer(request_id: str) -> JSONResponse:
    """Answer a request cancelled at the graceful shutdown timeout: 503, the connection closes."""
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS), "Connection": "close"}
    return JSONResponse(
        {"detail": stopping_detail(request_id)}, status.HTTP_503_SERVICE_UNAVAILABLE, headers
    )


class RequestMetricsMiddleware:
    """Give each request an id (``X-Request-ID``), record its count and latency per route, log it.

    The id is the client's own ``X-Request-ID`` when it is safe, else a new one
    (:func:`request_id_of`).

    The route label is the path template of the route that answers
    (``/v1/customers/{customer_id}/scores``, ``/docs``, ``/ui/static/{path}`` for a mounted
    folder), never the raw path, so ids do not become label values; a path no route knows is
    ``unmatched``.

    A request that uvicorn cancels at the graceful shutdown timeout (a ``CancelledError`` with its
    message :data:`serving.supervisor.GRACEFUL_CANCEL`) before its answer started is answered
    503 with ``Retry-After`` and ``{"detail": ...}`` naming the request id
    (:func:`stopping_detail`), counted and logged as 503; the cancel is then raised on, so the
    request still ends there and uvicorn closes the connection. uvicorn itself would answer 500
    (its protocols' ``run_asgi`` answers every exception so). Any other cancel or error passes
    unchanged, and an answer already started is not replaced (its connection is closed).

    Parameters
    ----------
    app : ASGIApp
        The wrapped application.
    metrics : Metrics
        Where counts and latencies go.
    router : starlette.routing.Router
        The application's router, whose routes name the templates (read per request, so routes
        added after the middleware count).
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, router: Router) -> None:
        self.app = app
        self.metrics = metrics
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the wrapped app, timing it and tagging the response with the request id."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        route = route_template(self.router.routes, scope)  # before a mount rewrites root_path
        scope.setdefault("state", {})["request_id"] = request_id
        status_code = 500
        counted = False
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status_code, counted
            if message["type"] == "http.response.start":
                status_code = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
                # counted before the client has the answer: /metrics read after it counts it,
                # whichever worker answers (counted at the end, it raced the client's next read)
                self.metrics.count_request(route, scope["method"], status_code)
                counted = True
            await send(message)

        self.metrics.in_progress.inc()
        try:
            await self.app(scope, receive, send_with_id)
        except asyncio.CancelledError as exc:
            # names the request in uvicorn's log line of the cancel (the graceful shutdown
            # timeout's: serving.supervisor.GracefulCancelNote), as this log names it
            exc.add_note(f'request "{scope["method"]} {route}" request_id={request_id}')
            if exc.args == (GRACEFUL_CANCEL,) and not counted:
                # the server stops: a 503 tells the client to retry elsewhere (uvicorn's own
                # answer is a 500); the cancel is raised on, so the request still ends here
                await _stopping_answer(request_id)(scope, receive, send_with_id)
            raise
        finally:
            self.metrics.in_progress.dec()
            elapsed = time.perf_counter() - start
            if not counted:  # no answer started (the app failed before one)
                self.metrics.count_request(route, scope["method"], status_code)
            self.metrics.observe_latency(route, elapsed)
            client = scope.get("client")
            access_log.info(
                '%s "%s %s" %d %.1f ms request_id=%s',
                client[0] if client else "-",
                scope["method"],
                route,
                status_code,
                1000 * elapsed,
                request_id,
            )


def body_too_large(limit: int) -> str:
    """Say that a request body is over ``limit`` bytes, and what to do about it.

    Parameters
    ----------
    limit : int
        The largest body accepted, in bytes (``GUANXI_MAX_BODY_BYTES``).

    Returns
    -------
    str
        The 413's ``detail``.
    """
    return (
        f"request body over the limit of {limit:,} bytes (GUANXI_MAX_BODY_BYTES): "
        "send fewer customer ids or events per request"
    )


SEND_JSON = "send a JSON object as the body, with Content-Type: application/json"
"""What a 422 about the body as a whole says to do (no body, not JSON, or not sent as JSON)."""

NOT_UTF8 = f"the body is not UTF-8 text: {SEND_JSON}, encoded in UTF-8"
"""What the 400 of a JSON body that cannot be decoded says (ids exported as Latin-1, say)."""

SEND_UNCOMPRESSED = (
    "a compressed request body (Content-Encoding) is not accepted: send the JSON uncompressed, "
    "without a Content-Encoding header"
)
"""The 415's ``detail`` for a body sent with a ``Content-Encoding`` (gzip, deflate, ...)."""


SECURITY_HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
"""Headers every answer carries (a reviewer page's own values are kept)."""
NOT_A_PAGE_POLICY: Final = "default-src 'none'; frame-ancestors 'none'"
"""The Content-Security-Policy of an answer that is no page (JSON, CSV, text): it loads nothing
and is framed nowhere, so one opened in a browser cannot run what it holds."""
FRAMED_NOWHERE: Final = "frame-ancestors 'none'"
"""The Content-Security-Policy of a page without its own (``/docs``, ``/redoc``, whose scripts
are inline): no other site frames it (clickjacking)."""


def security_headers(content_type: str, *, file: bool = False) -> dict[str, str]:
    """Return the security headers of an answer that sets none of its own.

    Every answer says ``nosniff``, is framed nowhere and sends its address only to this site
    (:data:`SECURITY_HEADERS`); one that is not HTML loads nothing
    (:data:`NOT_A_PAGE_POLICY`); and only a static file may be cached: every other answer
    (scores, values, plans, a customer's page, an error) is ``Cache-Control: no-store``, so
    no browser, proxy or shared machine keeps customer data.

    Parameters
    ----------
    content_type : str
        The answer's ``Content-Type`` (empty without one).
    file : bool, default False
        Whether the answer is a file (a style sheet, an icon: it carries an ``ETag``).

    Returns
    -------
    dict of str to str
        Header name to value.
    """
    html = content_type.split(";")[0].strip().lower() == "text/html"
    policy = FRAMED_NOWHERE if html else NOT_A_PAGE_POLICY
    cache = {} if file else {"Cache-Control": "no-store"}
    return {**SECURITY_HEADERS, "Content-Security-Policy": policy, **cache}


class SecurityHeadersMiddleware:
    """Add :func:`security_headers` to every answer, keeping any of them it sets itself.

    The JSON API answered customer ids, scores and values without ``Cache-Control``,
    ``X-Content-Type-Options`` or a frame policy (only the reviewer pages had them): a browser
    or a proxy could keep an answer, and a JSON body opened in a browser could be sniffed as
    HTML. A reviewer page keeps its stricter policy (:mod:`serving.ui.pages`).

    Parameters
    ----------
    app : ASGIApp
        The wrapped application.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the wrapped app, adding the headers its answer does not set."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                added = security_headers(headers.get("content-type", ""), file="etag" in headers)
                for name, value in added.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _compressed(content_encoding: str) -> bool:
    """Say whether a ``Content-Encoding`` header's value is a coding (any but ``identity``)."""
    return content_encoding.strip().lower() not in ("", "identity")


def _has_body(headers: Headers) -> bool:
    """Say whether a request carries a body: a ``Transfer-Encoding``, or a length but 0."""
    return "transfer-encoding" in headers or headers.get("content-length", "0").strip() != "0"


class BodyLimitMiddleware:
    """Refuse a request body over ``limit`` bytes with a JSON 413 that names the limit.

    A body whose ``Content-Length`` is over the limit is refused before it is read; one sent
    without a length (chunked) is counted as it streams in and refused once the count passes
    the limit, without being read further. The answer is ``{"detail": ...}`` (the API's
    ``ErrorResponse``), as every other error of the API.

    A compressed body (a ``Content-Encoding`` such as gzip, which integrators' HTTP clients
    send for large bodies) is refused first with a 415 saying to send it uncompressed
    (:data:`SEND_UNCOMPRESSED`): the server does not decompress, and FastAPI read the
    compressed bytes as text and answered a 400 "There was an error parsing the body". A request
    without a body (a GET) is not refused for the header alone: there is nothing to decompress.

    Only an operation that takes a body (:func:`takes_body`: the API document's
    ``requestBody``) refuses one: a body sent to any other (a GET, the reload) is never read, so
    it is answered as without it, never with the 413 or 415 its document does not list (before,
    a GET with a body declared over the limit was a 413).

    Parameters
    ----------
    app : ASGIApp
        The wrapped application.
    limit : int
        The largest body accepted, in bytes.
    router : starlette.routing.Router
        The application's router, whose routes say which operations take a body (read only when
        a body would be refused, so a request within the limit costs no route lookup).
    """

    def __init__(self, app: ASGIApp, limit: int, router: Router) -> None:
        self.app = app
        self.limit = limit
        self.router = router
        self.detail = body_too_large(limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, counting its body; refuse it once it is over the limit."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = self.detail
        headers = Headers(scope=scope)
        # asked only when a body would be refused, and once
        reads_body = functools.cache(functools.partial(takes_body, self.router.routes, scope))
        if _compressed(headers.get("content-encoding", "")) and _has_body(headers) and reads_body():
            await JSONResponse(
                {"detail": SEND_UNCOMPRESSED}, status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
            )(scope, receive, send)
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit and reads_body():
            await JSONResponse({"detail": detail}, status.HTTP_413_CONTENT_TOO_LARGE)(
                scope, receive, send
            )
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                # a route without a body never reads one: only a response waiting for the
                # client to leave (a file, a stream) receives it, and drains it unrefused
                if received > self.limit and reads_body():
                    # an HTTPException: FastAPI passes it on from its body reading, and the
                    # app's exception handling answers it as JSON
                    raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail)
            return message

        await self.app(scope, counted, send)


def _matching(routes: Sequence[BaseRoute], scope: Scope) -> Iterator[tuple[RouteContext, str]]:
    """Yield the routes whose path matches a request's, in the router's order, with templates.

    The routes are walked as FastAPI matches them (included routers flattened); a mounted
    folder's template is the mount's path followed by ``/{path}``. The method is not compared.
    """
    path = get_route_path(scope)
    for context in iter_route_contexts(routes):
        if context.path is None:
            continue
        regex, template = _pattern(context.path, isinstance(context.original_route, Mount))
        if regex.match(path):
            yield context, template


def takes_body(routes: Sequence[BaseRoute], scope: Scope) -> bool:
    """Say whether the operation that answers a request takes a body (and so reads one).

    It is the first route whose path and method match the request's; it takes a body when it
    has body parameters (a JSON model or a form), which is when the API document gives its
    operation a ``requestBody``. A request no route answers (a 404, a 405) takes none.

    Parameters
    ----------
    routes : sequence of starlette.routing.BaseRoute
        The application's routes (``app.router.routes``).
    scope : starlette.types.Scope
        The request's scope, before the router handles it.

    Returns
    -------
    bool
        True when the answering route reads a body.
    """
    for context, _ in _matching(routes, scope):
        if scope["method"] in (context.methods or ()):
            return getattr(context.original_route, "body_field", None) is not None
    return False


def allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> list[str]:
    """Return the methods some route answers at a request's path, sorted: a 405's ``Allow``.

    Starlette's 405 names the methods of the first route whose path matches, so a path served by
    two routes (``GET`` and ``HEAD /healthz``, ``GET`` and ``POST /ui/login``) said ``Allow: GET``
    though the other method is answered too.

    Parameters
    ----------
    routes : sequence of starlette.routing.BaseRoute
        The application's routes (``app.router.routes``).
    scope : starlette.types.Scope
        The request's scope.

    Returns
    -------
    list of str
        Every method of every route matching the path, e.g. ``["GET", "HEAD"]``.
    """
    return sorted(
        {method for context, _ in _matching(routes, scope) for method in context.methods or ()}
    )


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    """Return the path template of the route that answers a request, or ``"unmatched"``.

    The routes are walked in the router's order (included routers flattened, as FastAPI matches
    them) and the first whose path matches names the request: its template, or for a mounted
    folder the mount's path followed by ``/{path}``. The method is not compared, so a 405 is
    labelled with the route that refused it.

    Parameters
    ----------
    routes : sequence of starlette.routing.BaseRoute
        The application's routes (``app.router.routes``).
    scope : starlette.types.Scope
        The request's scope, before the router handles it.

    Returns
    -------
    str
        The template, e.g. ``/v1/customers/{customer_id}/scores`` or ``/ui/static/{path}``.
    """
    return next((template for _, template in _matching(routes, scope)), "unmatched")


@functools.lru_cache(maxsize=1024)
def _pattern(path: str, mount: bool) -> tuple[re.Pattern[str], str]:
    """Compile a route's path (a mount's with its ``/{path}`` tail); return it and its template."""
    regex, template, _ = compile_path(f"{path.rstrip('/')}/{{path:path}}" if mount else path)
    return regex, template
