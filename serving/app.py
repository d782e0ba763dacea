"""The app factory: ``create_app(settings) -> FastAPI``.

Nothing is loaded when the app is built; models and snapshot load in the lifespan (see
:mod:`serving.lifecycle`). Errors never echo request bodies, feature values or tracebacks: a 422
lists field names and reasons only (a reviewer page's is an HTML page saying the same), and an
unexpected error is a 500 with the request id, its traceback going to the log.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from starlette.datastructures import URL
from starlette.exceptions import HTTPException
from starlette.routing import get_route_path
from starlette.types import Receive, Scope, Send

from serving.audit import AuditLog
from serving.deps import (
    API_KEY_HEADER,
    REQUIRED_ROLES,
    Backoff,
    KeyRing,
    PageError,
    required_key,
)
from serving.lifecycle import lifespan
from serving.loader import RegistrySource, Source
from serving.metrics import Metrics
from serving.middleware import (
    NOT_UTF8,
    SEND_JSON,
    BodyLimitMiddleware,
    RequestMetricsMiddleware,
    SecurityHeadersMiddleware,
    allowed_methods,
    route_template,
    security_headers,
)
from serving.routes import ERRORS, health_router, router
from serving.schemas import PATTERN_REASONS
from serving.settings import Role, Settings, get_settings
from serving.state import StateHolder
from serving.targeting import UpliftCache, targeting_router
from serving.ui import FAVICON, install_ui
from serving.ui.pages import http_error_page, invalid_page, is_page, sentence
from serving.value_routes import router as value_router
from serving.values import NewestValues
from serving.workers import RunDir

__all__ = [
    "API_DESCRIPTION",
    "BODY_ERRORS",
    "DOCS_ASSETS",
    "DOCS_PAGES",
    "NOT_UTF8",
    "NO_ROUTE",
    "SEND_JSON",
    "answerable",
    "create_app",
    "create_app_from_env",
    "missing_file",
    "no_route",
    "prefix_twice",
    "slash_detail",
]

logger = logging.getLogger(__name__)

DOCS_ASSETS = "/docs/assets"
"""Where the Swagger UI and ReDoc scripts and styles are served from."""

API_DESCRIPTION: Final = f"""Scores with reasons and customer values, for marketing systems.

- **Key**: each `/v1` operation needs an API key in the `{API_KEY_HEADER.model.name}` header (the
  `Authorization` header is not read); its role ({", ".join(r.name for r in Role)}, each may do what
  the one before may) decides what it may do.
- **Errors** are JSON, `{{"detail": "..."}}`; a 422 lists each invalid field and why,
  `{{"detail": [{{"field": "body.customer_ids.0", "reason": "..."}}]}}`, never its value.
- **Request ids**: every answer carries `X-Request-ID` (yours, when you send a safe one): quote it
  when reporting a problem.
- **Retrying**: a 503 (models loading, or the server stopping) and a 429 (too many failed keys)
  carry `Retry-After`, in seconds.
- **HEAD**: each `GET` operation answers `HEAD` as `GET` without a body, serving no one (no
  score is made, audited or counted).
- **Exact**: addresses have no trailing slash (`/v1/scores`, not `/v1/scores/`: a 404 naming the
  route); customer ids are matched exactly, never trimmed.
- **Bodies** are JSON objects, in UTF-8, uncompressed, each key once per object.
"""
"""The API document's description: what every operation shares, as an integrator needs it first
(Swagger UI and ReDoc show it above the operations)."""

DOCS_PAGES: Final = ("/docs", "/redoc", "/docs/oauth2-redirect")
"""The API docs' pages (fastapi-offline's defaults), which a person opens in a browser."""


async def _favicon() -> FileResponse:
    """Send the service's icon (browsers ask every site for ``/favicon.ico``)."""
    return FileResponse(FAVICON, media_type="image/x-icon")


