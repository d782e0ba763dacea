"""Logging in to the reviewer pages: the form, the session cookie, logging out.

The form is read with FastAPI's :class:`~fastapi.Form` into :class:`LoginForm`, which takes two
fields of at most 1,024 characters and forbids any other: a body that is not a form, a field too
long or an extra field is a 422 like any invalid request, never a 500 (more than 1,000 fields is
Starlette's 400). A reviewer or admin key starts a session (a signed cookie naming a server-side
session, :mod:`serving.ui.session`) and the browser goes to the page it asked for; only paths under
``/ui/`` are followed, so the login is no open redirect.

Both forms are protected against cross-site requests: a POST to ``/ui/login`` or ``/ui/logout``
must carry an ``Origin`` (or, failing that, a ``Referer``) of this site's host, as every browser
sends with a form it submits; another site's form, or a request without either header, is a 403.
Failed logins count towards the client's backoff (:class:`serving.deps.Backoff`).
"""

from __future__ import annotations

import time
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from serving.deps import Backoff, KeyRing, PageError, base_path
from serving.settings import Role, Settings
from serving.ui.pages import PAGE_METHODS, render
from serving.ui.session import SESSION_COOKIE, SessionCodec

__all__ = ["LoginForm", "router"]

router = APIRouter(prefix="/ui", include_in_schema=False)

_MAX_FIELD = 1024
"""Longest accepted login field (a key, a path): a longer one is a 422."""


class LoginForm(BaseModel):
    """The login form: the key and the page to go to; nothing else."""

    model_config = ConfigDict(extra="forbid")

    api_key: str = Field(default="", max_length=_MAX_FIELD)
    next: str = Field(default="/ui/", max_length=_MAX_FIELD)


def _safe_next(target: str | None) -> str:
    """Only same-site paths under /ui are redirect targets (no open redirect)."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/"


def _cookie_path(request: Request) -> str:
    """Return the session cookie's ``Path``: the pages' address under the prefix (``/crm/ui``).

    A browser sends a cookie back only to addresses under its ``Path``: scoped to ``/ui`` behind
    the prefix ``/crm`` it never came back, and a reviewer who logged in was sent to the login
    form again. Logging out deletes the cookie of this same ``Path``.
    """
    return f"{base_path(request)}/ui"


def _check_same_origin(request: Request) -> None:
    """Refuse a form posted from another site, or without ``Origin`` and ``Referer`` (403)."""
    source = request.headers.get("origin") or request.headers.get("referer") or ""
    host = request.headers.get("host", "")
    if not host or urlsplit(source).netloc != host:
        raise PageError(
            403,
            "Form refused",
            "This form must be sent from this site's own page; reload the page and try again.",
        )


@router.api_route("/login", methods=PAGE_METHODS, response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/ui/") -> HTMLResponse:
    """Show the login form."""
    return render(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, form: Annotated[LoginForm, Form()]) -> Response:
    """Check the form's ``api_key`` and start a session (cookie), or show why not."""
    _check_same_origin(request)
    backoff: Backoff = request.app.state.backoff
    backoff.check(request)
    key = form.api_key.strip()
    target = _safe_next(form.next)
    keyring: KeyRing = request.app.state.keyring
    role = keyring.role_of(key)
    if role is None or role < Role.reviewer:
        if role is None:
            backoff.failed(request)
        code, error = (
            (401, "That API key is not known.")
            if role is None
            else (403, f"A {role.name} key may not open reviewer pages; use a reviewer key.")
        )
        return render(request, "login.html", {"next": target, "error": error}, code)
    backoff.succeeded(request)
    sessions: SessionCodec = request.app.state.ui_sessions
    settings: Settings = request.app.state.settings
    response = RedirectResponse(base_path(request) + target, status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        SESSION_COOKIE,
        sessions.issue(key, time.time()),
        max_age=sessions.max_age,
        path=_cookie_path(request),
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookie,
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session: revoke it server-side and clear the cookie."""
    _check_same_origin(request)
    sessions: SessionCodec = request.app.state.ui_sessions
    sessions.revoke(request.cookies.get(SESSION_COOKIE))
    settings: Settings = request.app.state.settings
    response = RedirectResponse(base_path(request) + "/ui/login", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(
        SESSION_COOKIE,
        path=_cookie_path(request),
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookie,
    )
    return response
