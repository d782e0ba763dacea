"""API keys in ``X-API-Key``: 401 without a valid key, 403 for a role that may not do this."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader

from serving.settings import Role

__all__ = ["API_KEY_HEADER", "KeyRing", "require_role"]

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


def require_role(
    minimum: Role,
) -> Callable[[Request, str | None], Coroutine[Any, Any, Role]]:
    """Build a dependency that admits keys of ``minimum`` role or higher.

    Parameters
    ----------
    minimum : Role
        The lowest role allowed.

    Returns
    -------
    callable
        A FastAPI dependency returning the caller's role; it raises 401 without a valid key and
        403 for a lower role, and records the role on ``request.state.role`` for the audit log.
    """

    async def dependency(
        request: Request, api_key: Annotated[str | None, Depends(API_KEY_HEADER)]
    ) -> Role:
        keyring: KeyRing = request.app.state.keyring
        role = keyring.role_of(api_key)
        if role is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing or unknown API key in X-API-Key",
                headers={"WWW-Authenticate": "APIKey"},
            )
        if role < minimum:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"role {role.name!r} may not do this; it needs {minimum.name}",
            )
        request.state.role = role
        return role

    return dependency