def _documentless_answer_head(app: FastAPI) -> None:
    """Answer ``HEAD`` as ``GET`` at every ``GET`` route outside the API document.

    Those are the icon (``/favicon.ico``) and the API docs' pages (``/docs``, ``/redoc``, added
    by fastapi-offline as ``GET`` only): a link checker or a monitor asking ``HEAD`` got a 405
    while ``GET`` worked, where the reviewer pages answer it
    (:data:`serving.ui.pages.PAGE_METHODS`). The server sends the answer without its body. An
    API operation's ``HEAD`` is its own route, outside the document (``@router.head``).
    """
    for context in iter_route_contexts(app.routes):  # included routers' routes too
        route = context.original_route
        if isinstance(route, APIRoute) and not route.include_in_schema and route.methods == {"GET"}:
            route.methods.add("HEAD")


def _is_json(content_type: str | None) -> bool:
    """Say whether a ``Content-Type`` is JSON's (``application/json``, ``application/*+json``)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


_JSON_KINDS: dict[type, str] = {
    type(None): "null",
    bool: "true or false",
    int: "a number",
    float: "a number",
    str: "a string",
    list: "an array",
}
"""What a JSON body that is no object is, as a 422 names it (never quoting it)."""


_TYPE_SLIPS: dict[str, tuple[tuple[type, ...], str]] = {
    "string_type": ((int, float), "should be a JSON string, not a number: put it in quotes"),
    "list_type": ((str,), "should be a JSON array, not a string: send one value as [value]"),
}
"""Pydantic's error kinds whose input an integrator commonly sends as the wrong JSON type (a
numeric CRM id unquoted, one task without its array), with the types and what to send."""


def _body_fields(request: Request) -> str:
    """Name the fields of the JSON object a route takes as its body, the required ones said so.

    Empty when the route's body is not a model (none is, today).
    """
    field = getattr(request.scope.get("route"), "body_field", None)
    model = getattr(getattr(field, "field_info", None), "annotation", None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return ""
    names = [
        f"{info.alias or name}{' (required)' if info.is_required() else ''}"
        for name, info in model.model_fields.items()
    ]
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)


def _field_error(error: dict[str, Any], request: Request) -> dict[str, str]:
    """Name the field of one validation error and say what it needs, never quoting the input.

    A pattern is said by its meaning (:data:`PATTERN_REASONS`), not its regex; a body that is
    not JSON is the field ``body``, with where the JSON breaks (FastAPI's location is the
    character's offset, which is no field); a body that is missing or was not sent as JSON says
    :data:`SEND_JSON`, and so does JSON that is no object (``null``, ``[]``, ``"x"``), naming
    what it is and the object's fields (pydantic said "Input should be a valid dictionary or
    object to extract fields from"). A field the body does not have (``customerIds``) names
    the body's fields (it was "Extra inputs are not permitted"); a number where text goes (a
    numeric id unquoted) or a string where an array goes says what to send
    (:data:`_TYPE_SLIPS`; it was "Input should be a valid string"). A check's own message is
    said without pydantic's ``Value error, ``.
    """
    loc = tuple(error.get("loc", ()))
    kind = error.get("type")
    reason = str(error.get("msg"))
    if kind == "value_error":
        reason = reason.removeprefix("Value error, ")
    elif kind == "string_pattern_mismatch":
        pattern = (error.get("ctx") or {}).get("pattern")
        if pattern in PATTERN_REASONS:
            reason = f"should be {PATTERN_REASONS[pattern]}"
    elif kind == "json_invalid":
        where = f" at character {loc[1]}" if len(loc) > 1 else ""
        problem = str((error.get("ctx") or {}).get("error", "cannot be read"))
        return {"field": "body", "reason": f"not valid JSON ({problem}{where}): {SEND_JSON}"}
    elif loc == ("body",) and (
        kind == "missing" or not _is_json(request.headers.get("content-type"))
    ):
        why = "no body" if kind == "missing" else "the body was not sent as JSON"
        reason = f"{why}: {SEND_JSON}"
    elif loc == ("body",) and kind == "model_attributes_type":
        what = _JSON_KINDS.get(type(error.get("input")), "not an object")
        fields = _body_fields(request)
        reason = f"the body is {what}, not a JSON object: {SEND_JSON}" + (
            f"; its fields are {fields}" if fields else ""
        )
    elif kind == "extra_forbidden" and len(loc) == 2 and loc[0] == "body":
        fields = _body_fields(request)
        reason = "not a field of the body" + (f", whose fields are {fields}" if fields else "")
    elif kind in _TYPE_SLIPS and type(error.get("input")) in _TYPE_SLIPS[kind][0]:
        reason = _TYPE_SLIPS[kind][1]
    return {"field": ".".join(str(part) for part in loc), "reason": reason}


async def _validation_error(request: Request, exc: Exception) -> Response:
    """422 with field locations and reasons only (no input values, no context).

    The API answers JSON; a reviewer page answers its own HTML error page
    (:func:`serving.ui.pages.invalid_page`), which a person in a browser reads.
    """
    if is_page(request):
        return await invalid_page(request, exc)
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [_field_error(e, request) for e in errors]
    return JSONResponse({"detail": detail}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Answer an HTTP error as FastAPI does; a body that is not UTF-8 says so and what to send.

    FastAPI answers a JSON body it cannot decode with a 400 "There was an error parsing the
    body", which says neither what is wrong nor what to do (:data:`NOT_UTF8` does). An address
    under ``/ui`` answers the reviewer pages' error page (:func:`serving.ui.pages.http_error_page`).
    A 405's ``Allow`` names every method answered at its path (:func:`allowed_methods`), not
    only the first route's: ``POST /healthz`` said ``Allow: GET`` though ``HEAD`` is answered;
    the methods the 405 names are kept, as a mounted folder's (``GET, HEAD``), whose mount has
    no methods of its own, came with an empty ``Allow``. Its detail names them too (it was
    "Method Not Allowed").
    """
    if isinstance(exc, HTTPException) and isinstance(exc.__cause__, UnicodeDecodeError):
        return JSONResponse({"detail": NOT_UTF8}, status_code=exc.status_code)
    headers = getattr(exc, "headers", None) or {}
    if isinstance(exc, HTTPException) and exc.status_code == 405 and "Allow" in headers:
        named = {m.strip() for m in headers["Allow"].split(",") if m.strip()}
        routes = allowed_methods(request.app.router.routes, request.scope)
        allow = ", ".join(sorted(named.union(routes)))
        detail = f"{request.method} is not a method of this address, which takes {allow}"
        exc = HTTPException(exc.status_code, detail, {**headers, "Allow": allow})
    bare = isinstance(exc, HTTPException) and exc.detail == HTTPStatus.NOT_FOUND.phrase
    if bare and "app_root_path" in request.scope:  # a mounted folder's: its root_path is it
        exc = HTTPException(404, missing_file(request.scope["root_path"]), headers or None)
    if is_page(request):
        return await http_error_page(request, exc)
    return await http_exception_handler(request, exc)  # type: ignore[arg-type]


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """500 naming the request id; the traceback goes to the log, not to the client.

    Starlette answers it outside every middleware, so it sets the security headers and the
    ``X-Request-ID`` itself: a 500 came without the header every other answer carries, and a
    client that correlates by the header had nothing to quote.
    """
    request_id = request.scope.get("state", {}).get("request_id", "unknown")
    logger.error("request %s failed", request_id, exc_info=exc)
    return JSONResponse(
        {"detail": f"internal error (request id {request_id})"},
        status_code=500,
        headers={**security_headers("application/json"), "X-Request-ID": request_id},
    )


