"""Logging in to the reviewer pages: the form, the session cookie, logging out.

The form is read with FastAPI's :class:`~fastapi.Form` (python-multipart): a body that is not a
form, or fields that are too long, are a 422 like any invalid request, never a 500. A reviewer or
admin key starts a session (a signed cookie, :mod:`serving.ui.session`) and the browser goes to the
page it asked for; only paths under ``/ui/`` are followed, so the login is no open redirect.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from serving.deps import KeyRing
from serving.settings import Role
from serving.ui.pages import render
from serving.ui.session import SESSION_COOKIE, SessionCodec

__all__ = ["router"]

router = APIRouter(prefix="/ui", include_in_schema=False)

_MAX_FIELD = 1024
"""Longest accepted login field (a key, a path): a longer one is a 422."""


def _safe_next(target: str | None) -> str:
    """Only same-site paths under /ui are redirect targets (no open redirect)."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/"


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/ui/") -> HTMLResponse:
    """Show the login form."""
    return render(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    api_key: Annotated[str, Form(max_length=_MAX_FIELD)] = "",
    next: Annotated[str, Form(max_length=_MAX_FIELD)] = "/ui/",
) -> Response:
    """Check the form's ``api_key`` and start a session (cookie), or show why not."""
    key = api_key.strip()
    target = _safe_next(next)
    keyring: KeyRing = request.app.state.keyring
    role = keyring.role_of(key)
    if role is None or role < Role.reviewer:
        code, error = (
            (401, "That API key is not known.")
            if role is None
            else (403, f"A {role.name} key may not open reviewer pages; use a reviewer key.")
        )
        return render(request, "login.html", {"next": target, "error": error}, code)
    sessions: SessionCodec = request.app.state.ui_sessions
    response = RedirectResponse(
        request.scope.get("root_path", "") + target, status.HTTP_303_SEE_OTHER
    )
    response.set_cookie(
        SESSION_COOKIE,
        sessions.issue(key, time.time()),
        max_age=sessions.max_age,
        path="/ui",
        httponly=True,
        samesite="lax",
        secure=request.app.state.settings.secure_cookie,
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session."""
    response = RedirectResponse(
        request.scope.get("root_path", "") + "/ui/login", status.HTTP_303_SEE_OTHER
    )
    response.delete_cookie(
        SESSION_COOKIE,
        path="/ui",
        httponly=True,
        samesite="lax",
        secure=request.app.state.settings.secure_cookie,
    )
    return response
