"""Dependencies: how the settings, the loaded state and the caller's role reach a route.

This is the one place callers are admitted. API routes take a key in ``X-API-Key``
(:func:`require_role`: 401 without a valid key, 403 for a role that may not do this). Reviewer
pages take the same key, or a session cookie issued at login (:func:`reviewer_role`; see
:mod:`serving.ui.session`): without either a browser is sent to the login form, an unknown key is
a 401 page and a ``scorer`` key a 403 page.

Repeated authentication failures from one client (a 401 of the API or of a page, a failed login)
slow that client down: after ``GUANXI_AUTH_FREE_FAILURES`` failures every request of it that needs
a key is answered 429 with ``Retry-After`` for a wait that doubles with each further failure, up to
``GUANXI_AUTH_MAX_BACKOFF_SECONDS`` (:class:`Backoff`); a success clears it. The client is the
connection's peer address, or the proxy's ``X-Forwarded-For`` with ``guanxi serve --proxy-headers``.

They are ``async`` functions that never block, so FastAPI runs them on the event loop instead of
sending each to its thread pool.

A customer id is any text (the contract says a string), so routes take it as
``{customer_id:customer}`` (:class:`CustomerIdConvertor`): unlike Starlette's default it matches a
``/`` (sent as ``%2F``, which the server decodes before routing) and unlike ``:path`` a newline.
"""

from __future__ import annotations

import fcntl
import hmac
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, Final

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader
from starlette.convertors import Convertor, register_url_convertor
from starlette.routing import get_route_path

from serving.audit import AuditLog
from serving.metrics import Metrics
from serving.settings import Role, Settings, get_settings
from serving.state import ServingState, StateHolder
from serving.ui.session import SESSION_COOKIE, SessionCodec
from serving.values import LoadedValues, NewestValues

__all__ = [
    "API_KEY_HEADER",
    "KEY_IN_AUTHORIZATION",
    "KEY_WHITESPACE",
    "NOT_LOADED_RETRY_AFTER",
    "NO_KEY",
    "REQUIRED_ROLES",
    "UNKNOWN_KEY",
    "AdminRole",
    "Audit",
    "Backoff",
    "CurrentState",
    "CustomerIdConvertor",
    "Holder",
    "KeyRing",
    "LoginRequiredError",
    "MetricsDep",
    "PageError",
    "PageState",
    "Reviewer",
    "ScorerRole",
    "SettingsDep",
    "app_path",
    "base_path",
    "get_audit",
    "get_holder",
    "get_metrics",
    "get_state",
    "loaded_page_state",
    "loaded_state",
    "not_loaded",
    "page_state",
    "refused_key",
    "require_role",
    "required_key",
    "reviewer_role",
    "served_values",
]


class CustomerIdConvertor(Convertor[str]):
    """A path segment holding a customer id: any non-empty text, ``/`` and newlines included.

    It must be the path's last parameter followed by fixed text (``/scores``) or the path's end.
    """

    regex = r"[\s\S]+"

    def convert(self, value: str) -> str:
        """Return the id as it was sent (already percent-decoded by the server)."""
        return value

    def to_string(self, value: str) -> str:
        """Return the id for a URL path (the caller quotes it)."""
        return value


register_url_convertor("customer", CustomerIdConvertor())

UNKNOWN_KEY: Final = "missing or unknown API key in X-API-Key"
"""The 401's ``detail`` for a key that is not configured."""

NO_KEY: Final = "no API key: send it in the X-API-Key header"
"""The 401's ``detail`` for a request without an ``X-API-Key`` header (or an empty one)."""

KEY_IN_AUTHORIZATION: Final = (
    "no API key in X-API-Key: this API does not read the Authorization header; send the key "
    "alone in the X-API-Key header"
)
"""The 401's ``detail`` for a request with an ``Authorization`` header and no ``X-API-Key``
(``Authorization: Bearer <key>``, as many HTTP clients send a token)."""

