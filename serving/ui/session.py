"""Signed session cookies of the reviewer pages (itsdangerous).

A reviewer logs in once with an API key; the browser then keeps a cookie that names the key only by
its fingerprint (an HMAC of the key under the session secret, never the key itself) with an expiry,
signed by :class:`itsdangerous.URLSafeSerializer` (HMAC-SHA256 under the secret, a fixed salt).
Each request recomputes the role from the *current* key configuration, so removing a key or
lowering its role ends its sessions at once.

The expiry travels inside the signed payload and is compared with the ``now`` the caller passes
(itsdangerous' timed serializer reads the clock itself, which would make expiry untestable without
patching time).

The secret is derived from the service's session key (``GUANXI_SESSION_KEY``, at least 32
characters outside dev mode and different from the audit key, so either can rotate alone) with a
fixed label, so every worker of one deployment accepts the same cookies and no built-in default ever
signs a production session; in dev mode without a session key each process draws a random secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

from itsdangerous import BadData, URLSafeSerializer

from serving.settings import Role, Settings

__all__ = ["SESSION_COOKIE", "SESSION_SECONDS", "SessionCodec", "session_secret"]

SESSION_COOKIE: Final = "guanxi_session"
SESSION_SECONDS: Final = 8 * 3600
"""How long a session lasts after login (one working day)."""

_LABEL: Final = b"guanxi reviewer session v1"


def session_secret(settings: Settings) -> bytes:
    """Return the key that signs session cookies.

    Parameters
    ----------
    settings : Settings
        The service settings.

    Returns
    -------
    bytes
        ``HMAC-SHA256(session_key, label)`` when a session key is set (the same in every
        worker), else 32 random bytes drawn for this process (dev mode only: settings refuse an
        empty session key otherwise).
    """
    session_key = settings.session_key.get_secret_value().encode()
    if not session_key:
        return secrets.token_bytes(32)
    return hmac.new(session_key, _LABEL, hashlib.sha256).digest()


class SessionCodec:
    """Issue and check session cookie values.

    Parameters
    ----------
    secret : bytes
        Signing key (:func:`session_secret`).
    keys : dict of str to Role
        The configured API keys and their roles.
    max_age : int
        Session lifetime in seconds.
    """

    def __init__(self, secret: bytes, keys: dict[str, Role], max_age: int = SESSION_SECONDS):
        self._secret = secret
        self._signed = URLSafeSerializer(
            secret, salt=_LABEL, signer_kwargs={"digest_method": hashlib.sha256}
        )
        self.max_age = max_age
        self._roles = {self._fingerprint(key): role for key, role in keys.items()}

    def _fingerprint(self, key: str) -> str:
        return hmac.new(self._secret, b"key:" + key.encode(), hashlib.sha256).hexdigest()[:24]

    def issue(self, key: str, now: float) -> str:
        """Return a cookie value for a configured key.

        Parameters
        ----------
        key : str
            The API key the reviewer logged in with (already checked).
        now : float
            Current Unix time in seconds.

        Returns
        -------
        str
            The signed ``[fingerprint, expiry]``; the key cannot be recovered from it.
        """
        return self._signed.dumps([self._fingerprint(key), int(now) + self.max_age])

    def role_of(self, value: str | None, now: float) -> Role | None:
        """Return the current role of a session, or None if it is invalid.

        Parameters
        ----------
        value : str or None
            The cookie value.
        now : float
            Current Unix time in seconds.

        Returns
        -------
        Role or None
            None for a missing, malformed, forged or expired cookie, or one whose key is no
            longer configured.
        """
        if not value:
            return None
        try:
            fingerprint, expiry = self._signed.loads(value)
        except (BadData, TypeError, ValueError):
            return None
        if not isinstance(expiry, int) or expiry <= now or not isinstance(fingerprint, str):
            return None
        return self._roles.get(fingerprint)
