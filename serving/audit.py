"""The audit log: who was served which score by which model, without raw ids or features.

Who
    Each line carries the caller's ``role`` and ``key_fingerprint``, which names the API key that
    was used (the key a reviewer logged in with, for a session) without the line revealing it:
    the first 16 hex digits of an HMAC-SHA256 of the key under a key derived from the audit key
    (:func:`key_fingerprint`; ``guanxi audit verify --keys`` prints the configured keys'). It is
    keyed so that whoever reads the log without the audit key (a log shipper, a copy of the
    folder) cannot try keys against it, as a plain hash of a short or guessable key would let
    them; the auditor who verifies the chain holds the audit key anyway. Lines written before the
    field existed lack it and still verify.

Tamper evidence
    Every line carries ``"mac"``, the HMAC-SHA256 under the audit key of the previous line's mac
    followed by the line itself (the first line's "previous mac" is derived from the part file's
    name). Changing a byte, deleting or inserting a line, or renaming a part breaks the chain at
    that line; :func:`verify_part` (``guanxi audit verify``) reports the first broken line. Each
    writer also keeps ``<part>.head`` (bytes, lines and last mac it has fsynced), so a tail cut
    at a line boundary is found too.

Off the critical path, nothing lost
    A request's lines go out in one ``write`` to a part file kept open with ``O_APPEND``: the
    kernel holds them from then on, so a SIGKILL of the service loses none of them. The
    ``fsync`` and the head are done by a background thread every ``flush_seconds`` and at
    :meth:`AuditLog.close` (the service's shutdown), never by the request.

Whole requests after a crash
    Each line says which of its request's lines it is (``item`` of ``items``). While a writer
    runs, ``<part>.pending`` names it; a writer killed in the middle of a write leaves that file,
    and the next :class:`AuditLog` on the same host cuts the dead writer's part back to the end
    of its last whole request, logging the byte counts. The cut only ever removes an unfinished
    request at the end, so a crafted ``.pending`` cannot remove recorded requests; a ``.pending``
    whose name is not a writer's is reported and skipped.

A write that fails
    A request whose lines could not all be written (a full disk) fails, and its partial bytes
    are cut, so the part's chain goes on from its last whole request. A part that cannot be
    opened at midnight leaves the old part current (and no ``.pending`` of the new one). A
    background fsync or head that fails is logged (``ERROR serving.audit``) and tried again at
    the next round; the thread goes on.

Several hosts
    Part files are named ``part-<UTC day>-<host>-<pid>-<token>.jsonl``: a writer is only judged
    dead by a process on its own host, so hosts sharing ``GUANXI_HOME`` never cut each other's
    parts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import socket
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from features.store import atomic_write, process_alive

__all__ = [
    "AuditLog",
    "AuditRecord",
    "Break",
    "hash_customer_id",
    "host_id",
    "key_fingerprint",
    "verify_log",
    "verify_part",
]

logger = logging.getLogger(__name__)

_PENDING = ".pending"
_HEAD = ".head"
_PART = re.compile(
    r"^part-(?P<day>\d{8})-(?P<host>[A-Za-z0-9.]{1,64})-(?P<pid>\d{1,10})-(?P<token>[0-9a-f]{8})$"
)
_MAC = re.compile(rb',"mac":"(?P<mac>[0-9a-f]{64})"\}\n?$')
_WINDOW = 1 << 20


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


_KEY_LABEL = b"guanxi-audit-key-fingerprint-1"


def key_fingerprint(audit_key: bytes, api_key: str) -> str:
    """Return the fingerprint of an API key that audit lines carry as ``key_fingerprint``.

    Parameters
    ----------
    audit_key : bytes
        The audit key (``GUANXI_AUDIT_KEY``).
    api_key : str
        The API key (as configured in ``GUANXI_API_KEYS``).

    Returns
    -------
    str
        16 hex digits: HMAC-SHA256 of the key under ``HMAC-SHA256(audit key, label)``, so it never
        equals a customer hash of the same text; the same key and audit key always give the same.
    """
    return _fingerprint(_fingerprint_key(audit_key), api_key)


def _fingerprint_key(audit_key: bytes) -> bytes:
    """Return the key API keys are fingerprinted under: ``HMAC-SHA256(audit key, label)``."""
    return hmac.new(audit_key, _KEY_LABEL, hashlib.sha256).digest()


def _fingerprint(fingerprint_key: bytes, api_key: str) -> str:
    """Return an API key's fingerprint under a key from :func:`_fingerprint_key`."""
    return hmac.new(fingerprint_key, api_key.encode(), hashlib.sha256).hexdigest()[:16]