BODY_ERRORS: frozenset[int] = frozenset({400, 413, 415})
"""The errors about a request body: not UTF-8 (:func:`_http_error`), over the limit and
compressed (:class:`serving.middleware.BodyLimitMiddleware`). A request without a body gets none
of them, nor does a body sent to an operation that takes none (it is never read)."""


def answerable(operation: dict[str, Any], minimum: Role | None) -> set[str]:
    """Name the shared errors (:data:`serving.routes.ERRORS`) an operation of the document answers.

    Its router lists them all; what the operation takes decides which it can answer: those of
    :data:`BODY_ERRORS` where it takes a body, a 422 where it takes parameters or a body to
    find invalid, a 401 and a 429 (:class:`serving.deps.Backoff`) where it needs a key, a 403
    where that key's role may be too low (no role is below the lowest), and a 503 wherever its
    route lists one (the not-loaded 503, or :data:`serving.routes.STOPPING`).

    Parameters
    ----------
    operation : dict
        The operation, as FastAPI generated it (its ``requestBody`` and ``parameters``).
    minimum : Role or None
        The lowest role its key may have; ``None`` when it needs no key.

    Returns
    -------
    set of str
        The statuses, as the document's keys (``"401"``).
    """
    body = "requestBody" in operation
    codes = {503} | (BODY_ERRORS if body else set())
    if body or operation.get("parameters"):
        codes.add(422)
    if minimum is not None:
        codes |= {401, 429} | ({403} if minimum > min(Role) else set())
    return {str(code) for code in codes if code in ERRORS}