KEY_WHITESPACE: Final = (
    "the API key in X-API-Key has whitespace before or after it (a copy-paste error?): "
    "send the key alone"
)
"""The 401's ``detail`` for a key sent with whitespace around it (never the key itself: it is
said whatever the key, so it tells nothing of the configured ones)."""


def refused_key(presented: str | None, authorization: bool = False) -> str:
    """Say why a presented key is refused, for the 401's ``detail``.

    No key (no ``X-API-Key`` header, or an empty one) is said as such (:data:`NO_KEY`), and
    when an ``Authorization`` header came instead, that this API does not read it
    (:data:`KEY_IN_AUTHORIZATION`): both read "missing or unknown API key", so an integrator
    sending ``Authorization: Bearer <key>`` looked for a wrong key. Neither says anything of
    the configured keys, nor quotes the header.

    A key with leading or trailing whitespace (spaces, tabs, a no-break space pasted with it) is
    refused as any unknown key, and counts toward the backoff as one, but the answer says what is
    wrong with it, so the integrator finds the copy-paste error at once. Nothing is said about the
    configured keys (the same sentence whether the key without its whitespace is one or not).

    Parameters
    ----------
    presented : str or None
        The ``X-API-Key`` header's value.
    authorization : bool, optional
        Whether the request has an ``Authorization`` header.

    Returns
    -------
    str
        :data:`NO_KEY` or :data:`KEY_IN_AUTHORIZATION` without a key, :data:`KEY_WHITESPACE`
        for a key with surrounding whitespace, else :data:`UNKNOWN_KEY`.

    Notes
    -----
    The server hands a header over as Latin-1 text, so a no-break space a client sent in UTF-8
    (as curl sends a pasted one) arrives as an ``Â`` and a no-break space: the value is read as
    UTF-8 first when it is valid UTF-8.
    """
    if not presented:
        return KEY_IN_AUTHORIZATION if authorization else NO_KEY
    try:
        text = presented.encode("latin-1").decode("utf-8")
    except UnicodeError:  # not Latin-1 text (never from a server) or not UTF-8 bytes: as sent
        text = presented
    return KEY_WHITESPACE if text != text.strip() else UNKNOWN_KEY


NOT_LOADED_RETRY_AFTER: Final = 5
"""The ``Retry-After`` (seconds) of a 503 answered while models and snapshot are not loaded yet
(the API's, ``/readyz``'s and the reviewer pages'): a client polling a server that is loading
asks again soon after the load is done, and one whose load failed (it tries again every
``GUANXI_RETRY_SECONDS``, 10 s by default) about every other attempt, without hammering it."""

API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="API key; its role decides what it may do."
)


class KeyRing:
    """The configured keys, checked in constant time.

    Parameters
    ----------
    keys : dict of str to Role
        Each accepted key with its role.
    """

    def __init__(self, keys: dict[str, Role]) -> None:
        self._keys = [(k.encode(), role) for k, role in keys.items()]

    def role_of(self, presented: str | None) -> Role | None:
        """Return the role of a presented key, or ``None`` if it is not a configured key.

        Every configured key is compared, with :func:`hmac.compare_digest`, whatever matched
        earlier, so the time taken says nothing about which key or how much of it matched.

        Parameters
        ----------
        presented : str or None
            The value of the ``X-API-Key`` header.

        Returns
        -------
        Role or None
            The role of the matching key.
        """
        if not presented:
            return None
        candidate = presented.encode()
        found: Role | None = None
        for key, role in self._keys:
            if hmac.compare_digest(key, candidate):
                found = role
        return found


def base_path(request: Request) -> str:
    """Return the path prefix the app is served under: the ASGI ``root_path``, or ``""``.

    Behind a reverse proxy that mounts the app under ``/crm`` a browser is at ``/crm/ui/...``:
    every address a page, a redirect or a cookie gives the browser starts with this prefix.

    Parameters
    ----------
    request : fastapi.Request
        The request.

    Returns
    -------
    str
        The prefix without a trailing slash (``/crm``), or ``""`` when the app is at the root.
    """
    return str(request.scope.get("root_path", ""))