def host_id() -> str:
    """Return this host's name as it appears in part file names (letters, digits and dots).

    Returns
    -------
    str
        The host name with every other character replaced by a dot, at most 64 characters.
    """
    return re.sub(r"[^A-Za-z0-9.]", ".", socket.gethostname())[:64] or "host"


def _genesis(key: bytes, part_name: str) -> bytes:
    """Return the "previous mac" of a part's first line, bound to the part's name."""
    return (
        hmac.new(key, b"guanxi-audit-1 " + part_name.encode(), hashlib.sha256).hexdigest().encode()
    )


def _chain(key: bytes, previous: bytes, body: bytes) -> bytes:
    """Return a line's mac: HMAC of the previous mac followed by the line without its mac."""
    return hmac.new(key, previous + body, hashlib.sha256).hexdigest().encode()


@dataclass(frozen=True)
class AuditRecord:
    """One served score, as written to the audit log (the line adds its ``mac``)."""

    request_id: str
    time: str
    role: str
    key_fingerprint: str
    task: str
    model_version: str
    customer_hash: str
    score: float
    item: int
    items: int


def _write(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (tests replace this to die in the middle of a write)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


@dataclass
class _Part:
    """An open part file and where its chain stands."""

    path: Path
    fd: int
    mac: bytes
    size: int
    lines: int
    flushed: tuple[int, int, bytes] = field(default=(0, 0, b""))


def _write_head(path: Path, size: int, lines: int, mac: bytes) -> None:
    head = json.dumps({"bytes": size, "lines": lines, "mac": mac.decode()})
    atomic_write(path.with_suffix(_HEAD), lambda p: p.write_text(head))


class AuditLog:
    """Append-only, HMAC-chained audit log of JSON lines under ``<home>/audit``.

    See the module's documentation for the chain, the batching and the recovery.

    Parameters
    ----------
    home : Path
        The store root (``GUANXI_HOME``).
    key : bytes
        The HMAC key for customer ids and the chain.
    flush_seconds : float, optional
        How often written lines are fsynced and the head is updated (default 0.2 s).
    api_keys : iterable of str, optional
        The configured API keys (``GUANXI_API_KEYS``): their fingerprints are computed here,
        once, and :meth:`fingerprint` answers them without hashing again.
    """

    def __init__(
        self,
        home: Path,
        key: bytes,
        flush_seconds: float = 0.2,
        api_keys: Iterable[str] = (),
    ) -> None:
        self.directory = home / "audit"
        self._key = key
        self._fingerprint_key = _fingerprint_key(key)
        # bounded by the configuration: a key only a caller sent is never remembered
        self._fingerprints = {k: _fingerprint(self._fingerprint_key, k) for k in api_keys}
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._writer = f"{host_id()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._part: _Part | None = None
        self._retired: list[_Part] = []
        self._closed = threading.Event()
        self._flush_seconds = flush_seconds
        self._flusher: threading.Thread | None = None
        recover(self.directory)

    def fingerprint(self, api_key: str) -> str:
        """Return an API key's ``key_fingerprint`` under this log's key (:func:`key_fingerprint`).

        A configured key's (``api_keys``) was computed at start; any other is computed each
        time and not remembered.

        Parameters
        ----------
        api_key : str
            The caller's API key.

        Returns
        -------
        str
            16 hex digits.
        """
        known = self._fingerprints.get(api_key)
        return known if known is not None else _fingerprint(self._fingerprint_key, api_key)

    def record(
        self,
        request_id: str,
        role: str,
        served: list[tuple[str, str, str, float]],
        *,
        key_fingerprint: str,
    ) -> None:
        """Append the scores served by one request (one ``write``; no fsync, no waiting).

        Parameters
        ----------
        request_id : str
            The request's id (also sent back in ``X-Request-ID``).
        role : str
            The role of the caller's key.
        served : list of (customer_id, task, model_version, score)
            What was served; customer ids are hashed before anything is written.
        key_fingerprint : str
            The caller's key's fingerprint (:meth:`fingerprint`).
        """
        if not served:
            return
        now = datetime.now(UTC)
        stamp = now.isoformat(timespec="microseconds")
        items = len(served)
        bodies = [
            json.dumps(
                AuditRecord(
                    request_id=request_id,
                    time=stamp,
                    role=role,
                    key_fingerprint=key_fingerprint,
                    task=task,
                    model_version=version,
                    customer_hash=hash_customer_id(self._key, customer_id),
                    score=round(float(score), 6),
                    item=item,
                    items=items,
                ).__dict__,
                separators=(",", ":"),
            )[:-1].encode()
            for item, (customer_id, task, version, score) in enumerate(served, start=1)
        ]
        with self._lock:
            part = self._open(now)
            mac = part.mac
            chunks = []
            for body in bodies:
                mac = _chain(self._key, mac, body)
                chunks.append(body + b',"mac":"' + mac + b'"}\n')
            data = b"".join(chunks)
            try:
                _write(part.fd, data)
            except OSError:
                # a write that failed half way (a full disk) left part of a line: cut it, or
                # every later line of the part would follow it and fail verification
                os.ftruncate(part.fd, part.size)
                raise
            part.mac, part.size, part.lines = mac, part.size + len(data), part.lines + items

    def _open(self, now: datetime) -> _Part:
        """Return the part file of this writer for ``now``'s day, opening a new one if needed."""
        path = self.directory / f"part-{now:%Y%m%d}-{self._writer}.jsonl"
        if self._part is not None and self._part.path == path:
            return self._part
        self.directory.mkdir(parents=True, exist_ok=True)
        pending = path.with_suffix(_PENDING)
        pending.write_text(self._writer)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError:
            pending.unlink(missing_ok=True)  # it would name a part that does not exist
            raise
        # the old part is retired (its file closed by the next flush) only once the new one is
        # open: retired before, a failed open left it current with its file closed under it
        if self._part is not None:
            self._retired.append(self._part)
        self._part = _Part(path, fd, _genesis(self._key, path.name), 0, 0)
        if self._flusher is None:
            self._flusher = threading.Thread(
                target=self._flush_loop, name="guanxi-audit-fsync", daemon=True
            )
            self._flusher.start()
        return self._part

    def _flush_loop(self) -> None:
        while not self._closed.wait(self._flush_seconds):
            try:
                self.flush()
            except OSError:  # a full disk must not end the thread: it tries again next time
                logger.exception("audit: fsync or head failed; trying again")

    def flush(self) -> None:
        """Fsync what was written and update each part's head; close parts of past days."""
        with self._flush_lock:
            with self._lock:
                parts = [*self._retired, *([self._part] if self._part else [])]
                retired, self._retired = self._retired, []
                states = [(p, (p.size, p.lines, p.mac)) for p in parts]
            try:
                for part, state in states:
                    if state != part.flushed:
                        os.fsync(part.fd)  # covers at least everything counted in `state`
                        _write_head(part.path, *state)
                        part.flushed = state
            except OSError:
                with self._lock:  # sealed at the next flush (their files stay open till then)
                    self._retired[:0] = retired
                raise
            for part in retired:
                os.close(part.fd)
                part.path.with_suffix(_PENDING).unlink(missing_ok=True)

    def close(self) -> None:
        """Stop the background fsync, fsync and seal what was written, and close the parts."""
        self._closed.set()
        if self._flusher is not None:
            self._flusher.join()
        with self._lock:
            if self._part is not None:
                self._retired.append(self._part)
                self._part = None
            self._flusher = None
        self.flush()
        self._closed = threading.Event()  # a later record starts a new background fsync


def _whole_requests_end(path: Path) -> int:
    """Return the byte offset just after the last line that ends a request (0 if none)."""
    size = path.stat().st_size
    window = _WINDOW
    with path.open("rb") as file:
        while True:
            start = max(0, size - window)
            file.seek(start)
            data = file.read(size - start)
            end = len(data)
            while True:
                cut = data.rfind(b"\n", 0, end)
                if cut < 0 or (start > 0 and data.rfind(b"\n", 0, cut) < 0):
                    break
                begin = data.rfind(b"\n", 0, cut) + 1
                try:
                    line = json.loads(data[begin : cut + 1])
                    if line["item"] == line["items"]:
                        return start + cut + 1
                except (ValueError, KeyError, TypeError):
                    pass
                end = begin
            if start == 0:
                return 0
            window *= 2


def _count_and_last_mac(path: Path, size: int) -> tuple[int, bytes | None]:
    """Count the lines in the first ``size`` bytes and return the last line's mac."""
    lines, last = 0, b""
    with path.open("rb") as file:
        remaining = size
        while remaining:
            chunk = file.read(min(_WINDOW, remaining))
            remaining -= len(chunk)
            lines += chunk.count(b"\n")
            last = (last + chunk)[-200:]
    match = _MAC.search(last.rstrip(b"\n").split(b"\n")[-1] + b"\n") if lines else None
    return lines, match["mac"] if match else None


def recover(directory: Path) -> None:
    """Cut the part of every dead writer of this host back to its last whole request.

    A ``.pending`` file whose name is not a writer's, or whose part is missing, is reported
    (``WARNING serving.audit``) and skipped; one of another host or of a live writer is left
    alone. Every cut is logged with the byte counts.

    Parameters
    ----------
    directory : Path
        The audit directory (``<home>/audit``).
    """
    if not directory.is_dir():
        return
    host = host_id()
    for pending in sorted(directory.glob(f"*{_PENDING}")):
        match = _PART.match(pending.name.removesuffix(_PENDING))
        if match is None:
            logger.warning("audit: skipping %s: not a writer's .pending file name", pending.name)
            continue
        pid = int(match["pid"])
        if match["host"] != host or pid == os.getpid() or process_alive(pid):
            continue
        part = pending.with_suffix(".jsonl")
        if not part.is_file():
            logger.warning(
                "audit: skipping %s: its part file %s is missing", pending.name, part.name
            )
            continue
        size = part.stat().st_size
        end = _whole_requests_end(part)
        if end < size:
            os.truncate(part, end)
            logger.warning(
                "audit: cut %s from %d to %d bytes: %d bytes of an unfinished request by dead "
                "writer %s",
                part.name,
                size,
                end,
                size - end,
                pending.name.removesuffix(_PENDING).removeprefix("part-"),
            )
        lines, mac = _count_and_last_mac(part, end)
        if mac is not None or lines == 0:
            _write_head(part, end, lines, mac or b"")
        pending.unlink()


_RENAMED = (
    "the file's name is not a part's (part-<day>-<host>-<pid>-<token>.jsonl) and its first line "
    "does not chain from it: a part's chain starts from the name it was written under (a copy "
    "renamed on the way, as a download's part-...(1).jsonl?); verify it under that name"
)


@dataclass(frozen=True)
class Break:
    """Where a part file's chain breaks.

    Attributes
    ----------
    line : int
        The 1-based number of the first broken line (one past the last line for a missing tail).
    reason : str
        What is wrong there.
    """

    line: int
    reason: str


def verify_part(path: Path, key: bytes) -> tuple[int, Break | None]:
    """Check a part file's chain and head.

    A part whose writer is running (its ``.pending`` is there) may end in a request being
    written: an incomplete last request, or a last line without its end (the kernel shows a
    large write to a reader page by page), is read as such, not as a cut. A cut is still found
    by the head, and by the writer's next line, which no longer chains.

    Parameters
    ----------
    path : Path
        A ``part-*.jsonl`` file.
    key : bytes
        The audit key it was written with.

    Returns
    -------
    tuple of (int, Break or None)
        The number of lines read, and the first break (None when the part is intact).
    """
    # what says the writer is running, and what it fsynced, are read before the lines: read
    # after, a running writer's head could count lines written after the file was read (a
    # "truncated tail" that is not), and its part could have been sealed since
    live = path.with_suffix(_PENDING).exists()
    head_path = path.with_suffix(_HEAD)
    head: tuple[int, bytes] | None = None
    unreadable = False
    if head_path.is_file():
        try:
            fields = json.loads(head_path.read_text())
            head = int(fields["lines"]), str(fields["mac"]).encode()
        except (ValueError, KeyError, TypeError):
            unreadable = True
    previous = _genesis(key, path.name)
    number = 0
    last: dict[str, object] = {}
    with path.open("rb") as file:
        for number, line in enumerate(file, start=1):
            if not line.endswith(b"\n"):
                if live:  # a running writer's request being written: read up to it
                    number -= 1
                    break
                return number, Break(number, "truncated: the line has no end")
            match = _MAC.search(line)
            if match is None:
                return number, Break(number, "not an audit line (no mac)")
            body = line[: match.start()]
            if not hmac.compare_digest(_chain(key, previous, body), match["mac"]):
                if number == 1 and _PART.match(path.stem) is None:
                    return number, Break(number, _RENAMED)
                return number, Break(
                    number,
                    "mac does not match: this line was changed, or a line before it was deleted "
                    "or inserted",
                )
            previous = match["mac"]
            try:
                last = json.loads(line)
            except ValueError:
                return number, Break(number, "not an audit line (no JSON)")
    if unreadable:
        return number, Break(number + 1, f"unreadable head {head_path.name}")
    if head is not None:
        committed, head_mac = head
        if committed > number:
            return number, Break(
                number + 1,
                f"truncated tail: the writer fsynced {committed} lines, the file holds {number}",
            )
        if committed and not _line_mac_is(path, committed, head_mac):
            return number, Break(committed, f"line {committed} is not the one the head records")
    if last and last.get("item") != last.get("items") and not live:
        return number, Break(number + 1, "truncated tail: the last request is incomplete")
    return number, None


def _line_mac_is(path: Path, number: int, mac: bytes) -> bool:
    """Tell whether line ``number`` (1-based) of ``path`` carries ``mac``."""
    with path.open("rb") as file:
        for current, line in enumerate(file, start=1):
            if current == number:
                match = _MAC.search(line)
                return match is not None and hmac.compare_digest(match["mac"], mac)
    return False


def verify_log(paths: Iterable[Path], key: bytes) -> list[tuple[Path, int, Break | None]]:
    """Verify part files, and every ``part-*.jsonl`` in the directories given.

    A part's ``.head`` or ``.pending`` file given is read as its part, once: a day's files named
    by a pattern (``part-20261204-*``) are that day's parts, not parts and heads (a head read as
    a part was reported broken at its line 1).

    Parameters
    ----------
    paths : iterable of Path
        Part files (or their ``.head`` and ``.pending`` files) or audit directories.
    key : bytes
        The audit key.

    Returns
    -------
    list of (Path, int, Break or None)
        Each part with its number of lines and its first break, in the order given (a
        directory's in name order), each part once.
    """
    parts: dict[Path, None] = {}
    for path in paths:
        if path.is_dir():
            parts.update(dict.fromkeys(sorted(path.glob("part-*.jsonl"))))
        elif path.suffix in (_HEAD, _PENDING) and path.with_suffix(".jsonl").is_file():
            parts[path.with_suffix(".jsonl")] = None
        else:
            parts[path] = None
    return [(part, *verify_part(part, key)) for part in parts]
