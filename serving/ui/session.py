"""Signed session cookies of the reviewer pages (itsdangerous).

A reviewer logs in once with an API key; the browser then keeps a cookie that names the key only by
its fingerprint (an HMAC of the key under the session secret, never the key itself) with an expiry,
signed by :class:`itsdangerous.URLSafeSerializer` (HMAC-SHA256 under the secret, a fixed salt).
Each request recomputes the role from the *current* key configuration, so removing a key or
lowering its role ends its sessions at once.

Each session also has a random id kept server-side, as a file under ``<home>/sessions`` named by the
id's SHA-256 (shared by every worker and host of one store): logging out removes it, which revokes
the cookie everywhere at once, and a session unused for ``GUANXI_SESSION_IDLE_SECONDS`` ends (the
file's modification time is its last use, refreshed at most once a minute, or every quarter of the
timeout if that is shorter).

The expiry travels inside the signed payload and is compared with the ``now`` the caller passes
(itsdangerous' timed serializer reads the clock itself, which would make expiry untestable without
patching time).

The secret is derived from the service's session key (``GUANXI_SESSION_KEY``, at least 32
characters outside dev mode and different from the audit key, so either can rotate alone) with a
fixed label, so every worker of one deployment accepts the same cookies and no built-in default ever
signs a production session; in dev mode without a session key each process draws a random secret.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Final

from itsdangerous import BadData, URLSafeSerializer

from serving.settings import Role, Settings

__all__ = ["SESSION_COOKIE", "SESSION_SECONDS", "SessionCodec", "session_secret"]

SESSION_COOKIE: Final = "guanxi_session"
SESSION_SECONDS: Final = 8 * 3600
"""How long a session lasts after login (one working day)."""

_LABEL: Final = b"guanxi reviewer session v1"
_TOUCH_SECONDS: Final = 60


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
    """Issue, check and revoke session cookie values.

    Parameters
    ----------
    secret : bytes
        Signing key (:func:`session_secret`).
    keys : dict of str to Role
        The configured API keys and their roles.
    directory : Path
        Where live session ids are kept (``<home>/sessions``).
    max_age : int
        Session lifetime in seconds.
    idle_seconds : int
        A session unused this long ends.
    """

    def __init__(
        self,
        secret: bytes,
        keys: dict[str, Role],
        directory: Path,
        max_age: int = SESSION_SECONDS,
        idle_seconds: int = 1800,
    ):
        self._secret = secret
        self._signed = URLSafeSerializer(
            secret, salt=_LABEL, signer_kwargs={"digest_method": hashlib.sha256}
        )
        self.max_age = max_age
        self.idle_seconds = idle_seconds
        self.directory = directory
        self._keys = {self._fingerprint(key): (role, key) for key, role in keys.items()}

    def _fingerprint(self, key: str) -> str:
        return hmac.new(self._secret, b"key:" + key.encode(), hashlib.sha256).hexdigest()[:24]

    def _file(self, session_id: str) -> Path:
        return self.directory / hashlib.sha256(session_id.encode()).hexdigest()[:40]

    def issue(self, key: str, now: float) -> str:
        """Start a session for a configured key and return its cookie value.

        Parameters
        ----------
        key : str
            The API key the reviewer logged in with (already checked).
        now : float
            Current Unix time in seconds.

        Returns
        -------
        str
            The signed ``[fingerprint, expiry, session id]``; the key cannot be recovered from it.
        """
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._forget_idle(now)
        session_id = secrets.token_urlsafe(24)
        path = self._file(session_id)
        path.touch(mode=0o600)
        os.utime(path, (now, now))
        return self._signed.dumps([self._fingerprint(key), int(now) + self.max_age, session_id])

    def _decode(self, value: str | None) -> tuple[str, int, str] | None:
        if not value:
            return None
        try:
            fingerprint, expiry, session_id = self._signed.loads(value)
        except (BadData, TypeError, ValueError):
            return None
        if not (
            isinstance(expiry, int) and isinstance(fingerprint, str) and isinstance(session_id, str)
        ):
            return None
        return fingerprint, expiry, session_id

    def caller_of(self, value: str | None, now: float) -> tuple[Role, str] | None:
        """Return the current role of a session and the API key it was opened with.

        The key is for the audit log, which records which key a request came with
        (:meth:`serving.audit.AuditLog.fingerprint`), the same for a session as for that key
        sent in ``X-API-Key``.

        Parameters
        ----------
        value : str or None
            The cookie value.
        now : float
            Current Unix time in seconds.

        Returns
        -------
        tuple of (Role, str) or None
            None for a missing, malformed, forged, expired, revoked or idle cookie, or one whose
            key is no longer configured. A valid session's last use is refreshed.
        """
        decoded = self._decode(value)
        if decoded is None:
            return None
        fingerprint, expiry, session_id = decoded
        caller = self._keys.get(fingerprint)
        if expiry <= now or caller is None:
            return None
        path = self._file(session_id)
        try:
            last_use = path.stat().st_mtime
        except FileNotFoundError:
            return None  # logged out (revoked), or never issued here
        if now - last_use > self.idle_seconds:
            path.unlink(missing_ok=True)
            return None
        if now - last_use > min(_TOUCH_SECONDS, self.idle_seconds / 4):
            with contextlib.suppress(FileNotFoundError):
                os.utime(path, (now, now))
        return caller

    def revoke(self, value: str | None) -> None:
        """End a session server-side: its cookie is refused from now on, by every worker.

        Parameters
        ----------
        value : str or None
            The cookie value (nothing happens for a missing or invalid one).
        """
        decoded = self._decode(value)
        if decoded is not None:
            self._file(decoded[2]).unlink(missing_ok=True)

    def _forget_idle(self, now: float) -> None:
        """Remove the files of sessions idle for longer than the idle timeout."""
        for path in self.directory.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if now - path.stat().st_mtime > self.idle_seconds:
                    path.unlink()