def app_path(request: Request) -> str:
    """Return a request's path within the app: without :func:`base_path`, as routes are written.

    Parameters
    ----------
    request : fastapi.Request
        The request, e.g. to ``/crm/ui/customers`` behind the prefix ``/crm``.

    Returns
    -------
    str
        The path as the browser sent it less the prefix (``/ui/customers``), escaped as in
        :attr:`starlette.requests.Request.url`.
    """
    return get_route_path({"path": request.url.path, "root_path": base_path(request)})


class LoginRequiredError(Exception):
    """No session and no key: the browser is sent to the login form.

    Its ``target`` is the page asked for as an address within the app (:func:`app_path`, with
    its query), which the login sends the browser back to under the prefix.
    """

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


class PageError(Exception):
    """An error shown as an HTML page with its status code (and extra response headers)."""

    def __init__(
        self, status_code: int, title: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.title = title
        self.message = message
        self.headers = headers or {}


class Backoff:
    """Per-client backoff after repeated authentication failures, in a small SQLite table.

    With one worker the table is in memory; with several (``guanxi serve --workers N``) it is the
    file ``backoff.sqlite3`` of the run's private directory (:mod:`serving.workers`), so every
    worker sees every failure: a client cannot spread its guesses over workers. The clock is
    monotonic, which on one host is the same clock in every process.

    Parameters
    ----------
    free : int
        Failures a client may have before it must wait.
    most_seconds : float
        The longest wait; each failure past ``free`` doubles it from 1 s up to this.
    clients : int, optional
        Clients remembered (those whose last failure is oldest forgotten first).
    clock : callable, optional
        Monotonic seconds (tests pass their own).
    path : pathlib.Path, optional
        The SQLite file shared by the workers; default a table in memory.
    """

    def __init__(
        self,
        free: int,
        most_seconds: float,
        clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        path: Path | None = None,
    ) -> None:
        self._free = free
        self._most = most_seconds
        self._clients = clients
        self._clock = clock
        self._lock = threading.Lock()
        # autocommit (isolation_level None): each statement alone, BEGIN IMMEDIATE where a
        # failure is counted, so two workers never lose each other's count
        self._db = sqlite3.connect(
            path or ":memory:", timeout=10, isolation_level=None, check_same_thread=False
        )
        if path is None:
            self._create()
            return
        # One worker at a time: two switching a new file to WAL at once each hold a shared lock
        # and want the exclusive one, and SQLite answers one "database is locked" at once, with
        # no wait (its busy timeout cannot help a deadlock); that worker died at start-up.
        with path.with_name(f"{path.name}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._db.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
            self._create()
        self._db.execute("PRAGMA synchronous=OFF")  # the table lives as long as the run

    def _create(self) -> None:
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS failures "
            "(client TEXT PRIMARY KEY, count INTEGER NOT NULL, until REAL NOT NULL)"
        )

    @staticmethod
    def _client(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def wait(self, request: Request) -> float:
        """Return how many seconds this request's client must still wait (0 when none).

        Parameters
        ----------
        request : fastapi.Request
            The request.

        Returns
        -------
        float
            Seconds left.
        """
        with self._lock:
            row = self._db.execute(
                "SELECT until FROM failures WHERE client = ?", (self._client(request),)
            ).fetchone()
        return max(0.0, row[0] - self._clock()) if row else 0.0

    def check(self, request: Request, page: bool = False) -> None:
        """Refuse the request with a 429 and ``Retry-After`` while its client must wait.

        Parameters
        ----------
        request : fastapi.Request
            The request.
        page : bool, optional
            Refuse with an HTML page (:class:`PageError`) instead of JSON.

        Raises
        ------
        fastapi.HTTPException or PageError
            429 while the client must wait.
        """
        left = self.wait(request)
        if left <= 0:
            return
        headers = {"Retry-After": str(math.ceil(left))}
        message = f"too many failed attempts from this client; retry in {math.ceil(left)} s"
        if page:
            raise PageError(429, "Too many attempts", message.capitalize() + ".", headers)
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, message, headers=headers)

    def failed(self, request: Request) -> None:
        """Count a failed authentication of the request's client.

        Parameters
        ----------
        request : fastapi.Request
            The request that failed.
        """
        client = self._client(request)
        with self._lock, self._db:  # commits, or rolls back on an error
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute(
                "SELECT count FROM failures WHERE client = ?", (client,)
            ).fetchone()
            count = (row[0] if row else 0) + 1
            wait = min(2.0 ** (count - self._free - 1), self._most) if count > self._free else 0
            # REPLACE gives the row a new, highest rowid: rowid order is failure order
            self._db.execute(
                "INSERT OR REPLACE INTO failures VALUES (?, ?, ?)",
                (client, count, self._clock() + wait),
            )
            self._db.execute(
                "DELETE FROM failures WHERE rowid IN "
                "(SELECT rowid FROM failures ORDER BY rowid DESC LIMIT -1 OFFSET ?)",
                (self._clients,),
            )

    def succeeded(self, request: Request) -> None:
        """Forget the request's client's failures.

        Parameters
        ----------
        request : fastapi.Request
            The request that authenticated.
        """
        with self._lock:
            self._db.execute("DELETE FROM failures WHERE client = ?", (self._client(request),))


REQUIRED_ROLES: dict[Callable[..., Any], Role] = {}
"""The lowest role each :func:`require_role` dependency admits (the API document names it)."""


def required_key(minimum: Role) -> str:
    """Say which keys an operation admits, for its description in the API document.

    Parameters
    ----------
    minimum : Role
        The lowest role it admits.

    Returns
    -------
    str
        E.g. "Needs an X-API-Key of role reviewer or admin."
    """
    names = [role.name for role in Role if role >= minimum]
    roles = " or ".join(filter(None, [", ".join(names[:-1]), names[-1]]))
    return f"Needs an X-API-Key of role {roles}."


def _admit(request: Request, role: Role, key: str) -> None:
    """Record who the caller is for the audit log: its role and its key's fingerprint.

    A reviewer's session records the key it logged in with, so its lines name the same key as
    that key's API calls (:meth:`serving.audit.AuditLog.fingerprint`).
    """
    audit: AuditLog = request.app.state.audit
    request.state.role = role
    request.state.key_fingerprint = audit.fingerprint(key)


def require_role(
    minimum: Role,
) -> Callable[[Request, str | None], Coroutine[Any, Any, Role]]:
    """Build a dependency that admits API keys of ``minimum`` role or higher.

    Parameters
    ----------
    minimum : Role
        The lowest role allowed.

    Returns
    -------
    callable
        A FastAPI dependency returning the caller's role; it raises 401 without a valid key,
        403 for a lower role and 429 while the client backs off, and records the role and the
        key's fingerprint on the request for the audit log (:func:`_admit`).
    """

    async def dependency(
        request: Request, api_key: Annotated[str | None, Depends(API_KEY_HEADER)]
    ) -> Role:
        backoff: Backoff = request.app.state.backoff
        backoff.check(request)
        keyring: KeyRing = request.app.state.keyring
        role = keyring.role_of(api_key)
        if role is None:
            backoff.failed(request)
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                refused_key(api_key, "authorization" in request.headers),
                headers={"WWW-Authenticate": "APIKey"},
            )
        if role < minimum:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"role {role.name!r} may not do this; it needs {minimum.name}",
            )
        _admit(request, role, api_key or "")
        return role

    REQUIRED_ROLES[dependency] = minimum
    return dependency


