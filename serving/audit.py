"""The audit log: who was served which score by which model, without raw ids or features."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["AuditLog", "AuditRecord", "hash_customer_id"]


def hash_customer_id(key: bytes, customer_id: str) -> str:
    """Return the HMAC-SHA256 of a customer id, hex-encoded.

    Parameters
    ----------
    key : bytes
        The audit key (``GUANXI_AUDIT_KEY``).
    customer_id : str
        The raw customer id.

    Returns
    -------
    str
        64 hex digits; the same id and key always give the same digest.
    """
    return hmac.new(key, customer_id.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class AuditRecord:
    """One served score, as written to the audit log."""

    request_id: str
    time: str
    role: str
    task: str
    model_version: str
    customer_hash: str
    score: float


class AuditLog:
    """Append-only audit log of JSON lines under ``<home>/audit``.

    Each process writes its own part file (``part-<UTC date>-<pid>-<random>.jsonl``), opened with
    ``O_APPEND``; the lines of one request go out in one ``write`` call under a lock, so a reader
    never sees half a request from this process and parts of several workers never interleave.

    Parameters
    ----------
    home : Path
        The store root (``GUANXI_HOME``).
    key : bytes
        The HMAC key for customer ids.
    """

    def __init__(self, home: Path, key: bytes) -> None:
        self.directory = home / "audit"
        self._key = key
        self._lock = threading.Lock()
        self._token = uuid.uuid4().hex[:8]

    def record(
        self,
        request_id: str,
        role: str,
        served: list[tuple[str, str, str, float]],
    ) -> None:
        """Append the scores served by one request.

        Parameters
        ----------
        request_id : str
            The request's id (also sent back in ``X-Request-ID``).
        role : str
            The role of the caller's key.
        served : list of (customer_id, task, model_version, score)
            What was served; customer ids are hashed before anything is written.
        """
        if not served:
            return
        now = datetime.now(UTC)
        stamp = now.isoformat(timespec="microseconds")
        lines = "".join(
            json.dumps(
                asdict(
                    AuditRecord(
                        request_id=request_id,
                        time=stamp,
                        role=role,
                        task=task,
                        model_version=version,
                        customer_hash=hash_customer_id(self._key, customer_id),
                        score=round(float(score), 6),
                    )
                ),
                separators=(",", ":"),
            )
            + "\n"
            for customer_id, task, version, score in served
        ).encode()
        path = self.directory / f"part-{now:%Y%m%d}-{os.getpid()}-{self._token}.jsonl"
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                view = memoryview(lines)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
