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

_PENDING = ".pending"


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
    ``O_APPEND``; the lines of one request go out in one ``write`` call under a lock, so parts of
    several workers never interleave. A process killed in the middle of that write (SIGKILL can
    cut a large write short) leaves half a request: so before each write the part's current size
    goes into a ``.pending`` file beside it, removed once the write is done, and a new
    :class:`AuditLog` cuts the part of every dead writer that left one back to that size. After a
    restart the log therefore holds whole requests only.

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
        _cut_unfinished_writes(self.directory)

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
            pending = path.with_suffix(_PENDING)
            try:
                pending.write_text(str(os.fstat(fd).st_size))
                view = memoryview(lines)
                while view:
                    view = view[os.write(fd, view) :]
                pending.unlink()
            finally:
                os.close(fd)


def _alive(pid: int) -> bool:
    """Tell whether a process with this id exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cut_unfinished_writes(directory: Path) -> None:
    """Cut each dead writer's part file back to the size its ``.pending`` file recorded."""
    if not directory.is_dir():
        return
    for pending in directory.glob(f"part-*{_PENDING}"):
        pid = int(pending.stem.split("-")[2])
        if pid == os.getpid() or _alive(pid):
            continue
        text = pending.read_text().strip()
        part = pending.with_suffix(".jsonl")
        if text.isdigit() and part.exists() and part.stat().st_size > int(text):
            os.truncate(part, int(text))
        pending.unlink()