async def reviewer_role(
    request: Request, api_key: Annotated[str | None, Depends(API_KEY_HEADER)]
) -> Role:
    """Admit a reviewer (or admin) by ``X-API-Key`` or by session cookie.

    Parameters
    ----------
    request : fastapi.Request
        The request.
    api_key : str or None
        The ``X-API-Key`` header.

    Returns
    -------
    Role
        The caller's role (also set on ``request.state.role``, and the fingerprint of the key
        sent or logged in with on ``request.state.key_fingerprint``).

    Raises
    ------
    LoginRequiredError
        Without a key and without a valid session (the browser is redirected to log in).
    PageError
        401 for an unknown key, 403 for a role below reviewer, 429 while the client backs off.
    """
    backoff: Backoff = request.app.state.backoff
    if api_key is not None:
        backoff.check(request, page=True)
        keyring: KeyRing = request.app.state.keyring
        role = keyring.role_of(api_key)
        if role is None:
            backoff.failed(request)
            message = "The X-API-Key header holds no known key."
            if refused_key(api_key) == KEY_WHITESPACE:
                message = "The key in the X-API-Key header has whitespace before or after it."
            raise PageError(401, "Unknown API key", message)
        key = api_key
    else:
        sessions: SessionCodec = request.app.state.ui_sessions
        caller = sessions.caller_of(request.cookies.get(SESSION_COOKIE), time.time())
        if caller is None:
            target = app_path(request) + (f"?{request.url.query}" if request.url.query else "")
            raise LoginRequiredError(target)
        role, key = caller
    if role < Role.reviewer:
        raise PageError(
            403,
            "Not allowed",
            f"A {role.name} key may not open reviewer pages; they need a reviewer or admin key.",
        )
    _admit(request, role, key)
    return role


