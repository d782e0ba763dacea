"""The reviewer pages under ``/ui``: server-rendered HTML (Jinja2) with plain SVG charts.

:mod:`serving.ui.pages` holds the pages and their rendering, :mod:`serving.ui.login` the login,
:mod:`serving.ui.session` the session cookie, :mod:`serving.ui.charts` the SVG charts,
:mod:`serving.ui.value_page` the customer value page,
:mod:`serving.ui.cards` the model cards read from MLflow and :mod:`serving.ui.history` a
customer's history read from the store,
:mod:`serving.ui.drift` the drift report, :mod:`serving.ui.targeting` the plan and campaign
pages. Who may open a page is decided in :mod:`serving.deps`,
which reads the session cookie with :mod:`serving.ui.session`; so that importing that module does
not import the pages (and :mod:`serving.deps` again), :func:`install_ui` imports them when called.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Final

from cachetools import LRUCache

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["FAVICON", "install_ui"]

FAVICON: Final = Path(__file__).parent / "static" / "favicon.ico"
"""The service's icon: the reviewer pages' mark, served at ``/favicon.ico``."""


def install_ui(app: FastAPI) -> None:
    """Add the reviewer pages, their static files and their error handling to the app.

    Parameters
    ----------
    app : fastapi.FastAPI
        The app from :func:`serving.app.create_app` (its ``state`` holds the settings).
    """
    from fastapi.staticfiles import StaticFiles
    from fastapi.templating import Jinja2Templates

    from serving.deps import LoginRequiredError, PageError
    from serving.ui import drift, login, pages, targeting, value_page
    from serving.ui.cards import CardCache
    from serving.ui.session import SessionCodec, session_secret

    settings = app.state.settings
    templates = Jinja2Templates(env=pages.environment())
    app.state.ui_templates = templates
    app.state.ui_sessions = SessionCodec(
        session_secret(settings),
        settings.keys,
        settings.home / "sessions",
        idle_seconds=settings.session_idle_seconds,
    )
    app.state.ui_cards = CardCache()
    # the customer table of the current state only: a reload's new state replaces it
    app.state.ui_tables = LRUCache(maxsize=1)
    app.state.ui_lock = threading.Lock()
    app.add_exception_handler(LoginRequiredError, pages.login_redirect)
    app.add_exception_handler(PageError, pages.error_page)
    app.mount("/ui/static", StaticFiles(directory=pages.HERE / "static"), name="ui-static")
    app.include_router(login.router)
    app.include_router(pages.router)
    app.include_router(drift.router)
    app.include_router(value_page.router)
    app.include_router(targeting.router)