def _published_document(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """Build the app's document generator: the routes' examples with their nulls, and roles.

    FastAPI drops every null of the document (fastapi#5559), so an example lost the fields an
    answer holds as null: a score's ``status_reason``, a plan's ``reason``. An integrator reading
    it took them for absent, and an example could not show a required field that is null. Each
    example is put back as the route gave it. Each operation that needs a key also says of
    which roles (:func:`serving.deps.required_key`).

    Each operation lists the shared errors it can answer (:func:`answerable`), not every one its
    router lists: a GET with no body listed a 400 "not UTF-8 JSON", and one with no parameters a
    422, which a client generated from the document handled for nothing.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()  # cached by FastAPI as app.openapi_schema
        for context in iter_route_contexts(app.routes):  # included routers' routes too
            route = context.original_route
            if not isinstance(route, APIRoute) or not route.include_in_schema:
                continue
            roles = [
                REQUIRED_ROLES[d.call]
                for d in route.dependant.dependencies
                if d.call in REQUIRED_ROLES
            ]
            for method in route.methods or ():
                operation = document["paths"][context.path_format][method.lower()]
                if roles:
                    said = operation.get("description", "")
                    operation["description"] = f"{said}\n\n{required_key(roles[0])}".strip()
                answers = operation["responses"]
                for code, answer in route.responses.items():
                    for media, content in answer.get("content", {}).items():
                        if "example" in content:
                            example = jsonable_encoder(content["example"])
                            answers[str(code)]["content"][media]["example"] = example
                kept = answerable(operation, roles[0] if roles else None)
                for unanswered in {str(code) for code in ERRORS} - kept:
                    answers.pop(unanswered, None)
        return document

    return openapi


def no_route(prefix: str = "") -> str:
    """Say where the API, its health and the reviewer pages are, at an address no route has.

    Behind a proxy's path prefix (``--root-path /crm``) the addresses are named with it, as
    :func:`slash_detail`'s route is: the 404 at ``/crm/v2/models`` named ``/v1/``, an address
    the client cannot reach through the proxy. The reviewer pages are named too: a person who
    opened the server's own address in a browser was told of the API and the health checks
    alone.

    Parameters
    ----------
    prefix : str, default ""
        The path prefix the server is given (``/crm``), the ASGI ``root_path``.

    Returns
    -------
    str
        The 404's ``detail``.
    """
    return (
        f"no route at this address: the API's operations are under {prefix}/v1/, its health at "
        f"{prefix}/healthz and {prefix}/readyz, the reviewer pages at {prefix}/ui/"
    )


NO_ROUTE: Final = no_route()
"""The 404's ``detail`` at an address no route has (the pages' is their HTML error page), for
the server at the root (:func:`no_route` names the addresses under a path prefix)."""


def slash_detail(template: str, methods: list[str], trailing: bool) -> str:
    """Say that an address differs from a route only by a trailing slash, naming the route.

    Neither the address nor its ids are repeated: the route is named by its template.

    Parameters
    ----------
    template : str
        The route's path template (``/v1/customers/{customer_id}/scores``).
    methods : list of str
        The methods it answers.
    trailing : bool
        Whether the address sent ends in the slash the route lacks (else it lacks the route's).

    Returns
    -------
    str
        The 404's ``detail``.
    """
    said = f"the route is {template} ({', '.join(methods)})"
    if trailing:
        return f"no route at this address, which ends in a slash: {said}, without the slash"
    return f"no route at this address: {said}, with a trailing slash"


def prefix_twice(prefix: str) -> str:
    """Say that an address holds the path prefix twice: a proxy passed it on unstripped.

    uvicorn puts ``--root-path`` before every path it receives, so a proxy that passes
    ``/crm/v1/models`` on as it is reaches ``/crm/crm/v1/models``: every request was the 404
    :data:`NO_ROUTE`, saying the API is under ``/v1/``, which the client had asked for.

    Parameters
    ----------
    prefix : str
        The path prefix the server is given (``/crm``), the ASGI ``root_path``.

    Returns
    -------
    str
        The 404's ``detail``.
    """
    return (
        f"no route at this address, which holds the path prefix {prefix} twice: the server is "
        f"started with --root-path {prefix}, which it puts before every path it receives, so a "
        f"proxy in front must strip {prefix} before passing a request on (nginx: a proxy_pass "
        "address ending in /)"
    )


def missing_file(folder: str) -> str:
    """Say that a mounted folder (``/ui/static``, ``/docs/assets``) has no file at an address.

    Starlette's answer was a bare ``{"detail": "Not Found"}``, which did not say the address
    is a file's, nor which folder was looked in.

    Parameters
    ----------
    folder : str
        The folder's address, with the proxy's path prefix (``/crm/ui/static``).

    Returns
    -------
    str
        The 404's ``detail``.
    """
    return f"no file at this address: {folder}/ holds only the files the pages link to"


def _slash_answer(app: FastAPI) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """Build the router's answer to an address no route matches: a 404 naming a near route.

    Starlette answered ``POST /v1/scores/`` and ``GET /v1/customers/C1/scores/`` with a bare
    307 to the address without the slash: many HTTP clients do not send a POST's body again
    on a redirect (or do not follow it), the answer had no body, and the access log showed
    nothing useful; a health probe at ``/readyz/`` that counts a 3xx as up read a server still
    loading as ready. An address that differs from a route only by its last slash is now the
    API's JSON 404 naming the route and its methods (:func:`slash_detail`). A person's page in
    a browser (the reviewer pages, :data:`DOCS_PAGES`) is still redirected on ``GET`` and
    ``HEAD``, as before (``/ui`` to ``/ui/``); a form posted there is the pages' 404 naming the
    page (it was their "Page not found" alone). The route is named with the proxy's path prefix
    (``root_path``): behind ``/crm`` it is ``/crm/v1/scores``, the address a client sends (it
    was ``/v1/scores``). An address holding the prefix twice, from a proxy that did not strip it,
    is a 404 saying so (:func:`prefix_twice`); any other is :func:`no_route`'s, naming the
    addresses under the prefix (it was "Not Found").
    """

    async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
        path = get_route_path(scope)  # within the app; the proxy's prefix names what is said
        prefix: str = scope.get("root_path", "")
        if scope["type"] == "http" and path != "/":
            trailing = path.endswith("/")
            raw = scope["path"]
            twin = {**scope, "path": raw.rstrip("/") if trailing else f"{raw}/"}
            template = route_template(app.router.routes, twin)
            if template != "unmatched":
                browsed = is_page(Request(twin)) or template in DOCS_PAGES
                if browsed and scope["method"] in ("GET", "HEAD"):
                    await RedirectResponse(str(URL(scope=twin)))(scope, receive, send)
                    return
                methods = allowed_methods(app.router.routes, twin)
                if not methods:  # a mounted folder's address, which is no file
                    folder = template.removesuffix("/{path}")
                    raise HTTPException(404, missing_file(prefix + folder))
                said = slash_detail(prefix + template, methods, trailing)
                if browsed:  # a form posted there: the pages' 404, naming the page
                    raise PageError(404, "Page not found", sentence(said))
                raise HTTPException(404, said)
        if scope["type"] == "http":
            if prefix and (path == prefix or path.startswith(f"{prefix}/")):
                raise HTTPException(404, prefix_twice(prefix))
            raise HTTPException(404, no_route(prefix))
        await app.router.not_found(scope, receive, send)

    return not_found


def create_app(settings: Settings | None = None, source: Source | None = None) -> FastAPI:
    """Build the scoring service.

    Parameters
    ----------
    settings : Settings, optional
        The settings; default :func:`serving.settings.get_settings` (the environment). Given
        settings also answer the app's ``get_settings`` dependency. They must pass
        :meth:`~serving.settings.Settings.check_serving` (keys and an audit key outside dev
        mode).
    source : Source, optional
        Where models and snapshot load from; default the MLflow registry and the store
        (:class:`serving.loader.RegistrySource`).

    Returns
    -------
    fastapi.FastAPI
        The app; its lifespan loads the models and snapshot in the background.

    Raises
    ------
    ValueError
        If the settings may not serve (no API keys or audit key outside dev mode).
    """
    settings = (settings or get_settings()).check_serving()
    audit_key = settings.audit_key.get_secret_value().encode()
    if not audit_key:
        # only reachable in dev mode (settings refuse an empty key otherwise)
        audit_key = secrets.token_bytes(32)
    described: dict[str, Any] = {
        "title": "guanxi",
        "summary": "Churn, repurchase and cross-sell scores with reasons.",
        "description": API_DESCRIPTION,
        "version": "1",
        "lifespan": lifespan,
    }
    if settings.docs_enabled:
        # Swagger UI and ReDoc from the assets fastapi-offline installs, not from a CDN: the API
        # docs work on a machine without internet access. The icon's address is relative (the
        # pages are /docs and /redoc, beside it): behind a path prefix it is /crm/favicon.ico,
        # where "/favicon.ico" named an address outside the prefix, never sent to guanxi
        app = FastAPIOffline(**described, favicon_url="favicon.ico", static_url=DOCS_ASSETS)
    else:  # GUANXI_API_DOCS off (the default outside --dev): no /docs, /redoc, /openapi.json
        app = FastAPI(**described, docs_url=None, redoc_url=None, openapi_url=None)
    app.router.redirect_slashes = False
    app.router.default = _slash_answer(app)
    app.state.settings = settings
    app.state.source = source or RegistrySource(settings)
    app.state.holder = StateHolder()
    app.state.newest_values = NewestValues()  # the values served while no state is loaded
    app.state.keyring = KeyRing(settings.keys)
    app.state.run = RunDir(settings.run_dir) if settings.run_dir else None
    app.state.backoff = Backoff(
        settings.auth_free_failures,
        settings.auth_max_backoff_seconds,
        path=app.state.run.backoff_db if app.state.run else None,
    )
    app.state.audit = AuditLog(
        settings.home, audit_key, settings.audit_flush_seconds, api_keys=settings.keys
    )
    app.state.metrics = Metrics()
    app.state.uplift_cache = UpliftCache()
    app.dependency_overrides[get_settings] = lambda: settings
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    # the body limit is the app's own, not FastAPI's max_body_size: Starlette's answers a body
    # declared too large in plain text, which says neither the limit nor the API's error shape
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes, router=app.router)
    app.add_middleware(RequestMetricsMiddleware, metrics=app.state.metrics, router=app.router)
    # outermost of the app's own: its 413, 415 and 503 carry the headers too (a 500 sets them
    # itself, answered outside every middleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_api_route("/favicon.ico", _favicon, include_in_schema=False)
    app.include_router(health_router)
    app.include_router(router)
    app.include_router(targeting_router)
    app.include_router(value_router)
    install_ui(app)
    _documentless_answer_head(app)
    app.openapi = _published_document(app)  # type: ignore[method-assign]
    return app


def create_app_from_env() -> FastAPI:
    """Build the app from the environment (the factory ``uvicorn --factory`` calls).

    Returns
    -------
    fastapi.FastAPI
        ``create_app(get_settings())``.
    """
    return create_app(get_settings())