async def get_holder(request: Request) -> StateHolder:
    """Return the app's state holder (created by ``create_app``)."""
    holder: StateHolder = request.app.state.holder
    return holder


def loaded_state(holder: StateHolder) -> ServingState:
    """Return the current state, or answer 503 while nothing is loaded.

    The reference is read once, so a request keeps the state it started with even if a reload
    swaps in another one meanwhile. A route with request parameters calls it first thing in its
    body rather than taking :data:`CurrentState`: FastAPI runs every dependency before it checks
    the route's own query, path and body, so a malformed request would get the 503 instead of
    the 422 that names its field (the order is: key, then request, then what is loaded).

    Parameters
    ----------
    holder : StateHolder
        The app's holder.

    Returns
    -------
    ServingState
        The loaded state.

    Raises
    ------
    fastapi.HTTPException
        503 while nothing is loaded, saying what is missing when that is known, with
        ``Retry-After`` (:data:`NOT_LOADED_RETRY_AFTER`).
    """
    state = holder.current
    if state is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            not_loaded(holder),
            headers={"Retry-After": str(NOT_LOADED_RETRY_AFTER)},
        )
    return state


def not_loaded(holder: StateHolder) -> str:
    """Say why nothing is served yet, as the API's 503 and ``/readyz`` answer it.

    Parameters
    ----------
    holder : StateHolder
        The app's holder, with nothing loaded.

    Returns
    -------
    str
        ``models are not loaded yet``, followed by what is missing and what to run when the
        store or registry is not filled yet, or a champion's files are gone
        (:func:`serving.lifecycle.missing`, which names no path or server); after a load that
        failed otherwise, ``: last load failed; retrying (<why>)``, why in one line naming no
        path or server (:func:`serving.lifecycle.failed_why`; ``/readyz`` says the same).
    """
    if holder.missing:
        return f"models are not loaded yet: {holder.missing}"
    if holder.last_error is not None:
        why = f" ({holder.failure})" if holder.failure else ""
        return f"models are not loaded yet: last load failed; retrying{why}"
    return "models are not loaded yet"


