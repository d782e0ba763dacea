"""``guanxi serve``: run the scoring service with uvicorn.

The settings come from ``GUANXI_*`` environment variables (:class:`serving.settings.Settings`).
Without API keys the command refuses to start unless ``--dev``, which generates one admin key
(printed once) and a random audit key for this run. The MLflow tracking URI is resolved here
(``MLFLOW_TRACKING_URI`` or the SQLite store under ``GUANXI_HOME``) and exported, so every
uvicorn worker loads from the same registry.
"""

from __future__ import annotations

import os
import secrets
from typing import Annotated

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console

from models.registry import configure_tracking
from serving.settings import get_settings

__all__ = ["serve_command"]


def serve_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes (each loads its own models).")
    ] = 1,
    dev: Annotated[
        bool, typer.Option("--dev", help="Development mode: generate a key if none is set.")
    ] = False,
) -> None:
    """Serve scores and reasons over HTTP (FastAPI); see /docs once it runs."""
    console = Console(stderr=True)
    if dev:
        os.environ["GUANXI_DEV"] = "1"
        if not os.environ.get("GUANXI_API_KEYS"):
            key = secrets.token_urlsafe(24)
            os.environ["GUANXI_API_KEYS"] = f"{key}:admin"
            typer.echo(f"dev mode: generated admin API key (X-API-Key): {key}")
        if not os.environ.get("GUANXI_AUDIT_KEY"):
            os.environ["GUANXI_AUDIT_KEY"] = secrets.token_urlsafe(32)
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
    os.environ["MLFLOW_TRACKING_URI"] = configure_tracking(settings.home)
    console.print(f"guanxi serving on http://{host}:{port} (store {settings.home})")
    uvicorn.run(
        "serving.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        server_header=False,
        log_level="info",
    )
