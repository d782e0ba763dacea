"""Dependencies: how the settings, the loaded state and the caller's role reach a route.

They are ``async`` functions that never block, so FastAPI runs them on the event loop instead of
sending each to its thread pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from serving.audit import AuditLog
from serving.auth import require_role
from serving.metrics import Metrics
from serving.settings import Role, Settings, get_settings
from serving.state import ServingState, StateHolder

__all__ = [
    "AdminRole",
    "Audit",
    "CurrentState",
    "Holder",
    "MetricsDep",
    "ScorerRole",
    "SettingsDep",
    "get_audit",
    "get_holder",
    "get_metrics",
    "get_state",
]


async def get_holder(request: Request) -> StateHolder:
    """Return the app's state holder (created by ``create_app``)."""
    holder: StateHolder = request.app.state.holder
    return holder


async def get_state(holder: Annotated[StateHolder, Depends(get_holder)]) -> ServingState:
    """Return the current state, or answer 503 while nothing is loaded.

    The reference is read once, so a request keeps the state it started with even if a reload
    swaps in another one meanwhile.
    """
    state = holder.current
    if state is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "models are not loaded yet")
    return state


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
Audit = Annotated[AuditLog, Depends(get_audit)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ScorerRole = Annotated[Role, Depends(require_role(Role.scorer))]
AdminRole = Annotated[Role, Depends(require_role(Role.admin))]