def served_values(request: Request, holder: StateHolder) -> LoadedValues | None:
    """Return the value table the value routes and pages serve (None when there is none).

    Customer value needs no model, so unlike :func:`loaded_state` this never answers 503: with a
    state loaded with a value table it is the state's table; while none is loaded (nothing
    promoted yet, or the first load still running) the store's newest, and while the state
    loaded without one (none written yet, or one refused) the table of its snapshot's day or the
    newest, as the load picks it (:func:`serving.values.load_values`): a table written since is
    served at the next request, without a reload. Those are read once per write of them by the
    app's :class:`serving.values.NewestValues` (``app.state.newest_values``, made by
    :func:`serving.app.create_app`: no lock is taken here), which costs a listing of the store's
    value tables per request only while no state's table is served. A state with its own table
    swapped in during such a read makes the request forget what it read once it has it: the
    state's requests, finding nothing held yet, take no lock, so the copy would stay held until
    another value request came.

    Parameters
    ----------
    request : fastapi.Request
        The request (its app's settings name the store).
    holder : StateHolder
        The app's holder.

    Returns
    -------
    LoadedValues or None
        The values, or None when there are none to serve.
    """
    newest: NewestValues = request.app.state.newest_values
    state = holder.current
    if state is not None and state.values is not None:
        newest.clear()
        return state.values
    settings: Settings = request.app.state.settings
    values = newest.get(settings.store(), state.snapshot.as_of if state is not None else None)
    swapped = holder.current
    if swapped is not None and swapped.values is not None:
        newest.clear()  # a state with its own table came in during the read: forget it
    return values


async def get_state(holder: Annotated[StateHolder, Depends(get_holder)]) -> ServingState:
    """Return the current state, or answer 503 while nothing is loaded (:func:`loaded_state`).

    For routes without request parameters; the others call :func:`loaded_state` themselves.
    """
    return loaded_state(holder)


def loaded_page_state(holder: StateHolder) -> ServingState:
    """Return the loaded state, or a 503 page while the models load (or what to run first).

    As :func:`loaded_state`, for the reviewer pages; a page with query parameters calls it in
    its body, so a bad parameter gets its 422 page first.

    Parameters
    ----------
    holder : StateHolder
        The app's holder.

    Returns
    -------
    ServingState
        The loaded state.

    Raises
    ------
    PageError
        503 while nothing is loaded: what to run first when that is known, else to retry; with
        ``Retry-After`` (:data:`NOT_LOADED_RETRY_AFTER`).
    """
    state = holder.current
    retry = {"Retry-After": str(NOT_LOADED_RETRY_AFTER)}
    if state is None and holder.missing:
        raise PageError(503, "Nothing to serve yet", holder.missing, retry)
    if state is None:
        detail = " The last attempt failed; the reason is in the server log." * bool(
            holder.last_error
        )
        raise PageError(503, "Models are loading", f"Please try again in a moment.{detail}", retry)
    return state


async def page_state(holder: Annotated[StateHolder, Depends(get_holder)]) -> ServingState:
    """Return the loaded state, or a 503 page (:func:`loaded_page_state`).

    For pages without query parameters; the others call :func:`loaded_page_state` themselves.
    """
    return loaded_page_state(holder)


async def get_audit(request: Request) -> AuditLog:
    """Return the app's audit log."""
    audit: AuditLog = request.app.state.audit
    return audit


async def get_metrics(request: Request) -> Metrics:
    """Return the app's metrics."""
    metrics: Metrics = request.app.state.metrics
    return metrics


SettingsDep = Annotated[Settings, Depends(get_settings)]
Holder = Annotated[StateHolder, Depends(get_holder)]
CurrentState = Annotated[ServingState, Depends(get_state)]
PageState = Annotated[ServingState, Depends(page_state)]
Audit = Annotated[AuditLog, Depends(get_audit)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ScorerRole = Annotated[Role, Depends(require_role(Role.scorer))]
AdminRole = Annotated[Role, Depends(require_role(Role.admin))]
Reviewer = Annotated[Role, Depends(reviewer_role)]
